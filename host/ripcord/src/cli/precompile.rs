//! `ripcord precompile`: what a deployment package needs, prepared on the build machine. It loads and checks the
//! configuration as every guard command does (so a package is never built from a configuration that would fail
//! at cold start), compiles each policy for the architecture's baseline CPU into the output directory, and prints
//! the files the package must carry: the configuration and every policy file it names, relative to its folder.

use anyhow::{Context, bail};
use ripcord::config::Config;
use ripcord::judge::policies::PolicySet;
use ripcord::plugin::runtime::{CacheDir, PluginSource, Runtime, RuntimeSettings, portable_target};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

pub(crate) fn run(config_path: &Path, out: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let folder = config_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut files = BTreeSet::new();
    for (i, guard) in config.guards.iter().enumerate() {
        for (j, policy) in guard.policies.iter().enumerate() {
            if let PluginSource::File(path) = &policy.source {
                let inside = package_path(folder, path).with_context(|| {
                    format!(
                        "{}: guard[{i}].policies[{j}].use = {:?}: a package holds the configuration's folder; \
                         move the policy inside it",
                        config_path.display(),
                        path.display()
                    )
                })?;
                files.insert(inside);
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let settings = RuntimeSettings {
        cache: CacheDir::At(out.to_path_buf()),
        precompiled: Some(out.to_path_buf()),
        ..RuntimeSettings::default()
    };
    PolicySet::load_strict(&config, Runtime::new(settings)?)?;
    let config_name = config_path.file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("guards.toml"));
    let answer = json!({
        "config": config_name,
        "policy_files": files,
        "guards": config.guards.len(),
        "precompiled": out,
        "target": portable_target(),
    });
    super::output::line(format!("{answer:#}"))?;
    Ok(ExitCode::SUCCESS)
}

/// `path` (as the loaded configuration holds it: already resolved against its folder) as a path inside `folder`.
fn package_path(folder: &Path, path: &Path) -> anyhow::Result<PathBuf> {
    let absolute = |p: &Path| std::fs::canonicalize(p).with_context(|| format!("cannot read {}", p.display()));
    let folder = absolute(folder)?;
    let file = absolute(path)?;
    let inside = file.strip_prefix(&folder).map(Path::to_path_buf).ok();
    match inside {
        Some(p) if p.components().all(|c| matches!(c, Component::Normal(_))) => Ok(p),
        _ => bail!("{} is outside {}", file.display(), folder.display()),
    }
}

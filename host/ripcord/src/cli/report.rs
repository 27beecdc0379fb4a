//! `ripcord report`: the audit log as one self-contained HTML page.

use super::output::exit;
use anyhow::Context;
use ripcord::config::Config;
use ripcord::record::audit::Audit;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(crate) fn run(
    config: &Path,
    audit: Option<PathBuf>,
    out: Option<PathBuf>,
    last: usize,
) -> anyhow::Result<ExitCode> {
    let path = match audit {
        Some(path) => path,
        None => Config::load(config)?.audit_log,
    };
    let log = Audit::load_existing(&path).with_context(|| format!("cannot read the audit log {}", path.display()))?;
    if let Some(note) = log.damage_note(&path) {
        eprintln!("warning: {note}");
    }
    let page = ripcord::record::report::render(&log.records, &path.display().to_string(), last);
    match out {
        Some(out) => std::fs::write(&out, page).with_context(|| format!("writing {}", out.display()))?,
        None => super::output::line(page.trim_end())?,
    }
    Ok(ExitCode::from(exit::HEALTHY))
}

//! Compiled plugins are cached on disk and reused; a damaged entry is recompiled, never trusted.

use crate::support::{fixture, temp_dir};
use ripcord::model::verdict::Verdict;
use ripcord::plugin::runtime::{CacheDir, PluginSource, Runtime, RuntimeSettings};

fn runtime_with_cache(dir: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeSettings { cache: CacheDir::At(dir.to_path_buf()), ..RuntimeSettings::default() })
        .unwrap_or_else(|e| panic!("{e}"))
}

fn cache_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    entries.sort();
    entries
}

#[test]
fn compiled_code_is_cached_keyed_by_plugin_hash_and_reused() {
    let dir = temp_dir();
    let source = PluginSource::Builtin("error-rate".into());
    let plugin = runtime_with_cache(dir.path()).load(&source).unwrap_or_else(|e| panic!("{e}"));
    let entries = cache_entries(dir.path());
    assert_eq!(entries.len(), 1, "{entries:?}");
    let name = entries[0].file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    assert!(name.starts_with(plugin.sha256()) && name.ends_with(".cwasm"), "{name}");
    let modified = std::fs::metadata(&entries[0]).and_then(|m| m.modified()).ok();

    // A new process (runtime) maps the cached code instead of compiling and writing it again.
    let runtime = runtime_with_cache(dir.path());
    let again = runtime.load(&source).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::metadata(&entries[0]).and_then(|m| m.modified()).ok(), modified);
    let report = runtime.evaluate(&again, &fixture("error-spike.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Rollback);
}

#[test]
fn a_damaged_cache_entry_is_recompiled() {
    let dir = temp_dir();
    let source = PluginSource::Builtin("latency".into());
    runtime_with_cache(dir.path()).load(&source).unwrap_or_else(|e| panic!("{e}"));
    let entry = cache_entries(dir.path()).remove(0);
    std::fs::write(&entry, b"not compiled code").unwrap_or_else(|e| panic!("{e}"));
    let runtime = runtime_with_cache(dir.path());
    let plugin = runtime.load(&source).unwrap_or_else(|e| panic!("{e}"));
    let report = runtime.evaluate(&plugin, &fixture("latency-regression.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Rollback);
    assert!(std::fs::metadata(&entry).map(|m| m.len() > 1000).unwrap_or(false), "entry was not rewritten");
}

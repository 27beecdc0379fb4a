//! Shared helpers: runtimes with test settings, guest components, fixtures and the built binary.

use ripcord::evaluation::{Evaluation, ParamValue};
use ripcord::runtime::{CacheDir, Plugin, PluginSource, Runtime, RuntimeSettings};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The deadline the hostile-plugin tests run under.
pub const TEST_DEADLINE: Duration = Duration::from_millis(200);
/// The memory cap the hostile-plugin tests run under.
pub const TEST_MEMORY_LIMIT: usize = 64 << 20;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A guest component compiled from `plugins/` by the build script, e.g. `hostile`.
pub fn guest(name: &str) -> PathBuf {
    Path::new(ripcord::GUEST_DIR).join(format!("{}.wasm", name.replace('-', "_")))
}

pub fn runtime() -> Runtime {
    Runtime::new(RuntimeSettings {
        deadline: TEST_DEADLINE,
        memory_limit: TEST_MEMORY_LIMIT,
        cache: CacheDir::Disabled,
        ..RuntimeSettings::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

pub fn load(runtime: &Runtime, source: &str) -> Plugin {
    let source: PluginSource = source.parse().unwrap_or_else(|e| match e {});
    runtime.load(&source).unwrap_or_else(|e| panic!("{e}"))
}

pub fn fixture(name: &str) -> Evaluation {
    let path = repo_root().join("examples/evaluations").join(name);
    ripcord::fixture::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

pub fn with_param(mut evaluation: Evaluation, name: &str, value: &str) -> Evaluation {
    evaluation.params.insert(name.to_string(), ParamValue::Text(value.to_string()));
    evaluation
}

/// Runs the built `ripcord` binary with a private compile cache.
pub fn ripcord(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ripcord"))
        .args(args)
        .env("RIPCORD_CACHE_DIR", cache)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ripcord: {e}"))
}

pub fn stdout_json(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ripcord failed ({}): {}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim().lines().count(), 1, "expected one JSON line, got:\n{stdout}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"))
}

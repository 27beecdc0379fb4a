//! Compiled plugins on disk, so a cold process only maps code in (`Component::deserialize_file`) instead of
//! compiling it. Entries are keyed by the plugin's SHA-256 and the engine's compatibility hash (wasmtime version
//! and every setting that affects code), written atomically, and never trusted blindly: wasmtime checks the
//! header, and an unusable entry is recompiled and replaced. A cache problem never fails a load. Entries shipped
//! with a deployment (`ripcord precompile`) are looked up first, in their own read-only directory.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Debug)]
pub(crate) struct CodeCache {
    /// Where compiled code is stored (none: compile on every load).
    dir: Option<PathBuf>,
    /// Shipped code, read first, never written.
    precompiled: Option<PathBuf>,
    engine_key: String,
}

impl CodeCache {
    pub(crate) fn new(dir: Option<PathBuf>, precompiled: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex(&hasher.0.finalize()[..8]);
        Self { dir, precompiled, engine_key }
    }

    /// Loads the component for `bytes` (whose SHA-256 is `sha256`): shipped code, else cached code, else compiled
    /// (and stored in the cache).
    pub(crate) fn load(&self, engine: &Engine, bytes: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let name = format!("{sha256}-{}.cwasm", self.engine_key);
        for dir in self.precompiled.iter().chain(&self.dir) {
            let path = dir.join(&name);
            if path.is_file() {
                match deserialize(engine, &path) {
                    Ok(component) => return Ok(component),
                    Err(error) => tracing::warn!(path = %path.display(), %error, "recompiling unusable cache entry"),
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Some(dir) = &self.dir
            && let Err(error) = store(dir, &dir.join(&name), &component)
        {
            tracing::warn!(dir = %dir.display(), %error, "cannot cache compiled plugin");
        }
        Ok(component)
    }
}

/// Writes `component`'s code to `path` in `dir` atomically (a temporary file renamed into place).
fn store(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let code = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, code)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

/// Maps a cache entry written by [`store`].
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file was produced by `Component::serialize` of this same engine configuration (the name carries
    // its compatibility hash) and renamed into place atomically; wasmtime validates the header and refuses code
    // from another version or configuration. The cache directory must be writable only by ripcord's user.
    unsafe { Component::deserialize_file(engine, path) }
}

/// SHA-256 of `bytes` as lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `Hash` output into SHA-256, giving a key that is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

//! Builds the guest workspace (`plugins/`) to wasm32-wasip2 components, so the built-in policies can be embedded
//! in the binary and the tests can load real plugins compiled from source.
//!
//! The guests build with a nested `cargo` into their own target directory under `OUT_DIR` (the outer build holds
//! the lock on the host's target directory). The wasm32-wasip2 target must be installed: `scripts/setup` does it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const GUEST_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    // The triple this binary is built for: plugins compiled ahead of time name it (runtime/settings.rs).
    println!("cargo:rustc-env=RIPCORD_HOST_TARGET={}", std::env::var("TARGET").unwrap_or_default());
    match build_guests() {
        Ok(dir) => {
            println!("cargo:rustc-env=RIPCORD_GUEST_DIR={}", dir.display());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn build_guests() -> Result<PathBuf, String> {
    let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.join("../..");
    let plugins = root.join("plugins");
    for watched in [plugins.join("Cargo.toml"), plugins.join("Cargo.lock"), root.join("wit")] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    for dir in ["sdk", "builtin", "examples", "hostile"] {
        println!("cargo:rerun-if-changed={}", plugins.join(dir).display());
    }
    let target_dir = PathBuf::from(var("OUT_DIR")?).join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--workspace", "--target", GUEST_TARGET, "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // Flags meant for the host build must not leak into the guest build.
    for leaked in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        command.env_remove(leaked);
    }
    let output = command.output().map_err(|e| format!("cannot run cargo to build the guest plugins: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("may not be installed") || stderr.contains("can't find crate for `core`") {
            format!("\nthe {GUEST_TARGET} target is missing: run `scripts/setup` or `rustup target add {GUEST_TARGET}`")
        } else {
            String::new()
        };
        return Err(format!("building the guest plugins in {} failed:\n{stderr}{hint}", plugins.display()));
    }
    let out = target_dir.join(GUEST_TARGET).join("release");
    check_exists(&out.join("error_rate.wasm"))?;
    Ok(out)
}

fn check_exists(path: &Path) -> Result<(), String> {
    if path.is_file() { Ok(()) } else { Err(format!("guest build did not produce {}", path.display())) }
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("cargo did not set {name}"))
}

//! C policies: bindings generated in-process with the `wit-bindgen-c` crate, compiled with clang for
//! wasm32-wasi (Debian's clang, lld and wasi-libc), and wrapped as a component with the `wit-component` crate and
//! the WASI preview1 reactor adapter from `wasi-preview1-component-adapter-provider` — no CLI to install beyond
//! clang.

use super::command::{find_tool, run};
use super::project::Project;
use super::{DevkitError, io};
use std::path::Path;
use std::process::Command;

const APT: &str =
    "install clang, lld and wasi-libc: `apt install clang lld wasi-libc libclang-rt-dev-wasm32` (Debian/Ubuntu)";

/// Writes the C bindings of world `policy` of `wit` into `dir` (`policy.h`, `policy.c`, `policy_component_type.o`).
pub fn bindings(wit: &Path, dir: &Path) -> Result<Vec<String>, DevkitError> {
    let invalid = |e: anyhow::Error| DevkitError::Invalid(format!("{}: {e:#}", wit.display()));
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(wit).map_err(invalid)?;
    let world = resolve.select_world(&[package], Some("policy")).map_err(invalid)?;
    let mut files = wit_bindgen_core::Files::default();
    let mut generator = wit_bindgen_c::Opts::default().build();
    generator.generate(&mut resolve, world, &mut files).map_err(invalid)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for (name, contents) in files.iter() {
        let path = dir.join(name);
        std::fs::write(&path, contents).map_err(io(&path))?;
        written.push(name.to_string());
    }
    Ok(written)
}

/// Builds the project's C policy into the component `output`.
pub fn build(project: &Project, wit: &Path, output: &Path) -> Result<String, DevkitError> {
    let clang =
        find_tool(project, "clang").ok_or_else(|| DevkitError::Missing { tool: "clang".into(), hint: APT.into() })?;
    // The bindings go into the project (`gen/`), where editors find `policy.h`; the object code into a temp dir.
    let generated = project.dir.join("gen");
    bindings(wit, &generated)?;
    let work = tempfile::tempdir().map_err(io(std::env::temp_dir()))?;
    let core = work.path().join("core.wasm");
    let mut command = Command::new(clang);
    command
        .args(["--target=wasm32-wasi", "-Oz", "-mexec-model=reactor", "-Wall", "-Werror"])
        .arg("-I")
        .arg(&generated)
        .arg(project.source("policy.c"))
        .arg(generated.join("policy.c"))
        .arg(generated.join("policy_component_type.o"))
        .arg("-o")
        .arg(&core);
    run(command, &project.dir).map_err(|e| match e {
        DevkitError::Failed { output, .. } if output.contains("wasm-ld") && output.contains("No such file") => {
            DevkitError::Missing { tool: "wasm-ld".into(), hint: APT.into() }
        }
        DevkitError::Failed { output, .. } if output.contains("stdlib.h") => {
            DevkitError::Missing { tool: "wasi-libc".into(), hint: APT.into() }
        }
        other => other,
    })?;
    let module = std::fs::read(&core).map_err(io(&core))?;
    let adapter = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.adapter("wasi_snapshot_preview1", adapter))
        .map(|e| e.validate(true))
        .and_then(|e| e.encode())
        .map_err(|e| DevkitError::Invalid(format!("cannot make a component of {}: {e:#}", core.display())))?;
    std::fs::write(output, component).map_err(io(output))?;
    Ok("clang --target=wasm32-wasi -Oz -mexec-model=reactor + wit-component (preview1 reactor adapter)".into())
}

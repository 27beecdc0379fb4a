//! Running a toolchain's programs: found in the project's tool folders or on PATH, run in a folder, a failure
//! carrying the program's output. Shared by the builds (`toolchain.rs`, `c.rs`) and the installs (`install.rs`).

use super::DevkitError;
use super::project::Project;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Finds `name` in the project's tool folders (`node_modules/.bin`, `.venv/bin`), in `$VIRTUAL_ENV/bin`, or on PATH.
pub(crate) fn find_tool(project: &Project, name: &str) -> Option<PathBuf> {
    let local = project.tool_dirs.iter().map(|d| d.join(name));
    let venv = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin").join(name));
    let path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    local.into_iter().chain(venv).chain(path).find(|p| p.is_file())
}

/// Runs `command` in `dir`, turning a failure into an error carrying its output.
pub(crate) fn run(mut command: Command, dir: &Path) -> Result<String, DevkitError> {
    let shown = format!("{command:?}");
    let output = command
        .current_dir(dir)
        .output()
        .map_err(|e| DevkitError::Failed { command: shown.clone(), output: e.to_string() })?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if output.status.success() { Ok(text) } else { Err(DevkitError::Failed { command: shown, output: text }) }
}

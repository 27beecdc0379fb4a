//! Building a policy project: each language's toolchain, found in the project (node_modules/.bin, .venv/bin) or on
//! PATH, run with the right arguments; a missing tool is an error saying how to install it.

use super::command::{find_tool, run};
use super::project::{JsEngine, Lang, Project};
use super::{DevkitError, io};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A built component.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub path: PathBuf,
    pub bytes: u64,
    pub seconds: f64,
    /// The command that built it, for people.
    pub tool: String,
}

pub(crate) const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The componentize-qjs version scaffolded projects pin.
pub(crate) const COMPONENTIZE_QJS_VERSION: &str = "0.4.5";
/// componentize-js loads the preview2 shim at run time without depending on it.
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0 @bytecodealliance/preview2-shim@0.25.0";

/// Builds `project` into `out` (default: the manifest's output).
pub fn build(project: &Project, out: Option<&Path>) -> Result<Built, DevkitError> {
    let output = out.map_or_else(|| project.output(), Path::to_path_buf);
    // Absolute, because the toolchains run inside the project folder.
    let output = std::path::absolute(&output).map_err(io(&output))?;
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let started = Instant::now();
    let wit = project.wit();
    if !wit.is_dir() {
        return Err(DevkitError::Invalid(format!(
            "{}: the WIT folder {} does not exist",
            project.dir.display(),
            wit.display()
        )));
    }
    let tool = match project.manifest.lang {
        Lang::Rust => rust(project, &output)?,
        Lang::Js => js(project, &wit, &output)?,
        Lang::Python => python(project, &wit, &output)?,
        Lang::C => super::c::build(project, &wit, &output)?,
    };
    let bytes = std::fs::metadata(&output).map_err(io(&output))?.len();
    Ok(Built { path: output, bytes, seconds: started.elapsed().as_secs_f64(), tool })
}

fn missing(tool: &str, hint: &str) -> DevkitError {
    DevkitError::Missing { tool: tool.to_string(), hint: hint.to_string() }
}

fn rust(project: &Project, output: &Path) -> Result<String, DevkitError> {
    let cargo = find_tool(project, "cargo").ok_or_else(|| missing("cargo", "install Rust with https://rustup.rs"))?;
    let mut command = Command::new(&cargo);
    command.args(["build", "--release", "--target", "wasm32-wasip2", "--message-format=json-render-diagnostics"]);
    let messages = run(command, &project.dir).map_err(|e| match e {
        DevkitError::Failed { output, .. }
            if output.contains("wasm32-wasip2") && output.contains("not be installed") =>
        {
            missing("the wasm32-wasip2 Rust target", "run `rustup target add wasm32-wasip2`")
        }
        other => other,
    })?;
    // The artifact's path, from cargo's own report (wherever the target directory is).
    let built = messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .rfind(|f| f.extension().is_some_and(|x| x == "wasm"))
        .ok_or_else(|| DevkitError::Invalid("cargo built no .wasm: is the crate a cdylib?".into()))?;
    std::fs::copy(&built, output).map_err(io(output))?;
    Ok(format!("cargo build --release --target wasm32-wasip2 ({})", built.display()))
}

fn js(project: &Project, wit: &Path, output: &Path) -> Result<String, DevkitError> {
    let source = project.source("policy.js");
    let engine = project.manifest.js_engine.unwrap_or_default();
    let (name, package) = js_tool(engine);
    let hint = format!(
        "run `npm install` in {} (its package.json pins it), or `npm install -g {package}`",
        project.dir.display()
    );
    let mut command = Command::new(find_tool(project, name).ok_or_else(|| missing(name, &hint))?);
    let flags = match engine {
        JsEngine::Quickjs => {
            command.arg("--wit").arg(wit).args(["--world", "policy", "--sync", "--js", &source, "--output"]);
            "--sync"
        }
        JsEngine::Spidermonkey => {
            // The default build imports wasi:http, which a policy neither needs nor gets.
            command.arg(&source).arg("--wit").arg(wit).args([
                "--world-name",
                "policy",
                "-d",
                "http",
                "-d",
                "fetch-event",
                "-o",
            ]);
            "-d http -d fetch-event"
        }
    };
    command.arg(output);
    run(command, &project.dir)?;
    Ok(format!("{name} {flags}"))
}

/// The componentizer of a JavaScript engine: its command and its npm package(s).
pub(crate) fn js_tool(engine: JsEngine) -> (&'static str, String) {
    match engine {
        JsEngine::Quickjs => ("componentize-qjs", format!("componentize-qjs@{COMPONENTIZE_QJS_VERSION}")),
        JsEngine::Spidermonkey => ("componentize-js", COMPONENTIZE_JS.to_string()),
    }
}

fn python(project: &Project, wit: &Path, output: &Path) -> Result<String, DevkitError> {
    let hint =
        format!("run `pip install {COMPONENTIZE_PY}` (in a virtual environment, e.g. {}/.venv)", project.dir.display());
    let tool = find_tool(project, "componentize-py").ok_or_else(|| missing("componentize-py", &hint))?;
    let module = project.source("app");
    let mut command = Command::new(tool);
    command.arg("-d").arg(wit).args(["-w", "policy", "componentize", &module, "-o"]).arg(output);
    // componentize-py writes __pycache__ next to the sources unless told otherwise.
    command.env("PYTHONDONTWRITEBYTECODE", "1");
    run(command, &project.dir)?;
    Ok(format!("componentize-py componentize {module}"))
}

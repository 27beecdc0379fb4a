//! Installing a project's own toolchain, as `cargo build` fetches dependencies: when the JavaScript or Python
//! componentizer is nowhere to be found but the project carries its recipe (`package.json`, `requirements.txt`),
//! `ripcord plugin build` installs it into the project (`node_modules/`, `.venv/`) from the package registries
//! first. Without the recipe or the package manager, the build's "not found" error says what to do.

use super::DevkitError;
use super::command::{find_tool, run};
use super::project::{Lang, Project};
use super::toolchain::js_tool;
use std::fmt;
use std::process::Command;

/// The commands that install a project's toolchain.
#[derive(Debug)]
pub struct Install {
    tool: &'static str,
    steps: Vec<Command>,
}

impl fmt::Display for Install {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps: Vec<String> = self.steps.iter().map(|c| format!("{c:?}").replace('"', "")).collect();
        write!(f, "{} ({})", self.tool, steps.join(" && "))
    }
}

/// What to install before building `project`, if its toolchain is missing and it can be installed here.
pub fn plan(project: &Project) -> Option<Install> {
    match project.manifest.lang {
        Lang::Js => {
            let (tool, _) = js_tool(project.manifest.js_engine.unwrap_or_default());
            let npm = find_tool(project, "npm")?;
            if find_tool(project, tool).is_some() || !project.dir.join("package.json").is_file() {
                return None;
            }
            let mut install = Command::new(npm);
            install.args(["install", "--no-audit", "--no-fund", "--loglevel=error"]);
            Some(Install { tool, steps: vec![install] })
        }
        Lang::Python => {
            let tool = "componentize-py";
            let python = find_tool(project, "python3")?;
            if find_tool(project, tool).is_some() || !project.dir.join("requirements.txt").is_file() {
                return None;
            }
            let mut venv = Command::new(python);
            venv.args(["-m", "venv", ".venv"]);
            let mut pip = Command::new(project.dir.join(".venv/bin/pip"));
            pip.args(["install", "--quiet", "--disable-pip-version-check", "-r", "requirements.txt"]);
            Some(Install { tool, steps: vec![venv, pip] })
        }
        Lang::Rust | Lang::C => None,
    }
}

impl Install {
    /// Runs the steps in the project folder.
    pub fn run(self, project: &Project) -> Result<(), DevkitError> {
        for step in self.steps {
            run(step, &project.dir)?;
        }
        Ok(())
    }
}

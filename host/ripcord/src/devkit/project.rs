//! A policy project: a folder with `ripcord-plugin.toml` naming the policy, its language, where its WIT is and
//! where the built component goes.

use super::{DevkitError, io};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The manifest file of a policy project.
pub const MANIFEST: &str = "ripcord-plugin.toml";

/// A language ripcord can build policies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Rust,
    Js,
    Python,
    C,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Js => "js",
            Self::Python => "python",
            Self::C => "c",
        }
    }
}

/// JavaScript engines a policy can be componentized with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsEngine {
    /// componentize-qjs: QuickJS, ~1.6 MB components, the cheaper per verdict.
    #[default]
    Quickjs,
    /// componentize-js: SpiderMonkey (StarlingMonkey), ~12 MB components.
    Spidermonkey,
}

/// `ripcord-plugin.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub lang: Lang,
    /// The built component, relative to the project (default `NAME.wasm`).
    pub output: Option<PathBuf>,
    /// The WIT folder of the contract, relative to the project (default `wit`).
    pub wit: Option<PathBuf>,
    /// The fixtures `ripcord plugin test` runs, relative to the project (default `fixtures`).
    pub fixtures: Option<PathBuf>,
    /// The policy's source: `policy.js` (js), `app` module (python), `policy.c` (c); unused for rust.
    pub source: Option<String>,
    /// js only.
    pub js_engine: Option<JsEngine>,
}

/// A project on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Folders searched for the toolchain before `$VIRTUAL_ENV/bin` and PATH: the project's own
    /// `node_modules/.bin` and `.venv/bin` to begin with.
    pub tool_dirs: Vec<PathBuf>,
}

impl Project {
    /// Reads the project in `dir`.
    pub fn open(dir: &Path) -> Result<Self, DevkitError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DevkitError::Invalid(format!(
                    "{} is not a policy project (no {MANIFEST}); create one with `ripcord plugin new NAME --lang LANG`",
                    dir.display()
                ))
            } else {
                io(&path)(e)
            }
        })?;
        let manifest: Manifest =
            toml::from_str(&text).map_err(|e| DevkitError::Invalid(format!("{}: {}", path.display(), e.message())))?;
        // Absolute, because the toolchains run inside the project folder.
        let dir = std::fs::canonicalize(dir).map_err(io(dir))?;
        let tool_dirs = vec![dir.join("node_modules/.bin"), dir.join(".venv/bin")];
        Ok(Self { dir, manifest, tool_dirs })
    }

    /// Where the built component goes.
    pub fn output(&self) -> PathBuf {
        self.dir
            .join(self.manifest.output.clone().unwrap_or_else(|| PathBuf::from(format!("{}.wasm", self.manifest.name))))
    }

    pub fn wit(&self) -> PathBuf {
        self.dir.join(self.manifest.wit.clone().unwrap_or_else(|| PathBuf::from("wit")))
    }

    pub fn fixtures(&self) -> PathBuf {
        self.dir.join(self.manifest.fixtures.clone().unwrap_or_else(|| PathBuf::from("fixtures")))
    }

    pub fn source(&self, default: &str) -> String {
        self.manifest.source.clone().unwrap_or_else(|| default.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) {
        std::fs::write(dir.join(MANIFEST), text).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_manifest_error_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write(dir.path(), "name = \"p\"\nlang = \"js\"\njs_engin = \"quickjs\"\n");
        let error = Project::open(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains(MANIFEST) && error.contains("js_engin"), "{error}");
        write(dir.path(), "name = \"p\"\nlang = \"cobol\"\n");
        let error = Project::open(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("cobol") && error.contains("rust"), "{error}");
    }

    #[test]
    fn defaults_are_relative_to_the_project() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write(dir.path(), "name = \"p\"\nlang = \"c\"\n");
        let project = Project::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(project.dir.is_absolute());
        assert_eq!(project.output(), project.dir.join("p.wasm"));
        assert_eq!((project.wit(), project.fixtures()), (project.dir.join("wit"), project.dir.join("fixtures")));
        assert_eq!(project.source("policy.c"), "policy.c");
        let missing = Project::open(&dir.path().join("nope")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(missing.contains("ripcord plugin new"), "{missing}");
    }
}

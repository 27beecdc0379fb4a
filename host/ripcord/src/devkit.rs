//! The plugin dev kit behind `ripcord plugin new | build | test`: scaffolds a policy project in Rust, JavaScript,
//! Python or C, drives the language's toolchain to build the component (saying what is missing and how to install
//! it), and runs a folder of fixtures against a plugin, comparing each verdict with the one the fixture expects.

mod c;
mod command;
mod install;
mod project;
mod scaffold;
mod toolchain;

pub use install::{Install, plan as install_plan};
pub use project::{JsEngine, Lang, MANIFEST, Manifest, Project};
pub use scaffold::scaffold;
pub use toolchain::{Built, build};

use std::path::PathBuf;

/// A dev-kit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DevkitError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    /// A toolchain the language needs is not installed: what is missing and how to install it.
    #[error("{tool} not found: {hint}")]
    Missing { tool: String, hint: String },
    /// The toolchain ran and failed.
    #[error("{command} failed:\n{output}")]
    Failed { command: String, output: String },
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DevkitError {
    let path = path.into();
    move |cause| DevkitError::Io { path, cause }
}

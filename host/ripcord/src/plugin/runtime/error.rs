//! Plugin failures. Every error names the plugin; the decision engine turns them into `inconclusive`.

use std::path::PathBuf;
use std::time::Duration;

/// A plugin that could not be loaded or did not give a usable answer.
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin}: {kind}")]
pub struct PluginError {
    /// The plugin's identity: its source, and its name and version once known.
    pub plugin: String,
    pub kind: PluginErrorKind,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum PluginErrorKind {
    #[error("cannot read {path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("unknown built-in policy `{name}`; the built-ins are {known}")]
    UnknownBuiltin { name: String, known: String },
    #[error("is not a valid WebAssembly component: {0}")]
    Compile(String),
    #[error("is not a ripcord policy: it exports no `ripcord:policy/evaluator` interface (its exports: {exports})")]
    NotAPolicy { exports: String },
    #[error("targets contract ripcord:policy@{found}, which this ripcord does not support (supported: {supported})")]
    UnsupportedContract { found: String, supported: String },
    #[error("cannot be linked: {0} (a policy may import only ripcord:policy and WASI 0.2 interfaces)")]
    Link(String),
    #[error("exceeded its deadline of {0:?} and was stopped")]
    Deadline(Duration),
    #[error("exceeded its memory limit of {limit} bytes (it asked for {requested} bytes)")]
    MemoryLimit { limit: usize, requested: usize },
    #[error("overflowed its stack")]
    StackOverflow,
    #[error("trapped: {message}{}", stderr_suffix(.stderr))]
    Trap { message: String, stderr: String },
    #[error("returned an error: {0}")]
    Policy(String),
    #[error("returned an invalid answer: {0}")]
    InvalidOutput(String),
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    #[error("handed the host more than {0} bytes in one call and was stopped")]
    TransferLimit(usize),
    #[error("stopped: the host failed while running it ({0})")]
    HostPanic(String),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!(" (stderr: {stderr})") }
}

impl PluginErrorKind {
    /// A short, stable name for the kind, for JSON output and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::UnknownBuiltin { .. } => "unknown-builtin",
            Self::Compile(_) => "compile",
            Self::NotAPolicy { .. } => "not-a-policy",
            Self::UnsupportedContract { .. } => "unsupported-contract",
            Self::Link(_) => "link",
            Self::Deadline(_) => "deadline",
            Self::MemoryLimit { .. } => "memory-limit",
            Self::StackOverflow => "stack-overflow",
            Self::Trap { .. } => "trap",
            Self::Policy(_) => "policy-error",
            Self::InvalidOutput(_) => "invalid-output",
            Self::Instantiate(_) => "instantiate",
            Self::TransferLimit(_) => "transfer-limit",
            Self::HostPanic(_) => "host-panic",
        }
    }
}

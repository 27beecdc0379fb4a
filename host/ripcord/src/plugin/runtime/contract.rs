//! Which version of the `ripcord:policy` contract a component implements, read from the versioned name of the
//! interface it exports (`ripcord:policy/evaluator@X.Y.Z`).

use super::error::PluginErrorKind;
use wasmtime::Engine;
use wasmtime::component::Component;

const EVALUATOR: &str = "ripcord:policy/evaluator@";

/// A contract version this host has bindings for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contract {
    V0_1_0,
    V0_2_0,
    V0_3_0,
}

impl Contract {
    /// Every supported version, oldest first.
    pub const SUPPORTED: [Contract; 3] = [Contract::V0_1_0, Contract::V0_2_0, Contract::V0_3_0];

    pub fn version(self) -> &'static str {
        match self {
            Self::V0_1_0 => "0.1.0",
            Self::V0_2_0 => "0.2.0",
            Self::V0_3_0 => "0.3.0",
        }
    }

    /// The full package name, e.g. `ripcord:policy@0.1.0`.
    pub fn package(self) -> String {
        format!("ripcord:policy@{}", self.version())
    }

    pub(crate) fn detect(engine: &Engine, component: &Component) -> Result<Self, PluginErrorKind> {
        let ty = component.component_type();
        let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
        let Some(found) = exports.iter().find_map(|name| name.strip_prefix(EVALUATOR)) else {
            let exports = if exports.is_empty() { "none".to_string() } else { exports.join(", ") };
            return Err(PluginErrorKind::NotAPolicy { exports });
        };
        Self::SUPPORTED.into_iter().find(|c| c.version() == found).ok_or_else(|| PluginErrorKind::UnsupportedContract {
            found: found.to_string(),
            supported: Self::SUPPORTED.map(|c| c.version()).join(", "),
        })
    }
}

//! # ripcord-policy: write ripcord rollback policies in Rust
//!
//! A ripcord policy is a WebAssembly component that implements the `ripcord:policy@0.2.0` contract
//! (`wit/since_v0.2.0/policy.wit`). This crate holds the generated bindings and the helpers that make a real
//! policy about thirty lines: parameters with declared defaults ([`Params`]), series by metric name and window
//! aggregation ([`MetricSeries`]), per-minute counts for the sequential tests ([`periods`]), report and check
//! builders ([`Report`], [`Checks`]), logging ([`log`]) and the host's native statistics ([`stats`]), including the
//! anytime-valid sequential tests.
//!
//! A complete policy is in `plugins/examples/error-ceiling/src/lib.rs` (and in the README): implement [`Policy`]
//! (`describe` and `evaluate`) for a type and export it with [`export_policy!`].
//!
//! Build with `cargo build --release --target wasm32-wasip2`: the `.wasm` in `target/wasm32-wasip2/release/` is
//! the component ripcord loads.

extern crate self as ripcord_policy;

mod params;
pub mod periods;
mod report;
mod series;

/// Bindings generated from the contract. Most policies need only the [`prelude`].
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.2.0",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "__export_policy_bindings",
        default_bindings_module: "::ripcord_policy::bindings",
        runtime_path: "::ripcord_policy::__wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

pub use bindings::exports::ripcord::policy::evaluator::Guest as Policy;
pub use bindings::ripcord::policy::stats;
pub use bindings::ripcord::policy::types::{
    Check, Evaluation, Finding, History, MetricKind, MetricSeries, Param, ParamSpec, ParamValue, Platform, Point,
    PolicyInfo, Report, Revision, Verdict, Window,
};
pub use params::{Params, format_duration, parse_duration};
pub use report::Checks;

/// Everything a policy usually needs, in one `use`.
pub mod prelude {
    pub use crate::log;
    pub use crate::stats;
    pub use crate::{
        Check, Checks, Evaluation, Finding, MetricKind, MetricSeries, ParamSpec, ParamValue, Params, Policy,
        PolicyInfo, Report, Revision, Verdict,
    };
}

/// Log messages to the host's log, tagged with the plugin's identity.
pub mod log {
    use crate::bindings::ripcord::policy::host::{LogLevel, log};

    pub fn debug(message: &str) {
        log(LogLevel::Debug, message);
    }
    pub fn info(message: &str) {
        log(LogLevel::Info, message);
    }
    pub fn warn(message: &str) {
        log(LogLevel::Warn, message);
    }
    pub fn error(message: &str) {
        log(LogLevel::Error, message);
    }
}

/// Exports a type implementing [`Policy`] as the component's `ripcord:policy/evaluator` interface.
#[macro_export]
macro_rules! export_policy {
    ($policy:ident) => {
        $crate::bindings::__export_policy_bindings!($policy with_types_in $crate::bindings);
    };
}

impl Evaluation {
    /// Indices of the last `n` windows (fewer when the evaluation has fewer), oldest first.
    pub fn last_windows(&self, n: usize) -> std::ops::Range<usize> {
        self.windows.len().saturating_sub(n)..self.windows.len()
    }
}

impl Revision {
    /// The series of metric `name`, if the platform reported it.
    pub fn series(&self, name: &str) -> Option<&MetricSeries> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The series of all `names`, or a reason naming the ones the platform did not report (absent metrics make
    /// a policy inconclusive, never zero).
    pub fn require<const N: usize>(&self, names: [&str; N]) -> Result<[&MetricSeries; N], String> {
        let found: Vec<&MetricSeries> = names.iter().filter_map(|n| self.series(n)).collect();
        found.try_into().map_err(|_| {
            let missing: Vec<&str> = names.iter().copied().filter(|n| self.series(n).is_none()).collect();
            format!("revision {} did not report {}", self.id, missing.join(" and "))
        })
    }
}

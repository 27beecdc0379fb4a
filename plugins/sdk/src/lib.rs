//! # ripcord-policy: write ripcord rollback policies in Rust
//!
//! A ripcord policy is a WebAssembly component that implements the `ripcord:policy@0.3.0` contract
//! (`wit/since_v0.3.0/policy.wit`). This crate holds the generated bindings and the helpers that make a real
//! policy about thirty lines: parameters with declared defaults ([`Params`]), series by metric name and window
//! aggregation ([`MetricSeries`]), per-minute counts for the sequential tests and change detectors ([`periods`]),
//! report and check builders ([`Report`], [`Checks`]), logging ([`log`]) and the host's native statistics
//! ([`stats`]), including the anytime-valid sequential tests and change detectors.
//!
//! A complete policy is in `plugins/examples/error-ceiling/src/lib.rs` (and in the book, docs/guides/policy-rust.md): implement [`Policy`]
//! (`describe` and `evaluate`; `latency_thresholds` when the policy counts slow requests) for a type and export it
//! with [`export_policy!`].
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
        path: "../../wit/since_v0.3.0",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "__export_policy_bindings",
        default_bindings_module: "::ripcord_policy::bindings",
        runtime_path: "::ripcord_policy::__wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

pub use bindings::ripcord::policy::stats;
pub use bindings::ripcord::policy::types::{
    Check, Evaluation, Finding, History, MetricKind, MetricSeries, Param, ParamSpec, ParamValue, Platform, Point,
    PolicyInfo, Report, Revision, ThresholdRequest, Verdict, Window,
};

/// Evaluation periods in a day (the metric period is a minute): the default horizon of a change detector.
pub const PERIODS_PER_DAY: u32 = 1440;

/// A ripcord policy: what it is, which latency thresholds it wants slow requests counted above, and its verdict.
pub trait Policy {
    /// Name, version, description, the metrics it needs and its parameters with their defaults.
    fn describe() -> PolicyInfo;

    /// The latency thresholds (whole milliseconds) to count slower requests above, per revision and period: the
    /// evaluation then has a `slow_requests_<T>ms` counter for each ([`Revision::slow_requests`]). None by default.
    fn latency_thresholds(request: ThresholdRequest) -> Result<Vec<u32>, String> {
        let _ = request;
        Ok(Vec::new())
    }

    /// The verdict on the candidate; an error is a policy failure (a bad parameter, impossible data).
    fn evaluate(evaluation: Evaluation) -> Result<Report, String>;
}
pub use params::{Params, format_duration, parse_duration};
pub use report::{Checks, evidence_text, since_text};

/// Everything a policy usually needs, in one `use`.
pub mod prelude {
    pub use crate::log;
    pub use crate::stats;
    pub use crate::{
        Check, Checks, Evaluation, Finding, MetricKind, MetricSeries, ParamSpec, ParamValue, Params, Policy,
        PolicyInfo, Report, Revision, ThresholdRequest, Verdict,
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
        #[doc(hidden)]
        #[derive(Debug)]
        pub struct __RipcordExport;

        impl $crate::bindings::exports::ripcord::policy::evaluator::Guest for __RipcordExport {
            fn describe() -> $crate::PolicyInfo {
                <$policy as $crate::Policy>::describe()
            }
            fn latency_thresholds(request: $crate::ThresholdRequest) -> Result<Vec<u32>, String> {
                <$policy as $crate::Policy>::latency_thresholds(request)
            }
            fn evaluate(evaluation: $crate::Evaluation) -> Result<$crate::Report, String> {
                <$policy as $crate::Policy>::evaluate(evaluation)
            }
        }

        $crate::bindings::__export_policy_bindings!(__RipcordExport with_types_in $crate::bindings);
    };
}

impl Evaluation {
    /// Indices of the last `n` windows (fewer when the evaluation has fewer), oldest first.
    pub fn last_windows(&self, n: usize) -> std::ops::Range<usize> {
        self.windows.len().saturating_sub(n)..self.windows.len()
    }

    /// Whether the windows reach back to the candidate's first traffic (then its first period is the first
    /// traffic, which a change detector weighs as the start of the release).
    pub fn from_first_traffic(&self) -> bool {
        self.deployed_at.is_some_and(|at| self.windows.first().is_some_and(|w| w.start <= at))
    }

    /// A change detector for this evaluation: `alpha` over a day of periods, from the first traffic when the
    /// windows reach back to it.
    pub fn detector(&self, alpha: f64) -> stats::Detector {
        stats::Detector { alpha, horizon: PERIODS_PER_DAY, from_first_traffic: self.from_first_traffic() }
    }
}

/// The name of the counter of requests slower than `threshold_ms` (`slow_requests_250ms`).
pub fn slow_requests_metric(threshold_ms: u32) -> String {
    format!("slow_requests_{threshold_ms}ms")
}

impl Revision {
    /// The series of metric `name`, if the platform reported it.
    pub fn series(&self, name: &str) -> Option<&MetricSeries> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The count of requests slower than `threshold_ms` per period, when the policy asked for it
    /// ([`Policy::latency_thresholds`]) and the platform reported it.
    pub fn slow_requests(&self, threshold_ms: u32) -> Option<&MetricSeries> {
        self.series(&slow_requests_metric(threshold_ms))
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

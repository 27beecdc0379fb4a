//! ripcord-sim: a deterministic, seedable model of a serverless platform (AWS Lambda today) with a virtual clock,
//! serving the real wire APIs on a loopback port — Lambda REST-JSON, CloudWatch GetMetricData in Smithy RPC v2
//! CBOR — so ripcord's real AWS provider code runs against it unchanged, in the demo and in tests.
//!
//! Time moves only when a caller advances it ([`Simulator::advance`], or `POST /_sim/advance`); every request
//! and allocation in between is simulated in order, so a scenario replays identically from its seed.

mod aws_protocols;
pub mod cloudrun;
mod cloudrun_api;
mod cloudwatch_api;
mod codedeploy_api;
mod control_api;
mod http;
pub mod lambda;
mod lambda_api;
pub mod metrics;
mod monitoring_api;
mod monitoring_filter;
mod rng;
mod runtime_api;
pub mod scenario;
mod server;
mod simulator;

pub use runtime_api::InvocationResult;
pub use server::Server;
pub use simulator::{ApiCall, ApiError, Interference, RateLimit, Settings, Simulator};

/// Formats epoch milliseconds as RFC 3339 with milliseconds.
pub fn format_time(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

/// Parses an RFC 3339 UTC timestamp to epoch milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let time = humantime::parse_rfc3339(text).map_err(|e| format!("invalid timestamp {text:?}: {e}"))?;
    time.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).map_err(|e| e.to_string())
}

/// Parses a duration such as `4m` or `30s` to milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration {text:?}: {e}"))
        .and_then(|d| i64::try_from(d.as_millis()).map_err(|_| format!("duration {text:?} is too long")))
}

//! ripcord rolls serverless deployments back safely. Policy plugins — WebAssembly components in any language —
//! judge a candidate revision against its baseline; ripcord prewarms and pins the last known good revision when
//! they say rollback.
//!
//! This crate is the host library behind the `ripcord` binary:
//! - [`evaluation`], [`verdict`], [`policy_info`]: the plain data that flows through a cycle;
//! - [`fixture`]: the evaluation JSON format plugin authors write;
//! - [`runtime`]: the sandboxed wasmtime host for policies;
//! - [`stats`]: the native statistics policies import;
//! - [`builtins`]: the embedded built-in policies.

mod approval;
pub mod audit;
pub mod builtins;
pub mod capacity;
pub mod clock;
pub mod concurrency;
pub mod config;
pub mod controller;
mod cycle;
pub mod decision;
pub mod deployment_cache;
pub mod devkit;
pub mod effect;
pub mod evaluation;
pub mod fixture;
pub mod function;
pub mod inputs;
pub mod notify;
pub mod policies;
pub mod policy_info;
pub mod provider;
mod pull;
mod recovery;
pub mod report;
mod rollback;
pub mod runtime;
pub mod stats;
pub mod telemetry;
pub mod text;
pub mod time;
pub mod verdict;

/// Where the build script put the guest components compiled from `plugins/` (built-ins and test plugins).
#[doc(hidden)]
pub const GUEST_DIR: &str = env!("RIPCORD_GUEST_DIR");

//! ripcord rolls serverless deployments back safely. Policy plugins — WebAssembly components in any language —
//! judge a candidate revision against its baseline; ripcord prewarms and pins the last known good revision when
//! they say rollback.
//!
//! This crate is the host library behind the `ripcord` binary. Its folders are the stages of one cycle, each
//! depending only on the ones listed before it (`docs/architecture.md` maps them):
//! - [`model`]: the plain data every stage shares (evaluation, verdict, the evaluation JSON format, time, text);
//! - [`plugin`]: the sandboxed wasmtime host for policies, the native statistics, the built-in policies;
//! - [`config`]: `guards.toml`, checked as a whole before anything runs;
//! - [`provider`]: the platform clients (Lambda + CloudWatch, Cloud Run + Monitoring, CodeDeploy), paced within
//!   the platforms' quotas — the only code that touches the network;
//! - [`observe`]: evaluation windows and evaluations from what the providers read; the deployments remembered;
//! - [`judge`]: the policy set and the pure decision;
//! - [`record`]: the audit log, notifications, the report, the cycle's outcome and ripcord's own metrics;
//! - [`act`]: the per-guard context and the steps that change a platform: rollback, capacity, recovery, pull,
//!   approval;
//! - [`cycle`]: the controller and each guard's cycle, where the stages meet.
//!
//! Beside the cycle: [`function`] (the Lambda runtime mode's events and hooks) and [`devkit`] (`ripcord plugin`).

pub mod act;
pub mod config;
pub mod cycle;
pub mod devkit;
pub mod function;
pub mod judge;
pub mod model;
pub mod observe;
pub mod plugin;
pub mod provider;
pub mod record;

/// Where the build script put the guest components compiled from `plugins/` (built-ins and test plugins).
#[doc(hidden)]
pub const GUEST_DIR: &str = env!("RIPCORD_GUEST_DIR");

//! End-to-end tests: real plugins compiled from `plugins/`, the runtime, and the `ripcord` binary.
//! One test binary, a module per area.

mod approvals;
mod audit_log;
mod book;
mod builtins;
mod cache;
mod change_events;
mod cli;
mod cloudrun;
mod config;
mod conformance;
mod containment;
mod contract;
mod dashboard;
mod demo;
mod examples;
mod fleet;
mod function;
mod hostile;
mod isolation;
mod lambda;
mod late_onset;
mod layout;
mod lifecycle;
mod moto;
mod oidc;
mod oncall;
mod packaging;
mod platform_realism;
mod polyglot;
mod quotas;
mod report;
mod server;
mod statistics;
mod support;
mod telemetry;

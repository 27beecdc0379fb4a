//! End-to-end tests: real plugins compiled from `plugins/`, the runtime, and the `ripcord` binary.
//! One test binary, a module per area.

mod builtins;
mod cache;
mod cli;
mod cloudrun;
mod config;
mod contract;
mod demo;
mod function;
mod hostile;
mod lambda;
mod moto;
mod polyglot;
mod support;

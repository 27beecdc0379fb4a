//! The plugin host: the sandboxed wasmtime runtime that loads policy components and calls them ([`runtime`], one
//! binding module per frozen contract version), the statistics every language imports natively ([`stats`]), and the
//! built-in policies compiled into the binary ([`builtins`]). The only code that touches wasmtime. Depends on
//! [`crate::model`] only; the configuration names plugins by its [`runtime::PluginSource`].

pub mod builtins;
pub mod runtime;
pub mod stats;

//! The store state a plugin runs in: WASI with an empty context (no files, no environment, no arguments, no
//! network; stdout and stderr captured), a memory cap, and a budget for log messages. A fresh sandbox is made for
//! every call, so nothing leaks between guards.

use super::settings::{MAX_LOG_MESSAGE_BYTES, MAX_LOG_MESSAGES, MAX_OUTPUT_BYTES};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Severity of a plugin's log message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

pub(crate) struct Sandbox {
    /// The plugin's identity, attached to everything it logs.
    pub(crate) plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: MemoryCap,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    logged: u32,
    dropped: u32,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("plugin", &self.plugin).finish_non_exhaustive()
    }
}

impl Sandbox {
    pub(crate) fn new(plugin: Arc<str>, memory_limit: usize) -> Self {
        let (stdout, stderr) = (MemoryOutputPipe::new(MAX_OUTPUT_BYTES), MemoryOutputPipe::new(MAX_OUTPUT_BYTES));
        // Nothing is granted: no preopened directory, no environment variable, no argument, no socket (TCP, UDP
        // and name lookup are off by default in wasmtime-wasi and every address is refused).
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            plugin,
            wasi,
            table: ResourceTable::new(),
            limits: MemoryCap::new(memory_limit),
            stdout,
            stderr,
            logged: 0,
            dropped: 0,
        }
    }

    /// Records a message from the plugin in the host's log, within the per-call budget.
    pub(crate) fn log(&mut self, level: LogLevel, message: &str) {
        if self.logged >= MAX_LOG_MESSAGES {
            self.dropped += 1;
            return;
        }
        self.logged += 1;
        let message = truncate(message, MAX_LOG_MESSAGE_BYTES);
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(target: "ripcord::plugin", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "ripcord::plugin", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "ripcord::plugin", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "ripcord::plugin", plugin, "{message}"),
            LogLevel::Error => tracing::error!(target: "ripcord::plugin", plugin, "{message}"),
        }
    }

    /// Moves what the plugin printed into the log and reports dropped messages. Returns the tail of stderr,
    /// which explains most traps (a panic message, an uncaught exception).
    pub(crate) fn flush(&mut self) -> String {
        let plugin = &*self.plugin;
        if self.dropped > 0 {
            tracing::warn!(target: "ripcord::plugin", plugin, dropped = self.dropped, "log budget exceeded");
        }
        let stdout = String::from_utf8_lossy(&self.stdout.contents()).into_owned();
        let stderr = String::from_utf8_lossy(&self.stderr.contents()).into_owned();
        for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(target: "ripcord::plugin", plugin, stream = "stdout", "{}", truncate(line, MAX_LOG_MESSAGE_BYTES));
        }
        for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
            tracing::warn!(target: "ripcord::plugin", plugin, stream = "stderr", "{}", truncate(line, MAX_LOG_MESSAGE_BYTES));
        }
        let tail_start = stderr.trim_end().len().saturating_sub(512);
        let tail_start = (tail_start..stderr.len()).find(|i| stderr.is_char_boundary(*i)).unwrap_or(stderr.len());
        stderr[tail_start..].trim().to_string()
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// `StoreLimits` with a record of the growth it refused, so a memory-cap trap is reported as such.
pub(crate) struct MemoryCap {
    limits: StoreLimits,
    limit: usize,
    pub(crate) refused: Option<usize>,
}

impl MemoryCap {
    fn new(limit: usize) -> Self {
        let limits = StoreLimitsBuilder::new().memory_size(limit).trap_on_grow_failure(true).build();
        Self { limits, limit, refused: None }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let decision = self.limits.memory_growing(current, desired, maximum);
        if desired > self.limit && !matches!(decision, Ok(true)) {
            self.refused = Some(desired);
        }
        decision
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }
}

/// At most `max` bytes of `text`, cut at a character boundary, with a marker when cut.
pub(crate) fn truncate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let end = (0..=max).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    format!("{}… [{} bytes cut]", &text[..end], text.len() - end).into()
}

//! The store state a plugin runs in: WASI with an empty context (no files, no environment, no arguments, no
//! network; stdout and stderr captured), a memory cap, and a budget for log messages. A fresh sandbox is made for
//! every call, so nothing leaks between guards.

use super::settings::{MAX_LOG_MESSAGE_BYTES, MAX_LOG_MESSAGES, MAX_OUTPUT_BYTES};
use crate::model::text::truncate;
use bytes::{Bytes, BytesMut};
use std::sync::{Arc, Mutex};
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
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
    stdout: CapturedOutput,
    stderr: CapturedOutput,
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
        let (stdout, stderr) = (CapturedOutput::default(), CapturedOutput::default());
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

    /// Moves what the plugin printed into the log (debug level, attributed to the plugin) and reports dropped
    /// messages. Returns the tail of stderr, which explains most traps (a panic message, an uncaught exception).
    pub(crate) fn flush(&mut self) -> String {
        let plugin = &*self.plugin;
        if self.dropped > 0 {
            tracing::warn!(target: "ripcord::plugin", plugin, dropped = self.dropped, "log budget exceeded");
        }
        let (stdout, stdout_cut) = self.stdout.take();
        let (stderr, stderr_cut) = self.stderr.take();
        for (stream, text, cut) in [("stdout", &stdout, stdout_cut), ("stderr", &stderr, stderr_cut)] {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                tracing::debug!(target: "ripcord::plugin", plugin, stream, "{}", truncate(line, MAX_LOG_MESSAGE_BYTES));
            }
            if cut > 0 {
                tracing::debug!(target: "ripcord::plugin", plugin, stream, dropped_bytes = cut, "output beyond the {MAX_OUTPUT_BYTES} bytes kept was dropped");
            }
        }
        let tail_start = stderr.trim_end().len().saturating_sub(512);
        let tail_start = (tail_start..stderr.len()).find(|i| stderr.is_char_boundary(*i)).unwrap_or(stderr.len());
        stderr[tail_start..].trim().to_string()
    }
}

/// A plugin's stdout or stderr: the first [`MAX_OUTPUT_BYTES`] are kept for the log, the rest is counted and
/// dropped. Writing never fails, so a plugin that prints a lot is not broken by it (a full pipe would make
/// `println!` panic and `print()` raise).
#[derive(Debug, Clone, Default)]
struct CapturedOutput(Arc<Mutex<Captured>>);

#[derive(Debug, Default)]
struct Captured {
    kept: BytesMut,
    dropped: usize,
}

impl CapturedOutput {
    fn append(&self, bytes: &[u8]) {
        let mut captured = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let room = MAX_OUTPUT_BYTES.saturating_sub(captured.kept.len()).min(bytes.len());
        captured.kept.extend_from_slice(&bytes[..room]);
        captured.dropped += bytes.len() - room;
    }

    /// The text kept (lossily decoded) and the number of bytes dropped.
    fn take(&self) -> (String, usize) {
        let mut captured = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let kept = std::mem::take(&mut captured.kept);
        (String::from_utf8_lossy(&kept).into_owned(), std::mem::take(&mut captured.dropped))
    }
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(MAX_OUTPUT_BYTES)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.append(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
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

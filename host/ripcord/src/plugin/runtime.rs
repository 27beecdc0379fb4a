//! The policy runtime: the only code that touches wasmtime. It loads plugins (compiled once, cached on disk,
//! pre-linked), and runs each `describe`/`evaluate` call in a fresh, capability-free store with a deadline and a
//! memory cap, turning every way a plugin can fail into a [`PluginError`] that names it.

mod cache;
mod contract;
mod error;
mod sandbox;
mod settings;
mod since_v0_1_0;
mod since_v0_2_0;
mod v0_1_0;
mod v0_2_0;
mod v0_3_0;

pub use contract::Contract;
pub use error::{PluginError, PluginErrorKind};
pub use settings::{
    CacheDir, DEFAULT_DEADLINE, DEFAULT_MAX_INSTANCES, DEFAULT_MEMORY_LIMIT, EPOCH_TICK, MAX_CHECKS,
    MAX_LOG_MESSAGE_BYTES, MAX_LOG_MESSAGES, MAX_NAME_BYTES, MAX_OUTPUT_BYTES, MAX_REASON_BYTES, MAX_THRESHOLDS,
    MAX_TRANSFER_BYTES, MAX_WASM_STACK, RuntimeSettings, portable_target,
};

use crate::model::evaluation::{Evaluation, ThresholdRequest};
use crate::model::policy_info::PolicyInfo;
use crate::model::verdict::PolicyReport;
use crate::plugin::builtins;
use cache::CodeCache;
use sandbox::Sandbox;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store, Trap};

/// Where a plugin comes from: `builtin:NAME` or a path to a `.wasm` component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    Builtin(String),
    File(PathBuf),
}

impl FromStr for PluginSource {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.strip_prefix("builtin:") {
            Some(name) => Self::Builtin(name.to_string()),
            None => Self::File(PathBuf::from(s)),
        })
    }
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin(name) => write!(f, "builtin:{name}"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the plugin runtime: {0}")]
pub struct RuntimeError(String);

/// A loaded, pre-linked plugin, ready for any number of evaluations (each in a fresh instance).
pub struct Plugin {
    source: String,
    identity: Arc<str>,
    sha256: String,
    contract: Contract,
    info: PolicyInfo,
    bound: Bound,
}

enum Bound {
    V0_1_0(v0_1_0::Bound),
    V0_2_0(v0_2_0::Bound),
    V0_3_0(v0_3_0::Bound),
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin").field("identity", &self.identity).field("contract", &self.contract).finish()
    }
}

impl Plugin {
    /// Where it was loaded from, as given (`builtin:error-rate`, a path).
    pub fn source(&self) -> &str {
        &self.source
    }
    /// Name, version and source, as used in every message about the plugin.
    pub fn identity(&self) -> &str {
        &self.identity
    }
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    pub fn contract(&self) -> Contract {
        self.contract
    }
    pub fn info(&self) -> &PolicyInfo {
        &self.info
    }
}

/// Runs policy plugins. One per process; cheap to share across threads.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Sandbox>,
    settings: RuntimeSettings,
    cache: CodeCache,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(settings: RuntimeSettings) -> Result<Self, RuntimeError> {
        let fail = |e: wasmtime::Error| RuntimeError(format!("{e:#}"));
        let engine = settings.engine().map_err(fail)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(fail)?;
        v0_1_0::add_to_linker(&mut linker).map_err(fail)?;
        v0_2_0::add_to_linker(&mut linker).map_err(fail)?;
        v0_3_0::add_to_linker(&mut linker).map_err(fail)?;
        start_epoch_ticker(&engine).map_err(|e| RuntimeError(format!("cannot start the epoch thread: {e}")))?;
        let cache = CodeCache::new(settings.cache.resolve(), settings.precompiled.clone(), &engine);
        Ok(Self { engine, linker, settings, cache })
    }

    pub fn settings(&self) -> &RuntimeSettings {
        &self.settings
    }

    /// Loads a plugin from a built-in name or a file.
    pub fn load(&self, source: &PluginSource) -> Result<Plugin, PluginError> {
        let fail = |kind| PluginError { plugin: source.to_string(), kind };
        match source {
            PluginSource::Builtin(name) => {
                let wasm = builtins::find(name).ok_or_else(|| {
                    fail(PluginErrorKind::UnknownBuiltin { name: name.clone(), known: builtins::names().join(", ") })
                })?;
                self.load_bytes(&source.to_string(), wasm)
            }
            PluginSource::File(path) => {
                let wasm =
                    std::fs::read(path).map_err(|e| fail(PluginErrorKind::Read { path: path.clone(), cause: e }))?;
                self.load_bytes(&source.to_string(), &wasm)
            }
        }
    }

    /// Loads a plugin from the bytes of a component; `source` names it in messages.
    pub fn load_bytes(&self, source: &str, wasm: &[u8]) -> Result<Plugin, PluginError> {
        let fail = |kind| PluginError { plugin: source.to_string(), kind };
        if wasm.is_empty() {
            return Err(fail(PluginErrorKind::Compile("the file is empty: it is not WebAssembly".into())));
        }
        if !wasm.starts_with(b"\0asm") {
            let start: String = wasm.iter().take(4).map(|b| format!("{b:02x}")).collect();
            let message =
                format!("the file is not WebAssembly (it starts with bytes {start}, not 0061736d: \"\\0asm\")");
            return Err(fail(PluginErrorKind::Compile(message)));
        }
        if wasm.get(4..8) == Some(&[1, 0, 0, 0]) {
            let message = "the file is a core WebAssembly module, not a component: a policy is a component that \
                           implements the ripcord:policy contract (build it with `ripcord plugin build`, or for \
                           wasm32-wasip2)";
            return Err(fail(PluginErrorKind::Compile(message.to_string())));
        }
        let sha256 = cache::sha256_hex(wasm);
        let component = self.cache.load(&self.engine, wasm, &sha256).map_err(|e| {
            let message = crate::model::text::one_line(&format!("{e:#}"));
            // The pooling allocator refuses a memory whose minimum is past the cap before anything runs.
            if message.contains("does not fit in pooling allocator") {
                let limit = self.settings.memory_limit;
                fail(PluginErrorKind::Instantiate(format!(
                    "its memory starts larger than the plugin memory limit of {limit} bytes ({} MiB): {message}",
                    limit >> 20
                )))
            } else {
                fail(PluginErrorKind::Compile(message))
            }
        })?;
        let contract = Contract::detect(&self.engine, &component).map_err(fail)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| fail(PluginErrorKind::Link(format!("{e:#}"))))?;
        let link = |e: wasmtime::Error| fail(PluginErrorKind::Link(format!("{e:#}")));
        let bound = match contract {
            Contract::V0_1_0 => Bound::V0_1_0(v0_1_0::Bound::new(pre).map_err(link)?),
            Contract::V0_2_0 => Bound::V0_2_0(v0_2_0::Bound::new(pre).map_err(link)?),
            Contract::V0_3_0 => Bound::V0_3_0(v0_3_0::Bound::new(pre).map_err(link)?),
        };
        let loading: Arc<str> = source.into();
        let info = self.call(&loading, |store| match &bound {
            Bound::V0_1_0(b) => b.describe(store),
            Bound::V0_2_0(b) => b.describe(store),
            Bound::V0_3_0(b) => b.describe(store),
        })?;
        validate_info(&info).map_err(|m| fail(PluginErrorKind::InvalidOutput(m)))?;
        let identity = format!("`{}@{}` ({source})", info.name, info.version).into();
        Ok(Plugin { source: source.to_string(), identity, sha256, contract, info, bound })
    }

    /// Asks the plugin for a verdict, in a fresh instance.
    pub fn evaluate(&self, plugin: &Plugin, evaluation: &Evaluation) -> Result<PolicyReport, PluginError> {
        let answer = self.call(&plugin.identity, |store| match &plugin.bound {
            Bound::V0_1_0(b) => b.evaluate(store, evaluation),
            Bound::V0_2_0(b) => b.evaluate(store, evaluation),
            Bound::V0_3_0(b) => b.evaluate(store, evaluation),
        })?;
        let fail = |kind| PluginError { plugin: plugin.identity.to_string(), kind };
        let report = answer.map_err(|message| fail(PluginErrorKind::Policy(message)))?;
        validate_report(&report).map_err(|m| fail(PluginErrorKind::InvalidOutput(m)))?;
        Ok(report)
    }

    /// Asks the plugin which latency thresholds it wants slow requests counted above (contract 0.3.0; earlier
    /// versions want none), in a fresh instance. The answer is checked: at most [`MAX_THRESHOLDS`], each at
    /// least 1 ms; sorted, without repeats.
    pub fn latency_thresholds(&self, plugin: &Plugin, request: &ThresholdRequest) -> Result<Vec<u32>, PluginError> {
        let Bound::V0_3_0(bound) = &plugin.bound else { return Ok(Vec::new()) };
        let answer = self.call(&plugin.identity, |store| bound.latency_thresholds(store, request))?;
        let fail = |kind| PluginError { plugin: plugin.identity.to_string(), kind };
        let mut thresholds = answer.map_err(|message| fail(PluginErrorKind::Policy(message)))?;
        if thresholds.len() > MAX_THRESHOLDS || thresholds.contains(&0) {
            let message = format!(
                "latency-thresholds gave {} thresholds ({}); at most {MAX_THRESHOLDS} are allowed, each at least 1 ms",
                thresholds.len(),
                crate::model::text::truncate(&format!("{thresholds:?}"), 80)
            );
            return Err(fail(PluginErrorKind::InvalidOutput(message)));
        }
        thresholds.sort_unstable();
        thresholds.dedup();
        Ok(thresholds)
    }

    /// Runs `call` in a fresh sandboxed store and classifies any failure.
    ///
    /// Blocking: async code calls the runtime from a blocking thread (`tokio::task::spawn_blocking`), never from
    /// an async task — WASI's synchronous bindings drive a plugin's I/O (a `print`) on the caller's tokio runtime.
    /// Should the host panic while a plugin runs, the panic is the plugin's error, not the process's end.
    fn call<R>(
        &self,
        identity: &Arc<str>,
        call: impl FnOnce(&mut Store<Sandbox>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let mut store = Store::new(&self.engine, Sandbox::new(identity.clone(), self.settings.memory_limit));
        store.limiter(|sandbox| &mut sandbox.limits);
        store.set_epoch_deadline(self.settings.deadline_ticks());
        store.epoch_deadline_trap();
        store.set_hostcall_fuel(MAX_TRANSFER_BYTES);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(&mut store)));
        let stderr = store.data_mut().flush();
        let fail = |kind| PluginError { plugin: identity.to_string(), kind };
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(fail(self.classify(&error, store.data(), stderr))),
            Err(panic) => Err(fail(PluginErrorKind::HostPanic(panic_message(&*panic)))),
        }
    }

    fn classify(&self, error: &wasmtime::Error, sandbox: &Sandbox, stderr: String) -> PluginErrorKind {
        if let Some(requested) = sandbox.limits.refused {
            return PluginErrorKind::MemoryLimit { limit: sandbox.limits.limit(), requested };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => PluginErrorKind::Deadline(self.settings.deadline),
            Some(Trap::StackOverflow) => PluginErrorKind::StackOverflow,
            Some(trap) => PluginErrorKind::Trap { message: trap.to_string(), stderr },
            // wasmtime's own words when a crossing carries more than the hostcall fuel allows.
            None if format!("{error:#}").contains("too much data is being copied between the host and the guest") => {
                PluginErrorKind::TransferLimit(MAX_TRANSFER_BYTES)
            }
            None => PluginErrorKind::Trap { message: format!("{error:#}"), stderr },
        }
    }
}

/// The text of a panic payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new().name("ripcord-epoch".into()).spawn(move || {
        loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        }
    })?;
    Ok(())
}

fn validate_report(report: &PolicyReport) -> Result<(), String> {
    if report.reason.len() > MAX_REASON_BYTES {
        return Err(format!("reason is {} bytes, more than the {MAX_REASON_BYTES} allowed", report.reason.len()));
    }
    if report.checks.len() > MAX_CHECKS {
        return Err(format!("{} checks, more than the {MAX_CHECKS} allowed", report.checks.len()));
    }
    if let Some(check) = report.checks.iter().find(|c| c.name.len() > MAX_NAME_BYTES) {
        return Err(format!("a check name is {} bytes, more than the {MAX_NAME_BYTES} allowed", check.name.len()));
    }
    Ok(())
}

fn validate_info(info: &PolicyInfo) -> Result<(), String> {
    let name_ok = |n: &str| !n.is_empty() && n.len() <= MAX_NAME_BYTES;
    if !name_ok(&info.name) || !name_ok(&info.version) {
        return Err(format!(
            "describe() gave name {:?} and version {:?}; both must be 1 to {MAX_NAME_BYTES} bytes",
            crate::model::text::truncate(&info.name, 64),
            crate::model::text::truncate(&info.version, 64)
        ));
    }
    if info.description.len() > MAX_REASON_BYTES
        || info.metrics.len() > MAX_CHECKS
        || info.parameters.len() > MAX_CHECKS
    {
        return Err("describe() gave an oversized description, metric list or parameter list".to_string());
    }
    Ok(())
}

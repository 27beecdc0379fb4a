//! The one place the wasmtime `Engine` is configured, with named defaults for every limit a plugin lives under.

use std::path::PathBuf;
use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Wall-clock time one `describe` or `evaluate` call may take.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(250);
/// How often the epoch advances; a deadline is enforced to within one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Largest linear memory a plugin instance may grow to.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;
/// Plugin instances alive at once (evaluations running in parallel).
pub const DEFAULT_MAX_INSTANCES: u32 = 64;
/// Core instances, memories and tables one component may hold (interpreted guests link several modules).
const PER_COMPONENT_CORE_INSTANCES: u32 = 32;
const PER_COMPONENT_MEMORIES: u32 = 4;
const PER_COMPONENT_TABLES: u32 = 4;
/// Elements of one table (interpreted guests have large function tables).
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Bytes of each linear memory (and table) reset in place between instances instead of being returned to the
/// kernel: a fresh instance per evaluation then costs no page faults or TLB shootdowns for the pages a policy
/// typically touches. With Linux's PAGEMAP_SCAN (6.7+) only the dirty pages are reset.
const KEEP_RESIDENT_MEMORY: usize = 2 << 20;
const KEEP_RESIDENT_TABLE: usize = 64 << 10;
/// Native stack a plugin may use; deeper recursion traps with "call stack exhausted".
pub const MAX_WASM_STACK: usize = 512 << 10;
/// Limits on what a plugin may hand back or write.
pub const MAX_REASON_BYTES: usize = 64 << 10;
pub const MAX_CHECKS: usize = 1024;
/// Most latency thresholds one policy may ask slow requests counted above (contract 0.3.0): each is a query per
/// revision on Lambda.
pub const MAX_THRESHOLDS: usize = 8;
pub const MAX_NAME_BYTES: usize = 256;
pub const MAX_LOG_MESSAGES: u32 = 100;
pub const MAX_LOG_MESSAGE_BYTES: usize = 4 << 10;
/// Bytes of stdout and stderr kept per call for the log; more is counted and dropped.
pub const MAX_OUTPUT_BYTES: usize = 64 << 10;
/// Bytes a plugin may hand the host in one crossing — an answer, a log message, a list of samples. wasmtime
/// checks it while lifting, before it copies anything, so a plugin cannot make the host copy (or spend time on)
/// more than this, whatever it returns. Generous for a real answer: a 64 KiB reason and 1024 checks are ~0.4 MiB.
pub const MAX_TRANSFER_BYTES: usize = 4 << 20;

/// Where compiled plugins are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheDir {
    /// `$RIPCORD_CACHE_DIR`, else `$XDG_CACHE_HOME/ripcord`, else `$HOME/.cache/ripcord`, else the temp dir.
    Default,
    At(PathBuf),
    /// Compile on every load.
    Disabled,
}

impl CacheDir {
    pub fn resolve(&self) -> Option<PathBuf> {
        match self {
            Self::Disabled => None,
            Self::At(dir) => Some(dir.clone()),
            Self::Default => Some(default_cache_dir()),
        }
    }
}

fn default_cache_dir() -> PathBuf {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("RIPCORD_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("ripcord")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("ripcord")))
        .unwrap_or_else(|| std::env::temp_dir().join("ripcord-cache"))
}

/// Limits and caching for the plugin runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSettings {
    pub deadline: Duration,
    pub memory_limit: usize,
    pub max_instances: u32,
    pub cache: CacheDir,
    /// Code compiled ahead of time for this architecture (`ripcord precompile`, shipped in a deployment package),
    /// read before the cache and never written. When set, code is compiled for the architecture's baseline CPU
    /// instead of this machine's features, so that what a build machine compiled is valid on any machine of the
    /// architecture (a Lambda function's host CPU is not known in advance).
    pub precompiled: Option<PathBuf>,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            deadline: DEFAULT_DEADLINE,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            max_instances: DEFAULT_MAX_INSTANCES,
            cache: CacheDir::Default,
            precompiled: None,
        }
    }
}

impl RuntimeSettings {
    /// Epoch ticks for the deadline: one extra so a plugin always gets at least the full deadline.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_micros().max(1);
        (self.deadline.as_micros().div_ceil(tick) as u64).max(1) + 1
    }

    /// Builds the engine: component model, pooling allocator, epoch interruption.
    pub(crate) fn engine(&self) -> wasmtime::Result<Engine> {
        let instances = self.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(instances)
            .total_core_instances(instances * PER_COMPONENT_CORE_INSTANCES)
            .max_core_instances_per_component(PER_COMPONENT_CORE_INSTANCES)
            .total_memories(instances * PER_COMPONENT_MEMORIES)
            .max_memories_per_component(PER_COMPONENT_MEMORIES)
            .total_tables(instances * PER_COMPONENT_TABLES)
            .max_tables_per_component(PER_COMPONENT_TABLES)
            // Fiber stacks serve only async calls, which ripcord does not make; the default 1,000 guard-paged
            // stacks cost a thousand mprotect calls at every start (a tenth of a warm start).
            .total_stacks(instances)
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_memory_size(self.memory_limit)
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
            .table_keep_resident(KEEP_RESIDENT_TABLE)
            .pagemap_scan(Enabled::Auto);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if self.precompiled.is_some() {
            // Naming the target turns off the detection of this machine's CPU features.
            config.target(portable_target())?;
        }
        Engine::new(&config)
    }
}

/// The target this binary was built for (e.g. `x86_64-unknown-linux-gnu`); code compiled for it names no CPU
/// features beyond the architecture's baseline.
pub fn portable_target() -> &'static str {
    env!("RIPCORD_HOST_TARGET")
}

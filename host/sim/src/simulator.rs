//! The simulator: platform state behind a lock, a virtual clock, the request generator, and the record of every
//! simulated request and every API call. The HTTP server and in-process callers (the demo, tests) both drive it.

use crate::lambda::{Alias, Function, PcStatus, Provisioned, RequestRecord};
use crate::rng::Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// An API call the simulator served, for tests that assert the order of operations.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiCall {
    pub at_ms: i64,
    pub operation: String,
    pub function: String,
    pub detail: String,
    /// HTTP status the simulator answered with.
    pub status: u16,
}

/// An error the simulator answers an API call with, in the shape the protocol expects.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_string(), message: message.into() }
    }
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::new(404, "ResourceNotFoundException", what)
    }
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameterValueException", message)
    }
}

/// A fault injected into the API itself: the next `remaining` calls of `operation` fail with `error`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFault {
    pub operation: String,
    pub remaining: u32,
    pub error: ApiError,
}

/// An external change applied just before the next call of an operation, e.g. a deploy tool moving an alias
/// while ripcord is rolling back (so ripcord's RevisionId is stale).
#[derive(Debug, Clone, PartialEq)]
pub struct Interference {
    pub operation: String,
    pub function: String,
    pub alias: String,
    pub version: u32,
    pub routing: Option<(u32, f64)>,
}

/// Settings of a simulated account.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub region: String,
    pub account: String,
    /// Idle time after which an ordinary execution environment is reaped.
    pub reap_after_ms: i64,
    /// Time provisioned concurrency takes to become READY.
    pub provisioned_allocation_ms: i64,
    /// Most datapoints one GetMetricData response carries before paging with NextToken.
    pub max_datapoints: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            reap_after_ms: 5 * 60_000,
            provisioned_allocation_ms: 30_000,
            max_datapoints: 100_800,
        }
    }
}

pub(crate) struct State {
    pub(crate) now_ms: i64,
    pub(crate) rng: Rng,
    pub(crate) settings: Settings,
    pub(crate) functions: BTreeMap<String, Function>,
    pub(crate) requests: Vec<RequestRecord>,
    pub(crate) api_log: Vec<ApiCall>,
    pub(crate) api_faults: Vec<ApiFault>,
    pub(crate) interference: Vec<Interference>,
    /// Next arrival time of each function's traffic.
    next_arrival: BTreeMap<String, f64>,
    revision_counter: u64,
}

/// A simulated serverless platform. Cheap to clone: clones share the same state.
#[derive(Clone)]
pub struct Simulator {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator").field("now_ms", &self.now_ms()).finish_non_exhaustive()
    }
}

impl Simulator {
    /// An empty platform at `start_ms`, seeded for reproducible traffic.
    pub fn new(start_ms: i64, seed: u64, settings: Settings) -> Self {
        let state = State {
            now_ms: start_ms,
            rng: Rng::new(seed),
            settings,
            functions: BTreeMap::new(),
            requests: Vec::new(),
            api_log: Vec::new(),
            api_faults: Vec::new(),
            interference: Vec::new(),
            next_arrival: BTreeMap::new(),
            revision_counter: 0,
        };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the model half-updated in a way later calls rely on, so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Virtual time now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.lock().now_ms
    }

    pub fn settings(&self) -> Settings {
        self.lock().settings.clone()
    }

    /// Adds a function (replacing one of the same name).
    pub fn add_function(&self, mut function: Function) {
        let mut state = self.lock();
        for alias in function.aliases.values_mut() {
            alias.revision_id = state.next_revision_id();
        }
        state.functions.insert(function.name.clone(), function);
    }

    /// A copy of a function's state.
    pub fn function(&self, name: &str) -> Option<Function> {
        self.lock().functions.get(name).cloned()
    }

    /// Moves virtual time forward by `ms`, simulating every request and allocation in between.
    pub fn advance(&self, ms: i64) {
        let mut state = self.lock();
        let target = state.now_ms + ms.max(0);
        state.run_until(target);
    }

    /// Every simulated request in `[from_ms, until_ms)` of `function`.
    pub fn requests(&self, function: &str, from_ms: i64, until_ms: i64) -> Vec<RequestRecord> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.function == function && r.at_ms >= from_ms && r.at_ms < until_ms)
            .cloned()
            .collect()
    }

    /// Every API call served so far.
    pub fn api_log(&self) -> Vec<ApiCall> {
        self.lock().api_log.clone()
    }

    /// Makes the next `count` calls of `operation` fail with `error`.
    pub fn inject_api_fault(&self, operation: &str, count: u32, error: ApiError) {
        self.lock().api_faults.push(ApiFault { operation: operation.to_string(), remaining: count, error });
    }

    /// Applies an external alias change just before the next call of `interference.operation`.
    pub fn interfere(&self, interference: Interference) {
        self.lock().interference.push(interference);
    }

    /// Points an alias elsewhere directly, as a deploy tool would (changes its RevisionId).
    pub fn set_alias(
        &self,
        function: &str,
        alias: &str,
        version: u32,
        routing: Option<(u32, f64)>,
    ) -> Result<(), ApiError> {
        let mut state = self.lock();
        state.set_alias(function, alias, version, routing)
    }
}

impl State {
    pub(crate) fn next_revision_id(&mut self) -> String {
        self.revision_counter += 1;
        let n = self.revision_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.rng.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            n >> 32,
            (n >> 16) & 0xffff,
            n & 0xfff,
            self.revision_counter & 0xfff,
            self.revision_counter
        )
    }

    pub(crate) fn set_alias(
        &mut self,
        function: &str,
        alias: &str,
        version: u32,
        routing: Option<(u32, f64)>,
    ) -> Result<(), ApiError> {
        let revision = self.next_revision_id();
        let f = self
            .functions
            .get_mut(function)
            .ok_or_else(|| ApiError::not_found(format!("Function not found: {function}")))?;
        let a = f.aliases.get_mut(alias).ok_or_else(|| ApiError::not_found(format!("Alias not found: {alias}")))?;
        a.version = version;
        a.routing = routing;
        a.revision_id = revision;
        Ok(())
    }

    /// Simulates everything up to `target`.
    pub(crate) fn run_until(&mut self, target: i64) {
        let reap = self.settings.reap_after_ms;
        loop {
            // The earliest pending arrival across functions with traffic.
            let next = self
                .functions
                .values()
                .filter_map(|f| f.traffic.as_ref().map(|t| (f.name.clone(), t.rps)))
                .filter(|(_, rps)| *rps > 0.0)
                .map(|(name, rps)| {
                    let at = *self.next_arrival.entry(name.clone()).or_insert(self.now_ms as f64 + 1000.0 / rps / 2.0);
                    (at, name, rps)
                })
                .min_by(|a, b| a.0.total_cmp(&b.0));
            let Some((at, name, rps)) = next.filter(|(at, _, _)| (*at as i64) < target) else {
                break;
            };
            let at_ms = at as i64;
            self.now_ms = self.now_ms.max(at_ms);
            let gap = self.rng.exponential(1000.0 / rps);
            self.next_arrival.insert(name.clone(), at + gap);
            let Some(function) = self.functions.get_mut(&name) else { continue };
            function.settle_provisioned(at_ms);
            let Some(alias) = function.traffic.as_ref().map(|t| t.alias.clone()) else { continue };
            if let Some(version) = function.route(&alias, &mut self.rng) {
                let record = function.execute(at_ms, Some(&alias), version, &mut self.rng, reap);
                self.requests.push(record);
            }
        }
        self.now_ms = target.max(self.now_ms);
        let now = self.now_ms;
        for function in self.functions.values_mut() {
            function.settle_provisioned(now);
        }
    }

    /// The function named by a name or ARN, with the qualifier an ARN may carry.
    pub(crate) fn function_mut(&mut self, name_or_arn: &str) -> Result<&mut Function, ApiError> {
        let name = function_name(name_or_arn).0;
        self.functions.get_mut(name).ok_or_else(|| {
            ApiError::not_found(format!(
                "Function not found: arn:aws:lambda:{}:{}:function:{name}",
                self.settings.region, self.settings.account
            ))
        })
    }

    pub(crate) fn function_arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:function:{name}", self.settings.region, self.settings.account)
    }

    /// Consumes an injected API fault for `operation`, if any.
    pub(crate) fn take_api_fault(&mut self, operation: &str) -> Option<ApiError> {
        let fault = self.api_faults.iter_mut().find(|f| f.operation == operation && f.remaining > 0)?;
        fault.remaining -= 1;
        Some(fault.error.clone())
    }

    /// Applies a pending external change scheduled before `operation`.
    pub(crate) fn apply_interference(&mut self, operation: &str) {
        if let Some(index) = self.interference.iter().position(|i| i.operation == operation) {
            let change = self.interference.remove(index);
            let _ = self.set_alias(&change.function, &change.alias, change.version, change.routing);
        }
    }

    pub(crate) fn log_call(&mut self, operation: &str, function: &str, detail: String, status: u16) {
        let at_ms = self.now_ms;
        self.api_log.push(ApiCall {
            at_ms,
            operation: operation.to_string(),
            function: function.to_string(),
            detail,
            status,
        });
    }

    pub(crate) fn pc_ready(config: &Provisioned) -> bool {
        config.status == PcStatus::Ready
    }
}

/// Splits `name`, `name:qualifier` or a function ARN into the name and the qualifier.
pub(crate) fn function_name(name_or_arn: &str) -> (&str, Option<&str>) {
    let rest = name_or_arn
        .strip_prefix("arn:")
        .map_or(name_or_arn, |_| name_or_arn.split(":function:").nth(1).unwrap_or(name_or_arn));
    match rest.split_once(':') {
        Some((name, qualifier)) => (name, Some(qualifier)),
        None => (rest, None),
    }
}

/// Reads an alias's current state.
pub(crate) fn alias_of<'a>(function: &'a Function, name: &str) -> Result<&'a Alias, ApiError> {
    function
        .aliases
        .get(name)
        .ok_or_else(|| ApiError::not_found(format!("Cannot find alias arn: {}:{name}", function.name)))
}

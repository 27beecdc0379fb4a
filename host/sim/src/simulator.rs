//! The simulator: platform state behind a lock, a virtual clock, the request generator, and the record of every
//! simulated request and every API call. The HTTP server and in-process callers (the demo, tests) both drive it.

use crate::cloudrun::{RunRequest, RunService, Startup};
use crate::lambda::{Alias, Daily, Function, PcStatus, Provisioned, RequestRecord};
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

/// A rate limit on API operations, as the real services enforce them (Lambda: about 15 requests a second per
/// control-plane API; Cloud Run Admin: so many reads a minute, all read methods together): a token bucket
/// refilled in real time (clients back off in real time), holding one second of calls; a call finding it empty is
/// refused with `error` (HTTP 429) and not carried out.
#[derive(Debug, Clone)]
pub struct RateLimit {
    /// The limit's name: the operation it limits, or the quota a group of operations shares.
    pub operation: String,
    /// The operations drawing on it.
    pub operations: Vec<String>,
    pub per_second: f64,
    pub error: ApiError,
    /// Whether each region has its own bucket (Cloud Run Admin's quotas are per region).
    pub per_region: bool,
    /// The buckets, by region ("" when not per region): tokens and when they were last refilled.
    buckets: std::collections::HashMap<String, (f64, std::time::Instant)>,
    /// Tokens a new bucket starts with.
    initial: f64,
}

impl RateLimit {
    pub fn new(operation: &str, per_second: f64, error: ApiError) -> Self {
        Self::shared(operation, &[operation], per_second, error)
    }

    /// A limit that refuses every call of `operation` until it is lifted (`limit_rate` with a rate of 0 on it).
    pub fn refusing(operation: &str, error: ApiError) -> Self {
        Self { initial: 0.0, ..Self::new(operation, 0.002, error) }
    }

    /// The same limit, kept per region.
    pub fn per_region(self) -> Self {
        Self { per_region: true, ..self }
    }

    /// A limit named `name` that `operations` draw on together.
    pub fn shared(name: &str, operations: &[&str], per_second: f64, error: ApiError) -> Self {
        let per_second = per_second.max(0.001);
        Self {
            operation: name.to_string(),
            operations: operations.iter().map(|o| o.to_string()).collect(),
            per_second,
            error,
            per_region: false,
            buckets: std::collections::HashMap::new(),
            initial: per_second.max(1.0),
        }
    }

    /// The platforms' published default quotas (2026), for every operation the simulator serves: Lambda's
    /// control plane 15 a second per API (GetFunction 100), CloudWatch GetMetricData 50 and ListMetrics 25 a second,
    /// Cloud Run Admin 1,000 reads and 180 writes a minute, Cloud Monitoring 6,000 queries a minute.
    pub fn published() -> Vec<Self> {
        let lambda = ApiError::new(429, "TooManyRequestsException", "Rate exceeded");
        let cloudwatch = ApiError::new(400, "Throttling", "Rate exceeded");
        let google =
            |what: &str| ApiError::new(429, "RESOURCE_EXHAUSTED", format!("Quota exceeded for quota metric '{what}'"));
        let mut limits: Vec<Self> = [
            "GetAlias",
            "ListAliases",
            "UpdateAlias",
            "ListTags",
            "TagResource",
            "UntagResource",
            "GetProvisionedConcurrencyConfig",
            "PutProvisionedConcurrencyConfig",
            "DeleteProvisionedConcurrencyConfig",
            "ListProvisionedConcurrencyConfigs",
            "ListVersionsByFunction",
            "GetFunctionConfiguration",
            "ListFunctions",
        ]
        .iter()
        .map(|operation| Self::new(operation, 15.0, lambda.clone()))
        .collect();
        limits.push(Self::new("GetFunction", 100.0, lambda));
        limits.push(Self::new("GetMetricData", 50.0, cloudwatch.clone()));
        limits.push(Self::new("ListMetrics", 25.0, cloudwatch));
        let reads = ["ListServices", "GetService", "ListRevisions", "GetRevision", "GetOperation"];
        let per_minute = |name, operations: &[&str], quota: f64, what| {
            Self::shared(name, operations, quota / 60.0, google(what)).per_region()
        };
        limits.push(per_minute(
            "run.googleapis.com/read_requests",
            &reads,
            1_000.0,
            "Read requests per minute per region",
        ));
        let writes = ["UpdateService"];
        limits.push(per_minute(
            "run.googleapis.com/write_requests",
            &writes,
            180.0,
            "Write requests per minute per region",
        ));
        let queries = ["ListTimeSeries"];
        limits.push(Self::shared(
            "monitoring.googleapis.com/read_requests",
            &queries,
            6_000.0 / 60.0,
            google("Time series queries"),
        ));
        limits
    }

    /// Takes a token of `region`'s bucket (the one bucket when the limit is not per region), or says the call is
    /// refused.
    fn admit(&mut self, region: &str) -> bool {
        let now = std::time::Instant::now();
        let key = if self.per_region { region.to_string() } else { String::new() };
        let (per_second, initial) = (self.per_second, self.initial);
        let (tokens, refilled) = self.buckets.entry(key).or_insert((initial, now));
        let refill = now.duration_since(*refilled).as_secs_f64() * per_second;
        *tokens = (*tokens + refill).min(per_second.max(1.0));
        *refilled = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A fault injected into the API itself: the next `remaining` calls of `operation` fail with `error`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFault {
    pub operation: String,
    pub remaining: u32,
    pub error: ApiError,
}

/// A stall injected into the API: the next `remaining` calls of `operation` are served (their effect applies),
/// but the answer is held back for `ms` real milliseconds — long enough for a test to kill the caller between a
/// change taking effect and the caller learning of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiStall {
    pub operation: String,
    pub remaining: u32,
    pub ms: u64,
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

/// A span `[from_ms, until_ms)` in which the platform publishes no metrics for one revision: the metrics APIs
/// answer 200 with no datapoints for it (a Lambda version, or a Cloud Run revision).
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub resource: String,
    pub revision: String,
    pub from_ms: i64,
    pub until_ms: i64,
}

/// A deploy tool's change at a time: an alias moved (Lambda) or a traffic split set (Cloud Run).
#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    pub at_ms: i64,
    pub change: DeployChange,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeployChange {
    Alias { function: String, alias: String, version: u32, routing: Option<(u32, f64)> },
    Traffic { service: String, traffic: Vec<crate::cloudrun::TrafficTarget> },
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
    /// Cloud Run: how many times an operation reports `done: false` before completing.
    pub operation_polls: u32,
    /// Cloud Run: virtual time after which a reconciliation completes even if nobody polls its operation.
    pub reconcile_ms: i64,
    /// Cloud Monitoring: most time series one ListTimeSeries page carries, on top of the API's own limit of
    /// 100,000 points a page (a knob for tests of paging; unlimited by default, as in the API).
    pub max_series_per_page: usize,
    /// How long after a request its metrics are published (CloudWatch, Monitoring): the newest minutes arrive
    /// late and partial.
    pub publication_delay_ms: i64,
    /// Whether every API enforces its published default quota (`quotas = "published"`; [`RateLimit::published`]).
    pub published_quotas: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            reap_after_ms: 5 * 60_000,
            provisioned_allocation_ms: 30_000,
            max_datapoints: 100_800,
            operation_polls: 2,
            reconcile_ms: 10_000,
            max_series_per_page: usize::MAX,
            publication_delay_ms: 0,
            published_quotas: false,
        }
    }
}

pub(crate) struct State {
    pub(crate) now_ms: i64,
    pub(crate) rng: Rng,
    pub(crate) settings: Settings,
    pub(crate) functions: BTreeMap<String, Function>,
    pub(crate) requests: crate::lambda::RequestLog,
    pub(crate) api_log: Vec<ApiCall>,
    pub(crate) api_faults: Vec<ApiFault>,
    pub(crate) api_stalls: Vec<ApiStall>,
    pub(crate) rate_limits: Vec<RateLimit>,
    /// The last ListTimeSeries queries computed, by their parameters and virtual time, for their next pages.
    pub(crate) monitoring_queries: Vec<(String, std::sync::Arc<Vec<serde_json::Value>>)>,
    pub(crate) interference: Vec<Interference>,
    /// Cloud Run services by full name (`projects/P/locations/L/services/S`).
    pub(crate) services: BTreeMap<String, RunService>,
    pub(crate) run_requests: Vec<RunRequest>,
    pub(crate) startups: Vec<Startup>,
    /// `(minute, service, revision, instances)` samples for `container/instance_count`.
    pub(crate) instance_samples: Vec<(i64, String, String, usize)>,
    /// Operations that ended, by name: `Ok(service name)` or `Err(message)`.
    pub(crate) finished_operations: BTreeMap<String, Result<String, String>>,
    /// Cloud Run: external traffic changes applied just before the next call of an operation.
    pub(crate) service_interference: Vec<(String, String, Vec<crate::cloudrun::TrafficTarget>)>,
    /// Cloud Run: fail the next N reconciliations with this message.
    pub(crate) failing_operations: Vec<(u32, String)>,
    /// Lambda Runtime API: events for `ripcord function` and its answers.
    pub(crate) invocations: crate::runtime_api::Invocations,
    /// CodeDeploy lifecycle hook executions and the statuses reported.
    pub(crate) hooks: crate::codedeploy_api::Hooks,
    /// The server's own endpoint, for the URLs the APIs hand out (tag URLs).
    pub(crate) endpoint: Option<String>,
    /// Spans in which a revision's metrics are missing.
    pub(crate) gaps: Vec<Gap>,
    /// Deploys to apply when their time comes, in time order.
    pub(crate) deploys: std::collections::VecDeque<Deploy>,
    /// Next arrival time of each function's and service's traffic.
    next_arrival: BTreeMap<String, f64>,
    revision_counter: u64,
}

/// The next arrival of one traffic source (an index into the step's sources), ordered by time, then source.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: f64,
    source: usize,
}

impl PartialEq for Arrival {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Arrival {}

impl PartialOrd for Arrival {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Arrival {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.total_cmp(&other.at).then(self.source.cmp(&other.source))
    }
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
        let rate_limits = if settings.published_quotas { RateLimit::published() } else { Vec::new() };
        let state = State {
            now_ms: start_ms,
            rng: Rng::new(seed),
            settings,
            functions: BTreeMap::new(),
            requests: Default::default(),
            api_log: Vec::new(),
            api_faults: Vec::new(),
            api_stalls: Vec::new(),
            rate_limits,
            monitoring_queries: Vec::new(),
            invocations: Default::default(),
            hooks: Default::default(),
            interference: Vec::new(),
            services: BTreeMap::new(),
            run_requests: Vec::new(),
            startups: Vec::new(),
            instance_samples: Vec::new(),
            finished_operations: BTreeMap::new(),
            failing_operations: Vec::new(),
            service_interference: Vec::new(),
            endpoint: None,
            gaps: Vec::new(),
            deploys: std::collections::VecDeque::new(),
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

    /// Adds a Cloud Run service (replacing one of the same name); its split serves at once.
    pub fn add_service(&self, mut service: RunService) {
        let mut state = self.lock();
        let now = state.now_ms;
        service.statuses = service.traffic.clone();
        service.etag = state.next_etag();
        let mut startups = Vec::new();
        service.keep_min_instances(now, &mut startups);
        state.startups.extend(startups);
        state.services.insert(service.full_name(), service);
    }

    /// A copy of a service's state, by short or full name.
    pub fn service(&self, name: &str) -> Option<RunService> {
        let state = self.lock();
        state.services.get(name).or_else(|| state.services.values().find(|s| s.name == name)).cloned()
    }

    /// Every Cloud Run request to `service` in `[from_ms, until_ms)`.
    pub fn run_requests(&self, service: &str, from_ms: i64, until_ms: i64) -> Vec<RunRequest> {
        self.lock()
            .run_requests
            .iter()
            .filter(|r| r.service == service && r.at_ms >= from_ms && r.at_ms < until_ms)
            .cloned()
            .collect()
    }

    /// Makes the next `count` Cloud Run reconciliations end in an error with `message`.
    pub fn fail_operations(&self, count: u32, message: &str) {
        self.lock().failing_operations.push((count, message.to_string()));
    }

    /// Changes `service`'s split (as a deploy tool would) just before the next call of `operation`, so a caller's
    /// etag goes stale.
    pub fn interfere_service(&self, operation: &str, service: &str, traffic: Vec<crate::cloudrun::TrafficTarget>) {
        self.lock().service_interference.push((operation.to_string(), service.to_string(), traffic));
    }

    /// Sets a service's serving split directly, as a deploy would (new generation and etag).
    pub fn set_traffic(&self, service: &str, traffic: Vec<crate::cloudrun::TrafficTarget>) -> Result<(), ApiError> {
        self.lock().set_traffic(service, traffic)
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

    /// Advances virtual time to `to_ms`, if it is not there yet: how concurrent waits overlap (each waiter asks for
    /// its own end; the first to ask moves the clock, the others find it already there).
    pub fn advance_to(&self, to_ms: i64) {
        let mut state = self.lock();
        if to_ms > state.now_ms {
            state.run_until(to_ms);
        }
    }

    /// Every simulated request in `[from_ms, until_ms)` of `function`.
    pub fn requests(&self, function: &str, from_ms: i64, until_ms: i64) -> Vec<RequestRecord> {
        self.lock().requests.window(Some(function), from_ms, until_ms).cloned().collect()
    }

    /// Every API call served so far.
    pub fn api_log(&self) -> Vec<ApiCall> {
        self.lock().api_log.clone()
    }

    /// Makes the next `count` calls of `operation` fail with `error`.
    pub fn inject_api_fault(&self, operation: &str, count: u32, error: ApiError) {
        self.lock().api_faults.push(ApiFault { operation: operation.to_string(), remaining: count, error });
    }

    /// Limits the rate of the limit's operations (replacing earlier limits on them); a rate of 0 or less removes
    /// the limit.
    pub fn limit_rate(&self, limit: RateLimit) {
        let mut state = self.lock();
        state
            .rate_limits
            .retain(|l| l.operation != limit.operation && !l.operations.iter().any(|o| limit.operations.contains(o)));
        if limit.per_second > 0.001 {
            state.rate_limits.push(limit);
        }
    }

    /// Holds back the answers of the next `count` calls of `operation` for `ms` real milliseconds.
    pub fn inject_api_stall(&self, operation: &str, count: u32, ms: u64) {
        self.lock().api_stalls.push(ApiStall { operation: operation.to_string(), remaining: count, ms });
    }

    /// Applies an external alias change just before the next call of `interference.operation`.
    pub fn interfere(&self, interference: Interference) {
        self.lock().interference.push(interference);
    }

    /// Schedules deploys (applied when virtual time reaches them).
    pub fn schedule_deploys(&self, deploys: impl IntoIterator<Item = Deploy>) {
        let mut state = self.lock();
        state.deploys.extend(deploys);
        state.deploys.make_contiguous().sort_by_key(|d| d.at_ms);
    }

    /// Adds spans in which a revision's metrics are missing.
    pub fn add_gaps(&self, gaps: impl IntoIterator<Item = Gap>) {
        self.lock().gaps.extend(gaps);
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
    pub(crate) fn set_traffic(
        &mut self,
        service: &str,
        traffic: Vec<crate::cloudrun::TrafficTarget>,
    ) -> Result<(), ApiError> {
        let etag = self.next_etag();
        let s = self
            .services
            .values_mut()
            .find(|s| s.name == service || s.full_name() == service)
            .ok_or_else(|| ApiError::not_found(format!("service {service}")))?;
        s.traffic = traffic.clone();
        s.statuses = traffic;
        s.generation += 1;
        s.observed_generation = s.generation;
        s.etag = etag;
        Ok(())
    }

    /// Applies a pending external traffic change scheduled before `operation` on a service.
    pub(crate) fn apply_service_interference(&mut self, operation: &str) {
        if let Some(index) = self.service_interference.iter().position(|(op, _, _)| op == operation) {
            let (_, service, traffic) = self.service_interference.remove(index);
            let _ = self.set_traffic(&service, traffic);
        }
    }

    pub(crate) fn next_etag(&mut self) -> String {
        self.revision_counter += 1;
        format!("\"{:016x}\"", self.revision_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5bd1_e995)
    }

    /// An AWS request id (`x-amzn-RequestId`) for the call about to be answered: unique per call, drawn from the
    /// API log's length so it takes nothing from the simulation's random stream.
    pub(crate) fn request_id(&self) -> String {
        uuid_text((self.api_log.len() as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15), 0xa00)
    }

    pub(crate) fn next_revision_id(&mut self) -> String {
        self.revision_counter += 1;
        let n = self.revision_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.rng.next_u64();
        uuid_text(n, 0x800 | (self.revision_counter & 0xfff))
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

    /// Simulates everything up to `target`: user requests in arrival order, provisioned-concurrency allocations,
    /// reconciliations that are due, min instances, and a per-minute sample of Cloud Run instance counts.
    pub(crate) fn run_until(&mut self, target: i64) {
        let reap = self.settings.reap_after_ms;
        loop {
            self.apply_due_deploys();
            let next_minute = (self.now_ms.div_euclid(60_000) + 1) * 60_000;
            let step = next_minute.min(target);
            // A deploy due before the next step ends the arrivals there, so traffic after it is routed anew.
            let deploy = self.deploys.front().map(|d| d.at_ms.max(self.now_ms + 1)).filter(|at| *at < step);
            self.arrivals_before(deploy.unwrap_or(step), reap);
            match deploy {
                Some(at) => self.now_ms = at,
                None if next_minute < target => {
                    self.now_ms = next_minute;
                    self.settle_services();
                    self.sample_instances();
                }
                None => break,
            }
        }
        self.now_ms = target.max(self.now_ms);
        self.apply_due_deploys();
        let now = self.now_ms;
        for function in self.functions.values_mut() {
            function.settle_provisioned(now);
        }
        self.settle_services();
    }

    /// Applies the deploys whose time has come (a deploy that names something missing is logged and dropped).
    fn apply_due_deploys(&mut self) {
        while self.deploys.front().is_some_and(|d| d.at_ms <= self.now_ms) {
            let Some(deploy) = self.deploys.pop_front() else { break };
            let applied = match deploy.change {
                DeployChange::Alias { function, alias, version, routing } => {
                    self.set_alias(&function, &alias, version, routing)
                }
                DeployChange::Traffic { service, traffic } => self.set_traffic(&service, traffic),
            };
            if let Err(error) = applied {
                tracing::warn!(at_ms = deploy.at_ms, error = %error.message, "a scenario deploy could not be applied");
            }
        }
    }

    /// Whether the platform has published the metrics of a request of `revision` of `resource` (a function or
    /// service name) made at `at_ms`: after the publication delay, outside any gap.
    pub(crate) fn published(&self, resource: &str, revision: &str, at_ms: i64) -> bool {
        at_ms + self.settings.publication_delay_ms <= self.now_ms
            && !self
                .gaps
                .iter()
                .any(|g| g.resource == resource && g.revision == revision && at_ms >= g.from_ms && at_ms < g.until_ms)
    }

    /// Serves every user request that arrives before `target`, in arrival order across functions and services:
    /// a heap of each source's next arrival, so a step costs O(requests · log sources) (the rates are read once,
    /// at the step's start; a step is at most a minute).
    fn arrivals_before(&mut self, target: i64, reap: i64) {
        let sources: Vec<(String, f64)> = self
            .functions
            .values()
            .filter_map(|f| {
                let t = f.traffic.as_ref()?;
                Some((format!("function:{}", f.name), Daily::rate(t.daily, t.rps, self.now_ms)))
            })
            .chain(
                self.services
                    .values()
                    .map(|s| (format!("service:{}", s.full_name()), Daily::rate(s.daily, s.rps, self.now_ms))),
            )
            .filter(|(_, rps)| *rps > 0.0)
            .collect();
        let now = self.now_ms as f64;
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<Arrival>> = sources
            .iter()
            .enumerate()
            .map(|(source, (name, rps))| {
                let at = *self.next_arrival.entry(name.clone()).or_insert(now + 1000.0 / rps / 2.0);
                std::cmp::Reverse(Arrival { at, source })
            })
            .collect();
        while let Some(std::cmp::Reverse(next)) = heap.peek().copied() {
            if (next.at as i64) >= target {
                break;
            }
            heap.pop();
            let (name, rps) = &sources[next.source];
            let at = self.arrive(next.at, name, *rps, reap);
            heap.push(std::cmp::Reverse(Arrival { at, source: next.source }));
        }
    }

    /// Serves one request of `source` arriving at `at` and draws the source's next arrival, which it returns.
    fn arrive(&mut self, at: f64, source: &str, rps: f64, reap: i64) -> f64 {
        let at_ms = at as i64;
        self.now_ms = self.now_ms.max(at_ms);
        let next = at + self.rng.exponential(1000.0 / rps);
        if let Some(slot) = self.next_arrival.get_mut(source) {
            *slot = next;
        }
        self.serve(at_ms, source, reap);
        next
    }

    fn serve(&mut self, at_ms: i64, source: &str, reap: i64) {
        if let Some(name) = source.strip_prefix("function:") {
            let Some(function) = self.functions.get_mut(name) else { return };
            function.settle_provisioned(at_ms);
            let Some(alias) = function.traffic.as_ref().map(|t| t.alias.clone()) else { return };
            if let Some(version) = function.route(&alias, &mut self.rng) {
                let record = function.execute(at_ms, Some(&alias), version, &mut self.rng, reap);
                self.requests.push(record);
            }
        } else if let Some(name) = source.strip_prefix("service:") {
            let Some(service) = self.services.get_mut(name) else { return };
            if let Some(revision) = service.route(&mut self.rng) {
                let record = service.execute(at_ms, &revision, None, &mut self.rng, reap, &mut self.startups);
                self.run_requests.push(record);
            }
        }
    }

    /// Completes reconciliations that are due and keeps min instances running.
    pub(crate) fn settle_services(&mut self) {
        let now = self.now_ms;
        let mut finished = Vec::new();
        for service in self.services.values_mut() {
            let operation = service.pending.as_ref().map(|p| p.operation.clone());
            if let (Some(operation), Some(outcome)) = (operation, service.settle(now, false)) {
                finished.push((operation, outcome.map(|()| service.full_name())));
            }
            service.keep_min_instances(now, &mut self.startups);
        }
        self.finished_operations.extend(finished);
    }

    fn sample_instances(&mut self) {
        let now = self.now_ms;
        for service in self.services.values() {
            for (revision, count) in service.instance_counts() {
                self.instance_samples.push((now, service.name.clone(), revision, count));
            }
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

    /// Consumes an injected API fault for `operation`, if any; else refuses a call over the operation's rate
    /// limit.
    pub(crate) fn take_api_fault(&mut self, operation: &str) -> Option<ApiError> {
        self.take_api_fault_in(operation, "")
    }

    /// [`State::take_api_fault`] for a call in `region` (limits kept per region draw on that region's bucket).
    pub(crate) fn take_api_fault_in(&mut self, operation: &str, region: &str) -> Option<ApiError> {
        if let Some(fault) = self.api_faults.iter_mut().find(|f| f.operation == operation && f.remaining > 0) {
            fault.remaining -= 1;
            return Some(fault.error.clone());
        }
        let limit = self.rate_limits.iter_mut().find(|l| l.operations.iter().any(|o| o == operation))?;
        (!limit.admit(region)).then(|| limit.error.clone())
    }

    /// Consumes an injected stall for `operation`: how long to hold its answer back (0: not at all).
    pub(crate) fn take_api_stall(&mut self, operation: &str) -> u64 {
        let Some(stall) = self.api_stalls.iter_mut().find(|s| s.operation == operation && s.remaining > 0) else {
            return 0;
        };
        stall.remaining -= 1;
        stall.ms
    }

    /// Applies a pending external change scheduled before `operation`.
    pub(crate) fn apply_interference(&mut self, operation: &str) {
        if let Some(index) = self.interference.iter().position(|i| i.operation == operation) {
            let change = self.interference.remove(index);
            let _ = self.set_alias(&change.function, &change.alias, change.version, change.routing);
        }
    }

    /// Logs an API call and hands back its answer, held back by an injected stall if there is one. Every wire API
    /// answers through here.
    pub(crate) fn answer(
        &mut self,
        operation: &str,
        resource: &str,
        detail: String,
        mut response: crate::http::Response,
    ) -> Option<crate::http::Response> {
        let at_ms = self.now_ms;
        self.api_log.push(ApiCall {
            at_ms,
            operation: operation.to_string(),
            function: resource.to_string(),
            detail,
            status: response.status,
        });
        response.stall_ms = self.take_api_stall(operation);
        Some(response)
    }

    pub(crate) fn pc_ready(config: &Provisioned) -> bool {
        config.status == PcStatus::Ready
    }
}

/// A UUID-shaped identifier (version 4 layout) from 64 bits and a 12-bit variant field, as AWS's request and
/// revision ids look.
pub(crate) fn uuid_text(n: u64, variant: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        n >> 32,
        (n >> 16) & 0xffff,
        n & 0xfff,
        0x8000 | (variant & 0x3fff),
        n & 0xffff_ffff_ffff
    )
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

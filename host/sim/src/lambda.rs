//! The simulated AWS Lambda platform: functions with immutable published versions, aliases with weighted
//! routing and a RevisionId that changes on every update, per-version execution environments with cold starts and
//! idle reaping, provisioned concurrency that takes time to allocate, and per-version faults from a time on.
//!
//! Everything here is plain state changed by plain methods; time only moves when [`crate::Simulator`] says so.

use crate::rng::Rng;
use std::collections::BTreeMap;

/// A fault injected into one version (or Cloud Run revision) from a time on: extra errors, slower executions,
/// slower cold starts — at full strength from `from_ms`, or rising linearly over `ramp_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub from_ms: i64,
    pub until_ms: Option<i64>,
    /// Time over which the fault rises from nothing to its full strength (0: at once).
    pub ramp_ms: i64,
    pub error_rate: Option<f64>,
    pub latency_shift_ms: Option<f64>,
    pub cold_start_ms: Option<f64>,
}

impl Fault {
    /// The fault's strength at `at`, in [0, 1]: 0 outside it, rising over its ramp.
    fn strength(&self, at: i64) -> f64 {
        if at < self.from_ms || self.until_ms.is_some_and(|u| at >= u) {
            0.0
        } else if self.ramp_ms > 0 {
            ((at - self.from_ms) as f64 / self.ramp_ms as f64).min(1.0)
        } else {
            1.0
        }
    }
}

/// How code behaves at a time, with every fault active then composed: each fault's errors are an independent
/// cause of failure on top of the code's own (1 − Π(1 − rate)), latency shifts add up, the slowest cold start wins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    pub error_rate: f64,
    pub latency_shift_ms: f64,
    pub cold_start_ms: f64,
}

impl Behaviour {
    pub fn at(faults: &[Fault], at: i64, error_rate: f64, cold_start_ms: f64) -> Self {
        let mut behaviour = Self { error_rate, latency_shift_ms: 0.0, cold_start_ms };
        let mut healthy = 1.0 - error_rate;
        for fault in faults {
            let strength = fault.strength(at);
            if strength <= 0.0 {
                continue;
            }
            if let Some(rate) = fault.error_rate {
                healthy *= 1.0 - strength * rate;
            }
            behaviour.latency_shift_ms += strength * fault.latency_shift_ms.unwrap_or(0.0);
            if let Some(cold) = fault.cold_start_ms {
                let ramped = cold_start_ms + strength * (cold - cold_start_ms);
                behaviour.cold_start_ms = behaviour.cold_start_ms.max(ramped);
            }
        }
        behaviour.error_rate = (1.0 - healthy).clamp(0.0, 1.0);
        behaviour
    }
}

/// A published, immutable version and how its code behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub number: u32,
    pub description: String,
    pub created_ms: i64,
    pub code_sha256: String,
    /// Median execution time.
    pub latency_ms: f64,
    /// Spread of execution time (sigma of a log-normal).
    pub jitter: f64,
    /// Initialisation time of a new execution environment.
    pub cold_start_ms: f64,
    pub error_rate: f64,
    pub faults: Vec<Fault>,
}

impl Version {
    fn behaviour(&self, at: i64) -> Behaviour {
        Behaviour::at(&self.faults, at, self.error_rate, self.cold_start_ms)
    }
}

/// An alias: a name pointing at a version, optionally sending a share of traffic to a second version.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub name: String,
    pub version: u32,
    /// `(additional version, weight)`: the share of traffic routed to the additional version.
    pub routing: Option<(u32, f64)>,
    pub description: String,
    pub revision_id: String,
}

/// Status of a provisioned-concurrency configuration, as Lambda reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcStatus {
    InProgress,
    Ready,
}

impl PcStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Ready => "READY",
        }
    }
}

/// Provisioned concurrency on one version.
#[derive(Debug, Clone, PartialEq)]
pub struct Provisioned {
    pub requested: u32,
    pub allocated: u32,
    pub status: PcStatus,
    pub ready_at_ms: i64,
    pub last_modified_ms: i64,
}

/// One execution environment of a version.
#[derive(Debug, Clone, PartialEq)]
struct Instance {
    busy_until_ms: i64,
    last_used_ms: i64,
    provisioned: bool,
}

/// Steady traffic sent to a function through an alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub alias: String,
    pub rps: f64,
    pub daily: Option<Daily>,
}

/// A daily traffic curve: the rate swings by ± `amplitude` × its mean around the day, highest at `peak_ms` after
/// midnight UTC (a cosine).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Daily {
    pub amplitude: f64,
    pub peak_ms: i64,
}

impl Daily {
    const DAY_MS: f64 = 86_400_000.0;

    /// The rate at `at_ms` of traffic averaging `rps`.
    pub fn rate(daily: Option<Self>, rps: f64, at_ms: i64) -> f64 {
        let Some(d) = daily else { return rps };
        let phase = (at_ms - d.peak_ms).rem_euclid(Self::DAY_MS as i64) as f64 / Self::DAY_MS;
        (rps * (1.0 + d.amplitude * (std::f64::consts::TAU * phase).cos())).max(0.0)
    }
}

/// A simulated function.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub versions: BTreeMap<u32, Version>,
    pub aliases: BTreeMap<String, Alias>,
    pub tags: BTreeMap<String, String>,
    /// Provisioned concurrency by version number.
    pub provisioned: BTreeMap<u32, Provisioned>,
    pub traffic: Option<Traffic>,
    /// Most environments executing at once; beyond it requests are throttled.
    pub concurrency_limit: u32,
    instances: BTreeMap<u32, Vec<Instance>>,
}

/// The outcome of one simulated request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub at_ms: i64,
    pub function: String,
    /// The alias the request came through, if any.
    pub alias: Option<String>,
    pub version: u32,
    pub duration_ms: f64,
    /// Initialisation time when the request hit a cold start, else 0.
    pub init_ms: f64,
    pub cold_start: bool,
    pub error: bool,
    pub throttled: bool,
}

impl RequestRecord {
    /// When the execution ended (start + init + duration).
    pub fn end_ms(&self) -> i64 {
        self.at_ms + (self.init_ms + self.duration_ms).ceil() as i64
    }
}

impl Function {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            memory_mb: 512,
            timeout_s: 30,
            versions: BTreeMap::new(),
            aliases: BTreeMap::new(),
            tags: BTreeMap::new(),
            provisioned: BTreeMap::new(),
            traffic: None,
            concurrency_limit: 1000,
            instances: BTreeMap::new(),
        }
    }

    /// Environments of `version` that exist now (warm, busy or provisioned).
    pub fn instance_count(&self, version: u32) -> usize {
        self.instances.get(&version).map_or(0, Vec::len)
    }

    /// Picks the version a request through `alias` runs on.
    pub(crate) fn route(&self, alias: &str, rng: &mut Rng) -> Option<u32> {
        let alias = self.aliases.get(alias)?;
        Some(match alias.routing {
            Some((extra, weight)) if rng.chance(weight) => extra,
            _ => alias.version,
        })
    }

    /// Runs one request on `version` at `at`, creating an environment (cold start) when none is idle.
    pub(crate) fn execute(
        &mut self,
        at: i64,
        alias: Option<&str>,
        version: u32,
        rng: &mut Rng,
        reap_after_ms: i64,
    ) -> RequestRecord {
        let mut record = RequestRecord {
            at_ms: at,
            function: self.name.clone(),
            alias: alias.map(str::to_string),
            version,
            duration_ms: 0.0,
            init_ms: 0.0,
            cold_start: false,
            error: false,
            throttled: false,
        };
        let Some(code) = self.versions.get(&version).cloned() else {
            record.error = true;
            return record;
        };
        let busy: usize = self.instances.values().flatten().filter(|i| i.busy_until_ms > at).count();
        let instances = self.instances.entry(version).or_default();
        instances.retain(|i| i.provisioned || i.busy_until_ms > at || at - i.last_used_ms < reap_after_ms);
        // Idle environments, provisioned ones first (Lambda prefers them), then the most recently used.
        let idle = instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.busy_until_ms <= at)
            .max_by_key(|(_, i)| (i.provisioned, i.last_used_ms))
            .map(|(index, _)| index);
        let index = match idle {
            Some(index) => index,
            None if busy >= self.concurrency_limit as usize => {
                record.throttled = true;
                return record;
            }
            None => {
                record.cold_start = true;
                record.init_ms = code.behaviour(at).cold_start_ms * (1.0 + 0.1 * rng.normal()).clamp(0.5, 1.5);
                instances.push(Instance { busy_until_ms: at, last_used_ms: at, provisioned: false });
                instances.len() - 1
            }
        };
        let median = (code.latency_ms + code.behaviour(at).latency_shift_ms).max(1.0);
        record.duration_ms = (median * (code.jitter * rng.normal()).exp()).clamp(1.0, self.timeout_s as f64 * 1000.0);
        record.error = rng.chance(code.behaviour(at).error_rate);
        let end = record.end_ms();
        if let Some(instance) = instances.get_mut(index) {
            instance.busy_until_ms = end;
            instance.last_used_ms = end;
        }
        record
    }

    /// Completes provisioned-concurrency allocations due by `at`.
    pub(crate) fn settle_provisioned(&mut self, at: i64) {
        for (version, config) in &mut self.provisioned {
            if config.status == PcStatus::InProgress && config.ready_at_ms <= at {
                config.status = PcStatus::Ready;
                config.allocated = config.requested;
                let instances = self.instances.entry(*version).or_default();
                let have = instances.iter().filter(|i| i.provisioned).count();
                let wanted = config.requested as usize;
                if have < wanted {
                    let ready = config.ready_at_ms;
                    instances.extend((have..wanted).map(|_| Instance {
                        busy_until_ms: ready,
                        last_used_ms: ready,
                        provisioned: true,
                    }));
                } else {
                    let mut extra = have - wanted;
                    instances.retain(|i| {
                        let drop = i.provisioned && extra > 0 && i.busy_until_ms <= at;
                        extra -= usize::from(drop);
                        !drop
                    });
                }
            }
        }
    }

    /// Requests provisioned concurrency on `version`; allocation completes after `allocation_ms`.
    pub(crate) fn put_provisioned(&mut self, version: u32, requested: u32, at: i64, allocation_ms: i64) -> Provisioned {
        let config = Provisioned {
            requested,
            allocated: self.provisioned.get(&version).map_or(0, |c| c.allocated.min(requested)),
            status: PcStatus::InProgress,
            ready_at_ms: at + allocation_ms,
            last_modified_ms: at,
        };
        self.provisioned.insert(version, config.clone());
        config
    }

    /// Removes provisioned concurrency from `version`: its environments become ordinary ones, reaped when idle.
    pub(crate) fn delete_provisioned(&mut self, version: u32) -> bool {
        let existed = self.provisioned.remove(&version).is_some();
        for instance in self.instances.get_mut(&version).into_iter().flatten() {
            instance.provisioned = false;
        }
        existed
    }
}

/// Every Lambda request made so far, kept per function in time order, so that a metrics query reads only the
/// requests of the function and window it asks for (a fleet's log grows by millions of requests an hour).
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    by_function: BTreeMap<String, Vec<RequestRecord>>,
}

impl RequestLog {
    /// Records a request; requests usually arrive in time order, and one that does not is put in its place.
    pub fn push(&mut self, record: RequestRecord) {
        let records = self.by_function.entry(record.function.clone()).or_default();
        if records.last().is_none_or(|last| last.at_ms <= record.at_ms) {
            records.push(record);
        } else {
            let at = records.partition_point(|r| r.at_ms <= record.at_ms);
            records.insert(at, record);
        }
    }

    /// The requests of `function` (every function when `None`) started in `[from_ms, until_ms)`, in time order
    /// per function.
    pub fn window<'a>(
        &'a self,
        function: Option<&str>,
        from_ms: i64,
        until_ms: i64,
    ) -> impl Iterator<Item = &'a RequestRecord> + 'a {
        let functions: Box<dyn Iterator<Item = &'a Vec<RequestRecord>> + 'a> = match function {
            Some(name) => Box::new(self.by_function.get(name).into_iter()),
            None => Box::new(self.by_function.values()),
        };
        functions.flat_map(move |records| {
            let lo = records.partition_point(|r| r.at_ms < from_ms);
            let hi = records.partition_point(|r| r.at_ms < until_ms);
            records[lo..hi.max(lo)].iter()
        })
    }

    /// How many requests were recorded.
    pub fn len(&self) -> usize {
        self.by_function.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_function.values().all(Vec::is_empty)
    }
}

//! The simulated AWS Lambda platform: functions with immutable published versions, aliases with weighted
//! routing and a RevisionId that changes on every update, per-version execution environments with cold starts and
//! idle reaping, provisioned concurrency that takes time to allocate, and per-version faults from a time on.
//!
//! Everything here is plain state changed by plain methods; time only moves when [`crate::Simulator`] says so.

use crate::rng::Rng;
use std::collections::BTreeMap;

/// A fault injected into one version from a time on: extra errors, slower executions, slower cold starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub from_ms: i64,
    pub until_ms: Option<i64>,
    pub error_rate: Option<f64>,
    pub latency_shift_ms: Option<f64>,
    pub cold_start_ms: Option<f64>,
}

impl Fault {
    fn active(&self, at: i64) -> bool {
        at >= self.from_ms && self.until_ms.is_none_or(|u| at < u)
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
    fn error_rate_at(&self, at: i64) -> f64 {
        self.faults.iter().rev().find(|f| f.active(at)).and_then(|f| f.error_rate).unwrap_or(self.error_rate)
    }
    fn latency_shift_at(&self, at: i64) -> f64 {
        self.faults.iter().rev().find(|f| f.active(at)).and_then(|f| f.latency_shift_ms).unwrap_or(0.0)
    }
    fn cold_start_at(&self, at: i64) -> f64 {
        self.faults.iter().rev().find(|f| f.active(at)).and_then(|f| f.cold_start_ms).unwrap_or(self.cold_start_ms)
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
                record.init_ms = code.cold_start_at(at) * (1.0 + 0.1 * rng.normal()).clamp(0.5, 1.5);
                instances.push(Instance { busy_until_ms: at, last_used_ms: at, provisioned: false });
                instances.len() - 1
            }
        };
        let median = (code.latency_ms + code.latency_shift_at(at)).max(1.0);
        record.duration_ms = (median * (code.jitter * rng.normal()).exp()).clamp(1.0, self.timeout_s as f64 * 1000.0);
        record.error = rng.chance(code.error_rate_at(at));
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

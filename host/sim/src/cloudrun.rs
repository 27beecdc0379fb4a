//! The simulated Google Cloud Run platform: services with immutable revisions, a traffic split (by revision, by
//! LATEST, with tags), instances that serve up to `concurrency` requests each, start cold, are reaped when idle and
//! kept warm by service- or revision-level min instances (a tagged revision counts as serving, so it is started),
//! and reconciliation: a traffic change is in the spec at once (`traffic`, `generation`) but serves only once
//! reconciled (`trafficStatuses`, `observedGeneration`), which an operation reports.

use crate::lambda::{Behaviour, Fault};
use crate::rng::Rng;
use std::collections::BTreeMap;

/// A revision: immutable code and how it behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRevision {
    pub name: String,
    pub created_ms: i64,
    pub latency_ms: f64,
    pub jitter: f64,
    pub cold_start_ms: f64,
    pub error_rate: f64,
    /// Requests one instance serves at once (`maxInstanceRequestConcurrency`).
    pub concurrency: u32,
    /// Revision-level min instances.
    pub min_instances: u32,
    pub faults: Vec<Fault>,
}

impl RunRevision {
    fn behaviour(&self, at: i64) -> Behaviour {
        Behaviour::at(&self.faults, at, self.error_rate, self.cold_start_ms)
    }
}

/// One entry of a traffic split.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficTarget {
    /// `true` for the LATEST type (the newest ready revision), else a named revision.
    pub latest: bool,
    pub revision: String,
    pub percent: u32,
    pub tag: String,
}

/// A reconciliation in progress, reported by an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub operation: String,
    pub polls_left: u32,
    pub due_ms: i64,
    /// The split that was serving before, restored if the operation fails.
    pub previous: Vec<TrafficTarget>,
    /// Set when the operation is to fail with this message.
    pub failure: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Instance {
    /// End time of each request slot.
    slots: Vec<i64>,
    last_used_ms: i64,
}

/// A simulated Cloud Run service.
#[derive(Debug, Clone, PartialEq)]
pub struct RunService {
    pub name: String,
    pub project: String,
    pub location: String,
    pub uid: String,
    pub created_ms: i64,
    pub generation: i64,
    pub observed_generation: i64,
    pub revisions: BTreeMap<String, RunRevision>,
    /// The split as requested (spec).
    pub traffic: Vec<TrafficTarget>,
    /// The split actually serving.
    pub statuses: Vec<TrafficTarget>,
    pub annotations: BTreeMap<String, String>,
    /// Service-level min instances, spread over revisions that serve traffic or carry a tag.
    pub min_instances: u32,
    pub etag: String,
    /// Requests a second from users (the mean, when `daily` shapes it).
    pub rps: f64,
    pub daily: Option<crate::lambda::Daily>,
    pub pending: Option<Pending>,
    /// Most instances of one revision.
    pub max_instances: u32,
    instances: BTreeMap<String, Vec<Instance>>,
}

/// One request served by Cloud Run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub at_ms: i64,
    pub service: String,
    pub revision: String,
    /// Latency seen by the client, including the wait for a cold start.
    pub latency_ms: f64,
    pub cold_start: bool,
    pub status: u16,
    /// The tag it came through (warm-up requests), if any.
    pub tag: Option<String>,
}

/// An instance start: what `container/startup_latencies` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Startup {
    pub at_ms: i64,
    pub service: String,
    pub revision: String,
    pub latency_ms: f64,
}

impl RunService {
    pub fn new(project: &str, location: &str, name: &str, created_ms: i64) -> Self {
        Self {
            name: name.to_string(),
            project: project.to_string(),
            location: location.to_string(),
            uid: format!(
                "{:x}",
                name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
            ),
            created_ms,
            generation: 1,
            observed_generation: 1,
            revisions: BTreeMap::new(),
            traffic: Vec::new(),
            statuses: Vec::new(),
            annotations: BTreeMap::new(),
            min_instances: 0,
            etag: String::new(),
            rps: 0.0,
            daily: None,
            pending: None,
            max_instances: 100,
            instances: BTreeMap::new(),
        }
    }

    /// `projects/P/locations/L/services/S`
    pub fn full_name(&self) -> String {
        format!("projects/{}/locations/{}/services/{}", self.project, self.location, self.name)
    }

    /// The newest revision (what LATEST routes to).
    pub fn latest_revision(&self) -> Option<&str> {
        self.revisions.values().max_by_key(|r| (r.created_ms, r.name.clone())).map(|r| r.name.as_str())
    }

    /// The revision a traffic target routes to.
    pub fn resolve(&self, target: &TrafficTarget) -> Option<String> {
        if target.latest { self.latest_revision().map(str::to_string) } else { Some(target.revision.clone()) }
    }

    /// Instances of `revision` that exist now.
    pub fn instance_count(&self, revision: &str) -> usize {
        self.instances.get(revision).map_or(0, Vec::len)
    }

    /// Whether the split routes traffic or a tag to `revision` (such revisions are kept at min instances).
    fn addressable(&self, revision: &str) -> bool {
        self.statuses
            .iter()
            .any(|t| self.resolve(t).as_deref() == Some(revision) && (t.percent > 0 || !t.tag.is_empty()))
    }

    /// Picks the revision for a user request according to the serving split.
    pub(crate) fn route(&self, rng: &mut Rng) -> Option<String> {
        let mut roll = rng.unit() * 100.0;
        for target in self.statuses.iter().filter(|t| t.percent > 0) {
            roll -= target.percent as f64;
            if roll < 0.0 {
                return self.resolve(target);
            }
        }
        self.statuses.iter().rfind(|t| t.percent > 0).and_then(|t| self.resolve(t))
    }

    /// Serves one request on `revision` at `at`.
    pub(crate) fn execute(
        &mut self,
        at: i64,
        revision: &str,
        tag: Option<&str>,
        rng: &mut Rng,
        reap_after_ms: i64,
        startups: &mut Vec<Startup>,
    ) -> RunRequest {
        let mut record = RunRequest {
            at_ms: at,
            service: self.name.clone(),
            revision: revision.to_string(),
            latency_ms: 0.0,
            cold_start: false,
            status: 200,
            tag: tag.map(str::to_string),
        };
        let Some(code) = self.revisions.get(revision).cloned() else {
            record.status = 404;
            return record;
        };
        let floor = self.floor(revision);
        let instances = self.instances.entry(revision.to_string()).or_default();
        reap(instances, at, reap_after_ms, floor);
        let free = instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.slots.iter().any(|end| *end <= at))
            .max_by_key(|(_, i)| i.last_used_ms)
            .map(|(index, _)| index);
        let mut wait = 0.0;
        let index = match free {
            Some(index) => index,
            None if instances.len() >= self.max_instances as usize => {
                record.status = 429;
                return record;
            }
            None => {
                record.cold_start = true;
                wait = code.behaviour(at).cold_start_ms * (1.0 + 0.1 * rng.normal()).clamp(0.5, 1.5);
                startups.push(Startup {
                    at_ms: at,
                    service: self.name.clone(),
                    revision: revision.to_string(),
                    latency_ms: wait,
                });
                instances.push(Instance { slots: vec![at; code.concurrency.max(1) as usize], last_used_ms: at });
                instances.len() - 1
            }
        };
        let Some(instance) = instances.get_mut(index) else { return record };
        let behaviour = code.behaviour(at);
        let median = (code.latency_ms + behaviour.latency_shift_ms).max(1.0);
        let service_ms = (median * (code.jitter * rng.normal()).exp()).max(1.0);
        record.latency_ms = wait + service_ms;
        if rng.chance(behaviour.error_rate) {
            record.status = 500;
        }
        let end = at + record.latency_ms.ceil() as i64;
        if let Some(slot) = instance.slots.iter_mut().find(|end| **end <= at) {
            *slot = end;
        }
        instance.last_used_ms = end;
        record
    }

    /// Min instances `revision` is kept at: its own, or the service's when it serves traffic or carries a tag.
    fn floor(&self, revision: &str) -> usize {
        let own = self.revisions.get(revision).map_or(0, |r| r.min_instances);
        let service = if self.addressable(revision) { self.min_instances } else { 0 };
        own.max(service) as usize
    }

    /// Starts instances to reach every revision's min instances.
    pub(crate) fn keep_min_instances(&mut self, at: i64, startups: &mut Vec<Startup>) {
        let names: Vec<String> = self.revisions.keys().cloned().collect();
        for name in names {
            let floor = self.floor(&name);
            let Some(code) = self.revisions.get(&name) else { continue };
            let (concurrency, startup) = (code.concurrency.max(1) as usize, code.cold_start_ms);
            let instances = self.instances.entry(name.clone()).or_default();
            while instances.len() < floor {
                startups.push(Startup {
                    at_ms: at,
                    service: self.name.clone(),
                    revision: name.clone(),
                    latency_ms: startup,
                });
                let ready = at + startup as i64;
                instances.push(Instance { slots: vec![ready; concurrency], last_used_ms: ready });
            }
        }
    }

    /// Completes the pending reconciliation when it is due; returns the failure message if it failed.
    pub(crate) fn settle(&mut self, at: i64, force: bool) -> Option<Result<(), String>> {
        let pending = self.pending.as_ref()?;
        if !(force || pending.polls_left == 0 || at >= pending.due_ms) {
            return None;
        }
        let pending = self.pending.take()?;
        self.observed_generation = self.generation;
        Some(match pending.failure {
            Some(message) => {
                self.traffic = pending.previous.clone();
                self.statuses = pending.previous;
                Err(message)
            }
            None => {
                self.statuses = self.traffic.clone();
                Ok(())
            }
        })
    }

    /// Instances by revision now, for the `container/instance_count` samples.
    pub(crate) fn instance_counts(&self) -> Vec<(String, usize)> {
        self.instances.iter().map(|(r, i)| (r.clone(), i.len())).collect()
    }
}

fn reap(instances: &mut Vec<Instance>, at: i64, reap_after_ms: i64, floor: usize) {
    if instances.len() <= floor {
        return;
    }
    // Keep the most recently used; reap the rest once idle long enough.
    instances.sort_by_key(|i| std::cmp::Reverse(i.last_used_ms));
    let mut kept = 0;
    instances.retain(|i| {
        kept += 1;
        kept <= floor || i.slots.iter().any(|end| *end > at) || at - i.last_used_ms < reap_after_ms
    });
}

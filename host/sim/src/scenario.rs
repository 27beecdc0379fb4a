//! Scenario files: a TOML description of a simulated account — functions, versions and how their code behaves,
//! aliases, traffic, and faults from a time on — loaded into a [`Simulator`]. Documented in the README.

use crate::cloudrun::{RunRevision, RunService, TrafficTarget};
use crate::lambda::{Alias, Fault, Function, Traffic, Version};
use crate::simulator::{Settings, Simulator};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A scenario that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default)]
    seed: u64,
    start: String,
    #[serde(default)]
    settings: SettingsFile,
    #[serde(default)]
    function: Vec<FunctionFile>,
    #[serde(default)]
    service: Vec<ServiceFile>,
    #[serde(default)]
    fault: Vec<FaultFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    name: String,
    project: String,
    location: String,
    #[serde(default)]
    rps: f64,
    #[serde(default)]
    min_instances: u32,
    #[serde(default = "default_max_instances")]
    max_instances: u32,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    revision: Vec<RevisionFile>,
    #[serde(default)]
    traffic: Vec<TrafficFile2>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevisionFile {
    name: String,
    #[serde(default = "default_latency")]
    latency_ms: f64,
    #[serde(default = "default_jitter")]
    jitter: f64,
    #[serde(default = "default_cold_start")]
    cold_start_ms: f64,
    #[serde(default)]
    error_rate: f64,
    #[serde(default = "default_concurrency")]
    concurrency: u32,
    #[serde(default)]
    min_instances: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrafficFile2 {
    revision: Option<String>,
    #[serde(default)]
    latest: bool,
    percent: u32,
    #[serde(default)]
    tag: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    region: Option<String>,
    account: Option<String>,
    reap_after: Option<String>,
    provisioned_allocation: Option<String>,
    max_datapoints: Option<usize>,
    operation_polls: Option<u32>,
    reconcile: Option<String>,
    max_series_per_page: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionFile {
    name: String,
    #[serde(default = "default_memory")]
    memory_mb: u32,
    #[serde(default = "default_limit")]
    concurrency_limit: u32,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    traffic: Option<TrafficFile>,
    #[serde(default)]
    version: Vec<VersionFile>,
    #[serde(default)]
    alias: Vec<AliasFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrafficFile {
    alias: String,
    rps: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFile {
    number: u32,
    #[serde(default)]
    description: String,
    #[serde(default = "default_latency")]
    latency_ms: f64,
    #[serde(default = "default_jitter")]
    jitter: f64,
    #[serde(default = "default_cold_start")]
    cold_start_ms: f64,
    #[serde(default)]
    error_rate: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasFile {
    name: String,
    version: u32,
    routing: Option<RoutingFile>,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingFile {
    version: u32,
    weight: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultFile {
    /// Lambda: function and version.
    function: Option<String>,
    version: Option<u32>,
    /// Cloud Run: service and revision.
    service: Option<String>,
    revision: Option<String>,
    /// Offset from the scenario start, e.g. "4m".
    from: String,
    until: Option<String>,
    error_rate: Option<f64>,
    latency_shift_ms: Option<f64>,
    cold_start_ms: Option<f64>,
}

fn default_max_instances() -> u32 {
    100
}
fn default_concurrency() -> u32 {
    80
}
fn default_memory() -> u32 {
    512
}
fn default_limit() -> u32 {
    1000
}
fn default_latency() -> f64 {
    100.0
}
fn default_jitter() -> f64 {
    0.25
}
fn default_cold_start() -> f64 {
    800.0
}

/// Loads a scenario file into a new simulator.
pub fn load(path: &Path) -> Result<Simulator, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.into(), source })?;
    parse(&text, path)
}

/// Parses a scenario; `path` only names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<Simulator, ScenarioError> {
    let invalid = |message: String| ScenarioError::Invalid { path: path.into(), message };
    let file: ScenarioFile = toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_string()))?;
    let start = crate::parse_time(&file.start).map_err(|m| invalid(format!("start: {m}")))?;
    let duration = |field: &str, text: &Option<String>, default: i64| -> Result<i64, ScenarioError> {
        text.as_deref()
            .map_or(Ok(default), |t| crate::parse_duration_ms(t).map_err(|m| invalid(format!("{field}: {m}"))))
    };
    let defaults = Settings::default();
    let settings = Settings {
        region: file.settings.region.clone().unwrap_or(defaults.region),
        account: file.settings.account.clone().unwrap_or(defaults.account),
        reap_after_ms: duration("settings.reap_after", &file.settings.reap_after, defaults.reap_after_ms)?,
        provisioned_allocation_ms: duration(
            "settings.provisioned_allocation",
            &file.settings.provisioned_allocation,
            defaults.provisioned_allocation_ms,
        )?,
        max_datapoints: file.settings.max_datapoints.unwrap_or(defaults.max_datapoints),
        operation_polls: file.settings.operation_polls.unwrap_or(defaults.operation_polls),
        reconcile_ms: duration("settings.reconcile", &file.settings.reconcile, defaults.reconcile_ms)?,
        max_series_per_page: file.settings.max_series_per_page.unwrap_or(defaults.max_series_per_page),
    };
    let mut functions = BTreeMap::new();
    for (i, f) in file.function.into_iter().enumerate() {
        let mut function = Function::new(&f.name);
        function.memory_mb = f.memory_mb;
        function.concurrency_limit = f.concurrency_limit;
        function.tags = f.tags;
        for v in f.version {
            if !(0.0..=1.0).contains(&v.error_rate) {
                return Err(invalid(format!(
                    "function[{i}].version {}: error_rate must be in [0, 1], got {}",
                    v.number, v.error_rate
                )));
            }
            function.versions.insert(
                v.number,
                Version {
                    number: v.number,
                    description: v.description,
                    created_ms: start,
                    code_sha256: format!("sim-{}-{}", f.name, v.number),
                    latency_ms: v.latency_ms,
                    jitter: v.jitter,
                    cold_start_ms: v.cold_start_ms,
                    error_rate: v.error_rate,
                    faults: Vec::new(),
                },
            );
        }
        for a in f.alias {
            let routing = a.routing.map(|r| (r.version, r.weight));
            for version in std::iter::once(a.version).chain(routing.map(|r| r.0)) {
                if !function.versions.contains_key(&version) {
                    return Err(invalid(format!(
                        "function `{}`: alias `{}` points at version {version}, which is not defined",
                        f.name, a.name
                    )));
                }
            }
            if let Some((_, weight)) = routing.filter(|(_, w)| !(0.0..1.0).contains(w)) {
                return Err(invalid(format!(
                    "function `{}`: alias `{}`: routing weight must be in [0, 1), got {weight}",
                    f.name, a.name
                )));
            }
            function.aliases.insert(
                a.name.clone(),
                Alias {
                    name: a.name,
                    version: a.version,
                    routing,
                    description: a.description,
                    revision_id: String::new(),
                },
            );
        }
        if let Some(t) = f.traffic {
            if !function.aliases.contains_key(&t.alias) {
                return Err(invalid(format!(
                    "function `{}`: traffic goes to alias `{}`, which is not defined",
                    f.name, t.alias
                )));
            }
            function.traffic = Some(Traffic { alias: t.alias, rps: t.rps.max(0.0) });
        }
        functions.insert(function.name.clone(), function);
    }
    let mut services = BTreeMap::new();
    for (i, f) in file.service.into_iter().enumerate() {
        let mut service = RunService::new(&f.project, &f.location, &f.name, start);
        service.rps = f.rps.max(0.0);
        service.min_instances = f.min_instances;
        service.max_instances = f.max_instances;
        service.annotations = f.annotations;
        let count = f.revision.len() as i64;
        for (j, r) in f.revision.into_iter().enumerate() {
            if !(0.0..=1.0).contains(&r.error_rate) {
                return Err(invalid(format!(
                    "service[{i}].revision {}: error_rate must be in [0, 1], got {}",
                    r.name, r.error_rate
                )));
            }
            // Revisions are created in file order, a minute apart, the last one just before `start`.
            let created_ms = start - (count - j as i64) * 60_000;
            service.revisions.insert(
                r.name.clone(),
                RunRevision {
                    name: r.name,
                    created_ms,
                    latency_ms: r.latency_ms,
                    jitter: r.jitter,
                    cold_start_ms: r.cold_start_ms,
                    error_rate: r.error_rate,
                    concurrency: r.concurrency.max(1),
                    min_instances: r.min_instances,
                    faults: Vec::new(),
                },
            );
        }
        for t in f.traffic {
            let revision = t.revision.unwrap_or_default();
            if !t.latest && !service.revisions.contains_key(&revision) {
                return Err(invalid(format!(
                    "service `{}`: traffic names revision {revision:?}, which is not defined",
                    f.name
                )));
            }
            service.traffic.push(TrafficTarget { latest: t.latest, revision, percent: t.percent, tag: t.tag });
        }
        let total: u32 = service.traffic.iter().map(|t| t.percent).sum();
        if total != 100 {
            return Err(invalid(format!("service `{}`: traffic percentages add up to {total}, not 100", f.name)));
        }
        services.insert(f.name.clone(), service);
    }
    for (i, fault) in file.fault.into_iter().enumerate() {
        let from_ms =
            start + crate::parse_duration_ms(&fault.from).map_err(|m| invalid(format!("fault[{i}].from: {m}")))?;
        let until_ms = match &fault.until {
            Some(t) => {
                Some(start + crate::parse_duration_ms(t).map_err(|m| invalid(format!("fault[{i}].until: {m}")))?)
            }
            None => None,
        };
        let spec = Fault {
            from_ms,
            until_ms,
            error_rate: fault.error_rate,
            latency_shift_ms: fault.latency_shift_ms,
            cold_start_ms: fault.cold_start_ms,
        };
        let faults = match (&fault.function, fault.version, &fault.service, &fault.revision) {
            (Some(function), Some(version), None, None) => {
                functions.get_mut(function).and_then(|f| f.versions.get_mut(&version)).map(|v| &mut v.faults)
            }
            (None, None, Some(service), Some(revision)) => {
                services.get_mut(service).and_then(|s| s.revisions.get_mut(revision)).map(|r| &mut r.faults)
            }
            _ => {
                return Err(invalid(format!(
                    "fault[{i}]: give `function` and `version` (Lambda) or `service` and `revision` (Cloud Run)"
                )));
            }
        };
        faults.ok_or_else(|| invalid(format!("fault[{i}]: no such function version or service revision")))?.push(spec);
    }
    let sim = Simulator::new(start, file.seed, settings);
    for function in functions.into_values() {
        sim.add_function(function);
    }
    for service in services.into_values() {
        sim.add_service(service);
    }
    Ok(sim)
}

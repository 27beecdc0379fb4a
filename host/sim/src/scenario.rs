//! Scenario files: a TOML description of a simulated account — functions, versions and how their code behaves,
//! aliases, traffic, and faults from a time on — loaded into a [`Simulator`]. Documented in docs/simulator.md.

use crate::cloudrun::{RunRevision, RunService, TrafficTarget};
use crate::lambda::{Alias, Daily, Fault, Function, Traffic, Version};
use crate::simulator::{Deploy, DeployChange, Gap, Settings, Simulator};
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
    #[serde(default)]
    deploy: Vec<DeployFile>,
    #[serde(default)]
    gap: Vec<GapFile>,
}

/// A deploy tool's change at `at`: a Lambda alias moved, or a Cloud Run service's traffic set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployFile {
    at: String,
    function: Option<String>,
    alias: Option<String>,
    version: Option<u32>,
    routing: Option<RoutingFile>,
    service: Option<String>,
    #[serde(default)]
    traffic: Vec<TrafficFile2>,
}

/// A span in which a revision's metrics are missing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GapFile {
    function: Option<String>,
    version: Option<u32>,
    service: Option<String>,
    revision: Option<String>,
    from: String,
    until: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    name: String,
    project: String,
    location: String,
    #[serde(default)]
    rps: f64,
    daily_amplitude: Option<f64>,
    peak: Option<String>,
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
    publication_delay: Option<String>,
    /// `"published"`: every API enforces the platform's published default quota; `"none"` (the default): unlimited.
    quotas: Option<String>,
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
    daily_amplitude: Option<f64>,
    peak: Option<String>,
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
    /// Rises linearly to full strength over this long, e.g. "10m".
    ramp: Option<String>,
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

/// A daily traffic curve from its keys: `daily_amplitude` in [0, 1] and `peak` as `HH:MM` UTC (default 14:00).
fn daily(what: &str, amplitude: Option<f64>, peak: &Option<String>) -> Result<Option<Daily>, String> {
    let Some(amplitude) = amplitude else {
        return match peak {
            Some(_) => Err(format!("{what}: `peak` needs `daily_amplitude`")),
            None => Ok(None),
        };
    };
    if !(0.0..=1.0).contains(&amplitude) {
        return Err(format!("{what}: daily_amplitude must be in [0, 1], got {amplitude}"));
    }
    let peak = peak.as_deref().unwrap_or("14:00");
    let minutes = peak
        .split_once(':')
        .and_then(|(h, m)| Some((h.parse::<i64>().ok()?, m.parse::<i64>().ok()?)))
        .filter(|(h, m)| (0..24).contains(h) && (0..60).contains(m))
        .map(|(h, m)| h * 60 + m)
        .ok_or_else(|| format!("{what}: peak must be HH:MM (UTC), got {peak:?}"))?;
    Ok(Some(Daily { amplitude, peak_ms: minutes * 60_000 }))
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
    let r = Reading { path, start };
    let settings = settings(&r, &file.settings)?;
    let mut functions = functions(&r, file.function)?;
    let mut services = services(&r, file.service)?;
    faults(&r, file.fault, &mut functions, &mut services)?;
    let deploys = deploys(&r, file.deploy, &functions, &services)?;
    let gaps = gaps(&r, file.gap)?;
    let sim = Simulator::new(start, file.seed, settings);
    sim.schedule_deploys(deploys);
    sim.add_gaps(gaps);
    for function in functions.into_values() {
        sim.add_function(function);
    }
    for service in services.into_values() {
        sim.add_service(service);
    }
    Ok(sim)
}

/// What every part of a scenario's parse needs: the file, to name it in errors, and the scenario's start.
struct Reading<'a> {
    path: &'a Path,
    start: i64,
}

impl Reading<'_> {
    fn invalid(&self, message: String) -> ScenarioError {
        ScenarioError::Invalid { path: self.path.into(), message }
    }

    /// An optional duration field, or its default.
    fn duration(&self, field: &str, text: &Option<String>, default: i64) -> Result<i64, ScenarioError> {
        text.as_deref()
            .map_or(Ok(default), |t| crate::parse_duration_ms(t).map_err(|m| self.invalid(format!("{field}: {m}"))))
    }

    /// A time given as a duration after the start.
    fn at(&self, field: String, text: &str) -> Result<i64, ScenarioError> {
        crate::parse_duration_ms(text).map(|ms| self.start + ms).map_err(|m| self.invalid(format!("{field}: {m}")))
    }
}

/// The `[settings]` table, defaults filled in.
fn settings(r: &Reading<'_>, file: &SettingsFile) -> Result<Settings, ScenarioError> {
    let defaults = Settings::default();
    Ok(Settings {
        region: file.region.clone().unwrap_or(defaults.region),
        account: file.account.clone().unwrap_or(defaults.account),
        reap_after_ms: r.duration("settings.reap_after", &file.reap_after, defaults.reap_after_ms)?,
        provisioned_allocation_ms: r.duration(
            "settings.provisioned_allocation",
            &file.provisioned_allocation,
            defaults.provisioned_allocation_ms,
        )?,
        max_datapoints: file.max_datapoints.unwrap_or(defaults.max_datapoints),
        operation_polls: file.operation_polls.unwrap_or(defaults.operation_polls),
        reconcile_ms: r.duration("settings.reconcile", &file.reconcile, defaults.reconcile_ms)?,
        max_series_per_page: file.max_series_per_page.unwrap_or(defaults.max_series_per_page),
        publication_delay_ms: r.duration(
            "settings.publication_delay",
            &file.publication_delay,
            defaults.publication_delay_ms,
        )?,
        published_quotas: match file.quotas.as_deref() {
            None | Some("none") => false,
            Some("published") => true,
            Some(other) => {
                return Err(r.invalid(format!("settings.quotas: must be \"published\" or \"none\", got {other:?}")));
            }
        },
    })
}

/// The `[[function]]` tables: versions, aliases (checked against the versions) and traffic.
fn functions(r: &Reading<'_>, files: Vec<FunctionFile>) -> Result<BTreeMap<String, Function>, ScenarioError> {
    let mut functions = BTreeMap::new();
    for (i, f) in files.into_iter().enumerate() {
        let mut function = Function::new(&f.name);
        function.memory_mb = f.memory_mb;
        function.concurrency_limit = f.concurrency_limit;
        function.tags = f.tags;
        for v in f.version {
            if !(0.0..=1.0).contains(&v.error_rate) {
                return Err(r.invalid(format!(
                    "function[{i}].version {}: error_rate must be in [0, 1], got {}",
                    v.number, v.error_rate
                )));
            }
            function.versions.insert(
                v.number,
                Version {
                    number: v.number,
                    description: v.description,
                    created_ms: r.start,
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
                    return Err(r.invalid(format!(
                        "function `{}`: alias `{}` points at version {version}, which is not defined",
                        f.name, a.name
                    )));
                }
            }
            if let Some((_, weight)) = routing.filter(|(_, w)| !(0.0..1.0).contains(w)) {
                return Err(r.invalid(format!(
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
                return Err(r.invalid(format!(
                    "function `{}`: traffic goes to alias `{}`, which is not defined",
                    f.name, t.alias
                )));
            }
            let daily = daily(&format!("function `{}`: traffic", f.name), t.daily_amplitude, &t.peak)
                .map_err(|m| r.invalid(m))?;
            function.traffic = Some(Traffic { alias: t.alias, rps: t.rps.max(0.0), daily });
        }
        functions.insert(function.name.clone(), function);
    }
    Ok(functions)
}

/// The `[[service]]` tables: revisions (created a minute apart before the start) and a traffic split that adds up.
fn services(r: &Reading<'_>, files: Vec<ServiceFile>) -> Result<BTreeMap<String, RunService>, ScenarioError> {
    let mut services = BTreeMap::new();
    for (i, f) in files.into_iter().enumerate() {
        let mut service = RunService::new(&f.project, &f.location, &f.name, r.start);
        service.rps = f.rps.max(0.0);
        service.daily =
            daily(&format!("service `{}`", f.name), f.daily_amplitude, &f.peak).map_err(|m| r.invalid(m))?;
        service.min_instances = f.min_instances;
        service.max_instances = f.max_instances;
        service.annotations = f.annotations;
        let count = f.revision.len() as i64;
        for (j, rev) in f.revision.into_iter().enumerate() {
            if !(0.0..=1.0).contains(&rev.error_rate) {
                return Err(r.invalid(format!(
                    "service[{i}].revision {}: error_rate must be in [0, 1], got {}",
                    rev.name, rev.error_rate
                )));
            }
            // Revisions are created in file order, a minute apart, the last one just before `start`.
            let created_ms = r.start - (count - j as i64) * 60_000;
            service.revisions.insert(
                rev.name.clone(),
                RunRevision {
                    name: rev.name,
                    created_ms,
                    latency_ms: rev.latency_ms,
                    jitter: rev.jitter,
                    cold_start_ms: rev.cold_start_ms,
                    error_rate: rev.error_rate,
                    concurrency: rev.concurrency.max(1),
                    min_instances: rev.min_instances,
                    faults: Vec::new(),
                },
            );
        }
        for t in f.traffic {
            let revision = t.revision.unwrap_or_default();
            if !t.latest && !service.revisions.contains_key(&revision) {
                return Err(r.invalid(format!(
                    "service `{}`: traffic names revision {revision:?}, which is not defined",
                    f.name
                )));
            }
            service.traffic.push(TrafficTarget { latest: t.latest, revision, percent: t.percent, tag: t.tag });
        }
        let total: u32 = service.traffic.iter().map(|t| t.percent).sum();
        if total != 100 {
            return Err(r.invalid(format!("service `{}`: traffic percentages add up to {total}, not 100", f.name)));
        }
        services.insert(f.name.clone(), service);
    }
    Ok(services)
}

/// The `[[fault]]` tables, each attached to the function version or service revision it names.
fn faults(
    r: &Reading<'_>,
    files: Vec<FaultFile>,
    functions: &mut BTreeMap<String, Function>,
    services: &mut BTreeMap<String, RunService>,
) -> Result<(), ScenarioError> {
    for (i, fault) in files.into_iter().enumerate() {
        let from_ms =
            r.start + crate::parse_duration_ms(&fault.from).map_err(|m| r.invalid(format!("fault[{i}].from: {m}")))?;
        let until_ms = match &fault.until {
            Some(t) => {
                Some(r.start + crate::parse_duration_ms(t).map_err(|m| r.invalid(format!("fault[{i}].until: {m}")))?)
            }
            None => None,
        };
        let ramp_ms = match &fault.ramp {
            Some(t) => crate::parse_duration_ms(t).map_err(|m| r.invalid(format!("fault[{i}].ramp: {m}")))?,
            None => 0,
        };
        if let Some(rate) = fault.error_rate.filter(|r| !(0.0..=1.0).contains(r)) {
            return Err(r.invalid(format!("fault[{i}].error_rate: must be in [0, 1], got {rate}")));
        }
        let spec = Fault {
            from_ms,
            until_ms,
            ramp_ms,
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
                return Err(r.invalid(format!(
                    "fault[{i}]: give `function` and `version` (Lambda) or `service` and `revision` (Cloud Run)"
                )));
            }
        };
        faults
            .ok_or_else(|| r.invalid(format!("fault[{i}]: no such function version or service revision")))?
            .push(spec);
    }
    Ok(())
}

/// The `[[deploy]]` tables: changes of an alias or a split at a time, checked against what exists.
fn deploys(
    r: &Reading<'_>,
    files: Vec<DeployFile>,
    functions: &BTreeMap<String, Function>,
    services: &BTreeMap<String, RunService>,
) -> Result<Vec<Deploy>, ScenarioError> {
    let mut deploys = Vec::new();
    for (i, d) in files.into_iter().enumerate() {
        let at_ms = r.at(format!("deploy[{i}].at"), &d.at)?;
        let change = match (d.function, d.alias, d.version, d.service) {
            (Some(function), Some(alias), Some(version), None) if d.traffic.is_empty() => {
                let known = functions.get(&function).is_some_and(|f| {
                    f.aliases.contains_key(&alias)
                        && std::iter::once(version)
                            .chain(d.routing.as_ref().map(|r| r.version))
                            .all(|v| f.versions.contains_key(&v))
                });
                if !known {
                    return Err(r.invalid(format!(
                        "deploy[{i}]: function `{function}` has no alias `{alias}` or no such version"
                    )));
                }
                DeployChange::Alias { function, alias, version, routing: d.routing.map(|r| (r.version, r.weight)) }
            }
            (None, None, None, Some(service)) if !d.traffic.is_empty() => {
                let traffic: Vec<TrafficTarget> = d
                    .traffic
                    .into_iter()
                    .map(|t| TrafficTarget {
                        latest: t.latest,
                        revision: t.revision.unwrap_or_default(),
                        percent: t.percent,
                        tag: t.tag,
                    })
                    .collect();
                let total: u32 = traffic.iter().map(|t| t.percent).sum();
                if total != 100 || !services.values().any(|s| s.name == service) {
                    return Err(r.invalid(format!(
                        "deploy[{i}]: no service `{service}`, or its traffic adds up to {total}, not 100"
                    )));
                }
                DeployChange::Traffic { service, traffic }
            }
            _ => {
                return Err(r.invalid(format!(
                    "deploy[{i}]: give `function`, `alias`, `version` (and `routing`) for Lambda, or `service` and `traffic` for Cloud Run"
                )));
            }
        };
        deploys.push(Deploy { at_ms, change });
    }
    Ok(deploys)
}

/// The `[[gap]]` tables: spans where a revision's metrics are missing.
fn gaps(r: &Reading<'_>, files: Vec<GapFile>) -> Result<Vec<Gap>, ScenarioError> {
    let mut gaps = Vec::new();
    for (i, g) in files.into_iter().enumerate() {
        let (from_ms, until_ms) =
            (r.at(format!("gap[{i}].from"), &g.from)?, r.at(format!("gap[{i}].until"), &g.until)?);
        let (resource, revision) = match (g.function, g.version, g.service, g.revision) {
            (Some(function), Some(version), None, None) => (function, version.to_string()),
            (None, None, Some(service), Some(revision)) => (service, revision),
            _ => {
                return Err(r.invalid(format!(
                    "gap[{i}]: give `function` and `version` (Lambda) or `service` and `revision` (Cloud Run)"
                )));
            }
        };
        gaps.push(Gap { resource, revision, from_ms, until_ms });
    }
    Ok(gaps)
}

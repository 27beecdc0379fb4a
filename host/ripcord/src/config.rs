//! `guards.toml`: what ripcord guards and how. Parsed strictly (`deny_unknown_fields`), resolved against
//! `[defaults]`, and validated; every error names the file, the field and the value.

use crate::evaluation::{ParamValue, Platform};
use crate::runtime::PluginSource;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest guard name (it becomes part of audit record ids and log lines).
pub const MAX_GUARD_NAME: usize = 128;
/// Bounds on durations: past these a value is a typo, and would overflow the millisecond arithmetic downstream.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Longest window, and longest span of all windows of one evaluation.
pub const MAX_SPAN: Duration = Duration::from_secs(24 * 3600);
/// Longest cooldown and settle time.
pub const MAX_HOLD: Duration = Duration::from_secs(30 * 24 * 3600);
pub const MAX_PREWARM_TIMEOUT: Duration = Duration::from_secs(3600);
/// Bytes of a value quoted back in an error message.
const MAX_ECHO: usize = 80;

/// `value`, quoted for an error message, cut to [`MAX_ECHO`] bytes.
pub(crate) fn echo(value: &str) -> String {
    format!("{:?}", crate::text::truncate(value, MAX_ECHO))
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {field}: {message}")]
    Invalid { path: PathBuf, field: String, message: String },
}

/// Whether ripcord acts or only reports what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Enforce,
    DryRun,
}

/// When to warm the rollback target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrewarmMode {
    /// Never: pin immediately.
    Off,
    /// Warm the target right before pinning it.
    OnRollback,
    /// Keep the last known good warm while a candidate bakes, and warm it before pinning.
    Standby,
}

/// What a verdict-less situation (a policy error, no data) counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fallback {
    Inconclusive,
    Hold,
    Rollback,
}

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockKind {
    /// The system clock (production).
    System,
    /// The simulator's virtual clock, read from the `endpoint_url` of `[aws]` or `[gcp]` (`ripcord sim serve`).
    Simulator,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    settings: SettingsFile,
    #[serde(default)]
    aws: AwsFile,
    #[serde(default)]
    gcp: GcpFile,
    #[serde(default)]
    defaults: DefaultsFile,
    #[serde(default)]
    guard: Vec<GuardFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    audit_log: Option<PathBuf>,
    webhook: Option<String>,
    clock: Option<ClockKind>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsFile {
    region: Option<String>,
    endpoint_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GcpFile {
    endpoint_url: Option<String>,
    warmup_path: Option<String>,
}

/// Settings a guard inherits from `[defaults]` unless it sets them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsFile {
    interval: Option<String>,
    window: Option<String>,
    windows: Option<usize>,
    prewarm: Option<PrewarmMode>,
    prewarm_headroom: Option<f64>,
    prewarm_timeout: Option<String>,
    settle: Option<String>,
    mode: Option<Mode>,
    cooldown: Option<String>,
    on_policy_error: Option<Fallback>,
    no_data: Option<Fallback>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardFile {
    name: String,
    platform: Platform,
    function: Option<String>,
    alias: Option<String>,
    region: Option<String>,
    project: Option<String>,
    location: Option<String>,
    service: Option<String>,
    #[serde(default)]
    policies: Vec<PolicyFile>,
    #[serde(default)]
    metrics: BTreeMap<String, CustomMetricFile>,
    #[serde(flatten)]
    overrides: DefaultsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(rename = "use")]
    source: String,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomMetricFile {
    namespace: String,
    name: String,
    #[serde(default = "default_stat")]
    stat: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

fn default_stat() -> String {
    "Sum".to_string()
}

/// The whole configuration, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from (for messages and relative paths).
    pub path: PathBuf,
    pub audit_log: PathBuf,
    pub webhook: Option<String>,
    pub clock: ClockKind,
    pub aws: AwsSettings,
    pub gcp: GcpSettings,
    pub guards: Vec<Guard>,
}

/// How to reach Google Cloud.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GcpSettings {
    /// An endpoint override for Cloud Run and Cloud Monitoring (the simulator); with it, anonymous credentials.
    pub endpoint_url: Option<String>,
    /// Path the warm-up requests ask for on a revision's tag URL.
    pub warmup_path: String,
}

/// How to reach AWS.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    /// An endpoint override (the simulator, moto); with it, static test credentials are used.
    pub endpoint_url: Option<String>,
}

/// What a guard watches.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Lambda { function: String, alias: String, region: Option<String> },
    CloudRun { project: String, location: String, service: String },
}

/// A policy of a guard.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRef {
    pub source: PluginSource,
    pub params: BTreeMap<String, ParamValue>,
}

/// A metric the guard declares beyond the canonical ones, with its provider query.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomMetric {
    pub namespace: String,
    pub name: String,
    pub stat: String,
    /// Values may use `{function}`, `{alias}` and `{version}`.
    pub dimensions: BTreeMap<String, String>,
}

/// One guard, with every setting resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    pub name: String,
    pub target: Target,
    pub policies: Vec<PolicyRef>,
    pub metrics: BTreeMap<String, CustomMetric>,
    pub interval: Duration,
    pub window: Duration,
    pub windows: usize,
    pub prewarm: PrewarmMode,
    pub prewarm_headroom: f64,
    pub prewarm_timeout: Duration,
    pub settle: Duration,
    pub mode: Mode,
    pub cooldown: Duration,
    pub on_policy_error: Fallback,
    pub no_data: Fallback,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(&text, path)
    }

    /// Parses and validates a configuration; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.into(),
            field: field.to_string(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| toml_error(path, text, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut names = std::collections::BTreeSet::new();
        let mut guards = Vec::new();
        if file.guard.is_empty() {
            return Err(invalid(
                "guard",
                "no [[guard]] defined; a configuration guards at least one deployment".into(),
            ));
        }
        for (i, g) in file.guard.into_iter().enumerate() {
            let at = |field: &str| format!("guard[{i}].{field}");
            if g.name.is_empty()
                || g.name.len() > MAX_GUARD_NAME
                || !g.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                let message =
                    format!("must be 1 to {MAX_GUARD_NAME} letters, digits, '-', '_' or '.', got {}", echo(&g.name));
                return Err(invalid(&at("name"), message));
            }
            if !names.insert(g.name.clone()) {
                return Err(invalid(&at("name"), format!("duplicate guard name {}", echo(&g.name))));
            }
            let target = match g.platform {
                Platform::AwsLambda => {
                    for (field, value) in [("project", &g.project), ("location", &g.location), ("service", &g.service)]
                    {
                        if value.is_some() {
                            return Err(invalid(&at(field), "is a cloud-run setting; this guard is aws-lambda".into()));
                        }
                    }
                    let function = g
                        .function
                        .clone()
                        .ok_or_else(|| invalid(&at("function"), "is required for aws-lambda".into()))?;
                    let alias =
                        g.alias.clone().ok_or_else(|| invalid(&at("alias"), "is required for aws-lambda".into()))?;
                    names::lambda_function(&function).map_err(|m| invalid(&at("function"), m))?;
                    names::lambda_alias(&alias).map_err(|m| invalid(&at("alias"), m))?;
                    if let Some(region) = &g.region {
                        names::aws_region(region).map_err(|m| invalid(&at("region"), m))?;
                    }
                    Target::Lambda { function, alias, region: g.region.clone() }
                }
                Platform::CloudRun => {
                    for (field, value) in [("function", &g.function), ("alias", &g.alias), ("region", &g.region)] {
                        if value.is_some() {
                            return Err(invalid(
                                &at(field),
                                "is an aws-lambda setting; this guard is cloud-run".into(),
                            ));
                        }
                    }
                    let need = |field: &str, v: &Option<String>| {
                        v.clone().ok_or_else(|| invalid(&at(field), "is required for cloud-run".into()))
                    };
                    let (project, location, service) =
                        (need("project", &g.project)?, need("location", &g.location)?, need("service", &g.service)?);
                    names::gcp_project(&project).map_err(|m| invalid(&at("project"), m))?;
                    names::gcp_location(&location).map_err(|m| invalid(&at("location"), m))?;
                    names::cloud_run_service(&service).map_err(|m| invalid(&at("service"), m))?;
                    Target::CloudRun { project, location, service }
                }
            };
            if g.policies.is_empty() {
                return Err(invalid(&at("policies"), "at least one policy is required".into()));
            }
            let policies = g
                .policies
                .into_iter()
                .enumerate()
                .map(|(j, p)| policy(p, base).map_err(|(field, m)| invalid(&at(&format!("policies[{j}].{field}")), m)))
                .collect::<Result<Vec<_>, _>>()?;
            let metrics = g
                .metrics
                .into_iter()
                .map(|(name, m)| {
                    if crate::evaluation::CANONICAL_METRICS.contains(&name.as_str()) {
                        let message = format!("{name:?} is a canonical metric; custom metrics need another name");
                        return Err(invalid(&at(&format!("metrics.{name}")), message));
                    }
                    let metric =
                        CustomMetric { namespace: m.namespace, name: m.name, stat: m.stat, dimensions: m.dimensions };
                    Ok((name, metric))
                })
                .collect::<Result<BTreeMap<_, _>, _>>()?;
            let settings = resolve(&file.defaults, &g.overrides).map_err(|(field, m)| {
                let field = if g.overrides.names(field) { at(field) } else { format!("defaults.{field}") };
                invalid(&field, m)
            })?;
            guards.push(Guard { name: g.name, target, policies, metrics, ..settings });
        }
        let audit_log = file.settings.audit_log.map_or_else(|| base.join("ripcord-audit.jsonl"), |p| base.join(p));
        for (field, url) in [
            ("settings.webhook", &file.settings.webhook),
            ("aws.endpoint_url", &file.aws.endpoint_url),
            ("gcp.endpoint_url", &file.gcp.endpoint_url),
        ] {
            if let Some(url) = url {
                names::http_url(url).map_err(|m| invalid(field, m))?;
            }
        }
        if let Some(region) = &file.aws.region {
            names::aws_region(region).map_err(|m| invalid("aws.region", m))?;
        }
        let warmup_path = file.gcp.warmup_path.unwrap_or_else(|| "/".to_string());
        if !warmup_path.starts_with('/') {
            return Err(invalid("gcp.warmup_path", format!("must start with '/', got {}", echo(&warmup_path))));
        }
        let clock = file.settings.clock.unwrap_or(ClockKind::System);
        if clock == ClockKind::Simulator && file.aws.endpoint_url.is_none() && file.gcp.endpoint_url.is_none() {
            let message = "\"simulator\" needs an endpoint_url in [aws] or [gcp] (the simulator)".into();
            return Err(invalid("settings.clock", message));
        }
        Ok(Config {
            path: path.into(),
            audit_log,
            webhook: file.settings.webhook,
            clock,
            aws: AwsSettings { region: file.aws.region, endpoint_url: file.aws.endpoint_url },
            gcp: GcpSettings { endpoint_url: file.gcp.endpoint_url, warmup_path },
            guards,
        })
    }

    /// The guard named `name`.
    pub fn guard(&self, name: &str) -> Option<&Guard> {
        self.guards.iter().find(|g| g.name == name)
    }

    /// The names of the guards in shard `index` of `count` (a Cloud Run Job's task, say): the guards ordered by
    /// batch (region or project) and name, cut into `count` contiguous runs of near-equal length, so each shard
    /// keeps as much of one metrics batch as it can and every guard is in exactly one shard.
    pub fn shard(&self, index: usize, count: usize) -> Vec<String> {
        let mut guards: Vec<(String, &str)> = self.guards.iter().map(|g| (g.batch_key(), g.name.as_str())).collect();
        guards.sort();
        let count = count.max(1);
        let (from, to) = (index * guards.len() / count, (index + 1) * guards.len() / count);
        guards.get(from..to.min(guards.len())).unwrap_or_default().iter().map(|(_, name)| name.to_string()).collect()
    }
}

impl Guard {
    /// The platform the guarded deployment runs on.
    pub fn platform(&self) -> Platform {
        match self.target {
            Target::Lambda { .. } => Platform::AwsLambda,
            Target::CloudRun { .. } => Platform::CloudRun,
        }
    }

    /// Guards sharing a region (Lambda) or a project (Cloud Run) share a platform client and a metrics batch.
    pub fn batch_key(&self) -> String {
        match &self.target {
            Target::Lambda { region, .. } => format!("aws/{}", region.as_deref().unwrap_or("")),
            Target::CloudRun { project, .. } => format!("gcp/{project}"),
        }
    }
}

impl DefaultsFile {
    /// Whether the guard itself sets `field` (so an error points at the guard, not at `[defaults]`).
    fn names(&self, field: &str) -> bool {
        match field {
            "interval" => self.interval.is_some(),
            "window" => self.window.is_some(),
            "windows" => self.windows.is_some(),
            "prewarm_headroom" => self.prewarm_headroom.is_some(),
            "prewarm_timeout" => self.prewarm_timeout.is_some(),
            "settle" => self.settle.is_some(),
            "cooldown" => self.cooldown.is_some(),
            _ => false,
        }
    }
}

/// Defaults overridden by a guard, checked; errors are `(field, message)`.
fn resolve(defaults: &DefaultsFile, guard: &DefaultsFile) -> Result<Guard, (&'static str, String)> {
    let duration = |field: &'static str, g: &Option<String>, d: &Option<String>, fallback: &str, max: Duration| {
        let text = g.as_deref().or(d.as_deref()).unwrap_or(fallback);
        let value =
            humantime::parse_duration(text).map_err(|e| (field, format!("invalid duration {}: {e}", echo(text))))?;
        if value > max {
            let message = format!("must be at most {}, got {}", humantime::format_duration(max), echo(text));
            return Err((field, message));
        }
        Ok(value)
    };
    let interval = duration("interval", &guard.interval, &defaults.interval, "1m", MAX_INTERVAL)?;
    let window = duration("window", &guard.window, &defaults.window, "5m", MAX_SPAN)?;
    let cooldown = duration("cooldown", &guard.cooldown, &defaults.cooldown, "30m", MAX_HOLD)?;
    let prewarm_timeout =
        duration("prewarm_timeout", &guard.prewarm_timeout, &defaults.prewarm_timeout, "2m", MAX_PREWARM_TIMEOUT)?;
    let settle = duration("settle", &guard.settle, &defaults.settle, "15m", MAX_HOLD)?;
    if window < Duration::from_secs(60) || window.as_secs() % 60 != 0 {
        return Err(("window", format!("must be a whole number of minutes (metric periods are 1m), got {window:?}")));
    }
    if interval.is_zero() {
        return Err(("interval", "must be positive".into()));
    }
    let windows = guard.windows.or(defaults.windows).unwrap_or(4);
    if !(1..=60).contains(&windows) {
        return Err(("windows", format!("must be between 1 and 60, got {windows}")));
    }
    if window * windows as u32 > MAX_SPAN {
        let message = format!(
            "{windows} windows of {} span {}, more than the {} one evaluation may cover",
            humantime::format_duration(window),
            humantime::format_duration(window * windows as u32),
            humantime::format_duration(MAX_SPAN)
        );
        return Err(("windows", message));
    }
    let prewarm_headroom = guard.prewarm_headroom.or(defaults.prewarm_headroom).unwrap_or(1.5);
    if !(1.0..=10.0).contains(&prewarm_headroom) {
        return Err(("prewarm_headroom", format!("must be between 1.0 and 10.0, got {prewarm_headroom}")));
    }
    Ok(Guard {
        name: String::new(),
        target: Target::Lambda { function: String::new(), alias: String::new(), region: None },
        policies: Vec::new(),
        metrics: BTreeMap::new(),
        interval,
        window,
        windows,
        prewarm: guard.prewarm.or(defaults.prewarm).unwrap_or(PrewarmMode::OnRollback),
        prewarm_headroom,
        prewarm_timeout,
        settle,
        mode: guard.mode.or(defaults.mode).unwrap_or(Mode::Enforce),
        cooldown,
        on_policy_error: guard.on_policy_error.or(defaults.on_policy_error).unwrap_or(Fallback::Inconclusive),
        no_data: guard.no_data.or(defaults.no_data).unwrap_or(Fallback::Inconclusive),
    })
}

fn policy(p: PolicyFile, base: &Path) -> Result<PolicyRef, (String, String)> {
    let source: PluginSource = match p.source.parse() {
        Ok(PluginSource::File(path)) if path.is_relative() => PluginSource::File(base.join(path)),
        Ok(other) => other,
        Err(never) => match never {},
    };
    if let PluginSource::Builtin(name) = &source
        && crate::builtins::find(name).is_none()
    {
        let message =
            format!("unknown built-in {}; the built-ins are {}", echo(&p.source), crate::builtins::names().join(", "));
        return Err(("use".into(), message));
    }
    let params = p
        .params
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                toml::Value::Boolean(b) => ParamValue::Boolean(b),
                toml::Value::Integer(i) => ParamValue::Integer(i),
                toml::Value::Float(f) => ParamValue::Float(f),
                toml::Value::String(s) => ParamValue::Text(s),
                other => {
                    let message = format!("must be a boolean, number or string, got {}", echo(&other.to_string()));
                    return Err((format!("params.{name}"), message));
                }
            };
            Ok((name, value))
        })
        .collect::<Result<_, _>>()?;
    Ok(PolicyRef { source, params })
}

/// Checks of the names and addresses a guard is configured with, so a typo is reported at load with the usual
/// message rather than at the first call as an SDK's internals. They check the shape the cloud's API accepts
/// (characters, length), not that the thing exists.
mod names {
    use super::echo;

    fn shape(value: &str, max: usize, allowed: impl Fn(char) -> bool, what: &str) -> Result<(), String> {
        if value.is_empty() {
            return Err(format!("must not be empty: give {what}"));
        }
        if value.len() > max || !value.chars().all(allowed) {
            return Err(format!("must be {what} of at most {max} characters, got {}", echo(value)));
        }
        Ok(())
    }

    pub(super) fn lambda_function(value: &str) -> Result<(), String> {
        let name = value.strip_prefix("arn:").map_or(value, |_| value.rsplit(':').next().unwrap_or(value));
        shape(value, 140, |c| c.is_ascii_alphanumeric() || "-_:".contains(c), "a function name or ARN")?;
        shape(name, 64, |c| c.is_ascii_alphanumeric() || "-_".contains(c), "a function name (letters, digits, - and _)")
    }

    pub(super) fn lambda_alias(value: &str) -> Result<(), String> {
        shape(
            value,
            128,
            |c| c.is_ascii_alphanumeric() || "-_".contains(c),
            "an alias name (letters, digits, - and _)",
        )?;
        if value.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("must be an alias name, got the version number {}", echo(value)));
        }
        Ok(())
    }

    pub(super) fn aws_region(value: &str) -> Result<(), String> {
        let what = "an AWS region such as \"us-east-1\"";
        shape(value, 32, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-', what)?;
        let parts: Vec<&str> = value.split('-').collect();
        let ok = parts.len() >= 3
            && parts.first().is_some_and(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_lowercase()))
            && parts.last().is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if ok { Ok(()) } else { Err(format!("must be {what}, got {}", echo(value))) }
    }

    pub(super) fn gcp_project(value: &str) -> Result<(), String> {
        dns_label(value, 30, "a project ID (lowercase letters, digits and -, starting with a letter)")
    }

    pub(super) fn gcp_location(value: &str) -> Result<(), String> {
        let what = "a Cloud Run region such as \"europe-west1\"";
        shape(value, 32, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-', what)?;
        if value.contains('-') && value.ends_with(|c: char| c.is_ascii_digit()) {
            Ok(())
        } else {
            Err(format!("must be {what}, got {}", echo(value)))
        }
    }

    pub(super) fn cloud_run_service(value: &str) -> Result<(), String> {
        dns_label(value, 49, "a service name (lowercase letters, digits and -, starting with a letter)")
    }

    /// Lowercase letters, digits and `-`, starting with a letter and not ending with `-`.
    fn dns_label(value: &str, max: usize, what: &str) -> Result<(), String> {
        shape(value, max, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-', what)?;
        if value.starts_with(|c: char| c.is_ascii_lowercase()) && !value.ends_with('-') {
            Ok(())
        } else {
            Err(format!("must be {what}, got {}", echo(value)))
        }
    }

    /// An http(s) URL with a host (and a valid port, if it has one).
    pub(super) fn http_url(value: &str) -> Result<(), String> {
        let what = "an http(s) URL such as \"http://127.0.0.1:4566\"";
        let url = reqwest::Url::parse(value).map_err(|e| format!("must be {what}, got {} ({e})", echo(value)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(format!("must be {what}, got {}", echo(value)));
        }
        Ok(())
    }
}

/// Turns a TOML error into one naming the file, the field path and the line.
fn toml_error(path: &Path, text: &str, error: toml::de::Error) -> ConfigError {
    let message = crate::text::truncate(error.message().trim_end(), 4 * MAX_ECHO).into_owned();
    let field = match error.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line = text[..start].matches('\n').count() + 1;
            let source = text.lines().nth(line - 1).unwrap_or_default().trim();
            format!("line {line} `{}`", crate::text::truncate(source, MAX_ECHO))
        }
        None => "(document)".to_string(),
    };
    ConfigError::Invalid { path: path.into(), field, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_guard_once_and_keep_batches_together() {
        let mut text = String::new();
        for (name, region) in
            [("e", "eu-west-1"), ("a", "us-east-1"), ("d", "eu-west-1"), ("b", "us-east-1"), ("c", "eu-west-1")]
        {
            text.push_str(&format!(
                "[[guard]]\nname = \"{name}\"\nplatform = \"aws-lambda\"\nfunction = \"f{name}\"\nalias = \"live\"\nregion = \"{region}\"\npolicies = [{{ use = \"builtin:error-rate\" }}]\n"
            ));
        }
        let config = Config::parse(&text, Path::new("guards.toml")).unwrap_or_else(|e| panic!("{e}"));
        let shards: Vec<Vec<String>> = (0..2).map(|i| config.shard(i, 2)).collect();
        assert_eq!(shards, [vec!["c", "d"], vec!["e", "a", "b"]]);
        let mut all: Vec<String> = (0..4).flat_map(|i| config.shard(i, 4)).collect();
        all.sort();
        assert_eq!(all, ["a", "b", "c", "d", "e"]);
        assert_eq!(config.shard(0, 1).len(), 5);
        assert!(config.shard(5, 2).is_empty(), "an index past the count gets nothing");
    }
}

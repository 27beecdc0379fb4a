//! `guards.toml`: what ripcord guards and how. Parsed strictly (`deny_unknown_fields`), resolved against
//! `[defaults]`, and validated; every error names the file, the field and the value.

mod file;
mod guard;
mod names;

use crate::evaluation::{ParamValue, Platform};
use crate::runtime::PluginSource;
use file::{File, toml_error};
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
/// Calls per second per changing API operation, unless `[aws]` or `[gcp]` say otherwise: below Lambda's 15 per
/// second per control-plane API, leaving room for the deploy tooling that shares the limit.
pub const DEFAULT_CHANGES_PER_SECOND: f64 = 10.0;
pub const MAX_PREWARM_TIMEOUT: Duration = Duration::from_secs(3600);
/// Bytes of a value quoted back in an error message.
pub(crate) const MAX_ECHO: usize = 80;

/// `value`, quoted for an error message, cut to [`MAX_ECHO`] bytes.
pub(crate) fn echo(value: &str) -> String {
    format!("{:?}", crate::text::truncate(value, MAX_ECHO))
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
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

/// The whole configuration, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from (for messages and relative paths).
    pub path: PathBuf,
    pub audit_log: PathBuf,
    pub webhook: Option<String>,
    /// What the webhook is sent: the audit record (default) or a Slack incoming-webhook message.
    pub webhook_format: WebhookFormat,
    /// Where people open the report (linked from notifications), if the team publishes it.
    pub report_url: Option<String>,
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
    /// Calls per second per changing API operation (`provider/pacing.rs`).
    pub changes_per_second: f64,
}

/// What the webhook is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookFormat {
    /// Each intent and result (and each shared degradation) as its audit record, JSON.
    #[default]
    Json,
    /// A Slack incoming-webhook message: `{"text": headline, link to the report}`.
    Slack,
}

/// How to reach AWS.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    /// An endpoint override (the simulator, moto); with it, static test credentials are used.
    pub endpoint_url: Option<String>,
    /// Calls per second per changing API operation (`provider/pacing.rs`).
    pub changes_per_second: f64,
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
    /// How long a candidate serves all traffic, judged and never held or rolled back, before it is recorded as
    /// the last known good.
    pub bake: Duration,
    /// How much of the known good's history, before the candidate's first traffic, is its historical baseline.
    pub history: Duration,
    /// How long the platform takes to publish a minute's metrics: the evaluation ends at the last minute that
    /// ended at least this long ago, so a minute still arriving (late and partial) is never judged.
    pub metrics_delay: Duration,
    pub mode: Mode,
    pub cooldown: Duration,
    pub on_policy_error: Fallback,
    pub no_data: Fallback,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read { path: path.into(), cause })?;
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
            let guard = guard::resolve(g, &file.defaults, base).map_err(|(field, message)| {
                let field = if field.starts_with("defaults.") { field } else { format!("guard[{i}].{field}") };
                invalid(&field, message)
            })?;
            if !names.insert(guard.name.clone()) {
                return Err(invalid(
                    &format!("guard[{i}].name"),
                    format!("duplicate guard name {}", echo(&guard.name)),
                ));
            }
            guards.push(guard);
        }
        let audit_log = file.settings.audit_log.map_or_else(|| base.join("ripcord-audit.jsonl"), |p| base.join(p));
        for (field, url) in [
            ("settings.webhook", &file.settings.webhook),
            ("settings.report_url", &file.settings.report_url),
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
        let mut rates = [
            ("aws.changes_per_second", file.aws.changes_per_second),
            ("gcp.changes_per_second", file.gcp.changes_per_second),
        ]
        .map(|(field, rate)| (field, rate.unwrap_or(DEFAULT_CHANGES_PER_SECOND)));
        for (field, rate) in &mut rates {
            if !(rate.is_finite() && *rate > 0.0 && *rate <= 10_000.0) {
                return Err(invalid(field, format!("must be a number of calls per second in (0, 10000], got {rate}")));
            }
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
            webhook_format: file.settings.webhook_format.unwrap_or_default(),
            report_url: file.settings.report_url,
            clock,
            aws: AwsSettings {
                region: file.aws.region,
                endpoint_url: file.aws.endpoint_url,
                changes_per_second: rates[0].1,
            },
            gcp: GcpSettings { endpoint_url: file.gcp.endpoint_url, warmup_path, changes_per_second: rates[1].1 },
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

/// A Lambda guard `g` on `f:live` with builtin:error-rate and the guard `settings` (TOML lines), for unit tests.
#[cfg(test)]
pub(crate) fn test_guard(settings: &str) -> Guard {
    let text = format!(
        "[[guard]]\nname = \"g\"\nplatform = \"aws-lambda\"\nfunction = \"f\"\nalias = \"live\"\n{settings}\npolicies = [{{ use = \"builtin:error-rate\" }}]\n"
    );
    let config = Config::parse(&text, Path::new("guards.toml"));
    config.unwrap_or_else(|e| panic!("{e}")).guards.remove(0)
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

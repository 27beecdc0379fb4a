//! `guards.toml`: what ripcord guards and how. Parsed strictly (`deny_unknown_fields`), resolved against
//! `[defaults]`, and validated; every error names the file, the field and the value.

mod file;
pub mod quotas;
pub use quotas::{AwsQuotas, GcpQuotas};
mod guard;
mod names;

use crate::model::evaluation::{ParamValue, Platform};
use crate::plugin::runtime::PluginSource;
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
    format!("{:?}", crate::model::text::truncate(value, MAX_ECHO))
}

/// A configuration that could not be loaded, or one problem of it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("{path}: {field}: {message}")]
    Invalid { path: PathBuf, field: String, message: String },
    /// A problem of one guard's.
    #[error(transparent)]
    Guard(Problem),
    /// Every problem found, one per line (`validate` and the load of a configuration list them all).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// `problems` as one error: the problem itself when there is one, else all of them. `None` when there is none.
    pub fn all(mut problems: Vec<ConfigError>) -> Option<Self> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(Self::Several(problems)),
        }
    }

    /// The problems this error holds, each on its own.
    pub fn problems(&self) -> Vec<&ConfigError> {
        match self {
            Self::Several(all) => all.iter().flat_map(ConfigError::problems).collect(),
            one => vec![one],
        }
    }
}

/// A problem of one guard: the file, the guard, the field (`guard[1].policies[0].use`) and what is wrong with its
/// value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {field}: {}{message}", path.display(), guard_prefix(guard))]
pub struct Problem {
    pub path: PathBuf,
    /// The guard's name; `None` when the name itself is what is invalid (the field then says which guard).
    pub guard: Option<String>,
    pub field: String,
    pub message: String,
}

fn guard_prefix(guard: &Option<String>) -> String {
    guard.as_ref().map(|g| format!("guard {}: ", echo(g))).unwrap_or_default()
}

/// A `[[guard]]` that cannot be served as configured: a field of its own that is invalid, or (found by
/// the policy set) a policy that cannot be loaded or refuses its parameters. It is an error every
/// cycle — its cause in the output, the audit log, the metrics and the notification — while every other guard is
/// served.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokenGuard {
    /// Its name, or `guard[N]` when the name itself is invalid.
    pub name: String,
    /// Every problem, each naming the file, the field and the value.
    pub problems: Vec<Problem>,
}

impl BrokenGuard {
    /// Why the guard is not served, in one line: its problems joined.
    pub fn cause(&self) -> String {
        let problems: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        format!("not served, its configuration is invalid: {}", problems.join("; "))
    }
}

/// Whether ripcord acts, asks a person first, or only reports what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Enforce,
    DryRun,
    /// A rollback verdict becomes a pending rollback an approver approves or rejects (`approval.rs`).
    Approve,
}

/// What becomes of a pending rollback nobody approved or rejected within `approval_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnApprovalTimeout {
    /// Roll back: a failing candidate keeps hurting users while nobody answers.
    Rollback,
    /// Drop it: the candidate's rollbacks are then not acted on, as if rejected.
    Drop,
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
    /// `ripcord serve`'s settings.
    pub server: ServerSettings,
    pub guards: Vec<Guard>,
    /// Guards whose own fields are invalid: each an error every cycle; the other guards are served.
    pub broken: Vec<BrokenGuard>,
}

/// How to reach Google Cloud.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GcpSettings {
    /// An endpoint override for Cloud Run and Cloud Monitoring (the simulator); with it, anonymous credentials.
    pub endpoint_url: Option<String>,
    /// Path the warm-up requests ask for on a revision's tag URL.
    pub warmup_path: String,
    /// Calls per second per changing API operation, below its quota (`provider/quota.rs`).
    pub changes_per_second: f64,
    /// The project's API quotas ripcord keeps to (`provider/quota.rs`).
    pub quotas: GcpQuotas,
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

/// `[server]`: where `ripcord serve` listens and whom it lets in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerSettings {
    pub listen: Option<std::net::SocketAddr>,
    /// The tokens file (`[[token]]` name, role, sha256), relative paths from the configuration's folder.
    pub tokens_file: Option<PathBuf>,
}

/// How to reach AWS.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    /// An endpoint override (the simulator, moto); with it, static test credentials are used.
    pub endpoint_url: Option<String>,
    /// Calls per second per changing API operation, below its quota (`provider/quota.rs`).
    pub changes_per_second: f64,
    /// The account's API quotas ripcord keeps to (`provider/quota.rs`).
    pub quotas: AwsQuotas,
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
    /// Its place among the file's `[[guard]]` tables (`guard[N]` in messages).
    pub index: usize,
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
    /// How long a pending rollback (`mode = "approve"`) waits for a person.
    pub approval_timeout: Duration,
    pub on_approval_timeout: OnApprovalTimeout,
    pub cooldown: Duration,
    pub on_policy_error: Fallback,
    pub no_data: Fallback,
}

impl Config {
    /// Reads and validates `path`, and checks that the audit log's folder exists (a typo there would otherwise
    /// surface only at the first record).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (config, problems) = Self::load_all(path)?;
        match ConfigError::all(problems) {
            None => Ok(config),
            Some(error) => Err(error),
        }
    }

    /// Reads `path` and finds every global problem, the audit log's folder included, without stopping at the
    /// first: the configuration as far as it could be resolved (its served and broken guards), and the problems
    /// that refuse it as a whole (`ripcord validate` lists both). An error only when the file cannot be read or
    /// is not TOML of the expected shape.
    pub fn load_all(path: &Path) -> Result<(Self, Vec<ConfigError>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read { path: path.into(), cause })?;
        let (config, mut problems) = Self::parse_all(&text, path)?;
        let folder = config.audit_log.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !folder.is_dir() {
            let message = format!(
                "the folder {} of {} does not exist (ripcord does not create it)",
                echo(&folder.display().to_string()),
                echo(&config.audit_log.display().to_string())
            );
            problems.push(ConfigError::Invalid { path: path.into(), field: "settings.audit_log".into(), message });
        }
        Ok((config, problems))
    }

    /// Parses and validates a configuration; `path` names it in errors and anchors relative paths.
    ///
    /// What is global refuses the whole configuration, with every such problem: not TOML, an unknown or duplicate
    /// table or key, `[settings]`, `[aws]`, `[gcp]`, `[defaults]`, duplicate guard names, no guard at all. What
    /// belongs to one guard — its platform fields, its settings, its policies' sources and parameters — makes that
    /// guard [`BrokenGuard`] (in `broken`, with every problem) and leaves the others served.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let (config, problems) = Self::parse_all(text, path)?;
        match ConfigError::all(problems) {
            None => Ok(config),
            Some(error) => Err(error),
        }
    }

    /// [`Config::parse`] without refusing: the configuration as far as it could be resolved, and every global
    /// problem; an error only when the text is not TOML of the expected shape.
    pub fn parse_all(text: &str, path: &Path) -> Result<(Self, Vec<ConfigError>), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.into(),
            field: field.to_string(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| toml_error(path, text, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut global = Vec::new();
        if file.guard.is_empty() {
            global
                .push(invalid("guard", "no [[guard]] defined; a configuration guards at least one deployment".into()));
        }
        // `[defaults]` on their own: a problem there is every guard's, so the whole configuration's.
        let defaults_problems = match file::resolve(&file.defaults, &file::DefaultsFile::default()) {
            Ok(_) => Vec::new(),
            Err(found) => found.into_iter().map(|(field, m)| (format!("defaults.{field}"), m)).collect(),
        };
        global.extend(defaults_problems.iter().map(|(field, m)| invalid(field, m.clone())));
        let mut names = std::collections::BTreeSet::new();
        let (mut guards, mut broken) = (Vec::new(), Vec::new());
        for (i, g) in file.guard.into_iter().enumerate() {
            let name = g.name.clone();
            let named = guard::valid_name(&name);
            if named && !names.insert(name.clone()) {
                global.push(invalid(&format!("guard[{i}].name"), format!("duplicate guard name {}", echo(&name))));
                continue;
            }
            match guard::resolve(g, i, &file.defaults, base) {
                Ok(guard) => guards.push(guard),
                Err(found) => {
                    let problems: Vec<Problem> = found
                        .into_iter()
                        .filter(|problem| !defaults_problems.contains(problem))
                        .map(|(field, message)| Problem {
                            path: path.into(),
                            guard: named.then(|| name.clone()),
                            field: if field.starts_with("defaults.") { field } else { format!("guard[{i}].{field}") },
                            message,
                        })
                        .collect();
                    let name = if named { name } else { format!("guard[{i}]") };
                    if !problems.is_empty() {
                        broken.push(BrokenGuard { name, problems });
                    }
                }
            }
        }
        let audit_log = file.settings.audit_log.map_or_else(|| base.join("ripcord-audit.jsonl"), |p| base.join(p));
        for (field, url) in [
            ("settings.webhook", &file.settings.webhook),
            ("settings.report_url", &file.settings.report_url),
            ("aws.endpoint_url", &file.aws.endpoint_url),
            ("gcp.endpoint_url", &file.gcp.endpoint_url),
        ] {
            if let Some(url) = url
                && let Err(message) = names::http_url(url)
            {
                global.push(invalid(field, message));
            }
        }
        if let Some(region) = &file.aws.region
            && let Err(message) = names::aws_region(region)
        {
            global.push(invalid("aws.region", message));
        }
        let warmup_path = file.gcp.warmup_path.unwrap_or_else(|| "/".to_string());
        if !warmup_path.starts_with('/') {
            global.push(invalid("gcp.warmup_path", format!("must start with '/', got {}", echo(&warmup_path))));
        }
        let rates = [
            ("aws.changes_per_second", file.aws.changes_per_second),
            ("gcp.changes_per_second", file.gcp.changes_per_second),
        ]
        .map(|(field, rate)| (field, rate.unwrap_or(DEFAULT_CHANGES_PER_SECOND)));
        for (field, rate) in &rates {
            if !(rate.is_finite() && *rate > 0.0 && *rate <= 10_000.0) {
                global.push(invalid(field, format!("must be a number of calls per second in (0, 10000], got {rate}")));
            }
        }
        let mut quota = |field: &str, value: Option<f64>, default: f64, most: f64| match value {
            None => default,
            Some(v) if v.is_finite() && v > 0.0 && v <= most => v,
            Some(v) => {
                global.push(invalid(field, format!("must be a number in (0, {most}], got {v}")));
                default
            }
        };
        let (aws_defaults, gcp_defaults) = (AwsQuotas::default(), GcpQuotas::default());
        let (q, g) = (&file.aws.quotas, &file.gcp.quotas);
        let aws_quotas = AwsQuotas {
            lambda_per_api: quota("aws.quotas.lambda_per_api", q.lambda_per_api, aws_defaults.lambda_per_api, 1e5),
            get_function: quota("aws.quotas.get_function", q.get_function, aws_defaults.get_function, 1e5),
            get_metric_data: quota("aws.quotas.get_metric_data", q.get_metric_data, aws_defaults.get_metric_data, 1e5),
            list_metrics: quota("aws.quotas.list_metrics", q.list_metrics, aws_defaults.list_metrics, 1e5),
            share: quota("aws.quota_share", file.aws.quota_share, aws_defaults.share, 1.0),
        };
        let gcp_quotas = GcpQuotas {
            run_reads_per_minute: quota(
                "gcp.quotas.run_reads_per_minute",
                g.run_reads_per_minute,
                gcp_defaults.run_reads_per_minute,
                1e7,
            ),
            run_writes_per_minute: quota(
                "gcp.quotas.run_writes_per_minute",
                g.run_writes_per_minute,
                gcp_defaults.run_writes_per_minute,
                1e7,
            ),
            monitoring_reads_per_minute: quota(
                "gcp.quotas.monitoring_reads_per_minute",
                g.monitoring_reads_per_minute,
                gcp_defaults.monitoring_reads_per_minute,
                1e7,
            ),
            share: quota("gcp.quota_share", file.gcp.quota_share, gcp_defaults.share, 1.0),
        };
        let listen = file.server.listen.as_deref().and_then(|text| match text.parse::<std::net::SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                let message = format!("must be an address with a port, like \"0.0.0.0:8080\", got {}", echo(text));
                global.push(invalid("server.listen", message));
                None
            }
        });
        let server = ServerSettings { listen, tokens_file: file.server.tokens_file.map(|p| base.join(p)) };
        let clock = file.settings.clock.unwrap_or(ClockKind::System);
        if clock == ClockKind::Simulator && file.aws.endpoint_url.is_none() && file.gcp.endpoint_url.is_none() {
            let message = "\"simulator\" needs an endpoint_url in [aws] or [gcp] (the simulator)".into();
            global.push(invalid("settings.clock", message));
        }
        let config = Config {
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
                quotas: aws_quotas,
            },
            gcp: GcpSettings {
                endpoint_url: file.gcp.endpoint_url,
                warmup_path,
                changes_per_second: rates[1].1,
                quotas: gcp_quotas,
            },
            server,
            guards,
            broken,
        };
        Ok((config, global))
    }

    /// The configuration if no guard is broken, else every broken guard's problems as one error: for what must
    /// refuse a configuration a guard of which could not be served (the demo, a deployment package).
    pub fn strict(self) -> Result<Self, ConfigError> {
        let problems = self.broken.iter().flat_map(|b| b.problems.iter().cloned().map(ConfigError::Guard));
        match ConfigError::all(problems.collect()) {
            None => Ok(self),
            Some(error) => Err(error),
        }
    }

    /// The names of every guard, served or broken, in the file's order of the served ones then the broken ones.
    pub fn guard_names(&self) -> impl Iterator<Item = &str> {
        self.guards.iter().map(|g| g.name.as_str()).chain(self.broken.iter().map(|b| b.name.as_str()))
    }

    /// The broken guard named `name`.
    pub fn broken_guard(&self, name: &str) -> Option<&BrokenGuard> {
        self.broken.iter().find(|b| b.name == name)
    }

    /// The guard named `name`.
    pub fn guard(&self, name: &str) -> Option<&Guard> {
        self.guards.iter().find(|g| g.name == name)
    }

    /// The names of the guards in shard `index` of `count` (a Cloud Run Job's task, say): the guards ordered by
    /// batch (region or project) and name, cut into `count` contiguous runs of near-equal length, so each shard
    /// keeps as much of one metrics batch as it can and every guard is in exactly one shard.
    pub fn shard(&self, index: usize, count: usize) -> Vec<String> {
        // A broken guard is in a shard too: that task reports it.
        let broken = self.broken.iter().map(|b| (String::new(), b.name.as_str()));
        let mut guards: Vec<(String, &str)> =
            self.guards.iter().map(|g| (g.batch_key(), g.name.as_str())).chain(broken).collect();
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

    /// Whether the guard watches `resource`, as a change event names it: a Lambda function and alias
    /// (`NAME:ALIAS`, or its ARN), a function (any alias of it), a Cloud Run service's full name
    /// (`projects/P/locations/L/services/S`) or its name.
    pub fn watches(&self, resource: &str) -> bool {
        // The function's name from a name or an ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`).
        let function_of = |text: &str| -> (String, Option<String>) {
            let rest = text.split_once(":function:").map_or(text, |(_, rest)| rest);
            match rest.split_once(':') {
                Some((name, qualifier)) => (name.to_string(), Some(qualifier.to_string())),
                None => (rest.to_string(), None),
            }
        };
        match &self.target {
            Target::Lambda { function, alias, .. } => {
                let (named, qualifier) = function_of(resource);
                named == function_of(function).0 && qualifier.is_none_or(|q| q == *alias)
            }
            Target::CloudRun { project, location, service } => {
                resource == service || resource == format!("projects/{project}/locations/{location}/services/{service}")
            }
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
    let config = Config::parse(&text, Path::new("guards.toml")).and_then(Config::strict);
    config.unwrap_or_else(|e| panic!("{e}")).guards.remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_watches_its_function_and_alias_or_its_service_however_named() {
        let lambda = test_guard("");
        for resource in [
            "f:live",
            "f",
            "arn:aws:lambda:us-east-1:123456789012:function:f:live",
            "arn:aws:lambda:us-east-1:1:function:f",
        ] {
            assert!(lambda.watches(resource), "{resource}");
        }
        for resource in
            ["f:canary", "g:live", "arn:aws:lambda:us-east-1:1:function:ff:live", "projects/p/locations/l/services/f"]
        {
            assert!(!lambda.watches(resource), "{resource}");
        }
        let text = "[[guard]]\nname = \"s\"\nplatform = \"cloud-run\"\nproject = \"acme-prod\"\nlocation = \"europe-west1\"\nservice = \"search\"\npolicies = [{ use = \"builtin:error-rate\" }]\n";
        let run = Config::parse(text, Path::new("guards.toml")).unwrap_or_else(|e| panic!("{e}")).guards.remove(0);
        assert!(run.watches("projects/acme-prod/locations/europe-west1/services/search") && run.watches("search"));
        assert!(
            !run.watches("projects/acme-prod/locations/us-central1/services/search") && !run.watches("search:live")
        );
    }

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

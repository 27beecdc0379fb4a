//! guards.toml as written: the serde structures (`deny_unknown_fields` everywhere, so a typo is an error), the
//! settings a guard inherits from `[defaults]` resolved and bounded, and TOML errors turned into ones naming the
//! line.

use super::{
    ClockKind, ConfigError, Fallback, Guard, MAX_ECHO, MAX_HOLD, MAX_INTERVAL, MAX_PREWARM_TIMEOUT, MAX_SPAN, Mode,
    OnApprovalTimeout, PrewarmMode, Target, WebhookFormat, echo,
};
use crate::model::evaluation::Platform;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(default)]
    pub(super) settings: SettingsFile,
    #[serde(default)]
    pub(super) aws: AwsFile,
    #[serde(default)]
    pub(super) gcp: GcpFile,
    #[serde(default)]
    pub(super) defaults: DefaultsFile,
    #[serde(default)]
    pub(super) server: ServerFile,
    #[serde(default)]
    pub(super) guard: Vec<GuardFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerFile {
    pub(super) listen: Option<String>,
    pub(super) tokens_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettingsFile {
    pub(super) audit_log: Option<PathBuf>,
    pub(super) webhook: Option<String>,
    pub(super) webhook_format: Option<WebhookFormat>,
    pub(super) report_url: Option<String>,
    pub(super) clock: Option<ClockKind>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AwsFile {
    pub(super) region: Option<String>,
    pub(super) endpoint_url: Option<String>,
    pub(super) changes_per_second: Option<f64>,
    pub(super) quota_share: Option<f64>,
    #[serde(default)]
    pub(super) quotas: AwsQuotasFile,
}

/// Raised account limits, calls per second (`[aws.quotas]`); what is not set is the published default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AwsQuotasFile {
    pub(super) lambda_per_api: Option<f64>,
    pub(super) get_function: Option<f64>,
    pub(super) get_metric_data: Option<f64>,
    pub(super) list_metrics: Option<f64>,
}

/// Raised project limits, calls per minute (`[gcp.quotas]`); what is not set is the published default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GcpQuotasFile {
    pub(super) run_reads_per_minute: Option<f64>,
    pub(super) run_writes_per_minute: Option<f64>,
    pub(super) monitoring_reads_per_minute: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GcpFile {
    pub(super) endpoint_url: Option<String>,
    pub(super) warmup_path: Option<String>,
    pub(super) changes_per_second: Option<f64>,
    pub(super) quota_share: Option<f64>,
    #[serde(default)]
    pub(super) quotas: GcpQuotasFile,
}

/// Settings a guard inherits from `[defaults]` unless it sets them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DefaultsFile {
    pub(super) interval: Option<String>,
    pub(super) window: Option<String>,
    pub(super) windows: Option<usize>,
    pub(super) prewarm: Option<PrewarmMode>,
    pub(super) prewarm_headroom: Option<f64>,
    pub(super) prewarm_timeout: Option<String>,
    pub(super) settle: Option<String>,
    pub(super) bake: Option<String>,
    pub(super) history: Option<String>,
    pub(super) metrics_delay: Option<String>,
    pub(super) mode: Option<Mode>,
    pub(super) approval_timeout: Option<String>,
    pub(super) on_approval_timeout: Option<OnApprovalTimeout>,
    pub(super) cooldown: Option<String>,
    pub(super) on_policy_error: Option<Fallback>,
    pub(super) no_data: Option<Fallback>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GuardFile {
    pub(super) name: String,
    pub(super) platform: Platform,
    pub(super) function: Option<String>,
    pub(super) alias: Option<String>,
    pub(super) region: Option<String>,
    pub(super) project: Option<String>,
    pub(super) location: Option<String>,
    pub(super) service: Option<String>,
    #[serde(default)]
    pub(super) policies: Vec<PolicyFile>,
    #[serde(default)]
    pub(super) metrics: BTreeMap<String, CustomMetricFile>,
    #[serde(flatten)]
    pub(super) overrides: DefaultsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    #[serde(rename = "use")]
    pub(super) source: String,
    #[serde(default)]
    pub(super) params: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CustomMetricFile {
    pub(super) namespace: String,
    pub(super) name: String,
    #[serde(default = "default_stat")]
    pub(super) stat: String,
    #[serde(default)]
    pub(super) dimensions: BTreeMap<String, String>,
}

fn default_stat() -> String {
    "Sum".to_string()
}

impl DefaultsFile {
    /// Whether the guard itself sets `field` (so an error points at the guard, not at `[defaults]`).
    pub(super) fn names(&self, field: &str) -> bool {
        match field {
            "interval" => self.interval.is_some(),
            "window" => self.window.is_some(),
            "windows" => self.windows.is_some(),
            "prewarm_headroom" => self.prewarm_headroom.is_some(),
            "prewarm_timeout" => self.prewarm_timeout.is_some(),
            "settle" => self.settle.is_some(),
            "bake" => self.bake.is_some(),
            "history" => self.history.is_some(),
            "metrics_delay" => self.metrics_delay.is_some(),
            "cooldown" => self.cooldown.is_some(),
            "approval_timeout" => self.approval_timeout.is_some(),
            _ => false,
        }
    }
}

/// Defaults overridden by a guard, checked; every problem is `(field, message)`, all of them (not only the first).
pub(super) fn resolve(defaults: &DefaultsFile, guard: &DefaultsFile) -> Result<Guard, Vec<(&'static str, String)>> {
    let mut problems: Vec<(&'static str, String)> = Vec::new();
    let mut duration = |field: &'static str, g: &Option<String>, d: &Option<String>, fallback: &str, max: Duration| {
        let text = g.as_deref().or(d.as_deref()).unwrap_or(fallback);
        let parsed = humantime::parse_duration(text).map_err(|e| format!("invalid duration {}: {e}", echo(text)));
        match parsed.and_then(|value| match value > max {
            true => Err(format!("must be at most {}, got {}", humantime::format_duration(max), echo(text))),
            false => Ok(value),
        }) {
            Ok(value) => (value, text.to_string()),
            Err(message) => {
                problems.push((field, message));
                (humantime::parse_duration(fallback).unwrap_or_default(), fallback.to_string())
            }
        }
    };
    let (interval, interval_text) = duration("interval", &guard.interval, &defaults.interval, "1m", MAX_INTERVAL);
    let (window, window_text) = duration("window", &guard.window, &defaults.window, "5m", MAX_SPAN);
    let (cooldown, _) = duration("cooldown", &guard.cooldown, &defaults.cooldown, "30m", MAX_HOLD);
    let (approval_timeout, approval_timeout_text) =
        duration("approval_timeout", &guard.approval_timeout, &defaults.approval_timeout, "15m", MAX_HOLD);
    let (prewarm_timeout, _) =
        duration("prewarm_timeout", &guard.prewarm_timeout, &defaults.prewarm_timeout, "2m", MAX_PREWARM_TIMEOUT);
    let (settle, _) = duration("settle", &guard.settle, &defaults.settle, "15m", MAX_HOLD);
    let (bake, _) = duration("bake", &guard.bake, &defaults.bake, "10m", MAX_HOLD);
    let (history, history_text) = duration("history", &guard.history, &defaults.history, "1h", MAX_SPAN);
    let (metrics_delay, _) =
        duration("metrics_delay", &guard.metrics_delay, &defaults.metrics_delay, "1m", Duration::from_secs(3600));
    if approval_timeout < Duration::from_secs(60) {
        let message = format!("must be at least 1m (a person answers), got {}", echo(&approval_timeout_text));
        problems.push(("approval_timeout", message));
    }
    if history < Duration::from_secs(60) {
        problems.push(("history", format!("must be at least 1m (one metric period), got {}", echo(&history_text))));
    }
    let whole_minutes = window >= Duration::from_secs(60) && window.as_secs() % 60 == 0;
    if !whole_minutes {
        let message = format!("must be a whole number of minutes (metric periods are 1m), got {}", echo(&window_text));
        problems.push(("window", message));
    }
    if interval.is_zero() {
        problems.push(("interval", format!("must be positive, got {}", echo(&interval_text))));
    }
    let windows = guard.windows.or(defaults.windows).unwrap_or(4);
    if !(1..=60).contains(&windows) {
        problems.push(("windows", format!("must be between 1 and 60, got {windows}")));
    } else if whole_minutes && window * windows as u32 > MAX_SPAN {
        let message = format!(
            "{windows} windows of {} span {}, more than the {} one evaluation may cover",
            humantime::format_duration(window),
            humantime::format_duration(window * windows as u32),
            humantime::format_duration(MAX_SPAN)
        );
        problems.push(("windows", message));
    }
    let prewarm_headroom = guard.prewarm_headroom.or(defaults.prewarm_headroom).unwrap_or(1.5);
    if !(1.0..=10.0).contains(&prewarm_headroom) {
        problems.push(("prewarm_headroom", format!("must be between 1.0 and 10.0, got {prewarm_headroom}")));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Guard {
        name: String::new(),
        index: 0,
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
        bake,
        history,
        metrics_delay,
        mode: guard.mode.or(defaults.mode).unwrap_or(Mode::Enforce),
        approval_timeout,
        on_approval_timeout: guard
            .on_approval_timeout
            .or(defaults.on_approval_timeout)
            .unwrap_or(OnApprovalTimeout::Rollback),
        cooldown,
        on_policy_error: guard.on_policy_error.or(defaults.on_policy_error).unwrap_or(Fallback::Inconclusive),
        no_data: guard.no_data.or(defaults.no_data).unwrap_or(Fallback::Inconclusive),
    })
}

/// Turns a TOML error into one naming the file, the field path and the line.
pub(super) fn toml_error(path: &Path, text: &str, error: toml::de::Error) -> ConfigError {
    let message = crate::model::text::truncate(error.message().trim_end(), 4 * MAX_ECHO).into_owned();
    let field = match error.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line = text[..start].matches('\n').count() + 1;
            let source = text.lines().nth(line - 1).unwrap_or_default().trim();
            format!("line {line} `{}`", crate::model::text::truncate(source, MAX_ECHO))
        }
        None => "(document)".to_string(),
    };
    ConfigError::Invalid { path: path.into(), field, message }
}

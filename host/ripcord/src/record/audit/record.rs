//! The audit record: one line of the audit file — a decision, an intent or a result — with who wrote it, what the
//! deployment looked like, what each policy said, and how a change ended. Field names and values are the
//! documented format (docs/reference/audit-log.md); `action` and `outcome` are enums so they cannot drift from it.

use crate::config::Mode;
use crate::model::verdict::{Check, Finding, Verdict};
use crate::provider::{Deployment, Prewarmed};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Who asked for the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// A scheduled or looping run (`check`, `watch`, function mode).
    Schedule,
    /// A person (`pull`).
    Manual,
    /// A deploy hook (CodeDeploy, CI gate).
    Hook,
}

/// The kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Decision,
    Intent,
    Result,
}

/// What a record is about: the change made or considered (the record's `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// No change (a healthy, holding or inconclusive verdict, or a rollback that was suppressed).
    None,
    /// Prewarm and pin the rollback target.
    Rollback,
    /// Record the candidate as the last known good.
    RecordKnownGood,
    /// A rollback verdict of a guard in `mode = "approve"`: the rollback waits for an approver.
    AwaitApproval,
    /// A pending rollback rejected by an approver, or dropped at its timeout: the candidate's rollbacks are not
    /// acted on.
    RejectRollback,
    /// Release capacity ripcord added.
    ReleasePrewarm,
    /// Keep the rollback target warm while a candidate bakes (`prewarm = "standby"`).
    StandbyPrewarm,
}

/// How a change ended (a `result` record's `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The target serves all traffic, verified.
    Pinned,
    /// The target already served all traffic when ripcord re-read the deployment.
    AlreadyPinned,
    /// The deployment changed under ripcord (a new deploy); nothing was changed.
    Aborted,
    Failed,
    /// The last known good was recorded.
    Recorded,
    /// Capacity ripcord added was released.
    Released,
    /// Standby capacity was requested (not waited for).
    Warming,
    /// The process that wrote the intent stopped before its result; a later run closed it.
    Interrupted,
}

macro_rules! display_as_serialized {
    ($($ty:ty),*) => {$(
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let text = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string));
                f.write_str(&text.unwrap_or_default())
            }
        }
    )*};
}
display_as_serialized!(Action, Outcome);

/// One policy's part in a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub plugin: String,
    pub verdict: Verdict,
    pub reason: String,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The deployment as it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub primary: String,
    pub candidate: String,
    pub candidate_share: f64,
    pub baseline: Option<String>,
    pub known_good: Option<String>,
}

impl From<&Deployment> for DeploymentRecord {
    fn from(d: &Deployment) -> Self {
        Self {
            primary: d.primary.clone(),
            candidate: d.candidate.clone(),
            candidate_share: d.candidate_share,
            baseline: d.baseline.clone(),
            known_good: d.known_good.clone(),
        }
    }
}

/// The time ranges a verdict is based on: the candidate's windows (from its first traffic when known) and the
/// known good's history (its historical baseline), RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryRange>,
    /// Per window, what the baseline and the candidate did: the series a report draws, the numbers the verdict
    /// was based on. The last [`MAX_WINDOW_SUMMARIES`] windows (about 150 bytes each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowSummary>,
}

/// Most window summaries a record carries (the newest): a record stays under ~10 KB however many windows a guard
/// judges.
pub const MAX_WINDOW_SUMMARIES: usize = 60;

/// One evaluation window, summarised per revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// The window's start and end, RFC 3339.
    pub start: String,
    pub end: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<RevisionSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<RevisionSummary>,
}

/// A revision in one window: requests and errors summed, the error rate, and each latency percentile's worst
/// minute (milliseconds). A metric the platform did not report is absent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RevisionSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99: Option<f64>,
}

impl RevisionSummary {
    /// `revision` in window `index`; None when it reported nothing there.
    fn of(revision: &crate::model::evaluation::Revision, index: u32) -> Option<Self> {
        let sum = |name: &str| revision.series(name).map(|s| s.values(index).fold(0.0, |total, v| total + v));
        let worst = |name: &str| revision.series(name).and_then(|s| s.values(index).reduce(f64::max));
        let (requests, errors) = (sum("requests"), sum("errors"));
        let summary = Self {
            requests,
            errors,
            error_rate: requests.zip(errors).filter(|(r, _)| *r > 0.0).map(|(r, e)| e / r),
            latency_p50: worst("latency_p50"),
            latency_p95: worst("latency_p95"),
            latency_p99: worst("latency_p99"),
        };
        (summary != Self::default()).then_some(summary)
    }
}

/// The known good's history used as a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRange {
    pub revision: String,
    pub from: String,
    pub to: String,
}

impl Evidence {
    pub fn of(evaluation: &crate::model::evaluation::Evaluation) -> Option<Self> {
        let time = crate::model::time::format_timestamp;
        let (first, last) = (evaluation.windows.first()?, evaluation.windows.last()?);
        Some(Self {
            from: time(first.start),
            to: time(last.end),
            deployed_at: evaluation.deployed_at.map(time),
            history: evaluation.known_good.as_ref().map(|h| HistoryRange {
                revision: h.revision.id.clone(),
                from: time(h.span.start),
                to: time(h.span.end),
            }),
            windows: evaluation
                .windows
                .iter()
                .enumerate()
                .skip(evaluation.windows.len().saturating_sub(MAX_WINDOW_SUMMARIES))
                .map(|(index, window)| {
                    let index = u32::try_from(index).unwrap_or(u32::MAX);
                    WindowSummary {
                        start: time(window.start),
                        end: time(window.end),
                        baseline: evaluation.baseline.as_ref().and_then(|b| RevisionSummary::of(b, index)),
                        candidate: RevisionSummary::of(&evaluation.candidate, index),
                    }
                })
                .collect(),
        })
    }
}

/// Durations of a change, in the clock's milliseconds (virtual time under the simulator) and in real ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict_to_pin_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict_to_pin_real_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prewarm_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_real_ms: Option<u64>,
}

/// One line of the audit file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub record: Kind,
    /// Shared by the intent and the result of one change.
    pub id: String,
    pub at: String,
    pub at_ms: i64,
    pub guard: String,
    pub actor: Actor,
    /// Who acted, as ripcord identified them: `token:NAME` or `oidc:SUBJECT` (the server), `local:USER` (the CLI),
    /// `invoke` (a function's direct invocation). Absent for scheduled cycles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentRecord>,
    pub verdict: Verdict,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyRecord>,
    /// What the policies found besides the verdict (`shared-degradation`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The time ranges the verdict is based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// For results: how the change ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A decision not made: the guard's reads were deferred by the platforms' quotas (read first next cycle).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prewarm: Option<Prewarmed>,
    #[serde(default)]
    pub timings: Timings,
    /// The process that wrote the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<Writer>,
}

impl Record {
    /// A record of `guard` at `at_ms` with nothing else filled in yet (verdict hold, no action, no writer: the
    /// controller names its process, read once, on every record it writes).
    pub fn new(record: Kind, id: String, at_ms: i64, guard: &str, actor: Actor, mode: Mode) -> Self {
        Self {
            record,
            id,
            at: crate::model::time::format_timestamp(at_ms),
            at_ms,
            guard: guard.to_string(),
            actor,
            by: None,
            mode,
            deployment: None,
            verdict: Verdict::Hold,
            reason: String::new(),
            policies: Vec::new(),
            findings: Vec::new(),
            evidence: None,
            action: Action::None,
            target: None,
            outcome: None,
            error: None,
            deferred: false,
            prewarm: None,
            timings: Timings::default(),
            writer: None,
        }
    }
}

/// The intents among `records` (in the order written) that no result with the same id answers.
pub fn unanswered(records: impl IntoIterator<Item = Record>) -> Vec<Record> {
    let mut open: Vec<Record> = Vec::new();
    for record in records {
        match record.record {
            Kind::Intent => open.push(record),
            Kind::Result => open.retain(|intent| intent.id != record.id),
            Kind::Decision => {}
        }
    }
    open
}

/// The process that wrote a record: how a later run tells a change still in flight in another process from one
/// whose process died between its intent and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    pub host: String,
    pub pid: u32,
}

impl Writer {
    pub fn this_process() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Self { host, pid: std::process::id() }
    }

    /// Whether the writer is known to have stopped: it ran on this host and no process has its pid now. `false`
    /// when that cannot be told (another host, no `/proc`).
    pub fn has_stopped(&self) -> bool {
        let here = Self::this_process();
        self.host == here.host
            && self.pid != here.pid
            && Path::new("/proc/self").exists()
            && !Path::new("/proc").join(self.pid.to_string()).exists()
    }
}

impl Record {
    /// Adds `note` to the record's error text, keeping what was there.
    pub(crate) fn append_error(&mut self, note: String) {
        self.error = Some(match self.error.take() {
            Some(earlier) => format!("{earlier}; {note}"),
            None => note,
        });
    }
    /// What the record says happened, in one sentence with its numbers, for people: a notification's text, a
    /// report's headline. E.g. `rolled back checkout-api v2 → v1 at 09:06:30 UTC: builtin:error-rate: error rate
    /// 5.94% is above 2.00% …; verdict to pin 30.0 s`.
    pub fn headline(&self) -> String {
        let label = crate::model::text::revision_label;
        let candidate = self.deployment.as_ref().map(|d| label(&d.candidate)).unwrap_or_else(|| "?".into());
        let target = self.target.as_deref().map(label).unwrap_or_else(|| "?".into());
        let time = self.at.get(11..19).map(|t| format!(" at {t} UTC")).unwrap_or_default();
        let (guard, reason) = (&self.guard, crate::model::text::truncate(&self.reason, 400));
        let pin = self.timings.verdict_to_pin_ms.map(|ms| format!("; verdict to pin {:.1} s", ms as f64 / 1000.0));
        let error =
            self.error.as_deref().map(|e| crate::model::text::truncate(e, 300).into_owned()).unwrap_or_default();
        match (self.record, self.action, self.outcome) {
            (Kind::Intent, Action::Rollback, _) => {
                format!("rolling back {guard} {candidate} → {target}{time}: {reason}")
            }
            (Kind::Result, Action::Rollback, Some(Outcome::Pinned)) => {
                format!("rolled back {guard} {candidate} → {target}{time}: {reason}{}", pin.unwrap_or_default())
            }
            (Kind::Result, Action::Rollback, Some(Outcome::AlreadyPinned)) => {
                format!("{guard}: {target} already served all traffic{time}; nothing changed")
            }
            (Kind::Result, Action::Rollback, Some(Outcome::Aborted)) => {
                format!("rollback of {guard} aborted{time}: the deployment changed under ripcord ({error})")
            }
            (Kind::Result, Action::Rollback, _) => {
                format!("FAILED to roll back {guard} {candidate} → {target}{time}: {error}")
            }
            (Kind::Decision, Action::AwaitApproval, _) => format!(
                "the rollback of {guard} {candidate} → {target} AWAITS APPROVAL{time} \
                 (POST /api/v1/guards/{guard}/approve or /reject): {reason}"
            ),
            (Kind::Decision, Action::RejectRollback, _) => {
                format!("{guard}: the rollback {candidate} → {target} will not be made{time}: {reason}")
            }
            (Kind::Decision, _, _) if self.findings.contains(&Finding::GuardError) => {
                format!("{guard} is NOT PROTECTED{time}: {reason}")
            }
            (Kind::Decision, _, _) if self.findings.contains(&Finding::SharedDegradation) => format!(
                "{guard}: baseline and candidate degraded together{time} (an outage they share, not {candidate}'s doing): {reason}"
            ),
            (Kind::Decision, _, _) => format!("{guard}: {}{time}: {reason}", self.verdict),
            (kind, action, outcome) => {
                let outcome = outcome.map(|o| format!(": {o}")).unwrap_or_default();
                let kind = if kind == Kind::Intent { "starting " } else { "" };
                format!("{guard}: {kind}{action} {target}{time}{outcome}")
            }
        }
    }
}

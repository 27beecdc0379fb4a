//! `ripcord status`: each guard's traffic split, last known good, last verdict and notes for on-call, from the
//! platform and the audit log only (no policy is loaded, nothing is written).

use super::output::{exit, label, traffic};
use super::setup::{async_runtime, clock};
use anyhow::Context;
use ripcord::config::{Config, Guard};
use ripcord::provider::{Deployment, Provider};
use ripcord::record::audit::{Audit, AuditLog, Kind, Record};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// The platform and the audit log, read: no policy is loaded, nothing is written. With `json`, one object:
/// `{"at", "exit_code", "guards": [{"guard", "primary", "candidate", "candidate_share", "known_good",
/// "last_decision": {"verdict", "at", "reason"}, "notes", "error"}]}` ([`Snapshot::json`]; also `ripcord serve`'s
/// `GET /api/v1/guards`).
pub(crate) fn run(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let log = Audit::load(&config.audit_log).with_context(|| format!("reading {}", config.audit_log.display()))?;
    if let Some(note) = log.damage_note(&config.audit_log) {
        eprintln!("warning: {note}");
    }
    let snapshot = async_runtime()?.block_on(Snapshot::read(&config, &log));
    if json {
        super::output::line(snapshot.json())?;
        return Ok(ExitCode::from(snapshot.code));
    }
    super::output::line(format!(
        "{:<16} {:<24} {:<10} {:<13} {:<24} NOTES",
        "GUARD", "TRAFFIC", "KNOWN GOOD", "LAST VERDICT", "AT"
    ))?;
    for row in &snapshot.guards {
        let (verdict, at) = row
            .last
            .as_ref()
            .map(|r| (r.verdict.to_string(), r.at.clone()))
            .unwrap_or_else(|| ("-".into(), "-".into()));
        let traffic = match (&row.deployment, &row.error) {
            (Some(d), _) => traffic(&d.primary, &d.candidate, d.candidate_share),
            (None, Some(error)) if !row.broken => format!("error: {error}"),
            _ => "error".into(),
        };
        let mut notes = row.notes.join("; ");
        if row.broken {
            notes = format!("NOT PROTECTED: {}", row.error.as_deref().unwrap_or_default());
        }
        super::output::line(format!(
            "{:<16} {traffic:<24} {:<10} {verdict:<13} {at:<24} {}",
            row.guard,
            row.known_good.as_deref().map(label).unwrap_or_else(|| "-".into()),
            if notes.is_empty() { "-".to_string() } else { notes }
        ))?;
    }
    Ok(ExitCode::from(snapshot.code))
}

/// Every guard as the platform and the audit log show it, at one time.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) at_ms: i64,
    /// `status`'s exit code: 1 when a deployment could not be read or a guard is not protected.
    pub(crate) code: u8,
    pub(crate) guards: Vec<GuardStatus>,
}

/// One guard in a [`Snapshot`].
#[derive(Debug)]
pub(crate) struct GuardStatus {
    pub(crate) guard: String,
    pub(crate) deployment: Option<Deployment>,
    pub(crate) known_good: Option<String>,
    /// The guard's last decision record.
    pub(crate) last: Option<Record>,
    pub(crate) notes: Vec<String>,
    /// Why the deployment could not be read, or (`broken`) why the guard cannot be served.
    pub(crate) error: Option<String>,
    /// Its own fields are invalid: nothing to read, nothing protects it.
    pub(crate) broken: bool,
}

impl Snapshot {
    /// Reads every guard's deployment and its last decision in `log`.
    pub(crate) async fn read(config: &Config, log: &AuditLog) -> Self {
        let open = ripcord::record::audit::unanswered(log.records.iter().cloned());
        let (rows, now) = read(config, log).await;
        let mut code = exit::HEALTHY;
        let mut guards = Vec::new();
        for (guard, deployment, last) in rows {
            let mut notes = deployment.as_ref().map(|d| deployment_notes(guard, d, now)).unwrap_or_default();
            if deployment.is_err() {
                code = exit::ERROR;
            }
            if let Some(last) =
                last.as_ref().filter(|r| r.findings.contains(&ripcord::model::verdict::Finding::GuardError))
            {
                // Its policies could not be loaded at the last cycle: the deployment is not protected.
                code = exit::ERROR;
                notes.push(format!("NOT PROTECTED at the last cycle: {}", last.reason));
            }
            for intent in open.iter().filter(|i| i.guard == guard.name) {
                let target = intent.target.as_deref().map(label).unwrap_or_default();
                notes.push(format!("change without a result: {} {target} since {}", intent.action, intent.at));
            }
            let (deployment, error) = match deployment {
                Ok(d) => (Some(d), None),
                Err(error) => (None, Some(error)),
            };
            let known_good = deployment.as_ref().and_then(|d| d.known_good.clone());
            guards.push(GuardStatus {
                guard: guard.name.clone(),
                deployment,
                known_good,
                last,
                notes,
                error,
                broken: false,
            });
        }
        // Guards whose own fields are invalid: nothing to read on the platform, and nothing protects them.
        for broken in &config.broken {
            code = exit::ERROR;
            guards.push(GuardStatus {
                guard: broken.name.clone(),
                deployment: None,
                known_good: None,
                last: None,
                notes: vec!["NOT PROTECTED".into()],
                error: Some(broken.cause()),
                broken: true,
            });
        }
        Self { at_ms: now, code, guards }
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        let guards: Vec<serde_json::Value> = self.guards.iter().map(GuardStatus::json).collect();
        let at = ripcord::model::time::format_timestamp(self.at_ms);
        serde_json::json!({"at": at, "exit_code": self.code, "guards": guards})
    }
}

impl GuardStatus {
    fn json(&self) -> serde_json::Value {
        let d = self.deployment.as_ref();
        if self.broken {
            return serde_json::json!({"guard": self.guard, "notes": self.notes, "error": self.error});
        }
        serde_json::json!({
            "guard": self.guard,
            "primary": d.map(|d| &d.primary),
            "candidate": d.map(|d| &d.candidate),
            "candidate_share": d.map(|d| d.candidate_share),
            "known_good": self.known_good,
            "approval": d.and_then(|d| d.approval.as_ref()).map(|a| match &a.state {
                ripcord::provider::ApprovalState::Pending { target } => {
                    serde_json::json!({"state": "pending", "target": target, "since": ripcord::model::time::format_timestamp(a.since_ms)})
                }
                ripcord::provider::ApprovalState::Rejected => {
                    serde_json::json!({"state": "rejected", "since": ripcord::model::time::format_timestamp(a.since_ms)})
                }
            }),
            "last_decision": self.last.as_ref().map(|r| serde_json::json!({"verdict": r.verdict, "at": r.at, "reason": r.reason})),
            "notes": self.notes,
            "error": self.error,
        })
    }
}

/// One row per guard: the deployment as the platform shows it (or why it could not be read) and the guard's last
/// decision record; and the clock's time. Guards of one region or project share a provider.
async fn read<'a>(config: &'a Config, log: &AuditLog) -> (Vec<Row<'a>>, i64) {
    let mut providers: std::collections::BTreeMap<String, Arc<dyn Provider>> = Default::default();
    let mut rows = Vec::new();
    for guard in &config.guards {
        let provider = match providers.get(&guard.batch_key()) {
            Some(provider) => Ok(provider.clone()),
            None => ripcord::provider::connect(config, guard).await.inspect(|p| {
                providers.insert(guard.batch_key(), p.clone());
            }),
        };
        let deployment = match provider {
            Ok(p) => p.deployment(guard).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let last = log.records.iter().rev().find(|r| r.guard == guard.name && r.record == Kind::Decision);
        rows.push((guard, deployment, last.cloned()));
    }
    (rows, clock(config).now_ms().await.unwrap_or(0))
}

type Row<'a> = (&'a Guard, Result<Deployment, String>, Option<Record>);

/// What on-call should know of a deployment besides its split: a running cooldown, warm capacity ripcord added.
fn deployment_notes(guard: &Guard, d: &Deployment, now: i64) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(until) = d.last_rollback_ms.map(|at| at + guard.cooldown.as_millis() as i64).filter(|u| *u > now) {
        notes.push(format!("cooldown until {}", ripcord::model::time::format_timestamp(until)));
    }
    if let Some(capacity) = &d.capacity {
        let release = match capacity.release {
            ripcord::provider::Release::At(due) => format!("until {}", ripcord::model::time::format_timestamp(due)),
            ripcord::provider::Release::WhenPromoted => "standby".into(),
        };
        notes.push(format!("warm capacity on {} ({release})", label(&capacity.revision)));
    }
    if let Some(approval) = &d.approval {
        let since = ripcord::model::time::format_timestamp(approval.since_ms);
        notes.push(match &approval.state {
            ripcord::provider::ApprovalState::Pending { target } => {
                let until = ripcord::model::time::format_timestamp(
                    approval.since_ms + guard.approval_timeout.as_millis() as i64,
                );
                format!("ROLLBACK TO {} AWAITS APPROVAL since {since} (until {until})", label(target))
            }
            ripcord::provider::ApprovalState::Rejected => {
                format!("rollback rejected at {since}: not acted on for {}", label(&approval.candidate))
            }
        });
    }
    notes
}

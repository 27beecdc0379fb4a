//! `ripcord status`: each guard's traffic split, last known good, last verdict and notes for on-call, from the
//! platform and the audit log only (no policy is loaded, nothing is written).

use super::output::{exit, label, traffic};
use super::setup::{async_runtime, clock};
use anyhow::Context;
use ripcord::audit::{Audit, AuditLog, Kind, Record};
use ripcord::config::{Config, Guard};
use ripcord::provider::{Deployment, Provider};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// The platform and the audit log, read: no policy is loaded, nothing is written. With `json`, one object:
/// `{"at", "exit_code", "guards": [{"guard", "primary", "candidate", "candidate_share", "known_good",
/// "last_decision": {"verdict", "at", "reason"}, "notes", "error"}]}`.
pub(crate) fn run(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let log = Audit::load(&config.audit_log).with_context(|| format!("reading {}", config.audit_log.display()))?;
    if let Some(note) = log.damage_note(&config.audit_log) {
        eprintln!("warning: {note}");
    }
    let open = ripcord::audit::unanswered(log.records.iter().cloned());
    let (rows, now) = async_runtime()?.block_on(read(&config, &log));
    if !json {
        println!("{:<16} {:<24} {:<10} {:<13} {:<24} NOTES", "GUARD", "TRAFFIC", "KNOWN GOOD", "LAST VERDICT", "AT");
    }
    let mut code = exit::HEALTHY;
    let mut objects = Vec::new();
    for (guard, deployment, last) in rows {
        let mut notes = deployment.as_ref().map(|d| deployment_notes(guard, d, now)).unwrap_or_default();
        let (traffic, known_good) = match &deployment {
            Ok(d) => (traffic(&d.primary, &d.candidate, d.candidate_share), d.known_good.clone()),
            Err(error) => {
                code = exit::ERROR;
                (format!("error: {error}"), None)
            }
        };
        if let Some(last) = last.as_ref().filter(|r| r.findings.contains(&ripcord::verdict::Finding::GuardError)) {
            // Its policies could not be loaded at the last cycle: the deployment is not protected.
            code = exit::ERROR;
            notes.push(format!("NOT PROTECTED at the last cycle: {}", last.reason));
        }
        for intent in open.iter().filter(|i| i.guard == guard.name) {
            let target = intent.target.as_deref().map(label).unwrap_or_default();
            notes.push(format!("change without a result: {} {target} since {}", intent.action, intent.at));
        }
        if json {
            let d = deployment.as_ref().ok();
            objects.push(serde_json::json!({
                "guard": guard.name,
                "primary": d.map(|d| &d.primary),
                "candidate": d.map(|d| &d.candidate),
                "candidate_share": d.map(|d| d.candidate_share),
                "known_good": known_good,
                "last_decision": last.as_ref().map(|r| serde_json::json!({"verdict": r.verdict, "at": r.at, "reason": r.reason})),
                "notes": notes,
                "error": deployment.as_ref().err(),
            }));
            continue;
        }
        let (verdict, at) = last.map(|r| (r.verdict.to_string(), r.at)).unwrap_or_else(|| ("-".into(), "-".into()));
        println!(
            "{:<16} {traffic:<24} {:<10} {verdict:<13} {at:<24} {}",
            guard.name,
            known_good.map(|v| label(&v)).unwrap_or_else(|| "-".into()),
            if notes.is_empty() { "-".to_string() } else { notes.join("; ") }
        );
    }
    // Guards whose own fields are invalid: nothing to read on the platform, and nothing protects them.
    for broken in &config.broken {
        code = exit::ERROR;
        let error = broken.cause();
        if json {
            objects.push(serde_json::json!({"guard": broken.name, "notes": ["NOT PROTECTED"], "error": error}));
        } else {
            println!("{:<16} {:<24} {:<10} {:<13} {:<24} NOT PROTECTED: {error}", broken.name, "error", "-", "-", "-");
        }
    }
    if json {
        let at = ripcord::time::format_timestamp(now);
        println!("{}", serde_json::json!({"at": at, "exit_code": code, "guards": objects}));
    }
    Ok(ExitCode::from(code))
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
        notes.push(format!("cooldown until {}", ripcord::time::format_timestamp(until)));
    }
    if let Some(capacity) = &d.capacity {
        let release = match capacity.release {
            ripcord::provider::Release::At(due) => format!("until {}", ripcord::time::format_timestamp(due)),
            ripcord::provider::Release::WhenPromoted => "standby".into(),
        };
        notes.push(format!("warm capacity on {} ({release})", label(&capacity.revision)));
    }
    notes
}

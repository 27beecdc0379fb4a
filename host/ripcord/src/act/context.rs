//! The context every step of a guard's cycle shares, as Argo Rollouts' `rolloutContext` is: the [`Services`] the
//! controller owns for all guards (policies, clock, audit log, this process's name, the judging slots, the changes a
//! dead process left open) and, per guard, its [`GuardContext`] — the guard, its platform client, its deployment as
//! read, the cycle's time — with the helpers that write a change's records. Defined here, below the steps that use
//! it (`act/`) and the cycle that builds it (`cycle/`), so neither imports the other's file.

use crate::config::{Guard, Mode};
use crate::judge::decision::Decision;
use crate::judge::policies::PolicySet;
use crate::model::clock::Clock;
use crate::model::evaluation::Evaluation;
use crate::model::verdict::Verdict;
use crate::provider::{Deployment, Provider};
use crate::record::audit::{Action as AuditAction, Actor, Audit, DeploymentRecord, Kind, Record, Writer};
use crate::record::effect::{Effect, GuardResult};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest a cycle waits at its end for its webhook notifications (outside function mode).
const NOTIFY_BOUND: Duration = Duration::from_secs(10);
/// Guards judged at once (their policies run on blocking threads, their records are written).
pub(crate) const JUDGE_CONCURRENCY: usize = 16;

/// Who asked for a manual change and why: the records of the change name them (`Record::by`) and give the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// `token:NAME`, `oidc:SUBJECT`, `local:USER`, `invoke`.
    pub by: String,
    pub reason: Option<String>,
}

impl Requester {
    /// The person running the CLI, by the login name the environment gives (`local:USER`).
    pub fn local(reason: Option<String>) -> Self {
        let user = ["USER", "LOGNAME", "USERNAME"].iter().find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()));
        Self { by: format!("local:{}", user.as_deref().unwrap_or("unknown")), reason }
    }
}

/// What every guard's cycle shares, owned by the controller.
#[derive(Debug)]
pub(crate) struct Services {
    pub(crate) policies: Arc<PolicySet>,
    pub(crate) clock: Clock,
    pub(crate) audit: Audit,
    /// This process, named in every record it writes.
    pub(crate) writer: Writer,
    /// Slots for judging ([`JUDGE_CONCURRENCY`]); a guard gives its slot back before it acts.
    pub(crate) judging: tokio::sync::Semaphore,
    /// Intents without a result found in the audit log at start: each is closed by its guard's next cycle once
    /// its process is known to be gone (`act/recovery.rs`).
    open_intents: Mutex<Vec<Record>>,
    /// Where to append every evaluation (for `ripcord replay`).
    pub(crate) evaluations_file: Option<PathBuf>,
    /// Overrides every guard's mode (`--dry-run`).
    pub(crate) force_dry_run: bool,
    /// Real time by which a change must be pinned (function mode: the invocation's deadline less what the pin
    /// and its records take); also bounds the wait for notifications.
    pub(crate) deadline: Option<Instant>,
}

impl Services {
    /// The services for a configuration whose policies were loaded into `policies`; the audit log is scanned for
    /// changes a dead process left open.
    pub(crate) fn new(policies: PolicySet, clock: Clock, audit: Audit) -> Self {
        let open_intents = Audit::open_intents(audit.path()).unwrap_or_else(|error| {
            tracing::warn!(path = %audit.path().display(), %error, "cannot scan the audit log for interrupted changes");
            Vec::new()
        });
        Self {
            policies: Arc::new(policies),
            clock,
            audit,
            writer: Writer::this_process(),
            judging: tokio::sync::Semaphore::new(JUDGE_CONCURRENCY),
            open_intents: Mutex::new(open_intents),
            evaluations_file: None,
            force_dry_run: false,
            deadline: None,
        }
    }

    /// The guard's mode: its own, unless the run is a dry run.
    pub(crate) fn mode(&self, guard: &Guard) -> Mode {
        if self.force_dry_run { Mode::DryRun } else { guard.mode }
    }

    /// A decision record for a guard the cycle could not judge (its deployment or metrics could not be read).
    pub(crate) async fn record_unjudged(
        &self,
        guard: &Guard,
        deployment: Option<&Deployment>,
        error: String,
        cycle: &Cycle,
    ) {
        let mut record = self.unjudged_record(&guard.name, self.mode(guard), error, cycle);
        record.deployment = deployment.map(DeploymentRecord::from);
        if let Err(error) = self.audit.write(&record).await {
            tracing::error!(guard = %guard.name, %error, "cannot write the decision record");
        }
    }

    /// A decision record for a guard that was not judged this cycle, saying why.
    pub(crate) fn unjudged_record(&self, guard: &str, mode: Mode, error: String, cycle: &Cycle) -> Record {
        let id = format!("{guard}-{}", cycle.now);
        let mut record = Record {
            writer: Some(self.writer.clone()),
            verdict: Verdict::Inconclusive,
            reason: format!("not judged: {error}"),
            error: Some(error),
            by: cycle.by.clone(),
            ..Record::new(Kind::Decision, id, cycle.now, guard, cycle.actor, mode)
        };
        record.timings.cycle_real_ms = Some(cycle.started.elapsed().as_millis() as u64);
        record
    }

    /// The open intents `matching`, removed from the list (each is closed once).
    pub(crate) fn take_open_intents(&self, matching: impl Fn(&Record) -> bool) -> Vec<Record> {
        let mut open = self.open_intents.lock().unwrap_or_else(|p| p.into_inner());
        let (taken, kept) = std::mem::take(&mut *open).into_iter().partition(|intent| matching(intent));
        *open = kept;
        taken
    }

    /// Appends the evaluation to the `--record` file (for `ripcord replay`).
    pub(crate) fn record_evaluation(&self, evaluation: &Evaluation) {
        let Some(path) = &self.evaluations_file else { return };
        let line = crate::model::fixture::to_json(evaluation).to_string();
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
        if let Err(error) = written {
            tracing::warn!(path = %path.display(), %error, "cannot record the evaluation");
        }
    }

    /// Delivers the cycle's notifications, bounded: by the invocation's deadline in function mode, else by
    /// [`NOTIFY_BOUND`].
    pub(crate) async fn flush_notifications(&self) {
        let until = self.deadline.unwrap_or_else(|| Instant::now() + NOTIFY_BOUND);
        self.audit.flush_notifications(until.into()).await;
    }
}

/// What every guard of one cycle shares: its time (the clock's), who runs it, and when it started (real time).
#[derive(Debug, Clone)]
pub(crate) struct Cycle {
    pub(crate) now: i64,
    pub(crate) actor: Actor,
    /// The person or pipeline that asked for it, as every record of the cycle names them (`Record::by`).
    pub(crate) by: Option<String>,
    pub(crate) started: Instant,
}

/// One guard's context for one cycle (or one manual change): what every step of it shares.
#[derive(Debug)]
pub(crate) struct GuardContext<'a> {
    pub(crate) services: &'a Services,
    pub(crate) guard: &'a Guard,
    pub(crate) provider: Arc<dyn Provider>,
    /// The deployment as read at the start of the cycle.
    pub(crate) deployment: Deployment,
    pub(crate) cycle: Cycle,
}

impl GuardContext<'_> {
    /// A guard whose metrics could not be read: its decision record says why, so the audit log has one record
    /// per guard per cycle, failures included.
    pub(crate) async fn unjudged(self, error: String) -> GuardResult {
        let mut result = GuardResult::failed(&self.guard.name, error.clone());
        result.at = Some(crate::model::time::format_timestamp(self.cycle.now));
        result.deployment = Some(DeploymentRecord::from(&self.deployment));
        self.services.record_unjudged(self.guard, Some(&self.deployment), error, &self.cycle).await;
        result
    }

    /// The guard's mode: its own, unless the run is a dry run.
    pub(crate) fn mode(&self) -> Mode {
        self.services.mode(self.guard)
    }

    /// A record about the guard with the deployment as read; `suffix` tells a change's id from the decision's.
    pub(crate) fn record(&self, suffix: &str, action: AuditAction) -> Record {
        let (name, now) = (&self.guard.name, self.cycle.now);
        let id = if suffix.is_empty() { format!("{name}-{now}") } else { format!("{name}-{now}-{suffix}") };
        Record {
            deployment: Some(DeploymentRecord::from(&self.deployment)),
            writer: Some(self.services.writer.clone()),
            action,
            by: self.cycle.by.clone(),
            ..Record::new(Kind::Decision, id, now, name, self.cycle.actor, self.mode())
        }
    }

    /// Writes the `result` of a change for `effect`; a result that cannot be written is a failure, saying how the
    /// change itself ended.
    pub(crate) async fn close(&self, record: &mut Record, effect: Effect) -> Effect {
        record.record = Kind::Result;
        if let Effect::RolledBack { verdict_to_pin_ms, verdict_to_pin_real_ms, .. } = &effect {
            record.timings.verdict_to_pin_ms = Some(*verdict_to_pin_ms);
            record.timings.verdict_to_pin_real_ms = Some(*verdict_to_pin_real_ms);
        }
        record.outcome = effect.audit_outcome();
        if let Some(error) = effect.error() {
            record.error = Some(match record.error.take() {
                Some(earlier) => format!("{error}; {earlier}"),
                None => error.to_string(),
            });
        }
        match self.services.audit.write(record).await {
            Ok(()) => effect,
            Err(error) => {
                let ended = record.outcome.map(|o| o.to_string()).unwrap_or_default();
                Effect::Failed { error: format!("{error} (the change itself ended as: {ended})") }
            }
        }
    }

    /// Runs a small change (a release, a standby prewarm) between an intent and a result record; `done` is the
    /// result's outcome when it worked.
    pub(crate) async fn change(
        &self,
        record: &mut Record,
        done: crate::record::audit::Outcome,
        change: impl std::future::Future<
            Output = Result<Option<crate::provider::Prewarmed>, crate::provider::ProviderError>,
        >,
    ) {
        record.record = Kind::Intent;
        if let Err(error) = self.services.audit.write(record).await {
            tracing::error!(%error, action = %record.action, "cannot audit the change; not making it");
            return;
        }
        record.record = Kind::Result;
        // Once its intent is written, a change runs to its end: ahead of reads, never deferred.
        match crate::provider::quota::as_change(None, change).await {
            Ok(prewarm) => {
                record.outcome = Some(done);
                record.prewarm = prewarm;
            }
            Err(error) => {
                record.outcome = Some(crate::record::audit::Outcome::Failed);
                record.error = Some(error.to_string());
            }
        }
        if let Err(error) = self.services.audit.write(record).await {
            tracing::error!(%error, "cannot audit the result of {}", record.action);
        }
    }

    pub(crate) fn result(&self, decision: &Decision, effect: Effect, evaluation: Option<Evaluation>) -> GuardResult {
        GuardResult {
            guard: self.guard.name.clone(),
            at: Some(crate::model::time::format_timestamp(self.cycle.now)),
            deployment: Some(DeploymentRecord::from(&self.deployment)),
            verdict: decision.verdict,
            reason: decision.reason.clone(),
            findings: decision.findings.clone(),
            effect,
            policies: Vec::new(),
            evaluation,
        }
    }
}

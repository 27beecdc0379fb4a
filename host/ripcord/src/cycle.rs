//! One guard's cycle, as one object (the way Argo Rollouts gives each reconcile a `rolloutContext`): what the
//! cycle knows about the guard — the shared services of the [`Controller`], the provider, the deployment as read,
//! the cycle's time — and its steps, in order: close what a dead process left open (`recovery.rs`), release
//! capacity no longer needed (`capacity.rs`), ask the policies, decide (`decision.rs`), record the decision, act —
//! keep the target warm, record the known good, or roll back (`rollback.rs`) — and remember the candidate's
//! rollout on the resource (its first traffic and when it took all of it), so the next run, on any machine, sees
//! the same evidence. The manual pull is `pull.rs`.

use crate::audit::{Action as AuditAction, Actor, DeploymentRecord, Kind, PolicyRecord, Record};
use crate::config::{Guard, Mode};
use crate::controller::Controller;
use crate::decision::{self, Action, Decision, PolicyOutcome};
use crate::effect::{Effect, GuardResult};
use crate::evaluation::{Evaluation, History};
use crate::inputs;
use crate::provider::{Deployment, GuardMetrics, Mark, Provider, Rollout};
use crate::verdict::Verdict;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

#[cfg(test)]
mod tests;

/// What every guard of one cycle shares: its time (the clock's), who runs it, and when it started (real time).
#[derive(Debug, Clone)]
pub(crate) struct Cycle {
    pub(crate) now: i64,
    pub(crate) actor: Actor,
    /// The person or pipeline that asked for it, as every record of the cycle names them (`Record::by`).
    pub(crate) by: Option<String>,
    pub(crate) started: Instant,
}

/// One guard's cycle.
#[derive(Debug)]
pub(crate) struct GuardCycle<'a> {
    pub(crate) controller: &'a Controller,
    pub(crate) guard: &'a Guard,
    pub(crate) provider: Arc<dyn Provider>,
    /// The deployment as read at the start of the cycle.
    pub(crate) deployment: Deployment,
    pub(crate) cycle: Cycle,
}

impl GuardCycle<'_> {
    /// The whole cycle, with the guard's metrics and the known good's history: tidy up, judge, record, act.
    /// `failed_thresholds` are the policies whose `latency-thresholds` failed this cycle (not asked to evaluate).
    pub(crate) async fn run(
        self,
        metrics: GuardMetrics,
        known_good: Option<History>,
        failed_thresholds: BTreeMap<String, String>,
    ) -> GuardResult {
        // Judging and bookkeeping take a slot; a rollback gives it back (it may wait minutes for its prewarm, and a
        // fleet's rollbacks wait together).
        let judging = self.controller.judging.acquire().await.ok();
        self.close_interrupted().await;
        self.release_capacity().await;
        let deployed_at = inputs::rollout_start(&self.deployment, &metrics);
        let windows = inputs::guard_windows(self.cycle.now, self.guard, deployed_at);
        let context = inputs::Context { deployed_at, known_good };
        let evaluation = inputs::evaluation(self.guard, &self.deployment, &metrics, &windows, self.cycle.now, context);
        self.controller.record_evaluation(&evaluation);
        let outcomes = self.ask_policies(&evaluation, failed_thresholds).await;
        let mut decision = decision::decide(&self.decision_input(&outcomes, &evaluation));
        let approval = self.approval(&mut decision);
        let decided = Instant::now();
        let mut record = self.record("", audit_action(&decision.action));
        record.verdict = decision.verdict;
        record.reason = decision.reason.clone();
        let policies = policy_records(&outcomes);
        record.policies = policies.clone();
        record.findings = decision.findings.clone();
        record.evidence = crate::audit::Evidence::of(&evaluation);
        record.target = action_target(&decision.action);
        record.timings.cycle_real_ms = Some(self.cycle.started.elapsed().as_millis() as u64);
        if let Err(error) = self.controller.audit.write(&record).await {
            let effect = Effect::Failed { error: error.to_string() };
            return GuardResult { policies, ..self.result(&decision, effect, Some(evaluation)) };
        }
        record.findings.clear();
        let capacity = crate::capacity::needed(self.guard, &metrics, &evaluation);
        let effect = match &decision.action {
            Action::None => {
                self.keep_standby(capacity).await;
                approval.map_or(Effect::NoAction, |waiting| waiting.effect())
            }
            Action::RecordGood { revision } => self.record_known_good(revision, &mut record).await,
            Action::AwaitApproval { .. } | Action::DropApproval => self.mark_approval(approval).await,
            Action::Rollback { to } => {
                drop(judging);
                crate::rollback::Rollback::new(&self, to, capacity, record, decided).run().await
            }
        };
        if decision.action == Action::None {
            self.remember_rollout(deployed_at).await;
        }
        GuardResult { policies, ..self.result(&decision, effect, Some(evaluation)) }
    }

    /// Records the candidate's rollout on the resource the first time ripcord sees it serve traffic, and again
    /// when it first serves all of it (the start of its bake). Not in dry-run, which changes nothing.
    async fn remember_rollout(&self, deployed_at: Option<i64>) {
        let d = &self.deployment;
        let Some(first_traffic_ms) = deployed_at else { return };
        let known = d.rollout.as_ref();
        let all_traffic_ms =
            known.and_then(|r| r.all_traffic_ms).or_else(|| d.candidate_serves_all().then_some(self.cycle.now));
        if self.mode() == Mode::DryRun
            || !d.candidate_on_trial()
            || known.is_some_and(|r| r.all_traffic_ms == all_traffic_ms)
        {
            return;
        }
        let rollout = Rollout { revision: d.candidate.clone(), first_traffic_ms, all_traffic_ms };
        if let Err(error) = self.provider.mark(self.guard, &[Mark::Rollout(rollout)]).await {
            tracing::warn!(guard = %self.guard.name, %error, "cannot record the candidate's rollout; the next cycle tries again");
        }
    }

    /// A guard whose metrics could not be read: its decision record says why, so the audit log has one record
    /// per guard per cycle, failures included.
    pub(crate) async fn unjudged(self, error: String) -> GuardResult {
        let mut result = GuardResult::failed(&self.guard.name, error.clone());
        result.at = Some(crate::time::format_timestamp(self.cycle.now));
        result.deployment = Some(DeploymentRecord::from(&self.deployment));
        self.controller.record_unjudged(self.guard, Some(&self.deployment), error, &self.cycle).await;
        result
    }

    /// The guard's mode: its own, unless the run is a dry run.
    pub(crate) fn mode(&self) -> Mode {
        self.controller.mode(self.guard)
    }

    /// Asks the guard's policies on a blocking thread: a plugin runs synchronously (up to its deadline), and
    /// WASI's synchronous bindings it prints through may not run on an async worker (see `Runtime`).
    async fn ask_policies(&self, evaluation: &Evaluation, failed: BTreeMap<String, String>) -> Vec<PolicyOutcome> {
        let (policies, guard, input) = (self.controller.policies.clone(), self.guard.clone(), evaluation.clone());
        match tokio::task::spawn_blocking(move || policies.evaluate(&guard, &input, &failed)).await {
            Ok(outcomes) => outcomes,
            Err(error) => self
                .guard
                .policies
                .iter()
                .map(|p| PolicyOutcome {
                    plugin: p.source.to_string(),
                    outcome: Err(format!("plugin {}: the evaluation did not finish: {error}", p.source)),
                })
                .collect(),
        }
    }

    fn decision_input<'o>(&self, outcomes: &'o [PolicyOutcome], evaluation: &Evaluation) -> decision::Input<'o> {
        let d = &self.deployment;
        decision::Input {
            outcomes,
            has_data: !evaluation.candidate.metrics.is_empty(),
            mode: self.mode(),
            on_policy_error: self.guard.on_policy_error,
            no_data: self.guard.no_data,
            now_ms: self.cycle.now,
            cooldown_until_ms: d.last_rollback_ms.map(|at| at + self.guard.cooldown.as_millis() as i64),
            rollback_target: d.rollback_target().map(str::to_string),
            candidate: d.candidate.clone(),
            candidate_serves_all: d.candidate_serves_all(),
            candidate_is_known_good: !d.candidate_on_trial(),
            bake: self.bake(evaluation),
        }
    }

    /// The bake of a candidate serving all traffic: since ripcord first saw it serve all (now, the first time).
    fn bake(&self, evaluation: &Evaluation) -> Option<decision::Bake> {
        let d = &self.deployment;
        if !d.candidate_serves_all() {
            return None;
        }
        let since = d.rollout.as_ref().and_then(|r| r.all_traffic_ms).unwrap_or(self.cycle.now);
        let last_window = evaluation.windows.last().map_or(since, |w| w.start);
        Some(decision::Bake {
            served_all_ms: self.cycle.now - since,
            needed_ms: self.guard.bake.as_millis() as i64,
            requests: inputs::requests_since(&evaluation.candidate, inputs::period_start(since).min(last_window)),
        })
    }

    async fn record_known_good(&self, revision: &str, record: &mut Record) -> Effect {
        record.record = Kind::Intent;
        if let Err(error) = self.controller.audit.write(record).await {
            return Effect::Failed { error: error.to_string() };
        }
        // The rollout's work is done once its revision is the known good.
        let marks = [Mark::KnownGood(revision.to_string()), Mark::ClearRollout];
        let effect = match self.provider.mark(self.guard, &marks).await {
            Ok(()) => Effect::RecordedKnownGood { revision: revision.to_string() },
            Err(error) => Effect::Failed { error: error.to_string() },
        };
        self.close(record, effect).await
    }

    /// A record about the guard with the deployment as read; `suffix` tells a change's id from the decision's.
    pub(crate) fn record(&self, suffix: &str, action: AuditAction) -> Record {
        let (name, now) = (&self.guard.name, self.cycle.now);
        let id = if suffix.is_empty() { format!("{name}-{now}") } else { format!("{name}-{now}-{suffix}") };
        Record {
            deployment: Some(DeploymentRecord::from(&self.deployment)),
            writer: Some(self.controller.writer.clone()),
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
        match self.controller.audit.write(record).await {
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
        done: crate::audit::Outcome,
        change: impl std::future::Future<
            Output = Result<Option<crate::provider::Prewarmed>, crate::provider::ProviderError>,
        >,
    ) {
        record.record = Kind::Intent;
        if let Err(error) = self.controller.audit.write(record).await {
            tracing::error!(%error, action = %record.action, "cannot audit the change; not making it");
            return;
        }
        record.record = Kind::Result;
        // Once its intent is written, a change runs to its end: ahead of reads, never deferred.
        match crate::provider::quota::as_change(change).await {
            Ok(prewarm) => {
                record.outcome = Some(done);
                record.prewarm = prewarm;
            }
            Err(error) => {
                record.outcome = Some(crate::audit::Outcome::Failed);
                record.error = Some(error.to_string());
            }
        }
        if let Err(error) = self.controller.audit.write(record).await {
            tracing::error!(%error, "cannot audit the result of {}", record.action);
        }
    }

    pub(crate) fn result(&self, decision: &Decision, effect: Effect, evaluation: Option<Evaluation>) -> GuardResult {
        GuardResult {
            guard: self.guard.name.clone(),
            at: Some(crate::time::format_timestamp(self.cycle.now)),
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

/// The audit record's `action` for a decision.
fn audit_action(action: &Action) -> AuditAction {
    match action {
        Action::None => AuditAction::None,
        Action::Rollback { .. } => AuditAction::Rollback,
        Action::RecordGood { .. } => AuditAction::RecordKnownGood,
        Action::AwaitApproval { .. } => AuditAction::AwaitApproval,
        Action::DropApproval => AuditAction::RejectRollback,
    }
}

fn action_target(action: &Action) -> Option<String> {
    match action {
        Action::None => None,
        Action::Rollback { to } => Some(to.clone()),
        Action::RecordGood { revision } => Some(revision.clone()),
        Action::AwaitApproval { to } => Some(to.clone()),
        Action::DropApproval => None,
    }
}

fn policy_records(outcomes: &[PolicyOutcome]) -> Vec<PolicyRecord> {
    outcomes
        .iter()
        .map(|o| match &o.outcome {
            Ok(report) => PolicyRecord {
                plugin: o.plugin.clone(),
                verdict: report.verdict,
                reason: report.reason.clone(),
                checks: report.checks.clone(),
                error: None,
            },
            Err(error) => PolicyRecord {
                plugin: o.plugin.clone(),
                verdict: Verdict::Inconclusive,
                reason: error.clone(),
                checks: Vec::new(),
                error: Some(error.clone()),
            },
        })
        .collect()
}

/// Adds `note` to the record's error text, keeping what was there.
pub(crate) fn append_error(record: &mut Record, note: String) {
    record.error = Some(match record.error.take() {
        Some(earlier) => format!("{earlier}; {note}"),
        None => note,
    });
}

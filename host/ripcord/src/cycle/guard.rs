//! One guard's cycle, in order, on the guard's context (`act/context.rs`, the way Argo Rollouts gives each
//! reconcile a `rolloutContext`): close what a dead process left open (`act/recovery.rs`), release capacity no
//! longer needed (`act/capacity.rs`), build the evaluation (`observe/inputs.rs`), ask the policies and decide
//! (`judge/`), record the decision (`record/audit.rs`), act — keep the target warm, record the known good, wait for
//! an approval, or roll back (`act/rollback.rs`) — and remember the candidate's rollout on the resource (its first
//! traffic and when it took all of it), so the next run, on any machine, sees the same evidence. A person's pull
//! and answer are `act/pull.rs` and `act/approval.rs`.

use crate::act::capacity;
use crate::act::context::GuardContext;
use crate::act::rollback::Rollback;
use crate::config::Mode;
use crate::judge::decision::{self, Action, PolicyOutcome};
use crate::model::evaluation::{Evaluation, History};
use crate::model::verdict::Verdict;
use crate::observe::inputs;
use crate::provider::{GuardMetrics, Mark, Rollout};
use crate::record::audit::{Action as AuditAction, Kind, PolicyRecord, Record};
use crate::record::effect::{Effect, GuardResult};
use std::collections::BTreeMap;
use std::time::Instant;

impl GuardContext<'_> {
    /// The whole cycle, with the guard's metrics and the known good's history: tidy up, judge, record, act.
    /// `failed_thresholds` are the policies whose `latency-thresholds` failed this cycle (not asked to evaluate).
    pub(crate) async fn run(
        mut self,
        metrics: GuardMetrics,
        known_good: Option<History>,
        failed_thresholds: BTreeMap<String, String>,
    ) -> GuardResult {
        // Judging and bookkeeping take a slot; a rollback gives it back (it may wait minutes for its prewarm, and a
        // fleet's rollbacks wait together).
        let judging = self.services.judging.acquire().await.ok();
        self.close_interrupted().await;
        self.release_capacity().await;
        let deployed_at = inputs::rollout_start(&self.deployment, &metrics);
        let windows = inputs::guard_windows(self.cycle.now, self.guard, deployed_at);
        let context = inputs::Context { deployed_at, known_good };
        let evaluation = inputs::evaluation(self.guard, &self.deployment, &metrics, &windows, self.cycle.now, context);
        self.services.record_evaluation(&evaluation);
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
        record.evidence = crate::record::audit::Evidence::of(&evaluation);
        record.target = action_target(&decision.action);
        record.timings.cycle_real_ms = Some(self.cycle.started.elapsed().as_millis() as u64);
        if let Err(error) = self.services.audit.write(&record).await {
            let effect = Effect::Failed { error: error.to_string() };
            return GuardResult { policies, ..self.result(&decision, effect, Some(evaluation)) };
        }
        record.findings.clear();
        let capacity = capacity::needed(self.guard, &metrics, &evaluation);
        let effect = match &decision.action {
            Action::None => {
                self.keep_standby(capacity).await;
                approval.map_or(Effect::NoAction, |waiting| waiting.effect())
            }
            Action::RecordGood { revision } => self.record_known_good(revision, &mut record).await,
            Action::AwaitApproval { .. } | Action::DropApproval => self.mark_approval(approval).await,
            Action::Rollback { to } => {
                drop(judging);
                Rollback::new(&self, to, capacity, record, decided).run().await
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

    /// Asks the guard's policies on a blocking thread: a plugin runs synchronously (up to its deadline), and
    /// WASI's synchronous bindings it prints through may not run on an async worker (see `Runtime`).
    async fn ask_policies(&self, evaluation: &Evaluation, failed: BTreeMap<String, String>) -> Vec<PolicyOutcome> {
        let (policies, guard, input) = (self.services.policies.clone(), self.guard.clone(), evaluation.clone());
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
        if let Err(error) = self.services.audit.write(record).await {
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

//! Rollbacks that wait for a person (`mode = "approve"`), for services where a human signs off every change
//! (Cloud Deploy's approvals, Spinnaker's manual judgement). A rollback verdict becomes a **pending** rollback —
//! a decision record with action `await-approval`, which the webhook sends, and a marker on the resource — that an
//! approver approves (the rollback is made at once, as a pull) or rejects (the candidate's rollbacks are then not
//! acted on) through `ripcord serve`. After `approval_timeout` the next cycle acts as `on_approval_timeout` says:
//! roll back, or drop it as if rejected.
//!
//! The state lives in the resource's `approval` marker (`provider/markers.rs`), like the cooldown: a scheduled
//! function, a Cloud Run Job and a server with `--no-watch` see the same pending rollback, and a new candidate
//! starts with none (the marker names its candidate).

use crate::act::context::GuardContext;
use crate::act::context::Requester;
use crate::config::{Mode, OnApprovalTimeout};
use crate::judge::decision::{Action, Decision};
use crate::model::text::revision_label as label;
use crate::model::time::format_timestamp;
use crate::model::verdict::Verdict;
use crate::provider::{Approval, ApprovalState, Mark};
use crate::record::audit::Action as AuditAction;
use crate::record::effect::{Effect, GuardResult};

/// What a guard in approve mode does with a rollback verdict this cycle, besides its decision's action.
#[derive(Debug)]
pub(crate) enum Approving {
    /// Write this marker (the rollback became pending, or was dropped at its timeout), then end as `effect`.
    Mark { mark: Mark, effect: Effect },
    /// Still waiting for a person.
    Waiting { to: String, until_ms: i64 },
}

impl Approving {
    pub(crate) fn effect(self) -> Effect {
        match self {
            Approving::Mark { effect, .. } => effect,
            Approving::Waiting { to, until_ms } => Effect::AwaitingApproval { to, until: format_timestamp(until_ms) },
        }
    }
}

impl GuardContext<'_> {
    /// Turns a rollback verdict of a guard in approve mode into what its approval state says (see the module's
    /// documentation); `decision`'s action and reason change accordingly. Other guards and verdicts: `None`.
    pub(crate) fn approval(&self, decision: &mut Decision) -> Option<Approving> {
        let Action::Rollback { to } = &decision.action else { return None };
        if self.mode() != Mode::Approve {
            return None;
        }
        let (now, timeout) = (self.cycle.now, self.guard.approval_timeout.as_millis() as i64);
        let candidate = self.deployment.candidate.clone();
        let until = |since: i64| format_timestamp(since + timeout);
        match self.deployment.approval.as_ref().map(|a| (&a.state, a.since_ms)) {
            None => {
                let to = to.clone();
                decision.reason.push_str(&format!(
                    "; the rollback to {} awaits approval until {} (mode approve)",
                    label(&to),
                    until(now)
                ));
                decision.action = Action::AwaitApproval { to: to.clone() };
                let state = ApprovalState::Pending { target: to.clone() };
                let mark = Mark::Approval(Approval { candidate, state, since_ms: now });
                let effect = Effect::AwaitingApproval { to, until: until(now) };
                Some(Approving::Mark { mark, effect })
            }
            Some((ApprovalState::Pending { target }, since)) if now < since + timeout => {
                decision.reason.push_str(&format!(
                    "; the rollback to {} awaits approval since {} (until {})",
                    label(target),
                    format_timestamp(since),
                    until(since)
                ));
                decision.action = Action::None;
                Some(Approving::Waiting { to: target.clone(), until_ms: since + timeout })
            }
            Some((ApprovalState::Pending { target }, _)) => {
                let waited = humantime::format_duration(self.guard.approval_timeout);
                match self.guard.on_approval_timeout {
                    OnApprovalTimeout::Rollback => {
                        decision.reason.push_str(&format!(
                            "; nobody answered the pending rollback within {waited}: rolling back \
                             (on_approval_timeout = rollback)"
                        ));
                        decision.action = Action::Rollback { to: target.clone() };
                        None
                    }
                    OnApprovalTimeout::Drop => {
                        decision.reason.push_str(&format!(
                            "; nobody answered the pending rollback within {waited}: dropped \
                             (on_approval_timeout = drop), {}'s rollbacks are not acted on",
                            label(&candidate)
                        ));
                        decision.action = Action::DropApproval;
                        let mark =
                            Mark::Approval(Approval { candidate, state: ApprovalState::Rejected, since_ms: now });
                        Some(Approving::Mark { mark, effect: Effect::NoAction })
                    }
                }
            }
            Some((ApprovalState::Rejected, since)) => {
                decision.reason.push_str(&format!(
                    "; its rollback was rejected at {}: not acted on for {}",
                    format_timestamp(since),
                    label(&candidate)
                ));
                decision.action = Action::None;
                None
            }
        }
    }

    /// Writes the approval marker `approving` asks for.
    pub(crate) async fn mark_approval(&self, approving: Option<Approving>) -> Effect {
        let Some(Approving::Mark { mark, effect }) = approving else { return Effect::NoAction };
        match self.provider.mark(self.guard, &[mark]).await {
            Ok(()) => effect,
            Err(error) => Effect::Failed { error: format!("cannot record the approval state: {error}") },
        }
    }

    /// An approver's answer to the guard's pending rollback: approved, the rollback is made now as a pull to the
    /// pending target; rejected, the candidate's rollbacks are not acted on. Nothing pending: an error.
    pub(crate) async fn answer(self, approve: bool, requester: &Requester) -> GuardResult {
        let pending = match &self.deployment.approval {
            Some(Approval { state: ApprovalState::Pending { target }, since_ms, .. }) => (target.clone(), *since_ms),
            _ => {
                let error = format!(
                    "no rollback of {} awaits approval (candidate {})",
                    self.guard.name,
                    label(&self.deployment.candidate)
                );
                return GuardResult::failed(&self.guard.name, error);
            }
        };
        let (target, since) = pending;
        let given = requester.reason.as_deref().map(|r| format!(": {}", r.trim())).unwrap_or_default();
        if approve {
            let reason = format!("approved the rollback pending since {}{given}", format_timestamp(since));
            let approved = Requester { by: requester.by.clone(), reason: Some(reason) };
            return self.pull(Some(&target), &approved).await;
        }
        let candidate = label(&self.deployment.candidate);
        let reason = format!(
            "the rollback to {} pending since {} rejected by {}{given}: not acted on for {candidate}",
            label(&target),
            format_timestamp(since),
            requester.by
        );
        let decision = Decision {
            verdict: Verdict::Rollback,
            action: Action::DropApproval,
            reason: reason.clone(),
            suppressed: None,
            findings: Vec::new(),
        };
        let mut record = self.record("reject", AuditAction::RejectRollback);
        record.verdict = Verdict::Rollback;
        record.reason = reason;
        record.target = Some(target);
        if let Err(error) = self.services.audit.write(&record).await {
            return self.result(&decision, Effect::Failed { error: error.to_string() }, None);
        }
        let state = ApprovalState::Rejected;
        let mark =
            Mark::Approval(Approval { candidate: self.deployment.candidate.clone(), state, since_ms: self.cycle.now });
        let effect = self.mark_approval(Some(Approving::Mark { mark, effect: Effect::NoAction })).await;
        self.result(&decision, effect, None)
    }
}

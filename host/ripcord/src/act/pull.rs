//! The manual pull (`ripcord pull`, function mode's `{"action": "pull"}`): an on-call engineer's rollback, now,
//! ignoring the cooldown. The target is the revision asked for, else the rollback target, else the last known good;
//! a target that already serves all traffic changes nothing (not even the cooldown); a dry run says what it would
//! do. Like every verdict it writes a decision record (actor `manual`), then the rollback's intent and result.

use crate::act::context::GuardContext;
use crate::config::{Mode, PrewarmMode};
use crate::judge::decision::{Action, Decision};
use crate::model::verdict::Verdict;
use crate::observe::inputs;
use crate::provider::Deployment;
use crate::record::audit::Action as AuditAction;
use crate::record::effect::{Effect, GuardResult};
use std::time::Instant;

impl GuardContext<'_> {
    /// Pulls the guard to `to` (see the module's documentation).
    pub(crate) async fn pull(mut self, to: Option<&str>, requester: &crate::act::context::Requester) -> GuardResult {
        self.close_interrupted().await;
        let deployment = &self.deployment;
        let target = to
            .map(str::to_string)
            .or_else(|| deployment.rollback_target().map(str::to_string))
            .or_else(|| deployment.known_good.clone());
        let Some(target) = target else {
            let error = format!(
                "no revision to pull to: candidate {} has no baseline or known good; pass --to VERSION",
                deployment.candidate
            );
            return GuardResult::failed(&self.guard.name, error);
        };
        match self.provider.revisions(self.guard).await {
            Ok(revisions) if !revisions.contains(&target) => {
                let error = format!("revision {target:?} does not exist; the revisions are {}", revisions.join(", "));
                return GuardResult::failed(&self.guard.name, error);
            }
            Ok(_) => {}
            Err(error) => return GuardResult::failed(&self.guard.name, error.to_string()),
        }
        let serving = deployment.serves_only(&target);
        let mut reason = format!("manual pull to {target} by {}", requester.by);
        if let Some(given) = requester.reason.as_deref().filter(|r| !r.trim().is_empty()) {
            reason.push_str(&format!(" ({})", given.trim()));
        }
        if serving {
            reason.push_str(&format!(": {target} already serves all traffic; nothing changed"));
        } else if self.mode() == Mode::DryRun {
            let prewarm = match self.guard.prewarm {
                PrewarmMode::Off => "pin it cold".to_string(),
                _ => format!("warm {target}, then pin it"),
            };
            reason.push_str(&format!("; dry-run: would {prewarm} (from {}); nothing changed", split(deployment)));
        }
        let decision = Decision {
            verdict: Verdict::Rollback,
            action: Action::Rollback { to: target.clone() },
            reason: reason.clone(),
            suppressed: None,
            findings: Vec::new(),
        };
        // The decision record comes first, so `status` and `report` show the pull like any verdict.
        let mut record = self.record("pull", AuditAction::Rollback);
        record.verdict = Verdict::Rollback;
        record.reason = reason;
        record.target = Some(target.clone());
        if let Err(error) = self.services.audit.write(&record).await {
            return self.result(&decision, Effect::Failed { error: error.to_string() }, None);
        }
        if serving {
            return self.result(&decision, Effect::AlreadyPinned { to: target }, None);
        }
        if record.mode == Mode::DryRun {
            return self.result(&decision, Effect::NoAction, None);
        }
        let capacity = self.pull_capacity().await;
        let effect = crate::act::rollback::Rollback::new(&self, &target, capacity, record, Instant::now()).run().await;
        self.result(&decision, effect, None)
    }

    /// Capacity for a pull's prewarm, sized from the guard's recent metrics when they can be read.
    async fn pull_capacity(&self) -> u32 {
        if self.guard.prewarm == PrewarmMode::Off {
            return crate::act::capacity::from_peak(self.guard, None);
        }
        let windows = inputs::guard_windows(self.cycle.now, self.guard, None);
        match self.provider.metrics(&[(self.guard, &self.deployment)], &windows).await.pop() {
            Some(Ok(metrics)) => {
                let (deployment, now) = (&self.deployment, self.cycle.now);
                let evaluation =
                    inputs::evaluation(self.guard, deployment, &metrics, &windows, now, Default::default());
                crate::act::capacity::needed(self.guard, &metrics, &evaluation)
            }
            _ => crate::act::capacity::from_peak(self.guard, None),
        }
    }
}

/// The traffic split as people read it, e.g. `1 at 90%, 2 at 10%`.
fn split(deployment: &Deployment) -> String {
    if deployment.candidate_serves_all() {
        format!("{} at 100%", deployment.primary)
    } else {
        let share = deployment.candidate_share * 100.0;
        format!("{} at {:.0}%, {} at {share:.0}%", deployment.primary, 100.0 - share, deployment.candidate)
    }
}

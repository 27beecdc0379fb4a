//! Recovering from a process that died mid-change: an intent without a result in the audit log, found when the
//! controller starts, is closed by the next cycle of its guard once its process is known to be gone (or the
//! intent is older than any change can take). The `interrupted` result says what the platform shows now; a
//! rollback found in effect gets its cooldown marker; one not in effect whose pin left its cooldown marker (Cloud
//! Run writes the markers with the pin: the PATCH was accepted, then the process died) has it cleared, so the
//! cycle is not held back by a cooldown for a pin that does not serve. Capacity such a change added carries its
//! own write-ahead marker and is released by `capacity.rs`. The cycle then decides afresh from what it read.

use crate::act::context::GuardContext;
use crate::config::Mode;
use crate::provider::Mark;
use crate::record::audit::{Action, DeploymentRecord, Kind, Outcome, Record, Writer};

/// Slack added to a change's bounded waits before it is taken to be no longer running (SDK retries, reconciles).
pub const CHANGE_MARGIN_MS: i64 = 10 * 60_000;

impl GuardContext<'_> {
    /// Closes the guard's interrupted changes (see the module's documentation).
    pub(crate) async fn close_interrupted(&mut self) {
        let (guard, now) = (self.guard, self.cycle.now);
        let bound = guard.prewarm_timeout.as_millis() as i64 + CHANGE_MARGIN_MS;
        let interrupted = self.services.take_open_intents(|intent| {
            intent.guard == guard.name
                && (intent.writer.as_ref().is_some_and(Writer::has_stopped) || now - intent.at_ms > bound)
        });
        for intent in interrupted {
            let record = self.interrupted(intent).await;
            if let Some(cleared) = record.cleared_cooldown {
                self.deployment = cleared;
            }
            let record = record.record;
            if let Err(error) = self.services.audit.write(&record).await {
                tracing::error!(%error, id = %record.id, "cannot close the interrupted change in the audit log");
            }
        }
    }

    /// The `result` closing `intent`, with what the platform shows, and its cooldown marker if it took effect (or
    /// the one its pin left, cleared, if it did not).
    async fn interrupted(&self, intent: Record) -> Closed {
        let (deployment, now) = (&self.deployment, self.cycle.now);
        let target = intent.target.clone().unwrap_or_default();
        let pinned = deployment.serves_only(&target);
        let effect = match intent.action {
            Action::Rollback if pinned => format!("the pin to {target} had taken effect"),
            Action::Rollback => format!("the pin to {target} had not taken effect; this cycle decides again"),
            _ => "this cycle decides again".to_string(),
        };
        let by = intent.writer.as_ref().map_or_else(String::new, |w| format!(" (pid {} on {})", w.pid, w.host));
        let mut record = intent;
        record.record = Kind::Result;
        record.outcome = Some(Outcome::Interrupted);
        record.error = Some(format!(
            "the ripcord process that wrote the intent{by} stopped before writing its result; found at {}: the deployment serves {} (candidate {} at {:.0}%); {effect}",
            crate::model::time::format_timestamp(now),
            deployment.primary,
            deployment.candidate,
            deployment.candidate_share * 100.0
        ));
        record.deployment = Some(DeploymentRecord::from(deployment));
        tracing::warn!(guard = %self.guard.name, id = %record.id, action = %record.action, "closing an interrupted change");
        let own_cooldown = deployment.last_rollback_ms.is_some_and(|at| at >= record.at_ms);
        let mut cleared_cooldown = None;
        if record.action == Action::Rollback && record.mode == Mode::Enforce {
            if pinned && !own_cooldown {
                if let Err(error) = self.provider.mark(self.guard, &[Mark::RolledBackAt(now)]).await {
                    record.append_error(format!("cooldown marker not recorded: {error}"));
                }
            } else if !pinned && own_cooldown {
                match self.provider.mark(self.guard, &[Mark::ClearRolledBackAt]).await {
                    Ok(()) => cleared_cooldown = Some(deployment.marked(&[Mark::ClearRolledBackAt])),
                    Err(error) => record.append_error(format!("the pin's cooldown marker not cleared: {error}")),
                }
            }
        }
        Closed { record, cleared_cooldown }
    }
}

/// An interrupted change closed: its result, and the deployment as it reads if its cooldown marker was cleared.
struct Closed {
    record: Record,
    cleared_cooldown: Option<crate::provider::Deployment>,
}

//! Warm capacity in a guard's cycle: how much a rollback target needs (its traffic's peak concurrency, or Little's
//! law), keeping it warm while a candidate bakes (`prewarm = "standby"`), and releasing what ripcord added once it
//! is no longer needed. The prewarm that precedes a pin is a step of the rollback (`rollback.rs`).

use crate::act::context::GuardContext;
use crate::config::{Guard, Mode, PrewarmMode};
use crate::model::evaluation::Evaluation;
use crate::provider::{GuardMetrics, Mark, PrewarmRequest, Release};
use crate::record::audit::{Action, Outcome};

/// Most capacity one prewarm asks for.
const MAX_CAPACITY: f64 = 10_000.0;

/// Capacity to prewarm: the deployment's peak concurrency in the last window, or Little's law (request rate x
/// median duration) when the peak is not reported, times the guard's headroom.
pub fn needed(guard: &Guard, metrics: &GuardMetrics, evaluation: &Evaluation) -> u32 {
    let little = || {
        let last = evaluation.windows.len().checked_sub(1)? as u32;
        let seconds = guard.window.as_secs_f64();
        let revisions = evaluation.baseline.iter().chain(std::iter::once(&evaluation.candidate));
        let mut concurrency = 0.0;
        for revision in revisions {
            let requests: f64 = revision.series("requests")?.values(last).sum();
            let latency = revision.series("latency_p50").and_then(|s| s.values(last).reduce(f64::max)).unwrap_or(100.0);
            concurrency += requests / seconds * latency / 1000.0;
        }
        Some(concurrency)
    };
    from_peak(guard, metrics.peak_concurrency.or_else(little))
}

/// Capacity for a peak concurrency (1 when unknown), times the guard's headroom.
pub fn from_peak(guard: &Guard, peak: Option<f64>) -> u32 {
    let peak = peak.unwrap_or(1.0).max(1.0);
    (peak * guard.prewarm_headroom).ceil().clamp(1.0, MAX_CAPACITY) as u32
}

impl GuardContext<'_> {
    /// Releases capacity ripcord added once it is no longer needed: after the settle time following a rollback,
    /// or, for standby capacity, once its revision is no longer the rollback target. Audited like any change.
    pub(crate) async fn release_capacity(&self) {
        let deployment = &self.deployment;
        let Some(capacity) = &deployment.capacity else { return };
        let (due, why) = match capacity.release {
            Release::At(due) => (self.cycle.now >= due, "the settle time after the rollback is over"),
            Release::WhenPromoted => (
                deployment.rollback_target() != Some(capacity.revision.as_str()),
                "the bake is over: the revision is no longer the rollback target",
            ),
        };
        if !due || self.mode() == Mode::DryRun {
            return;
        }
        let mut record = self.record("release", Action::ReleasePrewarm);
        record.reason = format!("{why}; releasing the capacity added to {}", capacity.revision);
        record.target = Some(capacity.revision.clone());
        let released = async {
            self.provider.release(self.guard, &capacity.revision).await?;
            self.provider.mark(self.guard, &[Mark::ClearCapacity]).await.map(|()| None)
        };
        self.change(&mut record, Outcome::Released, released).await;
    }

    /// `prewarm = "standby"`: while a candidate bakes, keeps the rollback target warm (without waiting for it).
    pub(crate) async fn keep_standby(&self, capacity: u32) {
        let deployment = &self.deployment;
        let Some(target) = deployment.rollback_target() else { return };
        if self.guard.prewarm != PrewarmMode::Standby || self.mode() == Mode::DryRun || deployment.capacity.is_some() {
            return;
        }
        let mut record = self.record("standby", Action::StandbyPrewarm);
        record.reason = format!("candidate {} is baking: keeping {target} warm", deployment.candidate);
        record.target = Some(target.to_string());
        let request = PrewarmRequest { revision: target, capacity, wait: false, release: Release::WhenPromoted };
        let added = async { Ok(Some(self.provider.prewarm(self.guard, request, &self.services.clock).await?)) };
        self.change(&mut record, Outcome::Warming, added).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(headroom: f64) -> Guard {
        crate::config::test_guard(&format!("prewarm_headroom = {headroom}"))
    }

    #[test]
    fn capacity_is_the_peak_times_the_headroom_bounded() {
        assert_eq!(from_peak(&guard(1.5), Some(40.0)), 60);
        assert_eq!(from_peak(&guard(1.5), None), 2, "unknown peak: one environment, with headroom");
        assert_eq!(from_peak(&guard(2.0), Some(0.2)), 2, "at least one environment");
        assert_eq!(from_peak(&guard(10.0), Some(5_000.0)), 10_000, "bounded");
    }
}

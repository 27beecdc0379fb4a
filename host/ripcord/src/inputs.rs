//! What the policies are asked: windows aligned to whole metric periods, and the provider's answers re-split
//! into each guard's windows (guards of one batch share one metrics query over the longest span any of them asks).

use crate::config::Guard;
use crate::evaluation::{Evaluation, MetricSeries, Revision, Window};
use crate::provider::{Deployment, GuardMetrics};

/// Metric period the windows are aligned to.
pub const PERIOD_MS: i64 = 60_000;

/// The guard's evaluation windows, ending at the last whole metric period before `now`.
pub fn guard_windows(now: i64, guard: &Guard) -> Vec<Window> {
    let end = now.div_euclid(PERIOD_MS) * PERIOD_MS;
    Window::ending_at(end, guard.window.as_millis() as i64, guard.windows)
}

/// The span covering every guard's windows (one metrics query range per batch).
pub fn batch_windows<'a>(now: i64, guards: impl Iterator<Item = &'a Guard>) -> Vec<Window> {
    guards
        .map(|g| guard_windows(now, g))
        .max_by_key(|w| w.last().map_or(0, |l| l.end) - w.first().map_or(0, |f| f.start))
        .unwrap_or_default()
}

/// The policies' input from the provider's answers, re-split into the guard's `windows`.
pub fn evaluation(
    guard: &Guard,
    deployment: &Deployment,
    metrics: &GuardMetrics,
    windows: &[Window],
    now: i64,
) -> Evaluation {
    let resplit = |revision: &Revision| Revision {
        id: revision.id.clone(),
        traffic_share: revision.traffic_share,
        metrics: revision
            .metrics
            .iter()
            .map(|m| MetricSeries::split(&m.name, m.kind, m.points.iter().map(|p| (p.at, p.value)), windows))
            .filter(|m| !m.points.is_empty())
            .collect(),
    };
    Evaluation {
        guard: guard.name.clone(),
        platform: guard.platform(),
        now: windows.last().map_or(now, |w| w.end),
        deployed_at: None,
        windows: windows.to_vec(),
        baseline: metrics.baseline.as_ref().filter(|_| deployment.baseline.is_some()).map(resplit),
        known_good: None,
        candidate: resplit(&metrics.candidate),
        params: Default::default(),
    }
}

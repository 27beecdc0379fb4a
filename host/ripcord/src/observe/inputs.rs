//! What the policies are asked: windows aligned to whole metric periods, reaching back to the candidate's first
//! traffic (so a sequential test sees all of its evidence), the known good's history before that, and the
//! provider's answers re-split into each guard's windows (guards of one batch share one metrics query over the
//! longest span any of them asks).

use crate::config::{Guard, MAX_SPAN};
use crate::model::evaluation::{Evaluation, History, MetricSeries, Revision, Window};
use crate::provider::{Deployment, GuardMetrics};

/// Metric period the windows are aligned to.
pub const PERIOD_MS: i64 = 60_000;

/// `at` rounded down to the start of its metric period.
pub fn period_start(at: i64) -> i64 {
    at.div_euclid(PERIOD_MS) * PERIOD_MS
}

/// The guard's evaluation windows, ending at the last whole metric period the platform has published (ended at
/// least `metrics_delay` before `now`): the configured `windows × window`, extended back to the candidate's first
/// traffic `since` when known, never further than [`MAX_SPAN`] (a day).
pub fn guard_windows(now: i64, guard: &Guard, since: Option<i64>) -> Vec<Window> {
    let end = period_start(now - guard.metrics_delay.as_millis() as i64);
    let length = guard.window.as_millis() as i64;
    let most = (MAX_SPAN.as_millis() as i64 / length).max(1) as usize;
    let to_since = since.map_or(0, |since| {
        let span = end - period_start(since);
        if span <= 0 { 0 } else { ((span + length - 1) / length) as usize }
    });
    Window::ending_at(end, length, guard.windows.max(to_since).min(most))
}

/// The span covering every guard's windows (one metrics query range per batch); each guard with its
/// candidate's first traffic, when known.
pub fn batch_windows<'a>(now: i64, guards: impl Iterator<Item = (&'a Guard, Option<i64>)>) -> Vec<Window> {
    guards
        .map(|(g, since)| guard_windows(now, g, since))
        .max_by_key(|w| w.last().map_or(0, |l| l.end) - w.first().map_or(0, |f| f.start))
        .unwrap_or_default()
}

/// The span of the known good's history: `guard.history` up to the candidate's first traffic.
pub fn history_span(guard: &Guard, first_traffic_ms: i64) -> Window {
    let end = period_start(first_traffic_ms);
    Window { start: end - guard.history.as_millis() as i64, end }
}

/// When the candidate on trial first served traffic: as recorded on the deployment, else its first period with
/// requests in the metrics read (where its rollout starts, as far as ripcord can see). `None` for a candidate
/// that is the known good, or has served nothing yet.
pub fn rollout_start(deployment: &Deployment, metrics: &GuardMetrics) -> Option<i64> {
    if !deployment.candidate_on_trial() {
        return None;
    }
    deployment.rollout.as_ref().map(|r| r.first_traffic_ms).or_else(|| first_traffic(&metrics.candidate))
}

/// The first metric period in which `revision` served requests, if any did.
pub fn first_traffic(revision: &Revision) -> Option<i64> {
    revision.series("requests")?.points.iter().find(|p| p.value > 0.0).map(|p| period_start(p.at))
}

/// Requests `revision` served from `since` on.
pub fn requests_since(revision: &Revision, since: i64) -> f64 {
    revision.series("requests").map_or(0.0, |s| s.points.iter().filter(|p| p.at >= since).map(|p| p.value).sum())
}

/// The known good's history from a metrics answer over its span: one window, the span.
pub fn history(answer: &GuardMetrics, span: Window) -> Option<History> {
    let revision = resplit(&answer.candidate, &[span]);
    (!revision.metrics.is_empty()).then_some(History { revision, span })
}

/// `revision`'s series re-split into `windows`; a metric with no point inside them is dropped.
fn resplit(revision: &Revision, windows: &[Window]) -> Revision {
    Revision {
        id: revision.id.clone(),
        traffic_share: revision.traffic_share,
        metrics: revision
            .metrics
            .iter()
            .map(|m| MetricSeries::split(&m.name, m.kind, m.points.iter().map(|p| (p.at, p.value)), windows))
            .filter(|m| !m.points.is_empty())
            .collect(),
    }
}

/// What the evaluation knows besides the metrics: the candidate's first traffic and the known good's history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub deployed_at: Option<i64>,
    pub known_good: Option<History>,
}

/// The policies' input from the provider's answers, re-split into the guard's `windows`.
pub fn evaluation(
    guard: &Guard,
    deployment: &Deployment,
    metrics: &GuardMetrics,
    windows: &[Window],
    now: i64,
    context: Context,
) -> Evaluation {
    Evaluation {
        guard: guard.name.clone(),
        platform: guard.platform(),
        now: windows.last().map_or(now, |w| w.end),
        deployed_at: context.deployed_at,
        windows: windows.to_vec(),
        baseline: metrics.baseline.as_ref().filter(|_| deployment.baseline.is_some()).map(|b| resplit(b, windows)),
        known_good: context.known_good,
        candidate: resplit(&metrics.candidate, windows),
        params: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(window_minutes: u64, windows: usize) -> Guard {
        crate::config::test_guard(&format!(
            "window = \"{window_minutes}m\"\nwindows = {windows}\nmetrics_delay = \"0s\""
        ))
    }

    #[test]
    fn a_minute_the_platform_is_still_publishing_is_not_judged() {
        let g = crate::config::test_guard("window = \"1m\"\nwindows = 3");
        let now = 1_000 * PERIOD_MS + 30_000;
        let windows = guard_windows(now, &g, None);
        assert_eq!(windows.last().map(|w| w.end), Some(999 * PERIOD_MS), "the default delay is a minute");
    }

    #[test]
    fn windows_reach_back_to_the_candidates_first_traffic_and_no_further_than_a_day() {
        let now = 1_000 * PERIOD_MS + 30_000;
        let g = guard(5, 4);
        let configured = guard_windows(now, &g, None);
        assert_eq!(configured.len(), 4);
        assert_eq!(configured.last().map(|w| w.end), Some(1_000 * PERIOD_MS));
        // A candidate 7 minutes old: the configured windows already cover it.
        assert_eq!(guard_windows(now, &g, Some(now - 7 * PERIOD_MS)), configured);
        // Three hours old: 36 windows of 5 minutes, the first holding its first minute.
        let since = now - 180 * PERIOD_MS;
        let long = guard_windows(now, &g, Some(since));
        assert_eq!(long.len(), 36);
        assert!(long[0].contains(period_start(since)));
        // A week old: a day.
        assert_eq!(guard_windows(now, &g, Some(now - 7 * 1440 * PERIOD_MS)).len(), 288);
        // A first traffic in the future (clock skew) changes nothing.
        assert_eq!(guard_windows(now, &g, Some(now + PERIOD_MS)), configured);
    }

    #[test]
    fn the_history_ends_where_the_candidate_started() {
        let g = guard(1, 4);
        let span = history_span(&g, 100 * PERIOD_MS + 10);
        assert_eq!((span.start, span.end), (40 * PERIOD_MS, 100 * PERIOD_MS));
    }
}

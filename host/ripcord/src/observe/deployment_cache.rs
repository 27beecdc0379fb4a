//! What this process last read of each guard's deployment, so a fleet's reads grow with what changed, not with
//! the fleet. Reading a Lambda alias costs a GetAlias and a ListTags, a Cloud Run service a GetService and a
//! ListRevisions, against quotas of 15 a second per API or 1,000 a minute: a 10,000-guard fleet cannot be re-read
//! every minute. Most deployments do not change from one minute to the next, and when one does, the metrics
//! ripcord reads anyway say so: traffic through the alias or service that neither the baseline nor the candidate
//! served, or a candidate share the traffic contradicts ([`changed`]).
//!
//! So a cycle reads a guard's deployment afresh when it has none, when this process changed the deployment (every
//! change through [`Forgetful`] forgets it), when the metrics said it changed, or when it is older than
//! [`MAX_AGE`]; other guards are refreshed oldest first while the quota and the cycle's refresh budget allow, and
//! otherwise judged on what was last read. A stale view never moves traffic: a rollback re-reads the deployment
//! before its pin, and the pin carries the read's RevisionId or etag. A deployment read again because its metrics
//! said so is read as its routing alone where the markers live apart (`Reader::rerouted`: a Lambda alias without
//! its function's tags), and markers that only record what ripcord saw go into the view ([`Forgetful`]).
//!
//! Between processes nothing is kept here: a process that starts afresh (a scheduled job) reads every deployment
//! once, within the quotas (guards it cannot read in a cycle are deferred and read first the next). The resource's
//! markers (tags, annotations) stay the one durable truth.

use crate::config::Guard;
use crate::model::clock::Clock;
use crate::model::evaluation::Window;
use crate::provider::{
    Changer, Deployment, GuardMetrics, Mark, MetricsAnswer, Pin, PinRequest, PrewarmRequest, Prewarmed, Provider,
    ProviderError, Reader, SlowRequest,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Longest a guard is judged on a deployment read earlier (the clock's time) before it must be read again.
pub const MAX_AGE_MS: i64 = 60 * 60_000;
/// [`MAX_AGE_MS`] as a duration, for the documentation.
pub const MAX_AGE: std::time::Duration = std::time::Duration::from_millis(MAX_AGE_MS as u64);

/// The deployments this process last read, by guard name, with when (the clock's ms).
#[derive(Debug, Default)]
pub struct DeploymentCache {
    entries: Mutex<HashMap<String, (Deployment, i64)>>,
}

impl DeploymentCache {
    /// The deployment last read for `guard`, and when.
    pub fn get(&self, guard: &str) -> Option<(Deployment, i64)> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).get(guard).cloned()
    }

    pub fn put(&self, guard: &str, deployment: Deployment, read_at_ms: i64) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).insert(guard.to_string(), (deployment, read_at_ms));
    }

    /// Applies `marks` to `guard`'s view, if there is one, as writing them did on the resource.
    pub fn mark(&self, guard: &str, marks: &[Mark]) {
        if let Some((view, _)) = self.entries.lock().unwrap_or_else(|p| p.into_inner()).get_mut(guard) {
            *view = view.marked(marks);
        }
    }

    /// Forgets `guard`'s deployment: it is read afresh next time.
    pub fn forget(&self, guard: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(guard);
    }
}

/// Why the metrics read for `deployment` (a view read earlier) say it changed since, if they do: requests of the
/// newest period served by a revision that is neither its baseline nor its candidate, or a share of the recent
/// requests the candidate's traffic share cannot explain (more than six standard deviations off, or any baseline
/// traffic when the candidate serves all).
pub fn changed(deployment: &Deployment, metrics: &GuardMetrics) -> Option<String> {
    let requests = |revision: Option<&crate::model::evaluation::Revision>, at: &dyn Fn(i64) -> bool| -> f64 {
        let series = revision.and_then(|r| r.series("requests"));
        series.map_or(0.0, |s| s.points.iter().filter(|p| at(p.at)).map(|p| p.value).sum())
    };
    // A steady deployment's baseline is its candidate (the known good serving all): count its requests once.
    let distinct = deployment.baseline.as_deref() != Some(deployment.candidate.as_str());
    let (baseline, candidate) = (metrics.baseline.as_ref().filter(|_| distinct), Some(&metrics.candidate));
    if let Some(&(newest, total)) = metrics.total_requests.iter().rev().find(|(_, total)| *total > 0.0) {
        let known = requests(baseline, &|at| at == newest) + requests(candidate, &|at| at == newest);
        let other = total - known;
        if other > (0.01 * total).max(2.0) {
            return Some(format!(
                "{other:.0} of {total:.0} requests at {} went to a revision other than {} and {}",
                crate::model::time::format_timestamp(newest),
                deployment.baseline.as_deref().unwrap_or("-"),
                deployment.candidate
            ));
        }
    }
    // The newest periods with traffic: the last five minutes of data.
    let newest = metrics.candidate.series("requests").and_then(|s| s.points.last()).map(|p| p.at);
    let newest = newest.into_iter().chain(baseline.and_then(|b| b.series("requests")?.points.last().map(|p| p.at)));
    let since = newest.max()? - 4 * 60_000;
    let (c, b) = (requests(candidate, &|at| at >= since), requests(baseline, &|at| at >= since));
    let (n, share) = (c + b, deployment.candidate_share);
    if share >= 0.999 {
        if distinct && deployment.baseline.is_some() && b > (0.01 * n).max(2.0) {
            return Some(format!(
                "{b:.0} of {n:.0} recent requests went to {} while {} serves all traffic",
                deployment.baseline.as_deref().unwrap_or("-"),
                deployment.candidate
            ));
        }
        return None;
    }
    if n >= 30.0 && share > 0.0 {
        let z = (c - n * share) / (n * share * (1.0 - share)).sqrt();
        if z.abs() > 6.0 {
            return Some(format!(
                "the candidate {} served {:.1}% of {n:.0} recent requests, not its {:.1}%",
                deployment.candidate,
                100.0 * c / n,
                100.0 * share
            ));
        }
    }
    None
}

/// The provider a guard's cycle reads and changes through: every change of the routing (a prewarm, a pin, a
/// release) forgets the guard's cached deployment first; a read made after it (a rollback's re-read and
/// verification) is the view again, as of `now`; markers, whose effect is exactly known, go into the view. So the
/// cycle after a fleet-wide rollback does not read every deployment afresh (a thousand aliases at ListTags's quota
/// took two cycles).
#[derive(Debug)]
pub struct Forgetful {
    pub inner: Arc<dyn Provider>,
    pub cache: Arc<DeploymentCache>,
    /// The cycle's time, when its reads are taken to be made.
    pub now: i64,
}

impl Forgetful {
    fn remember(&self, guard: &Guard, read: &Result<Deployment, ProviderError>) {
        if let Ok(deployment) = read {
            self.cache.put(&guard.name, deployment.clone(), self.now);
        }
    }
}

#[async_trait::async_trait]
impl Reader for Forgetful {
    async fn deployment(&self, guard: &Guard) -> Result<Deployment, ProviderError> {
        let read = self.inner.deployment(guard).await;
        self.remember(guard, &read);
        read
    }

    async fn rerouted(&self, guard: &Guard, view: &Deployment) -> Result<Deployment, ProviderError> {
        let read = self.inner.rerouted(guard, view).await;
        self.remember(guard, &read);
        read
    }

    fn reads_in_bulk(&self) -> bool {
        self.inner.reads_in_bulk()
    }

    async fn deployments(&self, guards: &[&Guard]) -> Vec<Result<Deployment, ProviderError>> {
        self.inner.deployments(guards).await
    }

    async fn metrics(&self, requests: &[(&Guard, &Deployment)], windows: &[Window]) -> Vec<MetricsAnswer> {
        self.inner.metrics(requests, windows).await
    }

    async fn slow_requests(&self, requests: &[SlowRequest<'_>], windows: &[Window]) -> Vec<MetricsAnswer> {
        self.inner.slow_requests(requests, windows).await
    }

    async fn revisions(&self, guard: &Guard) -> Result<Vec<String>, ProviderError> {
        self.inner.revisions(guard).await
    }

    async fn error_rises(&self, guards: &[&Guard], now: i64) -> Vec<f64> {
        self.inner.error_rises(guards, now).await
    }
}

#[async_trait::async_trait]
impl Changer for Forgetful {
    async fn prewarm(
        &self,
        guard: &Guard,
        request: PrewarmRequest<'_>,
        clock: &Clock,
    ) -> Result<Prewarmed, ProviderError> {
        self.cache.forget(&guard.name);
        self.inner.prewarm(guard, request, clock).await
    }

    async fn pin(&self, guard: &Guard, request: PinRequest<'_>, clock: &Clock) -> Result<Pin, ProviderError> {
        self.cache.forget(&guard.name);
        self.inner.pin(guard, request, clock).await
    }

    /// Markers change nothing but themselves: the view takes them instead of being read again — after a
    /// fleet-wide deploy, forgetting each view for its rollout marker made the next cycle read every alias a
    /// second time. (A marker write that fails may have landed: the view is forgotten.)
    async fn mark(&self, guard: &Guard, marks: &[Mark]) -> Result<(), ProviderError> {
        let marked = self.inner.mark(guard, marks).await;
        match &marked {
            Ok(()) => self.cache.mark(&guard.name, marks),
            Err(_) => self.cache.forget(&guard.name),
        }
        marked
    }

    async fn release(&self, guard: &Guard, revision: &str) -> Result<(), ProviderError> {
        self.cache.forget(&guard.name);
        self.inner.release(guard, revision).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::evaluation::{MetricKind, MetricSeries, Revision};

    const MINUTE: i64 = 60_000;

    fn revision(id: &str, requests: &[f64]) -> Revision {
        let points: Vec<(i64, f64)> = requests.iter().enumerate().map(|(i, r)| (i as i64 * MINUTE, *r)).collect();
        let windows = Window::ending_at(requests.len() as i64 * MINUTE, MINUTE, requests.len());
        let series = MetricSeries::split("requests", MetricKind::for_metric("requests"), points, &windows);
        Revision { id: id.into(), traffic_share: 0.0, metrics: vec![series] }
    }

    fn canary(share: f64) -> Deployment {
        Deployment {
            primary: "1".into(),
            candidate: "2".into(),
            candidate_share: share,
            baseline: Some("1".into()),
            known_good: Some("1".into()),
            token: "t".into(),
            last_rollback_ms: None,
            capacity: None,
            rollout: None,
            approval: None,
        }
    }

    fn metrics(base: &[f64], cand: &[f64], total: &[f64]) -> GuardMetrics {
        GuardMetrics {
            baseline: Some(revision("1", base)),
            candidate: revision("2", cand),
            peak_concurrency: None,
            total_requests: total.iter().enumerate().map(|(i, t)| (i as i64 * MINUTE, *t)).collect(),
        }
    }

    #[test]
    fn traffic_as_the_view_says_is_unchanged() {
        let m = metrics(&[540.0, 545.0, 530.0], &[60.0, 55.0, 62.0], &[600.0, 600.0, 592.0]);
        assert_eq!(changed(&canary(0.1), &m), None);
        // A steady deployment: the known good is both baseline and candidate, its requests counted once.
        let steady = Deployment { primary: "1".into(), candidate: "1".into(), candidate_share: 1.0, ..canary(1.0) };
        let m = GuardMetrics { baseline: Some(revision("1", &[600.0; 3])), ..metrics(&[], &[600.0; 3], &[600.0; 3]) };
        let m = GuardMetrics { candidate: revision("1", &[600.0; 3]), ..m };
        assert_eq!(changed(&steady, &m), None);
    }

    #[test]
    fn a_revision_the_view_does_not_know_taking_traffic_is_a_change() {
        // A new canary (version 3) took 10% in the last minute; version 2 got nothing.
        let m = metrics(&[540.0, 545.0, 530.0], &[60.0, 55.0, 0.0], &[600.0, 600.0, 590.0]);
        let why = changed(&canary(0.1), &m).unwrap_or_default();
        assert!(why.contains("60 of 590 requests") && why.contains("other than 1 and 2"), "{why}");
        // A few stray requests (a retry served late) are not.
        let m = metrics(&[540.0, 545.0, 530.0], &[60.0, 55.0, 59.0], &[600.0, 600.0, 590.0]);
        assert_eq!(changed(&canary(0.1), &m), None);
    }

    #[test]
    fn a_share_the_traffic_contradicts_is_a_change() {
        // Promoted from 10% to 50% by the deploy tool.
        let m = metrics(&[300.0, 300.0, 300.0], &[300.0, 300.0, 300.0], &[600.0, 600.0, 600.0]);
        let why = changed(&canary(0.1), &m).unwrap_or_default();
        assert!(why.contains("served 50.0%") && why.contains("not its 10.0%"), "{why}");
        // Rolled back by someone else: the known good serves all while the view says the candidate does.
        let all = Deployment { primary: "2".into(), candidate_share: 1.0, ..canary(1.0) };
        let m = metrics(&[600.0, 600.0, 600.0], &[0.0, 0.0, 0.0], &[600.0, 600.0, 600.0]);
        assert!(changed(&all, &m).is_some_and(|why| why.contains("while 2 serves all traffic")));
        // Too few requests to tell: no verdict on the view.
        let m = metrics(&[5.0, 4.0, 6.0], &[3.0, 3.0, 2.0], &[8.0, 7.0, 8.0]);
        assert_eq!(changed(&canary(0.1), &m), None);
    }
}

//! Providers: the only code that talks to a cloud, behind two interfaces — [`Reader`] (what the deployment looks
//! like, its metrics, its revisions) and [`Changer`] (warm a revision, pin one, record markers, release capacity) —
//! the way Flagger (`pkg/metrics/providers`, `pkg/router`) and Argo Rollouts (`metricproviders`,
//! `trafficrouting`) divide the same job. The cycle knows neither cloud: AWS Lambda (`lambda.rs` with CloudWatch
//! in `cloudwatch.rs`) and Google Cloud Run (`cloud_run.rs` with Cloud Monitoring in `cloud_monitoring.rs`)
//! implement both, through the official SDKs, against the real cloud, the simulator or moto, chosen by
//! configuration alone. A third provider is a new file implementing both traits, a [`connect`] arm and simulator
//! support (docs/architecture.md says what it takes).

pub mod aws;
mod aws_http;
mod cloud_monitoring;
pub mod cloud_run;
mod cloud_run_traffic;
mod cloudwatch;
pub mod codedeploy;
pub mod gcp;
pub mod lambda;
pub mod markers;
#[cfg(test)]
pub mod memory;
pub mod quota;

use crate::config::{Config, Guard, Target};
use crate::model::clock::Clock;
use crate::model::evaluation::{Revision, Window};
use std::sync::Arc;

/// A provider call failed (after the SDK's own retries).
#[derive(Debug, Clone, Default, thiserror::Error)]
#[error("{operation} on {resource}: {message}")]
pub struct ProviderError {
    pub operation: &'static str,
    pub resource: String,
    pub message: String,
    /// The platform refused the call for its rate limit (HTTP 429, `TooManyRequestsException`,
    /// `RESOURCE_EXHAUSTED`): it was not carried out, so trying again later is always safe.
    pub throttled: bool,
}

/// The state of a guarded deployment, read from the platform.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// The revision serving the main share of traffic (the alias's version).
    pub primary: String,
    /// The revision under evaluation: the canary while traffic is split, else the primary.
    pub candidate: String,
    /// Share of traffic the candidate serves, in [0, 1].
    pub candidate_share: f64,
    /// The revision to compare with and to roll back to: the primary during a canary, else the last known good.
    pub baseline: Option<String>,
    /// The last known good recorded on the resource.
    pub known_good: Option<String>,
    /// Optimistic-concurrency token of the routing (Lambda RevisionId, Cloud Run etag).
    pub token: String,
    /// When ripcord last rolled this deployment back (marker on the resource), ms since the epoch.
    pub last_rollback_ms: Option<i64>,
    /// Capacity ripcord added and must release, as recorded on the resource.
    pub capacity: Option<Capacity>,
    /// The candidate's rollout as recorded on the resource (only when it is this candidate's).
    pub rollout: Option<Rollout>,
    /// A pending or rejected rollback of the candidate (only when it is this candidate's).
    pub approval: Option<Approval>,
}

impl Deployment {
    /// A deployment from its routing — the revision serving the main share, the candidate and its share — its
    /// optimistic-concurrency token and the markers on the resource. The baseline (what the candidate is compared
    /// with and rolled back to) is the primary during a split, else the last known good.
    pub fn new(
        primary: String,
        candidate: String,
        candidate_share: f64,
        token: String,
        markers: markers::Markers,
    ) -> Self {
        let baseline = if primary == candidate { markers.known_good.clone() } else { Some(primary.clone()) };
        Self {
            primary,
            candidate_share,
            baseline,
            known_good: markers.known_good,
            token,
            last_rollback_ms: markers.last_rollback_ms,
            capacity: markers.capacity,
            rollout: markers.rollout.filter(|r| r.revision == candidate),
            approval: markers.approval.filter(|a| a.candidate == candidate),
            candidate,
        }
    }

    /// The markers it was read with (a rollout or approval of another candidate was dropped then).
    pub fn markers(&self) -> markers::Markers {
        markers::Markers {
            known_good: self.known_good.clone(),
            last_rollback_ms: self.last_rollback_ms,
            capacity: self.capacity.clone(),
            rollout: self.rollout.clone(),
            approval: self.approval.clone(),
        }
    }

    /// The deployment as it reads once `marks` are written on its resource.
    pub fn marked(&self, marks: &[Mark]) -> Self {
        let mut markers = self.markers();
        for mark in marks {
            markers.apply(mark);
        }
        Self::new(self.primary.clone(), self.candidate.clone(), self.candidate_share, self.token.clone(), markers)
    }

    /// The deployment as if `revision` served all traffic alone: how the known good's history is asked of
    /// [`Reader::metrics`] (its metrics as a candidate's, over the history span).
    pub fn alone(&self, revision: &str) -> Self {
        Self {
            primary: revision.to_string(),
            candidate: revision.to_string(),
            candidate_share: 1.0,
            baseline: None,
            rollout: None,
            capacity: None,
            approval: None,
            ..self.clone()
        }
    }

    /// Whether the candidate is under evaluation: not the recorded known good (a candidate that is the known
    /// good is only watched).
    pub fn candidate_on_trial(&self) -> bool {
        self.known_good.as_deref() != Some(self.candidate.as_str())
    }

    /// Whether the candidate serves all traffic (no split).
    pub fn candidate_serves_all(&self) -> bool {
        self.candidate == self.primary
    }

    /// The rollback target, when there is one different from the candidate.
    pub fn rollback_target(&self) -> Option<&str> {
        self.baseline.as_deref().filter(|b| *b != self.candidate)
    }

    /// Whether all traffic goes to `revision`.
    pub fn serves_only(&self, revision: &str) -> bool {
        self.primary == revision && self.candidate_serves_all()
    }
}

/// A candidate's rollout, as ripcord saw it: when it first served traffic (where its evidence starts) and when
/// it first served all of it (where its bake starts), ms since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub revision: String,
    pub first_traffic_ms: i64,
    pub all_traffic_ms: Option<i64>,
}

/// A person's say over a candidate's rollback (`mode = "approve"`), as recorded on the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The candidate whose rollback it is about.
    pub candidate: String,
    pub state: ApprovalState,
    /// When the rollback became pending, or was rejected (ms since the epoch).
    pub since_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalState {
    /// A rollback to `target` waits for an approver.
    Pending { target: String },
    /// Rejected (by a person, or dropped at its timeout): the candidate's rollbacks are not acted on.
    Rejected,
}

/// Warm capacity ripcord added to a revision (provisioned concurrency, min instances).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub revision: String,
    pub release: Release,
}

/// When ripcord releases capacity it added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// After a rollback: at this time (ms since the epoch), once the traffic has settled.
    At(i64),
    /// Standby during a bake: when the revision is no longer the rollback target (the candidate was promoted).
    WhenPromoted,
}

/// Metrics of one guard's deployment over the evaluation windows.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardMetrics {
    pub baseline: Option<Revision>,
    pub candidate: Revision,
    /// Peak concurrent executions of the whole deployment in the last window (prewarm sizing).
    pub peak_concurrency: Option<f64>,
    /// Requests per period of the whole deployment, every revision (the alias's, the service's), oldest first:
    /// what tells a cached view of the deployment from one that changed (`deployment_cache.rs`).
    pub total_requests: Vec<(i64, f64)>,
}

/// One guard's metrics, or why they could not be read.
pub type MetricsAnswer = Result<GuardMetrics, ProviderError>;

/// A guard whose policies asked for slow-request counts (contract 0.3.0's `latency-thresholds`): per revision and
/// period, the requests slower than each threshold, answered as `slow_requests_<T>ms` counters.
#[derive(Debug, Clone, Copy)]
pub struct SlowRequest<'a> {
    pub guard: &'a Guard,
    pub deployment: &'a Deployment,
    /// Whole milliseconds, sorted, without repeats.
    pub thresholds: &'a [u32],
}

/// The same failure as the answer for every request of a call that failed as a whole.
pub fn all_failed<T>(requests: &[T], error: &ProviderError) -> Vec<MetricsAnswer> {
    requests.iter().map(|_| Err(error.clone())).collect()
}

/// Warm capacity to add: to which revision, how much, whether to wait until it is ready (bounded by the guard's
/// `prewarm_timeout`), and when it is to be released.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrewarmRequest<'a> {
    pub revision: &'a str,
    pub capacity: u32,
    pub wait: bool,
    pub release: Release,
}

/// What a prewarm did (the audit record's `prewarm`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prewarmed {
    /// `provisioned-concurrency`, `tag+warm-up`, …
    pub method: String,
    pub revision: String,
    /// Capacity asked for (environments or instances).
    pub requested: u32,
    /// Whether it was ready before the pin.
    pub ready: bool,
    /// Whether ripcord created it (and must release it later).
    pub created: bool,
    pub waited_ms: i64,
    pub note: Option<String>,
}

/// A pin: all traffic to `revision`, with the optimistic-concurrency `token` read; `from` is the revision rolled
/// back from; `marks` are the markers to record once it serves (the cooldown, capacity to release).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PinRequest<'a> {
    pub revision: &'a str,
    pub token: &'a str,
    pub from: &'a str,
    pub marks: &'a [Mark],
}

/// What a pin attempt did.
#[derive(Debug, Clone, PartialEq)]
pub enum Pin {
    /// Traffic now goes 100% to the target. `marked`: the request's markers were written by the same change (Cloud
    /// Run keeps them on the service it updates; Lambda's tags need calls of their own, [`Changer::mark`]).
    /// `seen`: the deployment as read back once the change was reconciled, which verifies the pin without
    /// another read.
    Pinned { token: String, marked: bool, seen: Option<Box<Deployment>> },
    /// The token was stale: someone changed the routing since it was read.
    Conflict,
}

/// A marker ripcord keeps on the platform resource, so scheduled runs need no local state.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    KnownGood(String),
    RolledBackAt(i64),
    /// Forgets the cooldown: a pin that carried its markers failed, and there was no rollback before.
    ClearRolledBackAt,
    /// Capacity ripcord added, and when to release it.
    Capacity(Capacity),
    ClearCapacity,
    /// The candidate's rollout (first traffic, all traffic).
    Rollout(Rollout),
    /// Forgets the rollout: after a rollback, the revision's next rollout starts afresh.
    ClearRollout,
    /// A pending or rejected rollback of the candidate.
    Approval(Approval),
    ClearApproval,
}

impl Mark {
    /// A record of what ripcord saw (a rollout, a known good) rather than part of a change: not paced, so the
    /// first cycle over a freshly deployed fleet, which records ten thousand rollouts, is not held back a second
    /// per ten guards; a throttled one is tried again by the SDK, else by the next cycle.
    pub fn is_bookkeeping(&self) -> bool {
        matches!(self, Self::Rollout(_) | Self::KnownGood(_))
    }
}

/// Reading a deployment: its routing and markers, its metrics (batched across the guards of one client), its
/// revisions.
#[async_trait::async_trait]
pub trait Reader: Send + Sync + std::fmt::Debug {
    async fn deployment(&self, guard: &Guard) -> Result<Deployment, ProviderError>;

    /// The deployment of `guard` read again after its metrics said its routing changed since `view` was read, or
    /// by a rollback after its prewarm: by default read whole; a provider whose markers live apart from the routing
    /// (Lambda's tags) reads only the routing and keeps the view's markers, which only ripcord writes (and every
    /// change of it forgets the view); one whose prewarm's own change answered the resource (Cloud Run's tag)
    /// answers a rollback from that — the pin's token catches anything changed since.
    async fn rerouted(&self, guard: &Guard, view: &Deployment) -> Result<Deployment, ProviderError> {
        let _ = view;
        self.deployment(guard).await
    }

    /// Whether [`Reader::deployments`] reads many deployments per call (Cloud Run's ListServices): the cycle then
    /// reads its guards' deployments together, every cycle, instead of one by one from a cached view.
    fn reads_in_bulk(&self) -> bool {
        false
    }

    /// The deployments of several guards of this client, one answer per guard, in order, in as few calls as the
    /// API allows. By default one [`Reader::deployment`] after another.
    async fn deployments(&self, guards: &[&Guard]) -> Vec<Result<Deployment, ProviderError>> {
        let mut out = Vec::with_capacity(guards.len());
        for guard in guards {
            out.push(self.deployment(guard).await);
        }
        out
    }

    /// Metrics of several guards, fetched in as few calls as the API allows; one answer per request, in order. A
    /// call that fails fails only the guards it covered.
    async fn metrics(&self, requests: &[(&Guard, &Deployment)], windows: &[Window]) -> Vec<MetricsAnswer>;

    /// The counts of requests slower than each guard's thresholds, per revision (baseline and candidate) and
    /// period, batched as [`Reader::metrics`]: answers hold only `slow_requests_<T>ms` series.
    async fn slow_requests(&self, requests: &[SlowRequest<'_>], windows: &[Window]) -> Vec<MetricsAnswer>;

    /// The revisions the deployment has (published versions, ready revisions).
    async fn revisions(&self, guard: &Guard) -> Result<Vec<String>, ProviderError>;

    /// How much each guard's error ratio rose lately (the last [`ERROR_RISE_RECENT_MS`] against the hour before,
    /// in ratio points; 0 when it did not rise or too few errors say so), from the whole deployment's metrics —
    /// which need no read of the deployment — in as few calls as the API allows: a fresh process reads the
    /// deployments whose errors rose first. Best effort: an answer it cannot get is 0. By default all 0 (a
    /// provider that reads its deployments in bulk reads them all every cycle).
    async fn error_rises(&self, guards: &[&Guard], now: i64) -> Vec<f64> {
        let _ = now;
        vec![0.0; guards.len()]
    }
}

/// The recent span [`Reader::error_rises`] compares with the hour before it.
pub const ERROR_RISE_RECENT_MS: i64 = 5 * 60_000;
/// Fewest errors in the recent span for [`Reader::error_rises`] to call a rise a rise.
pub const ERROR_RISE_MIN_ERRORS: f64 = 3.0;

/// The rise of an error ratio from `before` (errors, requests) to `recent`: 0 below [`ERROR_RISE_MIN_ERRORS`]
/// recent errors or when it fell.
pub fn error_rise(before: (f64, f64), recent: (f64, f64)) -> f64 {
    let ratio = |(errors, requests): (f64, f64)| if requests > 0.0 { errors / requests } else { 0.0 };
    if recent.0 < ERROR_RISE_MIN_ERRORS {
        return 0.0;
    }
    (ratio(recent) - ratio(before)).max(0.0)
}

/// Changing a deployment. Each change is idempotent where the platform allows and says what it did.
#[async_trait::async_trait]
pub trait Changer: Send + Sync + std::fmt::Debug {
    /// Adds warm capacity. Capacity it creates is first recorded on the resource with `request.release` (a
    /// write-ahead marker), so it is released even if this process dies before it can say when.
    async fn prewarm(
        &self,
        guard: &Guard,
        request: PrewarmRequest<'_>,
        clock: &Clock,
    ) -> Result<Prewarmed, ProviderError>;

    /// Sends all traffic to `request.revision` with the optimistic-concurrency token read, and records the
    /// request's markers in the same change where the platform allows. Returns once the change serves (or the
    /// platform's bound ran out).
    async fn pin(&self, guard: &Guard, request: PinRequest<'_>, clock: &Clock) -> Result<Pin, ProviderError>;

    /// Records markers on the resource: last known good, rollback time, capacity to release.
    async fn mark(&self, guard: &Guard, marks: &[Mark]) -> Result<(), ProviderError>;

    /// Releases capacity a prewarm added.
    async fn release(&self, guard: &Guard, revision: &str) -> Result<(), ProviderError>;
}

/// A provider: both interfaces.
pub trait Provider: Reader + Changer {}

impl<T: Reader + Changer> Provider for T {}

/// The provider client for `guard` under `config` (one per region or project: see `Guard::batch_key`).
pub async fn connect(config: &Config, guard: &Guard) -> Result<Arc<dyn Provider>, ProviderError> {
    match &guard.target {
        Target::Lambda { region, .. } => {
            let region = region.clone().or_else(|| config.aws.region.clone());
            Ok(Arc::new(lambda::Lambda::connect(&config.aws, region).await))
        }
        Target::CloudRun { .. } => Ok(Arc::new(cloud_run::CloudRun::connect(&config.gcp).await?)),
    }
}

#[cfg(test)]
mod tests {
    use super::error_rise;

    #[test]
    fn an_error_rise_is_the_recent_ratio_above_the_one_before_with_enough_errors() {
        // A 10% canary failing 30% on a deployment failing 0.1%: 3.1% of requests fail lately.
        let rise = error_rise((6.0, 6_000.0), (186.0, 6_000.0));
        assert!((rise - 0.03).abs() < 1e-12, "{rise}");
        // No history before (a deployment minutes old): the recent ratio itself.
        assert!((error_rise((0.0, 0.0), (30.0, 1_000.0)) - 0.03).abs() < 1e-12);
        // Fewer errors than a rise needs, a ratio that fell, no requests: none.
        assert_eq!(error_rise((0.0, 1_000.0), (2.0, 10.0)), 0.0);
        assert_eq!(error_rise((50.0, 1_000.0), (10.0, 1_000.0)), 0.0);
        assert_eq!(error_rise((0.0, 0.0), (5.0, 0.0)), 0.0);
    }
}

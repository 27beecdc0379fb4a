//! Providers: the only code that talks to a cloud. Each platform answers the same questions — what does the
//! deployment look like, what are its metrics, warm this revision, pin that one, is it pinned — through the
//! official SDK, against the real cloud, the simulator or moto, chosen by configuration alone.

pub mod aws;
pub mod codedeploy;
pub mod gcp;

use crate::config::{Config, Guard, Target};
use crate::evaluation::{Revision, Window};

/// A provider call failed (after the SDK's own retries).
#[derive(Debug, thiserror::Error)]
#[error("{operation} on {resource}: {message}")]
pub struct PlatformError {
    pub operation: &'static str,
    pub resource: String,
    pub message: String,
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

impl Deployment {
    /// Whether the candidate serves all traffic (no split).
    pub fn candidate_serves_all(&self) -> bool {
        self.candidate == self.primary
    }

    /// The rollback target, when there is one different from the candidate.
    pub fn rollback_target(&self) -> Option<&str> {
        self.baseline.as_deref().filter(|b| *b != self.candidate)
    }
}

/// Metrics of one guard's deployment over the evaluation windows.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardMetrics {
    pub baseline: Option<Revision>,
    pub candidate: Revision,
    /// Peak concurrent executions of the whole deployment in the last window (prewarm sizing).
    pub peak_concurrency: Option<f64>,
}

/// What a prewarm did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prewarm {
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

/// What a pin attempt did.
#[derive(Debug, Clone, PartialEq)]
pub enum Pin {
    /// Traffic now goes 100% to the target.
    Pinned { token: String },
    /// The token was stale: someone changed the routing since it was read.
    Conflict,
}

/// A configured platform client.
#[derive(Debug, Clone)]
pub enum Platform {
    Aws(aws::Lambda),
    Gcp(gcp::CloudRun),
}

impl Platform {
    /// The client for `guard` under `config`.
    pub async fn for_guard(config: &Config, guard: &Guard) -> Result<Self, PlatformError> {
        match &guard.target {
            Target::Lambda { region, .. } => {
                let region = region.clone().or_else(|| config.aws.region.clone());
                Ok(Self::Aws(aws::Lambda::connect(&config.aws, region).await))
            }
            Target::CloudRun { .. } => Ok(Self::Gcp(gcp::CloudRun::connect(&config.gcp).await?)),
        }
    }

    pub async fn deployment(&self, guard: &Guard) -> Result<Deployment, PlatformError> {
        match self {
            Self::Aws(lambda) => lambda.deployment(guard).await,
            Self::Gcp(run) => run.deployment(guard).await,
        }
    }

    /// Metrics of several guards on this platform, fetched in as few calls as the API allows.
    pub async fn metrics(
        &self,
        requests: &[(&Guard, &Deployment)],
        windows: &[Window],
    ) -> Result<Vec<GuardMetrics>, PlatformError> {
        match self {
            Self::Aws(lambda) => lambda.metrics(requests, windows).await,
            Self::Gcp(run) => run.metrics(requests, windows).await,
        }
    }

    /// Adds warm capacity to `revision`; with `wait`, waits (bounded by the guard's `prewarm_timeout`) until it
    /// is ready. Capacity it creates is first recorded on the resource with `release` (a write-ahead marker), so
    /// it is released even if this process dies before it can say when.
    pub async fn prewarm(
        &self,
        guard: &Guard,
        revision: &str,
        capacity: u32,
        wait: bool,
        release: Release,
        clock: &crate::clock::Clock,
    ) -> Result<Prewarm, PlatformError> {
        match self {
            Self::Aws(lambda) => lambda.prewarm(guard, revision, capacity, wait, release, clock).await,
            Self::Gcp(run) => run.prewarm(guard, revision, capacity, wait, release, clock).await,
        }
    }

    /// The revisions the deployment has (published versions, ready revisions).
    pub async fn revisions(&self, guard: &Guard) -> Result<Vec<String>, PlatformError> {
        match self {
            Self::Aws(lambda) => lambda.versions(guard).await,
            Self::Gcp(run) => run.versions(guard).await,
        }
    }

    /// Sends all traffic to `revision`, with the optimistic-concurrency `token` read; `from` is the revision
    /// rolled back from. Returns once the change serves (or the platform's bound ran out).
    pub async fn pin(
        &self,
        guard: &Guard,
        revision: &str,
        token: &str,
        from: &str,
        clock: &crate::clock::Clock,
    ) -> Result<Pin, PlatformError> {
        match self {
            Self::Aws(lambda) => lambda.pin(guard, revision, token).await,
            Self::Gcp(run) => run.pin(guard, revision, token, from, clock).await,
        }
    }

    /// Records markers on the resource: last known good, rollback time, capacity to release.
    pub async fn mark(&self, guard: &Guard, marks: &[Mark]) -> Result<(), PlatformError> {
        match self {
            Self::Aws(lambda) => lambda.mark(guard, marks).await,
            Self::Gcp(run) => run.mark(guard, marks).await,
        }
    }

    /// Releases capacity a prewarm added.
    pub async fn release(&self, guard: &Guard, revision: &str) -> Result<(), PlatformError> {
        match self {
            Self::Aws(lambda) => lambda.release(guard, revision).await,
            Self::Gcp(run) => run.release(guard, revision).await,
        }
    }
}

/// A marker ripcord keeps on the platform resource, so scheduled runs need no local state.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    KnownGood(String),
    RolledBackAt(i64),
    /// Capacity ripcord added, and when to release it.
    Capacity(Capacity),
    ClearCapacity,
}

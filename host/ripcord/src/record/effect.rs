//! What a guard's cycle did — its [`Effect`] on the deployment — and the [`GuardResult`] the commands print, the
//! JSON output carries and function mode answers with.

use crate::model::evaluation::Evaluation;
use crate::model::verdict::Verdict;
use crate::provider::Prewarmed;
use crate::record::audit::{self, DeploymentRecord};

/// How a guard's cycle ended (the `outcome` of `--json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Effect {
    /// Nothing to do (healthy, holding, inconclusive, or an action suppressed).
    NoAction,
    RolledBack {
        to: String,
        prewarm: Option<Prewarmed>,
        /// From the verdict to the pin, in the clock's time (virtual under the simulator).
        verdict_to_pin_ms: i64,
        verdict_to_pin_real_ms: u64,
    },
    /// The target already served all traffic when ripcord looked again: nothing to change.
    AlreadyPinned {
        to: String,
    },
    RecordedKnownGood {
        revision: String,
    },
    /// The deployment changed under ripcord; the verdict was about something else.
    Aborted {
        reason: String,
    },
    Failed {
        error: String,
    },
    /// A rollback verdict of a guard in `mode = "approve"`: the rollback to `to` waits for an approver until
    /// `until` (then `on_approval_timeout` decides).
    AwaitingApproval {
        to: String,
        until: String,
    },
    /// Not read this cycle: the platforms' quotas were used up (or the platform throttled), so the guard is read
    /// first next cycle. Not a failure: nothing is wrong with the guard or its deployment.
    Deferred {
        /// What could not be read (the guard's `reason` says so too, with how old its newest judgement is).
        cause: String,
        /// How long ago this process last judged the guard (none: not yet).
        #[serde(skip_serializing_if = "Option::is_none")]
        last_judged_ms: Option<i64>,
    },
}

impl Effect {
    /// The `outcome` of the change's `result` record (`None`: no change was made).
    pub fn audit_outcome(&self) -> Option<audit::Outcome> {
        match self {
            Self::NoAction | Self::Deferred { .. } | Self::AwaitingApproval { .. } => None,
            Self::RolledBack { .. } => Some(audit::Outcome::Pinned),
            Self::AlreadyPinned { .. } => Some(audit::Outcome::AlreadyPinned),
            Self::RecordedKnownGood { .. } => Some(audit::Outcome::Recorded),
            Self::Aborted { .. } => Some(audit::Outcome::Aborted),
            Self::Failed { .. } => Some(audit::Outcome::Failed),
        }
    }

    /// Why the change did not happen, if it did not.
    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Aborted { reason } => Some(reason),
            Self::Failed { error } => Some(error),
            _ => None,
        }
    }

    /// Whether the target serves all traffic afterwards (ripcord pinned it, or found it pinned).
    pub fn pinned(&self) -> bool {
        matches!(self, Self::RolledBack { .. } | Self::AlreadyPinned { .. })
    }
}

/// What happened to one guard in a cycle.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GuardResult {
    pub guard: String,
    /// The time of the cycle that judged the guard (RFC 3339, the clock's: virtual with the simulator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentRecord>,
    pub verdict: Verdict,
    pub reason: String,
    /// What the policies found besides the verdict (`shared-degradation`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<crate::model::verdict::Finding>,
    #[serde(flatten)]
    pub effect: Effect,
    /// Each policy's verdict, reason and checks: the numbers behind the verdict.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<crate::record::audit::PolicyRecord>,
    #[serde(skip)]
    pub evaluation: Option<Evaluation>,
}

impl GuardResult {
    /// A result of `guard` with only its verdict and effect: no reason, policies or evaluation yet.
    pub fn bare(guard: &str, verdict: Verdict, effect: Effect) -> Self {
        Self {
            guard: guard.to_string(),
            at: None,
            deployment: None,
            verdict,
            reason: String::new(),
            findings: Vec::new(),
            effect,
            policies: Vec::new(),
            evaluation: None,
        }
    }

    /// A guard that could not be judged (or does not exist): `inconclusive`, the error as reason.
    pub fn failed(guard: &str, error: String) -> Self {
        let reason = error.clone();
        Self { reason, ..Self::bare(guard, Verdict::Inconclusive, Effect::Failed { error }) }
    }
}

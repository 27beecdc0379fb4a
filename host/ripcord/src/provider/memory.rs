//! An in-memory provider for the cycle's unit tests: a deployment whose routing, markers and warm capacity live
//! in a struct, optimistic concurrency on a token, and a script of what each pin attempt does (applied and
//! answered, a conflict, an error before or after the change applied, someone else's change). The end-to-end
//! tests use the simulator instead; this is for testing the cycle as a unit, each path in a few lines.

use super::{
    Capacity, Changer, Deployment, GuardMetrics, Mark, Pin, PinRequest, PrewarmRequest, Prewarmed, ProviderError,
    Reader,
};
use crate::config::Guard;
use crate::model::clock::Clock;
use crate::model::evaluation::Window;
use std::collections::VecDeque;
use std::sync::Mutex;

/// What one pin attempt does.
#[derive(Debug, Clone, PartialEq)]
pub enum PinAttempt {
    /// The pin applies and is answered.
    Apply,
    /// The token is stale: nothing changes.
    Conflict,
    /// The platform refuses (a 5xx before anything changed).
    Fail,
    /// The pin applies, but its answer is lost (a timeout after the change).
    ApplyButLoseAnswer,
    /// Someone else changes the routing to this deployment first; the attempt then meets a stale token.
    Interfere(Box<Deployment>),
}

/// What a prewarm does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrewarmAnswer {
    Ready,
    Fail,
    /// Never answers (a provisioned concurrency that never becomes READY, a stalled API).
    Hang,
}

/// The platform's state and the script of its answers.
#[derive(Debug)]
pub struct State {
    pub deployment: Deployment,
    pub revisions: Vec<String>,
    pub metrics: Option<GuardMetrics>,
    /// What a query for the known good alone (its history) answers; `metrics` when unset.
    pub history: Option<GuardMetrics>,
    pub pins: VecDeque<PinAttempt>,
    pub prewarm: PrewarmAnswer,
    /// Calls made, in order (`deployment`, `pin 1`, `prewarm 1`, `mark`, …).
    pub calls: Vec<String>,
    pub marks: Vec<Mark>,
    /// Tokens handed out so far (each change makes a new one).
    tokens: u32,
}

/// The in-memory provider.
#[derive(Debug)]
pub struct InMemory(pub Mutex<State>);

impl InMemory {
    /// A deployment, pinned as the script says (each pin applies and is answered unless scripted otherwise).
    pub fn new(deployment: Deployment, revisions: &[&str]) -> Self {
        Self(Mutex::new(State {
            deployment,
            revisions: revisions.iter().map(|r| r.to_string()).collect(),
            metrics: None,
            history: None,
            pins: VecDeque::new(),
            prewarm: PrewarmAnswer::Ready,
            calls: Vec::new(),
            marks: Vec::new(),
            tokens: 0,
        }))
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn new_token(&mut self) -> String {
        self.tokens += 1;
        format!("token-{}", self.tokens)
    }

    fn apply_pin(&mut self, revision: &str) -> String {
        let token = self.new_token();
        let d = &mut self.deployment;
        d.primary = revision.to_string();
        d.candidate = revision.to_string();
        d.candidate_share = 1.0;
        d.baseline = d.known_good.clone();
        d.token = token.clone();
        token
    }
}

fn failure(operation: &'static str, message: &str) -> ProviderError {
    ProviderError { operation, resource: "memory".into(), message: message.into(), ..Default::default() }
}

#[async_trait::async_trait]
impl Reader for InMemory {
    async fn deployment(&self, _: &Guard) -> Result<Deployment, ProviderError> {
        let mut state = self.state();
        state.calls.push("deployment".into());
        Ok(state.deployment.clone())
    }

    async fn metrics(&self, requests: &[(&Guard, &Deployment)], _: &[Window]) -> Vec<super::MetricsAnswer> {
        let mut state = self.state();
        state.calls.push("metrics".into());
        let Some(metrics) = state.metrics.clone() else {
            return super::all_failed(requests, &failure("metrics", "no metrics, on purpose"));
        };
        let answer = |d: &Deployment| match &state.history {
            Some(history) if d.known_good.as_deref() == Some(d.candidate.as_str()) => history.clone(),
            _ => metrics.clone(),
        };
        requests.iter().map(|(_, d)| Ok(answer(d))).collect()
    }

    /// No slow-request counts: the in-memory provider's script has none, so every answer is empty series (the
    /// policies then judge without them).
    async fn slow_requests(&self, requests: &[super::SlowRequest<'_>], _: &[Window]) -> Vec<super::MetricsAnswer> {
        self.state().calls.push("slow_requests".into());
        let empty =
            |id: &str| crate::model::evaluation::Revision { id: id.into(), traffic_share: 0.0, metrics: Vec::new() };
        requests
            .iter()
            .map(|r| {
                let d = r.deployment;
                Ok(GuardMetrics {
                    baseline: d.baseline.as_deref().map(empty),
                    candidate: empty(&d.candidate),
                    peak_concurrency: None,
                    total_requests: Vec::new(),
                })
            })
            .collect()
    }

    async fn revisions(&self, _: &Guard) -> Result<Vec<String>, ProviderError> {
        Ok(self.state().revisions.clone())
    }
}

#[async_trait::async_trait]
impl Changer for InMemory {
    async fn prewarm(&self, _: &Guard, request: PrewarmRequest<'_>, _: &Clock) -> Result<Prewarmed, ProviderError> {
        let answer = {
            let mut state = self.state();
            state.calls.push(format!("prewarm {}", request.revision));
            state.prewarm
        };
        match answer {
            PrewarmAnswer::Ready => {
                let capacity = Capacity { revision: request.revision.to_string(), release: request.release };
                self.state().deployment.capacity = Some(capacity);
                Ok(Prewarmed {
                    method: "memory".into(),
                    revision: request.revision.to_string(),
                    requested: request.capacity,
                    ready: true,
                    created: true,
                    waited_ms: 30_000,
                    note: None,
                })
            }
            PrewarmAnswer::Fail => Err(failure("prewarm", "capacity refused, on purpose")),
            PrewarmAnswer::Hang => std::future::pending().await,
        }
    }

    async fn pin(&self, _: &Guard, request: PinRequest<'_>, _: &Clock) -> Result<Pin, ProviderError> {
        let PinRequest { revision, token, .. } = request;
        let mut state = self.state();
        state.calls.push(format!("pin {revision}"));
        match state.pins.pop_front().unwrap_or(PinAttempt::Apply) {
            PinAttempt::Interfere(other) => {
                state.deployment = *other;
                state.deployment.token = state.new_token();
                Ok(Pin::Conflict)
            }
            _ if token != state.deployment.token => Ok(Pin::Conflict),
            PinAttempt::Apply => Ok(Pin::Pinned { token: state.apply_pin(revision), marked: false, seen: None }),
            PinAttempt::Conflict => {
                state.deployment.token = state.new_token();
                Ok(Pin::Conflict)
            }
            PinAttempt::Fail => Err(failure("pin", "service unavailable, on purpose")),
            PinAttempt::ApplyButLoseAnswer => {
                state.apply_pin(revision);
                Err(failure("pin", "no answer in time, on purpose"))
            }
        }
    }

    async fn mark(&self, _: &Guard, marks: &[Mark]) -> Result<(), ProviderError> {
        let mut state = self.state();
        state.calls.push("mark".into());
        state.deployment = state.deployment.marked(marks);
        state.marks.extend(marks.iter().cloned());
        Ok(())
    }

    async fn release(&self, _: &Guard, revision: &str) -> Result<(), ProviderError> {
        self.state().calls.push(format!("release {revision}"));
        Ok(())
    }
}

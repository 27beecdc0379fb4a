//! The rollback, as a state machine whose states and transitions are all in [`Rollback::run`]:
//!
//! ```text
//! Intent ──► Prewarm ──► Reread ──► Pin ──────────────────────► Verify ──► Markers ──► Result
//!   │ (no durable intent:               │ conflict, error, lost answer    ▲          ▲
//!   │  nothing is changed)              ▼                                 │          │
//!   └──► (failed)                     Resolve ── re-read: pinned (answer lost) ┘          │
//!                                      │  still the judged deployment ──► Pin (next attempt)
//!                                      └─ pinned by someone else, changed (abort), failed ─┘
//! ```
//!
//! Every change is preceded by a durable `intent` and followed by a `result`; a prewarm never blocks the pin (it
//! is bounded by `prewarm_timeout`, its waits for quota turns included, and in function mode by the invocation's
//! deadline); an error is never taken for a "no" — the platform is re-read and decides; a retry happens only while
//! the deployment is still the one the verdict was about. The pin's steps take the platform's next quota turns,
//! ahead of the prewarms of other rollbacks (`provider/quota.rs`); where the platform keeps markers on the
//! resource the pin changes (Cloud Run), they are written by the pin itself.

use crate::act::context::GuardContext;
use crate::act::recovery::CHANGE_MARGIN_MS;
use crate::config::PrewarmMode;
use crate::provider::{Capacity, Deployment, Mark, Pin, PinRequest, PrewarmRequest, ProviderError, Release};
use crate::record::audit::{Kind, Record};
use crate::record::effect::Effect;
use std::time::{Duration, Instant};

/// Attempts at pinning when the routing keeps changing under us or the platform keeps failing.
pub const MAX_PIN_ATTEMPTS: usize = 3;
/// Real time between pin attempts after a failure (times the attempt), for transient errors.
const PIN_RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// Pins refused for the platform's rate limit are tried again (they were not carried out), this many times, after
/// a backoff that doubles from [`THROTTLE_BACKOFF`] up to [`THROTTLE_BACKOFF_MAX`] (about a minute in all).
const MAX_THROTTLED_PINS: u32 = 10;
const THROTTLE_BACKOFF: Duration = Duration::from_millis(250);
const THROTTLE_BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Where the rollback is.
#[derive(Debug)]
enum State {
    /// Write the intent; nothing is changed without it.
    Intent,
    /// Warm the target (bounded; a failure is noted, never blocking).
    Prewarm,
    /// Read a fresh token after the prewarm (it may change the routing resource), if the deployment is the same.
    Reread,
    /// Pin the target with the token read (attempt N of [`MAX_PIN_ATTEMPTS`]).
    Pin { attempt: usize },
    /// After a conflict or an error: re-read and decide what the pin attempt did.
    Resolve { attempt: usize },
    /// The pin reports success (or the platform shows it): check that only the target serves — on the
    /// deployment the pin read back once its change was reconciled, if it did, else on a read.
    Verify { pinned_at: i64, seen: Option<Deployment> },
    /// Record the cooldown and the capacity to release.
    Markers(Effect),
    /// Write the result.
    Result(Effect),
}

/// One rollback of a guard to `target`.
#[derive(Debug)]
pub(crate) struct Rollback<'c, 'a> {
    cycle: &'c GuardContext<'a>,
    target: String,
    capacity: u32,
    /// The intent, then the result.
    record: Record,
    /// When the verdict was given: in the clock's time (the cycle's), and in real time.
    verdict_at: i64,
    decided: Instant,
    /// The deployment as last read.
    deployment: Deployment,
    /// An attempt's error: the pin may have taken effect without ripcord hearing it.
    unheard: Option<String>,
    /// Pins the platform refused for its rate limit so far.
    throttled: u32,
    /// Whether the pin wrote the markers itself.
    marked: bool,
}

impl<'c, 'a> Rollback<'c, 'a> {
    pub(crate) fn new(
        cycle: &'c GuardContext<'a>,
        target: &str,
        capacity: u32,
        record: Record,
        decided: Instant,
    ) -> Self {
        Self {
            cycle,
            target: target.to_string(),
            capacity,
            verdict_at: cycle.cycle.now,
            record,
            decided,
            deployment: cycle.deployment.clone(),
            unheard: None,
            throttled: 0,
            marked: false,
        }
    }

    /// Runs the rollback to its end, as what moves traffic back: its calls take the next quota turns and are
    /// never deferred — except its prewarm's, which wait behind other rollbacks' pins until `prewarm_timeout` at
    /// most (`provider/quota.rs`).
    pub(crate) async fn run(self) -> Effect {
        crate::provider::quota::as_pin(self.steps()).await
    }

    async fn steps(mut self) -> Effect {
        let mut state = State::Intent;
        loop {
            state = match state {
                State::Intent => {
                    self.record.record = Kind::Intent;
                    match self.cycle.services.audit.write(&self.record).await {
                        Err(error) => return Effect::Failed { error: error.to_string() },
                        Ok(()) if self.cycle.guard.prewarm == PrewarmMode::Off => State::Pin { attempt: 1 },
                        Ok(()) => State::Prewarm,
                    }
                }
                State::Prewarm => {
                    self.prewarm().await;
                    State::Reread
                }
                State::Reread => {
                    // The routing and its token; the markers are the judged deployment's (only ripcord writes them).
                    if let Ok(fresh) = self.cycle.provider.rerouted(self.cycle.guard, &self.deployment).await
                        && self.is_judged(&fresh)
                    {
                        self.deployment = fresh;
                    }
                    State::Pin { attempt: 1 }
                }
                State::Pin { attempt } => self.pin(attempt).await,
                State::Resolve { attempt } => self.resolve(attempt).await,
                State::Verify { pinned_at, seen } => State::Markers(self.verify(pinned_at, seen).await),
                State::Markers(effect) => {
                    self.mark(&effect).await;
                    State::Result(effect)
                }
                State::Result(effect) => return self.cycle.close(&mut self.record, effect).await,
            }
        }
    }

    /// Whether `fresh` is still the deployment the verdict was about (same primary and candidate).
    fn is_judged(&self, fresh: &Deployment) -> bool {
        let judged = &self.cycle.deployment;
        (fresh.primary.as_str(), fresh.candidate.as_str()) == (judged.primary.as_str(), judged.candidate.as_str())
    }

    async fn now(&self) -> i64 {
        self.cycle.services.clock.now_ms().await.unwrap_or(self.verdict_at)
    }

    /// Warms the target, bounded by the guard's `prewarm_timeout` and, in function mode, by the invocation's
    /// deadline: a prewarm still waiting then is abandoned and the target pinned cold — a cold pin beats a
    /// process killed before the pin. Should this process die mid-change, capacity it added is released once the
    /// change could no longer be running (the write-ahead marker's due time).
    async fn prewarm(&mut self) {
        let guard = self.cycle.guard;
        let release_by = self.verdict_at + (guard.prewarm_timeout + guard.settle).as_millis() as i64 + CHANGE_MARGIN_MS;
        let request = PrewarmRequest {
            revision: &self.target,
            capacity: self.capacity,
            wait: true,
            release: Release::At(release_by),
        };
        // Its calls wait for quota turns behind the pins of other rollbacks, and only until the prewarm's bound:
        // then this target is pinned without it, rather than after a fleet's worth of prewarms.
        let turns_until = Instant::now() + guard.prewarm_timeout;
        let prewarm = crate::provider::quota::as_change(
            Some(turns_until),
            self.cycle.provider.prewarm(guard, request, &self.cycle.services.clock),
        );
        let prewarmed = match self.cycle.services.deadline {
            None => prewarm.await,
            Some(by) => tokio::time::timeout_at(by.into(), prewarm).await.unwrap_or_else(|_| {
                Err(ProviderError {
                    operation: "prewarm",
                    resource: self.target.clone(),
                    message: "abandoned to pin before the function's deadline".into(),
                    ..Default::default()
                })
            }),
        };
        match prewarmed {
            Ok(prewarmed) => {
                self.record.timings.prewarm_ms = Some(prewarmed.waited_ms);
                self.record.prewarm = Some(prewarmed);
            }
            Err(error) => {
                tracing::warn!(guard = %guard.name, %error, "prewarm failed; pinning without it");
                self.record.append_error(format!("prewarm failed: {error}"));
            }
        }
    }

    async fn pin(&mut self, attempt: usize) -> State {
        let cycle = self.cycle;
        let marks = self.markers(self.now().await, true);
        let request = PinRequest {
            revision: &self.target,
            token: &self.deployment.token,
            from: &cycle.deployment.candidate,
            marks: &marks,
        };
        match cycle.provider.pin(cycle.guard, request, &cycle.services.clock).await {
            Ok(Pin::Pinned { marked, seen, .. }) => {
                self.marked = marked;
                State::Verify { pinned_at: self.now().await, seen: seen.map(|s| *s) }
            }
            Ok(Pin::Conflict) => {
                tracing::warn!(guard = %cycle.guard.name, attempt, "routing changed during the rollback; re-reading");
                State::Resolve { attempt }
            }
            Err(error) if error.throttled && self.throttled < MAX_THROTTLED_PINS => {
                self.throttled += 1;
                let backoff = throttle_backoff(self.throttled, &cycle.guard.name);
                tracing::info!(guard = %cycle.guard.name, throttled = self.throttled, ?backoff, "the pin was throttled; trying again");
                tokio::time::sleep(backoff).await;
                State::Pin { attempt }
            }
            Err(error) => {
                tracing::warn!(guard = %cycle.guard.name, attempt, %error, "the pin failed or its answer was lost; re-reading");
                self.unheard = Some(error.to_string());
                State::Resolve { attempt }
            }
        }
    }

    /// Never retries blindly: re-reads, and acts only if the verdict still applies. (A throttled pin is not
    /// resolved: the platform refused it before doing anything.)
    async fn resolve(&mut self, attempt: usize) -> State {
        let fresh = match self.cycle.provider.deployment(self.cycle.guard).await {
            Ok(fresh) => fresh,
            Err(error) => {
                let error = match &self.unheard {
                    Some(pin) => format!("{pin}; re-reading failed too: {error}"),
                    None => error.to_string(),
                };
                return State::Markers(Effect::Failed { error });
            }
        };
        if fresh.serves_only(&self.target) {
            return match self.unheard.clone() {
                Some(error) => {
                    let note = format!("a pin's answer was lost ({error}); re-read: it serves {}", self.target);
                    self.record.append_error(note);
                    State::Verify { pinned_at: self.now().await, seen: None }
                }
                None => State::Markers(Effect::AlreadyPinned { to: self.target.clone() }),
            };
        }
        let judged = &self.cycle.deployment;
        if fresh.candidate == judged.candidate && fresh.rollback_target() == Some(self.target.as_str()) {
            self.deployment = fresh;
            if attempt >= MAX_PIN_ATTEMPTS {
                let error = match &self.unheard {
                    Some(error) => format!("gave up after {MAX_PIN_ATTEMPTS} attempts; the last: {error}"),
                    None => format!("the routing kept changing; gave up after {MAX_PIN_ATTEMPTS} attempts"),
                };
                return State::Markers(Effect::Failed { error });
            }
            if self.unheard.is_some() {
                tokio::time::sleep(PIN_RETRY_BACKOFF * attempt as u32).await;
            }
            return State::Pin { attempt: attempt + 1 };
        }
        let reason = format!(
            "the deployment changed during the rollback (now {} with candidate {} at {:.0}%); the verdict was about candidate {}, so nothing was changed",
            fresh.primary,
            fresh.candidate,
            fresh.candidate_share * 100.0,
            judged.candidate
        );
        State::Markers(Effect::Aborted { reason })
    }

    async fn verify(&self, pinned_at: i64, seen: Option<Deployment>) -> Effect {
        let target = &self.target;
        let read = match seen {
            Some(seen) => Ok(seen),
            None => self.cycle.provider.rerouted(self.cycle.guard, &self.deployment).await,
        };
        match read {
            Ok(read) if read.serves_only(target) => Effect::RolledBack {
                to: target.clone(),
                prewarm: self.record.prewarm.clone(),
                verdict_to_pin_ms: pinned_at - self.verdict_at,
                verdict_to_pin_real_ms: self.decided.elapsed().as_millis() as u64,
            },
            Ok(read) => Effect::Failed {
                error: format!(
                    "verification failed: the deployment serves {} (candidate {}) after the pin to {target}",
                    read.primary, read.candidate
                ),
            },
            Err(error) => Effect::Failed { error: format!("verification failed: {error}") },
        }
    }

    /// The cooldown marker when the target serves; and capacity ripcord added (now, or as standby before) is
    /// released after the settle time, even when the pin did not happen. Nothing to write when the pin that
    /// landed wrote them.
    async fn mark(&mut self, effect: &Effect) {
        if self.marked && effect.pinned() {
            return;
        }
        let mut marks = self.markers(self.now().await, effect.pinned());
        if !effect.pinned() && self.unheard.is_some() {
            marks.extend(self.restoring());
        }
        if !marks.is_empty()
            && let Err(error) = self.cycle.provider.mark(self.cycle.guard, &marks).await
        {
            tracing::warn!(guard = %self.cycle.guard.name, %error, "cannot record the rollback markers (cooldown, capacity release)");
            self.record.append_error(format!("markers not recorded: {error}"));
        }
    }

    /// The markers as they were before a pin that carried them failed without a clear answer: where the pin writes
    /// its markers in the same change (Cloud Run), a failed operation may leave them while the traffic stays, and
    /// a cooldown left so would hold back the next rollback of a candidate still bad.
    fn restoring(&self) -> Vec<Mark> {
        let judged = &self.cycle.deployment;
        let mut marks = vec![judged.last_rollback_ms.map_or(Mark::ClearRolledBackAt, Mark::RolledBackAt)];
        marks.extend(judged.rollout.clone().map(Mark::Rollout));
        marks.extend(judged.approval.clone().map(Mark::Approval));
        marks
    }

    /// The markers a rollback leaves at `now`: when `pinned`, the cooldown and what the pin answers (the rollout,
    /// a pending approval); the capacity ripcord added to the target, to release after the settle time.
    fn markers(&self, now: i64, pinned: bool) -> Vec<Mark> {
        let mut marks = Vec::new();
        if pinned {
            marks.push(Mark::RolledBackAt(now));
            // The candidate's next rollout, if it ever has one, starts its evidence afresh.
            if self.deployment.rollout.is_some() {
                marks.push(Mark::ClearRollout);
            }
            // A pending rollback is answered by the pin, whoever made it.
            if self.deployment.approval.is_some() {
                marks.push(Mark::ClearApproval);
            }
        }
        let standby_on_target = self.deployment.capacity.as_ref().is_some_and(|c| c.revision == self.target);
        if self.record.prewarm.as_ref().is_some_and(|p| p.created) || standby_on_target {
            let release = Release::At(now + self.cycle.guard.settle.as_millis() as i64);
            marks.push(Mark::Capacity(Capacity { revision: self.target.clone(), release }));
        }
        marks
    }
}

/// The wait before the `n`th retry of a throttled pin: doubling, capped, with a jitter of up to half the wait taken
/// from the guard's name, so a fleet's throttled pins do not all come back in the same instant.
fn throttle_backoff(n: u32, guard: &str) -> Duration {
    let base = THROTTLE_BACKOFF.saturating_mul(1 << n.saturating_sub(1).min(16)).min(THROTTLE_BACKOFF_MAX);
    let hash = guard.bytes().fold(u64::from(n), |h, b| h.wrapping_mul(0x100_0000_01b3).wrapping_add(u64::from(b)));
    base + base.mul_f64((hash % 1000) as f64 / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_pins_back_off_doubling_capped_and_spread() {
        let plain: Vec<Duration> = (1..=7).map(|n| throttle_backoff(n, "")).collect();
        for (n, wait) in plain.iter().enumerate() {
            let base = THROTTLE_BACKOFF.saturating_mul(1 << n).min(THROTTLE_BACKOFF_MAX);
            assert!(*wait >= base && *wait <= base.mul_f64(1.5), "retry {}: {wait:?} for a base of {base:?}", n + 1);
        }
        let total: Duration = (1..=MAX_THROTTLED_PINS).map(|n| throttle_backoff(n, "checkout")).sum();
        assert!(total <= Duration::from_secs(120), "{total:?}");
        let spread: std::collections::BTreeSet<Duration> =
            (0..20).map(|g| throttle_backoff(3, &format!("guard-{g}"))).collect();
        assert!(spread.len() > 10, "guards share backoffs: {spread:?}");
    }
}

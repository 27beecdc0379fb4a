//! The platforms' API quotas, kept by ripcord itself. Every API ripcord calls has a published rate — Lambda's
//! control plane about 15 calls a second per API, CloudWatch GetMetricData 50 a second, Cloud Run Admin and Cloud
//! Monitoring so many calls a minute — shared by everything in the account or project. A fleet cycle that fires its
//! calls as fast as it can meets `TooManyRequestsException` on most of them; so every call first takes a turn from
//! its API's budget here, one budget per provider client (an AWS region, a Google Cloud project), shared by every
//! guard of the process.
//!
//! **Pins go first, then changes, then reads.** What moves traffic back — a rollback's re-read, pin, verification
//! and markers, a person's pull — takes the next turn, always ([`Priority::Pin`]). The rest of a change (a
//! prewarm, a release) takes a turn at most [`CHANGE_HORIZON`] ahead, and a read at most [`READ_HORIZON`] ahead:
//! they ask again as the turn nears, so a pin asked later still goes before them, and changes before reads. (When
//! changes took the next turn too, a fleet-wide bad release on Cloud Run queued every rollback's prewarm write
//! before the first pin: at 144 writes a minute, 1,000 pins would have waited seven minutes behind them.) A prewarm
//! waits for its turns only until its `prewarm_timeout`; then the target is pinned without it.
//!
//! **A read that cannot be served is deferred, never failed.** The cycle gives its reads a deadline
//! ([`scope`]); a read whose turn would come after it gives up at once with a throttled [`ProviderError`] (as a
//! throttle the platform answered would be), and the cycle reports the guard as deferred and serves it first the
//! next time.
//!
//! Turns are spaced in real time (the virtual clock of the simulator does not throttle), with a burst of one
//! second's calls, as the platforms' token buckets admit; ripcord uses [`DEFAULT_SHARE`] of each quota, leaving the
//! rest to the deploy tools and people that share it.

use super::ProviderError;
pub use crate::config::quotas::{DEFAULT_SHARE, published};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far ahead of now a read may take a turn.
pub const READ_HORIZON: Duration = Duration::from_millis(250);
/// How far ahead of now the steps of a change other than its pin may take a turn: further than a read, so a change
/// waiting takes a turn before a read waiting does.
pub const CHANGE_HORIZON: Duration = Duration::from_secs(1);

/// What a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Moving traffic back: a rollback's re-read, pin, verification and markers, a person's pull. Takes the next
    /// turn, ahead of everything else, and is never deferred.
    Pin,
    /// The rest of a change: a prewarm, a release, standby capacity. Ahead of reads, behind pins; deferred only
    /// past its deadline (a prewarm's `prewarm_timeout`).
    Change,
    /// Reading a deployment or its metrics, or recording what ripcord saw: served before the cycle's read deadline,
    /// else deferred to the next cycle.
    Read,
}

impl Priority {
    /// How far ahead of now a call of this priority may take a turn (`None`: the next turn, however far).
    fn horizon(self) -> Option<Duration> {
        match self {
            Self::Pin => None,
            Self::Change => Some(CHANGE_HORIZON),
            Self::Read => Some(READ_HORIZON),
        }
    }
}

/// What the calls of one task are for, and until when they may wait for a turn: set by the cycle around each
/// guard's work ([`scope`]). Outside any scope a call is a read that waits as long as its turn takes (a person's
/// `status`).
#[derive(Debug, Clone, Copy)]
pub struct CallContext {
    pub priority: Priority,
    /// After this, a call whose turn has not come gives up, marked throttled (a pin never does).
    pub deadline: Option<Instant>,
}

tokio::task_local! {
    static CONTEXT: CallContext;
}

/// Runs `future` with its calls made for `context`.
pub async fn scope<F: std::future::Future>(context: CallContext, future: F) -> F::Output {
    CONTEXT.scope(context, future).await
}

/// Runs `future` as what moves traffic back: its calls take the next turn, ahead of everything else.
pub async fn as_pin<F: std::future::Future>(future: F) -> F::Output {
    scope(CallContext { priority: Priority::Pin, deadline: None }, future).await
}

/// Runs `future` as a change other than a pin: its calls go ahead of reads, behind pins, and wait for their turns
/// until `deadline` at most.
pub async fn as_change<F: std::future::Future>(deadline: Option<Instant>, future: F) -> F::Output {
    scope(CallContext { priority: Priority::Change, deadline }, future).await
}

fn context() -> CallContext {
    CONTEXT.try_with(|c| *c).unwrap_or(CallContext { priority: Priority::Read, deadline: None })
}

/// One API's lane: its rate and where its turns stand (the generic cell rate algorithm: `next` is the theoretical
/// time of the next call; a call may go up to `burst` before it).
#[derive(Debug)]
struct Lane {
    interval: Duration,
    burst: Duration,
    next: Option<Instant>,
}

impl Lane {
    fn new(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 { per_second } else { f64::MAX };
        let interval = Duration::from_secs_f64((1.0 / per_second).max(1e-9));
        // One second of calls, as the platforms' buckets hold (at least one call).
        let burst = interval.mul_f64((per_second - 1.0).max(0.0));
        Self { interval, burst, next: None }
    }

    /// The earliest time a call may go, asked at `now`.
    fn slot(&self, now: Instant) -> Instant {
        match self.next {
            Some(next) => next.checked_sub(self.burst).map_or(now, |earliest| earliest.max(now)),
            None => now,
        }
    }

    fn take(&mut self, slot: Instant) {
        self.next = Some(self.next.map_or(slot, |next| next.max(slot)) + self.interval);
    }
}

/// The budgets of one provider client: a lane per API, created on first use at the API's rate.
#[derive(Debug)]
pub struct Budget {
    /// Calls per second of each API (after the share), by API name; an API not listed is not limited.
    rates: HashMap<String, f64>,
    lanes: Mutex<HashMap<String, Lane>>,
}

impl Budget {
    /// A budget for APIs at `rates` (calls per second each, already the share ripcord may use).
    pub fn new(rates: impl IntoIterator<Item = (String, f64)>) -> Self {
        Self { rates: rates.into_iter().collect(), lanes: Mutex::default() }
    }

    /// The rate ripcord keeps `api` to, in calls per second (`None`: not limited). A lane of a quota kept per
    /// region is named `QUOTA@REGION` (`run.read@europe-west1`): its rate is the quota's.
    pub fn rate(&self, api: &str) -> Option<f64> {
        let quota = api.split_once('@').map_or(api, |(quota, _)| quota);
        self.rates.get(quota).copied()
    }

    /// Of `apis` that answer the same question (an alias by GetAlias or by ListAliases, each with a quota of its
    /// own), the one whose next turn comes first; the first listed on a tie.
    pub fn sooner<'a>(&self, apis: &[&'a str]) -> Option<&'a str> {
        let now = Instant::now();
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let next = |api: &str| match self.rate(api) {
            None => now,
            Some(_) => lanes.get(api).map_or(now, |lane| lane.slot(now)),
        };
        apis.iter().copied().min_by_key(|api| next(api))
    }

    /// Waits for a turn of `api` (named as the quota names it) for the call `operation` on `resource`: the next
    /// one for a pin; for a change or a read, only if the turn comes before the task's deadline, else an error
    /// marked throttled (a read's guard is deferred, a prewarm given up).
    pub async fn turn(&self, api: &str, operation: &'static str, resource: &str) -> Result<(), ProviderError> {
        let Some(rate) = self.rate(api) else { return Ok(()) };
        let CallContext { priority, deadline } = context();
        loop {
            let decided = {
                let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
                let lane = lanes.entry(api.to_string()).or_insert_with(|| Lane::new(rate));
                lane.decide(priority, deadline, Instant::now())
            };
            match decided {
                Decision::Go(slot) => {
                    tokio::time::sleep_until(slot.into()).await;
                    return Ok(());
                }
                Decision::AskAgainAt(at) => tokio::time::sleep_until(at.into()).await,
                Decision::Defer => {
                    let until = match priority {
                        Priority::Read => "not called this cycle: ripcord keeps",
                        Priority::Change | Priority::Pin => "not called before the change's deadline: ripcord keeps",
                    };
                    let rate = per_second_text(rate);
                    return Err(ProviderError {
                        operation,
                        resource: resource.to_string(),
                        message: format!("{until} {api} to {rate} and its turns until then are taken"),
                        throttled: true,
                    });
                }
            }
        }
    }
}

/// What a call asked for at a time gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Its turn, at this time.
    Go(Instant),
    /// A call whose turn is further ahead than its priority's horizon: ask again then.
    AskAgainAt(Instant),
    /// A call whose turn would come after its deadline.
    Defer,
}

impl Lane {
    fn decide(&mut self, priority: Priority, deadline: Option<Instant>, now: Instant) -> Decision {
        let slot = self.slot(now);
        match priority.horizon() {
            Some(horizon) if slot > now + horizon => {
                if deadline.is_some_and(|deadline| slot > deadline) {
                    Decision::Defer
                } else {
                    Decision::AskAgainAt(slot - horizon)
                }
            }
            _ => {
                self.take(slot);
                Decision::Go(slot)
            }
        }
    }
}

/// The tasks of one provider client that poll something until it is done (a prewarm's provisioned concurrency, a
/// long-running operation), counted so that each polls once per round of its API's lane when that is longer than
/// its own interval: a fleet-wide bad release's 443 prewarms, each polling every 2 s, queued 7,531 reads where
/// about 900 tell the same.
#[derive(Debug, Default)]
pub struct Pollers(std::sync::atomic::AtomicUsize);

/// One task polling, counted while it lives.
#[derive(Debug)]
pub struct Polling<'a>(&'a Pollers);

impl Pollers {
    pub fn start(&self) -> Polling<'_> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Polling(self)
    }

    /// How long a poller waits before its next poll of `api`: `base`, or the time the lane takes to give each
    /// poller waiting one turn, whichever is longer.
    pub fn interval(&self, budget: &Budget, api: &str, base: Duration) -> Duration {
        let waiting = self.0.load(std::sync::atomic::Ordering::Relaxed) as f64;
        match budget.rate(api) {
            Some(rate) if rate > 0.0 => base.max(Duration::from_secs_f64(waiting / rate)),
            _ => base,
        }
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A rate for people: `12/s`, or `800/min` below one a second.
pub fn per_second_text(rate: f64) -> String {
    if rate >= 1.0 { format!("{}/s", trim(rate)) } else { format!("{}/min", trim(rate * 60.0)) }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `count` calls of `priority` asked at `now`, each taking the turn it gets; their times after `now`.
    fn turns(lane: &mut Lane, count: usize, now: Instant) -> Vec<u128> {
        (0..count)
            .map(|_| match lane.decide(Priority::Pin, None, now) {
                Decision::Go(slot) => (slot - now).as_millis(),
                other => panic!("a pin always gets a turn: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_burst_of_one_second_then_calls_spaced_at_the_rate() {
        let (mut lane, now) = (Lane::new(10.0), Instant::now());
        let at = turns(&mut lane, 30, now);
        // 10 at once (one second's calls), then one every 100 ms.
        assert!(at[..10].iter().all(|ms| *ms == 0), "{at:?}");
        assert_eq!((at[10], at[29]), (100, 2000), "{at:?}");
        // After the burst, exactly the rate: as a token bucket of one second's calls admits.
        assert!(at[10..].windows(2).all(|w| w[1] - w[0] == 100), "{at:?}");
        // A lane left alone refills: a second later, the next call goes at once.
        let later = now + Duration::from_secs(10);
        assert_eq!(lane.decide(Priority::Read, None, later), Decision::Go(later));
    }

    #[test]
    fn a_read_waits_within_its_deadline_and_is_deferred_past_it() {
        let (mut lane, now) = (Lane::new(1.0), Instant::now());
        let deadline = Some(now + Duration::from_secs(2));
        assert_eq!(lane.decide(Priority::Read, deadline, now), Decision::Go(now), "the burst");
        // The next turn is a second ahead: past the read horizon, so ask again just before it.
        assert_eq!(lane.decide(Priority::Read, deadline, now), Decision::AskAgainAt(now + ms(1000) - READ_HORIZON));
        let then = now + ms(800);
        assert_eq!(lane.decide(Priority::Read, deadline, then), Decision::Go(now + ms(1000)));
        assert_eq!(lane.decide(Priority::Read, deadline, then), Decision::AskAgainAt(now + ms(2000) - READ_HORIZON));
        // At 1.8 s the turn at 2 s is within the deadline; the one at 3 s is not.
        let late = now + ms(1800);
        assert_eq!(lane.decide(Priority::Read, deadline, late), Decision::Go(now + ms(2000)));
        assert_eq!(lane.decide(Priority::Read, deadline, late), Decision::Defer);
        // A pin is served whatever is queued or due: the next turn.
        assert_eq!(lane.decide(Priority::Pin, deadline, late), Decision::Go(now + ms(3000)));
    }

    #[test]
    fn a_change_is_not_held_back_by_waiting_reads() {
        let (mut lane, now) = (Lane::new(2.0), Instant::now());
        // Twenty reads ask at once: two get the burst, the others take turns only within the horizon and wait.
        let granted = (0..20).filter(|_| matches!(lane.decide(Priority::Read, None, now), Decision::Go(_))).count();
        assert_eq!(granted, 2);
        // The pin takes the next turn: half a second, not the ten seconds the reads would take.
        assert_eq!(lane.decide(Priority::Pin, None, now), Decision::Go(now + ms(500)));
    }

    #[test]
    fn pins_go_before_changes_and_changes_before_reads() {
        let (mut lane, now) = (Lane::new(2.0), Instant::now());
        // The burst is taken; the next turn is at 0.5 s, then every 0.5 s.
        assert!(matches!(lane.decide(Priority::Pin, None, now), Decision::Go(_)));
        assert!(matches!(lane.decide(Priority::Pin, None, now), Decision::Go(_)));
        // A prewarm asking now waits for the turn at 0.5 s, within its horizon: it takes it.
        assert_eq!(lane.decide(Priority::Change, None, now), Decision::Go(now + ms(500)));
        // Ten prewarms ask next: the turn at 1 s is within the horizon, the rest are not taken yet.
        let granted = (0..10).filter(|_| matches!(lane.decide(Priority::Change, None, now), Decision::Go(_))).count();
        assert_eq!(granted, 1);
        // A pin asked after them all takes the very next turn (1.5 s), ahead of the nine prewarms still waiting.
        assert_eq!(lane.decide(Priority::Pin, None, now), Decision::Go(now + ms(1500)));
        // At 1 s the turn at 2 s is within a change's horizon but not a read's: the change goes first.
        let then = now + ms(1000);
        assert_eq!(lane.decide(Priority::Read, None, then), Decision::AskAgainAt(now + ms(2000) - READ_HORIZON));
        assert_eq!(lane.decide(Priority::Change, None, then), Decision::Go(now + ms(2000)));
        // A change whose turn would come after its deadline gives up, as a read does.
        let deadline = Some(now + ms(2600));
        assert_eq!(lane.decide(Priority::Change, deadline, then), Decision::AskAgainAt(now + ms(1500)));
        assert_eq!(lane.decide(Priority::Change, deadline, now + ms(1600)), Decision::Go(now + ms(2500)));
        assert_eq!(lane.decide(Priority::Change, deadline, now + ms(1600)), Decision::Defer);
    }

    #[tokio::test]
    async fn of_two_apis_that_answer_the_same_the_one_with_the_sooner_turn() {
        let budget = Budget::new([("GetAlias".to_string(), 2.0), ("ListAliases".to_string(), 2.0)]);
        assert_eq!(budget.sooner(&["GetAlias", "ListAliases"]), Some("GetAlias"), "a tie: the first");
        for _ in 0..3 {
            as_pin(budget.turn("GetAlias", "GetAlias", "f:live")).await.unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(budget.sooner(&["GetAlias", "ListAliases"]), Some("ListAliases"), "GetAlias's turns are taken");
        assert_eq!(budget.sooner(&["GetAlias", "Unlimited"]), Some("Unlimited"));
    }

    #[test]
    fn pollers_poll_once_per_round_of_the_lane_when_that_is_longer() {
        let budget = Budget::new([("GetOperation".to_string(), 10.0)]);
        let pollers = Pollers::default();
        let base = Duration::from_secs(2);
        assert_eq!(pollers.interval(&budget, "GetOperation", base), base, "none waiting");
        let waiting: Vec<Polling<'_>> = (0..50).map(|_| pollers.start()).collect();
        assert_eq!(pollers.interval(&budget, "GetOperation", base), Duration::from_secs(5), "50 at 10/s");
        assert_eq!(pollers.interval(&budget, "Unlimited", base), base, "a lane without a quota");
        drop(waiting);
        assert_eq!(pollers.interval(&budget, "GetOperation", base), base, "counted only while they poll");
    }

    #[tokio::test]
    async fn an_unlimited_api_and_a_change_are_served_and_a_read_past_its_deadline_is_deferred() {
        let budget = Budget::new([("GetAlias".to_string(), 1.0)]);
        budget.turn("ListTags", "ListTags", "f").await.unwrap_or_else(|e| panic!("not limited: {e}"));
        let read = CallContext { priority: Priority::Read, deadline: Some(Instant::now()) };
        scope(read, budget.turn("GetAlias", "GetAlias", "f:live")).await.unwrap_or_else(|e| panic!("burst: {e}"));
        let error = scope(read, budget.turn("GetAlias", "GetAlias", "f:live")).await.err();
        let error = error.unwrap_or_else(|| panic!("not deferred"));
        assert!(error.throttled && error.message.contains("GetAlias to 1/s"), "{error}");
    }

    #[test]
    fn a_quota_kept_per_region_has_a_lane_per_region_at_its_rate() {
        let budget = Budget::new([("run.read".to_string(), 10.0)]);
        assert_eq!(budget.rate("run.read@europe-west1"), Some(10.0));
        assert_eq!(budget.rate("run.read@us-central1"), Some(10.0));
        assert_eq!(budget.rate("run.write@us-central1"), None, "not limited");
    }

    #[test]
    fn rates_read_as_people_say_them() {
        assert_eq!(per_second_text(12.0), "12/s");
        assert_eq!(per_second_text(800.0 / 60.0), "13.33/s");
        assert_eq!(per_second_text(0.5), "30/min");
    }
}

//! Where "now" comes from. The engine never reads the wall clock itself: production uses the system clock; the
//! demo and the tests use the simulator's virtual clock, so metric windows, cooldowns and waits line up with the
//! simulated timeline (while the SDKs still sign requests with real time).
//!
//! Waiting on the simulator's clock advances it: a bounded wait for provisioned concurrency to become READY
//! takes virtual seconds and no real ones.

//! A virtual clock moves only when every participant of the cycle waits on it ([`Scheduler`]), the way tokio's
//! paused test clock auto-advances: a thousand rollbacks that wait for their prewarms together wait once, however
//! their requests interleave, and a guard still judging or still calling the platform holds time where it is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of time that can also wait.
#[derive(Debug, Clone)]
pub struct Clock {
    source: Source,
    scheduler: Arc<Scheduler>,
}

#[derive(Debug, Clone)]
enum Source {
    System,
    /// A simulator in this process (the demo).
    Simulator(ripcord_sim::Simulator),
    /// A simulator served over HTTP (`ripcord sim serve`), at its endpoint.
    Remote {
        endpoint: String,
        http: reqwest::Client,
    },
    /// A virtual clock of its own, moved only by waiting on it (unit tests of the cycle, in-process benchmarks).
    Virtual(Arc<std::sync::atomic::AtomicI64>),
}

/// The clock could not be read or advanced.
#[derive(Debug, thiserror::Error)]
#[error("simulator clock at {endpoint}: {message}")]
pub struct ClockError {
    endpoint: String,
    message: String,
}

impl Clock {
    fn of(source: Source) -> Self {
        Self { source, scheduler: Arc::default() }
    }

    /// The system clock: production.
    pub fn system() -> Self {
        Self::of(Source::System)
    }

    /// The virtual clock of a simulator in this process.
    pub fn simulator(sim: ripcord_sim::Simulator) -> Self {
        Self::of(Source::Simulator(sim))
    }

    /// A virtual clock starting at `ms` since the epoch.
    pub fn virtual_at(ms: i64) -> Self {
        Self::of(Source::Virtual(Arc::new(std::sync::atomic::AtomicI64::new(ms))))
    }

    pub fn remote(endpoint: &str) -> Self {
        Self::of(Source::Remote { endpoint: endpoint.trim_end_matches('/').to_string(), http: reqwest::Client::new() })
    }

    /// Sets a virtual clock of its own to `ms` (tests that move time between cycles); other clocks are unchanged.
    pub fn set_virtual(&self, ms: i64) {
        if let Source::Virtual(now) = &self.source {
            now.store(ms, std::sync::atomic::Ordering::SeqCst);
            self.scheduler.lock().reached = i64::MIN;
        }
    }

    /// Milliseconds since the epoch.
    pub async fn now_ms(&self) -> Result<i64, ClockError> {
        match &self.source {
            Source::System => {
                Ok(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0))
            }
            Source::Simulator(sim) => Ok(sim.now_ms()),
            Source::Virtual(now) => Ok(now.load(std::sync::atomic::Ordering::SeqCst)),
            Source::Remote { endpoint, http } => {
                let request = http.get(format!("{endpoint}/_sim/clock"));
                Self::read_now(endpoint, request).await
            }
        }
    }

    /// Takes part in the scheduling of a virtual clock until the returned value is dropped: while a participant is
    /// not waiting on the clock (it judges, calls the platform, writes the audit log), the clock does not move.
    /// The controller makes each guard of a cycle a participant. On the system clock it changes nothing.
    pub fn participate(&self) -> Participation {
        self.scheduler.lock().participants += 1;
        Participation { scheduler: self.scheduler.clone() }
    }

    /// Waits `duration` of this clock's time. On a virtual clock, waits that start at the same virtual time end
    /// at the same virtual time: the clock moves, to the earliest end anyone waits for, only once every
    /// participant waits (with no participants, at once).
    pub async fn sleep(&self, duration: Duration) -> Result<(), ClockError> {
        if let Source::System = self.source {
            tokio::time::sleep(duration).await;
            return Ok(());
        }
        let end = self.now_ms().await? + duration.as_millis() as i64;
        if self.scheduler.lock().participants == 0 {
            return self.advance_to(end).await;
        }
        let _waiting = Waiter::new(&self.scheduler, end);
        loop {
            let notified = self.scheduler.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.scheduler.next_step(end) {
                Step::Done => return Ok(()),
                Step::Wait => notified.await,
                Step::Advance(to) => {
                    // Dropped mid-call (a deadline abandoned this wait), it still lets the others go on.
                    let mut advancing = Advancing { scheduler: &self.scheduler, reached: None };
                    self.advance_to(to).await?;
                    advancing.reached = Some(to);
                }
            }
        }
    }

    /// Moves a virtual clock to `to_ms` if it is not there yet.
    async fn advance_to(&self, to_ms: i64) -> Result<(), ClockError> {
        match &self.source {
            Source::System => Ok(()),
            Source::Simulator(sim) => {
                sim.advance_to(to_ms);
                Ok(())
            }
            Source::Virtual(now) => {
                now.fetch_max(to_ms, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Source::Remote { endpoint, http } => {
                let request = http.post(format!("{endpoint}/_sim/advance")).body(format!("{{\"to_ms\":{to_ms}}}"));
                Self::read_now(endpoint, request).await.map(|_| ())
            }
        }
    }

    async fn read_now(endpoint: &str, request: reqwest::RequestBuilder) -> Result<i64, ClockError> {
        let fail = |message: String| ClockError { endpoint: endpoint.to_string(), message };
        let response = request.send().await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}: {}", String::from_utf8_lossy(&body))));
        }
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))?;
        value.get("now_ms").and_then(serde_json::Value::as_i64).ok_or_else(|| fail("no now_ms in the answer".into()))
    }
}

/// Who waits on a virtual clock, and until when. Time moves only when every participant waits: then to the
/// earliest end, and the waiters whose end it reached go on.
#[derive(Debug, Default)]
struct Scheduler {
    state: Mutex<Schedule>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Schedule {
    participants: usize,
    /// Each waiting participant's end, by a number of its own.
    waiting: BTreeMap<u64, i64>,
    next_waiter: u64,
    /// The furthest time this scheduler moved the clock to.
    reached: i64,
    /// A waiter is moving the clock (over HTTP for a remote simulator); the others wait for it.
    advancing: bool,
}

/// What a waiter does next.
enum Step {
    Done,
    Wait,
    Advance(i64),
}

impl Scheduler {
    fn lock(&self) -> std::sync::MutexGuard<'_, Schedule> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_step(&self, end: i64) -> Step {
        let mut schedule = self.lock();
        if schedule.reached >= end {
            return Step::Done;
        }
        if schedule.advancing || schedule.waiting.len() < schedule.participants {
            return Step::Wait;
        }
        let earliest = schedule.waiting.values().copied().min().unwrap_or(end);
        if earliest <= schedule.reached {
            // Its waiter is done and about to leave (and to say so): moving the clock again now would spin.
            return Step::Wait;
        }
        schedule.advancing = true;
        Step::Advance(earliest)
    }
}

/// A waiter moving the clock; when dropped (done, failed or abandoned) the others look again.
struct Advancing<'s> {
    scheduler: &'s Scheduler,
    /// Where the clock was moved to, once it was.
    reached: Option<i64>,
}

impl Drop for Advancing<'_> {
    fn drop(&mut self) {
        let mut schedule = self.scheduler.lock();
        schedule.advancing = false;
        if let Some(to) = self.reached {
            schedule.reached = schedule.reached.max(to);
        }
        drop(schedule);
        self.scheduler.changed.notify_waiters();
    }
}

/// A participant waiting on the clock until `end`; it stops waiting when dropped (done, or abandoned by a timeout).
struct Waiter {
    scheduler: Arc<Scheduler>,
    id: u64,
}

impl Waiter {
    fn new(scheduler: &Arc<Scheduler>, end: i64) -> Self {
        let mut schedule = scheduler.lock();
        let id = schedule.next_waiter;
        schedule.next_waiter += 1;
        schedule.waiting.insert(id, end);
        drop(schedule);
        // One more waiter may complete the set: let the others look.
        scheduler.changed.notify_waiters();
        Self { scheduler: scheduler.clone(), id }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.scheduler.lock().waiting.remove(&self.id);
        // The others may have waited for this one to leave (its end was reached).
        self.scheduler.changed.notify_waiters();
    }
}

/// A participant in a virtual clock's scheduling ([`Clock::participate`]); leaves when dropped.
#[derive(Debug)]
pub struct Participation {
    scheduler: Arc<Scheduler>,
}

impl Drop for Participation {
    fn drop(&mut self) {
        let mut schedule = self.scheduler.lock();
        schedule.participants = schedule.participants.saturating_sub(1);
        drop(schedule);
        // One participant fewer may leave only waiters: let them move the clock.
        self.scheduler.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build();
        runtime.unwrap_or_else(|e| panic!("{e}")).block_on(future)
    }

    #[test]
    fn waits_that_start_together_end_together_and_time_holds_for_a_busy_participant() {
        let clock = Clock::virtual_at(0);
        let ends = std::sync::Mutex::new(Vec::new());
        let busy_done_at = std::sync::Mutex::new(None);
        block_on(async {
            let waiters = (0..100).map(|_| {
                let participation = clock.participate();
                let (clock, ends) = (&clock, &ends);
                async move {
                    let _participation = participation;
                    // Two polls of 2 s, as a prewarm waits for capacity.
                    for _ in 0..2 {
                        clock.sleep(Duration::from_secs(2)).await.unwrap_or_else(|e| panic!("{e}"));
                    }
                    let end = clock.now_ms().await.unwrap_or(-1);
                    ends.lock().unwrap_or_else(|p| p.into_inner()).push(end);
                }
            });
            // A participant busy in real time (a throttled call backing off): the clock waits for it.
            let busy = {
                let participation = clock.participate();
                let (clock, busy_done_at) = (&clock, &busy_done_at);
                async move {
                    let _participation = participation;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let at = clock.now_ms().await.unwrap_or(-1);
                    *busy_done_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
                }
            };
            futures_util::future::join(futures_util::future::join_all(waiters), busy).await;
        });
        let ends = ends.into_inner().unwrap_or_else(|p| p.into_inner());
        assert_eq!(ends.len(), 100);
        assert!(ends.iter().all(|end| *end == 4_000), "one after another they would end at 400 s: {ends:?}");
        assert_eq!(
            busy_done_at.into_inner().unwrap_or_else(|p| p.into_inner()),
            Some(0),
            "time moved under a busy participant"
        );
    }

    #[test]
    fn without_participants_a_wait_moves_the_clock_at_once() {
        let clock = Clock::virtual_at(1_000);
        block_on(async {
            clock.sleep(Duration::from_secs(5)).await.unwrap_or_else(|e| panic!("{e}"));
            clock.sleep(Duration::from_secs(5)).await.unwrap_or_else(|e| panic!("{e}"));
        });
        assert_eq!(block_on(clock.now_ms()).unwrap_or(-1), 11_000);
    }
}

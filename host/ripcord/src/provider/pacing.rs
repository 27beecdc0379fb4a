//! Paces a provider client's changes under the platform's API rate limits. A fleet-wide bad release asks for a
//! thousand rollbacks at once; Lambda's control plane takes about 15 requests a second per API and answers the
//! rest with `TooManyRequestsException`. Calls are spaced per operation (each API has its own limit) at the
//! configured rate (`changes_per_second`), in real time; a throttle that still comes back is retried by the SDK,
//! or by the pin loop for a pin (`rollback.rs`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Spaces the calls of each operation at most `per_second` apart.
#[derive(Debug)]
pub(crate) struct Pacer {
    interval: Duration,
    /// The next free slot of each operation.
    next: Mutex<HashMap<&'static str, Instant>>,
}

impl Pacer {
    pub(crate) fn new(per_second: f64) -> Self {
        let interval = if per_second.is_finite() && per_second > 0.0 {
            Duration::from_secs_f64(1.0 / per_second)
        } else {
            Duration::ZERO
        };
        Self { interval, next: Mutex::default() }
    }

    /// Waits for `operation`'s next slot (real time) and takes it.
    pub(crate) async fn turn(&self, operation: &'static str) {
        if self.interval.is_zero() {
            return;
        }
        let slot = self.take_slot(operation, Instant::now());
        tokio::time::sleep_until(slot.into()).await;
    }

    /// The slot of a call of `operation` asked for at `now`: the operation's next free slot, or now.
    fn take_slot(&self, operation: &'static str, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let free = next.entry(operation).or_insert(now);
        let slot = (*free).max(now);
        *free = slot + self.interval;
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_of_one_operation_are_spaced_and_other_operations_are_not_held_back() {
        let pacer = Pacer::new(10.0);
        let now = Instant::now();
        let slots: Vec<Duration> = (0..5).map(|_| pacer.take_slot("UpdateAlias", now) - now).collect();
        let ms = |n: u64| Duration::from_millis(n);
        assert_eq!(slots, [ms(0), ms(100), ms(200), ms(300), ms(400)]);
        assert_eq!(pacer.take_slot("TagResource", now), now, "each API has its own limit");
        // A call asked for after the slots ran out goes at once.
        let later = now + ms(1000);
        assert_eq!(pacer.take_slot("UpdateAlias", later), later);
        assert_eq!(Pacer::new(0.0).take_slot("UpdateAlias", now), now, "0: not paced");
    }
}

//! Where "now" comes from. The engine never reads the wall clock itself: production uses the system clock; the
//! demo and the tests use the simulator's virtual clock, so metric windows, cooldowns and waits line up with the
//! simulated timeline (while the SDKs still sign requests with real time).
//!
//! Waiting on the simulator's clock advances it: a bounded wait for provisioned concurrency to become READY
//! takes virtual seconds and no real ones.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of time that can also wait.
#[derive(Debug, Clone)]
pub enum Clock {
    System,
    /// A simulator in this process (the demo).
    Simulator(ripcord_sim::Simulator),
    /// A simulator served over HTTP (`ripcord sim serve`), at its endpoint.
    Remote {
        endpoint: String,
        http: reqwest::Client,
    },
    /// A virtual clock of its own, moved only by waiting on it (unit tests of the cycle, in-process benchmarks).
    Virtual(std::sync::Arc<std::sync::atomic::AtomicI64>),
}

/// The clock could not be read or advanced.
#[derive(Debug, thiserror::Error)]
#[error("simulator clock at {endpoint}: {message}")]
pub struct ClockError {
    endpoint: String,
    message: String,
}

impl Clock {
    /// A virtual clock starting at `ms` since the epoch.
    pub fn virtual_at(ms: i64) -> Self {
        Self::Virtual(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(ms)))
    }

    pub fn remote(endpoint: &str) -> Self {
        Self::Remote { endpoint: endpoint.trim_end_matches('/').to_string(), http: reqwest::Client::new() }
    }

    /// Milliseconds since the epoch.
    pub async fn now_ms(&self) -> Result<i64, ClockError> {
        match self {
            Self::System => Ok(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)),
            Self::Simulator(sim) => Ok(sim.now_ms()),
            Self::Virtual(now) => Ok(now.load(std::sync::atomic::Ordering::SeqCst)),
            Self::Remote { endpoint, http } => {
                let request = http.get(format!("{endpoint}/_sim/clock"));
                Self::read_now(endpoint, request).await
            }
        }
    }

    /// Waits `duration` of this clock's time. A virtual clock is moved *to* the waiter's end (the time it read plus
    /// the duration), not *by* the duration: waits that start together (the prewarms of a fleet's rollbacks, each
    /// reading the simulator's clock over HTTP) end together in virtual time, as they would in real time, instead of
    /// adding up. Waits that do not overlap still add up.
    pub async fn sleep(&self, duration: Duration) -> Result<(), ClockError> {
        let ms = duration.as_millis() as i64;
        match self {
            Self::System => {
                tokio::time::sleep(duration).await;
                Ok(())
            }
            Self::Simulator(sim) => {
                sim.advance_to(sim.now_ms() + ms);
                Ok(())
            }
            Self::Virtual(now) => {
                let end = now.load(std::sync::atomic::Ordering::SeqCst) + ms;
                now.fetch_max(end, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Self::Remote { endpoint, http } => {
                let end = self.now_ms().await? + ms;
                let request = http.post(format!("{endpoint}/_sim/advance")).body(format!("{{\"to_ms\":{end}}}"));
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

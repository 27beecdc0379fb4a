//! Notifications: audit records posted to a webhook. Delivery must never delay a change — a webhook that
//! accepts the connection and never answers once held a pin back by 5 s — so records are queued and a background
//! task posts them one by one, each bounded by [`POST_TIMEOUT`]; the cycle waits for the queue only at its end,
//! after its changes, and never past a bound it chooses (the invocation's deadline in function mode).

use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Longest time one post may take (connect, send, answer).
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// A webhook and its delivery queue.
#[derive(Debug)]
pub struct Webhook {
    url: String,
    client: reqwest::Client,
    /// The queue into the delivery task, started on the first record (inside the async runtime).
    queue: Mutex<Option<mpsc::UnboundedSender<String>>>,
    /// Records queued and not yet delivered or given up.
    outstanding: watch::Sender<usize>,
}

impl Webhook {
    pub fn new(url: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .connect_timeout(POST_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { url, client, queue: Mutex::new(None), outstanding: watch::Sender::new(0) }
    }

    /// Queues one JSON record for delivery; returns at once. Must be called from within a tokio runtime.
    pub fn send(&self, body: String) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let sender = queue.get_or_insert_with(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(deliver(self.client.clone(), self.url.clone(), receiver, self.outstanding.clone()));
            sender
        });
        self.outstanding.send_modify(|n| *n += 1);
        if sender.send(body).is_err() {
            // The delivery task is gone (its runtime ended): start a new one with the next record.
            self.outstanding.send_modify(|n| *n = n.saturating_sub(1));
            *queue = None;
        }
    }

    /// Waits until every queued record was delivered or given up, but not past `until`.
    pub async fn flush(&self, until: tokio::time::Instant) {
        let mut outstanding = self.outstanding.subscribe();
        let drained = tokio::time::timeout_at(until, outstanding.wait_for(|n| *n == 0)).await;
        if drained.is_err() {
            let left = *self.outstanding.borrow();
            tracing::warn!(target: "ripcord::notify", url = %self.url, left, "webhook notifications not delivered in time; they are in the audit log");
        }
    }
}

/// The delivery task: posts records in the order written.
async fn deliver(
    client: reqwest::Client,
    url: String,
    mut records: mpsc::UnboundedReceiver<String>,
    outstanding: watch::Sender<usize>,
) {
    while let Some(body) = records.recv().await {
        let posted = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .and_then(|r| r.error_for_status());
        if let Err(error) = posted {
            tracing::warn!(target: "ripcord::notify", %error, %url, "webhook delivery failed");
        }
        outstanding.send_modify(|n| *n = n.saturating_sub(1));
    }
}

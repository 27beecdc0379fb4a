//! Notifications: messages posted to a webhook. Like Flagger's notifier, it takes plain data — a headline, a
//! severity and the record's JSON — so it knows nothing of what the messages are about; the audit log decides
//! which records become messages (`audit.rs`). Delivery must never delay a change — a webhook that
//! accepts the connection and never answers once held a pin back by 5 s — so records are queued and a background
//! task posts them one by one, each bounded by [`POST_TIMEOUT`]; the cycle waits for the queue only at its end,
//! after its changes, and never past a bound it chooses (the invocation's deadline in function mode).

use crate::config::WebhookFormat;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Longest time one post may take (connect, send, answer).
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// How a message is shown to people (Slack's icon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A change ripcord made and verified (a pin).
    Done,
    /// A change that failed or was aborted.
    Failed,
    /// Anything else worth knowing: an intent, a finding, an approval asked for or answered.
    Info,
}

/// One notification.
#[derive(Debug, Clone)]
pub struct Message {
    /// What happened, in one sentence, for people.
    pub headline: String,
    pub severity: Severity,
    /// The whole record as one JSON object (the `json` format's body).
    pub json: String,
}

/// A webhook and its delivery queue.
#[derive(Debug)]
pub struct Webhook {
    url: String,
    format: WebhookFormat,
    /// How a message points people at the report: a link, else the command that renders it.
    report: String,
    client: reqwest::Client,
    /// The queue into the delivery task, started on the first record (inside the async runtime).
    queue: Mutex<Option<mpsc::UnboundedSender<String>>>,
    /// Records queued and not yet delivered or given up.
    outstanding: watch::Sender<usize>,
}

impl Webhook {
    /// A webhook at `url` speaking `format`; a Slack message links `report_url`, else names the command that
    /// renders the report for `config`.
    pub fn new(url: String, format: WebhookFormat, report_url: Option<&str>, config: &std::path::Path) -> Self {
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .connect_timeout(POST_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let report = match report_url {
            Some(url) => format!("<{url}|report>"),
            None => format!("report: `ripcord report --config {}`", config.display()),
        };
        Self { url, format, report, client, queue: Mutex::new(None), outstanding: watch::Sender::new(0) }
    }

    /// The body posted for `message`.
    fn body(&self, message: Message) -> String {
        match self.format {
            WebhookFormat::Json => message.json,
            WebhookFormat::Slack => {
                // Slack's mrkdwn treats &, < and > as control characters; the headline is text.
                let text = message.headline.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
                let icon = match message.severity {
                    Severity::Done => ":rewind:",
                    Severity::Failed => ":rotating_light:",
                    Severity::Info => ":information_source:",
                };
                serde_json::json!({"text": format!("{icon} ripcord: {text} ({})", self.report)}).to_string()
            }
        }
    }

    /// Queues one message for delivery (as [`Webhook::body`] makes it); returns at once. Must be called from
    /// within a tokio runtime.
    pub fn send(&self, message: Message) {
        let body = self.body(message);
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

//! ripcord's own metrics — cycles, verdicts by kind, rollbacks, change failures, cycle and verdict-to-pin
//! durations, per guard — in the shape each way of running it turns into metrics with no extra call: CloudWatch
//! Embedded Metric Format lines in a Lambda function (`ripcord function`), a Prometheus text endpoint for `watch
//! --metrics-addr`, and structured log fields (target `ripcord::metrics`) everywhere, which Cloud Logging's
//! log-based metrics read in a Cloud Run Job. ("Metrics" elsewhere in ripcord are the deployments'; these are
//! ripcord's about itself.)

use crate::model::verdict::Verdict;
use crate::record::effect::{Effect, GuardResult};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// The CloudWatch namespace of the EMF metrics.
pub const NAMESPACE: &str = "Ripcord";

/// What one guard's cycle contributes.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardSample {
    pub guard: String,
    pub verdict: Verdict,
    pub rolled_back: bool,
    pub change_failed: bool,
    /// The guard could not be served as configured (a broken policy or field): its deployment is unprotected.
    pub guard_error: bool,
    /// In the clock's time (virtual with the simulator).
    pub verdict_to_pin_ms: Option<i64>,
}

impl GuardSample {
    pub fn of(result: &GuardResult) -> Self {
        let guard_error = result.findings.contains(&crate::model::verdict::Finding::GuardError);
        Self {
            guard: result.guard.clone(),
            verdict: result.verdict,
            rolled_back: matches!(result.effect, Effect::RolledBack { .. }),
            change_failed: !guard_error && matches!(result.effect, Effect::Failed { .. } | Effect::Aborted { .. }),
            guard_error,
            verdict_to_pin_ms: match result.effect {
                Effect::RolledBack { verdict_to_pin_ms, .. } => Some(verdict_to_pin_ms),
                _ => None,
            },
        }
    }
}

/// One cycle: its guards and how long it took (real time).
#[derive(Debug, Clone, PartialEq)]
pub struct CycleSample {
    pub guards: Vec<GuardSample>,
    pub cycle_ms: u64,
}

impl CycleSample {
    pub fn of(results: &[GuardResult], cycle_ms: u64) -> Self {
        Self { guards: results.iter().map(GuardSample::of).collect(), cycle_ms }
    }

    /// One Embedded Metric Format object per guard: dimensions `Guard` and (`Guard`, `Verdict`), metrics
    /// `Cycles`, `Verdicts`, `Rollbacks`, `ChangeFailures` (counts), `CycleMs` and, after a pin, `VerdictToPinMs`.
    pub fn emf(&self, at_ms: i64) -> Vec<Value> {
        self.guards
            .iter()
            .map(|g| {
                let mut metrics = vec![
                    json!({"Name": "Cycles", "Unit": "Count"}),
                    json!({"Name": "Verdicts", "Unit": "Count"}),
                    json!({"Name": "Rollbacks", "Unit": "Count"}),
                    json!({"Name": "ChangeFailures", "Unit": "Count"}),
                    json!({"Name": "GuardErrors", "Unit": "Count"}),
                    json!({"Name": "CycleMs", "Unit": "Milliseconds"}),
                ];
                let mut line = json!({
                    "Guard": g.guard,
                    "Verdict": g.verdict.as_str(),
                    "Cycles": 1,
                    "Verdicts": 1,
                    "Rollbacks": u8::from(g.rolled_back),
                    "ChangeFailures": u8::from(g.change_failed),
                    "GuardErrors": u8::from(g.guard_error),
                    "CycleMs": self.cycle_ms,
                });
                if let Some(ms) = g.verdict_to_pin_ms {
                    metrics.push(json!({"Name": "VerdictToPinMs", "Unit": "Milliseconds"}));
                    line["VerdictToPinMs"] = json!(ms);
                }
                line["_aws"] = json!({
                    "Timestamp": at_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Guard"], ["Guard", "Verdict"]],
                        "Metrics": metrics,
                    }],
                });
                line
            })
            .collect()
    }

    /// One structured log event per guard (target `ripcord::metrics`), the fields a log-based metric reads.
    pub fn log(&self) {
        for g in &self.guards {
            tracing::info!(
                target: "ripcord::metrics",
                guard = %g.guard,
                verdict = g.verdict.as_str(),
                rollbacks = u8::from(g.rolled_back),
                change_failures = u8::from(g.change_failed),
                guard_errors = u8::from(g.guard_error),
                cycle_ms = self.cycle_ms,
                verdict_to_pin_ms = g.verdict_to_pin_ms,
                "guard cycle"
            );
        }
    }
}

/// Counters since the process started, for the Prometheus endpoint.
#[derive(Debug, Default)]
pub struct Registry {
    state: Mutex<Totals>,
}

#[derive(Debug, Default)]
struct Totals {
    cycles: u64,
    cycle_seconds: f64,
    last_cycle_unix_seconds: f64,
    guards: BTreeMap<String, GuardTotals>,
}

#[derive(Debug, Default)]
struct GuardTotals {
    cycles: u64,
    verdicts: BTreeMap<&'static str, u64>,
    rollbacks: u64,
    change_failures: u64,
    /// Whether the guard was in error (not served as configured) at its latest cycle.
    in_error: bool,
    pins: u64,
    verdict_to_pin_seconds: f64,
}

impl Registry {
    pub fn record(&self, cycle: &CycleSample, at_ms: i64) {
        let mut totals = self.state.lock().unwrap_or_else(|p| p.into_inner());
        totals.cycles += 1;
        totals.cycle_seconds += cycle.cycle_ms as f64 / 1000.0;
        totals.last_cycle_unix_seconds = at_ms as f64 / 1000.0;
        for g in &cycle.guards {
            let guard = totals.guards.entry(g.guard.clone()).or_default();
            guard.cycles += 1;
            *guard.verdicts.entry(g.verdict.as_str()).or_default() += 1;
            guard.rollbacks += u64::from(g.rolled_back);
            guard.change_failures += u64::from(g.change_failed);
            guard.in_error = g.guard_error;
            if let Some(ms) = g.verdict_to_pin_ms {
                guard.pins += 1;
                guard.verdict_to_pin_seconds += ms as f64 / 1000.0;
            }
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let totals = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        // Samples per guard: `f` gives (suffix, extra labels, value) for a guard.
        type Sample = (&'static str, String, String);
        let each_guard = |f: &dyn Fn(&GuardTotals) -> Vec<Sample>| -> Vec<(String, String)> {
            let samples = totals.guards.iter().flat_map(|(name, g)| {
                f(g).into_iter().map(move |(suffix, extra, value)| {
                    (format!("{suffix}{{guard=\"{}\"{extra}}}", escape(name)), value)
                })
            });
            samples.collect()
        };
        let per_guard = |f: &dyn Fn(&GuardTotals) -> u64| each_guard(&|g| vec![("", String::new(), f(g).to_string())]);
        family("ripcord_cycles_total", "counter", "Cycles run.", vec![(String::new(), totals.cycles.to_string())]);
        family(
            "ripcord_cycle_duration_seconds",
            "summary",
            "Real time of a cycle over the guards.",
            vec![("_sum".into(), totals.cycle_seconds.to_string()), ("_count".into(), totals.cycles.to_string())],
        );
        family(
            "ripcord_last_cycle_timestamp_seconds",
            "gauge",
            "When the last cycle ran (the clock's time, seconds since the epoch).",
            vec![(String::new(), totals.last_cycle_unix_seconds.to_string())],
        );
        family("ripcord_guard_cycles_total", "counter", "Cycles that judged the guard.", per_guard(&|g| g.cycles));
        let verdicts = each_guard(&|g| {
            g.verdicts.iter().map(|(verdict, n)| ("", format!(",verdict=\"{verdict}\""), n.to_string())).collect()
        });
        family("ripcord_verdicts_total", "counter", "Verdicts by kind.", verdicts);
        family("ripcord_rollbacks_total", "counter", "Rollbacks pinned and verified.", per_guard(&|g| g.rollbacks));
        family(
            "ripcord_change_failures_total",
            "counter",
            "Changes that failed or were aborted.",
            per_guard(&|g| g.change_failures),
        );
        family(
            "ripcord_guard_error",
            "gauge",
            "1 while the guard cannot be served as configured (a broken policy or field): its deployment is unprotected.",
            per_guard(&|g| u64::from(g.in_error)),
        );
        let pins = each_guard(&|g| {
            vec![
                ("_sum", String::new(), g.verdict_to_pin_seconds.to_string()),
                ("_count", String::new(), g.pins.to_string()),
            ]
        });
        family("ripcord_verdict_to_pin_seconds", "summary", "From a rollback verdict to the verified pin.", pins);
        out
    }
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Serves `registry` as `GET /metrics` on `listener` until the process ends (one small HTTP/1.1 answer per
/// connection; anything else is a 404).
pub async fn serve(listener: tokio::net::TcpListener, registry: std::sync::Arc<Registry>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { continue };
        let registry = registry.clone();
        tokio::spawn(async move {
            // The request head may come in pieces: read until its blank line (4 KiB and 5 s at most).
            let mut request = Vec::with_capacity(1024);
            let head = async {
                let mut chunk = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 4096 {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
            };
            if tokio::time::timeout(std::time::Duration::from_secs(5), head).await.is_err() {
                return;
            }
            let line = String::from_utf8_lossy(&request);
            let (status, content_type, body) = if line.starts_with("GET /metrics ") || line.starts_with("GET /metrics?")
            {
                ("200 OK", "text/plain; version=0.0.4; charset=utf-8", registry.prometheus())
            } else {
                ("404 Not Found", "text/plain; charset=utf-8", "ripcord serves GET /metrics only\n".to_string())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CycleSample {
        CycleSample {
            guards: vec![
                GuardSample {
                    guard: "checkout".into(),
                    verdict: Verdict::Rollback,
                    rolled_back: true,
                    change_failed: false,
                    guard_error: false,
                    verdict_to_pin_ms: Some(30_000),
                },
                GuardSample {
                    guard: "search \"eu\"".into(),
                    verdict: Verdict::Promote,
                    rolled_back: false,
                    change_failed: false,
                    guard_error: true,
                    verdict_to_pin_ms: None,
                },
            ],
            cycle_ms: 250,
        }
    }

    #[test]
    fn emf_declares_every_metric_it_carries_under_the_guard_dimensions() {
        let lines = sample().emf(1_000);
        assert_eq!(lines.len(), 2);
        for line in &lines {
            let declared = &line["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(declared["Namespace"], NAMESPACE);
            for dimension in
                declared["Dimensions"].as_array().into_iter().flatten().flat_map(|d| d.as_array()).flatten()
            {
                assert!(line[dimension.as_str().unwrap_or_default()].is_string(), "{line}");
            }
            for metric in declared["Metrics"].as_array().into_iter().flatten() {
                assert!(line[metric["Name"].as_str().unwrap_or_default()].is_number(), "{line}");
            }
        }
        assert_eq!(lines[0]["VerdictToPinMs"], 30_000);
        assert!(lines[1].get("VerdictToPinMs").is_none());
    }

    #[test]
    fn prometheus_counts_accumulate_over_cycles_with_escaped_labels() {
        let registry = Registry::default();
        registry.record(&sample(), 1_000);
        registry.record(&sample(), 61_000);
        let text = registry.prometheus();
        assert!(text.contains("ripcord_cycles_total 2\n"), "{text}");
        assert!(text.contains("ripcord_verdicts_total{guard=\"checkout\",verdict=\"rollback\"} 2\n"), "{text}");
        assert!(text.contains("ripcord_rollbacks_total{guard=\"search \\\"eu\\\"\"} 0\n"), "{text}");
        assert!(text.contains("ripcord_verdict_to_pin_seconds_sum{guard=\"checkout\"} 60\n"), "{text}");
        assert!(text.contains("ripcord_last_cycle_timestamp_seconds 61\n"), "{text}");
    }
}

//! ripcord's own metrics, read back the way their consumers read them: the Embedded Metric Format lines of
//! `ripcord function` as CloudWatch parses them (every declared metric present, numeric, under declared
//! dimensions), `watch --metrics-addr` scraped and parsed by the Prometheus project's own text-format parser
//! (prometheus_client, in the test venv), and the structured log fields of a `check`.

use crate::function::{Function, scheduled_event};
use crate::support::{SimHarness, V2_FAILS, lambda_scenario, stderr, venv_python};
use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CANARY: &str = "version = 1\nrouting = { version = 2, weight = 0.1 }";
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;

fn failing_canary() -> SimHarness {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h
}

/// Checks an EMF object as CloudWatch does: a namespace, dimension sets naming present string properties,
/// metrics naming present numeric ones.
fn valid_emf(line: &Value) -> Result<(), String> {
    let directive = &line["_aws"]["CloudWatchMetrics"][0];
    if directive["Namespace"] != "Ripcord" || !line["_aws"]["Timestamp"].is_i64() {
        return Err(format!("no namespace or timestamp: {line}"));
    }
    for set in directive["Dimensions"].as_array().ok_or("no dimensions")? {
        for name in set.as_array().ok_or("a dimension set is not a list")? {
            let name = name.as_str().ok_or("a dimension is not a name")?;
            if !line[name].is_string() {
                return Err(format!("dimension {name} is not a string property: {line}"));
            }
        }
    }
    for metric in directive["Metrics"].as_array().ok_or("no metrics")? {
        let name = metric["Name"].as_str().ok_or("a metric without a name")?;
        if !line[name].is_number() {
            return Err(format!("metric {name} is not a number: {line}"));
        }
    }
    Ok(())
}

#[test]
fn function_mode_prints_embedded_metric_format_lines_lambda_turns_into_metrics() {
    let h = failing_canary();
    h.guards("prewarm = \"on-rollback\"\n");
    let mut function = Function::start(&h);
    assert!(function.invoke(scheduled_event()).ok);
    assert!(function.invoke(scheduled_event()).ok);
    let printed = function.printed();
    let lines: Vec<Value> =
        printed.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert_eq!(lines.len(), 2, "one line per guard per cycle:\n{printed}");
    for line in &lines {
        valid_emf(line).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(line["Guard"], "checkout-api");
    }
    // The first cycle rolled back (after a 30 s prewarm), the second found v1 alone and promoted.
    assert_eq!((lines[0]["Verdict"].as_str(), lines[0]["Rollbacks"].as_i64()), (Some("rollback"), Some(1)));
    assert_eq!(lines[0]["VerdictToPinMs"], 30_000);
    assert_eq!((lines[1]["Verdict"].as_str(), lines[1]["Rollbacks"].as_i64()), (Some("promote"), Some(0)));
    assert!(lines[1].get("VerdictToPinMs").is_none());
    // The same counts as log fields.
    let logs = function.logs();
    let fields: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "ripcord::metrics")
        .collect();
    assert_eq!(fields.len(), 2, "{logs}");
    assert_eq!((fields[0]["guard"].as_str(), fields[0]["rollbacks"].as_i64()), (Some("checkout-api"), Some(1)));
}

#[test]
fn a_check_logs_its_counts_as_structured_fields_for_log_based_metrics() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"\n");
    let output = Command::new(env!("CARGO_BIN_EXE_ripcord"))
        .args(["check", "--config"])
        .arg(h.dir.path().join("guards.toml"))
        // As in a Cloud Run Job: JSON logs by default.
        .env("CLOUD_RUN_JOB", "ripcord")
        .env("RIPCORD_CACHE_DIR", h.dir.path().join("cache"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let logs = stderr(&output);
    let line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["target"] == "ripcord::metrics")
        .unwrap_or_else(|| panic!("no ripcord::metrics event: {logs}"));
    assert_eq!(line["verdict"], "rollback", "{line}");
    assert_eq!(line["rollbacks"], 1, "{line}");
    assert!(line["cycle_ms"].is_u64() && line["severity"] == "INFO", "{line}");
}

/// Parses Prometheus text with prometheus_client's parser: {sample name + labels: value}; None when the venv
/// lacks it and the run does not require it.
fn parse_prometheus(text: &str) -> Option<std::collections::BTreeMap<String, f64>> {
    let python = venv_python("prometheus_client", "the Prometheus parse")?;
    let script = "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families\nout = {}\nfor family in text_string_to_metric_families(sys.stdin.read()):\n    for s in family.samples:\n        labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n        out[f'{s.name}{{{labels}}}'] = s.value\nprint(json.dumps(out))\n";
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    child.stdin.take().map(|mut stdin| stdin.write_all(text.as_bytes())).transpose().unwrap_or_else(|e| panic!("{e}"));
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(output.status.success(), "the parser refused it: {}\n{text}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}")))
}

fn get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    // In pieces, as a slow client sends it: the server must wait for the whole head.
    for piece in ["GET ", path, " HTTP/1.1\r\n", &format!("host: {addr}\r\n"), "\r\n"] {
        stream.write_all(piece.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        stream.flush().unwrap_or_else(|e| panic!("{e}"));
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap_or_else(|e| panic!("{e}"));
    answer
}

#[test]
fn watch_serves_prometheus_metrics_that_the_prometheus_parser_reads() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"\ninterval = \"1m\"\n");
    let mut watch = Command::new(env!("CARGO_BIN_EXE_ripcord"))
        .args(["watch", "--metrics-addr", "127.0.0.1:0", "--config"])
        .arg(h.dir.path().join("guards.toml"))
        .env("RIPCORD_CACHE_DIR", h.dir.path().join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = watch.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let mut lines = std::io::BufReader::new(stderr).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("ripcord metrics at http://").and_then(|a| a.strip_suffix("/metrics")).map(String::from)
        })
        .unwrap_or_else(|| panic!("watch did not say where its metrics are"));
    // Keep reading its log so a full pipe never stalls it.
    std::thread::spawn(move || lines.for_each(drop));
    // Virtual time: watch runs cycle after cycle; scrape once the rollback and a later cycle were counted.
    let started = Instant::now();
    let body = loop {
        let answer = get(&addr, "/metrics");
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        if body.contains("verdict=\"promote\"") && body.contains("verdict=\"rollback\"") {
            assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("text/plain; version=0.0.4"), "{answer}");
            break body;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no rollback and promote counted: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(get(&addr, "/").starts_with("HTTP/1.1 404"));
    let _ = watch.kill();
    let _ = watch.wait();
    let Some(samples) = parse_prometheus(&body) else { return };
    let value = |name: &str| samples.get(name).copied().unwrap_or_else(|| panic!("no {name} in {samples:?}"));
    assert_eq!(value("ripcord_rollbacks_total{guard=checkout-api}"), 1.0);
    assert_eq!(value("ripcord_verdicts_total{guard=checkout-api,verdict=rollback}"), 1.0);
    assert!(value("ripcord_verdicts_total{guard=checkout-api,verdict=promote}") >= 1.0);
    assert!(value("ripcord_cycles_total{}") >= 2.0);
    assert_eq!(value("ripcord_change_failures_total{guard=checkout-api}"), 0.0);
    assert!(value("ripcord_cycle_duration_seconds_count{}") >= 2.0);
    assert_eq!(value("ripcord_verdict_to_pin_seconds_count{guard=checkout-api}"), 1.0);
}

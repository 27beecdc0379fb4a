//! The audit log as disks and networks leave it: a torn last line, bytes that are not UTF-8, a webhook that never
//! answers, a cycle that could not read its metrics, changes whose answer was lost — each handled without losing a
//! record, delaying a pin, or reporting a change that took effect as failed.

use crate::support::{
    BBB_FAILS, RUN_CANARY, RUN_KNOWN_GOOD, SimHarness, V2_FAILS, lambda_scenario, run_scenario, stderr, stdout,
};
use ripcord::record::audit::Kind;
use std::io::{Read, Write};

const CANARY: &str = "version = 1\nrouting = { version = 2, weight = 0.1 }";
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;

fn failing_canary() -> SimHarness {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h
}

fn audit_path(h: &SimHarness) -> std::path::PathBuf {
    h.dir.path().join("audit.jsonl")
}

#[test]
fn a_torn_last_line_does_not_swallow_the_next_record() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    // A rollback killed before its answer, then the machine lost the end of the last line (power loss).
    h.kill_check_during("UpdateAlias");
    let mut text = std::fs::read(audit_path(&h)).unwrap_or_default();
    assert_eq!(text.pop(), Some(b'\n'));
    text.truncate(text.len() - 20);
    std::fs::write(audit_path(&h), &text).unwrap_or_else(|e| panic!("{e}"));
    // The torn intent is lost; what the next run writes must not be: its records parse, and the log is whole.
    h.sim.advance(60_000);
    let output = h.ripcord(&["check"]);
    assert!(output.status.code().is_some(), "{}", stderr(&output));
    let log = ripcord::record::audit::Audit::load(&audit_path(&h)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(log.damaged.len(), 1, "only the torn line is damaged: {:?}", log.damaged);
    let last = log.records.last().unwrap_or_else(|| panic!("no record"));
    assert_eq!(last.record, Kind::Decision, "the new cycle's decision, on a line of its own");
    let status = h.ripcord(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert!(stderr(&status).contains("skipped 1 damaged line"), "{}", stderr(&status));
}

#[test]
fn bytes_that_are_not_utf8_do_not_stop_status_or_report() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(2));
    let mut file = std::fs::OpenOptions::new().append(true).open(audit_path(&h)).unwrap_or_else(|e| panic!("{e}"));
    file.write_all(b"\xff\xfe\x00 not a record \x80\n").unwrap_or_else(|e| panic!("{e}"));
    drop(file);
    let status = h.ripcord(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert!(stdout(&status).contains("rollback"), "the last verdict is still read: {}", stdout(&status));
    assert!(stderr(&status).contains("skipped 1 damaged line (not an audit record; first at line 4)"));
    let page = h.dir.path().join("report.html").display().to_string();
    let report = h.ripcord(&["report", "--out", &page]);
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    let html = std::fs::read_to_string(&page).unwrap_or_default();
    assert!(html.contains("checkout-api"), "{html}");
}

/// A webhook that accepts the connection and never answers. The server holds the first request (the intent) and
/// watches the simulator: the pin must land while the intent is still held. Were delivery on the rollback's path,
/// ripcord would give up on the request first (its post timeout) and pin only after.
#[test]
fn a_webhook_that_never_answers_does_not_delay_the_pin() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let sim = h.sim.clone();
    let held = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap_or_else(|e| panic!("{e}"));
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        stream.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
        loop {
            if sim.api_log().iter().any(|c| c.operation == "UpdateAlias") {
                return true;
            }
            match stream.read(&mut request) {
                Ok(0) => return false, // ripcord gave up on the request before pinning
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    let path = h.dir.path().join("guards.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .replace("[settings]\n", &format!("[settings]\nwebhook = \"http://127.0.0.1:{port}/hook\"\n"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert!(held.join().unwrap_or(false), "the pin waited for the webhook");
    assert_eq!(h.alias(), (1, None));
    assert!(stderr(&output).contains("webhook"), "the undelivered notifications are logged: {}", stderr(&output));
}

#[test]
fn a_cycle_that_cannot_read_its_metrics_still_writes_a_decision() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let error = ripcord_sim::ApiError::new(400, "InvalidParameterValue", "no such metric, on purpose");
    h.sim.inject_api_fault("GetMetricData", 1, error);
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let audit = h.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    let decision = &audit[0];
    assert_eq!((decision.record, decision.verdict), (Kind::Decision, ripcord::model::verdict::Verdict::Inconclusive));
    let error = decision.error.clone().unwrap_or_default();
    assert!(error.contains("InvalidParameterValue: no such metric, on purpose (HTTP 400)"), "{error}");
    assert!(decision.deployment.is_some(), "the deployment as read is recorded");
    assert!(decision.timings.cycle_real_ms.is_some());
}

#[test]
fn every_decision_record_carries_the_cycles_wall_time() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(2));
    let decision = h.audit().into_iter().find(|r| r.record == Kind::Decision).unwrap_or_else(|| panic!("none"));
    assert!(decision.timings.cycle_real_ms.is_some(), "{decision:?}");
}

#[test]
fn an_alias_update_whose_answer_is_lost_is_reported_as_the_platform_shows_it() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    // The update applies, its answer comes after the SDK's 10 s attempt timeout.
    h.sim.inject_api_stall("UpdateAlias", 1, 12_000);
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert_eq!(h.alias(), (1, None));
    let result = h.audit().into_iter().rfind(|r| r.record == Kind::Result).unwrap_or_else(|| panic!("no result"));
    assert_eq!(result.outcome.map(|o| o.to_string()).as_deref(), Some("pinned"), "{result:?}");
    assert!(h.tags().contains_key("ripcord:rolled-back-at:live"), "the cooldown marker: {:?}", h.tags());
}

#[test]
fn a_traffic_update_whose_answer_is_lost_is_reported_as_the_platform_shows_it() {
    let h = SimHarness::start(&run_scenario(RUN_CANARY, RUN_KNOWN_GOOD, BBB_FAILS));
    h.sim.advance(5 * 60_000);
    h.cloud_run_guards("prewarm = \"off\"", "");
    // The traffic PATCH applies; following its operation fails.
    let error = ripcord_sim::ApiError::new(400, "FAILED_PRECONDITION", "the operation's answer was lost, on purpose");
    h.sim.inject_api_fault("GetOperation", 1, error);
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    let result = h.audit().into_iter().rfind(|r| r.record == Kind::Result).unwrap_or_else(|| panic!("no result"));
    assert_eq!(result.outcome.map(|o| o.to_string()).as_deref(), Some("pinned"), "{result:?}");
    let split = h.split("search");
    assert!(split.iter().all(|(revision, percent, _)| *percent == 0 || revision == "search-00001-aaa"), "{split:?}");
}

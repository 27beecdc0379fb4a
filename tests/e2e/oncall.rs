//! The commands as on-call engineers and CI gates use them: `watch`'s exit code and schedule, `pull` right after a
//! rollback, to what already serves, in dry-run and for a guard that does not exist, `status` and `report` on
//! what is there, and output no plugin or cloud can forge.

use crate::support::{SimHarness, V2_FAILS, guest, lambda_scenario, stderr, stdout};
use ripcord::record::audit::Kind;

const CANARY: &str = "version = 1\nrouting = { version = 2, weight = 0.1 }";
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;

fn failing_canary() -> SimHarness {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h
}

/// Writes guards.toml with the simulator's endpoint and clock and the given `[[guard]]` tables.
fn write_guards(h: &SimHarness, guards: &str) {
    let text = format!(
        "[settings]\naudit_log = \"audit.jsonl\"\nclock = \"simulator\"\n[aws]\nendpoint_url = \"{}\"\n[defaults]\nwindow = \"1m\"\nwindows = 3\nprewarm = \"off\"\n{guards}",
        h.server.endpoint()
    );
    std::fs::write(h.dir.path().join("guards.toml"), text).unwrap_or_else(|e| panic!("{e}"));
}

fn decisions(h: &SimHarness, guard: &str) -> usize {
    h.audit().iter().filter(|r| r.guard == guard && r.record == Kind::Decision).count()
}

#[test]
fn watch_exits_with_the_worst_code_of_all_its_cycles() {
    // Cycle 1 rolls the canary back; the later cycles see v1 alone and promote. The gate must still fail.
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let output = h.ripcord(&["watch", "--cycles", "3"]);
    let text = stdout(&output);
    assert!(text.contains("ROLLED BACK to v1") && text.contains("promote"), "{text}");
    assert_eq!(output.status.code(), Some(2), "a rollback in any cycle fails the gate:\n{text}");
}

#[test]
fn watch_is_not_failed_by_the_cycles_before_a_canarys_evidence() {
    // Watched from its deploy, a healthy canary is inconclusive until it has served enough, then promote: the
    // watch ends with every guard judged and exits 0; a watch that ends before that exits 3.
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""));
    h.guards("prewarm = \"off\"");
    let short = h.ripcord(&["watch", "--cycles", "1"]);
    assert!(stdout(&short).contains("inconclusive"), "{}", stdout(&short));
    assert_eq!(short.status.code(), Some(3), "{}", stdout(&short));
    let output = h.ripcord(&["watch", "--cycles", "8"]);
    let text = stdout(&output);
    let verdicts: Vec<&str> =
        text.lines().filter(|l| l.starts_with("checkout-api")).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(verdicts.last(), Some(&"promote"), "{text}");
    assert_eq!(output.status.code(), Some(0), "{text}");
}

#[test]
fn watch_judges_each_guard_on_its_own_interval() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""));
    h.sim.advance(5 * 60_000);
    let guard = |name: &str, interval: &str| {
        format!(
            "[[guard]]\nname = \"{name}\"\nplatform = \"aws-lambda\"\nfunction = \"checkout\"\nalias = \"live\"\ninterval = \"{interval}\"\npolicies = [{{ use = \"builtin:error-rate\" }}]\n"
        )
    };
    write_guards(&h, &[guard("every-minute", "1m"), guard("every-ten", "10m")].concat());
    let output = h.ripcord(&["watch", "--cycles", "12"]);
    assert!(output.status.code().is_some(), "{}", stderr(&output));
    assert_eq!(decisions(&h, "every-minute"), 12, "{}", stdout(&output));
    assert_eq!(decisions(&h, "every-ten"), 2, "judged at 0 and at 10 minutes only:\n{}", stdout(&output));
}

#[test]
fn pull_right_after_a_rollback_finds_the_known_good_already_serving() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(2));
    let changes = h.mutations().len();
    let tags = h.tags();
    let output = h.ripcord(&["pull", "checkout-api"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("already pinned to v1"), "{}", stdout(&output));
    assert!(stdout(&output).contains("1 already serves all traffic; nothing changed"), "{}", stdout(&output));
    assert_eq!(h.mutations().len(), changes, "nothing changed: {:?}", h.mutations());
    assert_eq!(h.tags(), tags, "the cooldown is not restarted");
    let status = stdout(&h.ripcord(&["status"]));
    assert!(status.contains("rollback"), "status shows the pull as the last verdict: {status}");
}

#[test]
fn a_pull_from_the_command_line_names_the_user_and_the_reason() {
    let h = failing_canary();
    let config = h.guards("prewarm = \"off\"");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ripcord"))
        .args(["pull", "checkout-api", "--reason", "paged: checkout 5xx", "--config"])
        .arg(&config)
        .env("RIPCORD_CACHE_DIR", h.dir.path().join("cache"))
        .env("USER", "alice")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let records = h.audit();
    assert!(records.len() >= 3, "decision, intent, result: {records:?}");
    assert!(records.iter().all(|r| r.by.as_deref() == Some("local:alice")), "{records:?}");
    assert!(
        records[0].reason.contains("manual pull to 1 by local:alice (paged: checkout 5xx)"),
        "{}",
        records[0].reason
    );
}

#[test]
fn pull_to_the_version_that_already_serves_changes_nothing() {
    let h = SimHarness::start(&lambda_scenario("version = 3", KNOWN_GOOD_1, ""));
    h.sim.advance(60_000);
    h.guards("prewarm = \"on-rollback\"");
    let output = h.ripcord(&["pull", "checkout-api", "--to", "3"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("already pinned to v3"), "{}", stdout(&output));
    assert_eq!(h.mutations(), Vec::<String>::new());
    let kinds: Vec<Kind> = h.audit().iter().map(|r| r.record).collect();
    assert_eq!(kinds, [Kind::Decision], "a decision, and no change to audit");
}

#[test]
fn pull_dry_run_says_what_it_would_do_and_does_nothing() {
    let h = failing_canary();
    h.guards("prewarm = \"on-rollback\"");
    let output = h.ripcord(&["pull", "checkout-api", "--dry-run"]);
    assert_eq!(output.status.code(), Some(2), "a rollback reported only: {}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains("dry-run: would warm 1, then pin it (from 1 at 90%, 2 at 10%); nothing changed"), "{text}");
    assert_eq!(h.mutations(), Vec::<String>::new());
    assert_eq!(h.alias(), (1, Some((2, 0.1))));
}

#[test]
fn pull_of_a_guard_that_does_not_exist_is_an_error_not_a_verdict() {
    let h = failing_canary();
    h.guards("");
    let output = h.ripcord(&["pull", "no-such-guard"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty(), "no verdict printed: {}", stdout(&output));
    assert!(stderr(&output).contains("no guard named \"no-such-guard\""), "{}", stderr(&output));
    assert!(stderr(&output).contains("(guards: checkout-api)"), "{}", stderr(&output));
}

#[test]
fn status_reads_the_platform_and_the_log_without_loading_any_policy() {
    let h = failing_canary();
    h.guards("");
    // A policy that cannot load: every guard command refuses the configuration; status does not need it.
    let path = h.dir.path().join("guards.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_default().replace("builtin:error-rate", "missing.wasm");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let status = h.ripcord(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert!(stdout(&status).contains("v1 90% / v2 10%"), "{}", stdout(&status));
    assert!(!h.dir.path().join("cache").exists(), "status compiled a policy");
    assert!(!h.dir.path().join("audit.jsonl").exists(), "status wrote to the audit log");
    let check = h.ripcord(&["check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(stderr(&check).contains("guard[0].policies[0].use: guard \"checkout-api\""), "{}", stderr(&check));
}

#[test]
fn report_of_a_missing_audit_log_is_an_error() {
    let h = failing_canary();
    let missing = h.dir.path().join("nothing-here.jsonl").display().to_string();
    let output = h.ripcord(&["report", "--audit", &missing]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot read the audit log") && stderr(&output).contains(&missing));
    assert!(stdout(&output).is_empty());
}

#[test]
fn plugin_text_cannot_forge_the_terminal() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""));
    h.sim.advance(5 * 60_000);
    let hostile = guest("hostile").display().to_string();
    write_guards(
        &h,
        &format!(
            "[[guard]]\nname = \"forger\"\nplatform = \"aws-lambda\"\nfunction = \"checkout\"\nalias = \"live\"\npolicies = [{{ use = {hostile:?}, params = {{ behaviour = \"forge-output\" }} }}]\n"
        ),
    );
    let output = h.ripcord(&["check"]);
    let text = stdout(&output);
    assert!(!text.contains('\u{1b}') && !text.contains('\u{0}') && !text.contains('\u{202e}'), "{text:?}");
    assert!(!text.contains('\r'), "{text:?}");
    assert_eq!(text.lines().count(), 2, "one guard, two lines: {text}");
    assert!(text.contains("\\u{1b}[2J\\u{1b}[Hchecked\\r\\nchecked: ROLLED BACK\\u{0}\\u{202e}"), "{text}");
}

#[test]
fn an_unreachable_endpoint_is_one_readable_line() {
    let h = failing_canary();
    h.guards("");
    // Nothing listens on the port of a listener just closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
    let port = port.unwrap_or_else(|e| panic!("{e}"));
    let path = h.dir.path().join("guards.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .replace(&h.server.endpoint(), &format!("http://127.0.0.1:{port}"))
        .replace("clock = \"simulator\"\n", "");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert_eq!(text.matches("cannot reach the endpoint").count(), 1, "said once: {text}");
    assert!(text.contains("GetAlias on checkout:live: cannot reach the endpoint: Connection refused"), "{text}");
    assert!(text.len() < 400, "a line, not an SDK dump: {text}");
}

/// The numbers behind a verdict, wherever it is shown: the text names each failing check with observed against
/// threshold; `check --json` carries every policy's checks and the cycle's time; `watch --json` each cycle's time;
/// `status --json` what the table shows.
#[test]
fn every_verdict_shown_carries_its_numbers_and_its_time() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let text = stdout(&h.ripcord(&["check", "--dry-run"]));
    let failing = text.lines().find(|l| l.trim_start().starts_with("failing:")).unwrap_or_else(|| panic!("{text}"));
    // v2 fails at 30% errors against the 1% limit: the observed rate in percent, above the threshold.
    let (observed, threshold) = failing
        .split("error_rate ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|c| c.split_once(" > "))
        .unwrap_or_else(|| panic!("no error_rate check in {failing:?}"));
    let percent = |s: &str| s.trim().trim_end_matches('%').parse::<f64>().unwrap_or_else(|e| panic!("{s:?}: {e}"));
    assert!(percent(observed) > 10.0 && percent(threshold) <= 2.0, "{failing}");

    let check = h.ripcord(&["check", "--dry-run", "--json"]);
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
    let json: serde_json::Value = serde_json::from_str(stdout(&check).trim()).unwrap_or_else(|e| panic!("{e}"));
    let now = ripcord::model::time::format_timestamp(h.sim.now_ms());
    assert_eq!(json["at"], now.as_str(), "{json}");
    let guard = &json["guards"][0];
    assert_eq!(guard["at"], now.as_str());
    let checks = guard["policies"][0]["checks"].as_array().unwrap_or_else(|| panic!("no checks: {guard}"));
    let rate = checks.iter().find(|c| c["name"] == "error_rate").unwrap_or_else(|| panic!("{guard}"));
    assert!(rate["observed"].as_f64() > Some(0.1) && rate["passed"] == false, "{rate}");
    assert_eq!(guard["policies"][0]["plugin"], "builtin:error-rate");

    let watch = stdout(&h.ripcord(&["watch", "--dry-run", "--json", "--cycles", "2"]));
    let cycles: Vec<serde_json::Value> = watch.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(cycles.len(), 2, "{watch}");
    assert!(cycles.iter().all(|c| c["at"].is_string() && c["guards"][0]["at"] == c["at"]), "{watch}");
    assert!(cycles[0]["at"].as_str() < cycles[1]["at"].as_str(), "the second cycle is later: {watch}");

    let status = h.ripcord(&["status", "--json"]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let status = crate::support::stdout_json(&status);
    let row = &status["guards"][0];
    assert_eq!(
        (row["guard"].as_str(), row["primary"].as_str(), row["candidate"].as_str()),
        (Some("checkout-api"), Some("1"), Some("2"))
    );
    assert_eq!(row["known_good"], "1");
    assert_eq!(row["last_decision"]["verdict"], "rollback", "{row}");
    assert!(row["last_decision"]["at"].is_string() && status["at"].is_string(), "{status}");
}

/// The data a report draws: each decision record carries, per window, what baseline and candidate did — the
/// same numbers the simulator served (counted here from its own request log, not from CloudWatch).
#[test]
fn a_decision_record_carries_per_window_summaries_of_baseline_and_candidate() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    assert_eq!(h.ripcord(&["check", "--dry-run"]).status.code(), Some(2));
    let decision = h.audit().into_iter().find(|r| r.record == Kind::Decision).unwrap_or_else(|| panic!("no decision"));
    let windows = decision.evidence.as_ref().map(|e| e.windows.clone()).unwrap_or_default();
    assert!(!windows.is_empty() && windows.len() <= ripcord::record::audit::MAX_WINDOW_SUMMARIES, "{windows:?}");
    let mut compared = 0;
    for window in &windows {
        let ms = |t: &str| ripcord::model::time::timestamp(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        let served = h.sim.requests("checkout", ms(&window.start), ms(&window.end));
        for (version, summary) in [(1, &window.baseline), (2, &window.candidate)] {
            let Some(summary) = summary else { continue };
            let mine: Vec<_> = served.iter().filter(|r| r.version == version && !r.throttled).collect();
            let errors = mine.iter().filter(|r| r.error).count() as f64;
            assert_eq!(summary.requests, Some(mine.len() as f64), "v{version} in {window:?}");
            assert_eq!(summary.errors, Some(errors), "v{version} in {window:?}");
            let rate = summary.error_rate.unwrap_or(f64::NAN);
            assert!((rate - errors / mine.len() as f64).abs() < 1e-12, "{summary:?}");
            assert!(
                summary.latency_p99.is_some_and(|p99| p99 >= summary.latency_p50.unwrap_or(f64::INFINITY)),
                "{summary:?}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 2, "baseline and candidate compared: {windows:?}");
    let last = windows.last().and_then(|w| w.candidate.as_ref()).and_then(|c| c.error_rate).unwrap_or(0.0);
    assert!(last > 0.1, "the failing canary's last window shows its error rate: {windows:?}");
}

/// `ripcord watch --cycles 30 | head -1`: the reader goes away after one line; ripcord ends quietly between
/// cycles (no panic, no "Broken pipe" error, the exit code of what it did), as Unix tools do — and never mid-change:
/// the failing canary's rollback of the first cycle is recorded whole.
#[test]
fn a_closed_pipe_ends_watch_quietly_between_cycles() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let config = h.dir.path().join("guards.toml").display().to_string();
    for json in [false, true] {
        let mut args = vec!["watch", "--cycles", "30", "--config", config.as_str()];
        if json {
            args.push("--json");
        }
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ripcord"))
            .args(&args)
            .env("RIPCORD_CACHE_DIR", h.dir.path().join("cache"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut first = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).unwrap_or_else(|e| panic!("{e}"));
        // The reader is dropped here: the pipe is closed, as `head -1` closes it.
        let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(!first.is_empty());
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "json={json}: {err}");
        assert!(matches!(output.status.code(), Some(0..=4)), "json={json}: {:?} {err}", output.status);
    }
    let audit = h.audit();
    let intents = audit.iter().filter(|r| r.record == Kind::Intent).count();
    let results = audit.iter().filter(|r| r.record == Kind::Result).count();
    assert_eq!(intents, results, "every change recorded whole: {audit:?}");
    assert_eq!(h.alias(), (1, None));
}

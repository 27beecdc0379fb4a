//! The `ripcord` binary against the simulator over HTTP, through the official AWS SDK clients: the rollback
//! path and every way it can go differently (healthy, dry-run, cooldown, a concurrent change, API failures).

use crate::support::{SimHarness, V2_FAILS, lambda_scenario, stderr, stdout, webhook_receiver};
use ripcord::record::audit::Kind;

const CANARY: &str = "version = 1\nrouting = { version = 2, weight = 0.1 }";
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;

fn failing_canary() -> SimHarness {
    let harness = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    harness.sim.advance(5 * 60_000);
    harness
}

#[test]
fn canary_error_spike_is_rolled_back_with_capacity_ready_before_the_pin() {
    let h = failing_canary();
    h.guards("prewarm = \"on-rollback\"");
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("ROLLED BACK to v1"), "{}", stdout(&output));
    assert_eq!(h.alias(), (1, None), "pinned to v1 with the routing cleared");

    // Order, from the simulator's request log: capacity requested, READY (30 virtual seconds), then the pin.
    let log = h.sim.api_log();
    let put = log
        .iter()
        .position(|c| c.operation == "PutProvisionedConcurrencyConfig")
        .unwrap_or_else(|| panic!("no prewarm: {log:?}"));
    let pin = log.iter().position(|c| c.operation == "UpdateAlias").unwrap_or_else(|| panic!("no pin: {log:?}"));
    assert!(put < pin, "prewarm after pin: {log:?}");
    assert!(log[put].detail.contains("Qualifier=1"), "{:?}", log[put]);
    assert!(log[pin].at_ms >= log[put].at_ms + 30_000, "pinned before the capacity was READY: {log:?}");
    assert!(
        log[put..pin]
            .iter()
            .any(|c| c.operation == "GetProvisionedConcurrencyConfig" && c.at_ms >= log[put].at_ms + 30_000)
    );
    assert!(log[pin].detail.contains("\"AdditionalVersionWeights\":{}"), "routing not cleared: {}", log[pin].detail);

    // Audit: a decision, an intent before the change, a result after verification, sharing one id.
    let audit = h.audit();
    let kinds: Vec<Kind> = audit.iter().map(|r| r.record).collect();
    assert_eq!(kinds, [Kind::Decision, Kind::Intent, Kind::Result]);
    assert_eq!(audit[1].id, audit[2].id);
    let result = &audit[2];
    assert_eq!(result.outcome.map(|o| o.to_string()).as_deref(), Some("pinned"));
    assert_eq!(result.target.as_deref(), Some("1"));
    assert!(result.prewarm.as_ref().is_some_and(|p| p.ready && p.created && p.requested >= 1));
    assert!(result.timings.verdict_to_pin_ms.is_some_and(|ms| ms >= 30_000));
    assert_eq!(result.policies[0].plugin, "builtin:error-rate");
    assert!(!result.policies[0].checks.is_empty());

    // Markers on the function: the rollback time (cooldown) and the capacity to release later.
    let tags = h.tags();
    assert!(tags.contains_key("ripcord:rolled-back-at:live"), "{tags:?}");
    assert!(tags.get("ripcord:prewarm:live").is_some_and(|v| v.starts_with("1@")), "{tags:?}");
}

#[test]
fn a_healthy_canary_changes_nothing() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""));
    h.sim.advance(5 * 60_000);
    h.guards("");
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(0), "{}\n{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("promote"), "{}", stdout(&output));
    // The only write is ripcord's own bookkeeping: the canary's first traffic, where its evidence starts.
    assert_eq!(h.mutations(), ["TagResource"]);
    assert!(h.tags().get("ripcord:rollout:live").is_some_and(|v| v.starts_with("2@")), "{:?}", h.tags());
    assert_eq!(h.alias(), (1, Some((2, 0.1))));
    let kinds: Vec<Kind> = h.audit().iter().map(|r| r.record).collect();
    assert_eq!(kinds, [Kind::Decision]);
}

#[test]
fn an_incident_after_full_promotion_rolls_back_to_the_last_known_good_warm() {
    // v2 took all traffic; v1 has been idle (its environments reaped) and is only known from the tag.
    let h = SimHarness::start(&lambda_scenario("version = 2", KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h.guards("prewarm = \"on-rollback\"");
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert_eq!(h.alias(), (1, None));
    let pinned_at = h.sim.now_ms();
    h.sim.advance(5 * 60_000);
    let cold = h.sim.requests("checkout", pinned_at, pinned_at + 5 * 60_000).iter().filter(|r| r.cold_start).count();
    assert_eq!(cold, 0, "prewarmed v1 must absorb the traffic without cold starts");

    // The same incident without prewarm: users hit cold starts on the idle v1.
    let cold_path = SimHarness::start(&lambda_scenario("version = 2", KNOWN_GOOD_1, V2_FAILS));
    cold_path.sim.advance(5 * 60_000);
    cold_path.guards("prewarm = \"off\"");
    assert_eq!(cold_path.ripcord(&["check"]).status.code(), Some(2));
    let pinned_at = cold_path.sim.now_ms();
    cold_path.sim.advance(5 * 60_000);
    let cold =
        cold_path.sim.requests("checkout", pinned_at, pinned_at + 5 * 60_000).iter().filter(|r| r.cold_start).count();
    assert!(cold >= 5, "expected cold starts without prewarm, got {cold}");
}

/// Just before ripcord's UpdateAlias, a deploy tool points `live` at v1 with `routing`: ripcord's RevisionId is stale.
fn move_alias_before_the_pin(h: &SimHarness, routing: (u32, f64)) {
    h.sim.interfere(ripcord_sim::Interference {
        operation: "UpdateAlias".into(),
        function: "checkout".into(),
        alias: "live".into(),
        version: 1,
        routing: Some(routing),
    });
}

#[test]
fn a_concurrent_alias_change_is_re_read_and_the_rollback_still_lands() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    // Just before ripcord's UpdateAlias, a deploy tool moves the canary to 20%: ripcord's RevisionId is stale.
    move_alias_before_the_pin(&h, (2, 0.2));
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    let statuses: Vec<u16> =
        h.sim.api_log().iter().filter(|c| c.operation == "UpdateAlias").map(|c| c.status).collect();
    assert_eq!(statuses, [412, 200], "stale RevisionId refused, then pinned after a re-read");
    assert_eq!(h.alias(), (1, None));
    let reads = h.operations().iter().filter(|o| *o == "GetAlias").count();
    assert!(reads >= 3, "read, re-read after the conflict, verify: {:?}", h.operations());
    assert_eq!(h.audit().last().and_then(|r| r.outcome.map(|o| o.to_string())).as_deref(), Some("pinned"));
}

#[test]
fn a_new_deploy_during_the_rollback_is_not_overridden() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    // Someone deploys v3 as the canary while ripcord acts on its verdict about v2.
    move_alias_before_the_pin(&h, (3, 0.1));
    let output = h.ripcord(&["check"]);
    assert!(stdout(&output).contains("ABORTED"), "{}", stdout(&output));
    assert_eq!(h.alias(), (1, Some((3, 0.1))), "the new deploy stays");
    let result =
        h.audit().into_iter().rfind(|r| r.record == Kind::Result).unwrap_or_else(|| panic!("no result record"));
    assert_eq!(result.outcome.map(|o| o.to_string()).as_deref(), Some("aborted"));
    assert!(result.error.as_deref().is_some_and(|e| e.contains("candidate 3")), "{:?}", result.error);
}

#[test]
fn dry_run_reports_the_rollback_and_changes_nothing() {
    let h = failing_canary();
    h.guards("mode = \"dry-run\"");
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "the verdict is still rollback");
    assert!(stdout(&output).contains("dry-run"), "{}", stdout(&output));
    assert_eq!(h.mutations(), Vec::<String>::new());
    assert_eq!(h.alias(), (1, Some((2, 0.1))));
    let audit = h.audit();
    assert_eq!(audit.iter().map(|r| r.record).collect::<Vec<_>>(), [Kind::Decision]);
    assert_eq!(audit[0].mode, ripcord::config::Mode::DryRun);

    // --dry-run on the command line overrides an enforcing configuration.
    h.guards("");
    assert_eq!(h.ripcord(&["check", "--dry-run"]).status.code(), Some(2));
    assert_eq!(h.mutations(), Vec::<String>::new());
}

#[test]
fn cooldown_prevents_flapping() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"\ncooldown = \"30m\"");
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(2));
    assert_eq!(h.alias(), (1, None));
    // The same bad canary is redeployed at once; within the cooldown ripcord reports but does not act again.
    h.sim.set_alias("checkout", "live", 1, Some((2, 0.1))).unwrap_or_else(|e| panic!("{e:?}"));
    h.sim.advance(3 * 60_000);
    let output = h.ripcord(&["check"]);
    assert!(stdout(&output).contains("cooldown"), "{}", stdout(&output));
    let pins = h.mutations().iter().filter(|o| *o == "UpdateAlias").count();
    assert_eq!(pins, 1, "no second pin during the cooldown");
    assert_eq!(h.alias(), (1, Some((2, 0.1))));
}

#[test]
fn throttling_and_server_errors_are_retried_by_the_sdk() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    h.sim.inject_api_fault("GetMetricData", 1, ripcord_sim::ApiError::new(400, "Throttling", "Rate exceeded"));
    h.sim.inject_api_fault("GetAlias", 1, ripcord_sim::ApiError::new(429, "TooManyRequestsException", "Rate exceeded"));
    h.sim.inject_api_fault("UpdateAlias", 1, ripcord_sim::ApiError::new(503, "ServiceException", "unavailable"));
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert_eq!(h.alias(), (1, None));
    let statuses =
        |op: &str| -> Vec<u16> { h.sim.api_log().iter().filter(|c| c.operation == op).map(|c| c.status).collect() };
    assert_eq!(statuses("UpdateAlias"), [503, 200]);
    assert_eq!(statuses("GetMetricData")[..2], [400, 200]);
    assert_eq!(h.audit().last().and_then(|r| r.outcome.map(|o| o.to_string())).as_deref(), Some("pinned"));
}

#[test]
fn a_pin_that_keeps_failing_is_reported_never_left_half_done() {
    let h = failing_canary();
    h.guards("prewarm = \"on-rollback\"");
    h.sim.inject_api_fault("UpdateAlias", 10, ripcord_sim::ApiError::new(500, "ServiceException", "internal error"));
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(1), "{}\n{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("FAILED"), "{}", stdout(&output));
    assert_eq!(h.alias(), (1, Some((2, 0.1))), "traffic unchanged");
    let audit = h.audit();
    let kinds: Vec<Kind> = audit.iter().map(|r| r.record).collect();
    assert_eq!(kinds, [Kind::Decision, Kind::Intent, Kind::Result], "the intent has its result");
    let result = &audit[2];
    assert_eq!(result.outcome.map(|o| o.to_string()).as_deref(), Some("failed"));
    assert!(result.error.as_deref().is_some_and(|e| e.contains("UpdateAlias")), "{:?}", result.error);
    // The capacity the prewarm added is scheduled for release, and the cooldown is not started.
    let tags = h.tags();
    assert!(tags.contains_key("ripcord:prewarm:live") && !tags.contains_key("ripcord:rolled-back-at:live"), "{tags:?}");
}

#[test]
fn prewarm_capacity_is_released_after_the_settle_time() {
    let h = failing_canary();
    h.guards("prewarm = \"on-rollback\"\nsettle = \"10m\"");
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(2));
    assert!(h.sim.function("checkout").is_some_and(|f| f.provisioned.contains_key(&1)));
    h.sim.advance(5 * 60_000);
    h.ripcord(&["check"]);
    assert!(h.sim.function("checkout").is_some_and(|f| f.provisioned.contains_key(&1)), "released too early");
    h.sim.advance(6 * 60_000);
    h.ripcord(&["check"]);
    assert!(h.sim.function("checkout").is_some_and(|f| !f.provisioned.contains_key(&1)), "not released");
    assert!(!h.tags().contains_key("ripcord:prewarm:live"));
    let release = h
        .audit()
        .into_iter()
        .rfind(|r| r.action.to_string() == "release-prewarm")
        .map(|r| r.outcome.map(|o| o.to_string()));
    assert_eq!(release, Some(Some("released".to_string())));
}

#[test]
fn a_fully_promoted_healthy_candidate_becomes_the_known_good_after_its_bake() {
    let h = SimHarness::start(&lambda_scenario("version = 2", KNOWN_GOOD_1, ""));
    h.sim.advance(5 * 60_000);
    h.guards("bake = \"5m\"");
    let first = h.ripcord(&["check"]);
    assert_eq!(first.status.code(), Some(0), "{}", stdout(&first));
    assert!(stdout(&first).contains("baking: 0m of 5m at 100%"), "{}", stdout(&first));
    assert_eq!(h.tags().get("ripcord:known-good:live").map(String::as_str), Some("1"));
    let rollout = h.tags().get("ripcord:rollout:live").cloned().unwrap_or_default();
    assert_eq!(rollout.matches('@').count(), 2, "first traffic and all traffic recorded: {rollout}");
    h.sim.advance(4 * 60_000);
    assert!(stdout(&h.ripcord(&["check"])).contains("baking: 4m of 5m at 100%"));
    h.sim.advance(60_000);
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(0));
    assert_eq!(h.tags().get("ripcord:known-good:live").map(String::as_str), Some("2"));
    assert!(!h.tags().contains_key("ripcord:rollout:live"), "the rollout's work is done");
    assert_eq!(h.mutations(), ["TagResource", "TagResource", "UntagResource"]);
}

#[test]
fn pull_rolls_back_by_hand_and_checks_the_version_exists() {
    let h = SimHarness::start(&lambda_scenario("version = 3", KNOWN_GOOD_1, ""));
    h.sim.advance(3 * 60_000);
    h.guards("prewarm = \"on-rollback\"");
    let output = h.ripcord(&["pull", "checkout-api", "--to", "9"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("revision \"9\" does not exist; the revisions are 1, 2, 3"),
        "{}",
        stdout(&output)
    );
    let output = h.ripcord(&["pull", "checkout-api"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert_eq!(h.alias(), (1, None), "pulled to the known good");
    let intent = h.audit().into_iter().find(|r| r.record == Kind::Intent).unwrap_or_else(|| panic!("no intent"));
    assert_eq!(intent.actor, ripcord::record::audit::Actor::Manual);
    assert!(h.operations().contains(&"PutProvisionedConcurrencyConfig".to_string()), "pull prewarms too");
}

#[test]
fn watch_runs_cycles_in_virtual_time_until_the_rollback() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(2 * 60_000);
    h.guards("prewarm = \"off\"");
    let output = h.ripcord(&["watch", "--cycles", "5"]);
    let text = stdout(&output);
    assert_eq!(text.matches("-- 2026-11-26T09:").count(), 5, "{text}");
    assert!(text.contains("ROLLED BACK to v1"), "{text}");
    assert_eq!(h.alias(), (1, None));
}

#[test]
fn status_shows_split_known_good_and_last_verdict() {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let before = stdout(&h.ripcord(&["status"]));
    assert!(
        before.contains("checkout-api") && before.contains("v1 90% / v2 10%") && before.contains(" - "),
        "{before}"
    );
    h.ripcord(&["check"]);
    let after = stdout(&h.ripcord(&["status"]));
    assert!(after.contains("v1 100%") && after.contains("v1 ") && after.contains("rollback"), "{after}");
    assert!(after.contains("cooldown until 2026-11-26T"), "the on-call sees the cooldown: {after}");
}

#[test]
fn status_shows_warm_capacity_and_a_change_without_a_result() {
    let h = failing_canary();
    h.guards("prewarm = \"on-rollback\"");
    h.kill_check_during("PutProvisionedConcurrencyConfig");
    let status = stdout(&h.ripcord(&["status"]));
    assert!(status.contains("warm capacity on v1 (until 2026-11-26T"), "{status}");
    assert!(status.contains("change without a result: rollback v1 since 2026-11-26T"), "{status}");
}

#[test]
fn recorded_cycles_replay_to_the_same_verdicts() {
    let h = failing_canary();
    h.guards("mode = \"dry-run\"");
    let record = h.dir.path().join("cycles.jsonl").display().to_string();
    for _ in 0..3 {
        h.ripcord(&["check", "--record", &record]);
        h.sim.advance(60_000);
    }
    let live: Vec<String> = h.audit().iter().map(|r| r.verdict.to_string()).collect();
    let output = h.ripcord(&["replay", "--input", &record, "--json"]);
    let replayed: Vec<String> = stdout(&output)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["verdict"].as_str().map(str::to_string))
        .collect();
    assert_eq!(replayed, live, "{}", stderr(&output));
    assert_eq!(output.status.code(), Some(2));
}

/// guards.toml in dry-run with `copies` more guards `copy-N` on the same alias.
fn dry_run_copies(h: &SimHarness, copies: usize) {
    h.guards("mode = \"dry-run\"");
    let path = h.dir.path().join("guards.toml");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    for i in 0..copies {
        text.push_str(&format!(
            "\n[[guard]]\nname = \"copy-{i}\"\nplatform = \"aws-lambda\"\nfunction = \"checkout\"\nalias = \"live\"\npolicies = [{{ use = \"builtin:error-rate\" }}]\n"
        ));
    }
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
}

/// Each GetMetricData call as its query count (`500 queries` of `500 queries (Maximum, Sum, p95, …)`), or its error.
fn metrics_calls(h: &SimHarness) -> Vec<String> {
    let calls = h.sim.api_log().into_iter().filter(|c| c.operation == "GetMetricData");
    calls.map(|c| c.detail.split(" (").next().unwrap_or_default().to_string()).collect()
}

#[test]
fn metrics_of_all_guards_are_batched_into_as_few_calls_as_the_query_limit_allows() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""));
    h.sim.advance(5 * 60_000);
    // 30 guards on the alias: 30 x (8 baseline + 8 candidate + the alias's peak and invocations) = 540 queries -> 2
    // GetMetricData calls.
    dry_run_copies(&h, 29);
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(0), "{}\n{}", stdout(&output), stderr(&output));
    let calls = metrics_calls(&h);
    // Then the known good's history before the canary, for all 30 guards in one call (8 metrics + 2 of the alias).
    assert_eq!(calls, ["500 queries", "40 queries", "300 queries"]);
    assert_eq!(h.audit().len(), 30, "one decision per guard");
}

#[test]
fn a_failed_metrics_call_is_retried_in_halves_and_fails_only_the_guards_it_carried() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""));
    h.sim.advance(5 * 60_000);
    // 31 guards: 558 queries, a call of 500 (checkout-api and copy-0 to copy-26, the last one in part) and one of 58
    // (copy-26's rest and copy-27 to copy-29).
    dry_run_copies(&h, 30);
    // A refusal the SDK does not retry, 15 times: the call of 500 and every half of it down to 62 queries.
    let error = ripcord_sim::ApiError::new(400, "InvalidParameterValue", "too much at once, on purpose");
    h.sim.inject_api_fault("GetMetricData", 15, error);
    let output = h.ripcord(&["check", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{e}"));
    let guards = json["guards"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&str> =
        guards.iter().filter(|g| g["outcome"] == "failed").filter_map(|g| g["guard"].as_str()).collect();
    let judged: Vec<&str> =
        guards.iter().filter(|g| g["outcome"] != "failed").filter_map(|g| g["guard"].as_str()).collect();
    assert_eq!(
        judged,
        ["copy-27", "copy-28", "copy-29"],
        "only the guards whose queries were all in the call that worked"
    );
    assert_eq!(failed.len(), 28);
    assert!(
        guards
            .iter()
            .filter(|g| g["outcome"] == "failed")
            .all(|g| g["error"].as_str().is_some_and(|e| e.contains("too much at once")))
    );
    let calls = metrics_calls(&h);
    // 15 refused, the call of 58, then the known good's history of the three guards judged (10 queries each).
    assert_eq!(calls[15..], ["58 queries", "30 queries"], "{calls:?}");
    assert!(calls[..15].iter().all(|c| c == "InvalidParameterValue"), "{calls:?}");
    assert_eq!(h.audit().len(), 31, "a decision for every guard, failed or not");
}

/// A failing canary whose guards.toml has `settings` (a webhook) added; `check` rolls it back.
fn check_with_settings(settings: &str) {
    let h = failing_canary();
    h.guards("prewarm = \"off\"");
    let path = h.dir.path().join("guards.toml");
    let text =
        std::fs::read_to_string(&path).unwrap_or_default().replace("[settings]\n", &format!("[settings]\n{settings}"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(2));
}

#[test]
fn intents_and_results_are_posted_to_the_webhook() {
    let (port, receiver) = webhook_receiver(2);
    check_with_settings(&format!("webhook = \"http://127.0.0.1:{port}/ripcord\"\n"));
    let bodies = receiver.join().unwrap_or_default();
    let kinds: Vec<String> = bodies
        .iter()
        .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .filter_map(|v| v["record"].as_str().map(str::to_string))
        .collect();
    assert_eq!(kinds, ["intent", "result"], "{bodies:?}");
}

#[test]
fn a_slack_webhook_gets_the_headline_with_its_numbers_and_a_link_to_the_report() {
    let (port, receiver) = webhook_receiver(2);
    check_with_settings(&format!(
        "webhook = \"http://127.0.0.1:{port}/services/T0/B0/x\"\nwebhook_format = \"slack\"\nreport_url = \"https://ci.example.com/ripcord/report.html\"\n"
    ));
    let bodies = receiver.join().unwrap_or_default();
    let messages: Vec<serde_json::Value> =
        bodies.iter().map(|b| serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}"))).collect();
    // Slack's incoming-webhook payload: a text, nothing of the audit record.
    assert!(
        messages.iter().all(|m| m.as_object().is_some_and(|o| o.len() == 1) && m["text"].is_string()),
        "{bodies:?}"
    );
    let result = messages[1]["text"].as_str().unwrap_or_default();
    assert!(result.contains("rolled back checkout-api v2 → v1 at 09:05:00 UTC"), "{result}");
    assert!(result.contains("error rate") && result.contains('%'), "the numbers behind it: {result}");
    assert!(result.contains("<https://ci.example.com/ripcord/report.html|report>"), "{result}");
    assert!(messages[0]["text"].as_str().unwrap_or_default().contains("rolling back checkout-api"), "{bodies:?}");
}

#[test]
fn every_shipped_scenario_loads() {
    let dir = crate::support::repo_root().join("examples/scenarios");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")).filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().ends_with(".guards.toml") {
            continue;
        }
        let sim = ripcord_sim::scenario::load(&entry.path()).unwrap_or_else(|e| panic!("{e}"));
        sim.advance(60_000);
        let traffic = sim.requests("checkout", 0, i64::MAX).len() + sim.run_requests("checkout", 0, i64::MAX).len();
        assert!(traffic > 0, "{}: no traffic", entry.path().display());
        count += 1;
    }
    assert!(count >= 2);
}

#[test]
fn standby_keeps_the_known_good_warm_while_a_candidate_bakes() {
    // A healthy canary bakes: standby puts capacity on v1 without touching the routing.
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(3 * 60_000);
    h.guards("prewarm = \"standby\"");
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(0));
    // The marker first (write-ahead), then the capacity: no crash can leave capacity nobody releases; then the
    // canary's rollout.
    assert_eq!(h.mutations(), ["TagResource", "PutProvisionedConcurrencyConfig", "TagResource"]);
    assert_eq!(h.tags().get("ripcord:prewarm:live").map(String::as_str), Some("1@standby"));
    assert_eq!(h.alias(), (1, Some((2, 0.1))));

    // The canary goes bad: the rollback finds v1 already warm, so it pins without waiting for capacity.
    h.sim.advance(3 * 60_000);
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(2));
    assert_eq!(h.alias(), (1, None));
    let result = h
        .audit()
        .into_iter()
        .rfind(|r| r.action.to_string() == "rollback" && r.record == Kind::Result)
        .unwrap_or_else(|| panic!("no result"));
    let prewarm = result.prewarm.unwrap_or_else(|| panic!("no prewarm"));
    assert!(prewarm.ready && !prewarm.created && prewarm.waited_ms == 0, "{prewarm:?}");
    let puts = h.mutations().iter().filter(|o| *o == "PutProvisionedConcurrencyConfig").count();
    assert_eq!(puts, 1, "no second allocation");
    // The standby capacity is now temporary capacity of the rollback, released after the settle time.
    assert!(h.tags().get("ripcord:prewarm:live").is_some_and(|v| !v.ends_with("@standby")), "{:?}", h.tags());
}

#[test]
fn standby_capacity_is_released_when_the_candidate_is_promoted() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""));
    h.sim.advance(3 * 60_000);
    h.guards("prewarm = \"standby\"\nbake = \"3m\"");
    h.ripcord(&["check"]);
    assert!(h.sim.function("checkout").is_some_and(|f| f.provisioned.contains_key(&1)));
    // The deploy tool finishes: v2 takes all traffic; after its bake ripcord records it as known good, then
    // releases v1's capacity.
    h.sim.set_alias("checkout", "live", 2, None).unwrap_or_else(|e| panic!("{e:?}"));
    h.sim.advance(60_000);
    h.ripcord(&["check"]);
    assert_eq!(h.tags().get("ripcord:known-good:live").map(String::as_str), Some("1"), "still baking");
    h.sim.advance(3 * 60_000);
    h.ripcord(&["check"]);
    assert_eq!(h.tags().get("ripcord:known-good:live").map(String::as_str), Some("2"));
    h.sim.advance(60_000);
    h.ripcord(&["check"]);
    assert!(
        h.sim.function("checkout").is_some_and(|f| !f.provisioned.contains_key(&1)),
        "standby capacity not released"
    );
    assert!(!h.tags().contains_key("ripcord:prewarm:live"));
}

#[test]
fn a_rollback_killed_after_adding_capacity_is_closed_and_finished_by_the_next_run() {
    let h = failing_canary();
    h.guards("prewarm = \"on-rollback\"\nsettle = \"10m\"");
    h.kill_check_during("PutProvisionedConcurrencyConfig");

    // The dead process left an intent without a result, capacity on v1, and the write-ahead marker for it.
    let kinds: Vec<Kind> = h.audit().iter().map(|r| r.record).collect();
    assert_eq!(kinds, [Kind::Decision, Kind::Intent]);
    assert!(h.sim.function("checkout").is_some_and(|f| f.provisioned.contains_key(&1)));
    let marker = h.tags().get("ripcord:prewarm:live").cloned().unwrap_or_else(|| panic!("{:?}", h.tags()));
    assert!(marker.starts_with("1@"), "{marker}");
    assert_eq!(h.alias(), (1, Some((2, 0.1))), "not pinned yet");

    // The next run closes the interrupted intent with what it finds, then decides again and rolls back.
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert_eq!(h.alias(), (1, None));
    let audit = h.audit();
    let kinds: Vec<Kind> = audit.iter().map(|r| r.record).collect();
    assert_eq!(kinds, [Kind::Decision, Kind::Intent, Kind::Result, Kind::Decision, Kind::Intent, Kind::Result]);
    assert_eq!(audit[2].id, audit[1].id, "the interrupted intent gets its result");
    assert_eq!(audit[2].outcome.map(|o| o.to_string()).as_deref(), Some("interrupted"));
    let why = audit[2].error.clone().unwrap_or_default();
    assert!(why.contains("stopped before writing its result") && why.contains("had not taken effect"), "{why}");
    assert_eq!(audit[5].outcome.map(|o| o.to_string()).as_deref(), Some("pinned"));
    // The capacity the dead run added is reused, not allocated twice, and is released after the settle time.
    let prewarm = audit[5].prewarm.clone().unwrap_or_else(|| panic!("no prewarm"));
    assert!(!prewarm.created, "{prewarm:?}");
    let puts = h.mutations().iter().filter(|o| *o == "PutProvisionedConcurrencyConfig").count();
    assert_eq!(puts, 1, "{:?}", h.mutations());
    h.sim.advance(11 * 60_000);
    h.ripcord(&["check"]);
    assert!(h.sim.function("checkout").is_some_and(|f| !f.provisioned.contains_key(&1)), "capacity leaked");
}

#[test]
fn a_rollback_killed_after_the_pin_took_effect_is_closed_without_a_second_pin() {
    let h = failing_canary();
    h.guards("prewarm = \"on-rollback\"\nsettle = \"10m\"\nprewarm_timeout = \"2m\"");
    h.kill_check_during("UpdateAlias");
    assert_eq!(h.alias(), (1, None), "the pin took effect");
    assert!(!h.tags().contains_key("ripcord:rolled-back-at:live"), "the dead run never marked the cooldown");

    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(0), "{}\n{}", stdout(&output), stderr(&output));
    let audit = h.audit();
    let closed = audit.iter().find(|r| r.record == Kind::Result).unwrap_or_else(|| panic!("no result: {audit:?}"));
    assert_eq!(closed.outcome.map(|o| o.to_string()).as_deref(), Some("interrupted"));
    assert_eq!(closed.id, audit[1].id);
    assert!(closed.error.as_deref().is_some_and(|e| e.contains("had taken effect")), "{:?}", closed.error);
    assert_eq!(h.mutations().iter().filter(|o| *o == "UpdateAlias").count(), 1, "no second pin");
    assert!(h.tags().contains_key("ripcord:rolled-back-at:live"), "cooldown marker: {:?}", h.tags());

    // Nobody said when to release the capacity the dead run added: the write-ahead deadline does.
    h.sim.advance(5 * 60_000);
    h.ripcord(&["check"]);
    assert!(h.sim.function("checkout").is_some_and(|f| f.provisioned.contains_key(&1)), "released too early");
    h.sim.advance(20 * 60_000);
    h.ripcord(&["check"]);
    assert!(h.sim.function("checkout").is_some_and(|f| !f.provisioned.contains_key(&1)), "capacity leaked");
}

#[test]
fn checking_a_guard_that_does_not_exist_fails_the_gate() {
    let h = failing_canary();
    h.guards("");
    let output = h.ripcord(&["check", "--guard", "chekout-api"]);
    assert_eq!(output.status.code(), Some(1), "{}\n{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("no guard named \"chekout-api\""), "{}", stdout(&output));
    assert!(stdout(&output).contains("(guards: checkout-api)"), "{}", stdout(&output));
    assert_eq!(h.mutations(), Vec::<String>::new());
}

#[test]
fn report_renders_the_audit_log_as_a_page() {
    let h = failing_canary();
    h.guards("prewarm = \"on-rollback\"");
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(2));
    let page = h.dir.path().join("report.html");
    let output = h.ripcord(&["report", "--out", &page.display().to_string()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let html = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{e}"));
    assert!(html.to_ascii_lowercase().starts_with("<!doctype html>"));
    assert!(html.contains("<h2>checkout-api</h2>"), "{html}");
    assert!(html.contains("rolled back checkout-api v2 → v1 at"), "the headline: {html}");
    assert!(html.contains("1 cycles: 0 promote, 0 hold, 0 inconclusive, 1 rollback"), "{html}");
    assert!(html.contains("changes: 1 pinned, 0 failed"), "{html}");
    assert!(html.contains("provisioned-concurrency v1 ×"), "the prewarm is shown: {html}");
    assert!(html.contains("error_rate ") && html.contains("% &gt; 2.00%"), "the failed checks, in percent: {html}");
    // One chart per metric the decisions carry, each with a line per revision: the baseline v1 and the candidate v2.
    for metric in ["Error rate", "Latency p99", "Requests per window"] {
        assert!(html.contains(&format!("data-metric=\"{metric}\"")), "no {metric} chart: {html}");
    }
    assert_eq!(html.matches("data-revision=\"v1\"").count(), 3, "{html}");
    assert_eq!(html.matches("data-revision=\"v2\"").count(), 3, "{html}");
    assert!(!html.contains("<script"), "no script");
    assert!(!html.contains("http://") && !html.contains("https://"), "the page loads nothing");
}

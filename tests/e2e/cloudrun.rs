//! The `ripcord` binary against the simulated Cloud Run and Cloud Monitoring over HTTP, through
//! google-cloud-run-v2 and google-cloud-monitoring-v3: the same cases as for Lambda, plus the tag warm-up before
//! the traffic PATCH, a failed operation, and one ListTimeSeries call per metric per project.

use crate::support::{BBB_FAILS, RUN_CANARY, RUN_KNOWN_GOOD, SimHarness, run_scenario, stderr, stdout};
use ripcord::record::audit::Kind;
use ripcord_sim::cloudrun::TrafficTarget;

const AAA: &str = "search-00001-aaa";
const BBB: &str = "search-00002-bbb";

fn failing_canary() -> SimHarness {
    let h = SimHarness::start(&run_scenario(RUN_CANARY, RUN_KNOWN_GOOD, BBB_FAILS));
    h.sim.advance(5 * 60_000);
    h
}

fn all_on(revision: &str) -> Vec<TrafficTarget> {
    vec![TrafficTarget { latest: false, revision: revision.into(), percent: 100, tag: String::new() }]
}

#[test]
fn canary_error_spike_is_rolled_back_after_a_tag_warm_up() {
    let h = failing_canary();
    h.cloud_run_guards("prewarm = \"on-rollback\"", "");
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains(&format!("ROLLED BACK to {AAA}")), "{}", stdout(&output));
    // All traffic on the stable revision; the bad one keeps a tag for debugging; the warm-up tag is gone.
    let split = h.split("search");
    assert_eq!(split[0], (AAA.to_string(), 100, String::new()), "{split:?}");
    assert!(split.contains(&(BBB.to_string(), 0, "ripcord-rolled-back".to_string())), "{split:?}");
    assert!(!split.iter().any(|(_, _, tag)| tag == "ripcord-warm"), "{split:?}");

    // Order, from the simulator's request log: tag the target, warm it through the tag URL, then move the traffic.
    let log = h.sim.api_log();
    let updates: Vec<usize> =
        log.iter().enumerate().filter(|(_, c)| c.operation == "UpdateService").map(|(i, _)| i).collect();
    assert_eq!(updates.len(), 2, "two writes a rollback: the tag, then the pin with its markers: {log:?}");
    assert!(
        log[updates[0]].detail.contains("ripcord-warm"),
        "first update tags the target: {}",
        log[updates[0]].detail
    );
    let warmups: Vec<usize> =
        log.iter().enumerate().filter(|(_, c)| c.operation == "TagRequest").map(|(i, _)| i).collect();
    assert!(!warmups.is_empty(), "no warm-up requests: {log:?}");
    let pin = updates
        .iter()
        .copied()
        .find(|i| log[*i].detail.contains(r#""percent":100"#))
        .unwrap_or_else(|| panic!("no pin: {log:?}"));
    assert!(
        warmups.iter().all(|w| *w > updates[0] && *w < pin),
        "warm-ups between tag and pin: {warmups:?} {updates:?}"
    );
    assert!(log[pin].detail.starts_with("updateMask=traffic,annotations"), "{}", log[pin].detail);
    assert!(
        log[pin].detail.contains("ripcord.dev/rolled-back-at"),
        "the cooldown lands with the pin: {}",
        log[pin].detail
    );
    assert!(log[pin + 1..].iter().any(|c| c.operation == "GetOperation"), "the pin's operation is polled");
    // One service read a rollback, the prewarm's: the tag's operation answers the service with the tag's URL, the
    // re-read and the pin build on it (its etag in the PATCH), and the pin's operation answers it reconciled.
    let reads = |from: usize, to: usize| log[from..to].iter().filter(|c| c.operation == "GetService").count();
    assert_eq!(reads(0, updates[0]), 1, "the prewarm reads the service once: {log:?}");
    assert_eq!(reads(updates[0], log.len()), 0, "no read after the tag: {log:?}");

    let audit = h.audit();
    let kinds: Vec<Kind> = audit.iter().filter(|r| r.action.to_string() == "rollback").map(|r| r.record).collect();
    assert_eq!(kinds, [Kind::Decision, Kind::Intent, Kind::Result]);
    let result = audit.iter().rfind(|r| r.record == Kind::Result).unwrap_or_else(|| panic!("no result"));
    assert_eq!(result.outcome.map(|o| o.to_string()).as_deref(), Some("pinned"));
    let prewarm = result.prewarm.clone().unwrap_or_else(|| panic!("no prewarm"));
    assert!(prewarm.ready && prewarm.method == "tag+warm-up", "{prewarm:?}");
    let annotations = h.sim.service("search").map(|s| s.annotations).unwrap_or_default();
    assert!(annotations.contains_key("ripcord.dev/rolled-back-at"), "{annotations:?}");

    // Users see no cold start after the pin: the warmed instances take the traffic.
    let pinned_at = h.sim.now_ms();
    h.sim.advance(5 * 60_000);
    let cold = h
        .sim
        .run_requests("search", pinned_at, pinned_at + 5 * 60_000)
        .iter()
        .filter(|r| r.cold_start && r.tag.is_none())
        .count();
    assert_eq!(cold, 0);
}

#[test]
fn a_healthy_canary_changes_nothing() {
    let h = SimHarness::start(&run_scenario(RUN_CANARY, RUN_KNOWN_GOOD, ""));
    h.sim.advance(5 * 60_000);
    h.cloud_run_guards("", "");
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(0), "{}\n{}", stdout(&output), stderr(&output));
    // The only write is ripcord's own bookkeeping: the canary's first traffic, where its evidence starts.
    assert_eq!(h.mutations(), ["UpdateService"]);
    let service = h.sim.service("search").unwrap_or_else(|| panic!("no service"));
    assert!(service.annotations.get("ripcord.dev/rollout").is_some_and(|v| v.starts_with(BBB)), "{service:?}");
    assert_eq!(h.split("search").len(), 2);
}

#[test]
fn an_incident_after_full_promotion_rolls_back_to_the_known_good_annotation() {
    let traffic = format!("[[service.traffic]]\nrevision = \"{BBB}\"\npercent = 100\n");
    let h = SimHarness::start(&run_scenario(&traffic, RUN_KNOWN_GOOD, BBB_FAILS));
    h.sim.advance(5 * 60_000);
    h.cloud_run_guards("prewarm = \"on-rollback\"", "");
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert_eq!(h.split("search")[0], (AAA.to_string(), 100, String::new()));
    let pinned_at = h.sim.now_ms();
    h.sim.advance(5 * 60_000);
    let cold = h
        .sim
        .run_requests("search", pinned_at, pinned_at + 5 * 60_000)
        .iter()
        .filter(|r| r.cold_start && r.tag.is_none())
        .count();
    assert_eq!(cold, 0, "the idle known good was warmed before the pin");
}

#[test]
fn a_stale_etag_mid_rollback_is_re_read_and_the_rollback_lands() {
    let h = failing_canary();
    h.cloud_run_guards("prewarm = \"off\"", "");
    // A deploy tool shifts the canary to 20% just before ripcord's PATCH: the etag ripcord read is stale.
    let shifted = vec![
        TrafficTarget { latest: false, revision: AAA.into(), percent: 80, tag: String::new() },
        TrafficTarget { latest: false, revision: BBB.into(), percent: 20, tag: String::new() },
    ];
    h.sim.interfere_service("UpdateService", "search", shifted);
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    let statuses: Vec<u16> =
        h.sim.api_log().iter().filter(|c| c.operation == "UpdateService").map(|c| c.status).collect();
    assert_eq!(statuses[..2], [409, 200], "ABORTED on the stale etag, then pinned after a re-read: {statuses:?}");
    assert_eq!(h.split("search")[0], (AAA.to_string(), 100, String::new()));
}

#[test]
fn dry_run_and_cooldown_change_nothing_more() {
    let h = failing_canary();
    h.cloud_run_guards("prewarm = \"off\"\nmode = \"dry-run\"", "");
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(2));
    assert_eq!(h.mutations(), Vec::<String>::new(), "dry-run");

    h.cloud_run_guards("prewarm = \"off\"\ncooldown = \"30m\"", "");
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("ROLLED BACK"), "{}\n{}", stdout(&output), stderr(&output));
    let serves = |revision: &str, percent: u32| h.split("search").iter().any(|t| t.0 == revision && t.1 == percent);
    assert!(serves(AAA, 100), "pinned: {:?}", h.split("search"));
    // The bad canary comes back at once; within the cooldown ripcord does not act again.
    let canary = vec![
        TrafficTarget { latest: false, revision: AAA.into(), percent: 90, tag: String::new() },
        TrafficTarget { latest: false, revision: BBB.into(), percent: 10, tag: String::new() },
    ];
    h.sim.set_traffic("search", canary).unwrap_or_else(|e| panic!("{e:?}"));
    h.sim.advance(3 * 60_000);
    let output = h.ripcord(&["check"]);
    assert!(stdout(&output).contains("cooldown"), "{}", stdout(&output));
    assert!(serves(BBB, 10), "no second pin during the cooldown: {:?}", h.split("search"));
}

#[test]
fn unavailable_reads_are_retried_by_the_client() {
    let h = failing_canary();
    h.cloud_run_guards("prewarm = \"off\"", "");
    h.sim.inject_api_fault("GetService", 2, ripcord_sim::ApiError::new(503, "UNAVAILABLE", "try again"));
    h.sim.inject_api_fault("ListTimeSeries", 1, ripcord_sim::ApiError::new(503, "UNAVAILABLE", "try again"));
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert_eq!(h.split("search")[0], (AAA.to_string(), 100, String::new()));
    let statuses: Vec<u16> = h.sim.api_log().iter().filter(|c| c.operation == "GetService").map(|c| c.status).collect();
    assert_eq!(statuses[..3], [503, 503, 200]);
}

#[test]
fn an_operation_that_ends_in_error_once_is_retried_and_the_rollback_lands() {
    let h = failing_canary();
    h.cloud_run_guards("prewarm = \"off\"", "");
    h.sim.fail_operations(1, "revision search-00001-aaa is not ready");
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert_eq!(h.split("search")[0], (AAA.to_string(), 100, String::new()));
    let patches = h.sim.api_log().iter().filter(|c| c.operation == "UpdateService").count();
    assert_eq!(patches, 2, "the failed PATCH and its retry, each with the markers");
    let annotations = h.sim.service("search").map(|s| s.annotations).unwrap_or_default();
    assert!(annotations.contains_key("ripcord.dev/rolled-back-at"), "{annotations:?}");
}

#[test]
fn an_operation_that_keeps_ending_in_error_is_reported_and_nothing_is_left_half_done() {
    let h = failing_canary();
    h.cloud_run_guards("prewarm = \"off\"", "");
    h.sim.fail_operations(3, "revision search-00001-aaa is not ready");
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(1), "{}\n{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("is not ready"), "{}", stdout(&output));
    assert_eq!(h.split("search").len(), 2, "the split stays as it was");
    let result = h.audit().into_iter().rfind(|r| r.record == Kind::Result).unwrap_or_else(|| panic!("no result"));
    assert_eq!(result.outcome.map(|o| o.to_string()).as_deref(), Some("failed"));
    assert!(result.error.as_deref().is_some_and(|e| e.contains("the operation failed")), "{:?}", result.error);
    // The failed PATCHes carried the cooldown marker; it must not stay, or the next cycle would not roll back the
    // candidate still serving.
    let annotations = h.sim.service("search").map(|s| s.annotations).unwrap_or_default();
    assert!(!annotations.contains_key("ripcord.dev/rolled-back-at"), "{annotations:?}");
    h.sim.advance(60_000);
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "the next cycle rolls back: {}\n{}", stdout(&output), stderr(&output));
    assert_eq!(h.split("search")[0], (AAA.to_string(), 100, String::new()));
}

/// `[[service]]` tables for services `names` in project `acme`, one revision each at `rps`.
fn services(names: &[impl AsRef<str>], rps: f64) -> String {
    names
        .iter()
        .map(|name| {
            let name = name.as_ref();
            format!(
                "[[service]]\nname = \"{name}\"\nproject = \"acme\"\nlocation = \"europe-west1\"\nrps = {rps}\n[[service.revision]]\nname = \"{name}-00001-aaa\"\n[[service.traffic]]\nrevision = \"{name}-00001-aaa\"\npercent = 100\n"
            )
        })
        .collect()
}

#[test]
fn one_list_time_series_call_per_metric_serves_every_service_of_a_project() {
    // Three services in one project, each guarded.
    let extra_services = services(&["orders", "users"], 20.0);
    let h = SimHarness::start(&run_scenario(RUN_CANARY, RUN_KNOWN_GOOD, &extra_services));
    h.sim.advance(4 * 60_000);
    let guards: String = ["orders", "users"]
        .iter()
        .map(|name| {
            format!(
                "[[guard]]\nname = \"{name}-api\"\nplatform = \"cloud-run\"\nproject = \"acme\"\nlocation = \"europe-west1\"\nservice = \"{name}\"\npolicies = [{{ use = \"builtin:error-rate\" }}]\n"
            )
        })
        .collect();
    h.cloud_run_guards("mode = \"dry-run\"", &guards);
    let output = h.ripcord(&["check"]);
    assert!(output.status.code().is_some_and(|c| c != 1), "{}\n{}", stdout(&output), stderr(&output));
    let calls: Vec<String> =
        h.sim.api_log().into_iter().filter(|c| c.operation == "ListTimeSeries").map(|c| c.detail).collect();
    // One call per metric for every service of the project; then the same for the known good's history before
    // the canary (only `search` has a known good to compare with).
    assert_eq!(calls.len(), 12, "one call per metric: {calls:#?}");
    for call in &calls[..6] {
        assert!(call.contains(r#"one_of("orders","search","users")"#), "{call}");
    }
    for call in &calls[6..] {
        assert!(call.contains(r#"one_of("search")"#), "{call}");
    }
    assert_eq!(h.audit().len(), 3, "a decision per guard");
}

#[test]
fn a_project_of_many_services_is_measured_with_one_call_per_metric_whatever_the_url_length() {
    // 600 guarded services whose quoted names alone take 27 KB: too long for one filter in a URL.
    let names: Vec<String> = (0..600).map(|i| format!("a-service-with-a-long-descriptive-name-{i:04}")).collect();
    let extra = services(&names, 0.05);
    let h = SimHarness::start(&run_scenario(RUN_CANARY, RUN_KNOWN_GOOD, &extra));
    h.sim.advance(4 * 60_000);
    let guards: String = names
        .iter()
        .map(|name| {
            format!(
                "[[guard]]\nname = \"{name}\"\nplatform = \"cloud-run\"\nproject = \"acme\"\nlocation = \"europe-west1\"\nservice = \"{name}\"\npolicies = [{{ use = \"builtin:error-rate\" }}]\n"
            )
        })
        .collect();
    h.cloud_run_guards("mode = \"dry-run\"", &guards);
    let output = h.ripcord(&["check", "--json"]);
    assert!(output.status.code().is_some_and(|c| c != 1), "{}\n{}", stdout(&output), stderr(&output));
    let calls: Vec<String> =
        h.sim.api_log().into_iter().filter(|c| c.operation == "ListTimeSeries").map(|c| c.detail).collect();
    // Six metrics for the evaluation, six for `search`'s known good history; each without a list of names.
    assert_eq!(calls.len(), 12, "{:?}", calls.iter().map(|c| c.len()).collect::<Vec<_>>());
    assert!(calls[..6].iter().all(|c| !c.contains("service_name")), "{}", calls[0]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{e}"));
    let guards = json["guards"].as_array().cloned().unwrap_or_default();
    assert_eq!(guards.len(), 601);
    assert!(guards.iter().all(|g| g["outcome"] != "failed"), "every guard measured");
    let measured = guards
        .iter()
        .filter(|g| g["guard"].as_str().is_some_and(|n| n.starts_with("a-service")))
        .filter(|g| !g["reason"].as_str().unwrap_or_default().contains("no metrics"))
        .count();
    assert!(measured > 500, "the services' own series were kept: {measured} of 600 measured");
}

#[test]
fn pull_to_a_named_revision() {
    let h = SimHarness::start(&run_scenario(
        &format!("[[service.traffic]]\nrevision = \"{BBB}\"\npercent = 100\n"),
        "",
        "",
    ));
    h.sim.advance(2 * 60_000);
    h.cloud_run_guards("prewarm = \"on-rollback\"", "");
    let missing = h.ripcord(&["pull", "search-api"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stdout(&missing).contains("no revision to pull to"), "{}", stdout(&missing));
    let pulled = h.ripcord(&["pull", "search-api", "--to", "search-00003-ccc"]);
    assert_eq!(pulled.status.code(), Some(2), "{}\n{}", stdout(&pulled), stderr(&pulled));
    assert_eq!(h.split("search")[0], ("search-00003-ccc".to_string(), 100, String::new()));
    let _ = all_on;
}

#[test]
fn standby_tags_and_warms_the_known_good_during_the_bake_then_releases_it() {
    let h = SimHarness::start(&run_scenario(RUN_CANARY, RUN_KNOWN_GOOD, ""));
    h.sim.advance(3 * 60_000);
    h.cloud_run_guards("prewarm = \"standby\"\nbake = \"1m\"", "");
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(0));
    assert!(h.split("search").contains(&(AAA.to_string(), 90, String::new())), "{:?}", h.split("search"));
    let tagged =
        h.sim.service("search").is_some_and(|s| s.traffic.iter().any(|t| t.tag == "ripcord-warm" && t.revision == AAA));
    assert!(tagged, "standby tags the known good");
    // The canary is promoted to 100% and found healthy: recorded as known good, the standby tag released.
    h.sim.set_traffic("search", all_on(BBB)).unwrap_or_else(|e| panic!("{e:?}"));
    h.sim.advance(4 * 60_000);
    h.ripcord(&["check"]);
    h.sim.advance(60_000);
    h.ripcord(&["check"]);
    let service = h.sim.service("search").unwrap_or_else(|| panic!("no service"));
    assert_eq!(service.annotations.get("ripcord.dev/known-good").map(String::as_str), Some(BBB));
    assert!(!service.traffic.iter().any(|t| t.tag == "ripcord-warm"), "{:?}", service.traffic);
}

#[test]
fn a_rollback_killed_after_the_warm_up_tag_is_closed_and_finished_by_the_next_run() {
    let h = failing_canary();
    h.cloud_run_guards("prewarm = \"on-rollback\"\nsettle = \"10m\"", "");
    // The first PATCH of the rollback tags the target; ripcord dies before it hears back.
    h.kill_check_during("UpdateService");
    let service = h.sim.service("search").unwrap_or_else(|| panic!("no service"));
    assert!(service.traffic.iter().any(|t| t.tag == "ripcord-warm" && t.revision == AAA), "{:?}", service.traffic);
    // The marker was written in the same PATCH as the tag.
    assert!(
        service.annotations.get("ripcord.dev/prewarm").is_some_and(|v| v.starts_with(AAA)),
        "{:?}",
        service.annotations
    );
    let kinds: Vec<Kind> = h.audit().iter().map(|r| r.record).collect();
    assert_eq!(kinds, [Kind::Decision, Kind::Intent]);

    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    let audit = h.audit();
    let closed = &audit[2];
    assert_eq!((closed.record, closed.id.as_str()), (Kind::Result, audit[1].id.as_str()));
    assert_eq!(closed.outcome.map(|o| o.to_string()).as_deref(), Some("interrupted"));
    assert_eq!(audit.last().and_then(|r| r.outcome.map(|o| o.to_string())).as_deref(), Some("pinned"));
    let split = h.split("search");
    assert_eq!(split[0], (AAA.to_string(), 100, String::new()), "{split:?}");
    assert!(!split.iter().any(|(_, _, tag)| tag == "ripcord-warm"), "{split:?}");
    h.sim.advance(11 * 60_000);
    h.ripcord(&["check"]);
    let annotations = h.sim.service("search").map(|s| s.annotations).unwrap_or_default();
    assert!(!annotations.contains_key("ripcord.dev/prewarm"), "{annotations:?}");
}

#[test]
fn a_rollback_killed_during_the_traffic_patch_ends_pinned_without_a_conflict_left_behind() {
    let h = failing_canary();
    h.cloud_run_guards("prewarm = \"off\"", "");
    // Without prewarm the first PATCH is the pin: it is accepted, then ripcord dies before its operation is done.
    h.kill_check_during("UpdateService");
    let kinds: Vec<Kind> = h.audit().iter().map(|r| r.record).collect();
    assert_eq!(kinds, [Kind::Decision, Kind::Intent]);

    let output = h.ripcord(&["check"]);
    assert_ne!(output.status.code(), Some(1), "{}\n{}", stdout(&output), stderr(&output));
    let audit = h.audit();
    let closed = &audit[2];
    assert_eq!((closed.record, closed.id.as_str()), (Kind::Result, audit[1].id.as_str()));
    assert_eq!(closed.outcome.map(|o| o.to_string()).as_deref(), Some("interrupted"));
    // The accepted PATCH was still reconciling: what serves is still the split, so the cycle decides again — with
    // the cooldown marker the PATCH carried cleared, or the cooldown would hold it back. Its rollback pins, or
    // finds the dead run's pin reconciled meanwhile.
    assert!(closed.error.as_deref().is_some_and(|e| e.contains("had not taken effect")), "{:?}", closed.error);
    let last = audit.last().and_then(|r| r.outcome.map(|o| o.to_string()));
    assert!(matches!(last.as_deref(), Some("pinned" | "already-pinned")), "{last:?}");
    let annotations = h.sim.service("search").map(|s| s.annotations).unwrap_or_default();
    assert!(
        annotations.contains_key("ripcord.dev/rolled-back-at"),
        "the cooldown of the pin that serves: {annotations:?}"
    );
    // However far the dead run's change had got, the service ends on the stable revision, every intent answered.
    h.sim.advance(60_000);
    let split = h.split("search");
    assert_eq!(split[0], (AAA.to_string(), 100, String::new()), "{split:?}");
    let open = ripcord::record::audit::unanswered(h.audit());
    assert!(open.is_empty(), "{open:?}");
}

/// A Cloud Run guard with no Google credentials anywhere fails at once, saying so and how to provide them, and the
/// guard's decision record says why it was not judged.
#[test]
fn a_guard_without_google_credentials_says_how_to_provide_them() {
    let dir = crate::support::temp_dir();
    let config = dir.path().join("guards.toml");
    let text = "[settings]\naudit_log = \"audit.jsonl\"\n[[guard]]\nname = \"search\"\nplatform = \"cloud-run\"\nproject = \"acme-prod\"\nlocation = \"europe-west1\"\nservice = \"search\"\npolicies = [{ use = \"builtin:error-rate\" }]\n";
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ripcord"))
        .args(["check", "--config", &config.display().to_string()])
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("CLOUDSDK_CONFIG")
        .env("HOME", dir.path())
        .env("RIPCORD_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains("no usable Google credentials: no key file or gcloud credentials were found"), "{text}");
    assert!(text.contains("set GOOGLE_APPLICATION_CREDENTIALS to a service account key file"), "{text}");
    let audit = ripcord::record::audit::Audit::read(&dir.path().join("audit.jsonl")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(audit.len(), 1);
    assert!(audit[0].error.as_deref().is_some_and(|e| e.contains("no usable Google credentials")), "{audit:?}");
}

/// Cloud Monitoring answers `request_count` in one series per response class. A healthy canary at half the
/// tolerated error rate is never rolled back, and its evaluation has one point per minute, errors within
/// requests (the classes once counted as separate periods: a minute's 5xx series read as a period of only errors).
#[test]
fn a_count_answered_per_response_class_is_one_period_per_minute() {
    let scenario = run_scenario(RUN_CANARY, RUN_KNOWN_GOOD, "").replace("error_rate = 0.001", "error_rate = 0.01");
    let h = SimHarness::start(&scenario);
    h.cloud_run_guards("prewarm = \"off\"", "");
    h.sim.advance(3 * 60_000);
    for minute in 0..30 {
        h.sim.advance(60_000);
        let output = h.ripcord(&["check"]);
        assert_ne!(output.status.code(), Some(2), "minute {minute}: {}", stdout(&output));
    }
    let record = h.dir.path().join("evaluations.jsonl");
    let output = h.ripcord(&["check", "--dry-run", "--record", &record.display().to_string()]);
    assert_ne!(output.status.code(), Some(2), "{}", stdout(&output));
    let text = std::fs::read_to_string(&record).unwrap_or_else(|e| panic!("{e}"));
    let evaluation: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {text}"));
    let points = |name: &str| -> Vec<(String, f64)> {
        let points = evaluation["candidate"]["metrics"][name]["points"].as_array().cloned().unwrap_or_default();
        points
            .iter()
            .map(|p| (p[0].as_str().unwrap_or_default().to_string(), p[1].as_f64().unwrap_or(f64::NAN)))
            .collect()
    };
    let (requests, errors) = (points("requests"), points("errors"));
    assert!(requests.len() >= 20, "{requests:?}");
    let minutes: std::collections::BTreeSet<&String> = requests.iter().map(|(at, _)| at).collect();
    assert_eq!(minutes.len(), requests.len(), "one point per minute: {requests:?}");
    let served: f64 = requests.iter().map(|(_, v)| v).sum();
    let failed: f64 = errors.iter().map(|(_, v)| v).sum();
    // 10 requests a second at 1% errors: about 6 errors among 600 requests a minute.
    assert!((0.005..0.02).contains(&(failed / served)), "{failed} errors among {served} requests");
    for (at, e) in &errors {
        let r = requests.iter().find(|(a, _)| a == at).map_or(0.0, |(_, r)| *r);
        assert!(*e <= r && r > 100.0, "{at}: {e} errors among {r} requests");
    }
}

//! Guards with `mode = "approve"`: a rollback verdict waits for an approver — through `ripcord serve`'s approve
//! and reject, with the records naming them — and, when nobody answers, `on_approval_timeout` decides at the
//! timeout; on Lambda (tags) and on Cloud Run (annotations), in virtual time.

use crate::server::{APPROVER, OPERATOR, VIEWER, json, request, serve};
use crate::support::{
    BBB_FAILS, RUN_CANARY, RUN_KNOWN_GOOD, SimHarness, V2_FAILS, lambda_scenario, run_scenario, stderr, stdout,
    webhook_receiver,
};
use ripcord::record::audit::{Action, Kind};

const CANARY: &str = "version = 1\nrouting = { version = 2, weight = 0.1 }";
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;
const APPROVAL_TAG: &str = "ripcord:approval:live";

fn failing_canary(defaults: &str) -> SimHarness {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h.guards(&format!("prewarm = \"off\"\nmode = \"approve\"\n{defaults}"));
    h
}

fn check(h: &SimHarness) -> std::process::Output {
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    output
}

#[test]
fn a_rollback_waits_for_an_approver_and_is_made_when_approved() {
    let h = failing_canary("");
    let served = serve(&h, &["--no-watch"]);
    let addr = served.addr.as_str();
    let (status, _, body) = request(addr, "POST", "/api/v1/guards/checkout-api/check", Some(OPERATOR), None);
    assert_eq!(status, 200, "{body}");
    let answer = json(&body);
    assert_eq!(answer["exit_code"], 2, "{answer}");
    assert_eq!(answer["guards"][0]["outcome"], "awaiting-approval", "{answer}");
    assert_eq!(h.alias(), (1, Some((2, 0.1))), "nothing moved before an approver said so");
    let pending = h.tags().get(APPROVAL_TAG).cloned().unwrap_or_default();
    assert!(pending.starts_with("pending@2@1@"), "{pending}");
    let asked = h.audit().into_iter().find(|r| r.action == Action::AwaitApproval);
    let asked = asked.unwrap_or_else(|| panic!("no await-approval record"));
    assert!(asked.reason.contains("awaits approval until"), "{}", asked.reason);
    // On-call sees it pending.
    let guards = json(&request(addr, "GET", "/api/v1/guards", Some(VIEWER), None).2);
    assert_eq!(guards["guards"][0]["approval"]["state"], "pending", "{guards}");
    assert_eq!(guards["guards"][0]["approval"]["target"], "1", "{guards}");
    let status_text = stdout(&h.ripcord(&["status"]));
    assert!(status_text.contains("ROLLBACK TO v1 AWAITS APPROVAL since"), "{status_text}");
    // Only an approver answers, with a reason.
    let approve = "/api/v1/guards/checkout-api/approve";
    let why = r#"{"reason": "confirmed with the checkout team"}"#;
    assert_eq!(request(addr, "POST", approve, Some(OPERATOR), Some(why)).0, 403);
    assert_eq!(request(addr, "POST", approve, Some(APPROVER), Some("{}")).0, 400);
    assert_eq!(h.alias(), (1, Some((2, 0.1))));
    let (status, _, body) = request(addr, "POST", approve, Some(APPROVER), Some(why));
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.alias(), (1, None), "approved: v1 takes all traffic");
    assert!(!h.tags().contains_key(APPROVAL_TAG), "the pin answers the pending rollback: {:?}", h.tags());
    let pinned = h.audit().into_iter().rfind(|r| r.record == Kind::Result);
    let pinned = pinned.unwrap_or_else(|| panic!("no result"));
    assert_eq!(pinned.by.as_deref(), Some("token:ada"));
    assert!(
        pinned.reason.contains("approved the rollback pending since") && pinned.reason.contains("confirmed with"),
        "{}",
        pinned.reason
    );
    // Nothing is pending any more.
    let (status, _, body) = request(addr, "POST", approve, Some(APPROVER), Some(why));
    assert_eq!((status, json(&body)["error"]["code"].as_str()), (409, Some("nothing-pending")), "{body}");
}

#[test]
fn a_rejected_rollback_is_not_made_for_that_candidate() {
    let h = failing_canary("");
    check(&h);
    let served = serve(&h, &["--no-watch"]);
    let why = r#"{"reason": "known noisy dependency, accepted"}"#;
    let (status, _, body) =
        request(&served.addr, "POST", "/api/v1/guards/checkout-api/reject", Some(APPROVER), Some(why));
    assert_eq!(status, 200, "{body}");
    assert!(h.tags().get(APPROVAL_TAG).is_some_and(|v| v.starts_with("rejected@2@")), "{:?}", h.tags());
    let rejected = h.audit().into_iter().find(|r| r.action == Action::RejectRollback);
    let rejected = rejected.unwrap_or_else(|| panic!("no reject-rollback record"));
    assert_eq!(rejected.by.as_deref(), Some("token:ada"));
    assert!(rejected.reason.contains("rejected by token:ada: known noisy dependency"), "{}", rejected.reason);
    // Later cycles judge it failing still, and make no rollback.
    h.sim.advance(60_000);
    let output = check(&h);
    assert!(stdout(&output).contains("its rollback was rejected at"), "{}", stdout(&output));
    assert_eq!(h.alias(), (1, Some((2, 0.1))));
    assert!(!h.mutations().contains(&"UpdateAlias".to_string()), "{:?}", h.mutations());
}

#[test]
fn a_pending_rollback_nobody_answers_is_made_at_its_timeout_and_people_are_told() {
    let (port, receiver) = webhook_receiver(3);
    let h = failing_canary("approval_timeout = \"5m\"");
    let config = h.dir.path().join("guards.toml");
    let text = std::fs::read_to_string(&config).unwrap_or_default();
    let text = text.replacen("[settings]\n", &format!("[settings]\nwebhook = \"http://127.0.0.1:{port}/\"\n"), 1);
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    let first = check(&h);
    assert!(stdout(&first).contains("AWAITING APPROVAL of the rollback to v1"), "{}", stdout(&first));
    h.sim.advance(3 * 60_000);
    let waiting = check(&h);
    assert!(stdout(&waiting).contains("awaits approval since"), "{}", stdout(&waiting));
    assert_eq!(h.alias(), (1, Some((2, 0.1))));
    h.sim.advance(3 * 60_000);
    let late = check(&h);
    assert!(stdout(&late).contains("ROLLED BACK to v1"), "{}", stdout(&late));
    assert!(stdout(&late).contains("nobody answered the pending rollback within 5m"), "{}", stdout(&late));
    assert_eq!(h.alias(), (1, None));
    let told = receiver.join().unwrap_or_else(|_| panic!("the receiver failed"));
    assert!(told[0].contains("\"action\":\"await-approval\""), "{told:?}");
    assert!(told[1].contains("\"record\":\"intent\"") && told[2].contains("\"outcome\":\"pinned\""), "{told:?}");
}

#[test]
fn a_pending_rollback_nobody_answers_is_dropped_when_the_guard_says_so() {
    let h = failing_canary("approval_timeout = \"5m\"\non_approval_timeout = \"drop\"");
    check(&h);
    h.sim.advance(6 * 60_000);
    let dropped = check(&h);
    assert!(stdout(&dropped).contains("dropped (on_approval_timeout = drop)"), "{}", stdout(&dropped));
    assert!(h.tags().get(APPROVAL_TAG).is_some_and(|v| v.starts_with("rejected@2@")), "{:?}", h.tags());
    h.sim.advance(60_000);
    check(&h);
    assert_eq!(h.alias(), (1, Some((2, 0.1))), "never rolled back");
    assert!(!h.mutations().contains(&"UpdateAlias".to_string()), "{:?}", h.mutations());
}

#[test]
fn on_cloud_run_the_pending_rollback_lives_in_an_annotation() {
    let h = SimHarness::start(&run_scenario(RUN_CANARY, RUN_KNOWN_GOOD, BBB_FAILS));
    h.sim.advance(5 * 60_000);
    h.cloud_run_guards("prewarm = \"off\"\nmode = \"approve\"\napproval_timeout = \"2m\"", "");
    check(&h);
    let annotations = h.sim.service("search").map(|s| s.annotations).unwrap_or_default();
    let pending = annotations.get("ripcord.dev/approval").cloned().unwrap_or_default();
    assert!(pending.starts_with("pending@search-00002-bbb@search-00001-aaa@"), "{annotations:?}");
    assert_eq!(h.split("search").iter().find(|(r, ..)| r == "search-00002-bbb").map(|(_, p, _)| *p), Some(10));
    h.sim.advance(3 * 60_000);
    let late = check(&h);
    assert!(stdout(&late).contains("ROLLED BACK to search-00001-aaa"), "{}", stdout(&late));
    let annotations = h.sim.service("search").map(|s| s.annotations).unwrap_or_default();
    assert!(!annotations.contains_key("ripcord.dev/approval"), "{annotations:?}");
}

#[test]
fn approval_settings_are_checked_at_load() {
    let h = failing_canary("approval_timeout = \"10s\"\non_approval_timeout = \"maybe\"");
    let output = h.ripcord(&["validate", "--no-cache"]);
    let said = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("maybe"), "{said}");
    let h = failing_canary("approval_timeout = \"10s\"");
    let said = stdout(&h.ripcord(&["validate", "--no-cache"]));
    assert!(
        said.contains("approval_timeout") && said.contains("must be at least 1m") && said.contains("\"10s\""),
        "{said}"
    );
}

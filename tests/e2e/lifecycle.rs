//! A service's life across releases, against the simulator: the known good follows the releases that baked at
//! full traffic, the evidence starts at each candidate's first traffic, and the baseline after a full promotion is
//! the known good's own history.

use crate::support::{RUN_KNOWN_GOOD, SimHarness, lambda_scenario, run_scenario, stdout};
use ripcord::record::audit::Kind;
use ripcord_sim::cloudrun::TrafficTarget;

const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;
const MINUTE: i64 = 60_000;

/// v3 fails (30% errors) from 40 minutes in, when it is deployed as a canary.
const V3_FAILS: &str = r#"
[[fault]]
function = "checkout"
version = 3
from = "40m"
error_rate = 0.3
"#;

/// One `check` per minute for `minutes` minutes; the exit codes.
fn check_every_minute(h: &SimHarness, minutes: usize) -> Vec<Option<i32>> {
    (0..minutes)
        .map(|_| {
            h.sim.advance(MINUTE);
            h.ripcord(&["check"]).status.code()
        })
        .collect()
}

/// One `check` per minute, at most `minutes`, until one rolls back; the minute it did and its output, asserted to
/// say `ROLLED BACK to TARGET`.
fn rolled_back_within(h: &SimHarness, minutes: usize, target: &str) -> Option<(usize, String)> {
    for minute in 1..=minutes {
        h.sim.advance(MINUTE);
        let output = h.ripcord(&["check"]);
        if output.status.code() == Some(2) {
            let text = stdout(&output);
            assert!(text.contains(&format!("ROLLED BACK to {target}")), "{text}");
            return Some((minute, text));
        }
    }
    None
}

#[test]
fn a_release_that_baked_at_full_traffic_is_the_one_rolled_back_to() {
    let h = SimHarness::start(&lambda_scenario("version = 1", KNOWN_GOOD_1, V3_FAILS));
    h.guards("bake = \"10m\"\nprewarm = \"off\"");
    let start = h.sim.now_ms();
    h.sim.advance(10 * MINUTE);
    let tag = |name: &str| h.tags().get(&format!("ripcord:{name}:live")).cloned();

    // v2 as a 10% canary: its first traffic is recorded on the function.
    h.sim.set_alias("checkout", "live", 1, Some((2, 0.1))).unwrap_or_else(|e| panic!("{e:?}"));
    let deployed = h.sim.now_ms();
    let codes = check_every_minute(&h, 5);
    assert!(codes.iter().all(|c| matches!(c, Some(0 | 3))), "a healthy canary: {codes:?}");
    let rollout = tag("rollout").unwrap_or_else(|| panic!("no rollout marker: {:?}", h.tags()));
    let (revision, first) = rollout.split_once('@').unwrap_or_else(|| panic!("{rollout}"));
    let first: i64 = first.parse().unwrap_or_else(|e| panic!("{rollout}: {e}"));
    assert_eq!(revision, "2");
    assert!((deployed - MINUTE..=deployed + MINUTE).contains(&first), "first traffic {first}, deployed {deployed}");

    // v2 at 100%: still v1 as the known good while it bakes, judged against v1's history.
    h.sim.set_alias("checkout", "live", 2, None).unwrap_or_else(|e| panic!("{e:?}"));
    let codes = check_every_minute(&h, 5);
    assert!(codes.iter().all(|c| matches!(c, Some(0 | 3))), "baking: {codes:?}");
    assert_eq!(tag("known-good").as_deref(), Some("1"), "recorded before its bake ended");
    let baking = h.audit().into_iter().rfind(|r| r.record == Kind::Decision).unwrap_or_else(|| panic!("no decision"));
    assert!(baking.reason.contains("baking: "), "{}", baking.reason);
    let evidence = baking.evidence.clone().unwrap_or_else(|| panic!("no evidence in {baking:?}"));
    let history = evidence.history.clone().unwrap_or_else(|| panic!("no historical baseline: {evidence:?}"));
    assert_eq!(history.revision, "1");
    assert_eq!(history.to, ripcord::model::time::format_timestamp(first));
    assert_eq!(evidence.deployed_at, Some(ripcord::model::time::format_timestamp(first)));

    // After ten minutes at 100%, v2 is the known good.
    check_every_minute(&h, 7);
    assert_eq!(tag("known-good").as_deref(), Some("2"), "{:?}", h.audit().last());

    // Steady: the known good serves all traffic and nothing is on trial.
    h.sim.advance(MINUTE);
    let steady = h.ripcord(&["check"]);
    assert_eq!(steady.status.code(), Some(0), "{}", stdout(&steady));

    // v3 fails as a canary: ripcord pins v2, not v1 two releases back.
    while h.sim.now_ms() < start + 40 * MINUTE {
        h.sim.advance(MINUTE);
    }
    h.sim.set_alias("checkout", "live", 2, Some((3, 0.1))).unwrap_or_else(|e| panic!("{e:?}"));
    let rolled_back = rolled_back_within(&h, 5, "v2");
    assert!(rolled_back.is_some(), "v3 not rolled back within 5 minutes: {:?}", h.audit().last());
    assert_eq!(h.alias(), (2, None));
    assert_eq!(tag("rollout"), None, "the failed rollout is forgotten");
}

/// v1 and v2 both fail (6% errors) from 22 minutes in: an outage they share.
const BOTH_FAIL: &str = r#"
[[fault]]
function = "checkout"
version = 1
from = "22m"
error_rate = 0.06
[[fault]]
function = "checkout"
version = 2
from = "22m"
error_rate = 0.06
"#;

#[test]
fn a_degradation_the_baseline_shares_is_held_and_said_not_rolled_back() {
    let h = SimHarness::start(&lambda_scenario("version = 1", KNOWN_GOOD_1, BOTH_FAIL));
    h.guards("prewarm = \"off\"");
    h.sim.advance(10 * MINUTE);
    h.sim.set_alias("checkout", "live", 1, Some((2, 0.1))).unwrap_or_else(|e| panic!("{e:?}"));
    let healthy = check_every_minute(&h, 12);
    assert!(healthy.iter().all(|c| matches!(c, Some(0 | 3))), "a healthy canary: {healthy:?}");
    let mut degraded = None;
    for _ in 0..20 {
        h.sim.advance(MINUTE);
        let output = h.ripcord(&["check"]);
        assert_ne!(output.status.code(), Some(2), "a shared outage rolled back: {}", stdout(&output));
        if output.status.code() == Some(4) {
            degraded = Some(stdout(&output));
            break;
        }
    }
    let text = degraded.unwrap_or_else(|| panic!("no shared degradation reported: {:?}", h.audit().last()));
    assert!(text.contains("SHARED DEGRADATION") && text.contains("hold"), "{text}");
    assert_eq!(h.alias(), (1, Some((2, 0.1))), "the split is kept");
    let decision = h.audit().into_iter().rfind(|r| r.record == Kind::Decision).unwrap_or_else(|| panic!("none"));
    assert_eq!(decision.findings, [ripcord::model::verdict::Finding::SharedDegradation]);
    assert!(decision.reason.contains("shared degradation"), "{}", decision.reason);
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&h.ripcord(&["check", "--json"]))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["exit_code"], 4, "{json}");
    assert_eq!(json["guards"][0]["findings"][0], "shared-degradation", "{json}");
}

/// search-00003-ccc fails (30% errors) from 40 minutes in, when it is deployed as a canary.
const CCC_FAILS: &str = r#"
[[fault]]
service = "search"
revision = "search-00003-ccc"
from = "40m"
error_rate = 0.3
"#;

/// `revision` at `percent`, the rest on `rest`.
fn split(rest: &str, revision: &str, percent: u32) -> Vec<TrafficTarget> {
    let target = |revision: &str, percent| TrafficTarget {
        latest: false,
        revision: revision.into(),
        percent,
        tag: String::new(),
    };
    if percent == 100 {
        vec![target(revision, 100)]
    } else {
        vec![target(rest, 100 - percent), target(revision, percent)]
    }
}

/// The same life on Cloud Run: the known good is the annotation, the rollout marker another, and the release
/// that baked at 100% is the revision the traffic goes back to.
#[test]
fn on_cloud_run_the_revision_that_baked_at_full_traffic_is_the_one_rolled_back_to() {
    const AAA: &str = "search-00001-aaa";
    const BBB: &str = "search-00002-bbb";
    const CCC: &str = "search-00003-ccc";
    let only_aaa = format!("[[service.traffic]]\nrevision = \"{AAA}\"\npercent = 100\n");
    let h = SimHarness::start(&run_scenario(&only_aaa, RUN_KNOWN_GOOD, CCC_FAILS));
    h.cloud_run_guards("bake = \"10m\"\nprewarm = \"off\"", "");
    let start = h.sim.now_ms();
    let annotation =
        |name: &str| h.sim.service("search").and_then(|s| s.annotations.get(&format!("ripcord.dev/{name}")).cloned());
    h.sim.advance(10 * MINUTE);

    // bbb as a 10% canary, then at 100%: aaa stays the known good while bbb bakes.
    h.sim.set_traffic("search", split(AAA, BBB, 10)).unwrap_or_else(|e| panic!("{e:?}"));
    let codes = check_every_minute(&h, 5);
    assert!(codes.iter().all(|c| matches!(c, Some(0 | 3))), "a healthy canary: {codes:?}");
    assert!(annotation("rollout").is_some_and(|r| r.starts_with(BBB)), "{:?}", annotation("rollout"));
    h.sim.set_traffic("search", split(AAA, BBB, 100)).unwrap_or_else(|e| panic!("{e:?}"));
    let codes = check_every_minute(&h, 5);
    assert!(codes.iter().all(|c| matches!(c, Some(0 | 3))), "baking: {codes:?}");
    assert_eq!(annotation("known-good").as_deref(), Some(AAA), "recorded before its bake ended");
    let baking = h.audit().into_iter().rfind(|r| r.record == Kind::Decision).unwrap_or_else(|| panic!("no decision"));
    let history = baking.evidence.and_then(|e| e.history).unwrap_or_else(|| panic!("no historical baseline"));
    assert_eq!(history.revision, AAA);

    // After ten minutes at 100%, bbb is the known good.
    check_every_minute(&h, 7);
    assert_eq!(annotation("known-good").as_deref(), Some(BBB), "{:?}", h.audit().last());

    // ccc fails as a canary: the traffic goes back to bbb, not to aaa two releases back.
    while h.sim.now_ms() < start + 40 * MINUTE {
        h.sim.advance(MINUTE);
    }
    h.sim.set_traffic("search", split(BBB, CCC, 10)).unwrap_or_else(|e| panic!("{e:?}"));
    let rolled_back = rolled_back_within(&h, 5, BBB);
    assert!(rolled_back.is_some(), "ccc not rolled back within 5 minutes: {:?}", h.audit().last());
    assert_eq!(h.split("search")[0], (BBB.to_string(), 100, String::new()));
    assert_eq!(annotation("rollout"), None, "the failed rollout is forgotten");
}

/// v2 is three times slower than v1 (100 ms + 200 ms) from the start.
const V2_SLOW: &str = r#"
[[fault]]
function = "checkout"
version = 2
from = "0m"
latency_shift_ms = 200
"#;

/// A latency regression of a release promoted straight to 100% has no concurrent baseline: it is judged against
/// the known good's own history and rolled back.
#[test]
fn a_latency_regression_after_full_promotion_is_judged_against_the_known_goods_history() {
    let h = SimHarness::start(&lambda_scenario("version = 1", KNOWN_GOOD_1, V2_SLOW));
    let path = h.guards("prewarm = \"off\"");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let text = text.replace(
        r#"{ use = "builtin:error-rate", params = { max_rate = 0.02, windows = 2, min_requests = 100 } }"#,
        r#"{ use = "builtin:latency" }"#,
    );
    assert!(text.contains("builtin:latency"), "{text}");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    h.sim.advance(30 * MINUTE);
    h.sim.set_alias("checkout", "live", 2, None).unwrap_or_else(|e| panic!("{e:?}"));
    let (minute, _) = rolled_back_within(&h, 20, "v1")
        .unwrap_or_else(|| panic!("p95 tripled, not rolled back in 20 minutes: {:?}", h.audit().last()));
    assert_eq!(h.alias(), (1, None));
    let decision = h.audit().into_iter().rfind(|r| r.record == Kind::Decision).unwrap_or_else(|| panic!("none"));
    let history = decision.evidence.and_then(|e| e.history).unwrap_or_else(|| panic!("no historical baseline"));
    assert_eq!(history.revision, "1", "judged against v1's history (rolled back after {minute} minutes)");

    // Back on the known good, nothing is on trial: the latency policy has nothing to compare with, and the guard
    // is steady — healthy, not inconclusive until the next deploy.
    h.sim.advance(MINUTE);
    let steady = h.ripcord(&["check"]);
    assert_eq!(steady.status.code(), Some(0), "{}", stdout(&steady));
    assert!(stdout(&steady).contains("steady: revision 1 is the known good"), "{}", stdout(&steady));
}

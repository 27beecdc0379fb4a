//! The simulator's scenario keys for the platform behaviour a release meets — deploys over time, faults that ramp
//! and compose, metric gaps, CloudWatch's publication delay, a daily traffic curve — and ripcord judging only the
//! minutes the platform has finished.

use crate::support::{SimHarness, lambda_scenario, stdout};

const MINUTE: i64 = 60_000;
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;

/// The share of errors among `function`'s requests to `version` in `[from, until)` (virtual ms from the start).
fn error_share(h: &SimHarness, start: i64, version: u32, from: i64, until: i64) -> (f64, usize) {
    let requests: Vec<_> =
        h.sim.requests("checkout", start + from, start + until).into_iter().filter(|r| r.version == version).collect();
    let errors = requests.iter().filter(|r| r.error).count();
    (errors as f64 / requests.len().max(1) as f64, requests.len())
}

#[test]
fn deploys_happen_on_schedule_and_faults_ramp_and_compose() {
    let extra = r#"
[[deploy]]
at = "5m"
function = "checkout"
alias = "live"
version = 1
routing = { version = 2, weight = 0.5 }
[[deploy]]
at = "20m"
function = "checkout"
alias = "live"
version = 2
[[fault]]
function = "checkout"
version = 2
from = "10m"
ramp = "10m"
error_rate = 0.4
[[fault]]
function = "checkout"
version = 2
from = "20m"
error_rate = 0.5
"#;
    let h = SimHarness::start(&lambda_scenario("version = 1", "", extra));
    let start = h.sim.now_ms();
    h.sim.advance(4 * MINUTE);
    assert_eq!(h.alias(), (1, None));
    h.sim.advance(2 * MINUTE);
    assert_eq!(h.alias(), (1, Some((2, 0.5))), "the canary deploy at 5m");
    assert!(h.sim.requests("checkout", start, start + 5 * MINUTE).iter().all(|r| r.version == 1));
    h.sim.advance(24 * MINUTE);
    assert_eq!(h.alias(), (2, None), "the full promotion at 20m");
    // Halfway up the ramp (14-16m) the fault is at about half strength: 0.2 + the version's own 0.001.
    let (ramping, n) = error_share(&h, start, 2, 14 * MINUTE, 16 * MINUTE);
    assert!(n > 4_000 && (0.17..0.23).contains(&ramping), "ramp: {ramping} over {n}");
    // From 20m both faults compose as independent causes: 1 - (1 - 0.4)(1 - 0.5)(1 - 0.001) = 0.7003.
    let (both, n) = error_share(&h, start, 2, 21 * MINUTE, 30 * MINUTE);
    assert!(n > 40_000 && (0.69..0.71).contains(&both), "composed: {both} over {n}");
}

#[test]
fn a_metric_gap_is_absent_never_zero() {
    let extra = r#"
[[gap]]
function = "checkout"
version = 2
from = "2m"
until = "4m"
"#;
    let h = SimHarness::start(&lambda_scenario(
        "version = 1\nrouting = { version = 2, weight = 0.1 }",
        KNOWN_GOOD_1,
        extra,
    ));
    let start = h.sim.now_ms();
    h.sim.advance(6 * MINUTE);
    h.guards("metrics_delay = \"0s\"");
    let record = h.dir.path().join("evaluations.jsonl");
    let output = h.ripcord(&["check", "--dry-run", "--record", &record.display().to_string()]);
    assert!(output.status.code().is_some_and(|c| c != 1), "{}", stdout(&output));
    let evaluation: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&record).unwrap_or_default().trim())
            .unwrap_or_else(|e| panic!("{e}"));
    let minutes = |revision: &str| -> Vec<i64> {
        evaluation[revision]["metrics"]["requests"]["points"]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    .filter_map(|p| p[0].as_str())
                    .filter_map(|t| ripcord::model::time::timestamp(t).ok())
                    .map(|at| (at - start) / MINUTE)
                    .collect()
            })
            .unwrap_or_default()
    };
    // Three 1-minute windows: minutes 3, 4 and 5; the gap covers minutes 2 and 3 of the candidate only.
    assert_eq!(minutes("candidate"), [4, 5], "the gap's minute is absent: {evaluation}");
    assert_eq!(minutes("baseline"), [3, 4, 5], "the baseline has no gap");
}

#[test]
fn only_minutes_the_platform_has_finished_publishing_are_judged() {
    let h = SimHarness::start(
        &lambda_scenario("version = 1\nrouting = { version = 2, weight = 0.1 }", KNOWN_GOOD_1, "")
            .replace("[settings]\n", "[settings]\npublication_delay = \"2m\"\n"),
    );
    let start = h.sim.now_ms();
    h.sim.advance(10 * MINUTE + 30_000);
    let truth = |minute: i64| {
        h.sim
            .requests("checkout", start + minute * MINUTE, start + (minute + 1) * MINUTE)
            .iter()
            .filter(|r| r.version == 1)
            .count() as f64
    };
    let record = h.dir.path().join("evaluations.jsonl");
    let last_point = |delay: &str| -> (i64, f64) {
        let _ = std::fs::remove_file(&record);
        h.guards(&format!("metrics_delay = \"{delay}\""));
        h.ripcord(&["check", "--dry-run", "--record", &record.display().to_string()]);
        let evaluation: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&record).unwrap_or_default().trim())
                .unwrap_or_else(|e| panic!("{e}"));
        let points = evaluation["baseline"]["metrics"]["requests"]["points"].as_array().cloned().unwrap_or_default();
        let last = points.last().unwrap_or_else(|| panic!("no points: {evaluation}"));
        let at = ripcord::model::time::timestamp(last[0].as_str().unwrap_or_default()).unwrap_or_default();
        ((at - start) / MINUTE, last[1].as_f64().unwrap_or_default())
    };
    // Judging up to the last whole minute (9) while the platform publishes with a 2-minute delay: minute 8 is
    // partial (its second half not yet published) and minute 9 missing.
    let (minute, value) = last_point("0s");
    assert_eq!(minute, 8);
    assert!(value < 0.75 * truth(8), "a partial minute: {value} of {}", truth(8));
    // With metrics_delay matching the platform, the last minute judged is complete.
    let (minute, value) = last_point("3m");
    assert_eq!((minute, value), (6, truth(6)));
}

#[test]
fn traffic_follows_a_daily_curve() {
    let scenario = lambda_scenario("version = 1", "", "").replace(
        "traffic = { alias = \"live\", rps = 100 }",
        "traffic = { alias = \"live\", rps = 2, daily_amplitude = 0.5, peak = \"14:00\" }",
    );
    let h = SimHarness::start(&scenario);
    let start = h.sim.now_ms(); // 09:00 UTC
    h.sim.advance(18 * 60 * MINUTE);
    let count = |hour: i64| {
        h.sim
            .requests(
                "checkout",
                start + (hour - 9) * 60 * MINUTE - 30 * MINUTE,
                start + (hour - 9) * 60 * MINUTE + 30 * MINUTE,
            )
            .len() as f64
    };
    // 2 rps x (1 ± 0.5): about 10,800 requests in the hour around 14:00, about 3,600 around 02:00.
    let (peak, trough) = (count(14), count(26));
    assert!((9_800.0..11_800.0).contains(&peak), "peak hour: {peak}");
    assert!((2_900.0..4_300.0).contains(&trough), "trough hour: {trough}");
}

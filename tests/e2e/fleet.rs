//! A fleet-wide bad release: every guard of one cycle rolls back, and the rollbacks overlap — their prewarm waits
//! too, in the simulator's virtual time (the clock moves only once every guard waits) — so the last pin lands
//! within `prewarm_timeout` + 10 s of the verdict, also when the platform throttles the changes.

use crate::support::{SimHarness, stdout};
use ripcord::record::audit::{Action, Kind, Record};

/// Virtual time the simulator takes to make provisioned concurrency READY.
const ALLOCATION_MS: i64 = 30_000;

fn fleet_scenario(functions: usize) -> String {
    let mut text = format!(
        "seed = 5\nstart = \"2026-11-26T09:00:00Z\"\n[settings]\nprovisioned_allocation = \"{}s\"\n",
        ALLOCATION_MS / 1000
    );
    for i in 0..functions {
        text.push_str(&format!(
            "[[function]]\nname = \"fn-{i}\"\ntraffic = {{ alias = \"live\", rps = 20 }}\ntags = {{ \"ripcord:known-good:live\" = \"1\" }}\n\
             [[function.version]]\nnumber = 1\nerror_rate = 0.001\n[[function.version]]\nnumber = 2\nerror_rate = 0.3\n\
             [[function.alias]]\nname = \"live\"\nversion = 1\nrouting = {{ version = 2, weight = 0.1 }}\n"
        ));
    }
    text
}

/// Runs one `ripcord check` over a fleet of `functions` canaries at 30% errors, `aws` added to the `[aws]` table,
/// after `setup` (rate limits); checks every guard was pinned, warm; returns the harness and the results.
fn fleet_wide_bad_release(functions: usize, aws: &str, setup: impl Fn(&SimHarness)) -> (SimHarness, Vec<Record>) {
    let h = SimHarness::start(&fleet_scenario(functions));
    h.sim.advance(4 * 60_000);
    setup(&h);
    let mut text = format!(
        "[settings]\naudit_log = \"audit.jsonl\"\nclock = \"simulator\"\n[aws]\nendpoint_url = \"{}\"\n{aws}\n[defaults]\nwindow = \"1m\"\nwindows = 3\nprewarm = \"on-rollback\"\nprewarm_timeout = \"2m\"\n",
        h.server.endpoint()
    );
    for i in 0..functions {
        text.push_str(&format!(
            "[[guard]]\nname = \"g-{i}\"\nplatform = \"aws-lambda\"\nfunction = \"fn-{i}\"\nalias = \"live\"\npolicies = [{{ use = \"builtin:error-rate\" }}]\n"
        ));
    }
    std::fs::write(h.dir.path().join("guards.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let results: Vec<_> =
        h.audit().into_iter().filter(|r| r.record == Kind::Result && r.action == Action::Rollback).collect();
    assert_eq!(results.len(), functions, "every guard rolled back");
    for i in 0..functions {
        let alias = h.sim.function(&format!("fn-{i}")).and_then(|f| f.aliases.get("live").cloned());
        assert_eq!(alias.map(|a| (a.version, a.routing)), Some((1, None)), "fn-{i} pinned");
    }
    assert!(results.iter().all(|r| r.prewarm.as_ref().is_some_and(|p| p.ready)), "every target warm before its pin");
    (h, results)
}

fn slowest_pin(results: &[Record]) -> i64 {
    results.iter().filter_map(|r| r.timings.verdict_to_pin_ms).max().unwrap_or(i64::MAX)
}

#[test]
fn a_fleet_wide_bad_release_is_pinned_everywhere_within_the_prewarm_timeout() {
    let (_, results) = fleet_wide_bad_release(20, "", |_| {});
    // Each prewarm waits 30 s of virtual time for its capacity; one after another, the last would pin 600 s after
    // the verdict; all together, one allocation and one poll of the status (2 s).
    let slowest = slowest_pin(&results);
    assert!(slowest <= ALLOCATION_MS + 2_000, "the last pin landed {slowest} ms after the verdict");
}

#[test]
fn a_throttled_fleet_wide_rollback_backs_off_and_still_pins_everything_in_time() {
    // Lambda's control plane takes about 15 calls a second per API. Here UpdateAlias takes 10 a second while
    // ripcord is told the account's quota is 100 and let to send 40: the pins are refused (HTTP 429) and tried
    // again until they land.
    let limit = |h: &SimHarness, operation: &str, per_second: f64| {
        let error = ripcord_sim::ApiError::new(429, "TooManyRequestsException", "Rate exceeded");
        h.sim.limit_rate(ripcord_sim::RateLimit::new(operation, per_second, error));
    };
    let (h, results) = fleet_wide_bad_release(60, "changes_per_second = 40\n[aws.quotas]\nlambda_per_api = 100", |h| {
        limit(h, "UpdateAlias", 10.0);
        limit(h, "PutProvisionedConcurrencyConfig", 40.0);
        limit(h, "TagResource", 40.0);
    });
    let calls = h.sim.api_log();
    let refused = |op: &str| calls.iter().filter(|c| c.operation == op && c.status == 429).count();
    assert!(refused("UpdateAlias") > 0, "the pins were throttled");
    let slowest = slowest_pin(&results);
    assert!(slowest <= ALLOCATION_MS + 2_000, "the last pin landed {slowest} ms after the verdict");
    assert!(results.iter().all(|r| r.error.is_none()), "{:?}", results.iter().find(|r| r.error.is_some()));
}

//! A fleet-wide bad release: every guard of one cycle rolls back, and the rollbacks overlap — their prewarm waits
//! too, in the simulator's virtual time — so the last pin lands within `prewarm_timeout` + 10 s of the verdict.

use crate::support::{SimHarness, stdout};
use ripcord::audit::{Action, Kind};

const FUNCTIONS: usize = 20;

fn fleet_scenario() -> String {
    let mut text =
        String::from("seed = 5\nstart = \"2026-11-26T09:00:00Z\"\n[settings]\nprovisioned_allocation = \"30s\"\n");
    for i in 0..FUNCTIONS {
        text.push_str(&format!(
            "[[function]]\nname = \"fn-{i}\"\ntraffic = {{ alias = \"live\", rps = 20 }}\ntags = {{ \"ripcord:known-good:live\" = \"1\" }}\n\
             [[function.version]]\nnumber = 1\nerror_rate = 0.001\n[[function.version]]\nnumber = 2\nerror_rate = 0.3\n\
             [[function.alias]]\nname = \"live\"\nversion = 1\nrouting = {{ version = 2, weight = 0.1 }}\n"
        ));
    }
    text
}

#[test]
fn a_fleet_wide_bad_release_is_pinned_everywhere_within_the_prewarm_timeout() {
    let h = SimHarness::start(&fleet_scenario());
    h.sim.advance(4 * 60_000);
    let mut text = format!(
        "[settings]\naudit_log = \"audit.jsonl\"\nclock = \"simulator\"\n[aws]\nendpoint_url = \"{}\"\n[defaults]\nwindow = \"1m\"\nwindows = 3\nprewarm = \"on-rollback\"\nprewarm_timeout = \"2m\"\n",
        h.server.endpoint()
    );
    for i in 0..FUNCTIONS {
        text.push_str(&format!(
            "[[guard]]\nname = \"g-{i}\"\nplatform = \"aws-lambda\"\nfunction = \"fn-{i}\"\nalias = \"live\"\npolicies = [{{ use = \"builtin:error-rate\" }}]\n"
        ));
    }
    std::fs::write(h.dir.path().join("guards.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let results: Vec<_> =
        h.audit().into_iter().filter(|r| r.record == Kind::Result && r.action == Action::Rollback).collect();
    assert_eq!(results.len(), FUNCTIONS, "every guard rolled back");
    for i in 0..FUNCTIONS {
        let alias = h.sim.function(&format!("fn-{i}")).and_then(|f| f.aliases.get("live").cloned());
        assert_eq!(alias.map(|a| (a.version, a.routing)), Some((1, None)), "fn-{i} pinned");
    }
    let slowest = results.iter().filter_map(|r| r.timings.verdict_to_pin_ms).max().unwrap_or(i64::MAX);
    // Each prewarm waits 30 s of virtual time for its capacity; one after another, the last would pin 600 s after
    // the verdict.
    assert!(slowest <= 130_000, "the last pin landed {slowest} ms after the verdict");
    assert!(results.iter().all(|r| r.prewarm.as_ref().is_some_and(|p| p.ready)), "every target warm before its pin");
}

//! Fleets at the platforms' published API quotas: the simulator enforces them (`quotas = "published"`), ripcord
//! keeps to them, and no guard fails for throttling: a guard whose reads do not fit a cycle's read budget is
//! deferred — said so, with how old its newest judgement is — and read first next cycle; a throttle the platform
//! still answers (ripcord told a quota was raised that was not) defers the guard too, never fails it. Changes go
//! ahead of reads.

use crate::support::{SimHarness, stderr, stdout};
use serde_json::Value;

/// `functions` Lambda functions at 1 rps, each with its alias `live` on version 1 and a known good, under the
/// published quotas.
fn fleet(functions: usize) -> String {
    let mut text = "seed = 9\nstart = \"2026-11-26T09:00:00Z\"\n[settings]\nquotas = \"published\"\n".to_string();
    for i in 0..functions {
        text.push_str(&format!(
            "[[function]]\nname = \"fn-{i}\"\ntraffic = {{ alias = \"live\", rps = 1 }}\ntags = {{ \"ripcord:known-good:live\" = \"1\" }}\n\
             [[function.version]]\nnumber = 1\nerror_rate = 0.001\n[[function.alias]]\nname = \"live\"\nversion = 1\n"
        ));
    }
    text
}

/// guards.toml for the fleet: `aws` added to `[aws]`, each guard judged every `interval`.
fn guards(h: &SimHarness, functions: usize, aws: &str, interval: &str) {
    let mut text = format!(
        "[settings]\naudit_log = \"audit.jsonl\"\nclock = \"simulator\"\n[aws]\nendpoint_url = \"{}\"\n{aws}\n[defaults]\nwindow = \"1m\"\nwindows = 3\ninterval = \"{interval}\"\nmode = \"dry-run\"\n",
        h.server.endpoint()
    );
    for i in 0..functions {
        text.push_str(&format!(
            "[[guard]]\nname = \"g-{i}\"\nplatform = \"aws-lambda\"\nfunction = \"fn-{i}\"\nalias = \"live\"\npolicies = [{{ use = \"builtin:error-rate\" }}]\n"
        ));
    }
    std::fs::write(h.dir.path().join("guards.toml"), text).unwrap_or_else(|e| panic!("{e}"));
}

/// Each guard's outcome in one `watch --json` cycle line.
fn outcomes(cycle: &Value) -> Vec<(String, String)> {
    let guards = cycle["guards"].as_array().cloned().unwrap_or_default();
    guards
        .iter()
        .map(|g| {
            (g["guard"].as_str().unwrap_or_default().to_string(), g["outcome"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// The simulator refuses what goes past a published quota; ripcord never goes past it, so nothing is refused,
/// and what a cycle's read budget cannot hold is deferred and read first in the next.
#[test]
fn a_fleet_past_a_cycles_read_budget_is_deferred_then_served_first_never_failed() {
    const FUNCTIONS: usize = 120;
    let h = SimHarness::start(&fleet(FUNCTIONS));
    h.sim.advance(5 * 60_000);
    // An 8 s interval gives each cycle a 5 s read budget: about 5 s × 12 GetAlias a second (80% of Lambda's 15)
    // plus the burst — less than the fleet.
    guards(&h, FUNCTIONS, "", "8s");
    let output = h.ripcord(&["watch", "--cycles", "3", "--json"]);
    let cycles: Vec<Value> = stdout(&output).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(cycles.len(), 3, "{}\n{}", stdout(&output), stderr(&output));
    let mut judged = std::collections::BTreeSet::new();
    let mut deferred_before: Vec<String> = Vec::new();
    for (n, cycle) in cycles.iter().enumerate() {
        let outcomes = outcomes(cycle);
        assert_eq!(outcomes.len(), FUNCTIONS, "every guard has a result every cycle");
        let failed: Vec<_> = outcomes.iter().filter(|(_, o)| o == "failed").collect();
        assert!(failed.is_empty(), "cycle {n}: no guard fails for the quotas: {failed:?}\n{cycle}");
        for name in &deferred_before {
            let outcome = outcomes.iter().find(|(g, _)| g == name).map(|(_, o)| o.as_str());
            assert_ne!(outcome, Some("deferred"), "cycle {n}: {name}, deferred last cycle, is read first");
        }
        deferred_before = outcomes.iter().filter(|(_, o)| o == "deferred").map(|(g, _)| g.clone()).collect();
        judged.extend(outcomes.into_iter().filter(|(_, o)| o != "deferred").map(|(g, _)| g));
        if n == 0 {
            assert!(!deferred_before.is_empty(), "the first cycle cannot read {FUNCTIONS} guards in its budget");
            let deferred = cycle["guards"].as_array().into_iter().flatten().find(|g| g["outcome"] == "deferred");
            let reason = deferred.and_then(|g| g["reason"].as_str()).unwrap_or_default();
            assert!(reason.contains("deferred:") && reason.contains("read first next cycle"), "{reason}");
        }
    }
    assert_eq!(judged.len(), FUNCTIONS, "every guard judged within the cycles");
    // Throttles answer 429 (Lambda, Google) or 400 `Throttling` (CloudWatch).
    let refused = h
        .sim
        .api_log()
        .iter()
        .filter(|c| c.status == 429 || (c.operation == "GetMetricData" && c.status == 400))
        .count();
    assert_eq!(refused, 0, "ripcord kept to the published quotas: nothing was refused");
    // The audit log says it too: deferred decisions, none with an error.
    let audit = h.audit();
    assert!(audit.iter().any(|r| r.deferred && r.error.is_none()), "deferred decisions are recorded");
}

/// ripcord told the account's Lambda quota was raised when it was not: the simulator throttles, and the
/// throttled guards are deferred, not failed (a throttled call was not carried out; the next cycle tries again).
#[test]
fn a_throttle_the_platform_still_answers_defers_the_guard() {
    const FUNCTIONS: usize = 60;
    let h = SimHarness::start(&fleet(FUNCTIONS));
    h.sim.advance(5 * 60_000);
    guards(&h, FUNCTIONS, "[aws.quotas]\nlambda_per_api = 1000", "1m");
    let output = h.ripcord(&["check", "--json"]);
    let summary: Value =
        serde_json::from_str(stdout(&output).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(&output)));
    let outcomes = outcomes(&summary);
    assert!(outcomes.iter().all(|(_, o)| o != "failed"), "{summary}");
    let throttled = h.sim.api_log().iter().filter(|c| c.status == 429).count();
    assert!(throttled > 0, "the simulator enforced the published quota");
    assert!(outcomes.iter().any(|(_, o)| o == "deferred"), "throttled guards are deferred: {summary}");
    assert_ne!(output.status.code(), Some(1), "a deferral is not an error: {}", stderr(&output));
}

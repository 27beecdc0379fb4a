//! Fleets at the platforms' published API quotas: the simulator enforces them (`quotas = "published"`), ripcord
//! keeps to them, and no guard fails for throttling: a guard whose reads do not fit a cycle's read budget is
//! deferred — said so, with how old its newest judgement is — and read first next cycle; a throttle the platform
//! still answers (ripcord told a quota was raised that was not) defers the guard too, never fails it. Pins go
//! ahead of the rest of changes, changes ahead of reads.

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

/// A fleet of `functions` at 20 rps whose fn-0 also has a version 2 failing at `error_rate`, not deployed yet, five
/// minutes in; guards that act (no prewarm), judged every minute.
fn fleet_with_a_second_version(functions: usize, error_rate: f64) -> SimHarness {
    let scenario = fleet(functions).replacen(
        "[[function.alias]]\nname = \"live\"\nversion = 1\n",
        &format!("[[function.version]]\nnumber = 2\nerror_rate = {error_rate}\n[[function.alias]]\nname = \"live\"\nversion = 1\n"),
        1,
    );
    let h = SimHarness::start(&scenario.replace("rps = 1 }", "rps = 20 }"));
    h.sim.advance(5 * 60_000);
    guards(&h, functions, "", "1m");
    let text = std::fs::read_to_string(h.dir.path().join("guards.toml"))
        .unwrap_or_default()
        .replace("mode = \"dry-run\"", "prewarm = \"off\"");
    std::fs::write(h.dir.path().join("guards.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    h
}

/// One guard's result in an answer of `ripcord function`.
fn guard_result(body: &Value, guard: &str) -> Value {
    let guards = body["guards"].as_array().cloned().unwrap_or_default();
    guards.iter().find(|g| g["guard"] == guard).cloned().unwrap_or_default()
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

/// `functions` functions at `rps`, each with a version 2 failing 30% not deployed yet, five minutes in; guards that
/// act (no prewarm) every 8 s: a 5 s read budget, less than the fleet's fresh reads (GetAlias and ListTags each).
fn fleet_that_could_fail(functions: usize, rps: u32) -> SimHarness {
    let scenario = fleet(functions)
        .replace(
            "[[function.alias]]\nname = \"live\"\nversion = 1\n",
            "[[function.version]]\nnumber = 2\nerror_rate = 0.3\n[[function.alias]]\nname = \"live\"\nversion = 1\n",
        )
        .replace("rps = 1 }", &format!("rps = {rps} }}"));
    let h = SimHarness::start(&scenario);
    h.sim.advance(5 * 60_000);
    guards(&h, functions, "", "8s");
    let text = std::fs::read_to_string(h.dir.path().join("guards.toml")).unwrap_or_default();
    std::fs::write(h.dir.path().join("guards.toml"), text.replace("mode = \"dry-run\"", "prewarm = \"off\""))
        .unwrap_or_else(|e| panic!("{e}"));
    h
}

/// Deploys a failing 10% canary on `fn-N` and lets four minutes of it pass.
fn deploy_a_bad_canary(h: &SimHarness, n: usize) {
    h.sim.set_alias(&format!("fn-{n}"), "live", 1, Some((2, 0.1))).unwrap_or_else(|e| panic!("{e:?}"));
    h.sim.advance(4 * 60_000);
}

/// Whether `fn-N` was rolled back: its alias on version 1 alone.
fn rolled_back(h: &SimHarness, n: usize) -> bool {
    let alias = h.sim.function(&format!("fn-{n}")).and_then(|f| f.aliases.get("live").cloned());
    alias.is_some_and(|a| a.version == 1 && a.routing.is_none())
}

/// A fresh process (a cold start of the scheduled function) cannot read a large fleet in one cycle; it first asks
/// how much each alias's errors rose — the whole alias's metrics, which need no read of the alias, two queries a
/// guard in one batched call — and reads those first, so a bad canary deployed before a cold start is rolled back
/// in the first cycle. Here it is the guard the rotation of unread guards would read last.
#[test]
fn a_fresh_process_reads_first_the_deployments_whose_errors_rose() {
    const FUNCTIONS: usize = 150;
    let h = fleet_that_could_fail(FUNCTIONS, 20);
    // The cycle will start 4 minutes on; unread guards are read from a place that moves with the minute
    // (`Controller::read_order`): the bad canary goes on the guard that would be read last.
    let minute = ((h.sim.now_ms() + 4 * 60_000) / 60_000) as usize;
    let bad = (minute.wrapping_mul(7919) % FUNCTIONS + FUNCTIONS - 1) % FUNCTIONS;
    deploy_a_bad_canary(&h, bad);
    let output = h.ripcord(&["check", "--json"]);
    let summary: Value =
        serde_json::from_str(stdout(&output).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(&output)));
    let outcomes = outcomes(&summary);
    assert!(outcomes.iter().all(|(_, o)| o != "failed"), "{summary}");
    let deferred = outcomes.iter().filter(|(_, o)| o == "deferred").count();
    assert!(deferred > 0, "the cycle could not read every guard: {summary}");
    let result = guard_result(&summary, &format!("g-{bad}"));
    assert_eq!(result["outcome"], "rolled-back", "g-{bad} read first and rolled back: {result}\n{}", stderr(&output));
    assert!(rolled_back(&h, bad));
}

/// The cycles after a cold start read the guards deferred before first — and of those, the ones whose errors rose
/// first: a bad canary deployed on the deferred guard the next cycle would read last is rolled back in it.
#[test]
fn of_the_deferred_those_whose_errors_rose_are_read_first() {
    use crate::function::{Function, scheduled_event};
    const FUNCTIONS: usize = 300;
    let h = fleet_that_could_fail(FUNCTIONS, 10);
    let mut function = Function::start(&h);
    let first = function.invoke(scheduled_event());
    assert!(first.ok, "{:?}", first.body);
    let deferred: Vec<usize> =
        (0..FUNCTIONS).filter(|i| guard_result(&first.body, &format!("g-{i}"))["outcome"] == "deferred").collect();
    // More deferred than the next cycle reads: read in the configuration's order, the last would wait again.
    assert!(deferred.len() > FUNCTIONS / 2, "{} deferred of {FUNCTIONS}", deferred.len());
    let bad = *deferred.last().unwrap_or_else(|| panic!("none deferred"));
    deploy_a_bad_canary(&h, bad);
    let second = function.invoke(scheduled_event());
    assert!(second.ok, "{:?}", second.body);
    let result = guard_result(&second.body, &format!("g-{bad}"));
    assert_eq!(result["outcome"], "rolled-back", "g-{bad} read first of the deferred: {result}");
    assert!(rolled_back(&h, bad));
    let still_deferred =
        (0..FUNCTIONS).filter(|i| guard_result(&second.body, &format!("g-{i}"))["outcome"] == "deferred").count();
    assert!(still_deferred > 0, "the second cycle could not read every deferred guard either");
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

/// Reads grow with what changed. A long-running ripcord (function mode keeps its process between events) judges
/// a guard on the view of the deployment it read earlier when the quota leaves no turn to read it again — never
/// deferring or failing it for that — and when the metrics say the deployment changed since (a canary it does
/// not know took traffic), it does not judge the stale view: it reads it again, and once it can, rolls back.
#[test]
fn a_cached_view_is_judged_until_the_metrics_say_it_changed() {
    use crate::function::{Function, scheduled_event};
    // fn-0 gets a version 2 that fails, deployed later as a 10% canary (below).
    let h = fleet_with_a_second_version(5, 0.3);
    let mut function = Function::start(&h);
    let outcome = |body: &Value, guard: &str| -> String {
        guard_result(body, guard)["outcome"].as_str().unwrap_or_default().to_string()
    };
    let first = function.invoke(scheduled_event());
    assert!(first.ok, "{:?}", first.body);
    assert!((0..5).all(|i| outcome(&first.body, &format!("g-{i}")) == "no-action"), "{}", first.body);
    // Lambda refuses every alias and tag read from now on, and fn-0 gets a failing 10% canary.
    for operation in ["GetAlias", "ListAliases", "ListTags"] {
        let error = ripcord_sim::ApiError::new(429, "TooManyRequestsException", "Rate exceeded");
        h.sim.limit_rate(ripcord_sim::RateLimit::refusing(operation, error));
    }
    let reads_before = h.sim.api_log().iter().filter(|c| c.operation == "GetAlias").count();
    h.sim.set_alias("fn-0", "live", 1, Some((2, 0.1))).unwrap_or_else(|e| panic!("{e:?}"));
    h.sim.advance(3 * 60_000);
    let second = function.invoke(scheduled_event());
    assert!(second.ok, "{:?}", second.body);
    for i in 1..5 {
        assert_eq!(outcome(&second.body, &format!("g-{i}")), "no-action", "g-{i} judged on its view: {}", second.body);
    }
    assert_eq!(
        outcome(&second.body, "g-0"),
        "deferred",
        "a view the metrics contradict is not judged: {}",
        second.body
    );
    assert!(function.logs().contains("changed since it was read"), "{}", function.logs());
    assert!(h.sim.function("fn-0").and_then(|f| f.aliases.get("live").cloned()).is_some_and(|a| a.routing.is_some()));
    // The reads are let through again: the changed deployment is read afresh and its failing canary rolled back.
    for operation in ["GetAlias", "ListAliases", "ListTags"] {
        h.sim.limit_rate(ripcord_sim::RateLimit::new(operation, 0.0, ripcord_sim::ApiError::new(429, "x", "x")));
    }
    h.sim.advance(60_000);
    let third = function.invoke(scheduled_event());
    assert!(third.ok, "{:?}", third.body);
    assert_eq!(outcome(&third.body, "g-0"), "rolled-back", "{}", third.body);
    let alias = h.sim.function("fn-0").and_then(|f| f.aliases.get("live").cloned());
    assert_eq!(alias.map(|a| (a.version, a.routing)), Some((1, None)));
    let reads_after = h.sim.api_log().iter().filter(|c| c.operation == "GetAlias" && c.status == 200).count();
    assert!(reads_after > reads_before, "read afresh");
}

/// A deployment whose metrics say its alias changed is read again without its tags: the alias alone (GetAlias, or
/// ListAliases when its quota has the sooner turn), its markers kept from the view — which only ripcord writes —
/// so a fleet-wide deploy's aliases are read again at the alias reads' rate, not halved by ListTags's quota. Here
/// ListTags is refused throughout, and the changed deployment is still judged, on its new canary, at once; the
/// canary's rollout marker goes into the view instead of forgetting it.
#[test]
fn a_changed_alias_is_read_again_without_its_tags() {
    use crate::function::{Function, scheduled_event};
    let h = fleet_with_a_second_version(3, 0.001);
    let mut function = Function::start(&h);
    let result = guard_result;
    let first = function.invoke(scheduled_event());
    assert!(first.ok, "{:?}", first.body);
    assert_eq!(result(&first.body, "g-0")["deployment"]["candidate"], "1", "{}", first.body);
    // From now on Lambda refuses every tag read; fn-0 gets a 10% canary of version 2.
    let error = ripcord_sim::ApiError::new(429, "TooManyRequestsException", "Rate exceeded");
    h.sim.limit_rate(ripcord_sim::RateLimit::refusing("ListTags", error));
    h.sim.set_alias("fn-0", "live", 1, Some((2, 0.1))).unwrap_or_else(|e| panic!("{e:?}"));
    h.sim.advance(3 * 60_000);
    let calls_before = h.sim.api_log().len();
    let second = function.invoke(scheduled_event());
    assert!(second.ok, "{:?}", second.body);
    let g0 = result(&second.body, "g-0");
    assert_ne!(g0["outcome"], "deferred", "read again without tags, and judged: {}", second.body);
    assert_eq!((g0["deployment"]["primary"].as_str(), g0["deployment"]["candidate"].as_str()), (Some("1"), Some("2")));
    assert!(function.logs().contains("changed since it was read"), "{}", function.logs());
    let calls: Vec<_> = h.sim.api_log().into_iter().skip(calls_before).collect();
    let on_fn0 = |operation: &str| calls.iter().filter(|c| c.operation == operation && c.function == "fn-0").count();
    assert!(on_fn0("GetAlias") + on_fn0("ListAliases") >= 2, "the refresh, then the alias alone: {calls:?}");
    // The canary's rollout was recorded (a tag write, which the quota allows) and kept in the view: the next
    // invocation judges fn-0 on it while tags still cannot be read.
    assert!(on_fn0("TagResource") >= 1, "{calls:?}");
    h.sim.advance(60_000);
    let third = function.invoke(scheduled_event());
    let g0 = result(&third.body, "g-0");
    assert_ne!(g0["outcome"], "deferred", "{}", third.body);
    assert_eq!(g0["deployment"]["candidate"], "2", "{}", third.body);
}

/// Cloud Run: a region's services are read in one ListServices a cycle (a page per 500), not a GetService and a
/// ListRevisions each; a split's candidate is its newest created revision, without listing revisions.
#[test]
fn cloud_run_reads_a_regions_services_in_one_list() {
    const SERVICES: usize = 40;
    let mut scenario = "seed = 4\nstart = \"2026-11-26T09:00:00Z\"\n[settings]\nquotas = \"published\"\n".to_string();
    for i in 0..SERVICES {
        let (split, revisions) = if i == 0 {
            (
                "[[service.traffic]]\nrevision = \"svc-0-00001-aaa\"\npercent = 90\n[[service.traffic]]\nrevision = \"svc-0-00002-bbb\"\npercent = 10\n",
                "[[service.revision]]\nname = \"svc-0-00001-aaa\"\n[[service.revision]]\nname = \"svc-0-00002-bbb\"\n"
                    .to_string(),
            )
        } else {
            (
                "[[service.traffic]]\nlatest = true\npercent = 100\n",
                format!("[[service.revision]]\nname = \"svc-{i}-00001-aaa\"\n"),
            )
        };
        scenario.push_str(&format!(
            "[[service]]\nname = \"svc-{i}\"\nproject = \"acme\"\nlocation = \"europe-west1\"\nrps = 1\n{revisions}{split}"
        ));
    }
    let h = SimHarness::start(&scenario);
    h.sim.advance(5 * 60_000);
    let mut text = format!(
        "[settings]\naudit_log = \"audit.jsonl\"\nclock = \"simulator\"\n[gcp]\nendpoint_url = \"{}\"\n[defaults]\nwindow = \"1m\"\nwindows = 3\nmode = \"dry-run\"\n",
        h.server.endpoint()
    );
    for i in 0..SERVICES {
        text.push_str(&format!(
            "[[guard]]\nname = \"g-{i}\"\nplatform = \"cloud-run\"\nproject = \"acme\"\nlocation = \"europe-west1\"\nservice = \"svc-{i}\"\npolicies = [{{ use = \"builtin:error-rate\" }}]\n"
        ));
    }
    std::fs::write(h.dir.path().join("guards.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let output = h.ripcord(&["check", "--json"]);
    let summary: Value = serde_json::from_str(stdout(&output).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&output), stderr(&output)));
    assert!(outcomes(&summary).iter().all(|(_, o)| o == "no-action"), "{summary}");
    let calls = |op: &str| h.sim.api_log().iter().filter(|c| c.operation == op).count();
    assert_eq!(calls("ListServices"), 1, "one page for the region");
    assert_eq!(calls("GetService"), 0, "no service read one by one");
    assert_eq!(calls("ListRevisions"), 0, "the split's newest revision is the service's newest created");
    let g0 =
        summary["guards"].as_array().into_iter().flatten().find(|g| g["guard"] == "g-0").cloned().unwrap_or_default();
    assert_eq!(
        g0["deployment"]["candidate"], "svc-0-00002-bbb",
        "the newest revision in the split is the candidate: {g0}"
    );
}

//! A policy that prints, panics, throws or aborts — in Rust, JavaScript, Python or C — does not take a cycle
//! down: under `check`, `watch` and `function` mode (all of which run the policies from an async runtime), the
//! failing policy is recorded as inconclusive naming the plugin and the cause, what it printed reaches the log at
//! debug level attributed to it, every other guard is served (a failing canary is still rolled back), and the
//! audit log has a decision for every guard.

use crate::function::{Function, scheduled_event};
use crate::polyglot::build;
use crate::support::{SimHarness, guest, repo_root, stderr, stdout, temp_dir};
use ripcord::record::audit::Kind;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Two functions: `checkout` with a failing 10% canary (v2, 30% errors from 2 minutes in), `search` healthy.
pub(crate) const SCENARIO: &str = r#"
seed = 5
start = "2026-11-26T09:00:00Z"
[settings]
provisioned_allocation = "30s"
[[function]]
name = "checkout"
traffic = { alias = "live", rps = 100 }
tags = { "ripcord:known-good:live" = "1" }
[[function.version]]
number = 1
latency_ms = 100
error_rate = 0.001
[[function.version]]
number = 2
latency_ms = 100
error_rate = 0.001
[[function.alias]]
name = "live"
version = 1
routing = { version = 2, weight = 0.1 }
[[function]]
name = "search"
traffic = { alias = "live", rps = 50 }
[[function.version]]
number = 1
latency_ms = 80
error_rate = 0.001
[[function.alias]]
name = "live"
version = 1
[[fault]]
function = "checkout"
version = 2
from = "2m"
error_rate = 0.3
"#;

/// One hostile policy: its guard, its component, the identity its messages carry, the cause its failure must
/// name, the parameters it runs with, and what it prints (QuickJS built without WASI has no console).
struct Policy {
    guard: &'static str,
    component: PathBuf,
    identity: &'static str,
    cause: &'static str,
    params: &'static str,
    prints: Option<&'static str>,
}

/// The hostile policies, built once.
struct Hostile {
    _dir: tempfile::TempDir,
    policies: Vec<Policy>,
}

fn hostile_policies() -> &'static Hostile {
    static BUILT: OnceLock<Hostile> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = temp_dir();
        let mut policies = vec![Policy {
            guard: "hostile-rust",
            component: guest("hostile"),
            identity: "`hostile@0.1.0`",
            cause: "hostile plugin prints, then panics",
            params: r#", params = { behaviour = "print-and-panic" }"#,
            prints: Some("hostile-rust about to fail"),
        }];
        let projects = repo_root().join("plugins/hostile/polyglot");
        let languages = [
            (
                "js",
                "hostile-js",
                "`hostile-js@0.1.0`",
                "unknown enum case: bogus",
                r#", params = { behaviour = "bad-shape" }"#,
                None,
            ),
            (
                "js-spidermonkey",
                "hostile-js-sm",
                "`hostile-js@0.1.0`",
                "expected a string, received [object]",
                "",
                Some("hostile-js about to fail"),
            ),
            (
                "python",
                "hostile-python",
                "`hostile-python@0.1.0`",
                "hostile python policy raises on purpose",
                "",
                Some("hostile-python about to fail"),
            ),
            (
                "c",
                "hostile-c",
                "`hostile-c@0.1.0`",
                "hostile c policy aborts on purpose",
                "",
                Some("hostile-c about to fail"),
            ),
        ];
        for (project, guard, identity, cause, params, prints) in languages {
            let out = dir.path().join(format!("{guard}.wasm"));
            if let Some(component) = build(project, &projects.join(project), &out, &dir.path().join("cache")) {
                policies.push(Policy { guard, component, identity, cause, params, prints });
            }
        }
        Hostile { _dir: dir, policies }
    })
}

/// guards.toml: `checkout-api` (builtin:error-rate on the failing canary), then the `[[guard]]` tables of `extra`;
/// `settings` go into `[settings]`.
pub(crate) fn write_guards(h: &SimHarness, settings: &str, extra: &str) {
    let text = format!(
        r#"
[settings]
audit_log = "audit.jsonl"
clock = "simulator"
{settings}
[aws]
endpoint_url = "{}"
[defaults]
window = "1m"
windows = 3
prewarm = "off"
[[guard]]
name = "checkout-api"
platform = "aws-lambda"
function = "checkout"
alias = "live"
policies = [{{ use = "builtin:error-rate", params = {{ max_rate = 0.02, windows = 2, min_requests = 100 }} }}]
{extra}"#,
        h.server.endpoint()
    );
    std::fs::write(h.dir.path().join("guards.toml"), text).unwrap_or_else(|e| panic!("{e}"));
}

/// A guard on the healthy `search` function with one policy: `use` and its `params` (`, params = {…}` or empty).
fn search_guard(name: &str, use_: &str, params: &str) -> String {
    format!(
        "[[guard]]\nname = \"{name}\"\nplatform = \"aws-lambda\"\nfunction = \"search\"\nalias = \"live\"\npolicies = [{{ use = {use_:?}{params} }}]\n"
    )
}

/// guards.toml: `checkout-api` and one guard per hostile policy on the healthy `search` function.
fn guards(h: &SimHarness) {
    let hostile: String = hostile_policies()
        .policies
        .iter()
        .map(|p| search_guard(p.guard, &p.component.display().to_string(), p.params))
        .collect();
    write_guards(h, "", &hostile);
}

fn harness() -> SimHarness {
    let h = SimHarness::start(SCENARIO);
    h.sim.advance(5 * 60_000);
    guards(&h);
    h
}

/// Every guard has a decision; each hostile guard's names its plugin and the cause; checkout was pinned to v1.
fn assert_contained(h: &SimHarness, cycles: usize) {
    let audit = h.audit();
    for p in &hostile_policies().policies {
        let name = p.guard;
        let decisions: Vec<_> = audit.iter().filter(|r| r.guard == name && r.record == Kind::Decision).collect();
        assert_eq!(decisions.len(), cycles, "{name}: one decision per cycle: {audit:?}");
        for decision in decisions {
            assert_eq!(decision.verdict, ripcord::model::verdict::Verdict::Inconclusive, "{name}");
            let error = decision.policies[0].error.clone().unwrap_or_default();
            assert!(error.contains(p.identity), "{name}: the error names the plugin: {error}");
            assert!(error.contains(p.cause), "{name}: the error says the cause: {error}");
        }
    }
    let function = h.sim.function("checkout").unwrap_or_else(|| panic!("no checkout"));
    let live = function.aliases.get("live").cloned().unwrap_or_else(|| panic!("no alias"));
    assert_eq!((live.version, live.routing), (1, None), "the failing canary was rolled back");
    assert!(
        audit
            .iter()
            .any(|r| r.guard == "checkout-api" && r.outcome.map(|o| o.to_string()).as_deref() == Some("pinned"))
    );
}

/// What each hostile policy printed is in the log at debug level, attributed to it.
fn assert_output_logged(logs: &str) {
    for p in &hostile_policies().policies {
        let Some(printed) = p.prints else { continue };
        let line = logs.lines().find(|l| l.contains(printed) && l.contains(p.identity));
        assert!(line.is_some(), "{}: its output is not in the log:\n{logs}", p.guard);
    }
}

#[test]
fn check_contains_hostile_policies_in_every_language_and_serves_every_guard() {
    let h = harness();
    let output = h.ripcord(&["check", "--log", "ripcord::plugin=debug"]);
    assert_eq!(output.status.code(), Some(2), "rollback wins:\n{}\n{}", stdout(&output), stderr(&output));
    assert_contained(&h, 1);
    assert_output_logged(&stderr(&output));
    // ripcord's own lines: a panic of the process would start with "thread '…' panicked" (the plugins' panic
    // messages are in the log lines, after a timestamp).
    assert!(!stderr(&output).lines().any(|l| l.starts_with("thread '")), "{}", stderr(&output));
}

#[test]
fn check_dry_run_contains_hostile_policies() {
    let h = harness();
    let output = h.ripcord(&["check", "--dry-run"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    let audit = h.audit();
    for p in &hostile_policies().policies {
        assert!(audit.iter().any(|r| r.guard == p.guard && r.record == Kind::Decision), "{}: {audit:?}", p.guard);
    }
    assert!(h.mutations().is_empty(), "dry-run changed the platform: {:?}", h.mutations());
}

#[test]
fn watch_contains_hostile_policies_cycle_after_cycle() {
    let h = harness();
    let output = h.ripcord(&["watch", "--cycles", "2"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert_contained(&h, 2);
}

#[test]
fn function_mode_contains_hostile_policies() {
    let h = harness();
    let mut function = Function::start_with_log(&h, "ripcord::plugin=debug");
    let result = function.invoke(scheduled_event());
    assert!(result.ok, "{:?}\n{}", result.body, function.logs());
    assert_eq!(result.body["exit_code"], 2, "{}", result.body);
    assert_contained(&h, 1);
    assert_output_logged(&function.logs());
    // Still answering: a second event is served by the same process.
    let again = function.invoke(scheduled_event());
    assert!(again.ok, "{:?}", again.body);
}

/// A hostile `latency-thresholds` (contract 0.3.0) — one that loops past the deadline, panics, or asks for more
/// thresholds than allowed or a threshold of 0 ms — fails only its own policy for the cycle (recorded with the
/// plugin's identity and the cause; its `evaluate` is not asked), and the failing canary beside it is rolled back.
#[test]
fn a_hostile_latency_thresholds_export_fails_only_its_policy() {
    let h = SimHarness::start(SCENARIO);
    h.sim.advance(5 * 60_000);
    let hostile = guest("hostile").display().to_string();
    let cases = [
        ("loops", "loop", "deadline"),
        ("panics", "trap", "panics in latency-thresholds on purpose"),
        ("too-many", "too-many", "at most 8 are allowed"),
        ("zero", "zero", "each at least 1 ms"),
    ];
    let extra: String = cases
        .iter()
        .map(|(name, behaviour, _)| {
            search_guard(name, &hostile, &format!(", params = {{ thresholds = \"{behaviour}\" }}"))
        })
        .collect();
    write_guards(&h, "", &extra);
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "rollback wins:\n{}\n{}", stdout(&output), stderr(&output));
    let audit = h.audit();
    for (name, _, cause) in cases {
        let decision = audit.iter().find(|r| r.guard == name && r.record == Kind::Decision);
        let decision = decision.unwrap_or_else(|| panic!("{name}: no decision: {audit:?}"));
        assert_eq!(decision.verdict, ripcord::model::verdict::Verdict::Inconclusive, "{name}");
        let error = decision.policies[0].error.clone().unwrap_or_default();
        assert!(error.contains("`hostile@0.1.0`"), "{name}: the error names the plugin: {error}");
        assert!(error.contains(cause), "{name}: the error says the cause: {error}");
    }
    let function = h.sim.function("checkout").unwrap_or_else(|| panic!("no checkout"));
    let live = function.aliases.get("live").cloned().unwrap_or_else(|| panic!("no alias"));
    assert_eq!((live.version, live.routing), (1, None), "the failing canary was rolled back");
}

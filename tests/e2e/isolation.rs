//! One guard's broken policy never leaves the other guards unprotected. Every kind of broken or hostile artifact a
//! careless or hostile upload can leave — an empty file, a core module, a module with the wrong exports, a
//! truncated or random file, a component header followed by 50 MB of garbage, a WASI command, a component of the
//! wrong contract shape, a directory, a missing file, a `describe` that loops past the deadline or panics, a memory
//! of 1 GiB — and a guard whose own fields or parameters are invalid: that guard is an error every cycle, with its
//! cause in the output, the audit log, the notification and the metrics, and the failing canary beside it is
//! rolled back and pinned in `check`, `watch`, `function` and a Cloud Run Job's tasks. A fixed upload heals the
//! guard without a restart. `validate` lists every problem of a configuration, calling nothing.

use crate::containment::SCENARIO;
use crate::function::{Function, scheduled_event};
use crate::support::{SimHarness, guest, stderr, stdout, temp_dir, webhook_receiver};
use ripcord::model::verdict::{Finding, Verdict};
use ripcord::record::audit::Kind;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One way a guard can be broken: the guard's policy line (`use` and params), or a line of its own fields, and a
/// piece of the cause its error must name.
struct Broken {
    kind: &'static str,
    /// The policies of the guard (`[{ use = … }]`).
    policies: String,
    /// Extra fields of the guard's table.
    fields: &'static str,
    cause: &'static str,
}

/// The broken artifacts, made once.
struct Artifacts {
    _dir: tempfile::TempDir,
    kinds: Vec<Broken>,
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("{e}"))
}

/// Deterministic bytes that are not WebAssembly (xorshift).
fn garbage(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn artifacts() -> &'static Artifacts {
    static MADE: OnceLock<Artifacts> = OnceLock::new();
    MADE.get_or_init(|| {
        let dir = temp_dir();
        let d = dir.path();
        let good = std::fs::read(guest("error-rate")).unwrap_or_else(|e| panic!("{e}"));
        let mut header_then_garbage = good[..8].to_vec();
        header_then_garbage.extend(garbage(50 << 20, 7));
        let command = wat(r#"(component
            (core module $m (func (export "run") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func $run (result (result)) (canon lift (core func $i "run")))
            (instance $cli (export "run" (func $run)))
            (export "wasi:cli/run@0.2.0" (instance $cli)))"#);
        let wrong_shape = wat(r#"(component
            (core module $m (func (export "describe")))
            (core instance $i (instantiate $m))
            (func $describe (canon lift (core func $i "describe")))
            (instance $policy (export "describe" (func $describe)))
            (export "ripcord:policy/evaluator@0.1.0" (instance $policy)))"#);
        std::fs::create_dir(d.join("a-directory.wasm")).unwrap_or_else(|e| panic!("{e}"));
        let files: Vec<(&str, PathBuf, &str)> = vec![
            ("an empty file", write(d, "empty.wasm", b""), "the file is empty"),
            ("a core module", write(d, "core.wasm", &wat("(module)")), "core WebAssembly module, not a component"),
            (
                "a module with the wrong exports",
                write(d, "exports.wasm", &wat(r#"(module (func (export "evaluate")) (memory (export "memory") 1))"#)),
                "core WebAssembly module, not a component",
            ),
            ("a truncated component", write(d, "truncated.wasm", &good[..good.len() / 2]), "is out of bounds"),
            ("random bytes", write(d, "random.wasm", &garbage(4096, 3)), "not WebAssembly"),
            (
                "a component header then 50 MB of garbage",
                write(d, "garbage.wasm", &header_then_garbage),
                "malformed section",
            ),
            ("a WASI command", write(d, "command.wasm", &command), "is not a ripcord policy"),
            (
                "a component of the wrong contract shape",
                write(d, "shape.wasm", &wrong_shape),
                "does not have export `evaluate`",
            ),
            ("a directory", d.join("a-directory.wasm"), "directory"),
            ("a missing file", d.join("missing.wasm"), "No such file"),
            ("a describe that loops", guest("hostile-describe-loop"), "deadline"),
            ("a describe that panics", guest("hostile-describe-panic"), "hostile describe panics on purpose"),
            (
                "a memory of 1 GiB",
                guest("hostile-huge-memory"),
                "its memory starts larger than the plugin memory limit",
            ),
        ];
        let mut kinds: Vec<Broken> = files
            .into_iter()
            .map(|(kind, path, cause)| Broken {
                kind,
                policies: format!("[{{ use = {:?} }}]", path.display().to_string()),
                fields: "",
                cause,
            })
            .collect();
        kinds.push(Broken {
            kind: "a parameter its policy does not declare",
            policies: r#"[{ use = "builtin:error-rate", params = { max_rat = 0.05 } }]"#.into(),
            fields: "",
            cause: "has no parameter \"max_rat\"",
        });
        kinds.push(Broken {
            kind: "an invalid platform field",
            policies: r#"[{ use = "builtin:error-rate" }]"#.into(),
            fields: "region = \"\"\n",
            cause: "region",
        });
        Artifacts { _dir: dir, kinds }
    })
}

/// guards.toml: `checkout-api` on the failing canary, then one guard per broken kind (`broken-0`, …) on the healthy
/// `search` function; `settings` go into `[settings]`.
fn write_guards(h: &SimHarness, kinds: &[&Broken], settings: &str) {
    let broken: String = kinds
        .iter()
        .enumerate()
        .map(|(i, broken)| {
            format!(
                "[[guard]]\nname = \"broken-{i}\"\nplatform = \"aws-lambda\"\nfunction = \"search\"\nalias = \"live\"\n{}policies = {}\n",
                broken.fields, broken.policies
            )
        })
        .collect();
    crate::containment::write_guards(h, settings, &broken);
}

fn harness(kinds: &[&Broken], settings: &str) -> SimHarness {
    let h = SimHarness::start(SCENARIO);
    h.sim.advance(5 * 60_000);
    write_guards(&h, kinds, settings);
    h
}

/// The failing canary was rolled back to v1 and the pin verified.
fn assert_pinned(h: &SimHarness, context: &str) {
    assert_eq!(h.alias(), (1, None), "{context}: the failing canary beside the broken guard was not rolled back");
    let audit = h.audit();
    let pinned = audit
        .iter()
        .any(|r| r.guard == "checkout-api" && r.outcome.map(|o| o.to_string()).as_deref() == Some("pinned"));
    assert!(pinned, "{context}: no pinned result: {audit:?}");
}

/// Every broken guard has `cycles` decision records: inconclusive, the `guard-error` finding, its cause named.
fn assert_in_error(h: &SimHarness, kinds: &[&Broken], cycles: usize) {
    let audit = h.audit();
    let mut wrong = Vec::new();
    for (i, broken) in kinds.iter().enumerate() {
        let name = format!("broken-{i}");
        let decisions: Vec<_> = audit.iter().filter(|r| r.guard == name && r.record == Kind::Decision).collect();
        assert_eq!(decisions.len(), cycles, "{}: one decision per cycle: {decisions:?}", broken.kind);
        for decision in decisions {
            assert_eq!(decision.verdict, Verdict::Inconclusive, "{}", broken.kind);
            assert_eq!(decision.findings, [Finding::GuardError], "{}", broken.kind);
            let error = decision.error.clone().unwrap_or_default();
            if !error.contains(broken.cause) || !error.contains("guards.toml") {
                wrong.push(format!("{}: the error must name the file and {:?}: {error}", broken.kind, broken.cause));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The results of `check --json`, by guard.
fn results(output: &std::process::Output) -> Vec<Value> {
    let summary: Value = serde_json::from_str(stdout(output).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(output), stderr(output)));
    summary["guards"].as_array().cloned().unwrap_or_default()
}

#[test]
fn check_serves_the_other_guard_whatever_is_wrong_with_one() {
    for broken in &artifacts().kinds {
        let h = harness(&[broken], "");
        let output = h.ripcord(&["check", "--json"]);
        let context = format!("{}\n{}\n{}", broken.kind, stdout(&output), stderr(&output));
        assert_eq!(output.status.code(), Some(2), "a rollback this cycle wins: {context}");
        assert_pinned(&h, &context);
        assert_in_error(&h, &[broken], 1);
        let results = results(&output);
        let result = results.iter().find(|r| r["guard"] == "broken-0").unwrap_or_else(|| panic!("{context}"));
        assert_eq!(result["outcome"], "failed", "{context}");
        assert_eq!(result["findings"][0], "guard-error", "{context}");
        assert!(result["error"].as_str().unwrap_or_default().contains(broken.cause), "{context}");
        // The next cycle: nothing to roll back, and the exit code stays 1 while a guard is in error.
        let again = h.ripcord(&["check"]);
        assert_eq!(again.status.code(), Some(1), "{}: {}\n{}", broken.kind, stdout(&again), stderr(&again));
        assert!(stdout(&again).contains("GUARD ERROR"), "{}: {}", broken.kind, stdout(&again));
    }
}

#[test]
fn watch_serves_the_other_guards_cycle_after_cycle() {
    let kinds: Vec<&Broken> = artifacts().kinds.iter().collect();
    let h = harness(&kinds, "");
    let output = h.ripcord(&["watch", "--cycles", "2"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert_pinned(&h, &stderr(&output));
    assert_in_error(&h, &kinds, 2);
}

#[test]
fn function_mode_serves_the_other_guards_and_counts_the_guard_errors() {
    let kinds: Vec<&Broken> = artifacts().kinds.iter().collect();
    let h = harness(&kinds, "");
    let mut function = Function::start(&h);
    let result = function.invoke(scheduled_event());
    assert!(result.ok, "{:?}\n{}", result.body, function.logs());
    assert_eq!(result.body["exit_code"], 2, "{}", result.body);
    assert_pinned(&h, &function.logs());
    assert_in_error(&h, &kinds, 1);
    // The metrics: one GuardErrors count per broken guard (Embedded Metric Format on stdout).
    let metrics: Vec<Value> = function.printed().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    for i in 0..kinds.len() {
        let line = metrics.iter().find(|m| m["Guard"] == format!("broken-{i}").as_str());
        assert_eq!(line.map(|m| m["GuardErrors"].clone()), Some(1.into()), "broken-{i}: {metrics:?}");
    }
    let checkout = metrics.iter().find(|m| m["Guard"] == "checkout-api").map(|m| m["GuardErrors"].clone());
    assert_eq!(checkout, Some(0.into()));
    let again = function.invoke(scheduled_event());
    assert!(again.ok, "still answering: {:?}", again.body);
    assert_in_error(&h, &kinds, 2);
}

#[test]
fn cloud_run_job_tasks_serve_their_guards_beside_broken_ones() {
    let kinds: Vec<&Broken> = artifacts().kinds.iter().collect();
    let h = harness(&kinds, "");
    let config = h.dir.path().join("guards.toml").display().to_string();
    let mut seen = Vec::new();
    for index in 0..2 {
        let output = Command::new(env!("CARGO_BIN_EXE_ripcord"))
            .args(["check", "--json", "--config", &config])
            .env("CLOUD_RUN_JOB", "ripcord")
            .env("CLOUD_RUN_TASK_INDEX", index.to_string())
            .env("CLOUD_RUN_TASK_COUNT", "2")
            .env("RIPCORD_CACHE_DIR", h.dir.path().join("cache"))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(output.status.code(), Some(1 | 2)), "{}\n{}", stdout(&output), stderr(&output));
        seen.extend(results(&output).into_iter().filter_map(|r| r["guard"].as_str().map(str::to_string)));
    }
    seen.sort();
    assert_eq!(seen.len(), kinds.len() + 1, "every guard in exactly one task: {seen:?}");
    assert_pinned(&h, "cloud run job");
    assert_in_error(&h, &kinds, 1);
}

/// The guard's broken policy is reported to people every cycle: its decision goes to the webhook.
#[test]
fn a_guard_in_error_is_notified() {
    let kind = &artifacts().kinds[0];
    let (port, receiver) = webhook_receiver(3);
    let h = harness(&[kind], &format!("webhook = \"http://127.0.0.1:{port}/hook\"\nwebhook_format = \"slack\""));
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    let bodies = receiver.join().unwrap_or_default();
    let texts: Vec<String> = bodies
        .iter()
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    let alert = texts.iter().find(|t| t.contains("broken-0 is NOT PROTECTED")).unwrap_or_else(|| panic!("{texts:?}"));
    assert!(alert.contains(kind.cause), "{alert}");
    assert!(texts.iter().any(|t| t.contains("rolled back checkout-api")), "{texts:?}");
}

/// A broken upload fixed in place heals its guard at the next cycle, without a restart of the process.
#[test]
fn a_fixed_upload_heals_the_guard_without_a_restart() {
    let h = SimHarness::start(SCENARIO);
    h.sim.advance(5 * 60_000);
    let policy = h.dir.path().join("policy.wasm");
    std::fs::write(&policy, b"not yet").unwrap_or_else(|e| panic!("{e}"));
    let broken = Broken {
        kind: "uploaded later",
        policies: format!("[{{ use = {:?} }}]", policy.display().to_string()),
        fields: "",
        cause: "not WebAssembly",
    };
    write_guards(&h, &[&broken], "");
    let mut function = Function::start(&h);
    let first = function.invoke(scheduled_event());
    assert!(first.ok, "{:?}", first.body);
    assert_in_error(&h, &[&broken], 1);
    std::fs::copy(guest("error-rate"), &policy).unwrap_or_else(|e| panic!("{e}"));
    let second = function.invoke(scheduled_event());
    assert!(second.ok, "{:?}", second.body);
    let audit = h.audit();
    let last = audit.iter().rev().find(|r| r.guard == "broken-0" && r.record == Kind::Decision);
    let last = last.unwrap_or_else(|| panic!("{audit:?}"));
    assert!(last.findings.is_empty() && last.error.is_none(), "healed: {last:?}");
    assert_eq!(last.policies.len(), 1, "judged by the fixed policy: {last:?}");
    assert!(function.logs().contains("served again"), "{}", function.logs());
}

/// `validate`: every problem of a configuration with several — global ones, a guard's own fields, a policy that
/// cannot be loaded, a parameter its policy does not declare — with file, guard, field and value; exit 1; and
/// nothing called on the platform.
#[test]
fn validate_lists_every_problem_and_calls_nothing() {
    let kinds: Vec<&Broken> = artifacts().kinds.iter().collect();
    let h = harness(&kinds, "webhook = \"localhost:9\"");
    let output = h.ripcord(&["validate"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}\n{}", stderr(&output));
    assert!(text.contains("settings.webhook: must be an http(s) URL"), "{text}");
    for (i, broken) in kinds.iter().enumerate() {
        let line = text.lines().find(|l| l.contains(&format!("guard \"broken-{i}\"")));
        let line = line.unwrap_or_else(|| panic!("{}: not listed:\n{text}", broken.kind));
        assert!(line.contains("guards.toml: guard[") && line.contains(broken.cause), "{}: {line}", broken.kind);
    }
    assert!(
        text.contains(&format!("{} problems; 1 of {} guards would be served", kinds.len() + 1, kinds.len() + 1)),
        "{text}"
    );
    assert!(h.operations().is_empty(), "validate called the platform: {:?}", h.operations());
    let json = h.ripcord(&["validate", "--json"]);
    let answer: Value = serde_json::from_str(stdout(&json).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(&json)));
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["problems"].as_array().map(Vec::len), Some(kinds.len() + 1), "{answer}");
    assert_eq!(answer["problems"][0]["field"], "settings.webhook", "{answer}");
    // A configuration with no problem passes.
    write_guards(&h, &[], "");
    let ok = h.ripcord(&["validate"]);
    assert_eq!(ok.status.code(), Some(0), "{}\n{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).contains("1 guards, no problems"), "{}", stdout(&ok));
}

/// An audit log whose folder does not exist is refused at load, naming the value, before anything runs.
#[test]
fn an_audit_log_in_a_missing_folder_is_refused_at_load() {
    let h = harness(&[], "");
    let path = h.dir.path().join("guards.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .replace("audit_log = \"audit.jsonl\"", "audit_log = \"nowhere/audit.jsonl\"");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let output = h.ripcord(&["check"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("settings.audit_log") && stderr(&output).contains("nowhere"),
        "{}",
        stderr(&output)
    );
    assert!(h.operations().is_empty(), "{:?}", h.operations());
    assert!(!h.dir.path().join("nowhere").exists(), "the folder was created");
}

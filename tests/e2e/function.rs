//! Function mode: `ripcord function` as a Lambda custom runtime, polling the simulator's Lambda Runtime API for
//! events (an EventBridge schedule, a CodeDeploy lifecycle hook, direct invocations) and reporting hook statuses
//! through aws-sdk-codedeploy; and `ripcord check` sharded the way a Cloud Run Job's tasks run it.

use crate::support::{SimHarness, V2_FAILS, lambda_scenario, stderr, stdout};
use ripcord_sim::InvocationResult;
use serde_json::{Value, json};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const CANARY: &str = "version = 1\nrouting = { version = 2, weight = 0.1 }";
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;

/// `ripcord function` running against the harness's simulator; killed when dropped.
pub(crate) struct Function<'a> {
    h: &'a SimHarness,
    child: Child,
    stderr: std::path::PathBuf,
    stdout: std::path::PathBuf,
}

impl<'a> Function<'a> {
    pub(crate) fn start(h: &'a SimHarness) -> Self {
        Self::start_with_log(h, "info")
    }

    /// Starts it with `RIPCORD_LOG` set to `filter`.
    pub(crate) fn start_with_log(h: &'a SimHarness, filter: &str) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ripcord"));
        command
            .arg("function")
            .env("RIPCORD_CONFIG", h.dir.path().join("guards.toml"))
            .env("RIPCORD_LOG", filter)
            .current_dir(h.dir.path());
        Self::spawn(h, command)
    }

    /// Runs `command` as Lambda runs a custom runtime, against the harness's Runtime API; its compiled-code cache
    /// is the harness's.
    pub(crate) fn spawn(h: &'a SimHarness, mut command: Command) -> Self {
        let (stderr, stdout) = (h.dir.path().join("function.stderr"), h.dir.path().join("function.stdout"));
        let file = |path: &std::path::Path| std::fs::File::create(path).unwrap_or_else(|e| panic!("{e}"));
        let child = command
            .env("AWS_LAMBDA_RUNTIME_API", h.server.addr().to_string())
            .env("RIPCORD_CACHE_DIR", h.dir.path().join("cache"))
            .stdout(file(&stdout))
            .stderr(file(&stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ripcord function: {e}"));
        Self { h, child, stderr, stdout }
    }

    /// Invokes the function with `event` and waits for its answer.
    pub(crate) fn invoke(&mut self, event: Value) -> InvocationResult {
        let id = self.h.sim.invoke_event(&event);
        let started = Instant::now();
        loop {
            if let Some(result) = self.h.sim.invocation_result(&id) {
                return result;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ripcord function exited ({status}): {}", self.logs());
            }
            assert!(started.elapsed() < Duration::from_secs(120), "no answer to {event}: {}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// What it printed on stdout (in Lambda, its log group, as the logs): the Embedded Metric Format lines.
    pub(crate) fn printed(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }
}

impl Drop for Function<'_> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn scheduled_event() -> Value {
    json!({"version": "0", "id": "53dc4d37", "detail-type": "Scheduled Event", "source": "aws.events",
           "account": "123456789012", "time": "2026-11-26T09:05:00Z", "region": "us-east-1",
           "resources": ["arn:aws:events:us-east-1:123456789012:rule/ripcord-every-minute"], "detail": {}})
}

#[test]
fn a_scheduled_event_runs_a_cycle_and_rolls_back_a_failing_canary() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h.guards("prewarm = \"on-rollback\"\n");
    let mut function = Function::start(&h);
    let result = function.invoke(scheduled_event());
    assert!(result.ok, "{:?}", result.body);
    assert_eq!(result.body["exit_code"], 2, "{}", result.body);
    assert_eq!(result.body["guards"][0]["outcome"], "rolled-back", "{}", result.body);
    assert_eq!(h.alias(), (1, None));
    let actors: Vec<_> = h.audit().iter().map(|r| r.actor).collect();
    assert!(actors.iter().all(|a| *a == ripcord::record::audit::Actor::Schedule), "{actors:?}");

    // The same process answers the next event (warm invocation): healthy now, nothing to do.
    let result = function.invoke(scheduled_event());
    assert_eq!(result.body["guards"][0]["outcome"], "no-action", "{}", result.body);
    // Logs are JSON lines in function mode (CloudWatch Logs reads them as structured records).
    let logs = function.logs();
    assert!(!logs.trim().is_empty());
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}")))
        .collect();
    assert!(lines.iter().all(|l| l["severity"].is_string() && l["message"].is_string()), "{logs}");
    // The audit records are in the logs as objects (the records that last when /tmp does not).
    let intent = lines.iter().find(|l| l["target"] == "ripcord::audit" && l["record"]["record"] == "intent");
    assert!(intent.is_some_and(|l| l["record"]["target"] == "1"), "{logs}");
}

#[test]
fn a_codedeploy_hook_fails_a_bad_deployment_after_pinning_the_known_good_warm() {
    // CodeDeploy shifted all traffic to v2 (AfterAllowTraffic); v2 fails.
    let h = SimHarness::start(&lambda_scenario("version = 2", KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h.guards("prewarm = \"on-rollback\"\n");
    h.sim.open_hook("d-BAD", "hook-after-allow-traffic");
    let mut function = Function::start(&h);
    let result =
        function.invoke(json!({"DeploymentId": "d-BAD", "LifecycleEventHookExecutionId": "hook-after-allow-traffic"}));
    assert!(result.ok, "{:?}", result.body);
    assert_eq!(h.sim.hook_status("d-BAD", "hook-after-allow-traffic").as_deref(), Some("Failed"));
    assert_eq!(result.body["hook"]["status"], "Failed", "{}", result.body);
    assert_eq!(h.alias(), (1, None), "pinned to the known good");
    let result_record = h.audit().into_iter().rfind(|r| r.record == ripcord::record::audit::Kind::Result);
    let result_record = result_record.unwrap_or_else(|| panic!("no result record"));
    assert_eq!(result_record.actor, ripcord::record::audit::Actor::Hook);
    assert!(result_record.prewarm.is_some_and(|p| p.ready), "prewarmed before the pin");
    // The hook status is reported after the pin.
    let ops = h.operations();
    let pin = ops.iter().position(|o| o == "UpdateAlias");
    let hook = ops.iter().position(|o| o == "PutLifecycleEventHookExecutionStatus");
    assert!(pin.is_some() && hook.is_some() && pin < hook, "{ops:?}");
}

#[test]
fn a_codedeploy_hook_lets_a_healthy_deployment_go_on_and_changes_nothing() {
    let h = SimHarness::start(&lambda_scenario("version = 2", KNOWN_GOOD_1, ""));
    h.sim.advance(5 * 60_000);
    h.guards("");
    h.sim.open_hook("d-GOOD", "hook-1");
    let mut function = Function::start(&h);
    let result = function.invoke(json!({"DeploymentId": "d-GOOD", "LifecycleEventHookExecutionId": "hook-1"}));
    assert!(result.ok, "{:?}", result.body);
    assert_eq!(h.sim.hook_status("d-GOOD", "hook-1").as_deref(), Some("Succeeded"));
    assert_eq!(h.alias(), (2, None));
    // Answering a hook twice is refused by CodeDeploy: reported as the invocation's error, the process goes on.
    let again = function.invoke(json!({"DeploymentId": "d-GOOD", "LifecycleEventHookExecutionId": "hook-1"}));
    assert!(!again.ok);
    assert!(
        again.body["errorMessage"].as_str().is_some_and(|m| m.contains("LifecycleEventAlreadyCompleted")),
        "{}",
        again.body
    );
}

#[test]
fn direct_invocations_check_and_pull_and_a_bad_event_is_an_error_not_a_crash() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h.guards("prewarm = \"off\"\n");
    let mut function = Function::start(&h);
    let bad = function.invoke(json!({"action": "stop"}));
    assert!(!bad.ok);
    assert_eq!(bad.body["errorType"], "ripcord.UnrecognisedEvent", "{}", bad.body);
    let unknown = function.invoke(json!({"action": "check", "guards": ["nope"]}));
    assert_eq!(unknown.body["exit_code"], 1, "{}", unknown.body);
    let error = unknown.body["guards"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("no guard named \"nope\"") && error.contains("checkout-api"), "{}", unknown.body);

    let dry = function.invoke(json!({"action": "check", "dry_run": true}));
    assert_eq!(dry.body["exit_code"], 2, "{}", dry.body);
    assert_eq!(h.mutations(), Vec::<String>::new(), "dry-run changes nothing");

    let pulled = function.invoke(json!({"action": "pull", "guard": "checkout-api", "to": "1"}));
    assert!(pulled.ok, "{}", pulled.body);
    assert_eq!(pulled.body["guards"][0]["outcome"], "rolled-back", "{}", pulled.body);
    assert_eq!(h.alias(), (1, None));
    assert!(h.audit().iter().any(|r| r.actor == ripcord::record::audit::Actor::Manual));
}

#[test]
fn a_bad_configuration_is_reported_to_lambda_as_an_init_error() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""));
    std::fs::write(h.dir.path().join("guards.toml"), "[[guard]]\nname = \"x\"\nplatform = \"azure\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut function = Function::start(&h);
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = function.child.try_wait() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let error = h.sim.init_error().unwrap_or_else(|| panic!("no init error: {}", function.logs()));
    let message = error["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("guards.toml") && message.contains("azure"), "{message}");
}

#[test]
fn cloud_run_job_tasks_each_check_their_own_share_of_the_guards() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""));
    h.sim.advance(5 * 60_000);
    let mut text = std::fs::read_to_string(h.guards("mode = \"dry-run\"")).unwrap_or_else(|e| panic!("{e}"));
    for name in ["payments-api", "search-api", "users-api"] {
        text.push_str(&format!(
            "\n[[guard]]\nname = \"{name}\"\nplatform = \"aws-lambda\"\nfunction = \"checkout\"\nalias = \"live\"\npolicies = [{{ use = \"builtin:error-rate\" }}]\n"
        ));
    }
    std::fs::write(h.dir.path().join("guards.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let config = h.dir.path().join("guards.toml").display().to_string();
    let task = |index: usize, count: usize| -> Vec<String> {
        let output = Command::new(env!("CARGO_BIN_EXE_ripcord"))
            .args(["check", "--json", "--config", &config])
            .env("CLOUD_RUN_TASK_INDEX", index.to_string())
            .env("CLOUD_RUN_TASK_COUNT", count.to_string())
            .env("RIPCORD_CACHE_DIR", h.dir.path().join("cache"))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(output.status.code(), Some(1), "{}\n{}", stdout(&output), stderr(&output));
        let summary: Value =
            serde_json::from_str(stdout(&output).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(&output)));
        summary["guards"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["guard"].as_str().map(String::from))
            .collect()
    };
    let shards: Vec<Vec<String>> = (0..3).map(|i| task(i, 3)).collect();
    assert!(shards.iter().all(|s| s.len() == 1 || s.len() == 2), "{shards:?}");
    let mut all: Vec<String> = shards.concat();
    all.sort();
    assert_eq!(all, ["checkout-api", "payments-api", "search-api", "users-api"], "each guard in exactly one task");
    // More tasks than guards: the extra task has nothing to do and says so with an empty list.
    assert_eq!(task(0, 6), Vec::<String>::new());
    let output = Command::new(env!("CARGO_BIN_EXE_ripcord"))
        .args(["check", "--config", &config, "--shard-index", "3", "--shard-count", "3"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not below --shard-count"), "{}", stderr(&output));
}

#[test]
fn a_short_function_timeout_pins_cold_rather_than_being_killed_mid_prewarm() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h.guards("prewarm = \"on-rollback\"\n");
    h.sim.set_function_timeout(8_000);
    // Provisioned concurrency answers 30 s late: the prewarm cannot finish within the invocation.
    h.sim.inject_api_stall("GetProvisionedConcurrencyConfig", 5, 30_000);
    let mut function = Function::start(&h);
    let started = Instant::now();
    let result = function.invoke(scheduled_event());
    let took = started.elapsed();
    // What must hold on any machine: ripcord gave up the prewarm for the deadline (the record says so) instead of
    // waiting out the 30 s stall. How far before the deadline it answers is timing, not asserted here.
    assert!(took < Duration::from_secs(30), "waited {took:?} for the stalled prewarm");
    assert_eq!(result.body["guards"][0]["outcome"], "rolled-back", "{}", result.body);
    assert_eq!(h.alias(), (1, None));
    let record = h.audit().into_iter().rfind(|r| r.record == ripcord::record::audit::Kind::Result);
    let error = record.and_then(|r| r.error).unwrap_or_default();
    assert!(error.contains("abandoned to pin before the function's deadline"), "{error}");
}

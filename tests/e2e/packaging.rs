//! Deployment packages as users build and run them: `scripts/package-lambda` makes bootstrap.zip from a
//! configuration with a policy file, and the unpacked `bootstrap` — started the way Lambda starts a custom runtime,
//! with no arguments, in the task directory — answers a scheduled event and a CodeDeploy hook from the simulator's
//! Runtime API, loading its policies from the code the package carries.

use crate::function::{Function, scheduled_event};
use crate::support::{SimHarness, V2_FAILS, guest, lambda_scenario, repo_root, stderr, stdout};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CANARY: &str = "version = 1\nrouting = { version = 2, weight = 0.1 }";
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;

/// The package architecture of this machine, as the packaging scripts name it.
pub(crate) fn arch() -> &'static str {
    if std::env::consts::ARCH == "aarch64" { "arm64" } else { "x86_64" }
}

/// A configuration for a Lambda function in `h`'s folder: a built-in and a policy file (under `policies/`), the
/// audit log at `audit_log` (Lambda can write only under /tmp).
fn lambda_config(h: &SimHarness, audit_log: &Path) -> PathBuf {
    let config = h.guards("prewarm = \"on-rollback\"\n");
    std::fs::create_dir_all(h.dir.path().join("policies")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(guest("error-ceiling"), h.dir.path().join("policies/error-ceiling.wasm"))
        .unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    let text = text
        .replace("audit_log = \"audit.jsonl\"", &format!("audit_log = {:?}", audit_log.display().to_string()))
        .replace(
            "policies = [{",
            "policies = [{ use = \"policies/error-ceiling.wasm\", params = { max_rate = 0.5 } }, {",
        );
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    config
}

fn package_lambda(config: &Path, out: &Path) -> Output {
    Command::new(repo_root().join("scripts/package-lambda"))
        .args(["--arch", arch(), "--binary", env!("CARGO_BIN_EXE_ripcord")])
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/package-lambda: {e}"))
}

/// Unzips `zip` into `dir` as Lambda does, keeping the file modes; returns (name, mode) of every entry.
fn unzip(zip: &Path, dir: &Path) -> Vec<(String, u32)> {
    let script = "import sys, zipfile, os, json\n\
        z = zipfile.ZipFile(sys.argv[1]); out = []\n\
        for i in z.infolist():\n\
        \x20   p = z.extract(i, sys.argv[2]); m = (i.external_attr >> 16) & 0o777; os.chmod(p, m); out.append([i.filename, m])\n\
        print(json.dumps(out))";
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&output)))
}

#[test]
fn the_lambda_package_runs_as_a_custom_runtime_on_a_schedule_and_as_a_codedeploy_hook() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    let audit_log = tempfile::Builder::new()
        .prefix("ripcord-e2e-audit")
        .suffix(".jsonl")
        .tempfile_in("/tmp")
        .unwrap_or_else(|e| panic!("{e}"));
    let config = lambda_config(&h, audit_log.path());
    let zip = h.dir.path().join("dist/bootstrap.zip");
    let output = package_lambda(&config, &zip);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("precompiled code included"), "{}", stderr(&output));

    let task = h.dir.path().join("task");
    let entries = unzip(&zip, &task);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..3], ["bootstrap", "guards.toml", "policies/error-ceiling.wasm"], "{names:?}");
    assert_eq!(entries[0].1, 0o755, "bootstrap is executable");
    // The built-in and the policy file, compiled ahead of time.
    assert_eq!(names.iter().filter(|n| n.starts_with("precompiled/") && n.ends_with(".cwasm")).count(), 2, "{names:?}");
    // Stripped: no debug sections, far below Lambda's 250 MB.
    let size = std::fs::metadata(task.join("bootstrap")).map(|m| m.len()).unwrap_or(0);
    let unstripped = std::fs::metadata(env!("CARGO_BIN_EXE_ripcord")).map(|m| m.len()).unwrap_or(0);
    assert!(size < unstripped / 2 && size < 250_000_000, "{size} bytes (unstripped {unstripped})");

    // Lambda starts `bootstrap` with no arguments in /var/task, with the template's environment.
    let mut command = Command::new(task.join("bootstrap"));
    command.current_dir(&task).env("RIPCORD_PRECOMPILED_DIR", task.join("precompiled"));
    let mut function = Function::spawn(&h, command);
    h.sim.open_hook("d-1", "hook-post-traffic");
    let result = function.invoke(json!({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "hook-post-traffic"}));
    assert!(result.ok, "{:?}", result.body);
    assert_eq!(result.body["hook"]["status"], "Failed", "{}", result.body);
    assert_eq!(h.sim.hook_status("d-1", "hook-post-traffic").as_deref(), Some("Failed"));
    assert_eq!(h.alias(), (1, None), "pinned to the known good");
    let result = function.invoke(scheduled_event());
    assert!(result.ok, "{:?}", result.body);
    assert_eq!(result.body["guards"][0]["outcome"], "no-action", "{}", result.body);
    let logs = function.logs();
    assert!(logs.contains("ripcord function ready"), "{logs}");
    assert!(!logs.contains("cannot cache compiled plugin") && !logs.contains("recompiling"), "{logs}");
    // Nothing compiled at start: every policy came from the package.
    let cache = h.dir.path().join("cache");
    let cached = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    assert_eq!(cached, 0, "compiled at start instead of using the package's code");
    let records = std::fs::read_to_string(audit_log.path()).unwrap_or_default();
    assert!(records.lines().count() >= 3, "{records}");
}

#[test]
fn the_lambda_package_refuses_a_configuration_that_cannot_run_in_lambda() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""));
    let config = h.guards("");
    let zip = h.dir.path().join("dist/bootstrap.zip");
    // The audit log in the read-only task directory.
    let output = package_lambda(&config, &zip);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("settings.audit_log = 'audit.jsonl'"), "{}", stderr(&output));
    assert!(!zip.exists(), "nothing written");
    // A configuration ripcord itself refuses: the same error as at start, before anything is written.
    let text = std::fs::read_to_string(&config).unwrap_or_default();
    let text = text.replace("audit_log = \"audit.jsonl\"", "audit_log = \"/tmp/ripcord-audit.jsonl\"");
    std::fs::write(&config, text.replace("max_rate = 0.02", "max_rate = \"high\"")).unwrap_or_else(|e| panic!("{e}"));
    let output = package_lambda(&config, &zip);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("guard[0].policies[0].params.max_rate"), "{}", stderr(&output));
    assert!(!zip.exists(), "nothing written");
    // A policy outside the configuration's folder cannot be shipped with it.
    let outside = crate::support::temp_dir();
    std::fs::copy(guest("error-ceiling"), outside.path().join("p.wasm")).unwrap_or_else(|e| panic!("{e}"));
    let policy = outside.path().join("p.wasm").display().to_string();
    std::fs::write(&config, text.replace("builtin:error-rate", &policy)).unwrap_or_else(|e| panic!("{e}"));
    let output = package_lambda(&config, &zip);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("is outside"), "{}", stderr(&output));
}

#[test]
fn the_sam_templates_run_the_package_as_the_tests_do() {
    for template in ["deploy/aws/template.yaml", "deploy/aws/codedeploy-hook.yaml"] {
        let text = std::fs::read_to_string(repo_root().join(template)).unwrap_or_else(|e| panic!("{e}"));
        for line in [
            "CodeUri: ../../dist/lambda/bootstrap.zip",
            "Handler: bootstrap",
            "Runtime: provided.al2023",
            "RIPCORD_PRECOMPILED_DIR: /var/task/precompiled",
        ] {
            assert!(text.contains(line), "{template} lacks {line:?}");
        }
    }
}

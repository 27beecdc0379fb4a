//! Deployment shapes as users build and run them: `scripts/package-lambda` makes bootstrap.zip from a
//! configuration with a policy file, and the unpacked `bootstrap` — started the way Lambda starts a custom runtime,
//! with no arguments, in the task directory — answers a scheduled event and a CodeDeploy hook from the simulator's
//! Runtime API, loading its policies from the code the package carries; `scripts/package-image`'s OCI image,
//! unpacked and run as a Cloud Run Job of two tasks; the CI gate script of the GitHub Action and GitLab job.

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

/// The deploy files wire the change events to what the tests run: the SAM rules deliver CloudTrail's alias changes
/// and CodeDeploy's state changes to the function (`change_events.rs` invokes it with both), and the Eventarc
/// workflow runs the job with `check --changed` and the audit entry's resource name.
#[test]
fn the_deploy_files_wire_the_change_events() {
    let sam = std::fs::read_to_string(repo_root().join("deploy/aws/template.yaml")).unwrap_or_else(|e| panic!("{e}"));
    for line in [
        "Type: EventBridgeRule",
        "detail-type: [AWS API Call via CloudTrail]",
        "eventName: [{prefix: UpdateAlias}, {prefix: CreateAlias}]",
        "detail-type: [CodeDeploy Deployment State-change Notification]",
    ] {
        assert!(sam.contains(line), "the SAM template lacks {line:?}");
    }
    let workflow = std::fs::read_to_string(repo_root().join("deploy/gcp/eventarc-workflow.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    for needed in [
        "resource: ${event.data.protoPayload.resourceName}",
        "call: googleapis.run.v2.projects.locations.jobs.run",
        r#""--changed", "${resource}""#,
        "methodName=google.cloud.run.v2.Services.UpdateService",
    ] {
        assert!(workflow.contains(needed), "the workflow lacks {needed:?}");
    }
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

/// Unpacks an OCI image layout as a container runtime does — index, manifest, config, layers, every digest
/// checked — into `rootfs`; returns the image config's `config` object (entrypoint, command, user, env).
fn unpack_image(layout: &Path, rootfs: &Path) -> serde_json::Value {
    let script = r#"
import gzip, hashlib, io, json, sys, tarfile
layout, rootfs = sys.argv[1], sys.argv[2]
def blob(descriptor):
    algorithm, digest = descriptor["digest"].split(":")
    data = open(f"{layout}/blobs/{algorithm}/{digest}", "rb").read()
    assert hashlib.sha256(data).hexdigest() == digest and len(data) == descriptor["size"], descriptor
    return data
assert json.load(open(f"{layout}/oci-layout"))["imageLayoutVersion"] == "1.0.0"
index = json.load(open(f"{layout}/index.json"))
manifest = json.loads(blob(index["manifests"][0]))
config = json.loads(blob(manifest["config"]))
for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"]):
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip", layer
    tar = gzip.decompress(blob(layer))
    assert "sha256:" + hashlib.sha256(tar).hexdigest() == diff_id
    tarfile.open(fileobj=io.BytesIO(tar)).extractall(rootfs, numeric_owner=True)
print(json.dumps(config["config"]))
"#;
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(layout)
        .arg(rootfs)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&output)))
}

/// Runs the image's entrypoint and command in `rootfs` as its user, with its environment and `env`: chroot as
/// root, an unprivileged user namespace otherwise.
fn run_image(rootfs: &Path, config: &serde_json::Value, env: &[(&str, String)]) -> Output {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
    };
    let argv: Vec<String> = strings(&config["Entrypoint"]).into_iter().chain(strings(&config["Cmd"])).collect();
    let user = config["User"].as_str().unwrap_or_default();
    let root = Command::new("id").arg("-u").output().map(|o| stdout(&o).trim() == "0").unwrap_or(false);
    // The image's environment replaces this one (PATH included), so the tools are named by their path.
    let tool = |name: &str| {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .map(|dir| Path::new(dir).join(name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{name} is not installed"))
    };
    let mut command = if root {
        let mut c = Command::new(tool("chroot"));
        c.arg(format!("--userspec={user}")).arg(rootfs);
        c
    } else {
        let mut c = Command::new(tool("unshare"));
        c.arg("--user").arg("--map-root-user").arg(format!("--root={}", rootfs.display()));
        c
    };
    command.args(&argv).env_clear().current_dir(rootfs);
    for pair in strings(&config["Env"]) {
        if let Some((name, value)) = pair.split_once('=') {
            command.env(name, value);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command.output().unwrap_or_else(|e| panic!("cannot run the image: {e}"))
}

#[test]
fn the_image_runs_as_a_cloud_run_job_with_two_tasks() {
    use crate::support::{BBB_FAILS, RUN_CANARY, RUN_KNOWN_GOOD, run_scenario};
    let h = SimHarness::start(&run_scenario(RUN_CANARY, RUN_KNOWN_GOOD, BBB_FAILS));
    h.sim.advance(5 * 60_000);
    let second = "[[guard]]\nname = \"search-loose\"\nplatform = \"cloud-run\"\nproject = \"acme\"\n\
                  location = \"europe-west1\"\nservice = \"search\"\n\
                  policies = [{ use = \"policies/error-ceiling.wasm\", params = { max_rate = 0.9 } }]\n";
    let config = h.cloud_run_guards("prewarm = \"on-rollback\"", second);
    std::fs::create_dir_all(h.dir.path().join("policies")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(guest("error-ceiling"), h.dir.path().join("policies/error-ceiling.wasm"))
        .unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&config).unwrap_or_default();
    std::fs::write(&config, text.replace("audit_log = \"audit.jsonl\"", "audit_log = \"/tmp/ripcord-audit.jsonl\""))
        .unwrap_or_else(|e| panic!("{e}"));

    let layout = h.dir.path().join("dist/image");
    let output = Command::new(repo_root().join("scripts/package-image"))
        .args(["--binary", env!("CARGO_BIN_EXE_ripcord"), "--tag", "e2e"])
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&layout)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/package-image: {e}"));
    assert!(output.status.success(), "{}", stderr(&output));
    let rootfs = h.dir.path().join("rootfs");
    let image = unpack_image(&layout, &rootfs);
    assert_eq!(image["User"], "65532:65532", "{image}");
    assert!(rootfs.join("etc/ripcord/policies/error-ceiling.wasm").is_file());
    assert!(rootfs.join("etc/ssl/certs/ca-certificates.crt").is_file());

    // A Cloud Run Job of two tasks: each runs the image's command over its share of the guards.
    let mut checked = Vec::new();
    for index in 0..2 {
        let env = [
            ("CLOUD_RUN_JOB", "ripcord".to_string()),
            ("CLOUD_RUN_TASK_INDEX", index.to_string()),
            ("CLOUD_RUN_TASK_COUNT", "2".to_string()),
        ];
        let output = run_image(&rootfs, &image, &env);
        let code = output.status.code();
        assert!(code == Some(0) || code == Some(2) || code == Some(3), "{code:?}: {}", stderr(&output));
        let text = stdout(&output);
        assert!(!stderr(&output).contains("recompiling"), "{}", stderr(&output));
        for guard in ["search-api", "search-loose"] {
            if text.contains(guard) {
                checked.push((index, guard, code));
            }
        }
    }
    assert_eq!(checked.len(), 2, "each guard checked by exactly one task: {checked:?}");
    assert!(checked.contains(&(0, "search-api", Some(2))), "task 0 rolled the failing canary back: {checked:?}");
    assert_eq!(h.split("search")[0], ("search-00001-aaa".to_string(), 100, String::new()));
    // The audit log was written inside the container, as its non-root user.
    let records = std::fs::read_to_string(rootfs.join("tmp/ripcord-audit.jsonl")).unwrap_or_default();
    assert!(records.contains("search-api") && records.contains("search-loose"), "{records}");
    // Nothing was compiled at start: the policies came precompiled.
    assert!(!rootfs.join("tmp/ripcord-cache").exists(), "compiled at start instead of using the image's code");
}

/// Runs the CI gate script (what action.yml and deploy/ci/gitlab-ci.yml run) for guard `checkout-api` of `h`.
fn gate(h: &SimHarness, strict: bool) -> (Output, String) {
    let outputs = h.dir.path().join("github-output");
    let _ = std::fs::remove_file(&outputs);
    let output = Command::new(repo_root().join("deploy/ci/gate.sh"))
        .env("RIPCORD_GUARD", "checkout-api")
        .env("RIPCORD_CONFIG", h.dir.path().join("guards.toml"))
        .env("RIPCORD_BIN", env!("CARGO_BIN_EXE_ripcord"))
        .env("RIPCORD_REPORT", h.dir.path().join("report.html"))
        .env("RIPCORD_STRICT", strict.to_string())
        .env("RIPCORD_CACHE_DIR", h.dir.path().join("cache"))
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", h.dir.path().join("summary.md"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run deploy/ci/gate.sh: {e}"));
    (output, std::fs::read_to_string(outputs).unwrap_or_default())
}

#[test]
fn the_ci_gate_fails_the_job_on_a_rollback_and_keeps_the_report() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h.guards("");
    let (output, outputs) = gate(&h, false);
    assert_eq!(output.status.code(), Some(2), "{}\n{}", stdout(&output), stderr(&output));
    assert!(outputs.contains("verdict=rollback\nexit-code=2\n"), "{outputs}");
    assert!(stdout(&output).contains("::error::ripcord: guard checkout-api: rollback"), "{}", stdout(&output));
    assert_eq!(h.alias(), (1, None), "pinned to the known good");
    let report = std::fs::read_to_string(h.dir.path().join("report.html")).unwrap_or_default();
    assert!(report.contains("<html") && report.contains("checkout-api"), "no report");
    let summary = std::fs::read_to_string(h.dir.path().join("summary.md")).unwrap_or_default();
    assert!(summary.contains("rollback"), "{summary}");
}

#[test]
fn the_ci_gate_lets_an_inconclusive_canary_pass_unless_strict() {
    // Just deployed: no traffic measured yet, so the verdict is inconclusive.
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""));
    h.guards("");
    let (output, outputs) = gate(&h, false);
    assert_eq!(output.status.code(), Some(0), "{}\n{}", stdout(&output), stderr(&output));
    assert!(outputs.contains("verdict=inconclusive\nexit-code=3\n"), "{outputs}");
    assert!(stdout(&output).contains("::warning::"), "{}", stdout(&output));
    let (output, _) = gate(&h, true);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    // `check --gate` is the same rule for verify steps that run ripcord without a shell (Cloud Deploy).
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(3));
    assert_eq!(h.ripcord(&["check", "--gate"]).status.code(), Some(0));
    assert_eq!(h.sim.api_log().iter().filter(|c| c.operation == "UpdateAlias").count(), 0);
}

/// The gate script's validate mode (the action's `mode: validate`): a configuration with a broken guard fails the
/// job with each problem as an error annotation, calling nothing on the platform; a sound one passes.
#[test]
fn the_ci_gate_validates_a_configuration_before_it_ships() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    let path = h.guards("");
    let validate = || {
        Command::new(repo_root().join("deploy/ci/gate.sh"))
            .env("RIPCORD_MODE", "validate")
            .env("RIPCORD_CONFIG", &path)
            .env("RIPCORD_BIN", env!("CARGO_BIN_EXE_ripcord"))
            .env("RIPCORD_CACHE_DIR", h.dir.path().join("cache"))
            .env_remove("RIPCORD_GUARD")
            .output()
            .unwrap_or_else(|e| panic!("cannot run deploy/ci/gate.sh: {e}"))
    };
    let output = validate();
    assert_eq!(output.status.code(), Some(0), "{}\n{}", stdout(&output), stderr(&output));
    let text = std::fs::read_to_string(&path).unwrap_or_default()
        + "[[guard]]\nname = \"search-api\"\nplatform = \"aws-lambda\"\nfunction = \"search\"\nalias = \"live\"\npolicies = [{ use = \"policies/missing.wasm\" }]\n";
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let output = validate();
    assert_eq!(output.status.code(), Some(1), "{}\n{}", stdout(&output), stderr(&output));
    let line = stdout(&output).lines().find(|l| l.starts_with("::error::")).map(str::to_string).unwrap_or_default();
    assert!(line.contains("guard[1].policies[0].use") && line.contains("missing.wasm"), "{}", stdout(&output));
    assert!(h.operations().is_empty(), "validate called the platform: {:?}", h.operations());
}

#[test]
fn the_github_action_and_gitlab_job_run_the_tested_gate_script() {
    let action = std::fs::read_to_string(repo_root().join("action.yml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(action.contains("run: ${{ github.action_path }}/deploy/ci/gate.sh"), "{action}");
    for variable in
        ["RIPCORD_MODE", "RIPCORD_GUARD", "RIPCORD_CONFIG", "RIPCORD_BIN", "RIPCORD_STRICT", "RIPCORD_REPORT"]
    {
        assert!(action.contains(&format!("{variable}: ${{{{ inputs.")), "action.yml does not set {variable}");
    }
    assert!(action.contains("uses: actions/upload-artifact@v4") && action.contains("if: always()"), "{action}");
    let gitlab = std::fs::read_to_string(repo_root().join("deploy/ci/gitlab-ci.yml")).unwrap_or_default();
    assert!(gitlab.contains("- deploy/ci/gate.sh") && gitlab.contains("when: always"), "{gitlab}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(repo_root().join("deploy/ci/gate.sh")).map(|m| m.permissions().mode()).unwrap_or(0);
    assert_eq!(mode & 0o111, 0o111, "gate.sh is executable");
}

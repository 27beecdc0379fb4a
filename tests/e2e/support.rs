//! Shared helpers: runtimes with test settings, guest components, fixtures and the built binary.

use ripcord::model::evaluation::{Evaluation, ParamValue};
use ripcord::plugin::runtime::{CacheDir, Plugin, PluginSource, Runtime, RuntimeSettings};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The deadline the hostile-plugin tests run under.
pub const TEST_DEADLINE: Duration = Duration::from_millis(200);
/// The memory cap the hostile-plugin tests run under.
pub const TEST_MEMORY_LIMIT: usize = 64 << 20;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A guest component compiled from `plugins/` by the build script, e.g. `hostile`.
pub fn guest(name: &str) -> PathBuf {
    Path::new(ripcord::GUEST_DIR).join(format!("{}.wasm", name.replace('-', "_")))
}

pub fn runtime() -> Runtime {
    Runtime::new(RuntimeSettings {
        deadline: TEST_DEADLINE,
        memory_limit: TEST_MEMORY_LIMIT,
        cache: CacheDir::Disabled,
        ..RuntimeSettings::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

pub fn load(runtime: &Runtime, source: &str) -> Plugin {
    let source: PluginSource = source.parse().unwrap_or_else(|e| match e {});
    runtime.load(&source).unwrap_or_else(|e| panic!("{e}"))
}

pub fn fixture(name: &str) -> Evaluation {
    let path = repo_root().join("examples/evaluations").join(name);
    ripcord::model::fixture::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

pub fn with_param(mut evaluation: Evaluation, name: &str, value: &str) -> Evaluation {
    evaluation.params.insert(name.to_string(), ParamValue::Text(value.to_string()));
    evaluation
}

/// Runs the built `ripcord` binary with a private compile cache.
pub fn ripcord(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ripcord"))
        .args(args)
        .env("RIPCORD_CACHE_DIR", cache)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ripcord: {e}"))
}

pub fn stdout_json(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ripcord failed ({}): {}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim().lines().count(), 1, "expected one JSON line, got:\n{stdout}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"))
}

/// A simulator served on loopback for the `ripcord` binary, with a private directory for its guards.toml, audit
/// log and compile cache.
pub struct SimHarness {
    pub sim: ripcord_sim::Simulator,
    pub server: ripcord_sim::Server,
    pub dir: tempfile::TempDir,
    /// Whether the operations served go into the least-privilege record (ripcord's calls do; the conformance
    /// tests' third-party clients call operations ripcord never needs).
    record_operations: bool,
}

/// A Lambda function `checkout` with v1 and v2 (and v3 for redeploys), 100 requests a second through alias
/// `live`; `alias` is the alias's TOML table body and `extra` is appended (faults).
pub fn lambda_scenario(alias: &str, tags: &str, extra: &str) -> String {
    format!(
        r#"
seed = 3
start = "2026-11-26T09:00:00Z"
[settings]
provisioned_allocation = "30s"
reap_after = "5m"
[[function]]
name = "checkout"
traffic = {{ alias = "live", rps = 100 }}
tags = {{ {tags} }}
[[function.version]]
number = 1
latency_ms = 100
error_rate = 0.001
[[function.version]]
number = 2
latency_ms = 100
error_rate = 0.001
[[function.version]]
number = 3
latency_ms = 100
error_rate = 0.001
[[function.alias]]
name = "live"
{alias}
{extra}
"#
    )
}

/// v2 fails (30% errors) from 2 minutes in.
pub const V2_FAILS: &str = r#"
[[fault]]
function = "checkout"
version = 2
from = "2m"
error_rate = 0.3
"#;

/// Where every harness leaves the operations its simulator served, one file per harness: after the suite,
/// `scripts/check-least-privilege` compares them with the permissions the deployment templates grant.
pub fn api_calls_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("api-calls")
}

impl Drop for SimHarness {
    fn drop(&mut self) {
        static HARNESSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let operations: std::collections::BTreeSet<String> = self.operations().into_iter().collect();
        if operations.is_empty() || !self.record_operations {
            return;
        }
        let n = HARNESSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = api_calls_dir();
        let file = dir.join(format!("{}-{n}.txt", std::process::id()));
        let text: String = operations.into_iter().map(|o| o + "\n").collect();
        // Best effort: a test's own result never depends on this record.
        let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(file, text));
    }
}

impl SimHarness {
    pub fn start(scenario: &str) -> Self {
        let sim =
            ripcord_sim::scenario::parse(scenario, Path::new("test-scenario.toml")).unwrap_or_else(|e| panic!("{e}"));
        let server =
            ripcord_sim::Server::start(sim.clone(), ([127, 0, 0, 1], 0).into()).unwrap_or_else(|e| panic!("{e}"));
        Self { sim, server, dir: temp_dir(), record_operations: true }
    }

    /// A harness for clients other than ripcord: what they call is left out of the least-privilege record.
    pub fn start_for_other_clients(scenario: &str) -> Self {
        let mut harness = Self::start(scenario);
        harness.record_operations = false;
        harness
    }

    /// Writes guards.toml: the simulator's endpoint and clock, the audit log in the private directory, a guard
    /// `checkout-api` on `checkout:live` with builtin:error-rate (1-minute windows), then `extra` settings in
    /// `[defaults]`.
    pub fn guards(&self, defaults: &str) -> PathBuf {
        let text = format!(
            r#"
[settings]
audit_log = "audit.jsonl"
clock = "simulator"

[aws]
endpoint_url = "{endpoint}"

[defaults]
window = "1m"
windows = 3
{defaults}

[[guard]]
name = "checkout-api"
platform = "aws-lambda"
function = "checkout"
alias = "live"
policies = [{{ use = "builtin:error-rate", params = {{ max_rate = 0.02, windows = 2, min_requests = 100 }} }}]
"#,
            endpoint = self.server.endpoint()
        );
        let path = self.dir.path().join("guards.toml");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    /// Writes guards.toml for Cloud Run: the simulator as `[gcp] endpoint_url`, a guard `search-api` on service
    /// `search` (project `acme`, `europe-west1`) with builtin:error-rate, then `defaults` and `extra` guards.
    pub fn cloud_run_guards(&self, defaults: &str, extra: &str) -> PathBuf {
        let text = format!(
            r#"
[settings]
audit_log = "audit.jsonl"
clock = "simulator"

[gcp]
endpoint_url = "{endpoint}"

[defaults]
window = "1m"
windows = 3
{defaults}

[[guard]]
name = "search-api"
platform = "cloud-run"
project = "acme"
location = "europe-west1"
service = "search"
policies = [{{ use = "builtin:error-rate", params = {{ max_rate = 0.02, windows = 2, min_requests = 100 }} }}]
{extra}
"#,
            endpoint = self.server.endpoint()
        );
        let path = self.dir.path().join("guards.toml");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    /// The serving split of Cloud Run service `name`: (revision, percent, tag).
    pub fn split(&self, name: &str) -> Vec<(String, u32, String)> {
        let service = self.sim.service(name).unwrap_or_else(|| panic!("no service {name}"));
        service.statuses.iter().map(|t| (service.resolve(t).unwrap_or_default(), t.percent, t.tag.clone())).collect()
    }

    /// Runs `ripcord ARGS --config guards.toml`.
    pub fn ripcord(&self, args: &[&str]) -> Output {
        let config = self.dir.path().join("guards.toml").display().to_string();
        let cache = self.dir.path().join("cache");
        ripcord(&[args, &["--config", &config]].concat(), &cache)
    }

    /// Starts `ripcord check` with `operation`'s answer held back, and kills it (SIGKILL) once the simulator has
    /// served that operation: the change took effect, ripcord never heard.
    pub fn kill_check_during(&self, operation: &str) {
        self.sim.inject_api_stall(operation, 1, 120_000);
        let mut child = self.spawn(&["check"]);
        let started = std::time::Instant::now();
        while !self.operations().iter().any(|o| o == operation) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("ripcord ended ({status}) before calling {operation}: {:?}", self.operations());
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "{operation} never called");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap_or_else(|e| panic!("cannot kill ripcord: {e}"));
        let _ = child.wait();
    }

    /// Starts `ripcord ARGS --config guards.toml` without waiting for it.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let config = self.dir.path().join("guards.toml").display().to_string();
        Command::new(env!("CARGO_BIN_EXE_ripcord"))
            .args(args)
            .args(["--config", &config])
            .env("RIPCORD_CACHE_DIR", self.dir.path().join("cache"))
            .current_dir(repo_root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ripcord: {e}"))
    }

    pub fn audit(&self) -> Vec<ripcord::record::audit::Record> {
        ripcord::record::audit::Audit::read(&self.dir.path().join("audit.jsonl")).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Operations the simulator served, in order.
    pub fn operations(&self) -> Vec<String> {
        self.sim.api_log().into_iter().map(|c| c.operation).collect()
    }

    /// Operations that change the platform.
    pub fn mutations(&self) -> Vec<String> {
        const MUTATING: [&str; 6] = [
            "UpdateAlias",
            "PutProvisionedConcurrencyConfig",
            "DeleteProvisionedConcurrencyConfig",
            "TagResource",
            "UntagResource",
            "UpdateService",
        ];
        self.operations().into_iter().filter(|o| MUTATING.contains(&o.as_str())).collect()
    }

    /// The alias `live`: (version, routing).
    pub fn alias(&self) -> (u32, Option<(u32, f64)>) {
        let function = self.sim.function("checkout").unwrap_or_else(|| panic!("no function"));
        let alias = function.aliases.get("live").cloned().unwrap_or_else(|| panic!("no alias"));
        (alias.version, alias.routing)
    }

    pub fn tags(&self) -> std::collections::BTreeMap<String, String> {
        self.sim.function("checkout").map(|f| f.tags).unwrap_or_default()
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A Cloud Run service `search` (project `acme`, `europe-west1`) with revisions search-00001-aaa, -00002-bbb and
/// -00003-ccc at 100 requests a second; `traffic` is TOML `[[service.traffic]]` tables, `extra` is appended.
pub fn run_scenario(traffic: &str, annotations: &str, extra: &str) -> String {
    format!(
        r#"
seed = 9
start = "2026-11-26T09:00:00Z"
[settings]
reap_after = "5m"
operation_polls = 2
[[service]]
name = "search"
project = "acme"
location = "europe-west1"
rps = 100
annotations = {{ {annotations} }}
[[service.revision]]
name = "search-00001-aaa"
latency_ms = 100
cold_start_ms = 1200
concurrency = 2
error_rate = 0.001
[[service.revision]]
name = "search-00002-bbb"
latency_ms = 100
cold_start_ms = 1200
concurrency = 2
error_rate = 0.001
[[service.revision]]
name = "search-00003-ccc"
latency_ms = 100
cold_start_ms = 1200
concurrency = 2
error_rate = 0.001
{traffic}
{extra}
"#
    )
}

/// search-00002-bbb fails (30% errors) from 2 minutes in.
pub const BBB_FAILS: &str = r#"
[[fault]]
service = "search"
revision = "search-00002-bbb"
from = "2m"
error_rate = 0.3
"#;

/// 90% on search-00001-aaa, 10% on search-00002-bbb.
pub const RUN_CANARY: &str = r#"
[[service.traffic]]
revision = "search-00001-aaa"
percent = 90
[[service.traffic]]
revision = "search-00002-bbb"
percent = 10
"#;

pub const RUN_KNOWN_GOOD: &str = r#""ripcord.dev/known-good" = "search-00001-aaa""#;

/// The project's test venv Python (`scripts/setup` makes it) when it can `import module`; None when it cannot and
/// the run does not require the tools (a bare `cargo test`), in which case `what` is reported as skipped. Under
/// `scripts/test` (RIPCORD_REQUIRE_TOOLS=1) a missing module fails the test.
pub fn venv_python(module: &str, what: &str) -> Option<PathBuf> {
    let python = repo_root().join(".tools/venv/bin/python");
    let ready = python.is_file()
        && std::process::Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
    if ready {
        return Some(python);
    }
    let message = format!("{module} is not installed in {}: run scripts/setup", python.display());
    assert!(std::env::var_os("RIPCORD_REQUIRE_TOOLS").is_none(), "{message}");
    eprintln!("SKIPPED {what}: {message}");
    None
}

/// A webhook receiver on a free port: answers 204 to `count` posts and returns their bodies.
pub fn webhook_receiver(count: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let receiver = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap_or_else(|e| panic!("{e}")));
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
            bodies.push(String::from_utf8_lossy(&body).into_owned());
        }
        bodies
    });
    (port, receiver)
}

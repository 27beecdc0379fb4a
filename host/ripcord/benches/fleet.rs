//! Fleet scale: one `ripcord check` over a generated fleet of Lambda guards against the simulator (in this
//! process, over HTTP, through the real SDK clients), the audit log on disk. Prints, per fleet size, the wall time
//! of the cycle, the API calls by operation and the peak memory of the `ripcord` process.
//!
//! Run with `cargo bench -p ripcord --bench fleet` (`RIPCORD_FLEET=100,1000,10000` sets the sizes; default
//! 1000,10000). Every function has a 10% canary of v2 and no traffic, so the figures are ripcord's own cost:
//! reads, batched metrics calls, policies, decision records.
//!
//! `RIPCORD_FLEET_RPS=1` gives every function that much traffic (the five minutes before the cycle are simulated
//! first), so the metrics calls carry data. Then, per size, the simulator alone: one virtual minute of N functions
//! at 1 rps each, and of N Cloud Run services (one project) at 1 rps each.
//!
//! The same cycle over N Cloud Run services of one project (each a 10% canary at 1 rps, five minutes simulated).
//!
//! A fleet-wide bad release (`RIPCORD_FLEET_ROLLBACKS=1000`, the default): that many functions with a canary at
//! 30% errors (20 rps, four minutes simulated), prewarm on rollback (30 s of virtual time for provisioned
//! concurrency), `changes_per_second = 1000`: one cycle rolls them all back; printed are the real time, the
//! pins, and the slowest verdict-to-pin in virtual time.
//!
//! Targets (issue #13): 10,000 guards in one cycle ≤ 10 s on 2 cores, peak memory ≤ 128 MiB; the simulator serves
//! one virtual minute of 10,000 functions at 1 rps in ≤ 2 s; 1,000 rollbacks of one cycle all pinned within
//! `prewarm_timeout` (2 min) + 10 s of the verdict. These runs tell ripcord the account's quotas are unlimited
//! (`[aws.quotas]`, `[gcp.quotas]` raised, `quota_share = 1`): they measure ripcord's own cost.
//!
//! The same bad release **at the published quotas** (`RIPCORD_FLEET_BAD_AT_QUOTAS=1000`; off by default, it runs
//! for minutes of real time): the simulator enforces every API's published quota and ripcord keeps its defaults, so
//! the pins, prewarms and markers of the 1,000 rollbacks queue for the Lambda control plane's 15 calls a second per
//! API. Printed as above, with the slowest verdict-to-pin in real time and the calls the simulator refused.
//!
//! And on Cloud Run (`RIPCORD_FLEET_BAD_RUN_AT_QUOTAS=100`; off by default): that many services of one region, each
//! a 10% canary at 30% errors (20 rps), prewarm on rollback (a tag and warm-up requests), against Cloud Run Admin's
//! 180 writes a minute a region: what a rollback costs of the write quota, in pins a minute.
//!
//! **At the published quotas** (issue #25; `RIPCORD_FLEET_QUOTAS=1000` sets the Lambda sizes, `RIPCORD_FLEET_RUN`
//! the Cloud Run ones, `RIPCORD_FLEET_CYCLES` the cycles, 7 by default): the simulator enforces every API's
//! published quota and ripcord keeps its defaults; `ripcord watch` runs cycles a minute apart (virtual time; the
//! quotas are real time), with a fleet-wide deploy three cycles before the end (every guard's alias or service gets
//! a new 10% canary). Printed per cycle: real time, guards judged, deferred and failed, and the calls per API.
//! `RIPCORD_FLEET_QUOTAS_BAD=1` makes the Lambda deploy a bad release (after the third cycle, 20 rps, the new
//! version failing 30%) that the guards roll back with prewarm: what a long-running process does with a fleet-wide
//! bad release at the quotas, its rollbacks summed up at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

fn scenario(functions: usize, rps: f64) -> String {
    let mut text = String::from("seed = 1\nstart = \"2026-11-26T09:00:00Z\"\n");
    for i in 0..functions {
        let _ = write!(
            text,
            "[[function]]\nname = \"fn-{i}\"\ntags = {{ \"ripcord:known-good:live\" = \"1\" }}\n\
             [[function.version]]\nnumber = 1\n[[function.version]]\nnumber = 2\n\
             [[function.alias]]\nname = \"live\"\nversion = 1\nrouting = {{ version = 2, weight = 0.1 }}\n"
        );
        if rps > 0.0 {
            let _ = writeln!(text, "[function.traffic]\nalias = \"live\"\nrps = {rps}");
        }
    }
    text
}

fn services(count: usize) -> String {
    let mut text = String::from("seed = 1\nstart = \"2026-11-26T09:00:00Z\"\n");
    for i in 0..count {
        let _ = write!(
            text,
            "[[service]]\nname = \"svc-{i}\"\nproject = \"fleet\"\nlocation = \"europe-west1\"\nrps = 1\n\
             [[service.revision]]\nname = \"svc-{i}-00001\"\n[[service.revision]]\nname = \"svc-{i}-00002\"\n\
             [[service.traffic]]\nrevision = \"svc-{i}-00001\"\npercent = 90\n\
             [[service.traffic]]\nrevision = \"svc-{i}-00002\"\npercent = 10\n"
        );
    }
    text
}

/// The simulator alone: the wall time of one virtual minute of `text`'s fleet, and the requests it served.
fn simulator_minute(what: &str, text: &str) {
    let sim = ripcord_sim::scenario::parse(text, Path::new("fleet.toml")).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    sim.advance(60_000);
    let elapsed = started.elapsed();
    println!("| simulator: one virtual minute of {what} at 1 rps | {:.2} s |", elapsed.as_secs_f64());
}

/// A fleet-wide bad release: `functions` canaries at 30% errors with traffic.
fn bad_release(functions: usize) -> String {
    let mut text =
        String::from("seed = 1\nstart = \"2026-11-26T09:00:00Z\"\n[settings]\nprovisioned_allocation = \"30s\"\n");
    for i in 0..functions {
        let _ = write!(
            text,
            "[[function]]\nname = \"fn-{i}\"\ntraffic = {{ alias = \"live\", rps = 20 }}\ntags = {{ \"ripcord:known-good:live\" = \"1\" }}\n\
             [[function.version]]\nnumber = 1\nerror_rate = 0.001\n[[function.version]]\nnumber = 2\nerror_rate = 0.3\n\
             [[function.alias]]\nname = \"live\"\nversion = 1\nrouting = {{ version = 2, weight = 0.1 }}\n"
        );
    }
    text
}

/// Which fleet a cycle runs over.
#[derive(Clone, Copy, PartialEq)]
enum Fleet {
    Lambda,
    CloudRun,
    BadRelease,
    /// The bad release with the simulator enforcing the published quotas and ripcord at its defaults.
    BadReleaseAtQuotas,
    /// The same on Cloud Run services of one region.
    BadReleaseRunAtQuotas,
}

/// A fleet-wide bad release on Cloud Run: `count` services of one region, each a canary at 30% errors.
fn bad_release_run(count: usize) -> String {
    let mut text = String::from(
        "seed = 1\nstart = \"2026-11-26T09:00:00Z\"\n[settings]\nquotas = \"published\"\noperation_polls = 2\n",
    );
    for i in 0..count {
        let _ = write!(
            text,
            "[[service]]\nname = \"svc-{i}\"\nproject = \"fleet\"\nlocation = \"europe-west1\"\nrps = 20\n\
             annotations = {{ \"ripcord.dev/known-good\" = \"svc-{i}-00001\" }}\n\
             [[service.revision]]\nname = \"svc-{i}-00001\"\nerror_rate = 0.001\n\
             [[service.revision]]\nname = \"svc-{i}-00002\"\nerror_rate = 0.3\n\
             [[service.traffic]]\nrevision = \"svc-{i}-00001\"\npercent = 90\n\
             [[service.traffic]]\nrevision = \"svc-{i}-00002\"\npercent = 10\n"
        );
    }
    text
}

fn guards(fleet: Fleet, size: usize, endpoint: &str) -> String {
    let (table, defaults) = match fleet {
        Fleet::Lambda => ("aws", ""),
        Fleet::CloudRun => ("gcp", ""),
        Fleet::BadRelease | Fleet::BadReleaseAtQuotas => {
            ("aws", "prewarm = \"on-rollback\"\nprewarm_timeout = \"2m\"\n")
        }
        Fleet::BadReleaseRunAtQuotas => ("gcp", "prewarm = \"on-rollback\"\nprewarm_timeout = \"2m\"\n"),
    };
    // The account's quotas as unlimited: these runs measure ripcord's own cost.
    let unlimited = match table {
        "aws" => {
            "[aws.quotas]\nlambda_per_api = 100000\nget_function = 100000\nget_metric_data = 100000\nlist_metrics = 100000"
        }
        _ => {
            "[gcp.quotas]\nrun_reads_per_minute = 10000000\nrun_writes_per_minute = 10000000\nmonitoring_reads_per_minute = 10000000"
        }
    };
    let limits = if matches!(fleet, Fleet::BadReleaseAtQuotas | Fleet::BadReleaseRunAtQuotas) {
        String::new()
    } else {
        format!("changes_per_second = 1000\nquota_share = 1\n{unlimited}\n")
    };
    let mut text = format!(
        "[settings]\naudit_log = \"audit.jsonl\"\nclock = \"simulator\"\n[{table}]\nendpoint_url = \"{endpoint}\"\n{limits}[defaults]\nwindow = \"1m\"\nwindows = 3\n{defaults}"
    );
    for i in 0..size {
        let target = match fleet {
            Fleet::CloudRun | Fleet::BadReleaseRunAtQuotas => format!(
                "platform = \"cloud-run\"\nproject = \"fleet\"\nlocation = \"europe-west1\"\nservice = \"svc-{i}\""
            ),
            _ => format!("platform = \"aws-lambda\"\nfunction = \"fn-{i}\"\nalias = \"live\""),
        };
        let _ =
            write!(text, "[[guard]]\nname = \"g-{i}\"\n{target}\npolicies = [{{ use = \"builtin:error-rate\" }}]\n");
    }
    text
}

/// Peak resident memory of `pid` so far, in KiB (VmHWM).
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn run(fleet: Fleet, functions: usize, rps: f64, dir: &Path) {
    let (text, before) = match fleet {
        Fleet::Lambda => (scenario(functions, rps), 5),
        Fleet::CloudRun => (services(functions), 5),
        Fleet::BadRelease => (bad_release(functions), 4),
        Fleet::BadReleaseAtQuotas => {
            (bad_release(functions).replacen("[settings]\n", "[settings]\nquotas = \"published\"\n", 1), 4)
        }
        Fleet::BadReleaseRunAtQuotas => (bad_release_run(functions), 4),
    };
    let sim = ripcord_sim::scenario::parse(&text, Path::new("fleet.toml")).unwrap_or_else(|e| panic!("{e}"));
    let server = ripcord_sim::Server::start(sim.clone(), ([127, 0, 0, 1], 0).into()).unwrap_or_else(|e| panic!("{e}"));
    sim.advance(before * 60_000);
    let config = dir.join(format!("fleet-{functions}.toml"));
    std::fs::write(&config, guards(fleet, functions, &server.endpoint())).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(dir.join("audit.jsonl"));
    cycle(fleet, functions, &sim, &config, dir, "first");
    let one_cycle = matches!(fleet, Fleet::BadRelease | Fleet::BadReleaseAtQuotas | Fleet::BadReleaseRunAtQuotas);
    if !one_cycle {
        // The first cycle over a freshly deployed fleet records every canary's rollout (one write per guard); the
        // next ones only read and judge.
        sim.advance(60_000);
        let _ = std::fs::remove_file(dir.join("audit.jsonl"));
        cycle(fleet, functions, &sim, &config, dir, "next");
    }
    drop(server);
}

/// The results of the rollbacks in an audit log's text.
fn rollback_results(audit: &str) -> Vec<serde_json::Value> {
    audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["record"] == "result" && r["action"] == "rollback")
        .collect()
}

/// One `ripcord check` over the fleet; prints its line of the table.
fn cycle(fleet: Fleet, functions: usize, sim: &ripcord_sim::Simulator, config: &Path, dir: &Path, which: &str) {
    let calls_before = sim.api_log().len();
    let started = Instant::now();
    // RIPCORD_FLEET_WRAP runs ripcord under a tool, e.g. `heaptrack -o /tmp/fleet` for where the memory goes.
    let wrap: Vec<String> =
        std::env::var("RIPCORD_FLEET_WRAP").unwrap_or_default().split_whitespace().map(str::to_string).collect();
    let program = wrap.first().cloned().unwrap_or_else(|| env!("CARGO_BIN_EXE_ripcord").to_string());
    let mut command = std::process::Command::new(program);
    if !wrap.is_empty() {
        command.args(&wrap[1..]).arg(env!("CARGO_BIN_EXE_ripcord"));
    }
    let mut child = command
        .args(["check", "--json", "--config", &config.display().to_string()])
        .env("RIPCORD_CACHE_DIR", dir.join("cache"))
        .stdout(std::fs::File::create(dir.join("stdout.json")).unwrap_or_else(|e| panic!("{e}")))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut peak = 0;
    let status = loop {
        peak = peak.max(peak_kib(child.id()).unwrap_or(0));
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    for call in sim.api_log().into_iter().skip(calls_before) {
        let refused = call.status == 429;
        *calls.entry(if refused { format!("{} refused", call.operation) } else { call.operation }).or_default() += 1;
    }
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default();
    let records = audit.lines().count();
    if matches!(fleet, Fleet::BadRelease | Fleet::BadReleaseAtQuotas | Fleet::BadReleaseRunAtQuotas) {
        let results = rollback_results(&audit);
        let pinned = results.iter().filter(|r| r["outcome"] == "pinned").count();
        let slowest = results.iter().filter_map(|r| r["timings"]["verdict_to_pin_ms"].as_i64()).max().unwrap_or(-1);
        let slowest_real =
            results.iter().filter_map(|r| r["timings"]["verdict_to_pin_real_ms"].as_i64()).max().unwrap_or(-1);
        let warm = results.iter().filter(|r| r["prewarm"]["ready"] == true).count();
        let quotas = match fleet {
            Fleet::BadReleaseAtQuotas => " Lambda functions at the published quotas",
            Fleet::BadReleaseRunAtQuotas => " Cloud Run services (one region) at the published quotas",
            _ => "",
        };
        println!(
            "| bad release over {functions}{quotas} | {:.1} s real | {} MiB | {pinned} pinned ({warm} warm) | slowest verdict to pin {:.1} s virtual, {:.1} s real | {calls:?} |",
            elapsed.as_secs_f64(),
            peak / 1024,
            slowest as f64 / 1000.0,
            slowest_real as f64 / 1000.0
        );
        return;
    }
    if status.code() == Some(1) {
        // An error: the first guard's result says which.
        let output = std::fs::read_to_string(dir.join("stdout.json")).unwrap_or_default();
        let first = serde_json::from_str::<serde_json::Value>(&output).ok().and_then(|v| v.get(0).cloned());
        println!("(exit 1; the first result: {})", first.map(|v| v.to_string()).unwrap_or_default());
    }
    let what = if fleet == Fleet::CloudRun { "Cloud Run services" } else { "Lambda guards" };
    println!(
        "| {functions} {what}, {which} cycle | {:.1} s | {} MiB | {records} | {} | {calls:?} |",
        elapsed.as_secs_f64(),
        peak / 1024,
        status.code().map_or("killed".to_string(), |c| c.to_string())
    );
}

/// A fleet at the published quotas: `size` Lambda functions (or Cloud Run services, 1,000 a region as Cloud Run
/// allows), steady on version 1 at 1 rps; `watch` over `cycles` cycles a minute apart, a fleet-wide deploy before the
/// last three. Prints a line per cycle. With `bad` (Lambda), a bad release in a process that has run for a while:
/// 20 rps, the deploy's version fails 30% of requests, after the third cycle; the guards act and prewarm on
/// rollback; the rollbacks are summed up at the end.
fn at_quotas(cloud_run: bool, size: usize, cycles: usize, dir: &Path) {
    let bad = !cloud_run && std::env::var("RIPCORD_FLEET_QUOTAS_BAD").is_ok_and(|v| v == "1");
    let deploy_after = if bad { 3 } else { cycles.saturating_sub(3) };
    let (rps, v1, v2) = if bad { (20, "error_rate = 0.001\n", "error_rate = 0.3\n") } else { (1, "", "") };
    let mut text = String::from("seed = 1\nstart = \"2026-11-26T09:00:00Z\"\n[settings]\nquotas = \"published\"\n");
    if bad {
        text.push_str("provisioned_allocation = \"30s\"\n");
    }
    let region = |i: usize| format!("region-{}", i / 1000);
    for i in 0..size {
        if cloud_run {
            let _ = write!(
                text,
                "[[service]]\nname = \"svc-{i}\"\nproject = \"fleet\"\nlocation = \"{}\"\nrps = 1\n\
                 [[service.revision]]\nname = \"svc-{i}-00001\"\n[[service.revision]]\nname = \"svc-{i}-00002\"\n\
                 [[service.traffic]]\nrevision = \"svc-{i}-00001\"\npercent = 100\n",
                region(i)
            );
        } else {
            let _ = write!(
                text,
                "[[function]]\nname = \"fn-{i}\"\ntags = {{ \"ripcord:known-good:live\" = \"1\" }}\n\
                 [function.traffic]\nalias = \"live\"\nrps = {rps}\n\
                 [[function.version]]\nnumber = 1\n{v1}[[function.version]]\nnumber = 2\n{v2}\
                 [[function.alias]]\nname = \"live\"\nversion = 1\n"
            );
        }
    }
    let sim = ripcord_sim::scenario::parse(&text, Path::new("fleet.toml")).unwrap_or_else(|e| panic!("{e}"));
    let server = ripcord_sim::Server::start(sim.clone(), ([127, 0, 0, 1], 0).into()).unwrap_or_else(|e| panic!("{e}"));
    sim.advance(5 * 60_000);
    let table = if cloud_run { "gcp" } else { "aws" };
    let acting = if bad { "prewarm = \"on-rollback\"\nprewarm_timeout = \"2m\"" } else { "mode = \"dry-run\"" };
    let mut config = format!(
        "[settings]\naudit_log = \"audit.jsonl\"\nclock = \"simulator\"\n[{table}]\nendpoint_url = \"{}\"\n[defaults]\nwindow = \"1m\"\nwindows = 3\n{acting}\n",
        server.endpoint()
    );
    for i in 0..size {
        let target = if cloud_run {
            format!(
                "platform = \"cloud-run\"\nproject = \"fleet\"\nlocation = \"{}\"\nservice = \"svc-{i}\"",
                region(i)
            )
        } else {
            format!("platform = \"aws-lambda\"\nfunction = \"fn-{i}\"\nalias = \"live\"")
        };
        let _ =
            write!(config, "[[guard]]\nname = \"g-{i}\"\n{target}\npolicies = [{{ use = \"builtin:error-rate\" }}]\n");
    }
    let path = dir.join(format!("quotas-{size}.toml"));
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(dir.join("audit.jsonl"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ripcord"))
        .args(["watch", "--json", "--cycles", &cycles.to_string(), "--config", &path.display().to_string()])
        .env("RIPCORD_CACHE_DIR", dir.join("cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let what = if cloud_run { "Cloud Run services" } else { "Lambda guards" };
    let lines =
        std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout"))));
    let (mut started, mut seen) = (Instant::now(), 0);
    for (n, line) in lines.map_while(Result::ok).enumerate() {
        let cycle: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let guards = cycle["guards"].as_array().cloned().unwrap_or_default();
        let count = |outcome: &str| guards.iter().filter(|g| g["outcome"] == outcome).count();
        let (deferred, failed) = (count("deferred"), count("failed"));
        let log = sim.api_log();
        let mut calls: BTreeMap<String, usize> = BTreeMap::new();
        for call in &log[seen..] {
            *calls
                .entry(if call.status == 429 { format!("{} refused", call.operation) } else { call.operation.clone() })
                .or_default() += 1;
        }
        seen = log.len();
        println!(
            "| {size} {what} | cycle {} | {:.1} s real | {} judged | {deferred} deferred | {failed} failed | {calls:?} |",
            n + 1,
            started.elapsed().as_secs_f64(),
            guards.len() - deferred - failed
        );
        started = Instant::now();
        if n + 1 == deploy_after {
            // A fleet-wide deploy three cycles before the end (`watch` may already be in the next cycle when this
            // line is read, and a minute's metrics are judged once the next minute is over): every deployment gets
            // a 10% canary of its version 2.
            for i in 0..size {
                if cloud_run {
                    let split = |revision: String, percent| ripcord_sim::cloudrun::TrafficTarget {
                        latest: false,
                        revision,
                        percent,
                        tag: String::new(),
                    };
                    let traffic = vec![split(format!("svc-{i}-00001"), 90), split(format!("svc-{i}-00002"), 10)];
                    let _ = sim.set_traffic(&format!("svc-{i}"), traffic);
                } else {
                    let _ = sim.set_alias(&format!("fn-{i}"), "live", 1, Some((2, 0.1)));
                }
            }
        }
    }
    let _ = child.wait();
    drop(server);
    if bad {
        let results = rollback_results(&std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default());
        let pinned = results.iter().filter(|r| r["outcome"] == "pinned").count();
        let warm = results.iter().filter(|r| r["prewarm"]["ready"] == true).count();
        let slowest = results.iter().filter_map(|r| r["timings"]["verdict_to_pin_real_ms"].as_i64()).max();
        println!(
            "| {size} {what}: the bad release | {pinned} pinned ({warm} warm) | slowest verdict to pin {:.1} s real |",
            slowest.unwrap_or(-1) as f64 / 1000.0
        );
    }
}

fn main() {
    if std::env::args().skip(1).any(|a| !a.starts_with("--") && !"fleet".contains(a.as_str())) {
        return;
    }
    let sizes: Vec<usize> = std::env::var("RIPCORD_FLEET")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    // On the target directory's disk (not a tmpfs): the audit log's fsyncs are part of the cost.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap_or_else(|e| panic!("{e}"));
    println!("| guards | one cycle | peak memory | audit records | exit | API calls |\n|---|---|---|---|---|---|");
    let rps: f64 = std::env::var("RIPCORD_FLEET_RPS").ok().and_then(|r| r.parse().ok()).unwrap_or(0.0);
    for &functions in &sizes {
        run(Fleet::Lambda, functions, rps, dir.path());
    }
    for &services in &sizes {
        run(Fleet::CloudRun, services, 1.0, dir.path());
    }
    let rollbacks: usize = std::env::var("RIPCORD_FLEET_ROLLBACKS").ok().and_then(|r| r.parse().ok()).unwrap_or(1000);
    if rollbacks > 0 {
        run(Fleet::BadRelease, rollbacks, 0.0, dir.path());
    }
    let at_quotas_rollbacks: usize =
        std::env::var("RIPCORD_FLEET_BAD_AT_QUOTAS").ok().and_then(|r| r.parse().ok()).unwrap_or(0);
    if at_quotas_rollbacks > 0 {
        run(Fleet::BadReleaseAtQuotas, at_quotas_rollbacks, 0.0, dir.path());
    }
    let run_rollbacks: usize =
        std::env::var("RIPCORD_FLEET_BAD_RUN_AT_QUOTAS").ok().and_then(|r| r.parse().ok()).unwrap_or(0);
    if run_rollbacks > 0 {
        run(Fleet::BadReleaseRunAtQuotas, run_rollbacks, 0.0, dir.path());
    }
    let list = |name: &str| -> Vec<usize> {
        std::env::var(name).unwrap_or_default().split(',').filter_map(|s| s.trim().parse().ok()).collect()
    };
    let cycles: usize = std::env::var("RIPCORD_FLEET_CYCLES").ok().and_then(|c| c.parse().ok()).unwrap_or(7);
    let (lambda, run) = (list("RIPCORD_FLEET_QUOTAS"), list("RIPCORD_FLEET_RUN"));
    if !lambda.is_empty() || !run.is_empty() {
        println!(
            "\n| at the published quotas | cycle | real time | judged | deferred | failed | API calls |\n|---|---|---|---|---|---|---|"
        );
    }
    for size in lambda {
        at_quotas(false, size, cycles, dir.path());
    }
    for size in run {
        at_quotas(true, size, cycles, dir.path());
    }
    println!("\n| simulator | wall time |\n|---|---|");
    for &size in &sizes {
        simulator_minute(&format!("{size} functions"), &scenario(size, 1.0));
        simulator_minute(&format!("{size} services"), &services(size));
    }
}

//! Start-up: what a fresh process pays before its first cycle, as a scheduled function or job does on every cold
//! start. Prints medians over repeated runs of the release binary (a fresh process each time):
//! - `ripcord precompile` over examples/guards.toml (configuration, three built-in policies loaded and probed):
//!   compiling them, against loading them from compiled code (the cache, or a package's precompiled/);
//! - `ripcord function` (what bootstrap.zip runs) from process start to "ripcord function ready" — configuration,
//!   policies, clients — against the simulator's Runtime API: with the package's precompiled code, and compiling.
//!
//! Run with `cargo bench -p ripcord --bench startup` (`RIPCORD_STARTUP_RUNS=N`, default 15). Target (issue #13):
//! a warm start ≥ 20× faster than compiling the Rust built-ins.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RIPCORD: &str = env!("CARGO_BIN_EXE_ripcord");

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Wall time of `ripcord precompile` into `out` (compiling when it is empty, loading when it is not).
fn precompile(config: &Path, out: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new(RIPCORD)
        .args(["precompile", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    started.elapsed()
}

/// Time from spawning `ripcord function` to its "ripcord function ready" log line.
fn function_ready(config: &Path, runtime_api: &str, extra: &[&str]) -> Duration {
    let started = Instant::now();
    let mut child = Command::new(RIPCORD)
        .arg("function")
        .args(extra)
        .env("RIPCORD_CONFIG", config)
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("RIPCORD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let ready = BufReader::new(stderr).lines().map_while(Result::ok).find(|l| l.contains("ripcord function ready"));
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready.is_some(), "ripcord function never got ready");
    elapsed
}

fn main() {
    if std::env::args().skip(1).any(|a| !a.starts_with("--") && !"startup".contains(a.as_str())) {
        return;
    }
    let runs: usize = std::env::var("RIPCORD_STARTUP_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(15);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap_or_else(|e| panic!("{e}"));
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/guards.toml");

    let compile = median(
        (0..runs)
            .map(|i| {
                let out = dir.path().join(format!("cold-{i}"));
                precompile(&config, &out)
            })
            .collect(),
    );
    let warm_dir = dir.path().join("warm");
    precompile(&config, &warm_dir);
    let warm = median((0..runs).map(|_| precompile(&config, &warm_dir)).collect());
    println!("| start-up | median of {runs} |\n|---|---|");
    println!("| configuration + 3 built-in policies, compiling | {} |", ms(compile));
    println!(
        "| configuration + 3 built-in policies, compiled code | {} ({:.0}× faster) |",
        ms(warm),
        compile.as_secs_f64() / warm.as_secs_f64()
    );

    // `ripcord function` against the simulator's Runtime API (no event is sent: the clock stops at ready).
    let sim = ripcord_sim::Simulator::new(0, 1, ripcord_sim::Settings::default());
    let server = ripcord_sim::Server::start(sim, ([127, 0, 0, 1], 0).into()).unwrap_or_else(|e| panic!("{e}"));
    let api = server.addr().to_string();
    let function_config = dir.path().join("guards.toml");
    let text = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&function_config, text).unwrap_or_else(|e| panic!("{e}"));
    let precompiled = format!("--precompiled={}", warm_dir.display());
    let packaged = median((0..runs).map(|_| function_ready(&function_config, &api, &[&precompiled])).collect());
    let compiling = median((0..runs).map(|_| function_ready(&function_config, &api, &["--no-cache"])).collect());
    println!("| `ripcord function` to ready, package's precompiled code | {} |", ms(packaged));
    println!("| `ripcord function` to ready, compiling | {} |", ms(compiling));
}

//! Cost of a verdict: `builtin:error-rate` in a fresh instance (pooling allocator + InstancePre + cached code)
//! against the same logic as plain native Rust, on 2 revisions x 6 metrics x 60 points; and the cost of loading
//! a plugin by compiling it versus mapping its cached compiled code.
//!
//! Target: <= 40 us median per verdict for the Rust policy. Run with `cargo bench -p ripcord`.
//!
//! `hostile/*` measures how a misbehaving plugin is stopped (the tests assert that it is, not how fast): a loop
//! is stopped at the deadline plus at most one epoch tick (5 ms) on an idle machine; an oversized answer is refused
//! while it is lifted, in the time the plugin took to build it, with no copy on the host.

use criterion::{Criterion, criterion_group, criterion_main};
use ripcord::model::evaluation::{Evaluation, MetricKind, MetricSeries, Params, Platform, Revision, Window};
use ripcord::model::verdict::Verdict;
use ripcord::plugin::runtime::{CacheDir, PluginSource, Runtime, RuntimeSettings};
use std::hint::black_box;

const NOW: i64 = 1_795_000_000_000;
const MINUTE: i64 = 60_000;
const METRICS: [&str; 6] = ["requests", "errors", "latency_p50", "latency_p95", "latency_p99", "throttles"];

/// 60 one-minute points per metric, in 12 windows of 5 minutes.
fn evaluation() -> Evaluation {
    let windows = Window::ending_at(NOW, 5 * MINUTE, 12);
    let revision = |id: &str, share: f64, error_every: usize| Revision {
        id: id.to_string(),
        traffic_share: share,
        metrics: METRICS
            .iter()
            .map(|name| {
                let points = (0..60).map(|i| {
                    let value = match *name {
                        "requests" => 1000.0 * share + (i % 7) as f64,
                        "errors" => f64::from(u8::from((i as usize).is_multiple_of(error_every))),
                        "throttles" => 0.0,
                        _ => 100.0 + (i % 11) as f64,
                    };
                    (NOW - (60 - i) * MINUTE, value)
                });
                MetricSeries::split(name, MetricKind::for_metric(name), points, &windows)
            })
            .collect(),
    };
    let (baseline, candidate) = (revision("41", 0.9, 3), revision("42", 0.1, 4));
    Evaluation {
        guard: "bench".into(),
        platform: Platform::AwsLambda,
        now: NOW,
        deployed_at: Some(NOW - 60 * MINUTE),
        windows,
        baseline: Some(baseline),
        known_good: None,
        candidate,
        params: Params::new(),
    }
}

/// The error-rate policy's logic as plain native Rust, on host types, with its default parameters.
fn native_error_rate(e: &Evaluation) -> Verdict {
    let (max_rate, ratio, min_requests, needed) = (0.01, 2.0, 100.0, 2usize);
    let sum = |s: &MetricSeries, w: usize| -> Option<f64> { s.values(w as u32).reduce(|a, b| a + b) };
    let (Some(requests), Some(errors)) = (e.candidate.series("requests"), e.candidate.series("errors")) else {
        return Verdict::Inconclusive;
    };
    let baseline = e.baseline.as_ref().and_then(|b| Some((b.series("requests")?, b.series("errors")?)));
    let mut checks = Vec::new();
    let (mut bad, mut thin) = (0, 0);
    for w in e.windows.len().saturating_sub(needed)..e.windows.len() {
        let served = sum(requests, w).unwrap_or(0.0);
        if served < min_requests {
            thin += 1;
            checks.push((format!("requests[w{w}]"), served, min_requests, false));
            continue;
        }
        let rate = sum(errors, w).unwrap_or(0.0) / served;
        let base_rate =
            baseline.and_then(|(r, er)| Some(sum(er, w).unwrap_or(0.0) / sum(r, w).filter(|n| *n >= min_requests)?));
        let threshold = base_rate.map_or(max_rate, |b: f64| f64::max(max_rate, b * ratio));
        let passed = rate <= threshold;
        checks.push((format!("error_rate[w{w}]"), rate, threshold, passed));
        bad += usize::from(!passed);
    }
    black_box(&checks);
    match (thin, bad) {
        (1.., _) => Verdict::Inconclusive,
        (_, b) if b == needed => Verdict::Rollback,
        (_, 0) => Verdict::Promote,
        _ => Verdict::Hold,
    }
}

fn verdicts(c: &mut Criterion) {
    let evaluation = evaluation();
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = Runtime::new(RuntimeSettings { cache: CacheDir::At(cache.path().into()), ..Default::default() })
        .unwrap_or_else(|e| panic!("{e}"));
    let plugin = runtime.load(&PluginSource::Builtin("error-rate".into())).unwrap_or_else(|e| panic!("{e}"));
    let wasm_verdict = runtime.evaluate(&plugin, &evaluation).map(|r| r.verdict).ok();
    assert_eq!(wasm_verdict, Some(native_error_rate(&evaluation)), "native and wasm disagree");

    let mut group = c.benchmark_group("verdict");
    group.bench_function("error-rate wasm (fresh instance)", |b| {
        b.iter(|| runtime.evaluate(&plugin, black_box(&evaluation)))
    });
    group.bench_function("error-rate native", |b| b.iter(|| native_error_rate(black_box(&evaluation))));
    group.finish();
}

fn loading(c: &mut Criterion) {
    let wasm = ripcord::plugin::builtins::find("error-rate").unwrap_or_default();
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let compiling = Runtime::new(RuntimeSettings { cache: CacheDir::Disabled, ..Default::default() })
        .unwrap_or_else(|e| panic!("{e}"));
    let cached = Runtime::new(RuntimeSettings { cache: CacheDir::At(cache.path().into()), ..Default::default() })
        .unwrap_or_else(|e| panic!("{e}"));
    cached.load_bytes("error-rate", wasm).unwrap_or_else(|e| panic!("{e}"));

    let mut group = c.benchmark_group("load error-rate");
    group.sample_size(20);
    group.bench_function("compile", |b| b.iter(|| compiling.load_bytes("error-rate", black_box(wasm))));
    group.bench_function("deserialize cached (mmap)", |b| b.iter(|| cached.load_bytes("error-rate", black_box(wasm))));
    group.finish();
}

fn hostile(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeSettings { cache: CacheDir::Disabled, ..Default::default() })
        .unwrap_or_else(|e| panic!("{e}"));
    let path = std::path::Path::new(ripcord::GUEST_DIR).join("hostile.wasm");
    let plugin = runtime.load(&PluginSource::File(path)).unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("hostile");
    group.sample_size(10);
    for behaviour in ["loop", "huge-reason", "many-checks", "log-burst"] {
        let mut input = evaluation();
        input.params.insert("behaviour".into(), ripcord::model::evaluation::ParamValue::Text(behaviour.into()));
        assert!(runtime.evaluate(&plugin, &input).is_err(), "{behaviour} must fail");
        group.bench_function(behaviour, |b| b.iter(|| runtime.evaluate(&plugin, black_box(&input))));
    }
    group.finish();
}

criterion_group!(benches, verdicts, loading, hostile);
criterion_main!(benches);

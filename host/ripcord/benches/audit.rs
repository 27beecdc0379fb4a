//! Cost of finding interrupted changes at start-up: `Audit::open_intents` streams the whole audit log, parsing
//! only intents and results. Measured on a year of one guard checked every 10 minutes (52,560 decision records
//! with two policies and six checks each, ~50 MB) holding 100 changes, one of them interrupted.
//! Run with `cargo bench -p ripcord --bench audit`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ripcord::config::Mode;
use ripcord::model::verdict::{Check, Verdict};
use ripcord::record::audit::{Actor, Audit, DeploymentRecord, Kind, PolicyRecord, Record, Writer};
use std::io::Write;

const DECISIONS: usize = 52_560;

fn record(kind: Kind, n: usize) -> Record {
    let checks = (0..6)
        .map(|w| Check { name: format!("error_rate[w{w}]"), observed: 0.004, threshold: 0.01, passed: true })
        .collect::<Vec<_>>();
    let policy = |plugin: &str| PolicyRecord {
        plugin: plugin.into(),
        verdict: Verdict::Promote,
        reason: "candidate error rate within max(0.01, baseline x 2) in every window".into(),
        checks: checks.clone(),
        error: None,
    };
    Record {
        deployment: Some(DeploymentRecord {
            primary: "41".into(),
            candidate: "42".into(),
            candidate_share: 0.1,
            baseline: Some("41".into()),
            known_good: Some("41".into()),
        }),
        verdict: Verdict::Promote,
        reason: "all policies promote".into(),
        policies: vec![policy("builtin:error-rate"), policy("builtin:latency")],
        writer: Some(Writer { host: "ip-10-0-0-1".into(), pid: 4242 }),
        ..Record::new(
            kind,
            format!("checkout-api-{n}"),
            n as i64 * 600_000,
            "checkout-api",
            Actor::Schedule,
            Mode::Enforce,
        )
    }
}

fn open_intents(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("audit.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}")));
    for n in 0..DECISIONS {
        let mut records = vec![record(Kind::Decision, n)];
        if n % (DECISIONS / 100) == 0 {
            records.push(record(Kind::Intent, n));
            if n != 0 {
                records.push(record(Kind::Result, n));
            }
        }
        for r in records {
            let line = serde_json::to_string(&r).unwrap_or_else(|e| panic!("{e}"));
            writeln!(file, "{line}").unwrap_or_else(|e| panic!("{e}"));
        }
    }
    drop(file);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(10);
    group.bench_function("open_intents_one_year", |b| {
        b.iter(|| {
            let open = Audit::open_intents(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(open.len(), 1);
        })
    });
    group.finish();
}

criterion_group!(benches, open_intents);
criterion_main!(benches);

//! The same policy (plugins/examples/safety-errors) in each guest language: cost per verdict in a fresh instance,
//! load from the compiled cache, and compile; sizes and resident memory per loaded plugin are printed as a table
//! before the measurements.
//!
//! The components are built here with the dev kit, from the toolchains `scripts/setup` installs (npm packages
//! of the JavaScript example, .tools/venv); a language whose toolchain is missing is left out with a message.
//! Run with `cargo bench -p ripcord --bench languages`.

use criterion::{Criterion, criterion_group, criterion_main};
use ripcord::devkit::{self, Project};
use ripcord::model::evaluation::Evaluation;
use ripcord::plugin::runtime::{CacheDir, Plugin, PluginSource, Runtime, RuntimeSettings};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// (label, component) for every language whose toolchain is installed.
fn components() -> Vec<(&'static str, PathBuf)> {
    let example = repo().join("plugins/examples/safety-errors");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-languages");
    let mut built = vec![("rust", Path::new(ripcord::GUEST_DIR).join("safety_errors.wasm"))];
    let variants = [
        ("c", "c", None),
        ("js-quickjs", "js", Some(devkit::JsEngine::Quickjs)),
        ("js-spidermonkey", "js", Some(devkit::JsEngine::Spidermonkey)),
        ("python", "python", None),
    ];
    for (label, folder, js_engine) in variants {
        let result = Project::open(&example.join(folder)).and_then(|mut project| {
            project.tool_dirs.push(repo().join(".tools/venv/bin"));
            project.manifest.js_engine = js_engine.or(project.manifest.js_engine);
            devkit::build(&project, Some(&out.join(format!("{label}.wasm"))))
        });
        match result {
            Ok(component) => built.push((label, component.path)),
            Err(error) => eprintln!("left out {label}: {error}"),
        }
    }
    built
}

fn fixture() -> Evaluation {
    let path = repo().join("plugins/examples/safety-errors/fixtures/healthy.json");
    ripcord::model::fixture::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn runtime(cache: CacheDir) -> Runtime {
    Runtime::new(RuntimeSettings { cache, ..RuntimeSettings::default() }).unwrap_or_else(|e| panic!("{e}"))
}

fn load(runtime: &Runtime, path: &Path) -> Plugin {
    runtime.load(&PluginSource::File(path.to_path_buf())).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Resident set size of this process, from /proc (0 where there is none).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn languages(c: &mut Criterion) {
    let components = components();
    let evaluation = fixture();
    let caches = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-languages-cache");
    eprintln!("\n{:16} {:>10} {:>12} {:>12} {:>14}", "language", "component", "compiled", "compile", "resident");
    for (label, path) in &components {
        let cache = caches.join(label);
        let _ = std::fs::remove_dir_all(&cache);
        let started = Instant::now();
        drop(load(&runtime(CacheDir::At(cache.clone())), path));
        let compile = started.elapsed();
        // Resident memory a loaded plugin adds: its mapped compiled code and what one evaluation touches.
        let runtime = runtime(CacheDir::At(cache.clone()));
        let before = resident_bytes();
        let plugin = load(&runtime, path);
        runtime.evaluate(&plugin, &evaluation).unwrap_or_else(|e| panic!("{e}"));
        let resident = resident_bytes().saturating_sub(before);
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "{label:16} {:>8.2}MB {:>10.2}MB {:>10.2}s {:>12.1}MB",
            size as f64 / 1e6,
            dir_bytes(&cache) as f64 / 1e6,
            compile.as_secs_f64(),
            resident as f64 / 1e6
        );
    }

    let mut group = c.benchmark_group("language/verdict");
    for (label, path) in &components {
        let runtime = runtime(CacheDir::At(caches.join(label)));
        let plugin = load(&runtime, path);
        group.bench_function(*label, |b| b.iter(|| runtime.evaluate(&plugin, black_box(&evaluation))));
    }
    group.finish();

    let mut group = c.benchmark_group("language/cached_load");
    for (label, path) in &components {
        let runtime = runtime(CacheDir::At(caches.join(label)));
        group.bench_function(*label, |b| b.iter(|| load(&runtime, path)));
    }
    group.finish();

    let mut group = c.benchmark_group("language/compile");
    group.sample_size(10).warm_up_time(Duration::from_millis(1)).measurement_time(Duration::from_secs(1));
    for (label, path) in &components {
        let runtime = runtime(CacheDir::Disabled);
        group.bench_function(*label, |b| b.iter(|| load(&runtime, path)));
    }
    group.finish();
}

criterion_group!(benches, languages);
criterion_main!(benches);

//! The shipped examples work as the README says: every scenario has a guards.toml that runs against the
//! simulator as is (only the address changes, as `sim serve --listen` would), through the loop a user follows —
//! `watch` → `status` → `report` — and examples/guards.toml loads with its policies.

use crate::support::{SimHarness, repo_root, stderr, stdout};
use std::path::Path;

/// Serves `scenario`, writes its guards.toml (pointed at the server, its audit log in the harness's folder) and
/// runs the README's loop; returns the harness.
fn run_loop(scenario: &str) -> SimHarness {
    let dir = repo_root().join("examples/scenarios");
    let text = std::fs::read_to_string(dir.join(format!("{scenario}.toml"))).unwrap_or_else(|e| panic!("{e}"));
    let h = SimHarness::start(&text);
    let guards = std::fs::read_to_string(dir.join(format!("{scenario}.guards.toml"))).unwrap_or_else(|e| panic!("{e}"));
    assert!(guards.contains("http://127.0.0.1:4566"), "{scenario}: the guards point at `sim serve`'s default address");
    let guards = guards
        .replace("http://127.0.0.1:4566", &h.server.endpoint())
        .replace(&format!("\"{scenario}.audit.jsonl\""), "\"audit.jsonl\"");
    std::fs::write(h.dir.path().join("guards.toml"), guards).unwrap_or_else(|e| panic!("{e}"));
    let watch = h.ripcord(&["watch", "--cycles", "15"]);
    assert_eq!(
        watch.status.code(),
        Some(2),
        "{scenario}: the incident is rolled back:\n{}\n{}",
        stdout(&watch),
        stderr(&watch)
    );
    let status = h.ripcord(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{scenario}: {}", stderr(&status));
    assert!(stdout(&status).contains("cooldown until"), "{scenario}: on-call sees the rollback: {}", stdout(&status));
    let page = h.dir.path().join("report.html").display().to_string();
    let report = h.ripcord(&["report", "--out", &page]);
    assert_eq!(report.status.code(), Some(0), "{scenario}: {}", stderr(&report));
    assert!(Path::new(&page).is_file());
    h
}

#[test]
fn the_canary_failure_scenario_runs_with_its_guards() {
    let h = run_loop("canary-failure");
    assert_eq!(h.alias(), (1, None));
}

#[test]
fn the_full_promotion_incident_scenario_runs_with_its_guards() {
    let h = run_loop("full-promotion-incident");
    assert_eq!(h.alias(), (1, None));
}

#[test]
fn the_cloud_run_canary_scenario_runs_with_its_guards() {
    let h = run_loop("cloud-run-canary");
    let split = h.split("checkout");
    assert!(split.iter().all(|(r, percent, _)| *percent == 0 || r == "checkout-00001-stable"), "{split:?}");
}

#[test]
fn every_scenario_ships_a_guards_toml() {
    let dir = repo_root().join("examples/scenarios");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")).filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(scenario) = name.strip_suffix(".toml").filter(|n| !n.ends_with(".guards")) {
            assert!(dir.join(format!("{scenario}.guards.toml")).is_file(), "{name} has no {scenario}.guards.toml");
        }
    }
}

/// examples/guards.toml (the README's reference) loads with its policies.
#[test]
fn the_reference_guards_toml_loads() {
    let config = repo_root().join("examples/guards.toml");
    let loaded = ripcord::config::Config::load(&config).unwrap_or_else(|e| panic!("{e}"));
    let runtime = ripcord::plugin::runtime::Runtime::new(ripcord::plugin::runtime::RuntimeSettings {
        cache: ripcord::plugin::runtime::CacheDir::At(Path::new(env!("CARGO_TARGET_TMPDIR")).join("examples-cache")),
        ..Default::default()
    });
    let runtime = runtime.unwrap_or_else(|e| panic!("{e}"));
    ripcord::judge::policies::PolicySet::load_strict(&loaded, runtime).unwrap_or_else(|e| panic!("{e}"));
}

//! The built-in policies on the shipped fixtures: each verdict, and the checks behind it.

use crate::support::{fixture, load, runtime};
use ripcord::model::verdict::Verdict;

#[test]
fn builtins_give_the_expected_verdict_on_every_fixture() {
    let runtime = runtime();
    let expected = [
        ("healthy.json", ["promote", "promote", "promote"]),
        ("error-spike.json", ["rollback", "promote", "rollback"]),
        ("low-traffic.json", ["inconclusive", "inconclusive", "inconclusive"]),
        ("latency-regression.json", ["promote", "rollback", "promote"]),
        ("missing-metric.json", ["inconclusive", "promote", "inconclusive"]),
    ];
    let plugins = ["builtin:error-rate", "builtin:latency", "builtin:slo-burn"].map(|p| load(&runtime, p));
    for (file, verdicts) in expected {
        let evaluation = fixture(file);
        for (plugin, want) in plugins.iter().zip(verdicts) {
            let report = runtime.evaluate(plugin, &evaluation).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(report.verdict.as_str(), want, "{} on {file}: {}", plugin.source(), report.reason);
        }
    }
}

/// The rollback's checks: the observed rate and the evidence against each tolerated rate (change detectors' largest
/// statistics, which alarm at 1).
#[test]
fn error_rate_rollback_shows_the_rate_and_the_evidence() {
    let runtime = runtime();
    let plugin = load(&runtime, "builtin:error-rate");
    let report = runtime.evaluate(&plugin, &fixture("error-spike.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Rollback);
    let failed: Vec<&str> = report.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["error_rate", "evidence_above_max_rate", "evidence_above_ratio_x_baseline"], "{report:?}");
    for check in &report.checks {
        assert!(check.observed > check.threshold, "{check:?}");
    }
    assert!(report.checks[0].observed > 0.05 && report.checks[0].threshold >= 0.01, "{report:?}");
    assert!(report.checks[1..].iter().all(|c| c.threshold == 1.0), "a detector alarms at 1");
    assert!(report.reason.contains("change detected at alpha 0.01 per day"), "{}", report.reason);
    assert!(report.reason.contains(" since 09:"), "the onset is named: {}", report.reason);
}

#[test]
fn error_rate_parameters_change_the_verdict() {
    let runtime = runtime();
    let plugin = load(&runtime, "builtin:error-rate");
    // Tolerating 20% errors turns the spike into a promote; so does tolerating 100x the baseline's rate.
    for (name, value) in [("max_rate", 0.2), ("ratio", 100.0)] {
        let mut evaluation = fixture("error-spike.json");
        evaluation.params.insert(name.into(), ripcord::model::evaluation::ParamValue::Float(value));
        let tolerant = runtime.evaluate(&plugin, &evaluation).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tolerant.verdict, Verdict::Promote, "{name} = {value}: {}", tolerant.reason);
    }
}

#[test]
fn unknown_or_mistyped_parameters_are_policy_errors_naming_the_parameter() {
    let runtime = runtime();
    let plugin = load(&runtime, "builtin:error-rate");
    let mut evaluation = fixture("healthy.json");
    evaluation.params.insert("max_rat".into(), ripcord::model::evaluation::ParamValue::Float(0.2));
    let error = runtime.evaluate(&plugin, &evaluation).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("`error-rate@0.1.0` (builtin:error-rate)"), "{error}");
    assert!(error.contains("unknown parameter `max_rat`"), "{error}");
    let mut evaluation = fixture("healthy.json");
    evaluation.params.insert("windows".into(), ripcord::model::evaluation::ParamValue::Text("two".into()));
    let error = runtime.evaluate(&plugin, &evaluation).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("parameter `windows` must be a non-negative integer, got text \"two\""), "{error}");
}

/// Without the known good's history (no threshold to count slow requests above), latency is judged minute by minute
/// with a sign detector: a regression in every minute is significant; with fewer minutes compared than
/// `min_samples` it is only a hold.
#[test]
fn latency_uses_a_sequential_sign_test_on_the_minutes() {
    let runtime = runtime();
    let plugin = load(&runtime, "builtin:latency");
    let report = runtime.evaluate(&plugin, &fixture("latency-regression.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Rollback, "{}", report.reason);
    let evidence = report.checks.iter().find(|c| c.name == "evidence_slower").unwrap_or_else(|| panic!("{report:?}"));
    assert!(!evidence.passed && evidence.observed >= 1.0, "{evidence:?}");
    let mut evaluation = fixture("latency-regression.json");
    evaluation.params.insert("min_samples".into(), ripcord::model::evaluation::ParamValue::Integer(1000));
    let report = runtime.evaluate(&plugin, &evaluation).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Hold, "{}", report.reason);
}

#[test]
fn slo_burn_reports_both_windows() {
    let runtime = runtime();
    let plugin = load(&runtime, "builtin:slo-burn");
    let report = runtime.evaluate(&plugin, &fixture("error-spike.json")).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["requests[short]", "burn_rate[1h]", "burn_rate[5m]"]);
    assert!(report.checks[1..].iter().all(|c| !c.passed && c.observed > 14.4), "{report:?}");
}

#[test]
fn a_builtin_loads_from_its_wasm_file_like_any_plugin() {
    let runtime = runtime();
    let path = crate::support::guest("error-rate").display().to_string();
    let from_file = load(&runtime, &path);
    let embedded = load(&runtime, "builtin:error-rate");
    assert_eq!(from_file.sha256(), embedded.sha256());
    assert_eq!(from_file.source(), path);
    let report = runtime.evaluate(&from_file, &fixture("error-spike.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Rollback);
}

/// The book's Rust example policy, compiled from `plugins/examples/error-ceiling`, works and is the one shown.
#[test]
fn the_books_example_policy_works_and_is_the_one_shown() {
    let runtime = runtime();
    let plugin = load(&runtime, &crate::support::guest("error-ceiling").display().to_string());
    for (file, want) in [
        ("healthy.json", Verdict::Promote),
        ("error-spike.json", Verdict::Rollback),
        ("low-traffic.json", Verdict::Inconclusive),
    ] {
        let report = runtime.evaluate(&plugin, &fixture(file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.verdict, want, "{file}: {}", report.reason);
    }
    let root = crate::support::repo_root();
    let source = std::fs::read_to_string(root.join("plugins/examples/error-ceiling/src/lib.rs")).unwrap_or_default();
    let page = std::fs::read_to_string(root.join("docs/guides/policy-rust.md")).unwrap_or_default();
    assert!(
        !source.is_empty() && page.contains(&source),
        "docs/guides/policy-rust.md must show plugins/examples/error-ceiling/src/lib.rs verbatim"
    );
}

/// Between the two: a rate above the tolerated one in the latest windows, but not significantly so, holds.
#[test]
fn error_rate_holds_while_the_evidence_is_not_enough() {
    let runtime = runtime();
    let plugin = load(&runtime, "builtin:error-rate");
    let mut evaluation = fixture("error-spike.json");
    evaluation.params.insert("ratio".into(), ripcord::model::evaluation::ParamValue::Float(30.0));
    let report = runtime.evaluate(&plugin, &evaluation).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Hold, "{}", report.reason);
    assert!(report.reason.contains("not yet significant"), "{}", report.reason);
}

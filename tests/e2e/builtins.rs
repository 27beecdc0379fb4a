//! The built-in policies on the shipped fixtures: each verdict, and the checks behind it.

use crate::support::{fixture, load, runtime};
use ripcord::verdict::Verdict;

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

#[test]
fn error_rate_rollback_shows_failed_checks_for_consecutive_windows() {
    let runtime = runtime();
    let plugin = load(&runtime, "builtin:error-rate");
    let report = runtime.evaluate(&plugin, &fixture("error-spike.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Rollback);
    let failed: Vec<&str> = report.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["error_rate[w2]", "error_rate[w3]"], "{report:?}");
    for check in &report.checks {
        assert!(check.observed > check.threshold, "{check:?}");
        assert!(check.observed > 0.05 && check.threshold >= 0.01, "{check:?}");
    }
}

#[test]
fn error_rate_parameters_change_the_verdict() {
    let runtime = runtime();
    let plugin = load(&runtime, "builtin:error-rate");
    let mut evaluation = fixture("error-spike.json");
    // Tolerating 20% errors turns the spike into a promote; requiring 3 bad windows makes it a hold.
    evaluation.params.insert("max_rate".into(), ripcord::evaluation::ParamValue::Float(0.2));
    let tolerant = runtime.evaluate(&plugin, &evaluation).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tolerant.verdict, Verdict::Promote, "{}", tolerant.reason);
    let mut evaluation = fixture("error-spike.json");
    evaluation.params.insert("windows".into(), ripcord::evaluation::ParamValue::Integer(3));
    let patient = runtime.evaluate(&plugin, &evaluation).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(patient.verdict, Verdict::Hold, "{}", patient.reason);
}

#[test]
fn unknown_or_mistyped_parameters_are_policy_errors_naming_the_parameter() {
    let runtime = runtime();
    let plugin = load(&runtime, "builtin:error-rate");
    let mut evaluation = fixture("healthy.json");
    evaluation.params.insert("max_rat".into(), ripcord::evaluation::ParamValue::Float(0.2));
    let error = runtime.evaluate(&plugin, &evaluation).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("`error-rate@0.1.0` (builtin:error-rate)"), "{error}");
    assert!(error.contains("unknown parameter `max_rat`"), "{error}");
    let mut evaluation = fixture("healthy.json");
    evaluation.params.insert("windows".into(), ripcord::evaluation::ParamValue::Text("two".into()));
    let error = runtime.evaluate(&plugin, &evaluation).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("parameter `windows` must be a non-negative integer, got text \"two\""), "{error}");
}

#[test]
fn latency_uses_mann_whitney_when_samples_allow() {
    let runtime = runtime();
    let plugin = load(&runtime, "builtin:latency");
    let report = runtime.evaluate(&plugin, &fixture("latency-regression.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Rollback);
    let test = report.checks.iter().find(|c| c.name == "mann_whitney_p").unwrap_or_else(|| panic!("{report:?}"));
    assert!(!test.passed && test.observed < 0.001, "{test:?}");
    // With too few points for the test, the factor alone decides.
    let mut evaluation = fixture("latency-regression.json");
    evaluation.params.insert("min_samples".into(), ripcord::evaluation::ParamValue::Integer(1000));
    let report = runtime.evaluate(&plugin, &evaluation).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Rollback);
    assert!(report.checks.iter().all(|c| c.name != "mann_whitney_p"), "{report:?}");
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

/// The README's example policy, compiled from `plugins/examples/error-ceiling`, works and is the one shown.
#[test]
fn the_readme_example_policy_works_and_matches_the_readme() {
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
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
    assert!(
        !source.is_empty() && readme.contains(&source),
        "README.md must show plugins/examples/error-ceiling/src/lib.rs verbatim"
    );
}

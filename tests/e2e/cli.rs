//! The `ripcord plugin` commands as users run them.

use crate::support::{guest, ripcord, stdout_json, temp_dir};

#[test]
fn plugin_test_prints_one_json_object_with_verdict_reason_and_checks() {
    let cache = temp_dir();
    for (file, verdict) in
        [("healthy.json", "promote"), ("error-spike.json", "rollback"), ("low-traffic.json", "inconclusive")]
    {
        let input = format!("examples/evaluations/{file}");
        let output = ripcord(&["plugin", "test", "builtin:error-rate", "--input", &input], cache.path());
        let json = stdout_json(&output);
        assert_eq!(json["verdict"], verdict, "{file}: {json}");
        assert!(json["reason"].as_str().is_some_and(|r| !r.is_empty()), "{json}");
        let checks = json["checks"].as_array().cloned().unwrap_or_default();
        assert!(!checks.is_empty(), "{file}: no checks: {json}");
        for check in checks {
            for field in ["name", "observed", "threshold", "passed"] {
                assert!(check.get(field).is_some(), "{file}: check without {field}: {check}");
            }
        }
    }
}

#[test]
fn plugin_test_params_override_the_file() {
    let cache = temp_dir();
    let args = ["plugin", "test", "builtin:error-rate", "--input", "examples/evaluations/error-spike.json"];
    let json = stdout_json(&ripcord(&[&args[..], &["--param", "max_rate=0.5"]].concat(), cache.path()));
    assert_eq!(json["verdict"], "promote", "{json}");
}

#[test]
fn latency_regression_fixture_rolls_back_with_builtin_latency() {
    let cache = temp_dir();
    let args = ["plugin", "test", "builtin:latency", "--input", "examples/evaluations/latency-regression.json"];
    assert_eq!(stdout_json(&ripcord(&args, cache.path()))["verdict"], "rollback");
    let args = ["plugin", "test", "builtin:error-rate", "--input", "examples/evaluations/missing-metric.json"];
    let json = stdout_json(&ripcord(&args, cache.path()));
    assert_eq!(json["verdict"], "inconclusive");
    assert_eq!(json["reason"], "revision 42 did not report errors");
}

#[test]
fn a_failing_plugin_is_an_inconclusive_verdict_naming_it() {
    let cache = temp_dir();
    let hostile = guest("hostile").display().to_string();
    let args =
        ["plugin", "test", &hostile, "--input", "examples/evaluations/healthy.json", "--param", "behaviour=trap"];
    let json = stdout_json(&ripcord(&args, cache.path()));
    assert_eq!(json["verdict"], "inconclusive", "{json}");
    assert_eq!(json["error"]["kind"], "trap", "{json}");
    assert!(json["reason"].as_str().is_some_and(|r| r.contains("`hostile@0.1.0`")), "{json}");
}

#[test]
fn plugin_output_goes_to_the_log_not_to_stdout() {
    let cache = temp_dir();
    let hostile = guest("hostile").display().to_string();
    let args = [
        "--log",
        "ripcord::plugin=debug",
        "plugin",
        "test",
        &hostile,
        "--input",
        "examples/evaluations/healthy.json",
        "--param",
        "behaviour=stdout",
    ];
    let output = ripcord(&args, cache.path());
    let json = stdout_json(&output);
    assert_eq!(json["verdict"], "promote");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("hello from the plugin's stdout") && log.contains("hello from the plugin's stderr"), "{log}");
    assert!(log.contains("hostile@0.1.0"), "plugin identity missing from the log: {log}");
}

#[test]
fn plugin_inspect_lists_parameters() {
    let cache = temp_dir();
    let output = ripcord(&["plugin", "inspect", "builtin:slo-burn"], cache.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("slo-burn 0.1.0"), "{text}");
    assert!(text.contains("ripcord:policy@0.3.0"), "{text}");
    for param in ["slo_target", "long_window", "short_window", "burn_rate", "min_requests"] {
        assert!(text.contains(param), "{param} missing: {text}");
    }
    let output = ripcord(&["plugin", "inspect", "builtin:slo-burn", "--json"], cache.path());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> =
        json["parameters"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["slo_target", "long_window", "short_window", "burn_rate", "min_requests"]);
    assert_eq!(json["parameters"][0]["default"], 0.999);
}

#[test]
fn bad_input_is_an_error_naming_file_field_and_value() {
    let cache = temp_dir();
    let dir = temp_dir();
    let input = dir.path().join("bad.json");
    let healthy = std::fs::read_to_string(crate::support::repo_root().join("examples/evaluations/healthy.json"))
        .unwrap_or_default()
        .replacen("\"traffic_share\": 0.9", "\"traffic_share\": 9", 1);
    std::fs::write(&input, healthy).unwrap_or_else(|e| panic!("{e}"));
    let input = input.display().to_string();
    let output = ripcord(&["plugin", "test", "builtin:error-rate", "--input", &input], cache.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{input}: baseline.traffic_share: must be between 0 and 1, got 9")), "{stderr}");
    assert!(output.stdout.is_empty());

    let output = ripcord(&["plugin", "inspect", "builtin:nope"], cache.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown built-in policy `nope`; the built-ins are error-rate, latency, slo-burn"),
        "{stderr}"
    );
}

/// A policy that always fails passes no fixture, not even those expecting `inconclusive`; a fixture that expects
/// `error` is the way to test that a policy refuses its input.
#[test]
fn plugin_test_counts_a_plugin_error_as_a_failure_unless_expected() {
    let cache = temp_dir();
    let hostile = guest("hostile").display().to_string();
    let args = [
        "plugin",
        "test",
        &hostile,
        "--fixtures",
        "plugins/examples/safety-errors/fixtures",
        "--param",
        "behaviour=trap",
        "--json",
    ];
    let output = ripcord(&args, cache.path());
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["passed"], 0, "{json}");
    let fixtures = json["fixtures"].as_array().cloned().unwrap_or_default();
    assert!(fixtures.iter().any(|f| f["expected"] == "inconclusive"), "{json}");
    assert!(fixtures.iter().all(|f| f["got"] == "error"), "{json}");

    let dir = temp_dir();
    let fixture = std::fs::read_to_string("../../examples/evaluations/healthy.json").unwrap_or_default();
    let mut fixture: serde_json::Value = serde_json::from_str(&fixture).unwrap_or_else(|e| panic!("{e}"));
    fixture["expect"] = "error".into();
    std::fs::write(dir.path().join("refused.json"), fixture.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let fixtures = dir.path().display().to_string();
    let args = ["plugin", "test", &hostile, "--fixtures", &fixtures, "--param", "behaviour=trap"];
    let output = ripcord(&args, cache.path());
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stdout));
}

/// A file that cannot be read is one line that says why once, whichever command reads it.
#[test]
fn an_unreadable_file_is_said_once() {
    let dir = temp_dir();
    let missing = dir.path().join("missing");
    let missing = missing.display().to_string();
    let audit_is_a_directory = dir.path().join("guards.toml");
    std::fs::write(
        &audit_is_a_directory,
        format!(
            "[settings]\naudit_log = \"{}\"\n[[guard]]\nname = \"g\"\nplatform = \"aws-lambda\"\nfunction = \"f\"\nalias = \"live\"\npolicies = [{{ use = \"builtin:error-rate\" }}]\n",
            dir.path().display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = audit_is_a_directory.display().to_string();
    for (args, said) in [
        (vec!["check", "--config", &missing], "No such file or directory"),
        (vec!["plugin", "test", "builtin:error-rate", "--input", &missing], "No such file or directory"),
        (vec!["check", "--config", &config], "Is a directory"),
    ] {
        let output = ripcord(&args, dir.path());
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.matches(said).count(), 1, "{args:?}: {stderr}");
    }
}

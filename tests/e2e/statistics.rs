//! The sequential tests against an independent reference: `savvi` (Lindon & Malek's Dirichlet-multinomial
//! mixture) and scipy, run from the project's test venv by `scripts/sequential_reference.py` on fixed inputs, must
//! give the same numbers as ripcord's own implementation (`host/ripcord/src/stats/sequential.rs`). The simulations
//! (false alarms below alpha over thousands of seeded null streams) are that module's unit tests.

use crate::support::{repo_root, venv_python};
use ripcord::plugin::stats::change::{Detector, error_limit_detector, error_ratio_detector};
use ripcord::plugin::stats::sequential::{
    PeriodCounts, RATIO_GRID, RateCounts, error_ratio_test, one_sided_beta_mixture, two_sided_beta_mixture,
};
use ripcord::plugin::stats::special::ln_beta_cdf;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

/// The reference numbers for `cases`, or None when the venv is missing and the run does not require it.
fn reference(cases: &Value) -> Option<Value> {
    let python = venv_python("savvi", "the savvi cross-check of the sequential tests")?;
    let script = repo_root().join("scripts/sequential_reference.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(cases.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}")))
}

/// `[baseline requests, baseline errors, candidate requests, candidate errors]` as the tests take them.
fn period_counts(periods: &[[f64; 4]]) -> Vec<PeriodCounts> {
    periods
        .iter()
        .map(|p| PeriodCounts {
            baseline_requests: p[0],
            baseline_errors: p[1],
            candidate_requests: p[2],
            candidate_errors: p[3],
        })
        .collect()
}

fn close(ours: f64, theirs: f64, what: &str) {
    let tolerance = 1e-9 * theirs.abs().max(1.0);
    assert!((ours - theirs).abs() <= tolerance, "{what}: ripcord {ours}, reference {theirs}");
}

#[test]
fn the_sequential_tests_agree_with_savvi_and_scipy() {
    // (hits, misses, k, p0): from no data to strong evidence, small and large counts, priors near 0 and at 1/2.
    let beta = [
        (0.0, 0.0, 100.0, 0.01),
        (3.0, 200.0, 100.0, 0.01),
        (30.0, 570.0, 100.0, 0.01),
        (250.0, 9750.0, 100.0, 0.02),
        (9.0, 1.0, 2.0, 0.5),
        (120.0, 80.0, 2.0, 0.5),
        (40.0, 60.0, 100.0, 0.25),
    ];
    let cdf = [(2.0, 3.0, 0.4), (1.0, 99.0, 0.01), (31.0, 669.0, 0.05), (500.5, 400.25, 0.52), (0.5, 0.5, 0.999)];
    let periods: Vec<[f64; 4]> = vec![
        [540.0, 5.0, 60.0, 3.0],
        [600.0, 6.0, 70.0, 2.0],
        [0.0, 0.0, 50.0, 4.0],
        [450.0, 4.0, 50.0, 0.0],
        [300.0, 3.0, 300.0, 9.0],
        [320.0, 2.0, 280.0, 12.0],
    ];
    let cases = json!({"beta": beta, "cdf": cdf, "ratio": [{"ratio": 2.0, "grid": RATIO_GRID, "periods": periods}]});
    let Some(reference) = reference(&cases) else { return };
    for (i, (hits, misses, k, p0)) in beta.iter().copied().enumerate() {
        let (a, b) = (k * p0, k * (1.0 - p0));
        let two = two_sided_beta_mixture(hits, misses, a, b, p0);
        close(two, reference["two_sided"][i].as_f64().unwrap_or(f64::NAN), &format!("savvi odds, case {i}"));
        let one = one_sided_beta_mixture(hits, misses, a, b, p0);
        close(one, reference["one_sided"][i].as_f64().unwrap_or(f64::NAN), &format!("one-sided, case {i}"));
    }
    for (i, (a, b, x)) in cdf.iter().copied().enumerate() {
        close(ln_beta_cdf(a, b, x), reference["cdf"][i].as_f64().unwrap_or(f64::NAN), &format!("ln I_x, case {i}"));
    }
    let counts = period_counts(&periods);
    let test = error_ratio_test(&counts, 2.0, 0.01).unwrap_or_else(|| panic!("valid input"));
    let expected = &reference["ratio"][0];
    close(test.e_value.ln(), expected["ln_e"].as_f64().unwrap_or(f64::NAN), "error-ratio ln e");
    close(test.max_e_value.ln(), expected["ln_max"].as_f64().unwrap_or(f64::NAN), "error-ratio ln max e");
}

/// The change detectors against their definition computed independently with scipy (the sum over every start of
/// the weighted mixture of binomial likelihood ratios, in O(n²)): a late regression, a regression from the first
/// period, and healthy periods, with the first period's weight on and off.
#[test]
fn the_change_detectors_agree_with_their_definition_computed_by_scipy() {
    // Integer counts (scipy's binomial pmf takes whole numbers); healthy for 8 periods, then the candidate at 10%.
    let paired: Vec<[f64; 4]> = (0..14)
        .map(|i| {
            let candidate_errors = if i < 8 { f64::from(i % 2) } else { 6.0 + f64::from(i % 3) };
            [540.0 + f64::from(i), 3.0 + f64::from(i % 3), 60.0, candidate_errors]
        })
        .chain([[0.0, 0.0, 60.0, 2.0], [500.0, 0.0, 50.0, 0.0]])
        .collect();
    let rates: Vec<[f64; 2]> =
        (0..12).map(|i| [60.0 + f64::from(i), if i < 6 { 1.0 } else { 9.0 + f64::from(i % 2) }]).collect();
    let settings = [(0.01, 1440, true), (0.01, 1440, false), (0.05, 30, true)];
    let mut cases = Vec::new();
    for (alpha, horizon, first) in settings {
        let common = json!({"alpha": alpha, "horizon": horizon, "from_first_traffic": first, "grid": RATIO_GRID});
        let mut ratio = common.clone();
        ratio["kind"] = json!("ratio");
        ratio["ratio"] = json!(2.0);
        ratio["periods"] = json!(paired);
        let mut limit = common;
        limit["kind"] = json!("limit");
        limit["limit"] = json!(0.05);
        limit["periods"] = json!(rates);
        cases.extend([ratio, limit]);
    }
    let Some(reference) = reference(&json!({"beta": [], "cdf": [], "ratio": [], "detectors": cases})) else { return };
    let counts = period_counts(&paired);
    let trials: Vec<RateCounts> = rates.iter().map(|r| RateCounts { requests: r[0], errors: r[1] }).collect();
    for (i, (alpha, horizon, from_first_traffic)) in settings.into_iter().enumerate() {
        let detector = Detector { alpha, horizon, from_first_traffic };
        let found = [
            error_ratio_detector(&counts, 2.0, detector).unwrap_or_else(|| panic!("valid input")),
            error_limit_detector(&trials, 0.05, detector).unwrap_or_else(|| panic!("valid input")),
        ];
        for (j, (detection, kind)) in found.iter().zip(["ratio", "limit"]).enumerate() {
            let expected = &reference["detectors"][2 * i + j];
            let what = format!("{kind} detector, alpha {alpha}, horizon {horizon}, first {from_first_traffic}");
            close(detection.statistic.ln(), expected["ln_last"].as_f64().unwrap_or(f64::NAN), &format!("{what}: ln M"));
            close(
                detection.max_statistic.ln(),
                expected["ln_max"].as_f64().unwrap_or(f64::NAN),
                &format!("{what}: ln max M"),
            );
        }
    }
}

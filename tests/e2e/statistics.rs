//! The sequential tests against an independent reference: `savvi` (Lindon & Malek's Dirichlet-multinomial
//! mixture) and scipy, run from the project's test venv by `scripts/sequential_reference.py` on fixed inputs, must
//! give the same numbers as ripcord's own implementation (`host/ripcord/src/stats/sequential.rs`). The simulations
//! (false alarms below alpha over thousands of seeded null streams) are that module's unit tests.

use crate::support::{repo_root, venv_python};
use ripcord::stats::sequential::{
    PeriodCounts, RATIO_GRID, error_ratio_test, one_sided_beta_mixture, two_sided_beta_mixture,
};
use ripcord::stats::special::ln_beta_cdf;
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
    let counts: Vec<PeriodCounts> = periods
        .iter()
        .map(|p| PeriodCounts {
            baseline_requests: p[0],
            baseline_errors: p[1],
            candidate_requests: p[2],
            candidate_errors: p[3],
        })
        .collect();
    let test = error_ratio_test(&counts, 2.0, 0.01).unwrap_or_else(|| panic!("valid input"));
    let expected = &reference["ratio"][0];
    close(test.e_value.ln(), expected["ln_e"].as_f64().unwrap_or(f64::NAN), "error-ratio ln e");
    close(test.max_e_value.ln(), expected["ln_max"].as_f64().unwrap_or(f64::NAN), "error-ratio ln max e");
}

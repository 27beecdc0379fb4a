//! safety-errors, in Rust on the raw WIT bindings: rollback when the candidate's error rate or safety-filter hits
//! per request exceed their limits in `windows` consecutive windows, each with at least `min_requests` requests.
//!
//! The same policy exists in JavaScript, Python and C next to this folder; the tests check that all four agree.
//! (Policies inside the ripcord repository can use the `ripcord-policy` SDK instead, see plugins/sdk.)

wit_bindgen::generate!({ path: "../../../../wit/since_v0.1.0", world: "policy" });

use exports::ripcord::policy::evaluator::Guest;
use ripcord::policy::types::{Check, Evaluation, MetricSeries, ParamSpec, ParamValue, PolicyInfo, Report, Verdict};

const METRICS: [&str; 3] = ["requests", "errors", "safety_hits"];

fn parameters() -> Vec<ParamSpec> {
    let spec = |name: &str, description: &str, default| ParamSpec {
        name: name.into(),
        description: description.into(),
        default,
    };
    vec![
        spec("max_error_rate", "Highest tolerated error rate (0.02 = 2%).", ParamValue::Float(0.02)),
        spec(
            "max_safety_rate",
            "Highest tolerated safety-filter hits per request (0.001 = 1 in 1000).",
            ParamValue::Float(0.001),
        ),
        spec("windows", "Consecutive bad windows (the latest ones) that mean rollback.", ParamValue::Integer(2)),
        spec("min_requests", "Requests a window needs to count.", ParamValue::Integer(100)),
    ]
}

/// The guard's value of a number parameter, else the declared default.
fn param(evaluation: &Evaluation, name: &str) -> Result<f64, String> {
    let declared = parameters();
    if let Some(unknown) = evaluation.params.iter().find(|p| !declared.iter().any(|d| d.name == p.name)) {
        return Err(format!("unknown parameter `{}`", unknown.name));
    }
    let given = evaluation.params.iter().find(|p| p.name == name).map(|p| p.value.clone());
    match given.or_else(|| declared.into_iter().find(|d| d.name == name).map(|d| d.default)) {
        Some(ParamValue::Float(v)) => Ok(v),
        Some(ParamValue::Integer(v)) => Ok(v as f64),
        _ => Err(format!("parameter `{name}` must be a number")),
    }
}

fn window_sum(series: &MetricSeries, window: u32) -> f64 {
    let mut total = 0.0;
    for point in series.points.iter().filter(|p| p.window == window) {
        total += point.value;
    }
    total
}

struct SafetyErrors;

impl Guest for SafetyErrors {
    fn describe() -> PolicyInfo {
        PolicyInfo {
            name: "safety-errors".into(),
            version: "0.1.0".into(),
            description: "Rollback when the candidate's error rate or safety-filter hits per request exceed their \
                          limits in `windows` consecutive windows, each with at least `min_requests` requests."
                .into(),
            metrics: METRICS.iter().map(|m| m.to_string()).collect(),
            parameters: parameters(),
        }
    }

    fn evaluate(evaluation: Evaluation) -> Result<Report, String> {
        let (max_error, max_safety) = (param(&evaluation, "max_error_rate")?, param(&evaluation, "max_safety_rate")?);
        let needed = (param(&evaluation, "windows")? as i64).max(1) as usize;
        let min_requests = param(&evaluation, "min_requests")? as i64;
        let candidate = &evaluation.candidate;
        let series = |name: &str| candidate.metrics.iter().find(|m| m.name == name);
        let missing: Vec<&str> = METRICS.into_iter().filter(|m| series(m).is_none()).collect();
        let report = |verdict, reason: String, checks| Ok(Report { verdict, reason, checks });
        let (Some(requests), Some(errors), Some(safety)) =
            (series("requests"), series("errors"), series("safety_hits"))
        else {
            return report(
                Verdict::Inconclusive,
                format!("revision {} did not report {}", candidate.id, missing.join(" and ")),
                vec![],
            );
        };
        let count = evaluation.windows.len();
        if count < needed {
            return report(Verdict::Inconclusive, format!("{count} windows evaluated, {needed} needed"), vec![]);
        }
        let check = |name: String, observed, threshold, passed| Check { name, observed, threshold, passed };
        let (mut checks, mut bad, mut thin) = (Vec::new(), 0, 0);
        for w in count - needed..count {
            let served = window_sum(requests, w as u32);
            if served < min_requests as f64 {
                thin += 1;
                checks.push(check(format!("requests[w{w}]"), served, min_requests as f64, false));
                continue;
            }
            let error_rate = window_sum(errors, w as u32) / served;
            let safety_rate = window_sum(safety, w as u32) / served;
            let (errors_ok, safety_ok) = (error_rate <= max_error, safety_rate <= max_safety);
            checks.push(check(format!("error_rate[w{w}]"), error_rate, max_error, errors_ok));
            checks.push(check(format!("safety_rate[w{w}]"), safety_rate, max_safety, safety_ok));
            if !(errors_ok && safety_ok) {
                bad += 1;
            }
        }
        let (verdict, reason) = if thin > 0 {
            (
                Verdict::Inconclusive,
                format!("{thin} of the last {needed} windows had fewer than {min_requests} requests"),
            )
        } else if bad == needed {
            (Verdict::Rollback, format!("error or safety rate above limit in the last {needed} consecutive windows"))
        } else if bad == 0 {
            (Verdict::Promote, format!("error and safety rates within limits in the last {needed} windows"))
        } else {
            (Verdict::Hold, format!("error or safety rate above limit in {bad} of the last {needed} windows"))
        };
        report(verdict, reason, checks)
    }
}

export!(SafetyErrors);

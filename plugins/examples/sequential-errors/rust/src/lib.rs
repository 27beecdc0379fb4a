//! sequential-errors, in Rust on the raw WIT bindings (contract 0.2.0): rollback when the candidate's error rate is
//! above `max_rate` and above `ratio` x the baseline's, each by the host's anytime-valid sequential tests at
//! `alpha` — the same rule as `builtin:error-rate`, minute by minute, so looking every minute does not inflate
//! false rollbacks. The same policy is in JavaScript, Python and C next to this folder; the tests check that
//! all four agree.

wit_bindgen::generate!({ path: "../../../../wit/since_v0.2.0", world: "policy" });

use exports::ripcord::policy::evaluator::Guest;
use ripcord::policy::stats::{self, PeriodCounts, RateCounts};
use ripcord::policy::types::{Check, Evaluation, ParamSpec, ParamValue, PolicyInfo, Report, Revision, Verdict};
use std::collections::BTreeMap;

fn parameters() -> Vec<ParamSpec> {
    let spec = |name: &str, description: &str, default| ParamSpec {
        name: name.into(),
        description: description.into(),
        default: ParamValue::Float(default),
    };
    vec![
        spec("max_rate", "Error rate always tolerated (0.01 = 1%).", 0.01),
        spec("ratio", "Tolerated multiple of the baseline's error rate.", 2.0),
        spec("alpha", "Highest tolerated chance of rolling back a healthy candidate.", 0.01),
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

/// (requests, errors) by period start, periods with requests only.
fn by_period(revision: &Revision) -> BTreeMap<i64, (f64, f64)> {
    let series = |name: &str| revision.metrics.iter().find(|m| m.name == name);
    let mut periods: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for point in series("requests").map_or(&[][..], |s| &s.points) {
        periods.entry(point.at).or_default().0 += point.value;
    }
    for point in series("errors").map_or(&[][..], |s| &s.points) {
        if let Some(period) = periods.get_mut(&point.at) {
            period.1 += point.value;
        }
    }
    periods.retain(|_, (requests, _)| *requests > 0.0);
    periods
}

struct SequentialErrors;

impl Guest for SequentialErrors {
    fn describe() -> PolicyInfo {
        PolicyInfo {
            name: "sequential-errors".into(),
            version: "0.2.0".into(),
            description: "Rollback when the candidate's error rate is above max_rate and ratio x the baseline's, by \
                          the host's anytime-valid sequential tests at alpha."
                .into(),
            metrics: vec!["requests".into(), "errors".into()],
            parameters: parameters(),
        }
    }

    fn evaluate(evaluation: Evaluation) -> Result<Report, String> {
        let (max_rate, ratio) = (param(&evaluation, "max_rate")?, param(&evaluation, "ratio")?);
        let alpha = param(&evaluation, "alpha")?;
        let report = |verdict, reason: String, checks| Ok(Report { verdict, reason, checks, findings: vec![] });
        let candidate = by_period(&evaluation.candidate);
        if candidate.is_empty() {
            let reason = format!("candidate {} served no requests", evaluation.candidate.id);
            return report(Verdict::Inconclusive, reason, vec![]);
        }
        let rates: Vec<RateCounts> =
            candidate.values().map(|&(requests, errors)| RateCounts { requests, errors }).collect();
        let limit = stats::error_limit_test(&rates, max_rate.max(1e-6), alpha).ok_or("invalid error counts")?;
        let check =
            |name: &str, observed, passed| Check { name: name.into(), observed, threshold: 1.0 / alpha, passed };
        let mut checks = vec![check("evidence_above_max_rate", limit.max_e_value, !limit.reject)];
        let mut worse = limit.reject;
        if let Some(baseline) = &evaluation.baseline {
            let baseline = by_period(baseline);
            let paired: Vec<PeriodCounts> = candidate
                .iter()
                .filter_map(|(at, &(candidate_requests, candidate_errors))| {
                    let &(baseline_requests, baseline_errors) = baseline.get(at)?;
                    Some(PeriodCounts { baseline_requests, baseline_errors, candidate_requests, candidate_errors })
                })
                .collect();
            let test = stats::error_ratio_test(&paired, ratio, alpha).ok_or("invalid error counts")?;
            checks.push(check("evidence_above_ratio_x_baseline", test.max_e_value, !test.reject));
            worse = worse && test.reject;
        }
        let (requests, errors) = candidate.values().fold((0.0, 0.0), |(r, e), &(pr, pe)| (r + pr, e + pe));
        let rate = errors / requests;
        if worse {
            let reason = format!(
                "error rate {:.2}% above the tolerated rate (anytime-valid p = {:.2e})",
                rate * 100.0,
                limit.p_value
            );
            return report(Verdict::Rollback, reason, checks);
        }
        let verdict = if rate <= max_rate { Verdict::Promote } else { Verdict::Hold };
        report(verdict, format!("error rate {:.2}%, not significantly above the tolerated rate", rate * 100.0), checks)
    }
}

export!(SequentialErrors);

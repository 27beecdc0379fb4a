//! slow-requests, in Rust on the raw WIT bindings (contract 0.3.0): rollback when more than 5% of the candidate's
//! requests have become slower than `factor` x the known good's p95 (that is, its p95 is above it) and, during a
//! split, more than `ratio` x the baseline's share are — by the host's change detectors at `alpha` per day, so a
//! slowdown that starts an hour into the release is weighed against itself. The policy asks the host to count the
//! requests slower than that threshold (`latency-thresholds`); they arrive as the `slow_requests_<T>ms` series.
//! The same policy is in JavaScript, Python and C next to this folder; the tests check that all four agree.

wit_bindgen::generate!({ path: "../../../../wit/since_v0.3.0", world: "policy" });

use exports::ripcord::policy::evaluator::Guest;
use ripcord::policy::stats::{self, Detector, PeriodCounts, RateCounts};
use ripcord::policy::types::{
    Check, Evaluation, History, Param, ParamSpec, ParamValue, PolicyInfo, Report, Revision, ThresholdRequest, Verdict,
};
use std::collections::BTreeMap;

/// The share of requests slower than a p95: what "the p95 is above the threshold" means per request.
const TAIL: f64 = 0.05;

fn parameters() -> Vec<ParamSpec> {
    let spec = |name: &str, description: &str, default| ParamSpec {
        name: name.into(),
        description: description.into(),
        default: ParamValue::Float(default),
    };
    vec![
        spec("factor", "Tolerated ratio of the candidate's p95 to the known good's.", 1.3),
        spec("ratio", "During a split: tolerated multiple of the baseline's share of slow requests.", 2.0),
        spec("alpha", "Highest tolerated chance of rolling back a healthy candidate in a day.", 0.01),
    ]
}

/// The guard's value of a number parameter, else the declared default.
fn param(params: &[Param], name: &str) -> Result<f64, String> {
    let declared = parameters();
    if let Some(unknown) = params.iter().find(|p| !declared.iter().any(|d| d.name == p.name)) {
        return Err(format!("unknown parameter `{}`", unknown.name));
    }
    let given = params.iter().find(|p| p.name == name).map(|p| p.value.clone());
    match given.or_else(|| declared.into_iter().find(|d| d.name == name).map(|d| d.default)) {
        Some(ParamValue::Float(v)) => Ok(v),
        Some(ParamValue::Integer(v)) => Ok(v as f64),
        _ => Err(format!("parameter `{name}` must be a number")),
    }
}

/// The threshold: `factor` x the median of the known good's per-minute p95, rounded to whole milliseconds.
fn threshold(known_good: Option<&History>, factor: f64) -> Option<u32> {
    let p95 = known_good?.revision.metrics.iter().find(|m| m.name == "latency_p95")?;
    let values: Vec<f64> = p95.points.iter().map(|p| p.value).collect();
    let level = stats::percentile(&values, 50.0)?;
    let rounded = (factor * level + 0.5).floor();
    (rounded >= 1.0).then_some(rounded as u32)
}

/// (requests, slow requests) by period start, periods with requests only.
fn by_period(revision: &Revision, slow: &str) -> BTreeMap<i64, (f64, f64)> {
    let series = |name: &str| revision.metrics.iter().find(|m| m.name == name);
    let mut periods: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for point in series("requests").map_or(&[][..], |s| &s.points) {
        periods.entry(point.at).or_default().0 += point.value;
    }
    for point in series(slow).map_or(&[][..], |s| &s.points) {
        if let Some(period) = periods.get_mut(&point.at) {
            period.1 += point.value;
        }
    }
    periods.retain(|_, (requests, _)| *requests > 0.0);
    periods
}

struct SlowRequests;

impl Guest for SlowRequests {
    fn describe() -> PolicyInfo {
        PolicyInfo {
            name: "slow-requests".into(),
            version: "0.3.0".into(),
            description: "Rollback when more than 5% of the candidate's requests have become slower than factor x \
                          the known good's p95, and ratio x the baseline's share, by the host's change detectors."
                .into(),
            metrics: vec!["requests".into(), "latency_p95".into()],
            parameters: parameters(),
        }
    }

    fn latency_thresholds(request: ThresholdRequest) -> Result<Vec<u32>, String> {
        let factor = param(&request.params, "factor")?;
        Ok(threshold(request.known_good.as_ref(), factor).into_iter().collect())
    }

    fn evaluate(evaluation: Evaluation) -> Result<Report, String> {
        let factor = param(&evaluation.params, "factor")?;
        let (ratio, alpha) = (param(&evaluation.params, "ratio")?, param(&evaluation.params, "alpha")?);
        let report = |verdict, reason: String, checks| Ok(Report { verdict, reason, checks, findings: vec![] });
        let Some(t) = threshold(evaluation.known_good.as_ref(), factor) else {
            return report(Verdict::Inconclusive, "no known good's p95 to set a threshold from".into(), vec![]);
        };
        let slow = format!("slow_requests_{t}ms");
        let candidate = by_period(&evaluation.candidate, &slow);
        if candidate.is_empty() || !evaluation.candidate.metrics.iter().any(|m| m.name == slow) {
            return report(Verdict::Inconclusive, format!("candidate did not report {slow}"), vec![]);
        }
        let from_first_traffic = evaluation
            .deployed_at
            .is_some_and(|at| evaluation.windows.first().is_some_and(|w| w.start <= at));
        let detector = Detector { alpha, horizon: 1440, from_first_traffic };
        let rates: Vec<RateCounts> =
            candidate.values().map(|&(requests, errors)| RateCounts { requests, errors }).collect();
        let above = stats::error_limit_detector(&rates, TAIL, detector).ok_or("invalid slow-request counts")?;
        let check = |name: &str, observed, passed| Check { name: name.into(), observed, threshold: 1.0, passed };
        let mut checks = vec![check("evidence_slower", above.max_statistic, !above.alarm)];
        let mut worse = above.alarm;
        if let Some(baseline) = &evaluation.baseline {
            let baseline = by_period(baseline, &slow);
            let paired: Vec<PeriodCounts> = candidate
                .iter()
                .filter_map(|(at, &(candidate_requests, candidate_errors))| {
                    let &(baseline_requests, baseline_errors) = baseline.get(at)?;
                    Some(PeriodCounts { baseline_requests, baseline_errors, candidate_requests, candidate_errors })
                })
                .collect();
            let against = stats::error_ratio_detector(&paired, ratio, detector).ok_or("invalid slow-request counts")?;
            checks.push(check("evidence_slower_than_baseline", against.max_statistic, !against.alarm));
            worse = worse && against.alarm;
        }
        let (requests, slower) = candidate.values().fold((0.0, 0.0), |(r, s), &(pr, ps)| (r + pr, s + ps));
        let share = slower / requests;
        if worse {
            let reason = format!("{:.1}% of requests slower than {t} ms: a slowdown detected", share * 100.0);
            return report(Verdict::Rollback, reason, checks);
        }
        let verdict = if share <= TAIL { Verdict::Promote } else { Verdict::Hold };
        report(verdict, format!("{:.1}% of requests slower than {t} ms", share * 100.0), checks)
    }
}

export!(SlowRequests);

//! `builtin:latency`: rollback when the candidate's pXX latency exceeds `factor` × the baseline's, minute after
//! minute, beyond chance: a sequential sign test (host import, contract 0.2.0) on the per-minute percentiles,
//! anytime-valid at `alpha`, against the concurrent baseline during a split or the known good's historical level
//! after a full promotion — and still exceeding in the latest window. A baseline as slow as the candidate (against
//! the known good's history) is a shared degradation: hold.

use ripcord_policy::periods;
use ripcord_policy::prelude::*;
use std::collections::BTreeMap;

struct Latency;

impl Policy for Latency {
    fn describe() -> PolicyInfo {
        PolicyInfo::new(
            "latency",
            env!("CARGO_PKG_VERSION"),
            "Rollback when the candidate's latency percentile exceeds `factor` x the baseline's in more minutes than \
             chance allows (an anytime-valid sequential sign test at `alpha`, at least `min_samples` minutes \
             compared) and in the latest window; promote when the last `windows` windows are within it.",
        )
        .metrics(&["latency_p50", "latency_p90", "latency_p95", "latency_p99", "requests"])
        .param(ParamSpec::integer("percentile", 95, "Which latency percentile to compare: 50, 90, 95 or 99."))
        .param(ParamSpec::float("factor", 1.3, "Tolerated ratio of candidate to baseline latency."))
        .param(ParamSpec::integer("windows", 2, "Latest windows that must be within the factor to promote."))
        .param(ParamSpec::integer("min_requests", 50, "Candidate requests a window needs, when requests are reported."))
        .param(ParamSpec::float("alpha", 0.01, "Highest tolerated chance of rolling back a healthy candidate."))
        .param(ParamSpec::integer("min_samples", 5, "Minutes compared before a rollback is considered."))
    }

    fn evaluate(e: Evaluation) -> Result<Report, String> {
        let p = Params::new(&e, &Self::describe())?;
        let metric = match p.count("percentile")? {
            pct @ (50 | 90 | 95 | 99) => format!("latency_p{pct}"),
            other => return Err(format!("parameter `percentile` must be 50, 90, 95 or 99, got {other}")),
        };
        let (factor, alpha) =
            (p.float_in("factor", 1.0..=1e6, "a factor")?, p.float_in("alpha", 1e-9..=0.5, "a level")?);
        let (needed, min_requests) = (p.count_at_least("windows", 1)? as usize, p.count("min_requests")? as f64);
        let min_samples = p.count_at_least("min_samples", 1)? as f64;
        let Some(cand) = e.candidate.series(&metric) else {
            return Ok(Report::inconclusive(format!("candidate {} did not report {metric}", e.candidate.id)));
        };
        let history = e.known_good.as_ref().and_then(|h| median(&periods::values(&h.revision, &metric)));
        let candidate = periods::values(&e.candidate, &metric);
        let (compared, reference, source) = match &e.baseline {
            Some(baseline) if baseline.series(&metric).is_some_and(|s| !s.points.is_empty()) => {
                let base = periods::values(baseline, &metric);
                let pairs: Vec<(f64, f64)> =
                    candidate.iter().filter_map(|(at, c)| Some((*c, *base.get(at)?))).collect();
                (pairs.iter().map(|(c, _)| *c).collect::<Vec<_>>(), pairs.iter().map(|(_, b)| *b).collect(), "baseline")
            }
            _ => match history {
                Some(level) => (candidate.values().copied().collect(), vec![level], "known good's history"),
                None => return Ok(Report::inconclusive(format!("no baseline {metric} to compare with"))),
            },
        };
        let test =
            stats::exceedance_test(&compared, &reference, factor, alpha).ok_or("latencies are not comparable")?;
        let reference_level = median_of(&reference).unwrap_or(f64::NAN);
        let mut checks = Checks::new();
        checks.record(format!("{metric}_exceeding_share"), test.estimate, 0.5, !test.reject);
        checks.record("evidence_slower", test.max_e_value, 1.0 / alpha, !test.reject);
        let latest = e.last_windows(needed);
        let last_window = latest.clone().last();
        let now = last_window.and_then(|w| cand.aggregate(w));
        let slow_now = now.is_some_and(|v| v > factor * reference_level);
        if let Some(v) = now {
            checks.at_most(format!("{metric}[latest]"), v, factor * reference_level);
        }
        if test.reject && test.observations >= min_samples && slow_now {
            let reason = format!(
                "{metric} {:.0} ms vs the {source}'s {:.0} ms: above {factor}x in {:.0}% of {} minutes (anytime-valid p = {:.2e})",
                now.unwrap_or(f64::NAN),
                reference_level,
                test.estimate * 100.0,
                test.observations,
                test.p_value
            );
            return Ok(Report::rollback(reason).with(checks));
        }
        if let (Some(baseline), Some(level)) = (&e.baseline, history)
            && let Some(shared) = shared_degradation(baseline, &metric, level, factor, alpha, &candidate)
        {
            return Ok(Report::hold(shared).with(checks).finding(Finding::SharedDegradation));
        }
        if latest.len() < needed {
            return Ok(
                Report::inconclusive(format!("{} windows evaluated, {needed} needed", latest.len())).with(checks)
            );
        }
        let requests = e.candidate.series("requests");
        let (mut thin, mut slow) = (0, 0);
        for w in latest {
            let served = requests.map(|r| r.sum(w).unwrap_or(0.0));
            match cand.aggregate(w) {
                Some(_) if served.is_some_and(|n| n < min_requests) => thin += 1,
                None => thin += 1,
                Some(v) if v > factor * reference_level => slow += 1,
                Some(_) => {}
            }
        }
        let report = if thin > 0 {
            Report::inconclusive(format!("{thin} of the last {needed} windows lack latency data or requests"))
        } else if slow > 0 {
            Report::hold(format!(
                "{metric} above {factor}x of the {source} in {slow} of the last {needed} windows, not yet significant (p = {:.2})",
                test.p_value
            ))
        } else {
            Report::promote(format!("{metric} within {factor}x of the {source} ({reference_level:.0} ms)"))
        };
        Ok(report.with(checks))
    }
}

/// A hold reason when the concurrent baseline is itself slower than the known good's history by `factor`
/// (significantly) while the candidate is not slower than the baseline: an outage they share.
fn shared_degradation(
    baseline: &Revision,
    metric: &str,
    history: f64,
    factor: f64,
    alpha: f64,
    candidate: &BTreeMap<i64, f64>,
) -> Option<String> {
    let base: Vec<f64> = periods::values(baseline, metric).into_values().collect();
    let degraded = stats::exceedance_test(&base, &[history], factor, alpha)?.reject;
    let cand: Vec<f64> = candidate.values().copied().collect();
    let candidate_too = stats::exceedance_test(&cand, &[history], factor, alpha)?.reject;
    (degraded && candidate_too).then(|| {
        format!(
            "shared degradation: the baseline's {metric} rose too ({:.0} ms since the candidate started, {history:.0} ms before it); not the candidate's doing",
            median_of(&base).unwrap_or(f64::NAN)
        )
    })
}

fn median(values: &BTreeMap<i64, f64>) -> Option<f64> {
    median_of(&values.values().copied().collect::<Vec<_>>())
}

fn median_of(values: &[f64]) -> Option<f64> {
    if values.is_empty() { None } else { stats::percentile(values, 50.0) }
}

ripcord_policy::export_policy!(Latency);

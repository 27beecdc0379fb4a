//! `builtin:latency`: rollback when the candidate's pXX latency exceeds the baseline's by a factor in N
//! consecutive windows, confirmed by a one-sided Mann-Whitney U test when there are enough points.

use ripcord_policy::prelude::*;
use ripcord_policy::stats::Alternative;

struct Latency;

impl Policy for Latency {
    fn describe() -> PolicyInfo {
        PolicyInfo::new(
            "latency",
            env!("CARGO_PKG_VERSION"),
            "Rollback when the candidate's latency percentile exceeds the baseline's times `factor` in `windows` \
             consecutive windows and, when both sides have `min_samples` points, a one-sided Mann-Whitney U test \
             finds the candidate slower at significance `alpha`.",
        )
        .metrics(&["latency_p50", "latency_p90", "latency_p95", "latency_p99", "requests"])
        .param(ParamSpec::integer("percentile", 95, "Which latency percentile to compare: 50, 90, 95 or 99."))
        .param(ParamSpec::float("factor", 1.3, "Tolerated ratio of candidate to baseline latency."))
        .param(ParamSpec::integer("windows", 2, "Consecutive slow windows (the latest ones) that mean rollback."))
        .param(ParamSpec::integer("min_requests", 50, "Candidate requests a window needs, when requests are reported."))
        .param(ParamSpec::float("alpha", 0.05, "Significance level of the Mann-Whitney U test."))
        .param(ParamSpec::integer(
            "min_samples",
            8,
            "Points per revision needed to run the Mann-Whitney U test.",
        ))
    }

    fn evaluate(e: Evaluation) -> Result<Report, String> {
        let p = Params::new(&e, &Self::describe())?;
        let metric = match p.count("percentile")? {
            pct @ (50 | 90 | 95 | 99) => format!("latency_p{pct}"),
            other => return Err(format!("parameter `percentile` must be 50, 90, 95 or 99, got {other}")),
        };
        let (factor, alpha) = (p.float_in("factor", 1.0..=1e6, "a factor")?, p.float_in("alpha", 0.0..=0.5, "a level")?);
        let (needed, min_requests) = (p.count_at_least("windows", 1)? as usize, p.count("min_requests")? as f64);
        let min_samples = p.count_at_least("min_samples", 2)?;
        let Some(cand) = e.candidate.series(&metric) else {
            return Ok(Report::inconclusive(format!("candidate {} did not report {metric}", e.candidate.id)));
        };
        let Some(base) = e.baseline.as_ref().and_then(|b| b.series(&metric)) else {
            return Ok(Report::inconclusive(format!("no baseline {metric} to compare with")));
        };
        if e.windows.len() < needed {
            return Ok(Report::inconclusive(format!("{} windows evaluated, {needed} needed", e.windows.len())));
        }
        let requests = e.candidate.series("requests");
        let mut checks = Checks::new();
        let (mut slow, mut thin) = (0, 0);
        for w in e.last_windows(needed) {
            let served = requests.map(|r| r.sum(w).unwrap_or(0.0));
            let (Some(c), Some(b)) = (cand.aggregate(w), base.aggregate(w)) else {
                thin += 1;
                continue;
            };
            if served.is_some_and(|n| n < min_requests) {
                thin += 1;
                checks.at_least(format!("requests[w{w}]"), served.unwrap_or(0.0), min_requests);
                continue;
            }
            if !checks.at_most(format!("{metric}[w{w}]"), c, b * factor) {
                slow += 1;
            }
        }
        if thin > 0 {
            let reason = format!("{thin} of the last {needed} windows lack latency data or requests");
            return Ok(Report::inconclusive(reason).with(checks));
        }
        if slow == 0 {
            return Ok(Report::promote(format!("{metric} within {factor}x of the baseline")).with(checks));
        }
        if slow < needed {
            return Ok(Report::hold(format!("{metric} above {factor}x of the baseline in {slow} of {needed} windows"))
                .with(checks));
        }
        let span = e.last_windows(needed);
        let (c, b): (Vec<f64>, Vec<f64>) =
            (span.clone().flat_map(|w| cand.values(w)).collect(), span.flat_map(|w| base.values(w)).collect());
        if stats::sample_guard(&[c.len() as u64, b.len() as u64], min_samples).is_some() {
            let reason = format!("{metric} above {factor}x of the baseline in {needed} consecutive windows");
            return Ok(Report::rollback(reason).with(checks));
        }
        let test = stats::mann_whitney_u(&b, &c, Alternative::Greater).ok_or("latency samples are not finite")?;
        let significant = !checks.at_least("mann_whitney_p", test.p_value, alpha);
        let reason = format!(
            "{metric} above {factor}x of the baseline in {needed} consecutive windows (shift {:+.1} ms, p = {:.4})",
            test.shift, test.p_value
        );
        Ok(if significant { Report::rollback(reason) } else { Report::hold(format!("{reason}; not significant")) }
            .with(checks))
    }
}

ripcord_policy::export_policy!(Latency);

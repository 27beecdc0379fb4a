//! `builtin:error-rate`: rollback when the candidate's error rate exceeds max(absolute limit, baseline x ratio) in
//! N consecutive windows, each with at least `min_requests`; inconclusive when too little traffic reached it.

use ripcord_policy::prelude::*;

struct ErrorRate;

impl Policy for ErrorRate {
    fn describe() -> PolicyInfo {
        PolicyInfo::new(
            "error-rate",
            env!("CARGO_PKG_VERSION"),
            "Rollback when the candidate's error rate exceeds max(max_rate, baseline rate x ratio) in `windows` \
             consecutive windows, each with at least `min_requests` candidate requests.",
        )
        .metrics(&["requests", "errors"])
        .param(ParamSpec::float("max_rate", 0.01, "Error rate always tolerated (0.01 = 1%)."))
        .param(ParamSpec::float("ratio", 2.0, "Tolerated multiple of the baseline's error rate in the same window."))
        .param(ParamSpec::integer("min_requests", 100, "Candidate requests a window needs to count."))
        .param(ParamSpec::integer(
            "windows",
            2,
            "Consecutive bad windows (the latest ones) that mean rollback.",
        ))
    }

    fn evaluate(e: Evaluation) -> Result<Report, String> {
        let p = Params::new(&e, &Self::describe())?;
        let (max_rate, ratio) = (p.float_in("max_rate", 0.0..=1.0, "a rate")?, p.float_in("ratio", 1.0..=1e6, "a ratio")?);
        let (min_requests, needed) = (p.count("min_requests")? as f64, p.count_at_least("windows", 1)? as usize);
        let [requests, errors] = match e.candidate.require(["requests", "errors"]) {
            Ok(series) => series,
            Err(reason) => return Ok(Report::inconclusive(reason)),
        };
        let baseline = e.baseline.as_ref().and_then(|b| Some((b.series("requests")?, b.series("errors")?)));
        if e.windows.len() < needed {
            return Ok(Report::inconclusive(format!("{} windows evaluated, {needed} needed", e.windows.len())));
        }
        let mut checks = Checks::new();
        let (mut bad, mut thin) = (0, 0);
        for w in e.last_windows(needed) {
            let served = requests.sum(w).unwrap_or(0.0);
            if served < min_requests {
                thin += 1;
                checks.at_least(format!("requests[w{w}]"), served, min_requests);
                continue;
            }
            let rate = errors.sum(w).unwrap_or(0.0) / served;
            let base_rate = baseline.and_then(|(r, e)| {
                let served = r.sum(w).filter(|n| *n >= min_requests)?;
                Some(e.sum(w).unwrap_or(0.0) / served)
            });
            let threshold = base_rate.map_or(max_rate, |b| max_rate.max(b * ratio));
            if !checks.at_most(format!("error_rate[w{w}]"), rate, threshold) {
                bad += 1;
            }
        }
        let report = if thin > 0 {
            Report::inconclusive(format!("{thin} of the last {needed} windows had fewer than {min_requests} requests"))
        } else if bad == needed {
            Report::rollback(format!("error rate above threshold in the last {needed} consecutive windows"))
        } else if bad == 0 {
            Report::promote(format!("error rate within threshold in the last {needed} windows"))
        } else {
            Report::hold(format!("error rate above threshold in {bad} of the last {needed} windows"))
        };
        Ok(report.with(checks))
    }
}

ripcord_policy::export_policy!(ErrorRate);

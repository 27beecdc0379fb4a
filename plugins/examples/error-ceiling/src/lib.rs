//! A complete ripcord policy: rollback when the candidate's error rate in the last window exceeds a ceiling.
use ripcord_policy::prelude::*;

struct ErrorCeiling;

impl Policy for ErrorCeiling {
    fn describe() -> PolicyInfo {
        PolicyInfo::new("error-ceiling", "0.1.0", "Rollback when the last window's error rate exceeds `max_rate`.")
            .metrics(&["requests", "errors"])
            .param(ParamSpec::float("max_rate", 0.05, "Highest tolerated error rate (0.05 = 5%)."))
            .param(ParamSpec::integer("min_requests", 50, "Requests the last window needs to judge."))
    }

    fn evaluate(e: Evaluation) -> Result<Report, String> {
        let p = Params::new(&e, &Self::describe())?;
        let (max_rate, min_requests) = (p.float("max_rate")?, p.count("min_requests")? as f64);
        let [requests, errors] = match e.candidate.require(["requests", "errors"]) {
            Ok(series) => series,
            Err(reason) => return Ok(Report::inconclusive(reason)),
        };
        let last = e.windows.len().checked_sub(1).ok_or("the evaluation has no windows")?;
        let served = requests.sum(last).unwrap_or(0.0);
        let mut checks = Checks::new();
        if !checks.at_least("requests", served, min_requests) {
            return Ok(Report::inconclusive(format!("only {served} requests in the last window")).with(checks));
        }
        let rate = errors.sum(last).unwrap_or(0.0) / served;
        let report = if checks.at_most("error_rate", rate, max_rate) {
            Report::promote(format!("error rate {:.2}% within {:.2}%", rate * 100.0, max_rate * 100.0))
        } else {
            Report::rollback(format!("error rate {:.2}% above {:.2}%", rate * 100.0, max_rate * 100.0))
        };
        Ok(report.with(checks))
    }
}

ripcord_policy::export_policy!(ErrorCeiling);

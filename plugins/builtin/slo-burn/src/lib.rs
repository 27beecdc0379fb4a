//! `builtin:slo-burn`: multi-window burn-rate alert (Google SRE workbook, chapter 5): rollback when the
//! candidate burns its error budget faster than `burn_rate` over both the long and the short window.

use ripcord_policy::prelude::*;
use std::time::Duration;

struct SloBurn;

impl Policy for SloBurn {
    fn describe() -> PolicyInfo {
        PolicyInfo::new(
            "slo-burn",
            env!("CARGO_PKG_VERSION"),
            "Rollback when the candidate's error-budget burn rate exceeds `burn_rate` over both `long_window` and \
             `short_window` (multi-window burn-rate alert against an availability SLO of `slo_target`).",
        )
        .metrics(&["requests", "errors"])
        .param(ParamSpec::float("slo_target", 0.999, "Availability SLO, e.g. 0.999 for 99.9%."))
        .param(ParamSpec::text("long_window", "1h", "Long burn-rate window."))
        .param(ParamSpec::text("short_window", "5m", "Short burn-rate window, which makes the alert reset quickly."))
        .param(ParamSpec::float("burn_rate", 14.4, "Burn rate that pages (14.4 spends 2% of a 30-day budget in 1h)."))
        .param(ParamSpec::integer("min_requests", 100, "Candidate requests the short window needs."))
    }

    fn evaluate(e: Evaluation) -> Result<Report, String> {
        let p = Params::new(&e, &Self::describe())?;
        let (target, limit) = (p.float("slo_target")?, p.float_in("burn_rate", 0.0..=1e6, "a burn rate")?);
        if !(target > 0.0 && target < 1.0) {
            return Err(format!("parameter `slo_target` must be between 0 and 1, got {target}"));
        }
        let (long, short) = (p.positive_duration("long_window")?, p.positive_duration("short_window")?);
        let min_requests = p.count("min_requests")? as f64;
        let [requests, errors] = match e.candidate.require(["requests", "errors"]) {
            Ok(series) => series,
            Err(reason) => return Ok(Report::inconclusive(reason)),
        };
        let since = |d: Duration| e.now - d.as_millis() as i64;
        let total = |d: Duration| -> (f64, f64) {
            (requests.values_since(since(d)).iter().sum(), errors.values_since(since(d)).iter().sum())
        };
        let ((long_req, long_err), (short_req, short_err)) = (total(long), total(short));
        let mut checks = Checks::new();
        if !checks.at_least("requests[short]", short_req, min_requests) {
            return Ok(Report::inconclusive(format!(
                "only {short_req} requests in the last {}, {min_requests} needed",
                ripcord_policy::format_duration(short)
            ))
            .with(checks));
        }
        let mut burning = 0;
        for (window, req, err) in [(long, long_req, long_err), (short, short_req, short_err)] {
            let rate = stats::burn_rate(err, req, target).unwrap_or(0.0);
            if !checks.at_most(format!("burn_rate[{}]", ripcord_policy::format_duration(window)), rate, limit) {
                burning += 1;
            }
        }
        let report = match burning {
            2 => Report::rollback(format!("error budget burning above {limit}x over both windows")),
            0 => Report::promote(format!("error budget burn below {limit}x")),
            _ => Report::hold(format!("error budget burning above {limit}x over one window only")),
        };
        Ok(report.with(checks))
    }
}

ripcord_policy::export_policy!(SloBurn);

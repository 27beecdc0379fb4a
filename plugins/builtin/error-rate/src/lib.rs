//! `builtin:error-rate`: rollback when the candidate's error rate has become, with statistical evidence, above the
//! tolerated rate: `max_rate`, and `ratio` × the baseline's (the concurrent baseline during a split, the known
//! good's history after a full promotion). The change detectors (host imports, contract 0.3.0) ask every minute
//! whether the candidate became worse *since some minute* — from its first traffic, or from a rollout step or the
//! daily peak an hour later — and keep false rollbacks below `alpha` per day of trial however often the guard
//! looks; the thresholds are the practical floor. The last `windows` windows, each with `min_requests`, decide
//! promotion. A baseline as degraded as the candidate (against the known good's history) is a shared degradation:
//! hold.

use ripcord_policy::periods::Periods;
use ripcord_policy::prelude::*;
use ripcord_policy::stats::{Detection, Detector};
use ripcord_policy::{evidence_text, since_text};

struct ErrorRate;

impl Policy for ErrorRate {
    fn describe() -> PolicyInfo {
        PolicyInfo::new(
            "error-rate",
            env!("CARGO_PKG_VERSION"),
            "Rollback when the candidate's error rate has become, by a change detector at `alpha` per day, above \
             max(max_rate, ratio x the baseline's rate) since some minute; promote when the last `windows` windows, \
             each with at least `min_requests` candidate requests, are within it.",
        )
        .metrics(&["requests", "errors"])
        .param(ParamSpec::float("max_rate", 0.01, "Error rate always tolerated (0.01 = 1%)."))
        .param(ParamSpec::float("ratio", 2.0, "Tolerated multiple of the baseline's error rate."))
        .param(ParamSpec::integer("min_requests", 100, "Candidate requests a window needs to count for promotion."))
        .param(ParamSpec::integer("windows", 2, "Latest windows that must be within the threshold to promote."))
        .param(ParamSpec::float(
            "alpha",
            0.01,
            "Highest tolerated chance of rolling back a healthy candidate in its first day (each further day adds at \
             most alpha/2).",
        ))
    }

    fn evaluate(e: Evaluation) -> Result<Report, String> {
        let p = Params::new(&e, &Self::describe())?;
        let (max_rate, ratio) =
            (p.float_in("max_rate", 0.0..=1.0, "a rate")?, p.float_in("ratio", 1.0..=1e6, "a ratio")?);
        let (min_requests, needed) = (p.count("min_requests")? as f64, p.count_at_least("windows", 1)? as usize);
        let alpha = p.float_in("alpha", 1e-9..=0.5, "a probability")?;
        let [requests, errors] = match e.candidate.require(["requests", "errors"]) {
            Ok(series) => series,
            Err(reason) => return Ok(Report::inconclusive(reason)),
        };
        let mut checks = Checks::new();
        let limit = max_rate.max(1e-6);
        let candidate = Periods::of(&e.candidate);
        let detector = e.detector(alpha);
        let above_limit = stats::error_limit_detector(&candidate.rates(), limit, detector)
            .ok_or("invalid request or error counts")?;
        let against_baseline = compare(&e, &candidate, ratio, detector)?;
        let (rate, served) = (candidate.rate(), candidate.totals().0);
        let tolerated = against_baseline.threshold.max(max_rate);
        // NaN (no requests yet) is not above the tolerated rate.
        checks.record("error_rate", rate, tolerated, rate.is_nan() || rate <= tolerated);
        checks.record("evidence_above_max_rate", above_limit.max_statistic, 1.0, !above_limit.alarm);
        if let Some(test) = &against_baseline.test {
            checks.record(against_baseline.evidence_name, test.max_statistic, 1.0, !test.alarm);
        }
        let worse = above_limit.alarm && against_baseline.test.as_ref().is_none_or(|t| t.alarm);
        // Both tolerated rates must be exceeded: the combined evidence is the weaker of the two.
        let evidence =
            above_limit.max_statistic.min(against_baseline.test.as_ref().map_or(f64::INFINITY, |t| t.max_statistic));
        if worse {
            // Where the change began: the later of the two detectors' onsets (both rates are exceeded from there).
            let onset = above_limit.onset.max(against_baseline.onset_in_candidate.unwrap_or(0)) as usize;
            let since = candidate.starts().get(onset).copied().unwrap_or(e.now);
            let recent = Periods::since(&candidate, since).rate();
            let reason = format!(
                "error rate {:.2}% since {} is above {} (change detected at alpha {alpha} per day, evidence {} >= 1)",
                recent * 100.0,
                since_text(since, e.now),
                against_baseline.describe(max_rate),
                evidence_text(evidence),
            );
            return Ok(Report::rollback(reason).with(checks));
        }
        if let Some(shared) = &against_baseline.shared_degradation
            && above_limit.alarm
        {
            return Ok(Report::hold(shared.clone()).with(checks).finding(Finding::SharedDegradation));
        }
        if served <= 0.0 {
            return Ok(Report::inconclusive(format!("candidate {} served no requests", e.candidate.id)).with(checks));
        }
        // Promotion needs the latest windows, each with enough requests, within the threshold.
        let threshold = against_baseline.threshold.max(max_rate);
        let (mut thin, mut bad) = (0, 0);
        let latest = e.last_windows(needed);
        if latest.len() < needed {
            return Ok(
                Report::inconclusive(format!("{} windows evaluated, {needed} needed", latest.len())).with(checks)
            );
        }
        for w in latest {
            let window_served = requests.sum(w).unwrap_or(0.0);
            if window_served < min_requests {
                thin += 1;
                continue;
            }
            if errors.sum(w).unwrap_or(0.0) / window_served > threshold {
                bad += 1;
            }
        }
        let report = if thin > 0 {
            Report::inconclusive(format!(
                "{thin} of the last {needed} windows had fewer than {min_requests} requests (error rate so far {:.2}%)",
                rate * 100.0
            ))
        } else if bad > 0 {
            Report::hold(format!(
                "error rate above {:.2}% in {bad} of the last {needed} windows, not yet significant (evidence {} of 1)",
                threshold * 100.0,
                evidence_text(evidence),
            ))
        } else {
            Report::promote(format!(
                "error rate {:.2}% within {:.2}% in the last {needed} windows",
                rate * 100.0,
                threshold * 100.0
            ))
        };
        Ok(report.with(checks))
    }
}

/// The candidate against its baseline: the detection, the threshold it implies, and a shared degradation if found.
struct Comparison {
    test: Option<Detection>,
    /// The test's onset as an index into the candidate's periods (the paired periods are a subset of them).
    onset_in_candidate: Option<u32>,
    /// ratio × the baseline's rate (0 when there is no baseline).
    threshold: f64,
    evidence_name: &'static str,
    baseline_rate: Option<f64>,
    historical: bool,
    shared_degradation: Option<String>,
}

impl Comparison {
    fn describe(&self, max_rate: f64) -> String {
        match self.baseline_rate {
            Some(base) => format!(
                "{:.2}% and {} the {} baseline's {:.2}%",
                max_rate * 100.0,
                if self.threshold > 0.0 { format!("{:.1}x", self.threshold / base.max(1e-12)) } else { "above".into() },
                if self.historical { "historical" } else { "concurrent" },
                base * 100.0
            ),
            None => format!("{:.2}%", max_rate * 100.0),
        }
    }
}

/// Detects the candidate's change against the concurrent baseline (paired minute by minute), or, after a full
/// promotion, against the known good's historical rate; and the concurrent baseline's against that history (a
/// shared outage).
fn compare(e: &Evaluation, candidate: &Periods, ratio: f64, detector: Detector) -> Result<Comparison, String> {
    let historical_rate = e.known_good.as_ref().map(|h| Periods::of(&h.revision).rate()).filter(|rate| !rate.is_nan());
    let baseline = e.baseline.as_ref().map(Periods::of).filter(|b| !b.is_empty());
    if let Some(baseline) = baseline {
        let rate = Some(baseline.rate());
        let paired = baseline.paired(candidate);
        let test =
            stats::error_ratio_detector(paired.counts(), ratio, detector).ok_or("invalid request or error counts")?;
        let onset_in_candidate = paired.candidate_index(test.onset);
        let shared_degradation = match (rate, historical_rate) {
            (Some(now), Some(before)) if !test.alarm => {
                let limit = (before * ratio).clamp(1e-6, 1.0 - 1e-6);
                let degraded = stats::error_limit_detector(&baseline.rates(), limit, detector).is_some_and(|t| t.alarm);
                degraded.then(|| {
                    format!(
                        "shared degradation: the baseline's error rate rose too ({:.2}% since the candidate started, {:.2}% before it); not the candidate's doing",
                        now * 100.0,
                        before * 100.0
                    )
                })
            }
            _ => None,
        };
        return Ok(Comparison {
            test: Some(test),
            onset_in_candidate,
            threshold: rate.map_or(0.0, |r| r * ratio),
            evidence_name: "evidence_above_ratio_x_baseline",
            baseline_rate: rate,
            historical: false,
            shared_degradation,
        });
    }
    if let Some(before) = historical_rate {
        let limit = (before * ratio).clamp(1e-6, 1.0 - 1e-6);
        let test = stats::error_limit_detector(&candidate.rates(), limit, detector)
            .ok_or("invalid request or error counts")?;
        return Ok(Comparison {
            onset_in_candidate: Some(test.onset),
            test: Some(test),
            threshold: before * ratio,
            evidence_name: "evidence_above_ratio_x_history",
            baseline_rate: Some(before),
            historical: true,
            shared_degradation: None,
        });
    }
    Ok(Comparison {
        test: None,
        onset_in_candidate: None,
        threshold: 0.0,
        evidence_name: "",
        baseline_rate: None,
        historical: false,
        shared_degradation: None,
    })
}

ripcord_policy::export_policy!(ErrorRate);

//! `builtin:latency`: rollback when the candidate's latency percentile has become more than `factor` × the known
//! good's, with statistical evidence from every request. The policy asks the host (contract 0.3.0's
//! `latency-thresholds`) to count, per minute and revision, the requests slower than T = `factor` × the known
//! good's historical pXX; "the candidate's pXX is above T" is then exactly "more than (100 − XX)% of its requests
//! are slower than T", a binomial question the change detectors answer minute by minute — from the first traffic
//! or from a later onset (a rollout step, the daily peak), with false rollbacks below `alpha` per day. During a
//! split the candidate must also have more than `ratio` × the concurrent baseline's share of slow requests, so a
//! slowdown both share (the daily peak) is not the candidate's fault: a baseline as slow is a shared degradation
//! (hold). Without the known good's history (a first release) or the counts, it falls back to a sign detector on
//! the per-minute percentiles. The last `windows` windows decide promotion.

use ripcord_policy::periods::{self, Periods};
use ripcord_policy::prelude::*;
use ripcord_policy::stats::{Detection, RateCounts};
use ripcord_policy::{History, ThresholdRequest, evidence_text, since_text, slow_requests_metric};
use std::collections::BTreeMap;

struct Latency;

/// The parameters both exports read.
struct Settings {
    percentile: i64,
    metric: String,
    factor: f64,
}

impl Settings {
    fn read(p: &Params) -> Result<Self, String> {
        let percentile = p.count("percentile")? as i64;
        if !matches!(percentile, 50 | 90 | 95 | 99) {
            return Err(format!("parameter `percentile` must be 50, 90, 95 or 99, got {percentile}"));
        }
        Ok(Self {
            percentile,
            metric: format!("latency_p{percentile}"),
            factor: p.float_in("factor", 1.0..=1e6, "a factor")?,
        })
    }

    /// The share of requests slower than the percentile (0.05 for p95).
    fn tail(&self) -> f64 {
        1.0 - self.percentile as f64 / 100.0
    }

    /// T = factor × the known good's historical level (median of its per-minute pXX), in whole milliseconds.
    fn threshold(&self, known_good: Option<&History>) -> Option<u32> {
        let level = median(&periods::values(&known_good?.revision, &self.metric))?;
        let threshold = (self.factor * level).round();
        (threshold.is_finite() && threshold >= 1.0).then(|| threshold.min(f64::from(u32::MAX)) as u32)
    }
}

impl Policy for Latency {
    fn describe() -> PolicyInfo {
        PolicyInfo::new(
            "latency",
            env!("CARGO_PKG_VERSION"),
            "Rollback when the candidate's latency percentile has become more than `factor` x the known good's: more \
             than (100 - percentile)% of its requests slower than that, by a change detector on per-request counts at \
             `alpha` per day, and during a split more than `ratio` x the baseline's share of slow requests; without \
             the known good's history, a sign detector on per-minute percentiles against the baseline (at least \
             `min_samples` minutes). Promote when the last `windows` windows are within the factor.",
        )
        .metrics(&["latency_p50", "latency_p90", "latency_p95", "latency_p99", "requests"])
        .param(ParamSpec::integer("percentile", 95, "Which latency percentile to compare: 50, 90, 95 or 99."))
        .param(ParamSpec::float("factor", 1.3, "Tolerated ratio of candidate to known-good latency."))
        .param(ParamSpec::float(
            "ratio",
            2.0,
            "During a split: tolerated multiple of the baseline's share of requests slower than factor x the known \
             good's latency.",
        ))
        .param(ParamSpec::integer("windows", 2, "Latest windows that must be within the factor to promote."))
        .param(ParamSpec::integer("min_requests", 50, "Candidate requests a window needs, when requests are reported."))
        .param(ParamSpec::float(
            "alpha",
            0.01,
            "Highest tolerated chance of rolling back a healthy candidate in its first day (each further day adds at \
             most alpha/2).",
        ))
        .param(ParamSpec::integer(
            "min_samples",
            5,
            "Minutes compared before the per-minute fallback rolls back.",
        ))
    }

    fn latency_thresholds(request: ThresholdRequest) -> Result<Vec<u32>, String> {
        let info = Self::describe();
        let p = Params::from_list(&request.params, &info)?;
        Ok(Settings::read(&p)?.threshold(request.known_good.as_ref()).into_iter().collect())
    }

    fn evaluate(e: Evaluation) -> Result<Report, String> {
        let p = Params::new(&e, &Self::describe())?;
        let settings = Settings::read(&p)?;
        let (ratio, alpha) = (p.float_in("ratio", 1.0..=1e6, "a ratio")?, p.float_in("alpha", 1e-9..=0.5, "a level")?);
        let (needed, min_requests) = (p.count_at_least("windows", 1)? as usize, p.count("min_requests")? as f64);
        let min_samples = p.count_at_least("min_samples", 1)? as f64;
        let metric = settings.metric.as_str();
        let Some(cand) = e.candidate.series(metric) else {
            return Ok(Report::inconclusive(format!("candidate {} did not report {metric}", e.candidate.id)));
        };
        let history = e.known_good.as_ref().and_then(|h| median(&periods::values(&h.revision, metric)));
        let per_minute = PerMinute::compare(&e, metric, settings.factor, history);
        let Some(reference_level) = history.or(per_minute.as_ref().map(|m| m.level)) else {
            return Ok(Report::inconclusive(format!("no baseline {metric} to compare with")));
        };
        let mut checks = Checks::new();
        let threshold = settings.threshold(e.known_good.as_ref());
        let slow = threshold.filter(|t| e.candidate.slow_requests(*t).is_some());
        let judged = match slow {
            Some(t) => per_request(&e, &settings, t, ratio, alpha, &mut checks)?,
            None => match &per_minute {
                Some(minutes) => minutes.judge(&e, alpha, min_samples, &mut checks)?,
                None => Judged::Healthy,
            },
        };
        match judged {
            Judged::Worse(reason) => return Ok(Report::rollback(reason).with(checks)),
            Judged::Shared(reason) => {
                return Ok(Report::hold(reason).with(checks).finding(Finding::SharedDegradation));
            }
            Judged::Healthy => {}
        }
        let latest = e.last_windows(needed);
        if latest.len() < needed {
            return Ok(
                Report::inconclusive(format!("{} windows evaluated, {needed} needed", latest.len())).with(checks)
            );
        }
        let limit = settings.factor * reference_level;
        if let Some(v) = latest.clone().last().and_then(|w| cand.aggregate(w)) {
            checks.at_most(format!("{metric}[latest]"), v, limit);
        }
        let requests = e.candidate.series("requests");
        let (mut thin, mut slow_windows) = (0, 0);
        for w in latest {
            let served = requests.map(|r| r.sum(w).unwrap_or(0.0));
            match cand.aggregate(w) {
                Some(_) if served.is_some_and(|n| n < min_requests) => thin += 1,
                None => thin += 1,
                Some(v) if v > limit => slow_windows += 1,
                Some(_) => {}
            }
        }
        let source = if history.is_some() { "known good's history" } else { "baseline" };
        let report = if thin > 0 {
            Report::inconclusive(format!("{thin} of the last {needed} windows lack latency data or requests"))
        } else if slow_windows > 0 {
            Report::hold(format!(
                "{metric} above {}x of the {source} ({reference_level:.0} ms) in {slow_windows} of the last {needed} windows, not yet significant",
                settings.factor
            ))
        } else {
            Report::promote(format!("{metric} within {}x of the {source} ({reference_level:.0} ms)", settings.factor))
        };
        Ok(report.with(checks))
    }
}

/// What the evidence says, before promotion is considered.
enum Judged {
    Worse(String),
    Shared(String),
    Healthy,
}

/// Per-request evidence: the candidate's share of requests slower than T against the percentile's tail (and,
/// during a split, against `ratio` × the baseline's share).
fn per_request(
    e: &Evaluation,
    settings: &Settings,
    threshold: u32,
    ratio: f64,
    alpha: f64,
    checks: &mut Checks,
) -> Result<Judged, String> {
    let name = slow_requests_metric(threshold);
    let detector = e.detector(alpha);
    let tail = settings.tail();
    let candidate = Periods::counting(&e.candidate, &name);
    let above = stats::error_limit_detector(&candidate.rates(), tail, detector).ok_or("invalid slow-request counts")?;
    let baseline = e
        .baseline
        .as_ref()
        .filter(|b| b.slow_requests(threshold).is_some())
        .map(|b| Periods::counting(b, &name))
        .filter(|b| !b.is_empty());
    let against = match &baseline {
        Some(b) => Some(
            stats::error_ratio_detector(b.paired(&candidate).counts(), ratio, detector)
                .ok_or("invalid slow-request counts")?,
        ),
        None => None,
    };
    let share = candidate.rate();
    checks.record(format!("share_slower_than_{threshold}ms"), share, tail, share.is_nan() || share <= tail);
    checks.record("evidence_slower", above.max_statistic, 1.0, !above.alarm);
    if let Some(d) = &against {
        checks.record("evidence_slower_than_baseline", d.max_statistic, 1.0, !d.alarm);
    }
    let metric = &settings.metric;
    if above.alarm && against.as_ref().is_none_or(|d| d.alarm) {
        let since = candidate.starts().get(above.onset as usize).copied().unwrap_or(e.now);
        let recent = candidate.since(since).rate();
        let versus = match (&baseline, &against) {
            (Some(b), Some(d)) => format!(", {:.1}x the baseline's share ({:.2}%)", d.estimate, b.rate() * 100.0),
            _ => String::new(),
        };
        let level = f64::from(threshold) / settings.factor;
        return Ok(Judged::Worse(format!(
            "{:.1}% of requests slower than {threshold} ms ({}x the known good's {metric} of {level:.0} ms) since {}, more than {:.0}%{versus}; change detected at alpha {alpha} per day (evidence {} >= 1)",
            recent * 100.0,
            settings.factor,
            since_text(since, e.now),
            tail * 100.0,
            evidence_text(evidence(&above, against.as_ref())),
        )));
    }
    if let Some(b) = &baseline {
        let slow_too = stats::error_limit_detector(&b.rates(), tail, detector).is_some_and(|d| d.alarm);
        if above.alarm && slow_too {
            return Ok(Judged::Shared(format!(
                "shared degradation: the baseline's requests are slower too ({:.1}% above {threshold} ms since the candidate started, {:.0}% before it); not the candidate's doing",
                b.rate() * 100.0,
                tail * 100.0
            )));
        }
    }
    Ok(Judged::Healthy)
}

/// The weaker of the evidence needed together.
fn evidence(above: &Detection, against: Option<&Detection>) -> f64 {
    above.max_statistic.min(against.map_or(f64::INFINITY, |d| d.max_statistic))
}

/// The fallback without per-request counts: one comparison per minute of the candidate's percentile with
/// `factor` × the reference — the concurrent baseline's percentile that minute during a split, else the known
/// good's level — as a sign detector (each minute a trial that exceeds with probability above one half).
struct PerMinute {
    /// (minute, exceeded) for each compared minute, oldest first.
    exceeded: Vec<(i64, bool)>,
    /// The reference's level: the known good's history, or the median of the baseline's minutes.
    level: f64,
    source: &'static str,
    /// During a split with the known good's level known: the candidate's and the baseline's minutes against it,
    /// for a shared degradation.
    against_history: Option<(Vec<bool>, Vec<bool>)>,
}

impl PerMinute {
    /// The minutes compared; `None` without a reference.
    fn compare(e: &Evaluation, metric: &str, factor: f64, history: Option<f64>) -> Option<Self> {
        let candidate = periods::values(&e.candidate, metric);
        let baseline = e.baseline.as_ref().map(|b| periods::values(b, metric)).filter(|b| !b.is_empty());
        let above = |values: &BTreeMap<i64, f64>, level: f64| values.values().map(|v| *v > factor * level).collect();
        match (baseline, history) {
            (Some(base), _) => {
                let pairs: Vec<(i64, f64, f64)> =
                    candidate.iter().filter_map(|(at, c)| Some((*at, *c, *base.get(at)?))).collect();
                Some(Self {
                    exceeded: pairs.iter().map(|(at, c, b)| (*at, *c > factor * b)).collect(),
                    level: median_of(&pairs.iter().map(|p| p.2).collect::<Vec<_>>())?,
                    source: "baseline",
                    against_history: history.map(|h| (above(&candidate, h), above(&base, h))),
                })
            }
            (None, Some(level)) => Some(Self {
                exceeded: candidate.iter().map(|(at, c)| (*at, *c > factor * level)).collect(),
                level,
                source: "known good's history",
                against_history: None,
            }),
            (None, None) => None,
        }
    }

    fn judge(&self, e: &Evaluation, alpha: f64, min_samples: f64, checks: &mut Checks) -> Result<Judged, String> {
        let detector = e.detector(alpha);
        let signs = |exceeded: &mut dyn Iterator<Item = bool>| -> Option<Detection> {
            let trials: Vec<RateCounts> =
                exceeded.map(|x| RateCounts { requests: 1.0, errors: f64::from(u8::from(x)) }).collect();
            stats::error_limit_detector(&trials, 0.5, detector)
        };
        let found = signs(&mut self.exceeded.iter().map(|m| m.1)).ok_or("latencies are not comparable")?;
        let compared = self.exceeded.len() as f64;
        let share = self.exceeded.iter().filter(|m| m.1).count() as f64 / compared.max(1.0);
        checks.record("minutes_exceeding_share", share, 0.5, !found.alarm);
        checks.record("evidence_slower", found.max_statistic, 1.0, !found.alarm);
        if found.alarm && compared >= min_samples {
            let since = self.exceeded.get(found.onset as usize).map_or(e.now, |m| m.0);
            return Ok(Judged::Worse(format!(
                "latency above the {}'s ({:.0} ms) in {:.0}% of the minutes since {} (per-minute percentiles: no per-request counts); change detected at alpha {alpha} per day (evidence {} >= 1)",
                self.source,
                self.level,
                found.estimate * 100.0,
                since_text(since, e.now),
                evidence_text(found.max_statistic),
            )));
        }
        if let Some((candidate, baseline)) = &self.against_history {
            let alarm = |minutes: &[bool]| signs(&mut minutes.iter().copied()).is_some_and(|d| d.alarm);
            if !found.alarm && alarm(candidate) && alarm(baseline) {
                return Ok(Judged::Shared(format!(
                    "shared degradation: the baseline's latency rose too (above the known good's {:.0} ms in most minutes); not the candidate's doing",
                    self.level
                )));
            }
        }
        Ok(Judged::Healthy)
    }
}

fn median(values: &BTreeMap<i64, f64>) -> Option<f64> {
    median_of(&values.values().copied().collect::<Vec<_>>())
}

fn median_of(values: &[f64]) -> Option<f64> {
    if values.is_empty() { None } else { stats::percentile(values, 50.0) }
}

ripcord_policy::export_policy!(Latency);

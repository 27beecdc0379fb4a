//! Per-period counts for the sequential tests: a revision's `requests` and `errors` points joined on their
//! timestamps (one period per metric period, a minute), oldest first, and two revisions' periods paired in time.
//! Points are ordered by time, so every join is one merge pass.

use crate::stats::{PeriodCounts, RateCounts};
use crate::{Point, Revision};
use std::collections::BTreeMap;

/// One revision's periods with requests: (start, requests, errors), oldest first. A period with requests and no
/// errors point has 0 errors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Periods(Vec<(i64, f64, f64)>);

impl Periods {
    /// The revision's periods.
    pub fn of(revision: &Revision) -> Self {
        let empty: &[Point] = &[];
        let requests = revision.series("requests").map_or(empty, |s| &s.points);
        let errors = revision.series("errors").map_or(empty, |s| &s.points);
        let mut periods = Vec::with_capacity(requests.len());
        let mut e = 0;
        for r in requests {
            while e < errors.len() && errors[e].at < r.at {
                e += 1;
            }
            let failed = if e < errors.len() && errors[e].at == r.at { errors[e].value } else { 0.0 };
            if r.value > 0.0 && failed <= r.value {
                periods.push((r.at, r.value, failed));
            }
        }
        Self(periods)
    }

    /// As the sequential tests take them.
    pub fn rates(&self) -> Vec<RateCounts> {
        self.0.iter().map(|&(_, requests, errors)| RateCounts { requests, errors }).collect()
    }

    /// Total requests and errors.
    pub fn totals(&self) -> (f64, f64) {
        self.0.iter().fold((0.0, 0.0), |(r, e), &(_, requests, errors)| (r + requests, e + errors))
    }

    /// The error rate over all periods (NaN without requests).
    pub fn rate(&self) -> f64 {
        let (requests, errors) = self.totals();
        if requests > 0.0 { errors / requests } else { f64::NAN }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The periods in which both this (the baseline) and `candidate` served requests, paired in time.
    pub fn paired(&self, candidate: &Periods) -> Vec<PeriodCounts> {
        let mut paired = Vec::with_capacity(candidate.0.len());
        let mut b = 0;
        for &(at, candidate_requests, candidate_errors) in &candidate.0 {
            while b < self.0.len() && self.0[b].0 < at {
                b += 1;
            }
            if let Some(&(_, baseline_requests, baseline_errors)) = self.0.get(b).filter(|p| p.0 == at) {
                paired.push(PeriodCounts { baseline_requests, baseline_errors, candidate_requests, candidate_errors });
            }
        }
        paired
    }
}

/// The values of metric `name` by period start, oldest first.
pub fn values(revision: &Revision, name: &str) -> BTreeMap<i64, f64> {
    revision.series(name).map(|s| s.points.iter().map(|p| (p.at, p.value)).collect()).unwrap_or_default()
}

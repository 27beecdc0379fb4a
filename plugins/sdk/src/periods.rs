//! Per-period counts for the sequential tests and change detectors: a revision's `requests` and its events
//! (`errors`, or slow requests) joined on their timestamps (one period per metric period, a minute), oldest first,
//! and two revisions' periods paired in time. Points are ordered by time, so every join is one merge pass.

use crate::stats::{PeriodCounts, RateCounts};
use crate::{Point, Revision};
use std::collections::BTreeMap;

/// One revision's periods with requests: (start, requests, events), oldest first. A period with requests and no
/// events point has 0 events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Periods(Vec<(i64, f64, f64)>);

impl Periods {
    /// The revision's periods of requests and errors.
    pub fn of(revision: &Revision) -> Self {
        Self::counting(revision, "errors")
    }

    /// The revision's periods of requests and the events of counter `events` (e.g. `slow_requests_250ms`).
    pub fn counting(revision: &Revision, events: &str) -> Self {
        let empty: &[Point] = &[];
        let requests = revision.series("requests").map_or(empty, |s| &s.points);
        let errors = revision.series(events).map_or(empty, |s| &s.points);
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

    /// Period starts, oldest first (what a detection's `onset` indexes into, for [`Periods::rates`]).
    pub fn starts(&self) -> Vec<i64> {
        self.0.iter().map(|p| p.0).collect()
    }

    /// The periods that start at or after `at_ms`.
    pub fn since(&self, at_ms: i64) -> Self {
        Self(self.0[self.0.partition_point(|p| p.0 < at_ms)..].to_vec())
    }

    /// The periods in which both this (the baseline) and `candidate` served requests, paired in time.
    pub fn paired(&self, candidate: &Periods) -> Paired {
        let mut paired = Paired::default();
        let mut b = 0;
        for (index, &(at, candidate_requests, candidate_errors)) in candidate.0.iter().enumerate() {
            while b < self.0.len() && self.0[b].0 < at {
                b += 1;
            }
            if let Some(&(_, baseline_requests, baseline_errors)) = self.0.get(b).filter(|p| p.0 == at) {
                let counts = PeriodCounts { baseline_requests, baseline_errors, candidate_requests, candidate_errors };
                paired.counts.push(counts);
                paired.candidate_index.push(index);
            }
        }
        paired
    }
}

/// Two revisions' periods paired in time, as the error-ratio test and detector take them.
#[derive(Debug, Clone, Default)]
pub struct Paired {
    counts: Vec<PeriodCounts>,
    candidate_index: Vec<usize>,
}

impl Paired {
    pub fn counts(&self) -> &[PeriodCounts] {
        &self.counts
    }

    /// The index into the candidate's periods of paired period `index` (a detection's `onset`).
    pub fn candidate_index(&self, index: u32) -> Option<u32> {
        self.candidate_index.get(index as usize).and_then(|i| u32::try_from(*i).ok())
    }
}

/// The values of metric `name` by period start, oldest first.
pub fn values(revision: &Revision, name: &str) -> BTreeMap<i64, f64> {
    revision.series(name).map(|s| s.points.iter().map(|p| (p.at, p.value)).collect()).unwrap_or_default()
}

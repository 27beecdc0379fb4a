//! Building reports: a verdict, one sentence of reason, and the checks behind it.

use crate::{Check, Report, Verdict};

impl Report {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Self { verdict, reason: reason.into(), checks: Vec::new(), findings: Vec::new() }
    }
    pub fn promote(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Promote, reason)
    }
    pub fn hold(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Hold, reason)
    }
    pub fn rollback(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Rollback, reason)
    }
    pub fn inconclusive(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Inconclusive, reason)
    }

    /// Adds a finding (e.g. a shared degradation).
    pub fn finding(mut self, finding: crate::Finding) -> Self {
        self.findings.push(finding);
        self
    }

    /// Attaches the checks collected so far.
    pub fn with(mut self, checks: Checks) -> Self {
        self.checks.extend(checks.0);
        self
    }
}

/// Collects checks while a policy evaluates; every comparison returns whether it passed.
#[derive(Debug, Default)]
pub struct Checks(Vec<Check>);

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a check with an explicit outcome.
    pub fn record(&mut self, name: impl Into<String>, observed: f64, threshold: f64, passed: bool) -> bool {
        self.0.push(Check { name: name.into(), observed, threshold, passed });
        passed
    }

    /// Passes when `observed <= threshold`.
    pub fn at_most(&mut self, name: impl Into<String>, observed: f64, threshold: f64) -> bool {
        self.record(name, observed, threshold, observed <= threshold)
    }

    /// Passes when `observed >= threshold`.
    pub fn at_least(&mut self, name: impl Into<String>, observed: f64, threshold: f64) -> bool {
        self.record(name, observed, threshold, observed >= threshold)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many of the recorded checks failed.
    pub fn failed(&self) -> usize {
        self.0.iter().filter(|c| !c.passed).count()
    }
}

/// A detector's evidence for a reason: `3.4`, `2.1e12`, or `> 1e300` past what a number holds.
pub fn evidence_text(statistic: f64) -> String {
    if !statistic.is_finite() || statistic > 1e300 {
        "> 1e300".to_string()
    } else if statistic >= 1e4 {
        format!("{statistic:.1e}")
    } else {
        format!("{statistic:.1}")
    }
}

/// `HH:MM UTC (N min ago)` for a period start `at_ms` seen at `now_ms`: where a change began, in a reason.
pub fn since_text(at_ms: i64, now_ms: i64) -> String {
    let minute_of_day = at_ms.div_euclid(60_000).rem_euclid(1440);
    let age = (now_ms - at_ms).div_euclid(60_000);
    format!("{:02}:{:02} UTC ({age} min ago)", minute_of_day / 60, minute_of_day % 60)
}

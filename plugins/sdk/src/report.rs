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

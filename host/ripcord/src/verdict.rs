//! What a policy answers: a verdict, its reason and the checks behind it, as plain host data.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A policy's recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Promote,
    Hold,
    Rollback,
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Hold => "hold",
            Self::Rollback => "rollback",
            Self::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One criterion a policy evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// `null` in JSON when not finite (and read back as NaN).
    #[serde(serialize_with = "finite_or_null", deserialize_with = "null_as_nan")]
    pub observed: f64,
    #[serde(serialize_with = "finite_or_null", deserialize_with = "null_as_nan")]
    pub threshold: f64,
    pub passed: bool,
}

/// Something a policy found that is not a verdict on the candidate (contract 0.2.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finding {
    /// The baseline degraded as much as the candidate: an outage they share, not a bad candidate.
    SharedDegradation,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SharedDegradation => "shared degradation",
        })
    }
}

/// What a policy answers (WIT `report`): a verdict with its justification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyReport {
    pub verdict: Verdict,
    pub reason: String,
    pub checks: Vec<Check>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

impl PolicyReport {
    /// The report that stands for a policy that could not give one: `inconclusive`, with the cause as reason.
    pub fn inconclusive(reason: impl Into<String>) -> Self {
        Self { verdict: Verdict::Inconclusive, reason: reason.into(), checks: Vec::new(), findings: Vec::new() }
    }
}

fn null_as_nan<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

fn finite_or_null<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_finite() { serializer.serialize_f64(*value) } else { serializer.serialize_none() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_that_observed_nothing_round_trips_through_json() {
        let check = Check { name: "p95".into(), observed: f64::NAN, threshold: 1.5, passed: false };
        let json = serde_json::to_string(&check).unwrap_or_default();
        assert_eq!(json, r#"{"name":"p95","observed":null,"threshold":1.5,"passed":false}"#);
        let back: Check = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert!(back.observed.is_nan() && back.threshold == 1.5);
    }
}

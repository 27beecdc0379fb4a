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

impl Check {
    /// The check for people, in the unit its name implies: `error_rate 30.10% > 1.00%`, `latency_p99 912 ms >
    /// 500 ms`, `evidence_above_max_rate 1.2e5 > 1000` (an e-value against 1/alpha).
    pub fn describe(&self) -> String {
        let unit = Unit::of(&self.name);
        let relation = match self.observed.partial_cmp(&self.threshold) {
            Some(std::cmp::Ordering::Greater) => ">",
            Some(std::cmp::Ordering::Less) => "<",
            Some(std::cmp::Ordering::Equal) => "=",
            None => "vs",
        };
        format!("{} {} {relation} {}", self.name, unit.show(self.observed), unit.show(self.threshold))
    }
}

/// How a check's numbers read, from the words of its name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Percent,
    Milliseconds,
    /// Sequential-test evidence: large numbers, shown with an exponent.
    Evidence,
    Plain,
}

impl Unit {
    fn of(name: &str) -> Self {
        let name = name.to_ascii_lowercase();
        let has = |word: &str| name.contains(word);
        // The most specific word wins: a share of latency minutes is a share, a burn rate is a multiple.
        if has("evidence") || has("e_value") {
            Self::Evidence
        } else if has("burn") || has("ratio") || has("factor") {
            Self::Plain
        } else if has("rate") || has("share") || has("fraction") || has("percent") {
            Self::Percent
        } else if has("latency") || name.ends_with("_ms") || has("duration") {
            Self::Milliseconds
        } else {
            Self::Plain
        }
    }

    fn show(self, value: f64) -> String {
        if !value.is_finite() {
            return if value.is_nan() { "n/a".into() } else { value.to_string() };
        }
        match self {
            Self::Percent => format!("{:.2}%", value * 100.0),
            Self::Milliseconds => format!("{value:.0} ms"),
            Self::Evidence if value.abs() >= 1e4 => format!("{value:.1e}"),
            Self::Evidence | Self::Plain => {
                let text = format!("{value:.3}");
                text.trim_end_matches('0').trim_end_matches('.').to_string()
            }
        }
    }
}

/// Something found that is not a verdict on the candidate: by a policy (contract 0.2.0), or by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finding {
    /// The baseline degraded as much as the candidate: an outage they share, not a bad candidate.
    SharedDegradation,
    /// The guard cannot be served as configured (an invalid field, a policy that cannot be loaded or refuses its
    /// parameters): its deployment is not protected until the configuration is fixed. Found by the host.
    GuardError,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SharedDegradation => "shared degradation",
            Self::GuardError => "guard error",
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

    #[test]
    fn a_check_reads_in_its_unit_with_the_way_it_failed() {
        let check =
            |name: &str, observed: f64, threshold: f64| Check { name: name.into(), observed, threshold, passed: false };
        assert_eq!(check("error_rate", 0.301, 0.01).describe(), "error_rate 30.10% > 1.00%");
        assert_eq!(check("latency_p99", 912.4, 500.0).describe(), "latency_p99 912 ms > 500 ms");
        assert_eq!(
            check("evidence_above_max_rate", 123456.0, 1000.0).describe(),
            "evidence_above_max_rate 1.2e5 > 1000"
        );
        assert_eq!(check("cold_starts", 2.5, 3.0).describe(), "cold_starts 2.5 < 3");
        assert_eq!(
            check("latency_p95_exceeding_share", 0.857, 0.5).describe(),
            "latency_p95_exceeding_share 85.70% > 50.00%"
        );
        assert_eq!(check("burn_rate[1h]", 16.2, 14.4).describe(), "burn_rate[1h] 16.2 > 14.4");
        assert_eq!(check("error_rate", f64::NAN, 0.01).describe(), "error_rate n/a vs 1.00%");
    }

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

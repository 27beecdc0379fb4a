//! Parameters with defaults declared once, in `describe`: a guard's value wins, the declared default fills in.

use crate::{Evaluation, ParamSpec, ParamValue, PolicyInfo};
use std::time::Duration;

/// The parameters of one evaluation, resolved against the defaults the policy declared.
#[derive(Debug)]
pub struct Params<'a> {
    given: &'a [crate::Param],
    declared: Vec<ParamSpec>,
}

impl<'a> Params<'a> {
    /// Resolves `evaluation.params` against `info.parameters`. A parameter the policy does not declare is an
    /// error naming it, so a typo in a guard's configuration is reported instead of silently ignored.
    pub fn new(evaluation: &'a Evaluation, info: &PolicyInfo) -> Result<Self, String> {
        Self::from_list(&evaluation.params, info)
    }

    /// Resolves a list of parameters (a [`crate::ThresholdRequest`]'s) against `info.parameters`, as [`Params::new`].
    pub fn from_list(given: &'a [crate::Param], info: &PolicyInfo) -> Result<Self, String> {
        if let Some(unknown) = given.iter().find(|p| !info.parameters.iter().any(|d| d.name == p.name)) {
            let known: Vec<&str> = info.parameters.iter().map(|d| d.name.as_str()).collect();
            return Err(format!(
                "unknown parameter `{}` for policy {}; it accepts: {}",
                unknown.name,
                info.name,
                known.join(", ")
            ));
        }
        Ok(Self { given, declared: info.parameters.clone() })
    }

    /// The value of parameter `name`: the guard's, else the declared default.
    pub fn value(&self, name: &str) -> Result<&ParamValue, String> {
        if let Some(p) = self.given.iter().find(|p| p.name == name) {
            return Ok(&p.value);
        }
        self.declared
            .iter()
            .find(|d| d.name == name)
            .map(|d| &d.default)
            .ok_or_else(|| format!("parameter `{name}` is not declared by the policy"))
    }

    /// A number (integer or float).
    pub fn float(&self, name: &str) -> Result<f64, String> {
        match self.value(name)? {
            ParamValue::Float(v) if v.is_finite() => Ok(*v),
            ParamValue::Integer(v) => Ok(*v as f64),
            other => Err(mismatch(name, "a number", other)),
        }
    }

    /// A non-negative integer.
    pub fn count(&self, name: &str) -> Result<u64, String> {
        match self.value(name)? {
            ParamValue::Integer(v) if *v >= 0 => Ok(*v as u64),
            ParamValue::Float(v) if v.fract() == 0.0 && *v >= 0.0 && *v <= u64::MAX as f64 => Ok(*v as u64),
            other => Err(mismatch(name, "a non-negative integer", other)),
        }
    }

    /// A non-negative integer of at least `min` (e.g. a window count that must be 1 or more).
    pub fn count_at_least(&self, name: &str, min: u64) -> Result<u64, String> {
        let value = self.count(name)?;
        if value < min {
            return Err(format!("parameter `{name}` must be at least {min}, got {value}"));
        }
        Ok(value)
    }

    /// A number in `range` (inclusive bounds; say what the bounds mean in `meaning`, e.g. "a rate").
    pub fn float_in(&self, name: &str, range: std::ops::RangeInclusive<f64>, meaning: &str) -> Result<f64, String> {
        let value = self.float(name)?;
        if !range.contains(&value) {
            return Err(format!(
                "parameter `{name}` must be {meaning} between {} and {}, got {value}",
                range.start(),
                range.end()
            ));
        }
        Ok(value)
    }

    /// A positive duration written as text.
    pub fn positive_duration(&self, name: &str) -> Result<Duration, String> {
        let value = self.duration(name)?;
        if value.is_zero() {
            return Err(format!("parameter `{name}` must be longer than zero"));
        }
        Ok(value)
    }

    /// A duration written as text, such as `"5m"` or `"1h 30m"`.
    pub fn duration(&self, name: &str) -> Result<Duration, String> {
        match self.value(name)? {
            ParamValue::Text(t) => parse_duration(t).map_err(|e| format!("parameter `{name}`: {e}")),
            other => Err(mismatch(name, "a duration such as \"5m\"", other)),
        }
    }

    /// A boolean.
    pub fn flag(&self, name: &str) -> Result<bool, String> {
        match self.value(name)? {
            ParamValue::Boolean(v) => Ok(*v),
            other => Err(mismatch(name, "true or false", other)),
        }
    }

    /// Text.
    pub fn text(&self, name: &str) -> Result<&str, String> {
        match self.value(name)? {
            ParamValue::Text(t) => Ok(t),
            other => Err(mismatch(name, "text", other)),
        }
    }
}

/// Parses a duration such as `"5m"`, `"90s"` or `"1h 30m"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// Formats a duration the way [`parse_duration`] reads it, e.g. `1h 30m`.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn mismatch(name: &str, wanted: &str, got: &ParamValue) -> String {
    let got = match got {
        ParamValue::Boolean(v) => format!("boolean {v}"),
        ParamValue::Integer(v) => format!("integer {v}"),
        ParamValue::Float(v) => format!("number {v}"),
        ParamValue::Text(t) => format!("text {t:?}"),
    };
    format!("parameter `{name}` must be {wanted}, got {got}")
}

impl PolicyInfo {
    /// Starts a description; add metrics and parameters with the builder methods.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
            metrics: Vec::new(),
            parameters: Vec::new(),
        }
    }

    /// Declares the metrics the policy needs.
    pub fn metrics(mut self, names: &[&str]) -> Self {
        self.metrics.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// Declares a parameter.
    pub fn param(mut self, spec: ParamSpec) -> Self {
        self.parameters.push(spec);
        self
    }
}

impl ParamSpec {
    fn new(name: &str, default: ParamValue, description: &str) -> Self {
        Self { name: name.to_string(), description: description.to_string(), default }
    }
    pub fn float(name: &str, default: f64, description: &str) -> Self {
        Self::new(name, ParamValue::Float(default), description)
    }
    pub fn integer(name: &str, default: i64, description: &str) -> Self {
        Self::new(name, ParamValue::Integer(default), description)
    }
    pub fn text(name: &str, default: &str, description: &str) -> Self {
        Self::new(name, ParamValue::Text(default.to_string()), description)
    }
    pub fn flag(name: &str, default: bool, description: &str) -> Self {
        Self::new(name, ParamValue::Boolean(default), description)
    }
}

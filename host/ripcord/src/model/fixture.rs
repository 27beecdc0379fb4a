//! The evaluation JSON format: what `ripcord plugin test --input` reads and what plugin authors write as
//! fixtures. It is friendlier than the WIT record — timestamps as RFC 3339, series as `start` + `step` + values —
//! and the host splits the points into windows, exactly as it does for provider data.
//!
//! Errors name the file, the field (a JSON path) and the offending value.

use crate::model::evaluation::{
    Evaluation, History, MetricKind, MetricSeries, ParamValue, Params, Platform, Revision, Window,
};
use crate::model::time::{duration_ms, format_timestamp, timestamp};
use crate::model::verdict::Verdict;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most windows one evaluation file may ask for (a day of one-minute windows): the host builds every window.
pub const MAX_WINDOWS: usize = 1440;

/// A fixture that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read {path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("{path}: {field}: {message}")]
    Invalid { path: PathBuf, field: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureFile {
    #[serde(default = "default_guard")]
    guard: String,
    #[serde(default = "default_platform")]
    platform: Platform,
    now: String,
    deployed_at: Option<String>,
    /// Length of one evaluation window, e.g. "5m".
    window: String,
    /// Number of windows, the last one ending at `now`.
    windows: usize,
    baseline: Option<RevisionFile>,
    /// The known good's history (contract 0.2.0): its span and its metrics then.
    known_good: Option<HistoryFile>,
    candidate: RevisionFile,
    #[serde(default)]
    params: BTreeMap<String, serde_json::Value>,
    /// The verdict a plugin test expects (fixtures of `ripcord plugin test`), or `error`.
    expect: Option<Expect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryFile {
    from: String,
    to: String,
    revision: RevisionFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevisionFile {
    id: String,
    traffic_share: f64,
    #[serde(default)]
    metrics: BTreeMap<String, SeriesFile>,
}

/// Either `points` (explicit timestamps) or `start` + `step` + `values` (regular series; `null` = not reported).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesFile {
    kind: Option<MetricKind>,
    start: Option<String>,
    step: Option<String>,
    values: Option<Vec<Option<f64>>>,
    points: Option<Vec<(String, f64)>>,
}

fn default_guard() -> String {
    "fixture".to_string()
}

fn default_platform() -> Platform {
    Platform::AwsLambda
}

/// What a fixture expects of a plugin: a verdict, or `"error"` (the policy must refuse the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Verdict(Verdict),
    Error,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verdict(verdict) => verdict.as_str(),
            Self::Error => "error",
        }
    }

    /// Whether `got` (a verdict, or `None` for a plugin error) is what is expected: a plugin error passes only a
    /// fixture that expects `error`, never one that expects `inconclusive`.
    pub fn is_met_by(self, got: Option<Verdict>) -> bool {
        match self {
            Self::Verdict(verdict) => got == Some(verdict),
            Self::Error => got.is_none(),
        }
    }
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        if word == "error" {
            return Ok(Self::Error);
        }
        let verdict = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(&word);
        Verdict::deserialize(verdict).map(Self::Verdict).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown expectation {word:?}, expected `promote`, `hold`, `rollback`, `inconclusive` or `error`"
            ))
        })
    }
}

impl serde::Serialize for Expect {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A fixture: an evaluation, and the verdict a plugin test expects from it (if it says).
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    pub evaluation: Evaluation,
    pub expect: Option<Expect>,
}

/// The fixtures (`*.json`) of a folder, sorted by name.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, FixtureError> {
    let read = |cause| FixtureError::Read { path: dir.into(), cause };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.extension().is_some_and(|x| x == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads an evaluation fixture.
pub fn load(path: &Path) -> Result<Evaluation, FixtureError> {
    read(path).map(|f| f.evaluation)
}

/// Reads a fixture with its expected verdict.
pub fn read(path: &Path) -> Result<Fixture, FixtureError> {
    let text = std::fs::read_to_string(path).map_err(|cause| FixtureError::Read { path: path.into(), cause })?;
    parse_fixture(&text, path)
}

/// Parses an evaluation fixture; `path` only names the source in errors.
pub fn parse(text: &str, path: &Path) -> Result<Evaluation, FixtureError> {
    parse_fixture(text, path).map(|f| f.evaluation)
}

/// Parses a fixture with its expected verdict; `path` only names the source in errors.
pub fn parse_fixture(text: &str, path: &Path) -> Result<Fixture, FixtureError> {
    let invalid = |field: String, message: String| FixtureError::Invalid { path: path.into(), field, message };
    let de = &mut serde_json::Deserializer::from_str(text);
    let file: FixtureFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        invalid(if field == "." { "(document)".to_string() } else { field }, e.into_inner().to_string())
    })?;
    let now = timestamp(&file.now).map_err(|m| invalid("now".into(), m))?;
    let deployed_at =
        file.deployed_at.as_deref().map(timestamp).transpose().map_err(|m| invalid("deployed_at".into(), m))?;
    let length = duration_ms(&file.window).map_err(|m| invalid("window".into(), m))?;
    if !(1..=MAX_WINDOWS).contains(&file.windows) {
        return Err(invalid("windows".into(), format!("must be between 1 and {MAX_WINDOWS}, got {}", file.windows)));
    }
    let windows = Window::ending_at(now, length, file.windows);
    let revision = |name: &str, r: RevisionFile, windows: &[Window]| -> Result<Revision, FixtureError> {
        if !(0.0..=1.0).contains(&r.traffic_share) {
            let message = format!("must be between 0 and 1, got {}", r.traffic_share);
            return Err(invalid(format!("{name}.traffic_share"), message));
        }
        let metrics = r
            .metrics
            .into_iter()
            .map(|(metric, s)| series(&metric, s, windows).map_err(|m| invalid(format!("{name}.metrics.{metric}"), m)))
            .collect::<Result<_, _>>()?;
        Ok(Revision { id: r.id, traffic_share: r.traffic_share, metrics })
    };
    let baseline = file.baseline.map(|b| revision("baseline", b, &windows)).transpose()?;
    let candidate = revision("candidate", file.candidate, &windows)?;
    let known_good = match file.known_good {
        None => None,
        Some(h) => {
            let start = timestamp(&h.from).map_err(|m| invalid("known_good.from".into(), m))?;
            let end = timestamp(&h.to).map_err(|m| invalid("known_good.to".into(), m))?;
            if end <= start {
                return Err(invalid(
                    "known_good.to".into(),
                    format!("must be after `from` ({}), got {}", h.from, h.to),
                ));
            }
            let span = Window { start, end };
            Some(History { revision: revision("known_good.revision", h.revision, &[span])?, span })
        }
    };
    let params = file
        .params
        .into_iter()
        .map(|(name, value)| {
            let value = param_value(&value).map_err(|m| invalid(format!("params.{name}"), m))?;
            Ok((name, value))
        })
        .collect::<Result<Params, FixtureError>>()?;
    let evaluation = Evaluation {
        guard: file.guard,
        platform: file.platform,
        now,
        deployed_at,
        windows,
        baseline,
        known_good,
        candidate,
        params,
    };
    Ok(Fixture { evaluation, expect: file.expect })
}

fn series(name: &str, file: SeriesFile, windows: &[Window]) -> Result<MetricSeries, String> {
    let kind = file.kind.unwrap_or_else(|| MetricKind::for_metric(name));
    let samples: Vec<(i64, f64)> = match (file.points, file.start, file.step, file.values) {
        (Some(points), None, None, None) => points
            .into_iter()
            .enumerate()
            .map(|(i, (at, value))| Ok((timestamp(&at).map_err(|m| format!("points[{i}]: {m}"))?, value)))
            .collect::<Result<_, String>>()?,
        (None, Some(start), Some(step), Some(values)) => {
            let start = timestamp(&start).map_err(|m| format!("start: {m}"))?;
            let step = duration_ms(&step).map_err(|m| format!("step: {m}"))?;
            values
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|value| (start + i as i64 * step, value)))
                .collect()
        }
        _ => return Err("give either `points` or all of `start`, `step` and `values`".to_string()),
    };
    if let Some((_, bad)) = samples.iter().find(|(_, v)| !v.is_finite() || *v < 0.0 && kind == MetricKind::Counter) {
        return Err(format!("invalid value {bad} (counters are finite and non-negative)"));
    }
    Ok(MetricSeries::split(name, kind, samples, windows))
}

fn param_value(value: &serde_json::Value) -> Result<ParamValue, String> {
    use serde_json::Value;
    match value {
        Value::Bool(b) => Ok(ParamValue::Boolean(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(ParamValue::Integer)
            .or_else(|| n.as_f64().map(ParamValue::Float))
            .ok_or_else(|| format!("number {n} out of range")),
        Value::String(s) => Ok(ParamValue::Text(s.clone())),
        other => Err(format!("must be a boolean, number or string, got {other}")),
    }
}

/// Writes an evaluation in this format (explicit points), so recorded cycles can be replayed and kept as fixtures.
pub fn to_json(e: &Evaluation) -> serde_json::Value {
    use serde_json::json;
    let window_ms = e.windows.first().map_or(60_000, |w| w.end - w.start).max(1);
    let revision = |r: &Revision| {
        let metrics: serde_json::Map<String, serde_json::Value> = r
            .metrics
            .iter()
            .map(|m| {
                let points: Vec<serde_json::Value> =
                    m.points.iter().map(|p| json!([format_timestamp(p.at), p.value])).collect();
                (m.name.clone(), json!({"kind": m.kind, "points": points}))
            })
            .collect();
        json!({"id": r.id, "traffic_share": r.traffic_share, "metrics": metrics})
    };
    let mut out = json!({
        "guard": e.guard,
        "platform": e.platform,
        "now": format_timestamp(e.now),
        "window": humantime::format_duration(Duration::from_millis(window_ms as u64)).to_string(),
        "windows": e.windows.len(),
        "candidate": revision(&e.candidate),
        "params": e.params,
    });
    if let Some(at) = e.deployed_at {
        out["deployed_at"] = json!(format_timestamp(at));
    }
    if let Some(baseline) = &e.baseline {
        out["baseline"] = revision(baseline);
    }
    if let Some(history) = &e.known_good {
        out["known_good"] = json!({
            "from": format_timestamp(history.span.start),
            "to": format_timestamp(history.span.end),
            "revision": revision(&history.revision),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Evaluation, FixtureError> {
        parse(text, Path::new("eval.json"))
    }

    const MINIMAL: &str = r#"{
        "now": "2026-11-26T10:00:00Z", "window": "5m", "windows": 2,
        "candidate": {"id": "2", "traffic_share": 0.1, "metrics": {
            "requests": {"start": "2026-11-26T09:50:00Z", "step": "1m", "values": [1,2,3,4,5,6,null,8,9,10,11]},
            "latency_p95": {"points": [["2026-11-26T09:57:30Z", 120.5]]}
        }}
    }"#;

    #[test]
    fn splits_points_into_windows_and_keeps_absent_values_absent() {
        let e = parse_str(MINIMAL).map_err(|e| e.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.windows.len(), 2);
        let requests = e.candidate.series("requests").cloned().unwrap_or_else(|| panic!("no requests"));
        // The point at `now` (11) is outside every window; the null at 09:56 is absent, not zero.
        assert_eq!(requests.values(0).collect::<Vec<_>>(), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(requests.values(1).collect::<Vec<_>>(), vec![6.0, 8.0, 9.0, 10.0]);
        let latency = e.candidate.series("latency_p95").map(|s| s.kind);
        assert_eq!(latency, Some(MetricKind::Distribution));
        assert!(e.candidate.series("errors").is_none());
    }

    #[test]
    fn written_evaluations_read_back_identically() {
        let e = parse_str(MINIMAL).map_err(|e| e.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let again = parse(&to_json(&e).to_string(), Path::new("again.json")).map_err(|e| e.to_string());
        assert_eq!(again.as_ref().ok(), Some(&e), "{again:?}");
        // With the known good's history, as a cycle after a full promotion records it.
        let with_history = MINIMAL.replacen(
            "\"candidate\"",
            r#""known_good": {"from": "2026-11-26T08:00:00Z", "to": "2026-11-26T09:00:00Z", "revision": {"id": "1",
                "traffic_share": 0, "metrics": {"requests": {"start": "2026-11-26T08:00:00Z", "step": "1m", "values": [5, 6]}}}},
            "candidate""#,
            1,
        );
        let e = parse_str(&with_history).map_err(|e| e.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let history = e.known_good.as_ref().unwrap_or_else(|| panic!("no history"));
        assert_eq!(history.revision.series("requests").map(|s| s.points.len()), Some(2));
        let again = parse(&to_json(&e).to_string(), Path::new("again.json")).map_err(|e| e.to_string());
        assert_eq!(again.as_ref().ok(), Some(&e), "{again:?}");
    }

    #[test]
    fn errors_name_file_field_and_value() {
        let cases = [
            (
                MINIMAL.replace("\"windows\": 2", "\"windows\": 0"),
                "eval.json: windows: must be between 1 and 1440, got 0",
            ),
            (
                MINIMAL.replace("\"windows\": 2", "\"windows\": 100000000"),
                "eval.json: windows: must be between 1 and 1440, got 100000000",
            ),
            (MINIMAL.replace("\"5m\"", "\"5 parsecs\""), "eval.json: window: invalid duration \"5 parsecs\""),
            (MINIMAL.replace("0.1,", "1.5,"), "eval.json: candidate.traffic_share: must be between 0 and 1, got 1.5"),
            (MINIMAL.replace("\"now\"", "\"nwo\""), "eval.json: nwo: unknown field `nwo`"),
            (MINIMAL.replace("\"step\": \"1m\", ", ""), "eval.json: candidate.metrics.requests: give either"),
            (
                MINIMAL.replace("120.5", "\"fast\""),
                "eval.json: candidate.metrics.latency_p95.points[0][1]: invalid type",
            ),
        ];
        for (text, expected) in cases {
            let got = parse_str(&text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(got.starts_with(expected), "expected {expected:?}, got {got:?}");
        }
    }
}

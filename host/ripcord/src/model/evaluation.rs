//! What a policy evaluates, as plain host data: two revisions and their metric series split into evaluation
//! windows. Providers and fixtures produce it; the runtime converts it to each contract version's WIT types.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Milliseconds since the Unix epoch, UTC.
pub type TimestampMs = i64;

/// The platform a guarded deployment runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Platform {
    AwsLambda,
    CloudRun,
}

/// Metric names every provider maps its platform's metrics to.
pub const CANONICAL_METRICS: [&str; 9] = [
    "requests",
    "errors",
    "latency_p50",
    "latency_p90",
    "latency_p95",
    "latency_p99",
    "throttles",
    "cold_starts",
    "instances",
];

/// The counter of requests slower than `threshold_ms` (contract 0.3.0's `latency-thresholds`).
pub fn slow_requests_metric(threshold_ms: u32) -> String {
    format!("slow_requests_{threshold_ms}ms")
}

/// The threshold of a `slow_requests_<T>ms` series name.
pub fn slow_requests_threshold(name: &str) -> Option<u32> {
    name.strip_prefix("slow_requests_")?.strip_suffix("ms")?.parse().ok().filter(|t| *t > 0)
}

/// How a metric's values combine over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    /// Events per period; windows sum their points.
    Counter,
    /// A sampled level.
    Gauge,
    /// A percentile or average of a distribution per period; never summed.
    Distribution,
}

impl MetricKind {
    /// The kind of a canonical metric; custom metrics are counters unless declared otherwise.
    pub fn for_metric(name: &str) -> Self {
        match name {
            "instances" => Self::Gauge,
            n if n.starts_with("latency_") => Self::Distribution,
            _ => Self::Counter,
        }
    }
}

/// One observation: the value over the period starting at `at`, in evaluation window `window`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub at: TimestampMs,
    /// Index of the window holding `at`.
    pub window: u32,
    pub value: f64,
}

/// A time span `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: TimestampMs,
    pub end: TimestampMs,
}

impl Window {
    /// `count` consecutive windows of `length_ms` each, the last one ending at `now`, oldest first.
    pub fn ending_at(now: TimestampMs, length_ms: i64, count: usize) -> Vec<Window> {
        (0..count as i64)
            .rev()
            .map(|back| Window { start: now - (back + 1) * length_ms, end: now - back * length_ms })
            .collect()
    }

    pub fn contains(&self, at: TimestampMs) -> bool {
        self.start <= at && at < self.end
    }
}

/// The series of one metric for one revision, its points tagged with their window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    pub name: String,
    pub kind: MetricKind,
    /// Points inside the windows, oldest first; a period with nothing reported has no point.
    pub points: Vec<Point>,
}

impl MetricSeries {
    /// Builds a series from `(timestamp, value)` samples, tagging each with the window that holds it. Samples
    /// outside every window are dropped, and so are non-finite values: a value the platform could not compute is
    /// absent, never a number. A series has one point per period: samples of the same period (a platform that
    /// answers a count in parts, as Cloud Monitoring answers `request_count` per response class) are added up
    /// for a counter, and the largest is kept for a gauge or a distribution's percentile.
    pub fn split(
        name: &str,
        kind: MetricKind,
        samples: impl IntoIterator<Item = (TimestampMs, f64)>,
        windows: &[Window],
    ) -> Self {
        let mut points: Vec<Point> = samples
            .into_iter()
            .filter(|(_, value)| value.is_finite())
            .filter_map(|(at, value)| {
                // Windows are sorted and contiguous, so a binary search finds the one holding the sample.
                let index = windows.partition_point(|w| w.end <= at);
                windows.get(index).filter(|w| w.contains(at))?;
                Some(Point { at, window: u32::try_from(index).ok()?, value })
            })
            .collect();
        points.sort_by_key(|p| p.at);
        points.dedup_by(|later, kept| {
            if later.at != kept.at {
                return false;
            }
            kept.value = match kind {
                MetricKind::Counter => kept.value + later.value,
                MetricKind::Gauge | MetricKind::Distribution => kept.value.max(later.value),
            };
            true
        });
        Self { name: name.to_string(), kind, points }
    }

    /// The points of window `index` (points are ordered by time, so by window too).
    pub fn window(&self, index: u32) -> &[Point] {
        let start = self.points.partition_point(|p| p.window < index);
        let end = start + self.points[start..].partition_point(|p| p.window == index);
        &self.points[start..end]
    }

    /// The values of window `index`.
    pub fn values(&self, index: u32) -> impl Iterator<Item = f64> + '_ {
        self.window(index).iter().map(|p| p.value)
    }
}

/// One revision and what the platform reported about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// Lambda version number or Cloud Run revision name.
    pub id: String,
    /// Fraction of traffic, in `[0, 1]`.
    pub traffic_share: f64,
    /// Reported metrics only: a metric the platform did not report is absent.
    pub metrics: Vec<MetricSeries>,
}

impl Revision {
    pub fn series(&self, name: &str) -> Option<&MetricSeries> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// A parameter value from a guard's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Boolean(bool),
    Integer(i64),
    Float(f64),
    Text(String),
}

impl ParamValue {
    /// Reads a command-line value: `true`/`false`, an integer, a number, or else text.
    pub fn parse_cli(text: &str) -> Self {
        match text {
            "true" => Self::Boolean(true),
            "false" => Self::Boolean(false),
            _ => text
                .parse::<i64>()
                .map(Self::Integer)
                .or_else(|_| text.parse::<f64>().map(Self::Float))
                .unwrap_or_else(|_| Self::Text(text.to_string())),
        }
    }

    /// The name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Boolean(_) => "boolean",
            Self::Integer(_) => "integer",
            Self::Float(_) => "float",
            Self::Text(_) => "text",
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boolean(v) => write!(f, "{v}"),
            Self::Integer(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Text(v) => write!(f, "{v:?}"),
        }
    }
}

/// Parameters by name, sorted so evaluations are reproducible.
pub type Params = BTreeMap<String, ParamValue>;

/// A revision's metrics over a span outside the evaluation windows (its points carry window 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub revision: Revision,
    pub span: Window,
}

/// What a policy is told before the host reads a cycle's slow-request counts (contract 0.3.0's
/// `latency-thresholds`): the guard, its parameters for the policy, and the known good's history.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRequest {
    pub guard: String,
    pub platform: Platform,
    pub known_good: Option<History>,
    pub params: Params,
}

/// Everything a policy sees in one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub guard: String,
    pub platform: Platform,
    pub now: TimestampMs,
    /// When the candidate first served traffic, when known.
    pub deployed_at: Option<TimestampMs>,
    /// Consecutive windows, oldest first; the last ends at `now`.
    pub windows: Vec<Window>,
    /// The baseline serving at the same time as the candidate (a split).
    pub baseline: Option<Revision>,
    /// The last known good's own metrics from the period it last served before the candidate (contract 0.2.0;
    /// contract 0.1.0 policies do not see it).
    pub known_good: Option<History>,
    pub candidate: Revision,
    pub params: Params,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_one_period_make_one_point_added_up_for_counters() {
        let windows = Window::ending_at(180_000, 60_000, 3);
        // Two parts of one minute's count (2xx and 5xx), out of order, and a sample outside every window.
        let samples = [(60_000, 224.0), (0, 100.0), (60_000, 25.0), (400_000, 1.0)];
        let requests = MetricSeries::split("requests", MetricKind::Counter, samples, &windows);
        let points: Vec<(i64, u32, f64)> = requests.points.iter().map(|p| (p.at, p.window, p.value)).collect();
        assert_eq!(points, [(0, 0, 100.0), (60_000, 1, 249.0)]);
        let latency = MetricSeries::split("latency_p95", MetricKind::Distribution, samples, &windows);
        assert_eq!(latency.points.iter().map(|p| p.value).collect::<Vec<_>>(), [100.0, 224.0]);
    }
}

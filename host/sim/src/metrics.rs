//! CloudWatch statistics computed from the recorded requests, as the `AWS/Lambda` namespace reports them:
//! Invocations, Errors, Throttles, ConcurrentExecutions and Duration, by FunctionName, Resource
//! (`function:alias` or `function:version`) and ExecutedVersion, per period aligned to the epoch.

use crate::lambda::{RequestLog, RequestRecord};
use crate::simulator::ApiError;

/// How far before a window a concurrency query looks for executions still running at its start: Lambda's longest
/// timeout (15 minutes) and an initialisation.
const LONGEST_EXECUTION_MS: i64 = 16 * 60_000;

/// One `MetricStat` of a GetMetricData query.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricStat {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub period_s: i64,
    pub stat: String,
}

/// Datapoints `(period start ms, value)` of `query` over `[start_ms, end_ms)`, oldest first. Periods without
/// matching requests have no datapoint, as in CloudWatch. Only the requests `published` accepts count.
pub fn datapoints(
    requests: &RequestLog,
    published: &dyn Fn(&RequestRecord) -> bool,
    query: &MetricStat,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<(i64, f64)>, ApiError> {
    if query.period_s <= 0 || (query.period_s >= 60 && query.period_s % 60 != 0) {
        return Err(ApiError::new(
            400,
            "InvalidParameterValue",
            format!("The parameter Period must be a multiple of 60, got {}", query.period_s),
        ));
    }
    let stat = Stat::parse(&query.stat)?;
    if query.namespace != "AWS/Lambda" {
        return Ok(Vec::new());
    }
    let Some(metric) = Metric::parse(&query.metric_name) else { return Ok(Vec::new()) };
    let Some(filter) = Filter::from_dimensions(&query.dimensions) else { return Ok(Vec::new()) };
    let from_ms = if metric == Metric::ConcurrentExecutions { start_ms - LONGEST_EXECUTION_MS } else { start_ms };
    let matching: Vec<&RequestRecord> =
        requests.window(filter.function(), from_ms, end_ms).filter(|r| filter.matches(r) && published(r)).collect();
    let concurrency =
        if metric == Metric::ConcurrentExecutions { concurrency_at_starts(&matching) } else { Vec::new() };
    let period_ms = query.period_s * 1000;
    let mut buckets: std::collections::BTreeMap<i64, Vec<f64>> = std::collections::BTreeMap::new();
    for (index, record) in matching.iter().enumerate() {
        if record.at_ms < start_ms || record.at_ms >= end_ms {
            continue;
        }
        let bucket = record.at_ms.div_euclid(period_ms) * period_ms;
        let values = buckets.entry(bucket).or_default();
        let value = match metric {
            Metric::Invocations => (!record.throttled).then_some(1.0),
            Metric::Errors => (!record.throttled).then_some(f64::from(u8::from(record.error))),
            Metric::Throttles => Some(f64::from(u8::from(record.throttled))),
            Metric::Duration => (!record.throttled).then_some(record.duration_ms),
            Metric::ConcurrentExecutions => (!record.throttled).then(|| concurrency[index]),
        };
        values.extend(value);
    }
    Ok(buckets
        .into_iter()
        .filter(|(_, values)| !values.is_empty() || matches!(metric, Metric::Errors | Metric::Throttles))
        .map(|(at, values)| (at, stat.apply(&values, metric)))
        .collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Invocations,
    Errors,
    Throttles,
    Duration,
    ConcurrentExecutions,
}

impl Metric {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "Invocations" => Self::Invocations,
            "Errors" => Self::Errors,
            "Throttles" => Self::Throttles,
            "Duration" => Self::Duration,
            "ConcurrentExecutions" => Self::ConcurrentExecutions,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stat {
    Sum,
    SampleCount,
    Average,
    Minimum,
    Maximum,
    Percentile(f64),
    /// `TC(X:Y)`: how many values lie in `(X, Y]` (a bound left out is open-ended).
    TrimmedCount(Range),
    /// `PR(X:Y)`: the percentage of values in `(X, Y]`.
    PercentileRank(Range),
}

/// The absolute bounds of a `TC` or `PR` statistic: values `v` with `lower < v ≤ upper`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Range {
    lower: f64,
    upper: f64,
}

impl Range {
    /// `X:Y`, `X:` or `:Y` with absolute numbers (CloudWatch also takes percentages, `10%:90%`: not simulated).
    fn parse(text: &str) -> Option<Self> {
        let (lower, upper) = text.split_once(':')?;
        let bound = |b: &str, open: f64| if b.is_empty() { Some(open) } else { b.trim().parse::<f64>().ok() };
        let range = Self { lower: bound(lower, f64::NEG_INFINITY)?, upper: bound(upper, f64::INFINITY)? };
        (range.lower < range.upper && !text.contains('%')).then_some(range)
    }

    fn contains(&self, value: f64) -> bool {
        self.lower < value && value <= self.upper
    }
}

impl Stat {
    fn parse(text: &str) -> Result<Self, ApiError> {
        Ok(match text {
            "Sum" => Self::Sum,
            "SampleCount" => Self::SampleCount,
            "Average" => Self::Average,
            "Minimum" => Self::Minimum,
            "Maximum" => Self::Maximum,
            ranged
                if ranged.len() > 4
                    && ranged.ends_with(')')
                    && (ranged.starts_with("TC(") || ranged.starts_with("PR(")) =>
            {
                let Some(range) = Range::parse(&ranged[3..ranged.len() - 1]) else {
                    let message =
                        format!("Unsupported statistic {ranged:?}: the simulator takes absolute bounds, X:Y, X: or :Y");
                    return Err(ApiError::new(400, "InvalidParameterValue", message));
                };
                if ranged.starts_with("TC(") { Self::TrimmedCount(range) } else { Self::PercentileRank(range) }
            }
            p => match p.strip_prefix('p').and_then(|n| n.parse::<f64>().ok()).filter(|n| (0.0..=100.0).contains(n)) {
                Some(n) => Self::Percentile(n),
                None => {
                    return Err(ApiError::new(400, "InvalidParameterValue", format!("Unsupported statistic {p:?}")));
                }
            },
        })
    }

    fn apply(self, values: &[f64], metric: Metric) -> f64 {
        let n = values.len() as f64;
        if values.is_empty() {
            return 0.0;
        }
        match self {
            Self::Sum => values.iter().sum(),
            Self::SampleCount if matches!(metric, Metric::Errors | Metric::Throttles) => values.iter().sum(),
            Self::SampleCount => n,
            Self::Average => values.iter().sum::<f64>() / n,
            Self::Minimum => values.iter().copied().fold(f64::INFINITY, f64::min),
            Self::Maximum => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Self::Percentile(p) => {
                // Nearest rank, as CloudWatch's percentile statistics approximate.
                let mut sorted = values.to_vec();
                sorted.sort_by(f64::total_cmp);
                let rank = ((p / 100.0) * n).ceil().max(1.0) as usize;
                sorted[rank.min(sorted.len()) - 1]
            }
            Self::TrimmedCount(range) => values.iter().filter(|v| range.contains(**v)).count() as f64,
            Self::PercentileRank(range) => 100.0 * values.iter().filter(|v| range.contains(**v)).count() as f64 / n,
        }
    }
}

/// The dimension sets Lambda publishes a request's metrics under, as CloudWatch matches them (exactly: a query
/// with any other set of dimensions finds no data): across all functions, by function, by resource (the alias
/// or the version the request named), and, for a request through an alias, by resource and executed version.
pub fn dimension_sets(r: &RequestRecord) -> Vec<Vec<(&'static str, String)>> {
    let function = ("FunctionName", r.function.clone());
    let resource = match &r.alias {
        Some(alias) => format!("{}:{alias}", r.function),
        None => format!("{}:{}", r.function, r.version),
    };
    let by_resource = vec![function.clone(), ("Resource", resource)];
    let mut sets = vec![Vec::new(), vec![function], by_resource.clone()];
    if r.alias.is_some() {
        let mut by_executed = by_resource;
        by_executed.push(("ExecutedVersion", r.version.to_string()));
        sets.push(by_executed);
    }
    sets
}

/// Which requests a set of dimensions selects: one of the sets [`dimension_sets`] publishes, matched exactly.
#[derive(Debug)]
enum Filter {
    Account,
    Function(String),
    /// Requests through an alias (`function:alias`), optionally only those that ran `executed`.
    Alias {
        function: String,
        alias: String,
        executed: Option<u32>,
    },
    /// Requests that named a version (`function:7`).
    Version {
        function: String,
        version: u32,
    },
}

impl Filter {
    fn from_dimensions(dimensions: &[(String, String)]) -> Option<Self> {
        let mut sorted: Vec<(&str, &str)> = dimensions.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        sorted.sort_unstable();
        let qualified = |function: &str, resource: &str| -> Option<String> {
            let (name, qualifier) = resource.split_once(':')?;
            (name == function && !qualifier.is_empty()).then(|| qualifier.to_string())
        };
        Some(match sorted.as_slice() {
            [] => Self::Account,
            [("FunctionName", f)] => Self::Function(f.to_string()),
            [("FunctionName", f), ("Resource", resource)] => {
                let qualifier = qualified(f, resource)?;
                match qualifier.parse::<u32>() {
                    Ok(version) => Self::Version { function: f.to_string(), version },
                    Err(_) => Self::Alias { function: f.to_string(), alias: qualifier, executed: None },
                }
            }
            [("ExecutedVersion", v), ("FunctionName", f), ("Resource", resource)] => {
                let alias = qualified(f, resource).filter(|q| q.parse::<u32>().is_err())?;
                Self::Alias { function: f.to_string(), alias, executed: Some(v.parse().ok()?) }
            }
            _ => return None,
        })
    }

    fn function(&self) -> Option<&str> {
        match self {
            Self::Account => None,
            Self::Function(function) | Self::Alias { function, .. } | Self::Version { function, .. } => Some(function),
        }
    }

    fn matches(&self, r: &RequestRecord) -> bool {
        self.function().is_none_or(|f| f == r.function)
            && match self {
                Self::Account | Self::Function(_) => true,
                Self::Alias { alias, executed, .. } => {
                    r.alias.as_deref() == Some(alias) && executed.is_none_or(|v| v == r.version)
                }
                Self::Version { version, .. } => r.alias.is_none() && r.version == *version,
            }
    }
}

/// For each request (in order), how many executions were in flight when it started, itself included.
fn concurrency_at_starts(requests: &[&RequestRecord]) -> Vec<f64> {
    let mut ends: Vec<i64> = requests.iter().filter(|r| !r.throttled).map(|r| r.end_ms()).collect();
    ends.sort_unstable();
    let mut started = 0usize;
    requests
        .iter()
        .map(|r| {
            if r.throttled {
                return 0.0;
            }
            started += 1;
            let ended = ends.partition_point(|end| *end <= r.at_ms);
            (started - ended.min(started)) as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at_ms: i64, version: u32, duration_ms: f64, error: bool) -> RequestRecord {
        RequestRecord {
            at_ms,
            function: "f".into(),
            alias: Some("live".into()),
            version,
            duration_ms,
            init_ms: 0.0,
            cold_start: false,
            error,
            throttled: false,
        }
    }

    fn log(records: impl IntoIterator<Item = RequestRecord>) -> RequestLog {
        let mut log = RequestLog::default();
        records.into_iter().for_each(|r| log.push(r));
        log
    }

    fn all(_: &RequestRecord) -> bool {
        true
    }

    fn query(metric: &str, stat: &str, dims: &[(&str, &str)]) -> MetricStat {
        MetricStat {
            namespace: "AWS/Lambda".into(),
            metric_name: metric.into(),
            dimensions: dims.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            period_s: 60,
            stat: stat.into(),
        }
    }

    #[test]
    fn statistics_per_period_and_dimension() {
        let requests =
            log((0..10).map(|i| record(i * 20_000, if i % 2 == 0 { 1 } else { 2 }, 10.0 * (i + 1) as f64, i == 3)));
        fn by_version(v: &str) -> [(&str, &str); 3] {
            [("FunctionName", "f"), ("Resource", "f:live"), ("ExecutedVersion", v)]
        }
        let invocations = datapoints(&requests, &all, &query("Invocations", "Sum", &by_version("2")), 0, 200_000);
        assert_eq!(invocations.ok(), Some(vec![(0, 1.0), (60_000, 2.0), (120_000, 1.0), (180_000, 1.0)]));
        let errors = datapoints(&requests, &all, &query("Errors", "Sum", &by_version("2")), 0, 200_000);
        assert_eq!(errors.ok(), Some(vec![(0, 0.0), (60_000, 1.0), (120_000, 0.0), (180_000, 0.0)]));
        let p50 = datapoints(&requests, &all, &query("Duration", "p50", &[("FunctionName", "f")]), 0, 60_000);
        assert_eq!(p50.ok(), Some(vec![(0, 20.0)]));
        let max = datapoints(&requests, &all, &query("Duration", "Maximum", &[("FunctionName", "f")]), 60_000, 120_000);
        assert_eq!(max.ok(), Some(vec![(60_000, 60.0)]));
        let none = datapoints(&requests, &all, &query("Invocations", "Sum", &by_version("3")), 0, 200_000);
        assert_eq!(none.ok(), Some(vec![]));
        // Dimensions match exactly, as in CloudWatch: Lambda publishes no {FunctionName, ExecutedVersion}.
        let unpublished = [("FunctionName", "f"), ("ExecutedVersion", "2")];
        let none = datapoints(&requests, &all, &query("Invocations", "Sum", &unpublished), 0, 200_000);
        assert_eq!(none.ok(), Some(vec![]));
        let across_functions = datapoints(&requests, &all, &query("Invocations", "Sum", &[]), 0, 60_000);
        assert_eq!(across_functions.ok(), Some(vec![(0, 3.0)]));
        // Requests through the alias are not the version's own resource.
        let by_resource = [("FunctionName", "f"), ("Resource", "f:2")];
        let none = datapoints(&requests, &all, &query("Invocations", "Sum", &by_resource), 0, 200_000);
        assert_eq!(none.ok(), Some(vec![]));
    }

    #[test]
    fn concurrency_counts_overlapping_executions() {
        let requests = log([record(0, 1, 1000.0, false), record(100, 1, 1000.0, false), record(1500, 1, 10.0, false)]);
        let max =
            datapoints(&requests, &all, &query("ConcurrentExecutions", "Maximum", &[("FunctionName", "f")]), 0, 60_000);
        assert_eq!(max.ok(), Some(vec![(0, 2.0)]));
        // An execution that started before the window still counts at the starts inside it.
        let requests = log([record(59_000, 1, 5_000.0, false), record(61_000, 1, 10.0, false)]);
        let query = query("ConcurrentExecutions", "Maximum", &[("FunctionName", "f")]);
        assert_eq!(datapoints(&requests, &all, &query, 60_000, 120_000).ok(), Some(vec![(60_000, 2.0)]));
    }

    #[test]
    fn only_published_requests_count() {
        let requests = log((0..4).map(|i| record(i * 10_000, 1, 10.0, false)));
        let early = |r: &RequestRecord| r.at_ms < 20_000;
        let sum = datapoints(&requests, &early, &query("Invocations", "Sum", &[("FunctionName", "f")]), 0, 60_000);
        assert_eq!(sum.ok(), Some(vec![(0, 2.0)]));
    }

    #[test]
    fn trimmed_count_and_percentile_rank_count_values_above_the_lower_and_up_to_the_upper_bound() {
        // Durations 10, 20, ..., 60 ms in the first minute.
        let requests = log((0..6).map(|i| record(i * 10_000, 1, 10.0 * (i + 1) as f64, false)));
        let at = |stat: &str| {
            datapoints(&requests, &all, &query("Duration", stat, &[("FunctionName", "f")]), 0, 60_000)
                .ok()
                .and_then(|points| points.first().map(|p| p.1))
        };
        assert_eq!(at("TC(30:)"), Some(3.0), "above 30 ms: 40, 50, 60");
        assert_eq!(at("TC(:30)"), Some(3.0), "up to 30 ms: 10, 20, 30");
        assert_eq!(at("TC(15:45)"), Some(3.0));
        assert_eq!(at("TC(100:)"), Some(0.0), "a minute with requests and none above: a zero, not a gap");
        assert_eq!(at("PR(:30)"), Some(50.0));
        assert!(datapoints(&requests, &all, &query("Duration", "TC(10%:90%)", &[]), 0, 1).is_err(), "percent bounds");
        assert!(datapoints(&requests, &all, &query("Duration", "TC(50:10)", &[]), 0, 1).is_err(), "empty range");
    }

    #[test]
    fn bad_period_and_statistic_are_refused() {
        let mut q = query("Invocations", "Sum", &[]);
        q.period_s = 90;
        let empty = RequestLog::default();
        assert!(datapoints(&empty, &all, &q, 0, 1).is_err());
        assert!(datapoints(&empty, &all, &query("Invocations", "Median", &[]), 0, 1).is_err());
    }
}

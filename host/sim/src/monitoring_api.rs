//! Cloud Monitoring v3 `projects.timeSeries.list` over REST JSON (enums as names, or integers when the client asks,
//! as google-cloud-monitoring-v3 does): a filter ([`crate::monitoring_filter`]), an interval (the start optional),
//! `aggregation` with an alignment period, a per-series aligner (ALIGN_DELTA, ALIGN_RATE,
//! ALIGN_SUM, ALIGN_COUNT, ALIGN_MIN/MAX/MEAN, ALIGN_PERCENTILE_05/50/95/99), a cross-series reducer (REDUCE_SUM,
//! MEAN, MIN, MAX, COUNT, PERCENTILE_05/50/95/99) with `groupByFields`, and paging by points. MIN and MAX keep an
//! integer metric's INT64; distributions carry exponential bucket counts. Metrics of `cloud_run_revision`:
//! `run.googleapis.com/request_count` (label `response_code_class`), `request_latencies` (distribution, ms),
//! `container/instance_count` and `container/startup_latencies` (distribution, ms).

use crate::cloudrun_api::error_response;
use crate::http::{Request, Response, google_enum};
use crate::monitoring_filter::{Filter, canonical_key};
use crate::simulator::{ApiError, Simulator, State};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

const REQUEST_COUNT: &str = "run.googleapis.com/request_count";
const REQUEST_LATENCIES: &str = "run.googleapis.com/request_latencies";
const INSTANCE_COUNT: &str = "run.googleapis.com/container/instance_count";
const STARTUP_LATENCIES: &str = "run.googleapis.com/container/startup_latencies";
const RESOURCE_TYPE: &str = "cloud_run_revision";

pub(crate) fn handle(sim: &Simulator, request: &Request) -> Option<Response> {
    let path = request.path();
    let ["v3", "projects", project, "timeSeries"] = path.as_slice() else { return None };
    let mut state = sim.lock();
    let result = match state.take_api_fault("ListTimeSeries") {
        Some(error) => Err(error),
        None => list(&mut state, project, request),
    };
    let (response, detail) = match result {
        Ok(value) => (Response::json(200, &value), request.query("filter").unwrap_or_default().to_string()),
        Err(error) => (error_response(&error), error.message.clone()),
    };
    state.answer("ListTimeSeries", project, detail, response)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "INVALID_ARGUMENT", message)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// INT64 DELTA (counts).
    Count,
    /// DISTRIBUTION DELTA (latencies).
    Distribution,
    /// INT64 GAUGE (instance counts).
    Gauge,
}

/// A value after alignment or reduction.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Int(i64),
    Double(f64),
    Dist(Vec<f64>),
}

impl Val {
    fn number(&self) -> f64 {
        match self {
            Val::Int(i) => *i as f64,
            Val::Double(d) => *d,
            Val::Dist(v) => v.len() as f64,
        }
    }
}

type Labels = BTreeMap<String, String>;
/// Each series' points, by its labels.
type SeriesPoints = BTreeMap<Labels, Vec<(i64, f64)>>;

/// Most points one ListTimeSeries page carries (the API's limit, and its page size when none is given).
const MAX_PAGE_POINTS: usize = 100_000;
/// How many computed queries are kept for their next pages.
const KEPT_QUERIES: usize = 4;

fn list(state: &mut State, project: &str, request: &Request) -> Result<Value, ApiError> {
    // A query's later pages come from its first page's computation (same query, same virtual time, no request
    // served since): computed
    // again per page, a 10,000-service fleet's queries took minutes.
    let mut key: Vec<&(String, String)> =
        request.query.iter().filter(|(k, _)| k != "pageToken" && k != "pageSize").collect();
    key.sort();
    let key = format!("{project} {} {} {key:?}", state.now_ms, state.run_requests.len());
    let output = match state.monitoring_queries.iter().find(|(k, _)| *k == key) {
        Some((_, output)) => output.clone(),
        None => {
            let output = std::sync::Arc::new(compute(state, project, request)?);
            state.monitoring_queries.push((key, output.clone()));
            if state.monitoring_queries.len() > KEPT_QUERIES {
                state.monitoring_queries.remove(0);
            }
            output
        }
    };
    // `pageSize` counts points (the API's FULL view), at most 100,000; a page holds whole series, at least one.
    let page_points = request
        .query("pageSize")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(MAX_PAGE_POINTS)
        .min(MAX_PAGE_POINTS);
    let offset = request
        .query("pageToken")
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<usize>().map_err(|_| invalid("invalid page token")))
        .transpose()?
        .unwrap_or(0);
    let mut page: Vec<&Value> = Vec::new();
    let mut points = 0usize;
    for series in output.iter().skip(offset).take(state.settings.max_series_per_page.max(1)) {
        let n = series["points"].as_array().map_or(0, Vec::len);
        if !page.is_empty() && points + n > page_points {
            break;
        }
        points += n;
        page.push(series);
    }
    let next = offset + page.len();
    let mut out = json!({"timeSeries": page});
    if next < output.len() {
        out["nextPageToken"] = json!(next.to_string());
    }
    Ok(out)
}

/// Every time series a ListTimeSeries request asks for, in order, as JSON.
fn compute(state: &State, project: &str, request: &Request) -> Result<Vec<Value>, ApiError> {
    let filter =
        Filter::parse(request.query("filter").ok_or_else(|| invalid("Field filter had an invalid value: empty"))?)?;
    let end =
        crate::parse_time(request.query("interval.endTime").ok_or_else(|| invalid("interval.endTime is required"))?)
            .map_err(invalid)?;
    let period_ms = match request.query("aggregation.alignmentPeriod") {
        Some(p) => p
            .strip_suffix('s')
            .and_then(|s| s.parse::<f64>().ok())
            .map(|s| (s * 1000.0) as i64)
            .filter(|p| *p >= 60_000)
            .ok_or_else(|| invalid(format!("The alignment period must be at least 60s, got {p:?}")))?,
        None => 60_000,
    };
    // The start time is optional: it defaults to the end time, which reads the one period that ends there.
    let start = match request.query("interval.startTime") {
        Some(start) => crate::parse_time(start).map_err(invalid)?,
        None => end - period_ms,
    };
    let aligner = enum_param(request.query("aggregation.perSeriesAligner"), ALIGNERS)?;
    let reducer = enum_param(request.query("aggregation.crossSeriesReducer"), REDUCERS)?;
    let group_by: Vec<String> = request.query_all("aggregation.groupByFields").into_iter().map(canonical_key).collect();
    let metric = filter.metric_type.clone();
    let (shape, series) = raw_points(state, project, &metric, start, end, &filter)?;
    // Per-series alignment.
    let aligned: Vec<(Labels, BTreeMap<i64, Val>)> = series
        .into_iter()
        .map(|(labels, points)| Ok((labels, align(shape, aligner, &points, period_ms)?)))
        .collect::<Result<_, ApiError>>()?;
    // Cross-series reduction.
    let output: Vec<(Labels, BTreeMap<i64, Val>)> = if reducer == "REDUCE_NONE" {
        aligned
    } else {
        let mut groups: BTreeMap<Labels, Vec<BTreeMap<i64, Val>>> = BTreeMap::new();
        for (labels, points) in aligned {
            let key: Labels = group_by.iter().filter_map(|f| labels.get(f).map(|v| (f.clone(), v.clone()))).collect();
            groups.entry(key).or_default().push(points);
        }
        groups
            .into_iter()
            .map(|(labels, members)| Ok((labels, reduce(reducer, &members)?)))
            .collect::<Result<_, ApiError>>()?
    };
    let (kind, value_type) = kinds(shape, aligner, reducer);
    let numbers = request.enums_as_numbers();
    Ok(output
        .iter()
        .map(|(labels, points)| series_json(&metric, labels, points, period_ms, (kind, value_type), numbers))
        .collect())
}

const ALIGNERS: &[(&str, i64)] = &[
    ("ALIGN_NONE", 0),
    ("ALIGN_DELTA", 1),
    ("ALIGN_RATE", 2),
    ("ALIGN_MIN", 10),
    ("ALIGN_MAX", 11),
    ("ALIGN_MEAN", 12),
    ("ALIGN_COUNT", 13),
    ("ALIGN_SUM", 14),
    ("ALIGN_PERCENTILE_99", 18),
    ("ALIGN_PERCENTILE_95", 19),
    ("ALIGN_PERCENTILE_50", 20),
    ("ALIGN_PERCENTILE_05", 21),
];
const REDUCERS: &[(&str, i64)] = &[
    ("REDUCE_NONE", 0),
    ("REDUCE_MEAN", 1),
    ("REDUCE_MIN", 2),
    ("REDUCE_MAX", 3),
    ("REDUCE_SUM", 4),
    ("REDUCE_COUNT", 6),
    ("REDUCE_PERCENTILE_99", 9),
    ("REDUCE_PERCENTILE_95", 10),
    ("REDUCE_PERCENTILE_50", 11),
    ("REDUCE_PERCENTILE_05", 12),
];

/// Reads an enum given as its name or its number; absent means the zero value.
fn enum_param(value: Option<&str>, table: &[(&'static str, i64)]) -> Result<&'static str, ApiError> {
    let Some(value) = value else { return Ok(table[0].0) };
    table
        .iter()
        .find(|(name, number)| *name == value || value.parse::<i64>().ok() == Some(*number))
        .map(|(name, _)| *name)
        .ok_or_else(|| invalid(format!("unsupported aggregation value {value:?}")))
}

/// The points of every series of `metric` in `[start, end)` that `filter` matches, by series labels. Linear in the
/// points of the interval: requests are kept in time order (the interval is found by bisection), and each
/// series' labels are built and matched once, not once per point (at 10,000 services, per point made one cycle's
/// queries take minutes).
fn raw_points(
    state: &State,
    project: &str,
    metric: &str,
    start: i64,
    end: i64,
    filter: &Filter,
) -> Result<(Shape, SeriesPoints), ApiError> {
    let locations: HashMap<&str, &str> = state
        .services
        .values()
        .filter(|s| s.project == project)
        .map(|s| (s.name.as_str(), s.location.as_str()))
        .collect();
    let mut series = Series { project, filter, locations, known: HashMap::new(), points: Vec::new() };
    let in_range = |at: i64| at >= start && at < end;
    let shape = match metric {
        REQUEST_COUNT | REQUEST_LATENCIES => {
            let requests = &state.run_requests;
            let (from, to) =
                (requests.partition_point(|r| r.at_ms < start), requests.partition_point(|r| r.at_ms < end));
            for r in requests[from..to.max(from)].iter().filter(|r| state.published(&r.service, &r.revision, r.at_ms)) {
                let value = if metric == REQUEST_COUNT { 1.0 } else { r.latency_ms };
                series.add(&r.service, &r.revision, r.status, r.at_ms, value, || {
                    vec![
                        ("metric.labels.response_code_class", format!("{}xx", r.status / 100)),
                        ("metric.labels.response_code", r.status.to_string()),
                    ]
                });
            }
            if metric == REQUEST_COUNT { Shape::Count } else { Shape::Distribution }
        }
        STARTUP_LATENCIES => {
            for s in state.startups.iter().filter(|s| in_range(s.at_ms)) {
                series.add(&s.service, &s.revision, 0, s.at_ms, s.latency_ms, Vec::new);
            }
            Shape::Distribution
        }
        INSTANCE_COUNT => {
            for (at, service, revision, count) in state.instance_samples.iter().filter(|(at, ..)| in_range(*at)) {
                series.add(service, revision, 0, *at, *count as f64, || {
                    vec![("metric.labels.state", "active".to_string())]
                });
            }
            Shape::Gauge
        }
        other => return Err(invalid(format!("metric type {other:?} is not simulated"))),
    };
    let mut out = SeriesPoints::new();
    for (labels, points) in series.points {
        out.entry(labels).or_default().extend(points);
    }
    Ok((shape, out))
}

/// Series being gathered: each (service, revision, variant) is labelled and matched against the filter once.
struct Series<'a> {
    project: &'a str,
    filter: &'a Filter,
    /// Each service of the project's location.
    locations: HashMap<&'a str, &'a str>,
    /// The series index of each (service, revision, variant), or None when the filter does not match it.
    known: HashMap<(&'a str, &'a str, u16), Option<usize>>,
    points: Vec<(Labels, Vec<(i64, f64)>)>,
}

impl<'a> Series<'a> {
    fn add(
        &mut self,
        service: &'a str,
        revision: &'a str,
        variant: u16,
        at: i64,
        value: f64,
        extra: impl FnOnce() -> Vec<(&'static str, String)>,
    ) {
        let index = match self.known.get(&(service, revision, variant)) {
            Some(index) => *index,
            None => {
                let index = self.labels(service, revision, extra()).map(|labels| {
                    self.points.push((labels, Vec::new()));
                    self.points.len() - 1
                });
                self.known.insert((service, revision, variant), index);
                index
            }
        };
        if let Some(index) = index {
            self.points[index].1.push((at, value));
        }
    }

    fn labels(&self, service: &str, revision: &str, extra: Vec<(&str, String)>) -> Option<Labels> {
        let location = self.locations.get(service)?;
        let mut l: Labels = [
            ("resource.type", RESOURCE_TYPE.to_string()),
            ("resource.labels.project_id", self.project.to_string()),
            ("resource.labels.location", location.to_string()),
            ("resource.labels.service_name", service.to_string()),
            ("resource.labels.revision_name", revision.to_string()),
            ("resource.labels.configuration_name", service.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        l.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        self.filter.matches(&l).then_some(l)
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
    values[rank.min(values.len()) - 1]
}

fn percentile_of(name: &str) -> Option<f64> {
    name.rsplit('_').next().and_then(|p| p.parse::<f64>().ok())
}

fn align(shape: Shape, aligner: &str, points: &[(i64, f64)], period_ms: i64) -> Result<BTreeMap<i64, Val>, ApiError> {
    let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (at, value) in points {
        buckets.entry(at.div_euclid(period_ms) * period_ms).or_default().push(*value);
    }
    buckets
        .into_iter()
        .map(|(bucket, mut values)| {
            let sum: f64 = values.iter().sum();
            let value = match (shape, aligner) {
                (Shape::Gauge, "ALIGN_DELTA" | "ALIGN_RATE") => {
                    return Err(invalid(format!("{aligner} is not valid for a GAUGE metric")));
                }
                (Shape::Count, "ALIGN_DELTA" | "ALIGN_SUM" | "ALIGN_NONE") => Val::Int(sum as i64),
                (Shape::Count, "ALIGN_RATE") => Val::Double(sum / (period_ms as f64 / 1000.0)),
                (Shape::Distribution, "ALIGN_DELTA" | "ALIGN_SUM" | "ALIGN_NONE") => Val::Dist(values),
                (Shape::Distribution, "ALIGN_RATE") => Val::Double(values.len() as f64 / (period_ms as f64 / 1000.0)),
                (_, "ALIGN_COUNT") => Val::Int(values.len() as i64),
                // MIN and MAX keep an integer metric's type.
                (Shape::Count | Shape::Gauge, "ALIGN_MIN") => {
                    Val::Int(values.iter().copied().fold(f64::INFINITY, f64::min) as i64)
                }
                (Shape::Count | Shape::Gauge, "ALIGN_MAX" | "ALIGN_NONE") => {
                    Val::Int(values.iter().copied().fold(f64::NEG_INFINITY, f64::max) as i64)
                }
                (_, "ALIGN_MIN") => Val::Double(values.iter().copied().fold(f64::INFINITY, f64::min)),
                (_, "ALIGN_MAX") => Val::Double(values.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                (_, "ALIGN_MEAN") => Val::Double(sum / values.len() as f64),
                (Shape::Distribution, p) if p.starts_with("ALIGN_PERCENTILE") => {
                    Val::Double(percentile(&mut values, percentile_of(p).unwrap_or(50.0)))
                }
                (_, other) => return Err(invalid(format!("{other} is not valid for this metric"))),
            };
            Ok((bucket, value))
        })
        .collect()
}

fn reduce(reducer: &str, members: &[BTreeMap<i64, Val>]) -> Result<BTreeMap<i64, Val>, ApiError> {
    let mut by_period: BTreeMap<i64, Vec<&Val>> = BTreeMap::new();
    for member in members {
        for (at, value) in member {
            by_period.entry(*at).or_default().push(value);
        }
    }
    by_period
        .into_iter()
        .map(|(at, values)| {
            let numbers: Vec<f64> = values.iter().map(|v| v.number()).collect();
            let merged = || {
                values
                    .iter()
                    .flat_map(|v| if let Val::Dist(d) = v { d.clone() } else { Vec::new() })
                    .collect::<Vec<f64>>()
            };
            let distributions = values.iter().all(|v| matches!(v, Val::Dist(_)));
            let integers = values.iter().all(|v| matches!(v, Val::Int(_)));
            let value = match reducer {
                "REDUCE_SUM" if distributions => Val::Dist(merged()),
                "REDUCE_SUM" if integers => Val::Int(numbers.iter().sum::<f64>() as i64),
                "REDUCE_SUM" => Val::Double(numbers.iter().sum()),
                "REDUCE_COUNT" => Val::Int(values.len() as i64),
                "REDUCE_MEAN" => Val::Double(numbers.iter().sum::<f64>() / numbers.len() as f64),
                "REDUCE_MIN" if integers => Val::Int(numbers.iter().copied().fold(f64::INFINITY, f64::min) as i64),
                "REDUCE_MAX" if integers => Val::Int(numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max) as i64),
                "REDUCE_MIN" => Val::Double(numbers.iter().copied().fold(f64::INFINITY, f64::min)),
                "REDUCE_MAX" => Val::Double(numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                p if p.starts_with("REDUCE_PERCENTILE") => {
                    let mut sample = if distributions { merged() } else { numbers };
                    Val::Double(percentile(&mut sample, percentile_of(p).unwrap_or(50.0)))
                }
                other => return Err(invalid(format!("{other} is not supported"))),
            };
            Ok((at, value))
        })
        .collect()
}

/// (metricKind, valueType) of the output: GAUGE = 1, DELTA = 2; INT64 = 2, DOUBLE = 3, DISTRIBUTION = 5. MIN and
/// MAX keep the input's value type (an INT64 count stays INT64); rates, means and percentiles are DOUBLE.
fn kinds(shape: Shape, aligner: &str, reducer: &str) -> (i64, i64) {
    let min_max = matches!(aligner, "ALIGN_MIN" | "ALIGN_MAX") || matches!(reducer, "REDUCE_MIN" | "REDUCE_MAX");
    let ratio = aligner.starts_with("ALIGN_PERCENTILE")
        || matches!(aligner, "ALIGN_RATE" | "ALIGN_MEAN")
        || reducer == "REDUCE_MEAN"
        || reducer.starts_with("REDUCE_PERCENTILE");
    match shape {
        _ if ratio => (1, 3),
        Shape::Distribution if min_max => (1, 3),
        Shape::Count | Shape::Gauge if min_max => (1, 2),
        Shape::Gauge => (1, 2),
        Shape::Count => (2, 2),
        Shape::Distribution if aligner == "ALIGN_COUNT" || reducer == "REDUCE_COUNT" => (2, 2),
        Shape::Distribution => (2, 5),
    }
}

/// Cloud Run's latency distributions: exponential buckets (`scale` × `growth`^i), with an underflow and an overflow
/// bucket around the finite ones.
const BUCKETS: (usize, f64, f64) = (66, 1.4, 1.0);

/// A distribution's bucket counts under [`BUCKETS`], trailing empty buckets left out as the API does.
fn bucket_counts(values: &[f64]) -> Vec<Value> {
    let (finite, growth, scale) = BUCKETS;
    let mut counts = vec![0u64; finite + 2];
    for value in values {
        let index = if *value < scale { 0 } else { ((value / scale).ln() / growth.ln()).floor() as usize + 1 };
        counts[index.min(finite + 1)] += 1;
    }
    while counts.last() == Some(&0) {
        counts.pop();
    }
    counts.into_iter().map(|c| json!(c.to_string())).collect()
}

fn series_json(
    metric: &str,
    labels: &Labels,
    points: &BTreeMap<i64, Val>,
    period_ms: i64,
    (kind, value_type): (i64, i64),
    numbers: bool,
) -> Value {
    let pick = |prefix: &str| -> BTreeMap<String, String> {
        labels.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone()))).collect()
    };
    let value_type = match points.values().next() {
        Some(Val::Int(_)) => 2,
        Some(Val::Double(_)) => 3,
        Some(Val::Dist(_)) => 5,
        None => value_type,
    };
    let points: Vec<Value> = points
        .iter()
        .rev()
        .map(|(at, value)| {
            let end = crate::format_time(at + period_ms);
            let start = if kind == 1 { end.clone() } else { crate::format_time(*at) };
            let value = match value {
                Val::Int(i) => json!({"int64Value": i.to_string()}),
                Val::Double(d) => json!({"doubleValue": d}),
                Val::Dist(values) => {
                    let count = values.len();
                    let mean = if count == 0 { 0.0 } else { values.iter().sum::<f64>() / count as f64 };
                    let deviation: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
                    let (finite, growth, scale) = BUCKETS;
                    json!({"distributionValue": {
                        "count": count.to_string(),
                        "mean": mean,
                        "sumOfSquaredDeviation": deviation,
                        "bucketOptions": {"exponentialBuckets": {
                            "numFiniteBuckets": finite, "growthFactor": growth, "scale": scale,
                        }},
                        "bucketCounts": bucket_counts(values),
                    }})
                }
            };
            json!({"interval": {"startTime": start, "endTime": end}, "value": value})
        })
        .collect();
    let kind = match kind {
        1 => google_enum(numbers, 1, "GAUGE"),
        _ => google_enum(numbers, 2, "DELTA"),
    };
    let value_type = match value_type {
        2 => google_enum(numbers, 2, "INT64"),
        3 => google_enum(numbers, 3, "DOUBLE"),
        _ => google_enum(numbers, 5, "DISTRIBUTION"),
    };
    json!({
        "metric": {"type": metric, "labels": pick("metric.labels.")},
        "resource": {"type": RESOURCE_TYPE, "labels": pick("resource.labels.")},
        "metricKind": kind,
        "valueType": value_type,
        "points": points,
        "unit": if metric.contains("latencies") { "ms" } else { "1" },
    })
}

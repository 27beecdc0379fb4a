//! Cloud Run's metrics from Cloud Monitoring: one `ListTimeSeries` call per metric (the [`plan`]) for every
//! guarded service of a project, grouped by service and revision, then put back per guard. Slow-request counts
//! come from one more call: `request_latencies` summed per revision and minute is the merged distribution, and the
//! requests above a threshold are its buckets above it (interpolated within the bucket holding the threshold).

use super::gcp::fail;
use super::{Deployment, GuardMetrics, ProviderError, SlowRequest};
use crate::config::{Guard, Target};
use crate::model::evaluation::{MetricKind, MetricSeries, Revision, Window, slow_requests_metric};
use google_cloud_monitoring_v3::client::MetricService;
use google_cloud_monitoring_v3::model::TypedValue;
use google_cloud_monitoring_v3::model::aggregation::{Aligner, Reducer};
use google_cloud_monitoring_v3::model::{Aggregation, TimeInterval};
use std::collections::{BTreeMap, BTreeSet};

/// (service, revision, canonical metric).
type SeriesKey = (String, String, &'static str);
/// Samples `(ms, value)` by series.
type Samples = BTreeMap<SeriesKey, Vec<(i64, f64)>>;
/// Slow-request samples `(ms, count)` by (service, revision, threshold).
type SlowSamples = BTreeMap<(String, String, u32), Vec<(i64, f64)>>;

/// One `ListTimeSeries` query: a metric type, aligned per minute and reduced per revision, feeding a canonical
/// metric.
struct Query {
    metric_type: &'static str,
    aligner: Aligner,
    reducer: Reducer,
    canonical: &'static str,
    /// `request_count` is grouped by response code class too: every class feeds `requests`, 5xx also `errors`.
    by_response_class: bool,
}

/// What ripcord asks Cloud Monitoring, and the canonical metric each answer becomes. Monitoring has no
/// 90th-percentile reducer, so `latency_p90` is absent on Cloud Run; percentiles are of the merged distribution.
fn plan() -> [Query; 6] {
    let query = |metric_type, aligner, reducer, canonical| Query {
        metric_type,
        aligner,
        reducer,
        canonical,
        by_response_class: false,
    };
    [
        Query {
            by_response_class: true,
            ..query("run.googleapis.com/request_count", Aligner::AlignDelta, Reducer::ReduceSum, "requests")
        },
        query("run.googleapis.com/request_latencies", Aligner::AlignDelta, Reducer::ReducePercentile50, "latency_p50"),
        query("run.googleapis.com/request_latencies", Aligner::AlignDelta, Reducer::ReducePercentile95, "latency_p95"),
        query("run.googleapis.com/request_latencies", Aligner::AlignDelta, Reducer::ReducePercentile99, "latency_p99"),
        query("run.googleapis.com/container/instance_count", Aligner::AlignMax, Reducer::ReduceSum, "instances"),
        query("run.googleapis.com/container/startup_latencies", Aligner::AlignDelta, Reducer::ReduceSum, "cold_starts"),
    ]
}

/// Metrics of every guard in `requests` (services of one project) over `windows`.
pub(super) async fn metrics(
    monitoring: Client<'_>,
    requests: &[(&Guard, &Deployment)],
    windows: &[Window],
) -> Result<Vec<GuardMetrics>, ProviderError> {
    let Some(scope) = Scope::of(requests.iter().map(|(g, _)| *g), windows)? else { return Ok(Vec::new()) };
    let mut samples = Samples::new();
    for query in plan() {
        let feeds = |service: &str, revision: &str, class: &str, at: i64, value: &TypedValue| {
            let Some(value) = value
                .int64_value()
                .map(|i| *i as f64)
                .or_else(|| value.double_value().copied())
                .or_else(|| value.distribution_value().map(|d| d.count as f64))
            else {
                return;
            };
            let names: &[&'static str] = match (query.by_response_class, class) {
                (true, "5xx") => &[query.canonical, "errors"],
                _ => std::slice::from_ref(&query.canonical),
            };
            for name in names {
                samples.entry((service.to_string(), revision.to_string(), name)).or_default().push((at, value));
            }
        };
        each_point(monitoring, &scope, &query, feeds).await?;
    }
    count_missing_errors_as_zero(&mut samples);
    Ok(requests.iter().map(|(guard, deployment)| assemble(guard, deployment, &samples, windows)).collect())
}

/// The slow-request counts of every guard in `requests` (services of one project) over `windows`: one call for
/// the merged latency distribution per revision and minute, counted above each guard's thresholds.
pub(super) async fn slow_requests(
    monitoring: Client<'_>,
    requests: &[SlowRequest<'_>],
    windows: &[Window],
) -> Result<Vec<GuardMetrics>, ProviderError> {
    let Some(scope) = Scope::of(requests.iter().map(|r| r.guard), windows)? else { return Ok(Vec::new()) };
    let thresholds: BTreeMap<&str, &[u32]> =
        requests.iter().filter_map(|r| cloud_run(r.guard).map(|(_, _, s)| (s, r.thresholds))).collect();
    let query = Query {
        metric_type: "run.googleapis.com/request_latencies",
        aligner: Aligner::AlignDelta,
        reducer: Reducer::ReduceSum,
        canonical: "slow_requests",
        by_response_class: false,
    };
    let mut samples = SlowSamples::new();
    let counts = |service: &str, revision: &str, _: &str, at: i64, value: &TypedValue| {
        let (Some(distribution), Some(wanted)) = (value.distribution_value(), thresholds.get(service)) else { return };
        // The bounds of the finite buckets, lowest first: bucket 0 is below the first bound (underflow), bucket i
        // in 1..=N between bounds i − 1 and i, bucket N + 1 above the last (overflow).
        let bounds = distribution.bucket_options.as_ref().and_then(|options| {
            if let Some(e) = options.exponential_buckets() {
                return Some((0..=e.num_finite_buckets).map(|i| e.scale * e.growth_factor.powi(i)).collect());
            }
            if let Some(l) = options.linear_buckets() {
                return Some((0..=l.num_finite_buckets).map(|i| l.offset + l.width * f64::from(i)).collect());
            }
            options.explicit_buckets().map(|e| e.bounds.clone())
        });
        let Some(bounds): Option<Vec<f64>> = bounds else { return };
        for threshold in *wanted {
            let count = count_above(&bounds, &distribution.bucket_counts, f64::from(*threshold));
            samples.entry((service.to_string(), revision.to_string(), *threshold)).or_default().push((at, count));
        }
    };
    each_point(monitoring, &scope, &query, counts).await?;
    Ok(requests
        .iter()
        .map(|request| {
            let service = cloud_run(request.guard).map(|(_, _, s)| s).unwrap_or_default();
            let revision = |id: &str, share: f64| Revision {
                id: id.to_string(),
                traffic_share: share.clamp(0.0, 1.0),
                metrics: request
                    .thresholds
                    .iter()
                    .filter_map(|t| samples.get(&(service.to_string(), id.to_string(), *t)).map(|points| (t, points)))
                    .map(|(t, points)| {
                        let name = slow_requests_metric(*t);
                        MetricSeries::split(&name, MetricKind::Counter, points.iter().copied(), windows)
                    })
                    .collect(),
            };
            let d = request.deployment;
            GuardMetrics {
                baseline: d.baseline.as_ref().map(|b| revision(b, 1.0 - d.candidate_share)),
                candidate: revision(&d.candidate, d.candidate_share),
                peak_concurrency: None,
                total_requests: Vec::new(),
            }
        })
        .collect())
}

/// The number of values above `threshold` in a histogram with finite-bucket `bounds` (lowest first) and `counts` (trailing
/// empty buckets may be left out): the buckets wholly above it, and of the bucket holding it the share above it,
/// log-linear between positive bounds (latencies spread about evenly in log scale within a bucket), linear otherwise.
/// Overflow values count as above a threshold within the bounds; none are counted above the last bound.
pub fn count_above(bounds: &[f64], counts: &[i64], threshold: f64) -> f64 {
    let mut above = 0.0;
    for (bucket, count) in counts.iter().enumerate() {
        let count = *count as f64;
        let lower =
            if bucket == 0 { f64::NEG_INFINITY } else { bounds.get(bucket - 1).copied().unwrap_or(f64::INFINITY) };
        let upper = bounds.get(bucket).copied().unwrap_or(f64::INFINITY);
        if lower >= threshold {
            above += count;
        } else if threshold < upper && lower.is_finite() && upper.is_finite() {
            let share = if lower > 0.0 {
                (upper.ln() - threshold.ln()) / (upper.ln() - lower.ln())
            } else {
                (upper - threshold) / (upper - lower)
            };
            above += count * share;
        }
    }
    above
}

/// What one project's queries share: the resource filter naming the guarded services, their names, the project
/// and the interval covering the windows.
struct Scope {
    project: String,
    filter: String,
    wanted: BTreeSet<String>,
    interval: TimeInterval,
}

impl Scope {
    /// `None` when no guard is on Cloud Run.
    fn of<'a>(guards: impl Iterator<Item = &'a Guard>, windows: &[Window]) -> Result<Option<Self>, ProviderError> {
        let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
            return Err(fail("ListTimeSeries", "-", "no windows"));
        };
        let targets: Vec<(&str, &str, &str)> = guards.filter_map(cloud_run).collect();
        let Some(project) = targets.first().map(|(p, _, _)| p.to_string()) else { return Ok(None) };
        let wanted: BTreeSet<String> = targets.iter().map(|(_, _, s)| s.to_string()).collect();
        let locations: BTreeSet<String> = targets.iter().map(|(_, l, _)| quoted(l)).collect();
        let locations = locations.into_iter().collect::<Vec<_>>().join(",");
        let names: Vec<String> = wanted.iter().map(|s| quoted(s)).collect();
        // The filter travels in the URL: past a few kilobytes of names, ask for every service of the locations and
        // keep the guarded ones (a 66 KB URL of 4,400 names was refused by the HTTP client and failed every guard).
        let filter = if names.iter().map(|n| n.len() + 1).sum::<usize>() <= MAX_FILTER_NAMES_BYTES {
            format!(
                "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = one_of({}) AND resource.labels.location = one_of({locations})",
                names.join(",")
            )
        } else {
            format!("resource.type = \"cloud_run_revision\" AND resource.labels.location = one_of({locations})")
        };
        let interval = TimeInterval::new()
            .set_start_time(google_cloud_wkt::Timestamp::clamp(first.start.div_euclid(1000), 0))
            .set_end_time(google_cloud_wkt::Timestamp::clamp(last.end.div_euclid(1000), 0));
        Ok(Some(Self { project: format!("projects/{project}"), filter, wanted, interval }))
    }
}

/// Most bytes of quoted service names one filter carries (it goes in the request's URL).
const MAX_FILTER_NAMES_BYTES: usize = 8 * 1024;
/// The quota of Cloud Monitoring's time-series queries, per project (`quota.rs`).
pub(super) const MONITORING_READ: &str = "monitoring.read";
/// The Monitoring client and the project's budget its queries take turns from.
type Client<'a> = (&'a MetricService, &'a super::quota::Budget);

/// Points per page (the API's `pageSize` counts points in its FULL view). Not the API's largest, 100,000: one page
/// that size held every series of a 10,000-service project at once and took the cycle's peak memory from 129 to
/// 146 MiB; at 10,000 a metric of such a project takes about ten pages, and a 1,000-service one still one.
const PAGE_SIZE: i32 = 10_000;

/// Runs one query (following pages) and hands every point of the `wanted` services to `point` with its service,
/// revision, response code class (empty when not grouped by it) and period start.
async fn each_point(
    monitoring: Client<'_>,
    scope: &Scope,
    query: &Query,
    mut point: impl FnMut(&str, &str, &str, i64, &TypedValue),
) -> Result<(), ProviderError> {
    let mut fields = vec!["resource.labels.service_name".to_string(), "resource.labels.revision_name".to_string()];
    if query.by_response_class {
        fields.push("metric.labels.response_code_class".into());
    }
    let aggregation = Aggregation::new()
        .set_alignment_period(google_cloud_wkt::Duration::clamp(60, 0))
        .set_per_series_aligner(query.aligner.clone())
        .set_cross_series_reducer(query.reducer.clone())
        .set_group_by_fields(fields);
    let (monitoring, budget) = monitoring;
    let mut token = String::new();
    loop {
        // Pages by hand: each page is a query that takes its turn.
        budget.turn(MONITORING_READ, "ListTimeSeries", query.metric_type).await?;
        let page = monitoring
            .list_time_series()
            .set_name(&scope.project)
            .set_filter(format!("metric.type = \"{}\" AND {}", query.metric_type, scope.filter))
            .set_interval(scope.interval.clone())
            .set_aggregation(aggregation.clone())
            .set_page_size(PAGE_SIZE)
            .set_page_token(std::mem::take(&mut token))
            .send()
            .await
            .map_err(|e| fail("ListTimeSeries", query.metric_type, e))?;
        for ts in &page.time_series {
            each_series(&scope.wanted, ts, &mut point);
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        token = page.next_page_token;
    }
}

/// Hands every point of `ts`, a series of one of the `wanted` services, to `point` (see [`each_point`]).
fn each_series(
    wanted: &BTreeSet<String>,
    ts: &google_cloud_monitoring_v3::model::TimeSeries,
    point: &mut impl FnMut(&str, &str, &str, i64, &TypedValue),
) {
    {
        let labels = ts.resource.as_ref().map(|r| r.labels.clone()).unwrap_or_default();
        let (Some(service), Some(revision)) = (labels.get("service_name"), labels.get("revision_name")) else {
            return;
        };
        if !wanted.contains(service) {
            return;
        }
        let class = ts.metric.as_ref().and_then(|m| m.labels.get("response_code_class")).cloned().unwrap_or_default();
        for p in &ts.points {
            let (Some(end), Some(value)) = (p.interval.as_ref().and_then(|i| i.end_time.as_ref()), p.value.as_ref())
            else {
                continue;
            };
            // Points carry [start, end); windows hold a point by its start.
            point(service, revision, &class, end.seconds() * 1000 - 60_000, value);
        }
    }
}

/// `errors` is present (as zeros) wherever requests were counted without a 5xx series: no 5xx is zero errors,
/// not an absent metric.
fn count_missing_errors_as_zero(samples: &mut Samples) {
    let counted: Vec<(SeriesKey, Vec<(i64, f64)>)> = samples
        .iter()
        .filter(|((_, _, m), _)| *m == "requests")
        .map(|((s, r, _), points)| {
            ((s.clone(), r.clone(), "errors"), points.iter().map(|(at, _)| (*at, 0.0)).collect())
        })
        .collect();
    for (key, zeros) in counted {
        let errors = samples.entry(key).or_default();
        let have: BTreeSet<i64> = errors.iter().map(|(at, _)| *at).collect();
        errors.extend(zeros.into_iter().filter(|(at, _)| !have.contains(at)));
    }
}

/// One guard's metrics: its baseline's and candidate's series, and its instances in the last window (the sum over
/// its revisions: what the deployment needs after a pin).
fn assemble(guard: &Guard, deployment: &Deployment, samples: &Samples, windows: &[Window]) -> GuardMetrics {
    let service = cloud_run(guard).map(|(_, _, s)| s).unwrap_or_default();
    let revision = |id: &str, share: f64| {
        let metrics = of_service(samples, service)
            .filter(|((_, r, _), _)| r == id)
            .map(|((_, _, name), points)| {
                MetricSeries::split(name, MetricKind::for_metric(name), points.iter().copied(), windows)
            })
            .collect();
        Revision { id: id.to_string(), traffic_share: share.clamp(0.0, 1.0), metrics }
    };
    let recent = windows.last().map_or(i64::MIN, |w| w.start);
    let peak = of_service(samples, service)
        .filter(|((_, _, m), _)| *m == "instances")
        .map(|(_, points)| points.iter().filter(|(at, _)| *at >= recent).map(|(_, v)| *v).fold(0.0, f64::max))
        .sum::<f64>();
    // Every request of the service, whatever revision served it: tells a cached view of its traffic from one
    // that changed.
    let mut total: BTreeMap<i64, f64> = BTreeMap::new();
    for (_, points) in of_service(samples, service).filter(|((_, _, m), _)| *m == "requests") {
        for (at, value) in points {
            *total.entry(*at).or_default() += value;
        }
    }
    GuardMetrics {
        baseline: deployment.baseline.as_ref().map(|b| revision(b, 1.0 - deployment.candidate_share)),
        candidate: revision(&deployment.candidate, deployment.candidate_share),
        peak_concurrency: (peak > 0.0).then_some(peak),
        total_requests: total.into_iter().collect(),
    }
}

/// The series of one service: a range of the map, not a scan (a scan per guard made 10,000 services quadratic).
fn of_service<'a>(
    samples: &'a Samples,
    service: &'a str,
) -> impl Iterator<Item = (&'a SeriesKey, &'a Vec<(i64, f64)>)> {
    samples.range((service.to_string(), String::new(), "")..).take_while(move |((s, _, _), _)| s == service)
}

/// (project, location, service) of a Cloud Run guard.
fn cloud_run(guard: &Guard) -> Option<(&str, &str, &str)> {
    match &guard.target {
        Target::CloudRun { project, location, service } => Some((project, location, service)),
        Target::Lambda { .. } => None,
    }
}

fn quoted(value: &str) -> String {
    format!("\"{value}\"")
}

#[cfg(test)]
mod tests {
    use super::count_above;

    #[test]
    fn values_above_a_threshold_are_the_buckets_above_it_and_a_share_of_its_own() {
        // Bounds 1, 2, 4, 8: buckets (-inf,1) [1,2) [2,4) [4,8) [8,inf).
        let bounds = [1.0, 2.0, 4.0, 8.0];
        let counts = [1, 2, 4, 8, 16];
        assert_eq!(count_above(&bounds, &counts, 4.0), 24.0, "on a bound: exactly the buckets above");
        // Halfway in log scale through [4, 8) (at 4 sqrt 2): half of that bucket.
        let mid = 4.0 * std::f64::consts::SQRT_2;
        assert!((count_above(&bounds, &counts, mid) - 20.0).abs() < 1e-9);
        assert_eq!(count_above(&bounds, &counts[..3], 4.0), 0.0, "trailing empty buckets left out");
        assert_eq!(count_above(&bounds, &counts, 100.0), 0.0, "above the last bound nothing is counted");
        assert_eq!(count_above(&bounds, &counts, 0.5), 30.0, "the underflow bucket is not split");
    }
}

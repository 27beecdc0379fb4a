//! Cloud Run's metrics from Cloud Monitoring: one `ListTimeSeries` call per metric (the [`plan`]) for every
//! guarded service of a project, grouped by service and revision, then put back per guard.

use super::gcp::fail;
use super::{Deployment, GuardMetrics, ProviderError};
use crate::config::{Guard, Target};
use crate::evaluation::{MetricKind, MetricSeries, Revision, Window};
use google_cloud_gax::paginator::ItemPaginator;
use google_cloud_monitoring_v3::client::MetricService;
use google_cloud_monitoring_v3::model::aggregation::{Aligner, Reducer};
use google_cloud_monitoring_v3::model::{Aggregation, TimeInterval};
use std::collections::{BTreeMap, BTreeSet};

/// (service, revision, canonical metric).
type SeriesKey = (String, String, &'static str);
/// Samples `(ms, value)` by series.
type Samples = BTreeMap<SeriesKey, Vec<(i64, f64)>>;

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
    monitoring: &MetricService,
    requests: &[(&Guard, &Deployment)],
    windows: &[Window],
) -> Result<Vec<GuardMetrics>, ProviderError> {
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        return Err(fail("ListTimeSeries", "-", "no windows"));
    };
    let Some(project) = requests.iter().find_map(|(g, _)| cloud_run(g).map(|(p, _, _)| p)) else {
        return Ok(Vec::new());
    };
    let wanted: BTreeSet<String> =
        requests.iter().filter_map(|(g, _)| cloud_run(g)).map(|(_, _, s)| s.to_string()).collect();
    let locations: BTreeSet<String> =
        requests.iter().filter_map(|(g, _)| cloud_run(g)).map(|(_, l, _)| quoted(l)).collect();
    let locations = locations.into_iter().collect::<Vec<_>>().join(",");
    let names: Vec<String> = wanted.iter().map(|s| quoted(s)).collect();
    // The filter travels in the URL: past a few kilobytes of names, ask for every service of the locations and
    // keep the guarded ones (a 66 KB URL of 4,400 names was refused by the HTTP client and failed every guard).
    let scope = if names.iter().map(|n| n.len() + 1).sum::<usize>() <= MAX_FILTER_NAMES_BYTES {
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
    let mut samples = Samples::new();
    for query in plan() {
        fetch(monitoring, &format!("projects/{project}"), &scope, &interval, &query, &wanted, &mut samples).await?;
    }
    count_missing_errors_as_zero(&mut samples);
    Ok(requests.iter().map(|(guard, deployment)| assemble(guard, deployment, &samples, windows)).collect())
}

/// Most bytes of quoted service names one filter carries (it goes in the request's URL).
const MAX_FILTER_NAMES_BYTES: usize = 8 * 1024;
/// Points per page (the API's `pageSize` counts points in its FULL view). Not the API's largest, 100,000: one page
/// that size held every series of a 10,000-service project at once and took the cycle's peak memory from 129 to
/// 146 MiB; at 10,000 a metric of such a project takes about ten pages, and a 1,000-service one still one.
const PAGE_SIZE: i32 = 10_000;

/// Runs one query (following pages) and adds the points of the `wanted` services to `samples`.
async fn fetch(
    monitoring: &MetricService,
    project: &str,
    scope: &str,
    interval: &TimeInterval,
    query: &Query,
    wanted: &BTreeSet<String>,
    samples: &mut Samples,
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
    let mut series = monitoring
        .list_time_series()
        .set_name(project)
        .set_filter(format!("metric.type = \"{}\" AND {scope}", query.metric_type))
        .set_interval(interval.clone())
        .set_aggregation(aggregation)
        .set_page_size(PAGE_SIZE)
        .by_item();
    while let Some(ts) = series.next().await {
        let ts = ts.map_err(|e| fail("ListTimeSeries", query.metric_type, e))?;
        let labels = ts.resource.as_ref().map(|r| r.labels.clone()).unwrap_or_default();
        let (Some(service), Some(revision)) = (labels.get("service_name"), labels.get("revision_name")) else {
            continue;
        };
        if !wanted.contains(service) {
            continue;
        }
        let class = ts.metric.as_ref().and_then(|m| m.labels.get("response_code_class")).cloned().unwrap_or_default();
        let feeds: &[&'static str] = match (query.by_response_class, class.as_str()) {
            (true, "5xx") => &[query.canonical, "errors"],
            _ => std::slice::from_ref(&query.canonical),
        };
        for point in &ts.points {
            let Some(end) = point.interval.as_ref().and_then(|i| i.end_time.as_ref()) else { continue };
            // Points carry [start, end); windows hold a point by its start.
            let at = end.seconds() * 1000 - 60_000;
            let Some(value) = point.value.as_ref().and_then(|v| {
                v.int64_value()
                    .map(|i| *i as f64)
                    .or_else(|| v.double_value().copied())
                    .or_else(|| v.distribution_value().map(|d| d.count as f64))
            }) else {
                continue;
            };
            for name in feeds {
                samples.entry((service.clone(), revision.clone(), name)).or_default().push((at, value));
            }
        }
    }
    Ok(())
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
    GuardMetrics {
        baseline: deployment.baseline.as_ref().map(|b| revision(b, 1.0 - deployment.candidate_share)),
        candidate: revision(&deployment.candidate, deployment.candidate_share),
        peak_concurrency: (peak > 0.0).then_some(peak),
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

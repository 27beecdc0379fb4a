//! Lambda's metrics from CloudWatch: `AWS/Lambda` per executed version (dimensions `FunctionName`, `Resource`,
//! `ExecutedVersion`), every query of every guard of a region batched into as few `GetMetricData` calls as the
//! 500-query limit allows, each answer put back where it belongs. Slow-request counts are `Duration`'s trimmed
//! count above a threshold (`TC(T:)`: the invocations that took longer than T ms), the same batching.

use super::aws::fail;
use super::quota::Budget;
use super::{Deployment, ERROR_RISE_RECENT_MS, GuardMetrics, MetricsAnswer, ProviderError, SlowRequest};
use crate::config::Guard;
use crate::model::evaluation::{MetricKind, MetricSeries, Revision, Window, slow_requests_metric};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use std::collections::BTreeMap;

/// GetMetricData accepts at most this many queries per call.
pub const MAX_QUERIES_PER_CALL: usize = 500;
/// Metric period: CloudWatch's standard resolution for Lambda.
const PERIOD_S: i32 = 60;

/// Canonical metric → (CloudWatch metric name, statistic).
const CANONICAL: [(&str, &str, &str); 8] = [
    ("requests", "Invocations", "Sum"),
    ("errors", "Errors", "Sum"),
    ("throttles", "Throttles", "Sum"),
    ("latency_p50", "Duration", "p50"),
    ("latency_p90", "Duration", "p90"),
    ("latency_p95", "Duration", "p95"),
    ("latency_p99", "Duration", "p99"),
    ("instances", "ConcurrentExecutions", "Maximum"),
];

/// Metrics of every guard in `requests` over `windows`, in as few calls as the query limit allows. The queries are
/// planned guard by guard as the calls go out, so memory holds one call's queries, not the fleet's (170,000
/// queries planned up front for 10,000 guards once held 73 MiB). A call that fails (after the SDK's retries) is
/// tried again as two calls of half its queries, down to [`MIN_RETRY_QUERIES`]; what still fails fails only the
/// guards whose queries it carried.
pub(super) async fn metrics(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    budget: &Budget,
    requests: &[(&Guard, &Deployment)],
    windows: &[Window],
) -> Vec<MetricsAnswer> {
    let planned = requests.iter().enumerate().flat_map(|(index, (guard, deployment))| plan(index, guard, deployment));
    fetch((cloudwatch, budget), requests.iter().map(|(_, d)| *d), windows, planned).await
}

/// The slow-request counts of every guard in `requests` over `windows`: one `TC(T:)` query of `Duration` per
/// threshold and revision, batched and retried as [`metrics`].
pub(super) async fn slow_requests(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    budget: &Budget,
    requests: &[SlowRequest<'_>],
    windows: &[Window],
) -> Vec<MetricsAnswer> {
    let planned = requests.iter().enumerate().flat_map(|(index, request)| plan_slow(index, request));
    fetch((cloudwatch, budget), requests.iter().map(|r| r.deployment), windows, planned).await
}

/// How much each guard's alias-wide error ratio rose: its `Errors` and `Invocations` through the alias (any
/// version: no read of the alias needed) over the last hour, the last [`ERROR_RISE_RECENT_MS`] against the rest,
/// two queries a guard, batched. A call that fails leaves its guards at 0: this only orders a fresh process's reads.
pub(super) async fn error_rises(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    budget: &Budget,
    guards: &[&Guard],
    now: i64,
) -> Vec<f64> {
    let span = (now - 60 * 60_000, now);
    let recent_from = now - ERROR_RISE_RECENT_MS;
    let mut rises = vec![0.0; guards.len()];
    for (chunk_index, chunk) in guards.chunks(MAX_QUERIES_PER_CALL / 2).enumerate() {
        let queries = chunk
            .iter()
            .flat_map(|guard| {
                let (function, alias) = super::aws::target(guard);
                let resource = format!("{function}:{alias}");
                let whole = [("FunctionName", function), ("Resource", resource.as_str())];
                [
                    QuerySpec::new("AWS/Lambda", "Errors", "Sum", &whole),
                    QuerySpec::new("AWS/Lambda", "Invocations", "Sum", &whole),
                ]
            })
            .enumerate()
            .map(|(i, spec)| spec.query(i))
            .collect();
        let Ok(samples) = get_metric_data((cloudwatch, budget), queries, span).await else { continue };
        // (errors, requests) before and in the recent span.
        let sums = |index: usize| {
            let (mut before, mut recent) = (0.0, 0.0);
            for (at, value) in samples.get(&index).into_iter().flatten() {
                *(if *at >= recent_from { &mut recent } else { &mut before }) += value;
            }
            (before, recent)
        };
        for i in 0..chunk.len() {
            let ((errors_before, errors_recent), (requests_before, requests_recent)) = (sums(2 * i), sums(2 * i + 1));
            rises[chunk_index * (MAX_QUERIES_PER_CALL / 2) + i] =
                super::error_rise((errors_before, requests_before), (errors_recent, requests_recent));
        }
    }
    rises
}

/// Runs the `planned` queries of the guards whose deployments are `deployments` (in order) over `windows`.
async fn fetch<'a>(
    cloudwatch: Client<'_>,
    deployments: impl Iterator<Item = &'a Deployment>,
    windows: &[Window],
    mut planned: impl Iterator<Item = (Slot, QuerySpec)>,
) -> Vec<MetricsAnswer> {
    let deployments: Vec<&Deployment> = deployments.collect();
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        let error = ProviderError {
            operation: "GetMetricData",
            resource: "-".into(),
            message: "no windows".into(),
            ..Default::default()
        };
        return deployments.iter().map(|_| Err(error.clone())).collect();
    };
    let span = (first.start, last.end);
    let mut out: Vec<MetricsAnswer> = deployments
        .iter()
        .map(|d| {
            Ok(GuardMetrics {
                baseline: d.baseline.as_ref().map(|b| revision(b, 1.0 - d.candidate_share)),
                candidate: revision(&d.candidate, d.candidate_share),
                peak_concurrency: None,
                total_requests: Vec::new(),
            })
        })
        .collect();
    loop {
        let chunk: Vec<(Slot, QuerySpec)> = planned.by_ref().take(MAX_QUERIES_PER_CALL).collect();
        if chunk.is_empty() {
            break;
        }
        let mut calls = vec![chunk];
        while let Some(call) = calls.pop() {
            let queries: Vec<MetricDataQuery> = call.iter().enumerate().map(|(i, (_, spec))| spec.query(i)).collect();
            match get_metric_data(cloudwatch, queries, span).await {
                Ok(samples) => assemble(&mut out, &call, samples, windows),
                // A throttle or a used-up quota: halving the call would only make more calls.
                Err(error) if call.len() > MIN_RETRY_QUERIES && !error.throttled => {
                    let mut first_half = call;
                    let second_half = first_half.split_off(first_half.len() / 2);
                    calls.extend([second_half, first_half]);
                }
                Err(error) => {
                    for (slot, _) in &call {
                        if let Some(answer) = out.get_mut(slot.guard) {
                            *answer = Err(error.clone());
                        }
                    }
                }
            }
        }
    }
    out
}

/// The CloudWatch client and the region's budget its calls take turns from.
type Client<'a> = (&'a aws_sdk_cloudwatch::Client, &'a Budget);

/// Smallest call that is split again after a failure (the queries of a few guards).
const MIN_RETRY_QUERIES: usize = 64;

/// One GetMetricData call, with its pages: the points of each query by its index in `queries`.
async fn get_metric_data(
    (cloudwatch, budget): Client<'_>,
    queries: Vec<MetricDataQuery>,
    (start, end): (i64, i64),
) -> Result<BTreeMap<usize, Vec<(i64, f64)>>, ProviderError> {
    let mut samples: BTreeMap<usize, Vec<(i64, f64)>> = BTreeMap::new();
    let mut next_token = None;
    loop {
        // Pages by hand: each page is a call, and each call takes its turn (a paginator asks for none after the
        // last page, but would not say so before).
        budget.turn("GetMetricData", "GetMetricData", "AWS/Lambda").await?;
        let page = cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(DateTime::from_millis(start))
            .end_time(DateTime::from_millis(end))
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|e| fail("GetMetricData", "AWS/Lambda", e))?;
        for result in page.metric_data_results() {
            let Some(index) = result.id().and_then(|id| id.strip_prefix('q')).and_then(|n| n.parse().ok()) else {
                continue;
            };
            let points =
                result.timestamps().iter().map(|t| t.to_millis().unwrap_or(0)).zip(result.values().iter().copied());
            samples.entry(index).or_default().extend(points);
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
            _ => break,
        }
    }
    Ok(samples)
}

/// One query before it has its id in a call.
struct QuerySpec {
    namespace: String,
    metric: String,
    stat: String,
    dimensions: Vec<(String, String)>,
}

impl QuerySpec {
    fn new(namespace: &str, metric: &str, stat: &str, dimensions: &[(&str, &str)]) -> Self {
        let dimensions = dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self { namespace: namespace.into(), metric: metric.into(), stat: stat.into(), dimensions }
    }

    fn query(&self, index: usize) -> MetricDataQuery {
        let dimensions =
            self.dimensions.iter().map(|(name, value)| Dimension::builder().name(name).value(value).build()).collect();
        MetricDataQuery::builder()
            .id(format!("q{index}"))
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace(&self.namespace)
                            .metric_name(&self.metric)
                            .set_dimensions(Some(dimensions))
                            .build(),
                    )
                    .period(PERIOD_S)
                    .stat(&self.stat)
                    .build(),
            )
            .return_data(true)
            .build()
    }
}

/// One guard's queries, each with the slot its answer goes to: the canonical metrics and the guard's custom ones
/// for the baseline and the candidate version, and the whole alias's peak concurrency.
fn plan(index: usize, guard: &Guard, deployment: &Deployment) -> Vec<(Slot, QuerySpec)> {
    let mut queries = Vec::new();
    let (function, alias) = super::aws::target(guard);
    let resource = format!("{function}:{alias}");
    let revisions =
        [(Role::Baseline, deployment.baseline.as_deref()), (Role::Candidate, Some(deployment.candidate.as_str()))];
    for (role, version) in revisions {
        let Some(version) = version else { continue };
        let by_version = [("FunctionName", function), ("Resource", resource.as_str()), ("ExecutedVersion", version)];
        for (name, metric, stat) in CANONICAL {
            let slot = Slot { guard: index, role, metric: name.to_string() };
            queries.push((slot, QuerySpec::new("AWS/Lambda", metric, stat, &by_version)));
        }
        for (name, custom) in &guard.metrics {
            let substitute =
                |v: &str| v.replace("{function}", function).replace("{alias}", alias).replace("{version}", version);
            let dims: Vec<(String, String)> =
                custom.dimensions.iter().map(|(k, v)| (k.clone(), substitute(v))).collect();
            let dims: Vec<(&str, &str)> = dims.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let slot = Slot { guard: index, role, metric: name.clone() };
            queries.push((slot, QuerySpec::new(&custom.namespace, &custom.name, &custom.stat, &dims)));
        }
    }
    let whole = [("FunctionName", function), ("Resource", resource.as_str())];
    let slot = Slot { guard: index, role: Role::Deployment, metric: PEAK.into() };
    queries.push((slot, QuerySpec::new("AWS/Lambda", "ConcurrentExecutions", "Maximum", &whole)));
    // Every invocation through the alias, whatever version ran it: tells a cached view of the alias from one that
    // changed (a version ripcord does not know took traffic).
    let slot = Slot { guard: index, role: Role::Deployment, metric: TOTAL.into() };
    queries.push((slot, QuerySpec::new("AWS/Lambda", "Invocations", "Sum", &whole)));
    queries
}

/// One guard's slow-request queries: `Duration`'s `TC(T:)` per threshold, for the baseline and the candidate.
fn plan_slow(index: usize, request: &SlowRequest) -> Vec<(Slot, QuerySpec)> {
    let (function, alias) = super::aws::target(request.guard);
    let resource = format!("{function}:{alias}");
    let deployment = request.deployment;
    let revisions =
        [(Role::Baseline, deployment.baseline.as_deref()), (Role::Candidate, Some(deployment.candidate.as_str()))];
    let mut queries = Vec::new();
    for (role, version) in revisions {
        let Some(version) = version else { continue };
        let by_version = [("FunctionName", function), ("Resource", resource.as_str()), ("ExecutedVersion", version)];
        for threshold in request.thresholds {
            let slot = Slot { guard: index, role, metric: slow_requests_metric(*threshold) };
            let stat = format!("TC({threshold}:)");
            queries.push((slot, QuerySpec::new("AWS/Lambda", "Duration", &stat, &by_version)));
        }
    }
    queries
}

/// Puts each query's answer of one call where it belongs: a series of the baseline or the candidate, split into
/// the windows, or the deployment's peak concurrency in the last window. A guard already failed stays failed.
fn assemble(
    out: &mut [MetricsAnswer],
    call: &[(Slot, QuerySpec)],
    mut samples: BTreeMap<usize, Vec<(i64, f64)>>,
    windows: &[Window],
) {
    let recent = windows.last().map_or(i64::MIN, |w| w.start);
    for (index, (slot, _)) in call.iter().enumerate() {
        let Some(points) = samples.remove(&index).filter(|p| !p.is_empty()) else { continue };
        let Some(Ok(target)) = out.get_mut(slot.guard) else { continue };
        let series = |points: Vec<(i64, f64)>| {
            MetricSeries::split(&slot.metric, MetricKind::for_metric(&slot.metric), points, windows)
        };
        match slot.role {
            Role::Deployment if slot.metric == TOTAL => {
                let mut points = points;
                points.sort_by_key(|(at, _)| *at);
                target.total_requests = points;
            }
            Role::Deployment => {
                target.peak_concurrency =
                    points.iter().filter(|(at, _)| *at >= recent).map(|(_, v)| *v).reduce(f64::max);
            }
            Role::Candidate => target.candidate.metrics.push(series(points)),
            Role::Baseline => {
                if let Some(baseline) = target.baseline.as_mut() {
                    baseline.metrics.push(series(points));
                }
            }
        }
    }
}

/// The whole alias's metrics: its peak concurrency, and its invocations by any version.
const PEAK: &str = "peak";
const TOTAL: &str = "total_requests";

/// Whose metric a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Baseline,
    Candidate,
    Deployment,
}

/// Where a query's answer goes: which guard (its index in the request), whose, which metric.
#[derive(Debug, Clone)]
struct Slot {
    guard: usize,
    role: Role,
    metric: String,
}

fn revision(id: &str, share: f64) -> Revision {
    Revision { id: id.to_string(), traffic_share: share.clamp(0.0, 1.0), metrics: Vec::new() }
}

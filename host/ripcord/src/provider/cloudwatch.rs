//! Lambda's metrics from CloudWatch: `AWS/Lambda` per executed version (dimensions `FunctionName`, `Resource`,
//! `ExecutedVersion`), every query of every guard of a region batched into as few `GetMetricData` calls as the
//! 500-query limit allows, each answer put back where it belongs.

use super::aws::fail;
use super::{Deployment, GuardMetrics, ProviderError};
use crate::config::Guard;
use crate::evaluation::{MetricKind, MetricSeries, Revision, Window};
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

/// Metrics of every guard in `requests` over `windows`, in as few calls as the query limit allows.
pub(super) async fn metrics(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    requests: &[(&Guard, &Deployment)],
    windows: &[Window],
) -> Result<Vec<GuardMetrics>, ProviderError> {
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        return Err(ProviderError { operation: "GetMetricData", resource: "-".into(), message: "no windows".into() });
    };
    let queries = plan(requests);
    let mut samples: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for chunk in queries.chunks(MAX_QUERIES_PER_CALL) {
        let mut pages = cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(chunk.iter().map(|(_, q)| q.clone()).collect()))
            .start_time(DateTime::from_millis(first.start))
            .end_time(DateTime::from_millis(last.end))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| fail("GetMetricData", "AWS/Lambda", e))?;
            for result in page.metric_data_results() {
                let points =
                    result.timestamps().iter().map(|t| t.to_millis().unwrap_or(0)).zip(result.values().iter().copied());
                samples.entry(result.id().unwrap_or_default().to_string()).or_default().extend(points);
            }
        }
    }
    Ok(assemble(requests, &queries, samples, windows))
}

/// Every query of every guard, each with the slot its answer goes to: the canonical metrics and the guard's
/// custom ones for the baseline and the candidate version, and the whole alias's peak concurrency.
fn plan(requests: &[(&Guard, &Deployment)]) -> Vec<(Slot, MetricDataQuery)> {
    let mut queries: Vec<(Slot, MetricDataQuery)> = Vec::new();
    for (index, (guard, deployment)) in requests.iter().enumerate() {
        let (function, alias) = super::lambda::target(guard);
        let resource = format!("{function}:{alias}");
        let revisions =
            [(Role::Baseline, deployment.baseline.as_deref()), (Role::Candidate, Some(deployment.candidate.as_str()))];
        for (role, version) in revisions {
            let Some(version) = version else { continue };
            let by_version =
                [("FunctionName", function), ("Resource", resource.as_str()), ("ExecutedVersion", version)];
            for (name, metric, stat) in CANONICAL {
                let query = query(queries.len(), "AWS/Lambda", metric, stat, &by_version);
                queries.push((Slot { guard: index, role, metric: name.to_string() }, query));
            }
            for (name, custom) in &guard.metrics {
                let substitute =
                    |v: &str| v.replace("{function}", function).replace("{alias}", alias).replace("{version}", version);
                let dims: Vec<(String, String)> =
                    custom.dimensions.iter().map(|(k, v)| (k.clone(), substitute(v))).collect();
                let dims: Vec<(&str, &str)> = dims.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let query = query(queries.len(), &custom.namespace, &custom.name, &custom.stat, &dims);
                queries.push((Slot { guard: index, role, metric: name.clone() }, query));
            }
        }
        let whole = [("FunctionName", function), ("Resource", resource.as_str())];
        let query = query(queries.len(), "AWS/Lambda", "ConcurrentExecutions", "Maximum", &whole);
        queries.push((Slot { guard: index, role: Role::Deployment, metric: "peak".into() }, query));
    }
    queries
}

/// Puts each query's answer where it belongs: a series of the baseline or the candidate, split into the windows,
/// or the deployment's peak concurrency in the last window.
fn assemble(
    requests: &[(&Guard, &Deployment)],
    queries: &[(Slot, MetricDataQuery)],
    mut samples: BTreeMap<String, Vec<(i64, f64)>>,
    windows: &[Window],
) -> Vec<GuardMetrics> {
    let recent = windows.last().map_or(i64::MIN, |w| w.start);
    let mut out: Vec<GuardMetrics> = requests
        .iter()
        .map(|(_, d)| GuardMetrics {
            baseline: d.baseline.as_ref().map(|b| revision(b, 1.0 - d.candidate_share)),
            candidate: revision(&d.candidate, d.candidate_share),
            peak_concurrency: None,
        })
        .collect();
    for (slot, query) in queries {
        let Some(points) = query.id().and_then(|id| samples.remove(id)).filter(|p| !p.is_empty()) else { continue };
        let Some(target) = out.get_mut(slot.guard) else { continue };
        let series = |points: Vec<(i64, f64)>| {
            MetricSeries::split(&slot.metric, MetricKind::for_metric(&slot.metric), points, windows)
        };
        match slot.role {
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
    out
}

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

fn query(index: usize, namespace: &str, metric: &str, stat: &str, dimensions: &[(&str, &str)]) -> MetricDataQuery {
    let dimensions =
        dimensions.iter().map(|(name, value)| Dimension::builder().name(*name).value(*value).build()).collect();
    MetricDataQuery::builder()
        .id(format!("q{index}"))
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder().namespace(namespace).metric_name(metric).set_dimensions(Some(dimensions)).build(),
                )
                .period(PERIOD_S)
                .stat(stat)
                .build(),
        )
        .return_data(true)
        .build()
}

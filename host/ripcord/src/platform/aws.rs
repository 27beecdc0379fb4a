//! AWS Lambda through aws-sdk-lambda and aws-sdk-cloudwatch. A guard is a function alias: with weighted routing
//! the candidate is the additional version and the baseline the alias's version; without it the candidate is
//! the alias's version and the baseline the last known good recorded in the function's tags. Metrics come from
//! CloudWatch `AWS/Lambda` per executed version, every guard's queries batched into as few GetMetricData calls as
//! the 500-query limit allows. The pin is UpdateAlias with the RevisionId read and the routing cleared.

use super::{Capacity, Deployment, GuardMetrics, Mark, Pin, PlatformError, Prewarm, Release};
use crate::clock::Clock;
use crate::config::{AwsSettings, Guard, Target};
use crate::evaluation::{MetricKind, MetricSeries, Revision, Window};
use aws_config::retry::RetryConfig;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::types::{AliasRoutingConfiguration, ProvisionedConcurrencyStatusEnum};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// GetMetricData accepts at most this many queries per call.
pub const MAX_QUERIES_PER_CALL: usize = 500;
/// Metric period: CloudWatch's standard resolution for Lambda.
const PERIOD_S: i32 = 60;
/// How often a prewarm checks whether provisioned concurrency is READY.
const PREWARM_POLL: Duration = Duration::from_secs(2);
const TAG_PREFIX: &str = "ripcord";

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

/// Clients for one region.
#[derive(Debug, Clone)]
pub struct Lambda {
    lambda: aws_sdk_lambda::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    /// Unqualified function ARNs (where the tags live) by function name, learnt from the alias reads, so a marker
    /// costs one TagResource call and no lookup.
    arns: std::sync::Arc<std::sync::Mutex<HashMap<String, String>>>,
}

/// A failed SDK call as one line a person reads: the service's error code and message with the HTTP status; for
/// an answer that is not the service's protocol (a wrong endpoint), the status and what was expected; for
/// transport failures, the root cause. The SDK's full error chain goes to the debug log.
pub(crate) fn fail<E>(operation: &'static str, resource: &str, error: SdkError<E, HttpResponse>) -> PlatformError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    tracing::debug!(operation, resource, error = %DisplayErrorContext(&error), "AWS call failed");
    let answer = error.raw_response().map(|r| {
        let content_type = r.headers().get("content-type").unwrap_or("none").to_string();
        (r.status().as_u16(), content_type)
    });
    let message = match &error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message(), answer) {
                (code, message, Some((status, _))) if code.is_some() || message.is_some() => format!(
                    "{}: {} (HTTP {status})",
                    code.unwrap_or("error"),
                    message.map_or_else(|| "no message".into(), |m| crate::text::truncate(m, 300).into_owned())
                ),
                (_, _, Some((status, content_type))) => not_the_protocol(operation, status, &content_type),
                _ => "the service answered with an error and no details".to_string(),
            }
        }
        SdkError::ResponseError(_) => match answer {
            Some((status, content_type)) => not_the_protocol(operation, status, &content_type),
            None => "the answer could not be read".to_string(),
        },
        SdkError::TimeoutError(_) => "no answer in time (the request may still have taken effect)".to_string(),
        SdkError::DispatchFailure(_) => format!("cannot reach the endpoint: {}", root_cause(&error)),
        SdkError::ConstructionFailure(_) => format!("the request could not be built: {}", root_cause(&error)),
        _ => root_cause(&error),
    };
    PlatformError { operation, resource: resource.to_string(), message }
}

/// An answer that is not in the protocol the operation speaks: what came, and what was expected.
fn not_the_protocol(operation: &str, status: u16, content_type: &str) -> String {
    let expected = match operation {
        "GetMetricData" => "CloudWatch's Smithy RPC v2 CBOR (application/cbor)",
        _ => "the AWS REST JSON protocol (application/json)",
    };
    format!(
        "HTTP {status} with content-type {content_type}, which is not {expected}: is the endpoint the right service?"
    )
}

/// The innermost error of a chain: the cause a person can act on ("Connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    crate::text::truncate(&cause.to_string(), 300).into_owned()
}

/// The SDK configuration every AWS client of ripcord shares. With an endpoint override (the simulator, moto)
/// static test credentials are used; otherwise the default credential chain (environment, profile, SSO,
/// instance/container role). Standard retries; 10 s per attempt, 30 s per operation.
pub async fn sdk_config(settings: &AwsSettings, region: Option<String>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint).credentials_provider(aws_credential_types::Credentials::new(
            "test",
            "test",
            None,
            None,
            "ripcord-endpoint-override",
        ));
    }
    let region = region
        .or_else(|| settings.region.clone())
        .or_else(|| settings.endpoint_url.as_ref().map(|_| "us-east-1".to_string()));
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    loader.timeout_config(timeouts).load().await
}

fn clock_failed(resource: &str, error: crate::clock::ClockError) -> PlatformError {
    PlatformError { operation: "clock", resource: resource.to_string(), message: error.to_string() }
}

fn lambda_target(guard: &Guard) -> (&str, &str) {
    match &guard.target {
        Target::Lambda { function, alias, .. } => (function, alias),
        Target::CloudRun { service, .. } => (service, ""),
    }
}

fn tag(kind: &str, alias: &str) -> String {
    format!("{TAG_PREFIX}:{kind}:{alias}")
}

impl Lambda {
    /// Builds the clients (see [`sdk_config`]).
    pub async fn connect(settings: &AwsSettings, region: Option<String>) -> Self {
        let config = sdk_config(settings, region).await;
        Self {
            lambda: aws_sdk_lambda::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            arns: Default::default(),
        }
    }

    pub async fn deployment(&self, guard: &Guard) -> Result<Deployment, PlatformError> {
        let (function, alias) = lambda_target(guard);
        let resource = format!("{function}:{alias}");
        let got = self
            .lambda
            .get_alias()
            .function_name(function)
            .name(alias)
            .send()
            .await
            .map_err(|e| fail("GetAlias", &resource, e))?;
        let primary = got.function_version().unwrap_or_default().to_string();
        let routing = got
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .and_then(|w| w.iter().find(|(_, weight)| **weight > 0.0).map(|(v, w)| (v.clone(), *w)));
        let function_arn = got
            .alias_arn()
            .and_then(|arn| arn.rsplit_once(':').map(|(f, _)| f.to_string()))
            .unwrap_or_else(|| function.to_string());
        if function_arn.starts_with("arn:") {
            self.arns.lock().unwrap_or_else(|p| p.into_inner()).insert(function.to_string(), function_arn.clone());
        }
        let tags = self
            .lambda
            .list_tags()
            .resource(&function_arn)
            .send()
            .await
            .map_err(|e| fail("ListTags", &function_arn, e))?
            .tags
            .unwrap_or_default();
        let known_good = tags.get(&tag("known-good", alias)).cloned();
        let last_rollback_ms = tags.get(&tag("rolled-back-at", alias)).and_then(|v| v.parse().ok());
        let capacity = tags.get(&tag("prewarm", alias)).and_then(|v| {
            let (revision, release) = v.split_once('@')?;
            let release = match release {
                "standby" => Release::WhenPromoted,
                due => Release::At(due.parse().ok()?),
            };
            Some(Capacity { revision: revision.to_string(), release })
        });
        let (candidate, candidate_share, baseline) = match routing {
            Some((extra, weight)) => (extra, weight, Some(primary.clone())),
            None => (primary.clone(), 1.0, known_good.clone()),
        };
        Ok(Deployment {
            primary,
            candidate,
            candidate_share,
            baseline,
            known_good,
            token: got.revision_id().unwrap_or_default().to_string(),
            last_rollback_ms,
            capacity,
        })
    }

    pub async fn metrics(
        &self,
        requests: &[(&Guard, &Deployment)],
        windows: &[Window],
    ) -> Result<Vec<GuardMetrics>, PlatformError> {
        let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
            return Err(PlatformError {
                operation: "GetMetricData",
                resource: "-".into(),
                message: "no windows".into(),
            });
        };
        // Every query of every guard, each remembering where its answer goes.
        let mut queries: Vec<(Slot, MetricDataQuery)> = Vec::new();
        for (index, (guard, deployment)) in requests.iter().enumerate() {
            let (function, alias) = lambda_target(guard);
            let resource = format!("{function}:{alias}");
            let revisions = [
                (Role::Baseline, deployment.baseline.as_deref()),
                (Role::Candidate, Some(deployment.candidate.as_str())),
            ];
            for (role, version) in revisions {
                let Some(version) = version else { continue };
                let by_version =
                    [("FunctionName", function), ("Resource", resource.as_str()), ("ExecutedVersion", version)];
                for (name, metric, stat) in CANONICAL {
                    let query = query(queries.len(), "AWS/Lambda", metric, stat, &by_version);
                    queries.push((Slot { guard: index, role, metric: name.to_string() }, query));
                }
                for (name, custom) in &guard.metrics {
                    let dims: Vec<(String, String)> = custom
                        .dimensions
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.replace("{function}", function)
                                    .replace("{alias}", alias)
                                    .replace("{version}", version),
                            )
                        })
                        .collect();
                    let dims: Vec<(&str, &str)> = dims.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    let query = query(queries.len(), &custom.namespace, &custom.name, &custom.stat, &dims);
                    queries.push((Slot { guard: index, role, metric: name.clone() }, query));
                }
            }
            let whole = [("FunctionName", function), ("Resource", resource.as_str())];
            let query = query(queries.len(), "AWS/Lambda", "ConcurrentExecutions", "Maximum", &whole);
            queries.push((Slot { guard: index, role: Role::Deployment, metric: "peak".into() }, query));
        }
        let mut samples: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
        for chunk in queries.chunks(MAX_QUERIES_PER_CALL) {
            let mut pages = self
                .cloudwatch
                .get_metric_data()
                .set_metric_data_queries(Some(chunk.iter().map(|(_, q)| q.clone()).collect()))
                .start_time(DateTime::from_millis(first.start))
                .end_time(DateTime::from_millis(last.end))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| fail("GetMetricData", "AWS/Lambda", e))?;
                for result in page.metric_data_results() {
                    let points = result
                        .timestamps()
                        .iter()
                        .map(|t| t.to_millis().unwrap_or(0))
                        .zip(result.values().iter().copied());
                    samples.entry(result.id().unwrap_or_default().to_string()).or_default().extend(points);
                }
            }
        }
        let mut out: Vec<GuardMetrics> = requests
            .iter()
            .map(|(_, d)| GuardMetrics {
                baseline: d.baseline.as_ref().map(|b| revision(b, 1.0 - d.candidate_share)),
                candidate: revision(&d.candidate, d.candidate_share),
                peak_concurrency: None,
            })
            .collect();
        for (slot, query) in &queries {
            let Some(points) = query.id().and_then(|id| samples.remove(id)).filter(|p| !p.is_empty()) else { continue };
            let Some(target) = out.get_mut(slot.guard) else { continue };
            let kind = MetricKind::for_metric(&slot.metric);
            match slot.role {
                Role::Deployment => {
                    let recent = last.start;
                    target.peak_concurrency =
                        points.iter().filter(|(at, _)| *at >= recent).map(|(_, v)| *v).reduce(f64::max);
                }
                Role::Candidate => {
                    target.candidate.metrics.push(MetricSeries::split(&slot.metric, kind, points, windows))
                }
                Role::Baseline => {
                    if let Some(baseline) = target.baseline.as_mut() {
                        baseline.metrics.push(MetricSeries::split(&slot.metric, kind, points, windows));
                    }
                }
            }
        }
        Ok(out)
    }

    pub async fn prewarm(
        &self,
        guard: &Guard,
        version: &str,
        capacity: u32,
        wait: bool,
        release: Release,
        clock: &Clock,
    ) -> Result<Prewarm, PlatformError> {
        let (function, _) = lambda_target(guard);
        let resource = format!("{function}:{version}");
        let mut outcome = Prewarm {
            method: "provisioned-concurrency".into(),
            revision: version.to_string(),
            requested: capacity,
            ready: false,
            created: false,
            waited_ms: 0,
            note: None,
        };
        let existing =
            self.lambda.get_provisioned_concurrency_config().function_name(function).qualifier(version).send().await;
        match existing {
            Ok(config) => {
                // Existing capacity is used as it is; ripcord releases it later only when its own marker says an
                // earlier run of ripcord added it.
                outcome.requested = config.requested_provisioned_concurrent_executions().unwrap_or(0).max(0) as u32;
                outcome.note = Some(format!("existing provisioned concurrency of {} kept", outcome.requested));
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_provisioned_concurrency_config_not_found_exception()) =>
            {
                // Write-ahead: the marker goes on the function before the capacity exists, so a process that dies
                // right after creating it leaves capacity a later run releases, never a silent cost.
                let marker = Capacity { revision: version.to_string(), release };
                self.mark(guard, &[Mark::Capacity(marker)]).await?;
                self.lambda
                    .put_provisioned_concurrency_config()
                    .function_name(function)
                    .qualifier(version)
                    .provisioned_concurrent_executions(i32::try_from(capacity).unwrap_or(i32::MAX))
                    .send()
                    .await
                    .map_err(|e| fail("PutProvisionedConcurrencyConfig", &resource, e))?;
                outcome.created = true;
            }
            Err(error) => return Err(fail("GetProvisionedConcurrencyConfig", &resource, error)),
        }
        let started = clock.now_ms().await.map_err(|e| clock_failed(&resource, e))?;
        loop {
            let status = self
                .lambda
                .get_provisioned_concurrency_config()
                .function_name(function)
                .qualifier(version)
                .send()
                .await
                .map_err(|e| fail("GetProvisionedConcurrencyConfig", &resource, e))?;
            let now = clock.now_ms().await.map_err(|e| clock_failed(&resource, e))?;
            outcome.waited_ms = now - started;
            match status.status() {
                Some(ProvisionedConcurrencyStatusEnum::Ready) => {
                    outcome.ready = true;
                    return Ok(outcome);
                }
                _ if !wait => return Ok(outcome),
                Some(ProvisionedConcurrencyStatusEnum::Failed) => {
                    outcome.note =
                        Some(format!("allocation failed: {}", status.status_reason().unwrap_or("no reason given")));
                    return Ok(outcome);
                }
                _ if outcome.waited_ms >= guard.prewarm_timeout.as_millis() as i64 => {
                    outcome.note = Some(format!(
                        "not READY after {}; pinning anyway",
                        humantime::format_duration(guard.prewarm_timeout)
                    ));
                    return Ok(outcome);
                }
                _ => clock.sleep(PREWARM_POLL).await.map_err(|e| clock_failed(&resource, e))?,
            }
        }
    }

    /// Published versions of the function (not `$LATEST`), following pagination.
    pub async fn versions(&self, guard: &Guard) -> Result<Vec<String>, PlatformError> {
        let (function, _) = lambda_target(guard);
        let mut pages = self.lambda.list_versions_by_function().function_name(function).into_paginator().send();
        let mut versions = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| fail("ListVersionsByFunction", function, e))?;
            versions.extend(
                page.versions().iter().filter_map(|v| v.version()).filter(|v| *v != "$LATEST").map(str::to_string),
            );
        }
        Ok(versions)
    }

    pub async fn pin(&self, guard: &Guard, version: &str, token: &str) -> Result<Pin, PlatformError> {
        let (function, alias) = lambda_target(guard);
        let cleared = AliasRoutingConfiguration::builder().set_additional_version_weights(Some(HashMap::new())).build();
        let updated = self
            .lambda
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .routing_config(cleared)
            .revision_id(token)
            // Not retried by the SDK: an attempt that timed out may have taken effect, and a blind retry would
            // then meet a stale RevisionId. The controller re-reads the alias and decides (see its pin loop).
            .customize()
            .config_override(aws_sdk_lambda::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .await;
        match updated {
            Ok(alias) => Ok(Pin::Pinned { token: alias.revision_id().unwrap_or_default().to_string() }),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_precondition_failed_exception()) => {
                Ok(Pin::Conflict)
            }
            Err(error) => Err(fail("UpdateAlias", &format!("{function}:{alias}"), error)),
        }
    }

    pub async fn mark(&self, guard: &Guard, marks: &[Mark]) -> Result<(), PlatformError> {
        let (function, alias) = lambda_target(guard);
        let arn = self.function_arn(function).await?;
        let mut set = HashMap::new();
        let mut unset = Vec::new();
        for mark in marks {
            match mark {
                Mark::KnownGood(version) => drop(set.insert(tag("known-good", alias), version.clone())),
                Mark::RolledBackAt(ms) => drop(set.insert(tag("rolled-back-at", alias), ms.to_string())),
                Mark::Capacity(Capacity { revision, release }) => {
                    let when = match release {
                        Release::At(due) => due.to_string(),
                        Release::WhenPromoted => "standby".to_string(),
                    };
                    drop(set.insert(tag("prewarm", alias), format!("{revision}@{when}")))
                }
                Mark::ClearCapacity => unset.push(tag("prewarm", alias)),
            }
        }
        if !set.is_empty() {
            self.lambda
                .tag_resource()
                .resource(&arn)
                .set_tags(Some(set))
                .send()
                .await
                .map_err(|e| fail("TagResource", &arn, e))?;
        }
        if !unset.is_empty() {
            self.lambda
                .untag_resource()
                .resource(&arn)
                .set_tag_keys(Some(unset))
                .send()
                .await
                .map_err(|e| fail("UntagResource", &arn, e))?;
        }
        Ok(())
    }

    pub async fn release(&self, guard: &Guard, version: &str) -> Result<(), PlatformError> {
        let (function, _) = lambda_target(guard);
        let deleted =
            self.lambda.delete_provisioned_concurrency_config().function_name(function).qualifier(version).send().await;
        match deleted {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(error) => Err(fail("DeleteProvisionedConcurrencyConfig", &format!("{function}:{version}"), error)),
        }
    }

    async fn function_arn(&self, function: &str) -> Result<String, PlatformError> {
        if let Some(arn) = self.arns.lock().unwrap_or_else(|p| p.into_inner()).get(function) {
            return Ok(arn.clone());
        }
        let config = self
            .lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(|e| fail("GetFunctionConfiguration", function, e))?;
        let arn = config.function_arn().unwrap_or(function);
        // The configuration's ARN may carry a qualifier (`:$LATEST`); tags live on the unqualified ARN.
        Ok(match arn.matches(':').count() {
            7 => arn.rsplit_once(':').map_or(arn, |(unqualified, _)| unqualified).to_string(),
            _ => arn.to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Baseline,
    Candidate,
    Deployment,
}

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

//! AWS Lambda through aws-sdk-lambda. A guard is a function alias: with weighted routing the candidate is the
//! additional version and the baseline the alias's version; without it the candidate is the alias's version and
//! the baseline the last known good recorded in the function's tags. Metrics come from CloudWatch
//! (`cloudwatch.rs`). The pin is UpdateAlias with the RevisionId read and the routing cleared; the prewarm is
//! provisioned concurrency, waited for until READY; markers are tags `ripcord:MARKER:ALIAS` on the function.

use super::aws::{fail, sdk_config, target};
use super::markers::{self, Marker, Markers};
use super::quota::Budget;
use super::{
    Capacity, Changer, Deployment, Mark, MetricsAnswer, Pin, PrewarmRequest, Prewarmed, ProviderError, Reader,
    SlowRequest,
};
use crate::config::{AwsSettings, Guard};
use crate::model::clock::Clock;
use crate::model::evaluation::Window;
use aws_config::retry::RetryConfig;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, ProvisionedConcurrencyStatusEnum};
use std::collections::HashMap;
use std::time::Duration;

/// How often a prewarm checks whether provisioned concurrency is READY.
const PREWARM_POLL: Duration = Duration::from_secs(2);

/// One prewarm counted among those waiting for READY while it lives.
struct Polling<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Polling<'a> {
    fn start(pollers: &'a std::sync::atomic::AtomicUsize) -> Self {
        pollers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(pollers)
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Clients for one region.
#[derive(Debug, Clone)]
pub struct Lambda {
    lambda: aws_sdk_lambda::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    /// Unqualified function ARNs (where the tags live) by function name, learnt from the alias reads, so a marker
    /// costs one TagResource call and no lookup.
    arns: std::sync::Arc<std::sync::Mutex<HashMap<String, String>>>,
    /// The region's API quotas, shared by every guard of the process (`quota.rs`).
    budget: std::sync::Arc<Budget>,
    /// Prewarms of this region waiting for their provisioned concurrency to be READY: how often each polls.
    pollers: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Lambda's control-plane calls ripcord reads with, and those it changes with (also capped at
/// `changes_per_second`).
const READS: [&str; 5] =
    ["GetAlias", "ListTags", "GetProvisionedConcurrencyConfig", "ListVersionsByFunction", "ListAliases"];
const CHANGES: [&str; 5] = [
    "UpdateAlias",
    "TagResource",
    "UntagResource",
    "PutProvisionedConcurrencyConfig",
    "DeleteProvisionedConcurrencyConfig",
];

/// The budget of a region: each Lambda API at its quota (changes also at `changes_per_second`), CloudWatch's.
fn budget(settings: &AwsSettings) -> Budget {
    let q = settings.quotas;
    let control = q.lambda_per_api * q.share;
    let reads = READS.iter().map(|api| (api.to_string(), control));
    let changes = CHANGES.iter().map(|api| (api.to_string(), control.min(settings.changes_per_second)));
    let others =
        [("GetFunction", q.get_function), ("GetMetricData", q.get_metric_data), ("ListMetrics", q.list_metrics)]
            .map(|(api, rate)| (api.to_string(), rate * q.share));
    Budget::new(reads.chain(changes).chain(others))
}

/// Where a marker lives: the tag `ripcord:MARKER:ALIAS` on the function.
fn tag(marker: Marker, alias: &str) -> String {
    format!("ripcord:{}:{alias}", marker.name())
}

fn clock_failed(resource: &str, error: crate::model::clock::ClockError) -> ProviderError {
    ProviderError {
        operation: "clock",
        resource: resource.to_string(),
        message: error.to_string(),
        ..Default::default()
    }
}

impl Lambda {
    /// Builds the clients (see [`sdk_config`]).
    pub async fn connect(settings: &AwsSettings, region: Option<String>) -> Self {
        let config = sdk_config(settings, region).await;
        Self {
            lambda: aws_sdk_lambda::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            arns: Default::default(),
            budget: std::sync::Arc::new(budget(settings)),
            pollers: Default::default(),
        }
    }

    /// Provisioned concurrency on the version: existing capacity is used as it is (ripcord releases it later only
    /// when its own marker says an earlier run added it); missing capacity is created, its write-ahead marker first,
    /// so a process that dies right after creating it leaves capacity a later run releases, never a silent cost.
    async fn ensure_capacity(
        &self,
        guard: &Guard,
        request: &PrewarmRequest<'_>,
        outcome: &mut Prewarmed,
    ) -> Result<(), ProviderError> {
        let ((function, _), version) = (target(guard), request.revision);
        let resource = format!("{function}:{version}");
        self.budget.turn("GetProvisionedConcurrencyConfig", "GetProvisionedConcurrencyConfig", &resource).await?;
        let existing =
            self.lambda.get_provisioned_concurrency_config().function_name(function).qualifier(version).send().await;
        match existing {
            Ok(config) => {
                outcome.requested = config.requested_provisioned_concurrent_executions().unwrap_or(0).max(0) as u32;
                outcome.note = Some(format!("existing provisioned concurrency of {} kept", outcome.requested));
                Ok(())
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_provisioned_concurrency_config_not_found_exception()) =>
            {
                let marker = Capacity { revision: version.to_string(), release: request.release };
                self.mark(guard, &[Mark::Capacity(marker)]).await?;
                self.budget
                    .turn("PutProvisionedConcurrencyConfig", "PutProvisionedConcurrencyConfig", &resource)
                    .await?;
                self.lambda
                    .put_provisioned_concurrency_config()
                    .function_name(function)
                    .qualifier(version)
                    .provisioned_concurrent_executions(i32::try_from(request.capacity).unwrap_or(i32::MAX))
                    .send()
                    .await
                    .map_err(|e| fail("PutProvisionedConcurrencyConfig", &resource, e))?;
                outcome.created = true;
                Ok(())
            }
            Err(error) => Err(fail("GetProvisionedConcurrencyConfig", &resource, error)),
        }
    }

    /// Polls the capacity's status until READY (with `wait`, bounded by the guard's `prewarm_timeout`), FAILED, or
    /// once (without `wait`); the outcome says which and how long it took.
    async fn wait_until_ready(
        &self,
        guard: &Guard,
        wait: bool,
        outcome: &mut Prewarmed,
        clock: &Clock,
    ) -> Result<(), ProviderError> {
        let ((function, _), version) = (target(guard), outcome.revision.clone());
        let resource = format!("{function}:{version}");
        let started = clock.now_ms().await.map_err(|e| clock_failed(&resource, e))?;
        let _polling = Polling::start(&self.pollers);
        loop {
            self.budget.turn("GetProvisionedConcurrencyConfig", "GetProvisionedConcurrencyConfig", &resource).await?;
            let status = self
                .lambda
                .get_provisioned_concurrency_config()
                .function_name(function)
                .qualifier(&version)
                .send()
                .await
                .map_err(|e| fail("GetProvisionedConcurrencyConfig", &resource, e))?;
            let now = clock.now_ms().await.map_err(|e| clock_failed(&resource, e))?;
            outcome.waited_ms = now - started;
            match status.status() {
                Some(ProvisionedConcurrencyStatusEnum::Ready) => {
                    outcome.ready = true;
                    return Ok(());
                }
                _ if !wait => return Ok(()),
                Some(ProvisionedConcurrencyStatusEnum::Failed) => {
                    let reason = status.status_reason().unwrap_or("no reason given");
                    outcome.note = Some(format!("allocation failed: {reason}"));
                    return Ok(());
                }
                _ if outcome.waited_ms >= guard.prewarm_timeout.as_millis() as i64 => {
                    let timeout = humantime::format_duration(guard.prewarm_timeout);
                    outcome.note = Some(format!("not READY after {timeout}; pinning anyway"));
                    return Ok(());
                }
                _ => clock.sleep(self.poll_interval()).await.map_err(|e| clock_failed(&resource, e))?,
            }
        }
    }

    /// How long a prewarm waits between two reads of its provisioned concurrency: [`PREWARM_POLL`], or longer when
    /// more prewarms wait than the quota of GetProvisionedConcurrencyConfig serves in that time — each then reads
    /// once per round of the quota, instead of every one queueing a read every 2 s (a fleet-wide bad release's
    /// 443 prewarms made 7,531 reads where about 900 tell the same).
    fn poll_interval(&self) -> Duration {
        let waiting = self.pollers.load(std::sync::atomic::Ordering::Relaxed) as f64;
        match self.budget.rate("GetProvisionedConcurrencyConfig") {
            Some(rate) if rate > 0.0 => PREWARM_POLL.max(Duration::from_secs_f64(waiting / rate)),
            _ => PREWARM_POLL,
        }
    }

    /// The function's ARN, which tags need, as the last read of its alias gave it. Every change follows a read of
    /// the deployment in the same process, so ripcord needs no permission just to look the ARN up.
    async fn function_arn(&self, function: &str) -> Result<String, ProviderError> {
        match self.arns.lock().unwrap_or_else(|p| p.into_inner()).get(function) {
            Some(arn) => Ok(arn.clone()),
            None => Err(ProviderError {
                operation: "TagResource",
                resource: function.to_string(),
                message: "the function's ARN is not known: its alias was not read first".to_string(),
                ..Default::default()
            }),
        }
    }
}

#[async_trait::async_trait]
impl Reader for Lambda {
    async fn deployment(&self, guard: &Guard) -> Result<Deployment, ProviderError> {
        let (function, alias) = target(guard);
        let resource = format!("{function}:{alias}");
        self.budget.turn("GetAlias", "GetAlias", &resource).await?;
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
        self.budget.turn("ListTags", "ListTags", &function_arn).await?;
        let tags = self
            .lambda
            .list_tags()
            .resource(&function_arn)
            .send()
            .await
            .map_err(|e| fail("ListTags", &function_arn, e))?
            .tags
            .unwrap_or_default();
        let markers = Markers::decode(|marker| tags.get(&tag(marker, alias)).map(String::as_str));
        let (candidate, candidate_share) = routing.unwrap_or_else(|| (primary.clone(), 1.0));
        let token = got.revision_id().unwrap_or_default().to_string();
        Ok(Deployment::new(primary, candidate, candidate_share, token, markers))
    }

    async fn metrics(&self, requests: &[(&Guard, &Deployment)], windows: &[Window]) -> Vec<MetricsAnswer> {
        super::cloudwatch::metrics(&self.cloudwatch, &self.budget, requests, windows).await
    }

    async fn slow_requests(&self, requests: &[SlowRequest<'_>], windows: &[Window]) -> Vec<MetricsAnswer> {
        super::cloudwatch::slow_requests(&self.cloudwatch, &self.budget, requests, windows).await
    }

    /// Published versions of the function (not `$LATEST`), following pagination.
    async fn revisions(&self, guard: &Guard) -> Result<Vec<String>, ProviderError> {
        let (function, _) = target(guard);
        let (mut versions, mut marker) = (Vec::new(), None);
        loop {
            self.budget.turn("ListVersionsByFunction", "ListVersionsByFunction", function).await?;
            let page = self
                .lambda
                .list_versions_by_function()
                .function_name(function)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| fail("ListVersionsByFunction", function, e))?;
            versions.extend(
                page.versions().iter().filter_map(|v| v.version()).filter(|v| *v != "$LATEST").map(str::to_string),
            );
            match page.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(versions)
    }
}

#[async_trait::async_trait]
impl Changer for Lambda {
    async fn prewarm(
        &self,
        guard: &Guard,
        request: PrewarmRequest<'_>,
        clock: &Clock,
    ) -> Result<Prewarmed, ProviderError> {
        let mut outcome = Prewarmed {
            method: "provisioned-concurrency".into(),
            revision: request.revision.to_string(),
            requested: request.capacity,
            ready: false,
            created: false,
            waited_ms: 0,
            note: None,
        };
        self.ensure_capacity(guard, &request, &mut outcome).await?;
        self.wait_until_ready(guard, request.wait, &mut outcome, clock).await?;
        Ok(outcome)
    }

    async fn pin(&self, guard: &Guard, version: &str, token: &str, _: &str, _: &Clock) -> Result<Pin, ProviderError> {
        let (function, alias) = target(guard);
        let cleared = AliasRoutingConfiguration::builder().set_additional_version_weights(Some(HashMap::new())).build();
        self.budget.turn("UpdateAlias", "UpdateAlias", &format!("{function}:{alias}")).await?;
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

    async fn mark(&self, guard: &Guard, marks: &[Mark]) -> Result<(), ProviderError> {
        let (function, alias) = target(guard);
        let arn = self.function_arn(function).await?;
        let mut set = HashMap::new();
        let mut unset = Vec::new();
        for mark in marks {
            match markers::encode(mark) {
                (marker, Some(value)) => drop(set.insert(tag(marker, alias), value)),
                (marker, None) => unset.push(tag(marker, alias)),
            }
        }
        if !set.is_empty() {
            self.budget.turn("TagResource", "TagResource", &arn).await?;
            self.lambda
                .tag_resource()
                .resource(&arn)
                .set_tags(Some(set))
                .send()
                .await
                .map_err(|e| fail("TagResource", &arn, e))?;
        }
        if !unset.is_empty() {
            self.budget.turn("UntagResource", "UntagResource", &arn).await?;
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

    async fn release(&self, guard: &Guard, version: &str) -> Result<(), ProviderError> {
        let (function, _) = target(guard);
        let resource = format!("{function}:{version}");
        self.budget.turn("DeleteProvisionedConcurrencyConfig", "DeleteProvisionedConcurrencyConfig", &resource).await?;
        let deleted =
            self.lambda.delete_provisioned_concurrency_config().function_name(function).qualifier(version).send().await;
        match deleted {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(error) => Err(fail("DeleteProvisionedConcurrencyConfig", &format!("{function}:{version}"), error)),
        }
    }
}

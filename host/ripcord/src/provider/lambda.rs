//! AWS Lambda through aws-sdk-lambda. A guard is a function alias: with weighted routing the candidate is the
//! additional version and the baseline the alias's version; without it the candidate is the alias's version and
//! the baseline the last known good recorded in the function's tags. Metrics come from CloudWatch
//! (`cloudwatch.rs`). The pin is UpdateAlias with the RevisionId read and the routing cleared; the prewarm is
//! provisioned concurrency, waited for until READY; markers are tags `ripcord:MARKER:ALIAS` on the function.

use super::aws::{fail, sdk_config, target};
use super::markers::{self, Marker, Markers};
use super::quota::Budget;
use super::{
    Capacity, Changer, Deployment, Mark, MetricsAnswer, Pin, PinRequest, PrewarmRequest, Prewarmed, ProviderError,
    Reader, SlowRequest,
};
use crate::config::{AwsSettings, Guard};
use crate::model::clock::Clock;
use crate::model::evaluation::Window;
use aws_config::retry::RetryConfig;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::{AliasConfiguration, AliasRoutingConfiguration, ProvisionedConcurrencyStatusEnum};
use std::collections::HashMap;
use std::time::Duration;

/// How often a prewarm checks whether provisioned concurrency is READY.
const PREWARM_POLL: Duration = Duration::from_secs(2);

/// An alias's routing as read: its version, the weighted second version if any, its RevisionId, and the
/// function's unqualified ARN (where the tags live).
struct Routing {
    primary: String,
    candidate: Option<(String, f64)>,
    token: String,
    function_arn: String,
}

impl Routing {
    fn deployment(self, markers: Markers) -> Deployment {
        let (candidate, share) = self.candidate.unwrap_or_else(|| (self.primary.clone(), 1.0));
        Deployment::new(self.primary, candidate, share, self.token, markers)
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
    pollers: std::sync::Arc<super::quota::Pollers>,
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
        let _polling = self.pollers.start();
        loop {
            let turn =
                self.budget.turn("GetProvisionedConcurrencyConfig", "GetProvisionedConcurrencyConfig", &resource);
            if turn.await.is_err() {
                // The prewarm's bound ran out waiting for a quota turn (other rollbacks' pins go first).
                let timeout = humantime::format_duration(guard.prewarm_timeout);
                outcome.note =
                    Some(format!("not known READY within {timeout} (no quota turn to check); pinning anyway"));
                return Ok(());
            }
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
                _ => clock
                    .sleep(self.pollers.interval(&self.budget, "GetProvisionedConcurrencyConfig", PREWARM_POLL))
                    .await
                    .map_err(|e| clock_failed(&resource, e))?,
            }
        }
    }

    /// An alias's routing, by GetAlias or ListAliases — the same answer under two quotas of 15 a second each,
    /// whichever turn comes first — so a fleet's changed aliases are read again at twice the rate one API allows.
    async fn routing(&self, function: &str, alias: &str) -> Result<Routing, ProviderError> {
        let resource = format!("{function}:{alias}");
        let listed = self.budget.sooner(&["GetAlias", "ListAliases"]) == Some("ListAliases");
        let configuration = if listed {
            self.listed_alias(function, alias).await?
        } else {
            self.budget.turn("GetAlias", "GetAlias", &resource).await?;
            let got = self.lambda.get_alias().function_name(function).name(alias).send().await;
            let got = got.map_err(|e| fail("GetAlias", &resource, e))?;
            AliasConfiguration::builder()
                .set_alias_arn(got.alias_arn)
                .set_function_version(got.function_version)
                .set_routing_config(got.routing_config)
                .set_revision_id(got.revision_id)
                .build()
        };
        let function_arn = configuration
            .alias_arn()
            .and_then(|arn| arn.rsplit_once(':').map(|(f, _)| f.to_string()))
            .unwrap_or_else(|| function.to_string());
        if function_arn.starts_with("arn:") {
            self.arns.lock().unwrap_or_else(|p| p.into_inner()).insert(function.to_string(), function_arn.clone());
        }
        let candidate = configuration
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .and_then(|w| w.iter().find(|(_, weight)| **weight > 0.0).map(|(v, w)| (v.clone(), *w)));
        Ok(Routing {
            primary: configuration.function_version().unwrap_or_default().to_string(),
            candidate,
            token: configuration.revision_id().unwrap_or_default().to_string(),
            function_arn,
        })
    }

    /// The alias `alias` among the function's, page by page (each page a turn of ListAliases).
    async fn listed_alias(&self, function: &str, alias: &str) -> Result<AliasConfiguration, ProviderError> {
        let resource = format!("{function}:{alias}");
        let mut marker = None;
        loop {
            self.budget.turn("ListAliases", "ListAliases", &resource).await?;
            let page = self.lambda.list_aliases().function_name(function).set_marker(marker).send().await;
            let page = page.map_err(|e| fail("ListAliases", &resource, e))?;
            if let Some(found) = page.aliases().iter().find(|a| a.name() == Some(alias)) {
                return Ok(found.clone());
            }
            match page.next_marker {
                Some(next) if !next.is_empty() => marker = Some(next),
                _ => {
                    return Err(ProviderError {
                        operation: "ListAliases",
                        resource,
                        message: format!("the function has no alias {alias} (ResourceNotFoundException)"),
                        ..Default::default()
                    });
                }
            }
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
        let routing = self.routing(function, alias).await?;
        let function_arn = routing.function_arn.clone();
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
        Ok(routing.deployment(markers))
    }

    /// The alias only, its markers kept from `view`: after a fleet-wide deploy, the aliases' tags have not changed,
    /// and ListTags's quota would halve how fast the changed aliases are read again.
    async fn rerouted(&self, guard: &Guard, view: &Deployment) -> Result<Deployment, ProviderError> {
        let (function, alias) = target(guard);
        Ok(self.routing(function, alias).await?.deployment(view.markers()))
    }

    async fn metrics(&self, requests: &[(&Guard, &Deployment)], windows: &[Window]) -> Vec<MetricsAnswer> {
        super::cloudwatch::metrics(&self.cloudwatch, &self.budget, requests, windows).await
    }

    async fn slow_requests(&self, requests: &[SlowRequest<'_>], windows: &[Window]) -> Vec<MetricsAnswer> {
        super::cloudwatch::slow_requests(&self.cloudwatch, &self.budget, requests, windows).await
    }

    async fn error_rises(&self, guards: &[&Guard], now: i64) -> Vec<f64> {
        super::cloudwatch::error_rises(&self.cloudwatch, &self.budget, guards, now).await
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

    /// UpdateAlias with the RevisionId read; the markers are left to [`Changer::mark`] (tags are TagResource
    /// calls of their own).
    async fn pin(&self, guard: &Guard, request: PinRequest<'_>, _: &Clock) -> Result<Pin, ProviderError> {
        let PinRequest { revision: version, token, .. } = request;
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
            Ok(alias) => Ok(Pin::Pinned {
                token: alias.revision_id().unwrap_or_default().to_string(),
                marked: false,
                seen: None,
            }),
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

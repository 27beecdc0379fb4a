//! Google Cloud Run through google-cloud-run-v2 and google-cloud-monitoring-v3. A guard is a service: the
//! candidate is the newest revision serving traffic, the baseline the largest other one during a split, or the
//! last known good kept in the service annotation `ripcord.dev/known-good`. Metrics come from Cloud Monitoring,
//! one ListTimeSeries call per metric for all guarded services of a project, grouped by service and revision. The
//! prewarm tags the target revision and sends warm-up requests to its tag URL; the pin is a PATCH of the traffic
//! with the etag read, followed by the operation and a bounded wait until the split is reconciled.

use super::{Capacity, Deployment, GuardMetrics, Mark, Pin, PlatformError, Prewarm, Release};
use crate::clock::Clock;
use crate::config::{GcpSettings, Guard, Target};
use crate::evaluation::{MetricKind, MetricSeries, Revision, Window};
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::paginator::ItemPaginator;
use google_cloud_lro::Poller;
use google_cloud_monitoring_v3::model::aggregation::{Aligner, Reducer};
use google_cloud_monitoring_v3::model::{Aggregation, TimeInterval};
use google_cloud_run_v2::model::{Service, TrafficTarget, TrafficTargetAllocationType};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The tag the prewarm puts on the rollback target, to reach it before it serves traffic.
pub const WARM_TAG: &str = "ripcord-warm";
/// The tag kept on the revision rolled back from, so it stays reachable for debugging.
pub const ROLLED_BACK_TAG: &str = "ripcord-rolled-back";
const ANNOTATION_PREFIX: &str = "ripcord.dev";
/// Longest wait for the traffic split to be reconciled after a pin.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(120);
const RECONCILE_POLL: Duration = Duration::from_secs(1);
/// Most warm-up requests one prewarm sends.
const MAX_WARMUPS: u32 = 2_000;
/// After the warm-up requests answered, time for the instances they started to finish them before traffic moves.
const WARMUP_SETTLE: Duration = Duration::from_secs(5);

/// (service, revision, canonical metric).
type SeriesKey = (String, String, &'static str);
/// Samples `(ms, value)` by series.
type Samples = BTreeMap<SeriesKey, Vec<(i64, f64)>>;

/// How long finding and using Google credentials may take before ripcord says there are none (the client
/// library's own search, ending at a metadata server that is not there, takes about a minute).
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

/// Application-default credentials, checked by fetching a token once: missing credentials are one clear error
/// within seconds, not a minute of silence and then a retry message from inside the client library.
async fn application_default_credentials() -> Result<google_cloud_auth::credentials::Credentials, PlatformError> {
    const HOW: &str = "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, run `gcloud auth \
                       application-default login`, or run on Google Cloud with a service account (for the simulator, \
                       set [gcp] endpoint_url)";
    let fail = |why: String| PlatformError {
        operation: "credentials",
        resource: "Google Cloud".into(),
        message: format!("no usable Google credentials: {why}; {HOW}"),
    };
    // Where the client library looks, in its order, so the message can say which source failed.
    let source = match std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|v| !v.is_empty()) {
        Some(path) => format!("the key file GOOGLE_APPLICATION_CREDENTIALS names ({})", path.to_string_lossy()),
        None if gcloud_adc_file().is_some_and(|f| f.is_file()) => "gcloud's application-default credentials".into(),
        None => "no key file or gcloud credentials were found, and the metadata server".into(),
    };
    let credentials = google_cloud_auth::credentials::Builder::default()
        .build()
        .map_err(|e| fail(format!("{source} could not be used ({})", one_line(&e.to_string()))))?;
    match tokio::time::timeout(CREDENTIALS_TIMEOUT, credentials.headers(Default::default())).await {
        Ok(Ok(_)) => Ok(credentials),
        Ok(Err(error)) => Err(fail(format!("{source} gave no token ({})", one_line(&error.to_string())))),
        Err(_) => Err(fail(format!("{source} gave no token within {}s", CREDENTIALS_TIMEOUT.as_secs()))),
    }
}

/// gcloud's application-default credentials file (`gcloud auth application-default login` writes it).
fn gcloud_adc_file() -> Option<std::path::PathBuf> {
    let config = std::env::var_os("CLOUDSDK_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".config/gcloud")))?;
    Some(config.join("application_default_credentials.json"))
}

/// An error message on one line, bounded.
fn one_line(text: &str) -> String {
    crate::text::truncate(&crate::text::one_line(text), 300).into_owned()
}

/// Clients for Cloud Run and Cloud Monitoring.
#[derive(Debug, Clone)]
pub struct CloudRun {
    services: google_cloud_run_v2::client::Services,
    revisions: google_cloud_run_v2::client::Revisions,
    monitoring: google_cloud_monitoring_v3::client::MetricService,
    http: reqwest::Client,
    warmup_path: String,
}

fn fail(operation: &'static str, resource: &str, error: impl std::fmt::Display) -> PlatformError {
    PlatformError { operation, resource: resource.to_string(), message: error.to_string() }
}

fn target(guard: &Guard) -> (String, &str) {
    match &guard.target {
        Target::CloudRun { project, location, service } => {
            (format!("projects/{project}/locations/{location}/services/{service}"), project.as_str())
        }
        Target::Lambda { function, .. } => (function.clone(), ""),
    }
}

fn annotation(kind: &str) -> String {
    format!("{ANNOTATION_PREFIX}/{kind}")
}

/// The short name of a revision (`svc-00002-abc`) from its full name.
fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn revision_target(revision: &str, percent: i32, tag: &str) -> TrafficTarget {
    TrafficTarget::new()
        .set_type(TrafficTargetAllocationType::Revision)
        .set_revision(revision)
        .set_percent(percent)
        .set_tag(tag)
}

impl CloudRun {
    /// Builds the clients: with an endpoint override (the simulator) anonymous credentials and fast operation
    /// polling; otherwise application-default credentials.
    pub async fn connect(settings: &GcpSettings) -> Result<Self, PlatformError> {
        let credentials = match &settings.endpoint_url {
            Some(_) => None,
            None => Some(application_default_credentials().await?),
        };
        macro_rules! build {
            ($client:ty) => {{
                let mut builder = <$client>::builder();
                if let Some(credentials) = &credentials {
                    builder = builder.with_credentials(credentials.clone());
                }
                if let Some(endpoint) = &settings.endpoint_url {
                    let polling = google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder::new()
                        .with_initial_delay(Duration::from_millis(5))
                        .with_maximum_delay(Duration::from_millis(50))
                        .build()
                        .map_err(|e| fail("connect", endpoint, e))?;
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
                        .with_polling_backoff_policy(polling);
                }
                builder.build().await.map_err(|e| fail("connect", "Google Cloud", e))?
            }};
        }
        Ok(Self {
            services: build!(google_cloud_run_v2::client::Services),
            revisions: build!(google_cloud_run_v2::client::Revisions),
            monitoring: build!(google_cloud_monitoring_v3::client::MetricService),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| fail("connect", "http", e))?,
            warmup_path: settings.warmup_path.clone(),
        })
    }

    async fn service(&self, name: &str) -> Result<Service, PlatformError> {
        self.services.get_service().set_name(name).send().await.map_err(|e| fail("GetService", name, e))
    }

    /// Revisions, newest first.
    async fn revision_list(&self, name: &str) -> Result<Vec<(String, i64, i32)>, PlatformError> {
        let mut items = self.revisions.list_revisions().set_parent(name).by_item();
        let mut out = Vec::new();
        while let Some(item) = items.next().await {
            let revision = item.map_err(|e| fail("ListRevisions", name, e))?;
            let created = revision.create_time.as_ref().map_or(0, |t| t.seconds());
            out.push((short(&revision.name).to_string(), created, revision.max_instance_request_concurrency));
        }
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        Ok(out)
    }

    pub async fn deployment(&self, guard: &Guard) -> Result<Deployment, PlatformError> {
        let (name, _) = target(guard);
        let service = self.service(&name).await?;
        let latest = short(&service.latest_ready_revision).to_string();
        // What serves now: the reconciled split (falling back to the spec before the first reconciliation).
        let split: Vec<(String, i32)> = if service.traffic_statuses.is_empty() {
            service.traffic.iter().map(|t| (resolve(&t.r#type, &t.revision, &latest), t.percent)).collect()
        } else {
            service.traffic_statuses.iter().map(|t| (resolve(&t.r#type, &t.revision, &latest), t.percent)).collect()
        };
        let mut shares: BTreeMap<String, i32> = BTreeMap::new();
        for (revision, percent) in split.into_iter().filter(|(_, p)| *p > 0) {
            *shares.entry(revision).or_default() += percent;
        }
        let order = self.revision_list(&name).await?;
        let newest = order.iter().map(|(r, _, _)| r).find(|r| shares.contains_key(*r)).cloned();
        let candidate = newest.or_else(|| shares.keys().next().cloned()).unwrap_or(latest);
        let primary = shares
            .iter()
            .filter(|(r, _)| **r != candidate)
            .max_by_key(|(_, p)| **p)
            .map(|(r, _)| r.clone())
            .unwrap_or_else(|| candidate.clone());
        let candidate_share = f64::from(shares.get(&candidate).copied().unwrap_or(100)) / 100.0;
        let get = |kind: &str| service.annotations.get(&annotation(kind)).cloned();
        let known_good = get("known-good");
        let capacity = get("prewarm").and_then(|v| {
            let (revision, release) = v.split_once('@')?;
            let release = match release {
                "standby" => Release::WhenPromoted,
                due => Release::At(due.parse().ok()?),
            };
            Some(Capacity { revision: revision.to_string(), release })
        });
        Ok(Deployment {
            baseline: if primary == candidate { known_good.clone() } else { Some(primary.clone()) },
            primary,
            candidate,
            candidate_share,
            known_good,
            token: service.etag.clone(),
            last_rollback_ms: get("rolled-back-at").and_then(|v| v.parse().ok()),
            capacity,
        })
    }

    /// One ListTimeSeries call per metric for all `requests` (guards of one project).
    pub async fn metrics(
        &self,
        requests: &[(&Guard, &Deployment)],
        windows: &[Window],
    ) -> Result<Vec<GuardMetrics>, PlatformError> {
        let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
            return Err(fail("ListTimeSeries", "-", "no windows"));
        };
        let Some((first_guard, _)) = requests.first() else { return Ok(Vec::new()) };
        let (_, project) = target(first_guard);
        let names: Vec<String> = requests
            .iter()
            .filter_map(|(g, _)| match &g.target {
                Target::CloudRun { service, .. } => Some(format!("\"{service}\"")),
                Target::Lambda { .. } => None,
            })
            .collect();
        let locations: std::collections::BTreeSet<String> = requests
            .iter()
            .filter_map(|(g, _)| match &g.target {
                Target::CloudRun { location, .. } => Some(format!("\"{location}\"")),
                Target::Lambda { .. } => None,
            })
            .collect();
        let scope = format!(
            "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = one_of({}) AND resource.labels.location = one_of({})",
            names.join(","),
            locations.into_iter().collect::<Vec<_>>().join(",")
        );
        let interval = TimeInterval::new()
            .set_start_time(google_cloud_wkt::Timestamp::clamp(first.start.div_euclid(1000), 0))
            .set_end_time(google_cloud_wkt::Timestamp::clamp(last.end.div_euclid(1000), 0));
        let by_revision = ["resource.labels.service_name", "resource.labels.revision_name"];
        // (metric type, aligner, reducer, extra group-by field) -> canonical metric names it feeds.
        let plan: [(&str, Aligner, Reducer, Option<&str>); 6] = [
            (
                "run.googleapis.com/request_count",
                Aligner::AlignDelta,
                Reducer::ReduceSum,
                Some("metric.labels.response_code_class"),
            ),
            ("run.googleapis.com/request_latencies", Aligner::AlignDelta, Reducer::ReducePercentile50, None),
            ("run.googleapis.com/request_latencies", Aligner::AlignDelta, Reducer::ReducePercentile95, None),
            ("run.googleapis.com/request_latencies", Aligner::AlignDelta, Reducer::ReducePercentile99, None),
            ("run.googleapis.com/container/instance_count", Aligner::AlignMax, Reducer::ReduceSum, None),
            ("run.googleapis.com/container/startup_latencies", Aligner::AlignDelta, Reducer::ReduceSum, None),
        ];
        let mut samples: Samples = BTreeMap::new();
        for (index, (metric, aligner, reducer, extra)) in plan.into_iter().enumerate() {
            let mut fields: Vec<String> = by_revision.iter().map(|f| f.to_string()).collect();
            fields.extend(extra.map(str::to_string));
            let aggregation = Aggregation::new()
                .set_alignment_period(google_cloud_wkt::Duration::clamp(60, 0))
                .set_per_series_aligner(aligner)
                .set_cross_series_reducer(reducer)
                .set_group_by_fields(fields);
            let mut series = self
                .monitoring
                .list_time_series()
                .set_name(format!("projects/{project}"))
                .set_filter(format!("metric.type = \"{metric}\" AND {scope}"))
                .set_interval(interval.clone())
                .set_aggregation(aggregation)
                .by_item();
            while let Some(ts) = series.next().await {
                let ts = ts.map_err(|e| fail("ListTimeSeries", metric, e))?;
                let labels = ts.resource.as_ref().map(|r| r.labels.clone()).unwrap_or_default();
                let (Some(service), Some(revision)) = (labels.get("service_name"), labels.get("revision_name")) else {
                    continue;
                };
                let class =
                    ts.metric.as_ref().and_then(|m| m.labels.get("response_code_class")).cloned().unwrap_or_default();
                let names: &[&'static str] = match index {
                    0 if class == "5xx" => &["requests", "errors"],
                    0 => &["requests"],
                    1 => &["latency_p50"],
                    2 => &["latency_p95"],
                    3 => &["latency_p99"],
                    4 => &["instances"],
                    _ => &["cold_starts"],
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
                    for name in names {
                        samples.entry((service.clone(), revision.clone(), name)).or_default().push((at, value));
                    }
                }
            }
        }
        // `errors` must be present (as zeros) wherever requests were counted without a 5xx series.
        let counted: Vec<(SeriesKey, Vec<(i64, f64)>)> = samples
            .iter()
            .filter(|((_, _, m), _)| *m == "requests")
            .map(|((s, r, _), points)| {
                ((s.clone(), r.clone(), "errors"), points.iter().map(|(at, _)| (*at, 0.0)).collect())
            })
            .collect();
        for (key, zeros) in counted {
            let errors = samples.entry(key).or_default();
            let have: std::collections::BTreeSet<i64> = errors.iter().map(|(at, _)| *at).collect();
            errors.extend(zeros.into_iter().filter(|(at, _)| !have.contains(at)));
        }
        Ok(requests
            .iter()
            .map(|(guard, deployment)| {
                let service = match &guard.target {
                    Target::CloudRun { service, .. } => service.clone(),
                    Target::Lambda { .. } => String::new(),
                };
                let revision = |id: &str, share: f64| {
                    let metrics = samples
                        .iter()
                        .filter(|((s, r, _), _)| *s == service && r == id)
                        .map(|((_, _, name), points)| {
                            MetricSeries::split(name, MetricKind::for_metric(name), points.iter().copied(), windows)
                        })
                        .collect();
                    Revision { id: id.to_string(), traffic_share: share.clamp(0.0, 1.0), metrics }
                };
                // Sum of all revisions' instances in the last window: what the deployment needs after a pin.
                let recent = last.start;
                let peak = samples
                    .iter()
                    .filter(|((s, _, m), _)| *s == service && *m == "instances")
                    .map(|(_, points)| {
                        points.iter().filter(|(at, _)| *at >= recent).map(|(_, v)| *v).fold(0.0, f64::max)
                    })
                    .sum::<f64>();
                GuardMetrics {
                    baseline: deployment.baseline.as_ref().map(|b| revision(b, 1.0 - deployment.candidate_share)),
                    candidate: revision(&deployment.candidate, deployment.candidate_share),
                    peak_concurrency: (peak > 0.0).then_some(peak),
                }
            })
            .collect())
    }

    /// Tags `revision` (so it is addressable and started) and sends warm-up requests to its tag URL: enough
    /// concurrent requests to occupy `capacity` instances at the revision's request concurrency.
    pub async fn prewarm(
        &self,
        guard: &Guard,
        revision: &str,
        capacity: u32,
        wait: bool,
        release: Release,
        clock: &Clock,
    ) -> Result<Prewarm, PlatformError> {
        let (name, _) = target(guard);
        let started = clock.now_ms().await.map_err(|e| fail("clock", &name, e))?;
        let mut service = self.service(&name).await?;
        let tagged = service.traffic.iter().any(|t| t.tag == WARM_TAG && t.revision == revision);
        if !tagged {
            let mut traffic: Vec<TrafficTarget> =
                service.traffic.iter().filter(|t| t.tag != WARM_TAG).cloned().collect();
            traffic.push(revision_target(revision, 0, WARM_TAG));
            // The capacity marker goes in the same PATCH as the tag, so no crash can leave a tag ripcord forgets.
            let marker = Mark::Capacity(Capacity { revision: revision.to_string(), release });
            let annotations = annotated(&service.annotations, &[marker]);
            let update = service.clone().set_traffic(traffic).set_annotations(annotations);
            service = self.update(&name, update, &["traffic", "annotations"]).await?;
        }
        let uri = service
            .traffic_statuses
            .iter()
            .find(|t| t.tag == WARM_TAG)
            .map(|t| t.uri.clone())
            .filter(|u| !u.is_empty());
        let mut outcome = Prewarm {
            method: "tag+warm-up".into(),
            revision: revision.to_string(),
            requested: capacity,
            ready: false,
            created: !tagged,
            waited_ms: 0,
            note: None,
        };
        let Some(uri) = uri else {
            outcome.note = Some(format!("tag {WARM_TAG} has no URL yet; no warm-up requests sent"));
            return Ok(outcome);
        };
        let concurrency = self
            .revision_list(&name)
            .await?
            .into_iter()
            .find(|(r, _, _)| r == revision)
            .map_or(80, |(_, _, c)| if c > 0 { c as u32 } else { 80 });
        let count = capacity.saturating_mul(concurrency).clamp(1, MAX_WARMUPS);
        let url = format!("{}{}", uri.trim_end_matches('/'), self.warmup_path);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..count {
            let (http, url) = (self.http.clone(), url.clone());
            tasks.spawn(async move {
                http.get(url).header("user-agent", "ripcord-warmup").send().await.map(|r| r.status().as_u16())
            });
        }
        let mut answered = 0u32;
        while let Some(result) = tasks.join_next().await {
            if matches!(result, Ok(Ok(status)) if status < 500) {
                answered += 1;
            }
        }
        outcome.ready = answered * 10 >= count * 9;
        outcome.note = Some(format!("{answered} of {count} warm-up requests answered"));
        if wait {
            clock.sleep(WARMUP_SETTLE).await.map_err(|e| fail("clock", &name, e))?;
        }
        let now = clock.now_ms().await.map_err(|e| fail("clock", &name, e))?;
        outcome.waited_ms = now - started;
        Ok(outcome)
    }

    /// PATCHes the traffic to 100% on `revision` with the etag read, keeps a tag on the revision rolled back from
    /// and the users' tags, then waits for the operation and for the split to be reconciled.
    pub async fn pin(
        &self,
        guard: &Guard,
        revision: &str,
        token: &str,
        from: &str,
        clock: &Clock,
    ) -> Result<Pin, PlatformError> {
        let (name, _) = target(guard);
        let current = self.service(&name).await?;
        let mut traffic = vec![revision_target(revision, 100, "")];
        for t in current.traffic.iter().filter(|t| !t.tag.is_empty() && t.tag != WARM_TAG && t.tag != ROLLED_BACK_TAG) {
            traffic.push(t.clone().set_percent(0));
        }
        if from != revision {
            traffic.push(revision_target(from, 0, ROLLED_BACK_TAG));
        }
        let update = current.clone().set_etag(token).set_traffic(traffic);
        let operation = self
            .services
            .update_service()
            .set_service(update)
            .set_update_mask(google_cloud_wkt::FieldMask::default().set_paths(["traffic"]))
            .send()
            .await;
        let operation = match operation {
            Ok(operation) => operation,
            Err(error)
                if error.status().is_some_and(|s| matches!(s.code, Code::Aborted | Code::FailedPrecondition)) =>
            {
                return Ok(Pin::Conflict);
            }
            Err(error) => return Err(fail("UpdateService", &name, error)),
        };
        // The operation's answer is not the last word: if polling it fails (a lost answer, a transient error),
        // the change may still have been applied, and the reconciled service says whether it was.
        let finished = self.finish(&name, operation.name).await;
        match (self.reconciled(&name, clock).await, finished) {
            (Ok(service), Ok(())) => Ok(Pin::Pinned { token: service.etag }),
            (Ok(service), Err(error)) if serves_only(&service, revision) => {
                tracing::warn!(service = %name, %error, "the pin's operation could not be followed; the service serves the target");
                Ok(Pin::Pinned { token: service.etag })
            }
            (Ok(_), Err(error)) | (Err(_), Err(error)) | (Err(error), Ok(())) => Err(error),
        }
    }

    /// Polls a long-running operation to its end.
    async fn finish(&self, name: &str, operation: String) -> Result<(), PlatformError> {
        let mut delay = Duration::from_millis(5);
        for _ in 0..240 {
            let op = self
                .services
                .get_operation()
                .set_name(&operation)
                .send()
                .await
                .map_err(|e| fail("GetOperation", name, e))?;
            if op.done {
                if let Some(google_cloud_longrunning::model::operation::Result::Error(status)) = &op.result {
                    return Err(fail(
                        "UpdateService",
                        name,
                        format!("the operation failed: {} (code {})", status.message, status.code),
                    ));
                }
                return Ok(());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        Err(fail("GetOperation", name, "the operation did not finish"))
    }

    /// Waits (bounded) until the traffic split is reconciled: statuses equal the spec, generation observed.
    async fn reconciled(&self, name: &str, clock: &Clock) -> Result<Service, PlatformError> {
        let mut waited = Duration::ZERO;
        loop {
            let service = self.service(name).await?;
            let spec: Vec<(String, i32, String)> =
                service.traffic.iter().map(|t| (t.revision.clone(), t.percent, t.tag.clone())).collect();
            let status: Vec<(String, i32, String)> =
                service.traffic_statuses.iter().map(|t| (t.revision.clone(), t.percent, t.tag.clone())).collect();
            if !service.reconciling && spec == status && service.observed_generation == service.generation {
                return Ok(service);
            }
            if waited >= RECONCILE_TIMEOUT {
                return Err(fail(
                    "GetService",
                    name,
                    format!("the traffic split was not reconciled within {RECONCILE_TIMEOUT:?}"),
                ));
            }
            clock.sleep(RECONCILE_POLL).await.map_err(|e| fail("clock", name, e))?;
            waited += RECONCILE_POLL;
        }
    }

    /// Runs an update of `fields` and waits for its operation.
    async fn update(&self, name: &str, service: Service, fields: &[&str]) -> Result<Service, PlatformError> {
        let mask = google_cloud_wkt::FieldMask::default().set_paths(fields.iter().map(|f| f.to_string()));
        self.services
            .update_service()
            .set_service(service)
            .set_update_mask(mask)
            .poller()
            .until_done()
            .await
            .map_err(|e| fail("UpdateService", name, e))
    }

    pub async fn versions(&self, guard: &Guard) -> Result<Vec<String>, PlatformError> {
        let (name, _) = target(guard);
        Ok(self.revision_list(&name).await?.into_iter().map(|(r, _, _)| r).collect())
    }

    /// Writes ripcord's annotations (with the current etag; one retry if it changes meanwhile).
    pub async fn mark(&self, guard: &Guard, marks: &[Mark]) -> Result<(), PlatformError> {
        let (name, _) = target(guard);
        let mut last = None;
        for _ in 0..2 {
            let service = self.service(&name).await?;
            let annotations = annotated(&service.annotations, marks);
            match self.update(&name, service.set_annotations(annotations), &["annotations"]).await {
                Ok(_) => return Ok(()),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| fail("UpdateService", &name, "annotations not written")))
    }

    /// Removes the warm-up tag from `revision` (its extra instances then scale down on their own).
    pub async fn release(&self, guard: &Guard, revision: &str) -> Result<(), PlatformError> {
        let (name, _) = target(guard);
        let service = self.service(&name).await?;
        if !service.traffic.iter().any(|t| t.tag == WARM_TAG) {
            return Ok(());
        }
        let traffic: Vec<TrafficTarget> = service
            .traffic
            .iter()
            .filter(|t| !(t.tag == WARM_TAG && t.percent == 0))
            .cloned()
            .map(|t| if t.tag == WARM_TAG { t.set_tag("") } else { t })
            .collect();
        let _ = revision;
        self.update(&name, service.set_traffic(traffic), &["traffic"]).await.map(|_| ())
    }
}

/// Whether all of the service's reconciled traffic goes to `revision`.
fn serves_only(service: &Service, revision: &str) -> bool {
    let latest = short(&service.latest_ready_revision);
    service
        .traffic_statuses
        .iter()
        .filter(|t| t.percent > 0)
        .all(|t| resolve(&t.r#type, &t.revision, latest) == revision)
}

/// `annotations` with ripcord's markers set or cleared.
fn annotated(annotations: &HashMap<String, String>, marks: &[Mark]) -> HashMap<String, String> {
    let mut annotations = annotations.clone();
    for mark in marks {
        match mark {
            Mark::KnownGood(revision) => drop(annotations.insert(annotation("known-good"), revision.clone())),
            Mark::RolledBackAt(ms) => drop(annotations.insert(annotation("rolled-back-at"), ms.to_string())),
            Mark::Capacity(Capacity { revision, release }) => {
                let when = match release {
                    Release::At(due) => due.to_string(),
                    Release::WhenPromoted => "standby".to_string(),
                };
                drop(annotations.insert(annotation("prewarm"), format!("{revision}@{when}")))
            }
            Mark::ClearCapacity => drop(annotations.remove(&annotation("prewarm"))),
        }
    }
    annotations
}

fn resolve(kind: &TrafficTargetAllocationType, revision: &str, latest: &str) -> String {
    if *kind == TrafficTargetAllocationType::Latest || revision.is_empty() {
        latest.to_string()
    } else {
        short(revision).to_string()
    }
}

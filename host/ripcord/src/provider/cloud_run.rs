//! Google Cloud Run through google-cloud-run-v2. A guard is a service: the candidate is the newest revision
//! serving traffic, the baseline the largest other one during a split, or the last known good kept in the service
//! annotation `ripcord.dev/known-good`. Metrics come from Cloud Monitoring (`cloud_monitoring.rs`). The prewarm
//! tags the target revision and sends warm-up requests to its tag URL; the pin is one PATCH of the traffic and of
//! ripcord's annotations with the etag read, followed by the operation — whose answer, the service reconciled,
//! verifies it (else a bounded wait until the split is reconciled, whose read does). A rollback thus costs two
//! writes (the tag, the pin) of the 180 a minute a region allows, and one GetService (the prewarm's) besides the
//! operations' polls: each step builds on the service the step before left ([`CloudRun::left`]).

use super::cloud_run_traffic::{is_reconciled, revision_target, serves_only, shares, short};
use super::gcp::{client, credentials, fail};
use super::markers::{self, Marker, Markers};
use super::quota::Budget;
use super::{
    Capacity, Changer, Deployment, Mark, MetricsAnswer, Pin, PinRequest, PrewarmRequest, Prewarmed, ProviderError,
    Reader, SlowRequest,
};
use crate::config::{GcpSettings, Guard, Target};
use crate::model::clock::Clock;
use crate::model::evaluation::Window;
use google_cloud_gax::error::rpc::Code;
use google_cloud_run_v2::model::{Service, TrafficTarget};
use std::collections::HashMap;
use std::time::Duration;

/// The tag the prewarm puts on the rollback target, to reach it before it serves traffic.
pub const WARM_TAG: &str = "ripcord-warm";
/// The tag kept on the revision rolled back from, so it stays reachable for debugging.
pub const ROLLED_BACK_TAG: &str = "ripcord-rolled-back";
/// Longest wait for the traffic split to be reconciled after a pin.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(120);
const RECONCILE_POLL: Duration = Duration::from_secs(1);
/// The first wait before polling an operation again (doubling up to [`OPERATION_POLL`]).
const OPERATION_FIRST_POLL: Duration = Duration::from_millis(5);
/// The longest wait between two polls of an operation, unless more operations wait than the read quota serves in
/// that time ([`Pollers`](super::quota::Pollers)).
const OPERATION_POLL: Duration = Duration::from_secs(2);
/// Most warm-up requests one prewarm sends.
const MAX_WARMUPS: u32 = 2_000;
/// After the warm-up requests answered, time for the instances they started to finish them before traffic moves.
const WARMUP_SETTLE: Duration = Duration::from_secs(5);

/// Clients for Cloud Run and Cloud Monitoring.
#[derive(Debug, Clone)]
pub struct CloudRun {
    services: google_cloud_run_v2::client::Services,
    revisions: google_cloud_run_v2::client::Revisions,
    monitoring: google_cloud_monitoring_v3::client::MetricService,
    http: reqwest::Client,
    warmup_path: String,
    /// The project's API quotas, shared by every guard of the process (`quota.rs`): Cloud Run Admin's reads and
    /// writes per region (lanes `run.read@LOCATION`, `run.write@LOCATION`) and Monitoring's queries.
    budget: std::sync::Arc<Budget>,
    /// Each service's revisions as ListRevisions last listed them (creation time, request concurrency), by service
    /// name: revisions never change once created, so a split is ordered without asking again.
    revisions_seen: std::sync::Arc<std::sync::Mutex<HashMap<String, Revisions>>>,
    /// Long-running operations being polled, so that each polls once per round of the read quota at most.
    operations: std::sync::Arc<super::quota::Pollers>,
    /// Each service as a rollback's last step left it — its prewarm's tagged service as the operation answered it,
    /// or the rollback's re-read — so the next step of that rollback needs no read of its own: the re-read after a
    /// prewarm answers from it, and the pin (which takes it) builds its PATCH from it when its etag is the token.
    /// The etag makes this safe: a service changed since is a conflict, which the rollback resolves by reading; a
    /// prewarm starts by dropping what an earlier rollback left. Entries older than [`LEFT_FOR`] are dropped, so
    /// only rollbacks in flight are kept.
    left: std::sync::Arc<std::sync::Mutex<HashMap<String, (std::time::Instant, Service)>>>,
}

/// How long a service a rollback's step left is kept for the next step ([`CloudRun::left`]).
const LEFT_FOR: Duration = Duration::from_secs(600);

/// A service's revisions: creation time (seconds) and request concurrency, by short name.
type Revisions = HashMap<String, (i64, i32)>;

/// Services a ListServices page asks for.
const LIST_PAGE: i32 = 500;

/// The budget of a project: Cloud Run Admin reads and writes (writes also at `changes_per_second`), Monitoring's
/// time-series queries, at the share of their per-minute quotas.
fn budget(settings: &GcpSettings) -> Budget {
    let q = settings.quotas;
    let per_second = |per_minute: f64| per_minute * q.share / 60.0;
    Budget::new([
        (RUN_READ.to_string(), per_second(q.run_reads_per_minute)),
        (RUN_WRITE.to_string(), per_second(q.run_writes_per_minute).min(settings.changes_per_second)),
        (super::cloud_monitoring::MONITORING_READ.to_string(), per_second(q.monitoring_reads_per_minute)),
    ])
}

/// The quota of Cloud Run Admin's read requests (GetService, ListRevisions, GetOperation), per region.
const RUN_READ: &str = "run.read";
/// The quota of Cloud Run Admin's write requests (UpdateService), per region.
const RUN_WRITE: &str = "run.write";

/// The lane of `quota` for the service `name` (`projects/P/locations/L/services/S`): one per region.
fn lane(quota: &str, name: &str) -> String {
    let location = name.split('/').nth(3).unwrap_or_default();
    format!("{quota}@{location}")
}

fn target(guard: &Guard) -> (String, &str) {
    match &guard.target {
        Target::CloudRun { project, location, service } => {
            (format!("projects/{project}/locations/{location}/services/{service}"), project.as_str())
        }
        Target::Lambda { function, .. } => (function.clone(), ""),
    }
}

/// Where a marker lives: the annotation `ripcord.dev/MARKER` on the service.
fn annotation(marker: Marker) -> String {
    format!("ripcord.dev/{}", marker.name())
}

impl CloudRun {
    /// Builds the clients: with an endpoint override (the simulator) anonymous credentials and fast operation
    /// polling; otherwise application-default credentials, checked once.
    pub async fn connect(settings: &GcpSettings) -> Result<Self, ProviderError> {
        let credentials = credentials(settings).await?;
        Ok(Self {
            services: client!(google_cloud_run_v2::client::Services, settings, &credentials)?,
            revisions: client!(google_cloud_run_v2::client::Revisions, settings, &credentials)?,
            monitoring: client!(google_cloud_monitoring_v3::client::MetricService, settings, &credentials)?,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| fail("connect", "http", e))?,
            warmup_path: settings.warmup_path.clone(),
            budget: std::sync::Arc::new(budget(settings)),
            revisions_seen: Default::default(),
            operations: Default::default(),
            left: Default::default(),
        })
    }

    /// The deployment a service's object says: the candidate is the newest revision serving traffic — the newest
    /// created one when it serves (a canary usually is), else ordered by creation, which a split of revisions this
    /// process has not seen asks ListRevisions for, once per revision — the primary the largest other one.
    async fn deployment_of(&self, name: &str, service: &Service) -> Result<Deployment, ProviderError> {
        let latest = short(&service.latest_ready_revision).to_string();
        let shares = shares(service);
        let newest_created = short(&service.latest_created_revision);
        let candidate = if shares.len() <= 1 {
            shares.keys().next().cloned().unwrap_or(latest)
        } else if shares.contains_key(newest_created) {
            newest_created.to_string()
        } else {
            let order = self.order(name, shares.keys()).await?;
            let newest = shares.keys().max_by_key(|r| order.get(*r).copied().unwrap_or(i64::MIN)).cloned();
            newest.unwrap_or(latest)
        };
        let primary = shares
            .iter()
            .filter(|(r, _)| **r != candidate)
            .max_by_key(|(_, p)| **p)
            .map(|(r, _)| r.clone())
            .unwrap_or_else(|| candidate.clone());
        let candidate_share = f64::from(shares.get(&candidate).copied().unwrap_or(100)) / 100.0;
        let markers = Markers::decode(|marker| service.annotations.get(&annotation(marker)).map(String::as_str));
        Ok(Deployment::new(primary, candidate, candidate_share, service.etag.clone(), markers))
    }

    /// When each of `revisions` of service `name` was created (seconds; a tie broken by name), from what this
    /// process learnt of the service's revisions — which never change once created — asking ListRevisions only
    /// when one of them is new to it.
    async fn order<'a>(
        &self,
        name: &str,
        revisions: impl Iterator<Item = &'a String> + Clone,
    ) -> Result<HashMap<String, i64>, ProviderError> {
        let known = |order: &Revisions| revisions.clone().all(|r| order.contains_key(r));
        let cached = self.revisions_seen.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned();
        let order = match cached {
            Some(order) if known(&order) => order,
            _ => {
                let listed: Revisions =
                    self.revision_list(name).await?.into_iter().map(|(r, created, c)| (r, (created, c))).collect();
                self.revisions_seen.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), listed.clone());
                listed
            }
        };
        // Newest first in `revision_list`; here a rank that sorts the same way (creation, then name).
        let mut ranked: Vec<(&String, &(i64, i32))> = order.iter().collect();
        ranked.sort_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| a.0.cmp(b.0)));
        Ok(ranked.into_iter().enumerate().map(|(rank, (r, _))| (r.clone(), rank as i64)).collect())
    }

    /// Every service of a region (`projects/P/locations/L`), page by page: each page a read that takes its turn.
    async fn service_list(&self, parent: &str) -> Result<Vec<Service>, ProviderError> {
        let (mut out, mut token) = (Vec::new(), String::new());
        loop {
            self.budget.turn(&lane(RUN_READ, &format!("{parent}/services/-")), "ListServices", parent).await?;
            let page = self
                .services
                .list_services()
                .set_parent(parent)
                .set_page_size(LIST_PAGE)
                .set_page_token(std::mem::take(&mut token))
                .send()
                .await
                .map_err(|e| fail("ListServices", parent, e))?;
            out.extend(page.services);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }

    async fn service(&self, name: &str) -> Result<Service, ProviderError> {
        self.budget.turn(&lane(RUN_READ, name), "GetService", name).await?;
        self.services.get_service().set_name(name).send().await.map_err(|e| fail("GetService", name, e))
    }

    /// Keeps `service` as a rollback's step left it, for the next step ([`CloudRun::left`]).
    fn leave(&self, name: &str, service: &Service) {
        let now = std::time::Instant::now();
        let mut left = self.left.lock().unwrap_or_else(|p| p.into_inner());
        left.retain(|_, (at, _)| now.duration_since(*at) < LEFT_FOR);
        left.insert(name.to_string(), (now, service.clone()));
    }

    /// The service a rollback's last step left, if any (kept for the step after).
    fn left(&self, name: &str) -> Option<Service> {
        let left = self.left.lock().unwrap_or_else(|p| p.into_inner());
        left.get(name).filter(|(at, _)| at.elapsed() < LEFT_FOR).map(|(_, s)| s.clone())
    }

    /// Takes the service a rollback's last step left when it is still at `etag`, else reads it.
    async fn current(&self, name: &str, etag: &str) -> Result<Service, ProviderError> {
        let left = self.left.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
        match left {
            Some((at, service)) if service.etag == etag && at.elapsed() < LEFT_FOR => Ok(service),
            _ => self.service(name).await,
        }
    }

    /// Revisions, newest first (pages by hand: each page is a read that takes its turn).
    async fn revision_list(&self, name: &str) -> Result<Vec<(String, i64, i32)>, ProviderError> {
        let (mut out, mut token) = (Vec::new(), String::new());
        loop {
            self.budget.turn(&lane(RUN_READ, name), "ListRevisions", name).await?;
            let page = self
                .revisions
                .list_revisions()
                .set_parent(name)
                .set_page_token(std::mem::take(&mut token))
                .send()
                .await
                .map_err(|e| fail("ListRevisions", name, e))?;
            for revision in &page.revisions {
                let created = revision.create_time.as_ref().map_or(0, |t| t.seconds());
                out.push((short(&revision.name).to_string(), created, revision.max_instance_request_concurrency));
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        Ok(out)
    }

    /// A revision's request concurrency, from what this process learnt of the service's revisions, else listed.
    async fn concurrency(&self, name: &str, revision: &str) -> Result<i32, ProviderError> {
        let seen = self
            .revisions_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .and_then(|r| r.get(revision).copied());
        match seen {
            Some((_, concurrency)) => Ok(concurrency),
            None => {
                Ok(self.revision_list(name).await?.into_iter().find(|(r, _, _)| r == revision).map_or(0, |(_, _, c)| c))
            }
        }
    }

    /// Follows a long-running operation to its end: at once if the update answered it done, else by polling —
    /// every 5 ms doubling to 2 s, or once per round of the read quota when more operations wait than it serves.
    /// Returns the service as the finished operation answers it, when it does.
    async fn finish(
        &self,
        name: &str,
        operation: google_cloud_longrunning::model::Operation,
    ) -> Result<Option<Service>, ProviderError> {
        if operation.done {
            return finished(name, &operation);
        }
        let _polling = self.operations.start();
        let read = lane(RUN_READ, name);
        let mut delay = OPERATION_FIRST_POLL;
        for _ in 0..240 {
            self.budget.turn(&read, "GetOperation", name).await?;
            let op = self
                .services
                .get_operation()
                .set_name(&operation.name)
                .send()
                .await
                .map_err(|e| fail("GetOperation", name, e))?;
            if op.done {
                return finished(name, &op);
            }
            tokio::time::sleep(self.operations.interval(&self.budget, &read, delay)).await;
            delay = (delay * 2).min(OPERATION_POLL);
        }
        Err(fail("GetOperation", name, "the operation did not finish"))
    }

    /// Waits (bounded) until the traffic split is reconciled: statuses equal the spec, generation observed.
    async fn reconciled(&self, name: &str, clock: &Clock) -> Result<Service, ProviderError> {
        let mut waited = Duration::ZERO;
        loop {
            let service = self.service(name).await?;
            if is_reconciled(&service) {
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

    /// Writes annotations that only record what ripcord saw ([`Mark::is_bookkeeping`]): unpaced, and without
    /// waiting for the operation — annotations are in the service's spec as soon as the update is accepted, and
    /// nothing serves differently. Waiting made the first cycle over a freshly deployed 10,000-service fleet poll
    /// 20,000 operations (20 s).
    async fn record(&self, name: &str, service: Service) -> Result<(), ProviderError> {
        let mask = google_cloud_wkt::FieldMask::default().set_paths(["annotations".to_string()]);
        self.budget.turn(&lane(RUN_WRITE, name), "UpdateService", name).await?;
        let operation = self
            .services
            .update_service()
            .set_service(service)
            .set_update_mask(mask)
            .send()
            .await
            .map_err(|e| fail("UpdateService", name, e))?;
        finished(name, &operation).map(|_| ())
    }

    /// Runs an update of `fields` (a change: traffic, or markers that steer ripcord) and waits for its operation;
    /// returns the service as the finished operation answers it (no read of its own), when it does. Every call
    /// takes its turn.
    async fn update(&self, name: &str, service: Service, fields: &[&str]) -> Result<Option<Service>, ProviderError> {
        let mask = google_cloud_wkt::FieldMask::default().set_paths(fields.iter().map(|f| f.to_string()));
        self.budget.turn(&lane(RUN_WRITE, name), "UpdateService", name).await?;
        let operation = self
            .services
            .update_service()
            .set_service(service)
            .set_update_mask(mask)
            .send()
            .await
            .map_err(|e| fail("UpdateService", name, e))?;
        self.finish(name, operation).await
    }
}

#[async_trait::async_trait]
impl Reader for CloudRun {
    async fn deployment(&self, guard: &Guard) -> Result<Deployment, ProviderError> {
        let (name, _) = target(guard);
        let service = self.service(&name).await?;
        self.deployment_of(&name, &service).await
    }

    /// A rollback's re-read after its prewarm: the service the prewarm left (its own tag's PATCH answered it; the
    /// pin's etag catches any change since), else a read, left for the pin.
    async fn rerouted(&self, guard: &Guard, view: &Deployment) -> Result<Deployment, ProviderError> {
        let _ = view;
        let (name, _) = target(guard);
        let service = match self.left(&name) {
            Some(service) => service,
            None => {
                let service = self.service(&name).await?;
                self.leave(&name, &service);
                service
            }
        };
        self.deployment_of(&name, &service).await
    }

    fn reads_in_bulk(&self) -> bool {
        true
    }

    /// Every guarded service of a region in one ListServices (a page per [`LIST_PAGE`] services), which carries
    /// their traffic, statuses and annotations; ListRevisions only for a split that holds a revision this process
    /// has not yet ordered.
    async fn deployments(&self, guards: &[&Guard]) -> Vec<Result<Deployment, ProviderError>> {
        let names: Vec<String> = guards.iter().map(|g| target(g).0).collect();
        let mut parents: Vec<String> =
            names.iter().filter_map(|n| n.rsplit_once("/services/").map(|(p, _)| p.to_string())).collect();
        parents.sort();
        parents.dedup();
        let mut listed: HashMap<String, Result<Service, ProviderError>> = HashMap::new();
        for parent in &parents {
            match self.service_list(parent).await {
                Ok(services) => listed.extend(services.into_iter().map(|s| (s.name.clone(), Ok(s)))),
                Err(error) => {
                    for name in names.iter().filter(|n| n.starts_with(&format!("{parent}/"))) {
                        listed.insert(name.clone(), Err(error.clone()));
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for name in &names {
            out.push(match listed.get(name) {
                Some(Ok(service)) => self.deployment_of(name, service).await,
                Some(Err(error)) => Err(error.clone()),
                None => Err(fail("ListServices", name, "no such service in its region (NOT_FOUND)")),
            });
        }
        out
    }

    async fn metrics(&self, requests: &[(&Guard, &Deployment)], windows: &[Window]) -> Vec<MetricsAnswer> {
        match super::cloud_monitoring::metrics((&self.monitoring, &self.budget), requests, windows).await {
            Ok(answers) => answers.into_iter().map(Ok).collect(),
            Err(error) => super::all_failed(requests, &error),
        }
    }

    async fn slow_requests(&self, requests: &[SlowRequest<'_>], windows: &[Window]) -> Vec<MetricsAnswer> {
        match super::cloud_monitoring::slow_requests((&self.monitoring, &self.budget), requests, windows).await {
            Ok(answers) => answers.into_iter().map(Ok).collect(),
            Err(error) => super::all_failed(requests, &error),
        }
    }

    async fn revisions(&self, guard: &Guard) -> Result<Vec<String>, ProviderError> {
        let (name, _) = target(guard);
        Ok(self.revision_list(&name).await?.into_iter().map(|(r, _, _)| r).collect())
    }
}

#[async_trait::async_trait]
impl Changer for CloudRun {
    /// Tags `revision` (so it is addressable and started) and sends warm-up requests to its tag URL: enough
    /// concurrent requests to occupy `capacity` instances at the revision's request concurrency.
    async fn prewarm(
        &self,
        guard: &Guard,
        request: PrewarmRequest<'_>,
        clock: &Clock,
    ) -> Result<Prewarmed, ProviderError> {
        let PrewarmRequest { revision, capacity, wait, release } = request;
        let (name, _) = target(guard);
        let started = clock.now_ms().await.map_err(|e| fail("clock", &name, e))?;
        self.left.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
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
            // The finished operation answers the service with the tag's URL; read it only when it does not.
            service = match self.update(&name, update, &["traffic", "annotations"]).await? {
                Some(updated) if warm_uri(&updated).is_some() => updated,
                _ => self.service(&name).await?,
            };
        }
        if wait {
            // A rollback's prewarm: its re-read and pin follow (a standby's prewarm has no pin to leave it for).
            self.leave(&name, &service);
        }
        let uri = warm_uri(&service);
        let mut outcome = Prewarmed {
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
        let concurrency = match self.concurrency(&name, revision).await? {
            c if c > 0 => c as u32,
            _ => 80,
        };
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

    /// PATCHes the traffic to 100% on `revision` with the etag of `token` (the service the prewarm left when it is
    /// at that etag, else read), keeps a tag on the revision rolled back from and the users' tags, writes the
    /// markers in the same PATCH (they land with the pin or not at all), then follows the operation: the reconciled
    /// service it answers is the pin's verification, or a read once the split is reconciled when it answers none.
    async fn pin(&self, guard: &Guard, request: PinRequest<'_>, clock: &Clock) -> Result<Pin, ProviderError> {
        let PinRequest { revision, token, from, marks } = request;
        let (name, _) = target(guard);
        let current = self.current(&name, token).await?;
        let mut traffic = vec![revision_target(revision, 100, "")];
        for t in current.traffic.iter().filter(|t| !t.tag.is_empty() && t.tag != WARM_TAG && t.tag != ROLLED_BACK_TAG) {
            traffic.push(t.clone().set_percent(0));
        }
        if from != revision {
            traffic.push(revision_target(from, 0, ROLLED_BACK_TAG));
        }
        let annotations = annotated(&current.annotations, marks);
        let update = current.clone().set_etag(token).set_traffic(traffic).set_annotations(annotations);
        self.budget.turn(&lane(RUN_WRITE, &name), "UpdateService", &name).await?;
        let operation = self
            .services
            .update_service()
            .set_service(update)
            .set_update_mask(google_cloud_wkt::FieldMask::default().set_paths(["traffic", "annotations"]))
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
        // A finished operation answers the service as reconciled: then that read of the operation verifies it.
        let finished = match self.finish(&name, operation).await {
            Ok(Some(service)) if is_reconciled(&service) => Ok(Some(service)),
            Ok(_) => Ok(None),
            Err(error) => Err(error),
        };
        let read = match &finished {
            Ok(Some(service)) => Ok(service.clone()),
            _ => self.reconciled(&name, clock).await,
        };
        let service = match (read, finished.map(|_| ())) {
            (Ok(service), Ok(())) => service,
            (Ok(service), Err(error)) if serves_only(&service, revision) => {
                tracing::warn!(service = %name, %error, "the pin's operation could not be followed; the service serves the target");
                service
            }
            (Ok(_), Err(error)) | (Err(_), Err(error)) | (Err(error), Ok(())) => return Err(error),
        };
        let seen = self.deployment_of(&name, &service).await.ok().map(Box::new);
        Ok(Pin::Pinned { token: service.etag, marked: true, seen })
    }

    /// Writes ripcord's annotations (with the current etag; one retry if it changes meanwhile).
    async fn mark(&self, guard: &Guard, marks: &[Mark]) -> Result<(), ProviderError> {
        let (name, _) = target(guard);
        let mut last = None;
        for _ in 0..2 {
            let service = self.service(&name).await?;
            let annotations = annotated(&service.annotations, marks);
            let bookkeeping = marks.iter().all(Mark::is_bookkeeping);
            let service = service.set_annotations(annotations);
            let written = if bookkeeping {
                self.record(&name, service).await
            } else {
                self.update(&name, service, &["annotations"]).await.map(|_| ())
            };
            match written {
                Ok(()) => return Ok(()),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| fail("UpdateService", &name, "annotations not written")))
    }

    /// Removes the warm-up tag from `revision` (its extra instances then scale down on their own).
    async fn release(&self, guard: &Guard, revision: &str) -> Result<(), ProviderError> {
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

/// What a finished operation says: its error, or the service it answers (when its response decodes as one).
fn finished(
    name: &str,
    operation: &google_cloud_longrunning::model::Operation,
) -> Result<Option<Service>, ProviderError> {
    use google_cloud_longrunning::model::operation::Result as Outcome;
    match &operation.result {
        Some(Outcome::Error(status)) => {
            Err(fail("UpdateService", name, format!("the operation failed: {} (code {})", status.message, status.code)))
        }
        Some(Outcome::Response(response)) => Ok(response.to_msg::<Service>().ok()),
        _ => Ok(None),
    }
}

/// The URL of the warm-up tag, once the service serves it.
fn warm_uri(service: &Service) -> Option<String> {
    service.traffic_statuses.iter().find(|t| t.tag == WARM_TAG).map(|t| t.uri.clone()).filter(|u| !u.is_empty())
}

/// `annotations` with ripcord's markers set or cleared.
fn annotated(annotations: &HashMap<String, String>, marks: &[Mark]) -> HashMap<String, String> {
    let mut annotations = annotations.clone();
    for mark in marks {
        match markers::encode(mark) {
            (marker, Some(value)) => drop(annotations.insert(annotation(marker), value)),
            (marker, None) => drop(annotations.remove(&annotation(marker))),
        }
    }
    annotations
}

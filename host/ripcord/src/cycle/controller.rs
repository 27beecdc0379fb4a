//! The controller: runs cycles over a configuration's guards, and the manual pull. It owns the configuration, the
//! provider clients (one per region or project) and the [`Services`] every guard's cycle shares (the policies, the
//! clock, the audit log); it reads every deployment, fetches the metrics of each batch together, and hands each
//! guard, on its [`GuardContext`], to its cycle (`cycle/guard.rs`), which judges and acts. This is where the stages
//! meet; each is tested on its own.

pub use crate::act::context::Requester;
use crate::act::context::{Cycle, GuardContext, JUDGE_CONCURRENCY, Services};
use crate::config::{BrokenGuard, Config, Guard, Mode};
use crate::judge::policies::PolicySet;
use crate::model::clock::Clock;
use crate::model::concurrency::{Task, bounded};
use crate::model::evaluation::{History, Window};
use crate::model::verdict::{Finding, Verdict};
use crate::observe::deployment_cache::{DeploymentCache, Forgetful};
use crate::observe::inputs;
use crate::provider::quota::{self, CallContext, Priority};
use crate::provider::{Deployment, GuardMetrics, Provider, ProviderError, SlowRequest};
use crate::record::audit::{Actor, Audit, DeploymentRecord};
use crate::record::effect::GuardResult;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Deployments read at once (each read is one or two API calls).
const READ_CONCURRENCY: usize = 32;
/// What a person asked [`Controller::manual`] for.
#[derive(Debug, Clone, Copy)]
enum Manual<'a> {
    Pull(Option<&'a str>),
    Answer { approve: bool },
}

/// Guard cycles in flight at once, judging or acting: a rollback waiting for its prewarm holds no judging slot, so
/// the rollbacks of a fleet-wide bad release wait together (a waiting cycle costs a few KiB and no polling).
const CYCLE_CONCURRENCY: usize = 1024;

/// A guard's provider and its deployment as read, or why they could not be.
type Read = Result<(Arc<dyn Provider>, Deployment), Unread>;
/// A guard's metrics, by guard name, or why they could not be read.
type MetricsByGuard = BTreeMap<String, Result<GuardMetrics, Unread>>;

/// Why something of a guard could not be read this cycle.
#[derive(Debug, Clone)]
pub(crate) struct Unread {
    /// What went wrong, one line, bounded.
    pub(crate) error: String,
    /// A quota used up or a throttle: the read was not made, the guard is deferred (not failed) and served first
    /// next cycle.
    pub(crate) deferred: bool,
}

impl Unread {
    fn of(error: &ProviderError) -> Self {
        Self { error: bounded_error(error), deferred: error.throttled }
    }
}

/// Longest this process judges a guard on a view of its deployment read earlier (the clock's time).
const MAX_VIEW_AGE_MS: i64 = crate::observe::deployment_cache::MAX_AGE_MS;
/// How long into a cycle views read earlier are refreshed, oldest first, before the rest are judged as they were
/// read (deployments with no view may be read until the read deadline).
const REFRESH_BUDGET: Duration = Duration::from_secs(10);
/// From this many guards without a view (a fresh process's fleet), the cycle first asks how much each one's errors
/// rose ([`Reader::error_rises`]: two metric queries a guard) and reads those whose errors rose first. Fewer are
/// read in seconds anyway.
const TRIAGE_AT: usize = 100;

/// The share of the shortest interval of a cycle's guards its reads may take before the rest are deferred (the
/// judging and acting need the remainder), within these bounds.
const READ_SHARE: f64 = 0.6;
const MIN_READ_BUDGET: Duration = Duration::from_secs(5);
const MAX_READ_BUDGET: Duration = Duration::from_secs(45);
/// A guard in a metrics batch, with its provider and deployment.
type BatchMember<'a> = (&'a Guard, &'a Arc<dyn Provider>, &'a Deployment);

/// A guard in a slow-request batch, with the thresholds its policies asked for.
type SlowBatchMember<'a> = (&'a Guard, &'a Arc<dyn Provider>, &'a Deployment, Vec<u32>);

/// A guard in a history batch: its provider, the deployment as if the known good served alone, the span.
type HistoryRequest<'a> = (&'a Guard, &'a Arc<dyn Provider>, Deployment, Window);

/// Longest error text copied into a guard's result and records (an error shared by a whole batch is copied into
/// every guard's: 10,000 copies of a 66 KB message once made `check --json` print 561 MiB).
const MAX_ERROR: usize = 1024;

/// A provider error as copied into a guard's result: one line, at most [`MAX_ERROR`] bytes.
fn bounded_error(error: &ProviderError) -> String {
    crate::model::text::truncate(&error.to_string(), MAX_ERROR).into_owned()
}

/// Runs guard cycles for a configuration.
#[derive(Debug)]
pub struct Controller {
    pub(crate) config: Config,
    /// What every guard's cycle shares (`act/context.rs`).
    pub(crate) services: Services,
    /// Provider clients by batch key (region, project), connected on first use.
    providers: Mutex<BTreeMap<String, Arc<dyn Provider>>>,
    /// Guards deferred by the last cycle (a quota used up): read first in the next.
    deferred: Mutex<std::collections::BTreeSet<String>>,
    /// The deployments this process last read (`observe/deployment_cache.rs`).
    cache: Arc<DeploymentCache>,
    /// When each guard was last judged by this process (the clock's ms): how old a deferred guard's data is.
    last_judged: Mutex<BTreeMap<String, i64>>,
}

impl Controller {
    /// A controller for `config`, whose policies were loaded and checked into `policies`.
    pub fn new(config: Config, policies: PolicySet, clock: Clock, audit: Audit) -> Self {
        Self {
            config,
            services: Services::new(policies, clock, audit),
            providers: Mutex::new(BTreeMap::new()),
            deferred: Mutex::default(),
            cache: Arc::default(),
            last_judged: Mutex::default(),
        }
    }

    /// Runs every guard in dry-run mode (`--dry-run`), whatever its own mode, when `on`.
    pub fn set_dry_run(&mut self, on: bool) {
        self.services.force_dry_run = on;
    }

    /// Real time by which a change must be pinned (function mode: the invocation's deadline less what the pin and
    /// its records take); also bounds the wait for notifications.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.services.deadline = deadline;
    }

    /// Appends every evaluation to `path` (`check --record`, for `ripcord replay`).
    pub fn record_evaluations(&mut self, path: Option<PathBuf>) {
        self.services.evaluations_file = path;
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn clock(&self) -> &Clock {
        &self.services.clock
    }

    pub fn audit_path(&self) -> &std::path::Path {
        self.services.audit.path()
    }

    /// Uses `provider` for the guards whose batch key (`Guard::batch_key`) is `batch`, instead of connecting to
    /// the cloud: how the cycle's unit tests run against an in-memory provider.
    pub fn use_provider(&self, batch: &str, provider: Arc<dyn Provider>) {
        self.providers.lock().unwrap_or_else(|p| p.into_inner()).insert(batch.to_string(), provider);
    }

    async fn provider(&self, guard: &Guard) -> Result<Arc<dyn Provider>, ProviderError> {
        let key = guard.batch_key();
        if let Some(provider) = self.providers.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(provider.clone());
        }
        let provider = crate::provider::connect(&self.config, guard).await?;
        self.providers.lock().unwrap_or_else(|p| p.into_inner()).insert(key, provider.clone());
        Ok(provider)
    }

    async fn read(&self, guard: &Guard) -> Read {
        let provider = self.provider(guard).await.map_err(|e| Unread::of(&e))?;
        let deployment = provider.deployment(guard).await.map_err(|e| Unread::of(&e))?;
        Ok((provider, deployment))
    }

    /// What a cycle's reads are: reads, until the read deadline — `READ_SHARE` of the shortest interval of the
    /// cycle's guards after its start, within bounds, and before the invocation's deadline in function mode.
    fn read_context(&self, guards: &[&Guard], started: Instant) -> CallContext {
        let shortest = guards.iter().map(|g| g.interval).min().unwrap_or(MAX_READ_BUDGET);
        let budget = shortest.mul_f64(READ_SHARE).clamp(MIN_READ_BUDGET, MAX_READ_BUDGET);
        let deadline = started + budget;
        let deadline = self.services.deadline.map_or(deadline, |d| d.min(deadline));
        CallContext { priority: Priority::Read, deadline: Some(deadline) }
    }

    /// Every guard's deployment (`deployment_cache.rs`): read afresh where this process has no recent view of it
    /// (within the cycle's read deadline: what does not fit is deferred); refreshed, oldest view first, where it
    /// has one, within the shorter refresh budget — and judged on that view where the quota leaves no turn. In the
    /// configuration's order, with the names of the guards judged on an earlier view.
    async fn read_deployments<'g>(
        &self,
        guards: Vec<&'g Guard>,
        now: i64,
        reading: CallContext,
        started: Instant,
    ) -> (Vec<(&'g Guard, Read)>, HashSet<String>) {
        // Providers that read a region's deployments in one call read them all, afresh, every cycle.
        let mut bulk: BTreeMap<String, (Arc<dyn Provider>, Vec<&Guard>)> = BTreeMap::new();
        let mut single = Vec::new();
        for guard in guards {
            match self.provider(guard).await {
                Ok(provider) if provider.reads_in_bulk() => {
                    bulk.entry(guard.batch_key()).or_insert_with(|| (provider, Vec::new())).1.push(guard)
                }
                _ => single.push(guard),
            }
        }
        let mut reads: Vec<(&Guard, Read)> = Vec::new();
        for (provider, members) in bulk.into_values() {
            let answers = quota::scope(reading, provider.deployments(&members)).await;
            for (guard, answer) in members.into_iter().zip(answers) {
                if let Ok(deployment) = &answer {
                    self.cache.put(&guard.name, deployment.clone(), now);
                }
                reads.push((guard, answer.map(|d| (provider.clone(), d)).map_err(|e| Unread::of(&e))));
            }
        }
        let guards = single;
        let views: HashMap<&str, (Deployment, i64)> = guards
            .iter()
            .filter_map(|g| {
                self.cache.get(&g.name).filter(|(_, at)| now - at < MAX_VIEW_AGE_MS).map(|v| (g.name.as_str(), v))
            })
            .collect();
        let refresh_deadline = reading.deadline.map(|d| d.min(started + REFRESH_BUDGET));
        let refreshing = CallContext { deadline: refresh_deadline, ..reading };
        let rises = quota::scope(reading, self.error_rises(&guards, &views, now)).await;
        let order = self.read_order(guards, &views, &rises, now);
        let cached = Mutex::new(HashSet::new());
        let reading_each = order.iter().map(|guard| {
            let view = views.get(guard.name.as_str()).map(|(d, _)| d.clone());
            let cached = &cached;
            Box::pin(async move {
                let Some(view) = view else { return quota::scope(reading, self.read(guard)).await };
                match quota::scope(refreshing, self.read(guard)).await {
                    Err(unread) if unread.deferred => {
                        let provider = self.provider(guard).await.map_err(|e| Unread::of(&e))?;
                        cached.lock().unwrap_or_else(|p| p.into_inner()).insert(guard.name.clone());
                        Ok((provider, view))
                    }
                    read => read,
                }
            }) as Task<'_, Read>
        });
        let read_one_by_one: Vec<(&Guard, Read)> =
            order.iter().copied().zip(bounded(reading_each, READ_CONCURRENCY).await).collect();
        let cached = cached.into_inner().unwrap_or_else(|p| p.into_inner());
        for (guard, read) in &read_one_by_one {
            if let Ok((_, deployment)) = read
                && !cached.contains(&guard.name)
            {
                self.cache.put(&guard.name, deployment.clone(), now);
            }
        }
        reads.extend(read_one_by_one);
        // Back in the configuration's order: the metrics are planned and the guards judged in it.
        reads.sort_by_key(|(guard, _)| guard.index);
        (reads, cached)
    }

    /// The guards judged on an earlier view whose metrics say the deployment changed since (`changed`): their
    /// routing read afresh (`Reader::rerouted`: on Lambda the alias, its markers kept from the view, which keeps
    /// the view's age so markers are read whole at least every `MAX_VIEW_AGE_MS`) and measured again, now; one that
    /// cannot be read is deferred (and read afresh first next cycle).
    async fn reread_changed<'g>(
        &self,
        mut reads: Vec<(&'g Guard, Read)>,
        cached: &HashSet<String>,
        metrics: &mut MetricsByGuard,
        now: i64,
    ) -> Vec<(&'g Guard, Read)> {
        let mut stale = Vec::new();
        for (i, (guard, read)) in reads.iter().enumerate() {
            let (Ok((provider, view)), Some(Ok(measured))) = (read, metrics.get(&guard.name)) else { continue };
            if !cached.contains(&guard.name) {
                continue;
            }
            if let Some(why) = crate::observe::deployment_cache::changed(view, measured) {
                tracing::info!(guard = %guard.name, %why, "the deployment changed since it was read; reading it again");
                let read_at = self.cache.get(&guard.name).map_or(now, |(_, at)| at);
                self.cache.forget(&guard.name);
                stale.push((i, provider.clone(), view.clone(), read_at));
            }
        }
        if stale.is_empty() {
            return reads;
        }
        let again = stale.iter().map(|(i, provider, view, _)| {
            let guard = reads[*i].0;
            Box::pin(async move {
                let deployment = provider.rerouted(guard, view).await.map_err(|e| Unread::of(&e))?;
                Ok((provider.clone(), deployment))
            }) as Task<'_, Read>
        });
        let fresh = bounded(again, READ_CONCURRENCY).await;
        // A view read again is the view; one that could not be (deferred) is kept as it was, so the next cycle
        // reads its routing again, not the whole deployment — its metrics still say it changed, so it is never
        // judged on it.
        let stale: Vec<usize> = stale
            .iter()
            .zip(fresh)
            .map(|((i, _, view, read_at), read)| {
                let kept = read.as_ref().map_or(view, |(_, deployment)| deployment);
                self.cache.put(&reads[*i].0.name, kept.clone(), *read_at);
                reads[*i].1 = read;
                *i
            })
            .collect();
        let subset: Vec<(&Guard, Read)> = stale.iter().map(|i| (reads[*i].0, reads[*i].1.clone())).collect();
        metrics.extend(self.fetch_metrics(&subset, now).await);
        for (guard, read) in &subset {
            if read.is_err() {
                metrics.remove(&guard.name);
            }
        }
        reads
    }

    /// The order the guards are read in: those the last cycle deferred first, then those this process has no view
    /// of — from a place that moves with the clock's minute, so a process that starts afresh each cycle (a scheduled
    /// job) that cannot read them all does not always leave the same ones for last — then the views to refresh,
    /// oldest first.
    fn read_order<'g>(
        &self,
        guards: Vec<&'g Guard>,
        views: &HashMap<&str, (Deployment, i64)>,
        rises: &HashMap<String, f64>,
        now: i64,
    ) -> Vec<&'g Guard> {
        let deferred = self.deferred.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (mut first, rest): (Vec<&Guard>, Vec<&Guard>) =
            guards.into_iter().partition(|g| deferred.contains(&g.name));
        let (mut viewed, mut unseen): (Vec<&Guard>, Vec<&Guard>) =
            rest.into_iter().partition(|g| views.contains_key(g.name.as_str()));
        if !unseen.is_empty() {
            // A large prime step over the minutes: consecutive cycles start far apart in the list.
            let offset = (now.div_euclid(60_000).unsigned_abs() as usize).wrapping_mul(7919) % unseen.len();
            unseen.rotate_left(offset);
        }
        // Of the deferred and of the unread, those whose errors rose most first; the others keep their order (the
        // sort is stable).
        let rise = |g: &Guard| rises.get(&g.name).copied().unwrap_or(0.0);
        first.sort_by(|a, b| rise(b).total_cmp(&rise(a)));
        unseen.sort_by(|a, b| rise(b).total_cmp(&rise(a)));
        viewed.sort_by_key(|g| views.get(g.name.as_str()).map_or(0, |(_, at)| *at));
        first.extend(unseen);
        first.extend(viewed);
        first
    }

    /// How much the errors rose of each guard this process has no view of (never read, or deferred), when there
    /// are at least [`TRIAGE_AT`] of them (a fresh process's fleet, more than a cycle may read): one batched call
    /// per region for every such guard, so the deployments in trouble are read in the cycle that first can, not
    /// the twentieth.
    async fn error_rises(
        &self,
        guards: &[&Guard],
        views: &HashMap<&str, (Deployment, i64)>,
        now: i64,
    ) -> HashMap<String, f64> {
        let unseen: Vec<&Guard> = guards.iter().copied().filter(|g| !views.contains_key(g.name.as_str())).collect();
        let mut rises = HashMap::new();
        if unseen.len() < TRIAGE_AT {
            return rises;
        }
        let mut batches: BTreeMap<String, (Arc<dyn Provider>, Vec<&Guard>)> = BTreeMap::new();
        for guard in unseen {
            if let Ok(provider) = self.provider(guard).await {
                batches.entry(guard.batch_key()).or_insert_with(|| (provider, Vec::new())).1.push(guard);
            }
        }
        for (provider, members) in batches.into_values() {
            let answers = provider.error_rises(&members, now).await;
            let rose: Vec<(String, f64)> =
                members.iter().zip(answers).filter(|(_, r)| *r > 0.0).map(|(g, r)| (g.name.clone(), r)).collect();
            if !rose.is_empty() {
                tracing::info!(guards = rose.len(), "errors rose on deployments not read yet; reading them first");
            }
            rises.extend(rose);
        }
        rises
    }

    /// One cycle over `guards` (all when empty): read every deployment, fetch the metrics of each batch in one
    /// request, then run each guard's cycle. Every guard gets a decision record, failures included.
    pub async fn check(&self, guards: &[String], actor: Actor) -> Vec<GuardResult> {
        self.check_requested(guards, actor, None).await
    }

    /// [`Controller::check`] asked for by someone: `by` names them in every record of the cycle.
    pub async fn check_requested(&self, guards: &[String], actor: Actor, by: Option<String>) -> Vec<GuardResult> {
        let started = Instant::now();
        let wanted = |name: &str| guards.is_empty() || guards.iter().any(|g| g == name);
        let selected: Vec<&Guard> = self.config.guards.iter().filter(|g| wanted(&g.name)).collect();
        // A name that matches no guard is an error, never a silent pass of a gate.
        let mut results: Vec<GuardResult> = guards
            .iter()
            .filter(|name| !self.config.guard_names().any(|known| known == name.as_str()))
            .map(|name| self.no_such_guard(name))
            .collect();
        let now = match self.services.clock.now_ms().await {
            Ok(now) => now,
            Err(error) => return selected.iter().map(|g| GuardResult::failed(&g.name, error.to_string())).collect(),
        };
        let cycle = Cycle { now, actor, by, started };
        // A guard that cannot be served is an error every cycle, and the others are served; its policies are
        // checked again first, so a fixed upload heals it without a restart.
        self.retry_broken_policies(&selected).await;
        let mut broken: Vec<(BrokenGuard, Mode)> =
            self.config.broken.iter().filter(|b| wanted(&b.name)).map(|b| (b.clone(), Mode::Enforce)).collect();
        let selected: Vec<&Guard> = selected
            .into_iter()
            .filter(|guard| match self.services.policies.broken_guard(&guard.name) {
                Some(problem) => {
                    broken.push((problem, self.services.mode(guard)));
                    false
                }
                None => true,
            })
            .collect();
        for (guard, mode) in &broken {
            results.push(self.not_served(guard, *mode, &cycle).await);
        }
        // One client per batch first (a client's first use connects), then every deployment, many at a time, within
        // the platform's quotas: what cannot be read before the read deadline is deferred (`provider/quota.rs`).
        for guard in &selected {
            let _ = self.provider(guard).await;
        }
        let reading = self.read_context(&selected, started);
        let (reads, cached) = self.read_deployments(selected, now, reading, started).await;
        let (reads, mut metrics, mut histories, mut failed_thresholds) = quota::scope(reading, async {
            let mut metrics = self.fetch_metrics(&reads, now).await;
            let reads = self.reread_changed(reads, &cached, &mut metrics, now).await;
            let histories = self.fetch_histories(&reads, &metrics).await;
            let failed = self.count_slow_requests(&reads, &mut metrics, &histories, now).await;
            (reads, metrics, histories, failed)
        })
        .await;
        let deferred_now = std::sync::Mutex::new(std::collections::BTreeSet::new());
        let deferred_now = &deferred_now;
        // Built as they start (a guard's cycle is a large future), never more than the limit at once.
        let cycles = reads.into_iter().map(|(guard, read)| {
            let (metrics, history) = (metrics.remove(&guard.name), histories.remove(&guard.name));
            let failed = failed_thresholds.remove(&guard.name).unwrap_or_default();
            // A participant from the moment its cycle is built: a virtual clock waits for it (`clock.rs`).
            let participation = self.services.clock.participate();
            let cycle = cycle.clone();
            Box::pin(quota::scope(reading, async move {
                let _participation = participation;
                let unread = match (&read, &metrics) {
                    (Err(unread), _) | (Ok(_), Some(Err(unread))) => Some(unread.clone()),
                    _ => None,
                };
                if let Some(unread) = unread.filter(|u| u.deferred) {
                    deferred_now.lock().unwrap_or_else(|p| p.into_inner()).insert(guard.name.clone());
                    let deployment = read.as_ref().ok().map(|(_, d)| d);
                    return self.deferred(guard, deployment, &unread.error, &cycle).await;
                }
                self.last_judged.lock().unwrap_or_else(|p| p.into_inner()).insert(guard.name.clone(), cycle.now);
                match read {
                    Err(unread) => {
                        self.services.record_unjudged(guard, None, unread.error.clone(), &cycle).await;
                        GuardResult::failed(&guard.name, unread.error)
                    }
                    Ok((provider, deployment)) => {
                        let provider: Arc<dyn Provider> =
                            Arc::new(Forgetful { inner: provider, cache: self.cache.clone(), now: cycle.now });
                        let guard_cycle = GuardContext { services: &self.services, guard, provider, deployment, cycle };
                        match metrics {
                            Some(Ok(metrics)) => guard_cycle.run(metrics, history, failed).await,
                            Some(Err(unread)) => guard_cycle.unjudged(unread.error).await,
                            None => guard_cycle.unjudged("no metrics fetched".into()).await,
                        }
                    }
                }
            })) as Task<'_, GuardResult>
        });
        results.extend(bounded(cycles, CYCLE_CONCURRENCY).await);
        let deferred_now = std::mem::take(&mut *deferred_now.lock().unwrap_or_else(|p| p.into_inner()));
        if !deferred_now.is_empty() {
            tracing::warn!(target: "ripcord::cycle", deferred = deferred_now.len(), "guards deferred by the platforms' quotas; they are read first next cycle");
        }
        *self.deferred.lock().unwrap_or_else(|p| p.into_inner()) = deferred_now;
        self.services.audit.sync().await;
        self.services.flush_notifications().await;
        let real_ms = started.elapsed().as_millis() as u64;
        tracing::info!(target: "ripcord::cycle", guards = results.len(), real_ms, "cycle done");
        results
    }

    /// The metrics of every guard read, one request per batch (region, project) over the longest span any of its
    /// guards asks for; by guard name.
    async fn fetch_metrics(&self, reads: &[(&Guard, Read)], now: i64) -> MetricsByGuard {
        let mut batches: BTreeMap<String, Vec<BatchMember>> = BTreeMap::new();
        for (guard, read) in reads {
            if let Ok((provider, deployment)) = read {
                batches.entry(guard.batch_key()).or_default().push((guard, provider, deployment));
            }
        }
        let mut metrics = BTreeMap::new();
        for members in batches.values() {
            let Some((_, provider, _)) = members.first() else { continue };
            let since =
                |d: &Deployment| d.rollout.as_ref().map(|r| r.first_traffic_ms).filter(|_| d.candidate_on_trial());
            let windows = inputs::batch_windows(now, members.iter().map(|(g, _, d)| (*g, since(d))));
            let requests: Vec<(&Guard, &Deployment)> = members.iter().map(|(g, _, d)| (*g, *d)).collect();
            for ((guard, _, _), answer) in members.iter().zip(provider.metrics(&requests, &windows).await) {
                metrics.insert(guard.name.clone(), answer.map_err(|e| Unread::of(&e)));
            }
        }
        metrics
    }

    /// The known good's history for every guard whose candidate is on trial with a known good to compare with:
    /// its metrics over `history` before the candidate's first traffic, one request per batch over the span
    /// covering them all; by guard name. A history that cannot be read is absent (the policies then judge
    /// without it), never a failure of the guard.
    async fn fetch_histories(&self, reads: &[(&Guard, Read)], metrics: &MetricsByGuard) -> BTreeMap<String, History> {
        let mut batches: BTreeMap<String, Vec<HistoryRequest>> = BTreeMap::new();
        for (guard, read) in reads {
            let (Ok((provider, deployment)), Some(Ok(answer))) = (read, metrics.get(&guard.name)) else { continue };
            let Some(known_good) = deployment.known_good.as_deref().filter(|_| deployment.candidate_on_trial()) else {
                continue;
            };
            let Some(first_traffic) = inputs::rollout_start(deployment, answer) else { continue };
            let span = inputs::history_span(guard, first_traffic);
            batches.entry(guard.batch_key()).or_default().push((guard, provider, deployment.alone(known_good), span));
        }
        let mut histories = BTreeMap::new();
        for members in batches.values() {
            let Some((_, provider, _, _)) = members.first() else { continue };
            let covering = Window {
                start: members.iter().map(|m| m.3.start).min().unwrap_or_default(),
                end: members.iter().map(|m| m.3.end).max().unwrap_or_default(),
            };
            let requests: Vec<(&Guard, &Deployment)> = members.iter().map(|(g, _, d, _)| (*g, d)).collect();
            for ((guard, _, _, span), answer) in members.iter().zip(provider.metrics(&requests, &[covering]).await) {
                match answer {
                    Ok(answer) => {
                        if let Some(history) = inputs::history(&answer, *span) {
                            histories.insert(guard.name.clone(), history);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(guard = %guard.name, %error, "cannot read the known good's history; judging without it")
                    }
                }
            }
        }
        histories
    }

    /// Per-request latency evidence (contract 0.3.0): asks the policies of every guard whose candidate is on trial
    /// for their latency thresholds (with the known good's history), then reads the counts of slower requests per
    /// batch in one request and adds them to the guard's metrics as `slow_requests_<T>ms` series. Counts that
    /// cannot be read are absent (the policies judge without them). Returns, by guard, the policies whose
    /// `latency-thresholds` failed.
    async fn count_slow_requests(
        &self,
        reads: &[(&Guard, Read)],
        metrics: &mut MetricsByGuard,
        histories: &BTreeMap<String, History>,
        now: i64,
    ) -> BTreeMap<String, BTreeMap<String, String>> {
        let asking: Vec<(&Guard, &Arc<dyn Provider>, &Deployment)> = reads
            .iter()
            .filter_map(|(guard, read)| {
                let (provider, deployment) = read.as_ref().ok()?;
                let judged = matches!(metrics.get(&guard.name), Some(Ok(_)));
                let asks =
                    judged && deployment.candidate_on_trial() && self.services.policies.may_count_slow_requests(guard);
                asks.then_some((*guard, provider, deployment))
            })
            .collect();
        // A plugin runs on a blocking thread, as many at once as guards are judged.
        let asked = asking.iter().map(|(guard, _, _)| {
            let (policies, guard, history) =
                (self.services.policies.clone(), (*guard).clone(), histories.get(&guard.name).cloned());
            Box::pin(async move {
                tokio::task::spawn_blocking(move || policies.latency_thresholds(&guard, history.as_ref()))
                    .await
                    .unwrap_or_default()
            }) as Task<'_, crate::judge::policies::Thresholds>
        });
        let thresholds = bounded(asked, JUDGE_CONCURRENCY).await;
        let mut failed = BTreeMap::new();
        let mut batches: BTreeMap<String, Vec<SlowBatchMember>> = BTreeMap::new();
        for ((guard, provider, deployment), asked) in asking.into_iter().zip(thresholds) {
            if !asked.failed.is_empty() {
                failed.insert(guard.name.clone(), asked.failed);
            }
            if !asked.all.is_empty() {
                batches.entry(guard.batch_key()).or_default().push((guard, provider, deployment, asked.all));
            }
        }
        for members in batches.values() {
            let Some((_, provider, _, _)) = members.first() else { continue };
            let since =
                |d: &Deployment| d.rollout.as_ref().map(|r| r.first_traffic_ms).filter(|_| d.candidate_on_trial());
            let windows = inputs::batch_windows(now, members.iter().map(|(g, _, d, _)| (*g, since(d))));
            let requests: Vec<SlowRequest> = members
                .iter()
                .map(|(guard, _, deployment, thresholds)| SlowRequest { guard, deployment, thresholds })
                .collect();
            for ((guard, _, _, _), answer) in members.iter().zip(provider.slow_requests(&requests, &windows).await) {
                let Some(Ok(judged)) = metrics.get_mut(&guard.name) else { continue };
                match answer {
                    Ok(counted) => {
                        judged.candidate.metrics.extend(counted.candidate.metrics);
                        if let (Some(baseline), Some(counted)) = (judged.baseline.as_mut(), counted.baseline) {
                            baseline.metrics.extend(counted.metrics);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(guard = %guard.name, %error, "cannot count slow requests; judging without them")
                    }
                }
            }
        }
        failed
    }

    /// The guards watching any of `resources` (every guard when there are none), with their views of the deployment
    /// forgotten, so the next cycle over them reads the deployments afresh: what a change event asks for.
    pub fn changed(&self, resources: &[String]) -> Vec<String> {
        let guards: Vec<String> = self
            .config
            .guards
            .iter()
            .filter(|g| resources.is_empty() || resources.iter().any(|r| g.watches(r)))
            .map(|g| g.name.clone())
            .collect();
        for guard in &guards {
            self.cache.forget(guard);
        }
        guards
    }

    /// Manual rollback of `guard_name` to `to` (default: its rollback target, else its last known good), with
    /// prewarm, ignoring cooldown (`pull.rs`), as `requester` asked.
    pub async fn pull(&self, guard_name: &str, to: Option<&str>, requester: &Requester) -> GuardResult {
        self.manual(guard_name, Manual::Pull(to), requester).await
    }

    /// An approver's answer to the guard's pending rollback (`mode = "approve"`, `approval.rs`): approved, the
    /// rollback is made now; rejected, the candidate's rollbacks are not acted on. An error when none is pending.
    pub async fn answer_approval(&self, guard_name: &str, approve: bool, requester: &Requester) -> GuardResult {
        self.manual(guard_name, Manual::Answer { approve }, requester).await
    }

    /// A change a person asked for, on the deployment read afresh, ahead of every cycle's reads.
    async fn manual(&self, guard_name: &str, manual: Manual<'_>, requester: &Requester) -> GuardResult {
        // A guard whose policies are broken can still be pulled by hand (pulling needs no policy); one whose own
        // fields are invalid cannot be reached.
        if let Some(broken) = self.config.broken_guard(guard_name) {
            return GuardResult::failed(guard_name, broken.cause());
        }
        let Some(guard) = self.config.guard(guard_name) else {
            return self.no_such_guard(guard_name);
        };
        let now = match self.services.clock.now_ms().await {
            Ok(now) => now,
            Err(error) => return GuardResult::failed(&guard.name, error.to_string()),
        };
        // A person pulling the cord moves traffic back from the first read: the next quota turns, never deferred.
        let result = quota::as_pin(async {
            match self.read(guard).await {
                Err(unread) => GuardResult::failed(&guard.name, unread.error),
                Ok((provider, deployment)) => {
                    let provider: Arc<dyn Provider> =
                        Arc::new(Forgetful { inner: provider, cache: self.cache.clone(), now });
                    let by = Some(requester.by.clone());
                    let cycle = Cycle { now, actor: Actor::Manual, by, started: Instant::now() };
                    let guard_cycle = GuardContext { services: &self.services, guard, provider, deployment, cycle };
                    match manual {
                        Manual::Pull(to) => guard_cycle.pull(to, requester).await,
                        Manual::Answer { approve } => guard_cycle.answer(approve, requester).await,
                    }
                }
            }
        })
        .await;
        self.services.flush_notifications().await;
        result
    }

    /// A guard that cannot be served as configured: its decision record (with the `guard-error` finding, so the
    /// webhook tells people every cycle) and its result, an error naming every problem.
    async fn not_served(&self, guard: &BrokenGuard, mode: Mode, cycle: &Cycle) -> GuardResult {
        let cause = guard.cause();
        let mut record = self.services.unjudged_record(&guard.name, mode, cause.clone(), cycle);
        record.reason = cause.clone();
        record.findings = vec![Finding::GuardError];
        if let Err(error) = self.services.audit.write(&record).await {
            tracing::error!(guard = %guard.name, %error, "cannot write the decision record");
        }
        tracing::error!(guard = %guard.name, %cause, "guard not served");
        let mut result = GuardResult::failed(&guard.name, cause);
        result.at = Some(crate::model::time::format_timestamp(cycle.now));
        result.findings = vec![Finding::GuardError];
        result
    }

    /// A guard whose reads the platforms' quotas left for later this cycle: its decision record (`deferred`) and its
    /// result, which says how old its newest judgement is. It is read first next cycle.
    async fn deferred(&self, guard: &Guard, deployment: Option<&Deployment>, why: &str, cycle: &Cycle) -> GuardResult {
        let last = self.last_judged.lock().unwrap_or_else(|p| p.into_inner()).get(&guard.name).copied();
        let newest = match last {
            Some(at) => format!(
                "last judged {} ago",
                humantime::format_duration(Duration::from_secs(((cycle.now - at).max(0) / 1000) as u64))
            ),
            None => "not yet judged by this process".to_string(),
        };
        let reason = format!("deferred: {why}; {newest}; read first next cycle");
        let mut record = self.services.unjudged_record(&guard.name, self.services.mode(guard), why.to_string(), cycle);
        record.reason = reason.clone();
        record.error = None;
        record.deferred = true;
        record.deployment = deployment.map(DeploymentRecord::from);
        if let Err(error) = self.services.audit.write(&record).await {
            tracing::error!(guard = %guard.name, %error, "cannot write the decision record");
        }
        let last_judged_ms = last.map(|at| (cycle.now - at).max(0));
        let effect = crate::record::effect::Effect::Deferred { cause: why.to_string(), last_judged_ms };
        let mut result = GuardResult { reason, ..GuardResult::bare(&guard.name, Verdict::Inconclusive, effect) };
        result.at = Some(crate::model::time::format_timestamp(cycle.now));
        result.deployment = deployment.map(DeploymentRecord::from);
        result
    }

    /// Checks again the policies of the broken guards among `guards`, on a blocking thread (loading compiles).
    async fn retry_broken_policies(&self, guards: &[&Guard]) {
        let broken: Vec<Guard> = guards
            .iter()
            .filter(|g| self.services.policies.broken_guard(&g.name).is_some())
            .map(|g| (*g).clone())
            .collect();
        if broken.is_empty() {
            return;
        }
        let (policies, path) = (self.services.policies.clone(), self.config.path.clone());
        if let Err(error) = tokio::task::spawn_blocking(move || policies.retry(&path, &broken)).await {
            tracing::error!(%error, "checking the broken guards' policies again did not finish");
        }
    }

    fn no_such_guard(&self, name: &str) -> GuardResult {
        let known: Vec<&str> = self.config.guard_names().collect();
        let error = format!("no guard named {name:?} in {} (guards: {})", self.config.path.display(), known.join(", "));
        GuardResult::failed(name, error)
    }
}

//! One guard cycle, end to end: read the deployment, fetch its metrics (batched across guards), ask the
//! policies, decide, act — prewarm, pin with optimistic concurrency, verify — and audit every step. Also the
//! manual pull. This is the only place the pieces meet; each piece is plain code tested on its own.

use crate::audit::{Actor, Audit, DeploymentRecord, Kind, PolicyRecord, Record, Writer};
use crate::clock::Clock;
use crate::config::{Config, Guard, Mode, Prewarm as PrewarmMode};
use crate::decision::{self, Action, Decision, PolicyOutcome};
use crate::evaluation::{Evaluation, Window};
use crate::platform::{Capacity, Deployment, GuardMetrics, Mark, Pin, Platform, PlatformError, Prewarm, Release};
use crate::policies::PolicySet;
use crate::report::Verdict;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Attempts at pinning when the routing keeps changing under us or the platform keeps failing.
const MAX_PIN_ATTEMPTS: usize = 3;
/// Real time between pin attempts after a failure (times the attempt), for throttles and transient errors.
const PIN_RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);
/// Slack added to a change's bounded waits before it is taken to be no longer running (SDK retries, reconciles).
const CHANGE_MARGIN_MS: i64 = 10 * 60_000;
/// Metric period the windows are aligned to.
const PERIOD_MS: i64 = 60_000;
/// Longest a cycle waits at its end for its webhook notifications (outside function mode).
const NOTIFY_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

/// What every guard of one cycle shares: its time (the clock's), who runs it, and when it started (real time).
#[derive(Debug, Clone, Copy)]
struct Cycle {
    now: i64,
    actor: Actor,
    started: Instant,
}

/// A guard's platform client and its deployment as read.
type Read = (Platform, Deployment);

/// How a guard's cycle ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing to do (healthy, holding, inconclusive, or an action suppressed).
    NoAction,
    RolledBack {
        to: String,
        prewarm: Option<Prewarm>,
        verdict_to_pin_ms: i64,
        verdict_to_pin_real_ms: u64,
    },
    /// Someone else pinned the target while ripcord was acting.
    AlreadyPinned {
        to: String,
    },
    RecordedKnownGood {
        revision: String,
    },
    /// The deployment changed under ripcord; the verdict was about something else.
    Aborted {
        reason: String,
    },
    Failed {
        error: String,
    },
}

/// What happened to one guard in a cycle.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GuardReport {
    pub guard: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentRecord>,
    pub verdict: Verdict,
    pub reason: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(skip)]
    pub evaluation: Option<Evaluation>,
}

/// Runs guard cycles for a configuration.
#[derive(Debug)]
pub struct Controller {
    config: Config,
    policies: Arc<PolicySet>,
    clock: Clock,
    audit: Audit,
    platforms: tokio::sync::Mutex<BTreeMap<String, Platform>>,
    /// Where to append every evaluation (for `ripcord replay`).
    pub record: Option<PathBuf>,
    /// Overrides every guard's mode (`--dry-run`).
    pub force_dry_run: bool,
    /// Real time by which a change must be pinned (function mode: the invocation's deadline less what the pin
    /// and its records take). A prewarm still waiting then is abandoned and the target pinned cold: a cold pin
    /// beats a process killed before the pin.
    pub deadline: Option<std::time::Instant>,
    /// This process, named in every record it writes.
    writer: Writer,
    /// Intents without a result found in the audit log at start: each is closed once its process is known to be
    /// gone (see [`Controller::close_interrupted`]).
    open_intents: std::sync::Mutex<Vec<Record>>,
}

impl Controller {
    /// A controller for `config`, whose policies were loaded and checked into `policies`.
    pub fn new(config: Config, policies: PolicySet, clock: Clock, audit: Audit) -> Self {
        let policies = Arc::new(policies);
        let open_intents = Audit::open_intents(audit.path()).unwrap_or_else(|error| {
            tracing::warn!(path = %audit.path().display(), %error, "cannot scan the audit log for interrupted changes");
            Vec::new()
        });
        Self {
            config,
            policies,
            clock,
            audit,
            platforms: tokio::sync::Mutex::new(BTreeMap::new()),
            record: None,
            force_dry_run: false,
            deadline: None,
            writer: Writer::this_process(),
            open_intents: std::sync::Mutex::new(open_intents),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn audit_path(&self) -> &std::path::Path {
        self.audit.path()
    }

    fn mode(&self, guard: &Guard) -> Mode {
        if self.force_dry_run { Mode::DryRun } else { guard.mode }
    }

    async fn platform(&self, guard: &Guard) -> Result<Platform, PlatformError> {
        let key = guard.batch_key();
        let mut platforms = self.platforms.lock().await;
        if let Some(platform) = platforms.get(&key) {
            return Ok(platform.clone());
        }
        let platform = Platform::for_guard(&self.config, guard).await?;
        platforms.insert(key, platform.clone());
        Ok(platform)
    }

    /// One cycle over `guards` (all when empty), with metrics batched per platform client.
    pub async fn check(&self, guards: &[String], actor: Actor) -> Vec<GuardReport> {
        let started = Instant::now();
        let selected: Vec<&Guard> =
            self.config.guards.iter().filter(|g| guards.is_empty() || guards.contains(&g.name)).collect();
        // A name that matches no guard is an error, never a silent pass of a gate.
        let unknown: Vec<GuardReport> = guards
            .iter()
            .filter(|name| self.config.guard(name).is_none())
            .map(|name| self.no_such_guard(name))
            .collect();
        let now = match self.clock.now_ms().await {
            Ok(now) => now,
            Err(error) => return selected.iter().map(|g| failed(g, error.to_string())).collect(),
        };
        let cycle = Cycle { now, actor, started };
        // Read every deployment, then fetch all metrics of a platform client in one batch.
        let mut reads: Vec<(&Guard, Result<Read, String>)> = Vec::new();
        for guard in selected {
            let read = async {
                let platform = self.platform(guard).await?;
                let deployment = platform.deployment(guard).await?;
                Ok::<_, PlatformError>((platform, deployment))
            };
            reads.push((guard, read.await.map_err(|e| e.to_string())));
        }
        let mut metrics: BTreeMap<String, Result<GuardMetrics, String>> = BTreeMap::new();
        let mut groups: BTreeMap<String, Vec<(&Guard, &Platform, &Deployment)>> = BTreeMap::new();
        for (guard, read) in &reads {
            if let Ok((platform, deployment)) = read {
                groups.entry(guard.batch_key()).or_default().push((guard, platform, deployment));
            }
        }
        for members in groups.values() {
            let Some((_, platform, _)) = members.first() else { continue };
            // Guards of one batch share the window length of the longest evaluation asked for.
            let windows = evaluation_windows(now, members.iter().map(|(g, _, _)| *g));
            let requests: Vec<(&Guard, &Deployment)> = members.iter().map(|(g, _, d)| (*g, *d)).collect();
            match platform.metrics(&requests, &windows).await {
                Ok(answers) => {
                    for ((guard, _, _), answer) in members.iter().zip(answers) {
                        metrics.insert(guard.name.clone(), Ok(answer));
                    }
                }
                Err(error) => {
                    for (guard, _, _) in members {
                        metrics.insert(guard.name.clone(), Err(error.to_string()));
                    }
                }
            }
        }
        let mut reports = unknown;
        for (guard, read) in reads {
            let report = match read {
                Err(error) => self.unjudged(guard, None, error, &cycle).await,
                Ok((platform, deployment)) => match metrics.remove(&guard.name) {
                    None => self.unjudged(guard, Some(&deployment), "no metrics fetched".into(), &cycle).await,
                    Some(Err(error)) => self.unjudged(guard, Some(&deployment), error, &cycle).await,
                    Some(Ok(metrics)) => self.judge_and_act(guard, &platform, deployment, metrics, &cycle).await,
                },
            };
            reports.push(report);
        }
        self.flush_notifications().await;
        tracing::info!(target: "ripcord::cycle", guards = reports.len(), real_ms = started.elapsed().as_millis() as u64, "cycle done");
        reports
    }

    /// Delivers the cycle's notifications, bounded: by the invocation's deadline in function mode, else by
    /// [`NOTIFY_BOUND`].
    async fn flush_notifications(&self) {
        let until = self.deadline.unwrap_or_else(|| Instant::now() + NOTIFY_BOUND);
        self.audit.flush_notifications(until.into()).await;
    }

    /// A guard the cycle could not judge (its deployment or metrics could not be read): its decision record says
    /// why, so the audit log has one record per guard per cycle, failures included.
    async fn unjudged(
        &self,
        guard: &Guard,
        deployment: Option<&Deployment>,
        error: String,
        cycle: &Cycle,
    ) -> GuardReport {
        let Cycle { now, actor, started } = *cycle;
        let mut report = failed(guard, error.clone());
        let mut record = Record {
            writer: Some(self.writer.clone()),
            ..Record::new(Kind::Decision, format!("{}-{now}", guard.name), now, &guard.name, actor, self.mode(guard))
        };
        if let Some(deployment) = deployment {
            record.deployment = Some(DeploymentRecord::from(deployment));
            report.deployment = record.deployment.clone();
        }
        record.verdict = Verdict::Inconclusive;
        record.reason = format!("not judged: {error}");
        record.error = Some(error);
        record.timings.cycle_real_ms = Some(started.elapsed().as_millis() as u64);
        if let Err(error) = self.audit.write(&record).await {
            tracing::error!(guard = %guard.name, %error, "cannot write the decision record");
        }
        report
    }

    async fn judge_and_act(
        &self,
        guard: &Guard,
        platform: &Platform,
        deployment: Deployment,
        metrics: GuardMetrics,
        cycle: &Cycle,
    ) -> GuardReport {
        let Cycle { now, actor, started } = *cycle;
        self.close_interrupted(guard, platform, &deployment, now).await;
        self.release_capacity(guard, platform, &deployment, now, actor).await;
        let windows = guard_windows(now, guard);
        let evaluation = evaluation(guard, &deployment, &metrics, &windows, now);
        self.record_evaluation(&evaluation);
        let outcomes = self.ask_policies(guard, &evaluation).await;
        let decision = decision::decide(&decision::Input {
            outcomes: &outcomes,
            has_data: !evaluation.candidate.metrics.is_empty(),
            mode: self.mode(guard),
            on_policy_error: guard.on_policy_error,
            no_data: guard.no_data,
            now_ms: now,
            cooldown_until_ms: deployment.last_rollback_ms.map(|at| at + guard.cooldown.as_millis() as i64),
            rollback_target: deployment.rollback_target().map(str::to_string),
            candidate: deployment.candidate.clone(),
            candidate_serves_all: deployment.candidate_serves_all(),
            candidate_is_known_good: deployment.known_good.as_deref() == Some(deployment.candidate.as_str()),
        });
        let mut record = self.record(guard, &deployment, now, actor, "");
        record.verdict = decision.verdict;
        record.reason = decision.reason.clone();
        record.policies = policy_records(&outcomes);
        record.action = action_name(&decision.action).to_string();
        record.target = action_target(&decision.action);
        record.timings.cycle_real_ms = Some(started.elapsed().as_millis() as u64);
        if let Err(error) = self.audit.write(&record).await {
            return self.report(
                guard,
                &deployment,
                &decision,
                Outcome::Failed { error: error.to_string() },
                Some(evaluation),
            );
        }
        let outcome = match &decision.action {
            Action::None => {
                let capacity = capacity_needed(guard, &metrics, &evaluation);
                self.keep_standby(guard, platform, &deployment, capacity, now, actor).await;
                Outcome::NoAction
            }
            Action::RecordGood { revision } => self.record_known_good(guard, platform, revision, &mut record).await,
            Action::Rollback { to } => {
                let peak = capacity_needed(guard, &metrics, &evaluation);
                self.rollback(guard, platform, deployment.clone(), to, peak, &mut record).await
            }
        };
        self.report(guard, &deployment, &decision, outcome, Some(evaluation))
    }

    /// Asks the guard's policies on a blocking thread: a plugin runs synchronously (up to its deadline), and
    /// WASI's synchronous bindings it prints through may not run on an async worker (see `Runtime`).
    async fn ask_policies(&self, guard: &Guard, evaluation: &Evaluation) -> Vec<PolicyOutcome> {
        let (policies, asked, input) = (self.policies.clone(), guard.clone(), evaluation.clone());
        match tokio::task::spawn_blocking(move || policies.evaluate(&asked, &input)).await {
            Ok(outcomes) => outcomes,
            Err(error) => guard
                .policies
                .iter()
                .map(|p| PolicyOutcome {
                    plugin: p.source.to_string(),
                    outcome: Err(format!("plugin {}: the evaluation did not finish: {error}", p.source)),
                })
                .collect(),
        }
    }

    fn no_such_guard(&self, name: &str) -> GuardReport {
        let known: Vec<&str> = self.config.guards.iter().map(|g| g.name.as_str()).collect();
        let error = format!("no guard named {name:?} in {} (guards: {})", self.config.path.display(), known.join(", "));
        GuardReport {
            guard: name.into(),
            deployment: None,
            verdict: Verdict::Inconclusive,
            reason: error.clone(),
            outcome: Outcome::Failed { error },
            evaluation: None,
        }
    }

    /// Manual rollback of `guard` to `to` (default: its rollback target), with prewarm, ignoring cooldown.
    pub async fn pull(&self, guard_name: &str, to: Option<&str>) -> GuardReport {
        let Some(guard) = self.config.guard(guard_name) else {
            return self.no_such_guard(guard_name);
        };
        let report = self.pull_guard(guard, to).await;
        self.flush_notifications().await;
        report
    }

    async fn pull_guard(&self, guard: &Guard, to: Option<&str>) -> GuardReport {
        let read = async {
            let platform = self.platform(guard).await?;
            let deployment = platform.deployment(guard).await?;
            Ok::<_, PlatformError>((platform, deployment))
        };
        let (platform, deployment) = match read.await {
            Ok(read) => read,
            Err(error) => return failed(guard, error.to_string()),
        };
        let now = match self.clock.now_ms().await {
            Ok(now) => now,
            Err(error) => return failed(guard, error.to_string()),
        };
        self.close_interrupted(guard, &platform, &deployment, now).await;
        // The revision asked for, else the one a rollback would pin, else the last known good (which may serve
        // already, right after a rollback).
        let target = to
            .map(str::to_string)
            .or_else(|| deployment.rollback_target().map(str::to_string))
            .or_else(|| deployment.known_good.clone());
        let Some(target) = target else {
            let error = format!(
                "no revision to pull to: candidate {} has no baseline or known good; pass --to VERSION",
                deployment.candidate
            );
            return failed(guard, error);
        };
        match platform.revisions(guard).await {
            Ok(revisions) if !revisions.contains(&target) => {
                let error = format!("revision {target:?} does not exist; the revisions are {}", revisions.join(", "));
                return failed(guard, error);
            }
            Ok(_) => {}
            Err(error) => return failed(guard, error.to_string()),
        }
        let serving = deployment.primary == target && deployment.candidate_serves_all();
        let mut reason = format!("manual pull to {target}");
        if serving {
            reason.push_str(&format!(": {target} already serves all traffic; nothing changed"));
        } else if self.mode(guard) == Mode::DryRun {
            let prewarm = match guard.prewarm {
                PrewarmMode::Off => "pin it cold".to_string(),
                _ => format!("warm {target}, then pin it"),
            };
            reason.push_str(&format!("; dry-run: would {prewarm} (from {}); nothing changed", split(&deployment)));
        }
        let decision = Decision {
            verdict: Verdict::Rollback,
            action: Action::Rollback { to: target.clone() },
            reason: reason.clone(),
            suppressed: None,
        };
        // The decision record comes first, so `status` and `report` show the pull like any verdict.
        let mut record = self.record(guard, &deployment, now, Actor::Manual, "pull");
        record.verdict = Verdict::Rollback;
        record.reason = reason;
        record.action = "rollback".into();
        record.target = Some(target.clone());
        if let Err(error) = self.audit.write(&record).await {
            return self.report(guard, &deployment, &decision, Outcome::Failed { error: error.to_string() }, None);
        }
        if serving {
            return self.report(guard, &deployment, &decision, Outcome::AlreadyPinned { to: target }, None);
        }
        if record.mode == Mode::DryRun {
            return self.report(guard, &deployment, &decision, Outcome::NoAction, None);
        }
        let windows = guard_windows(now, guard);
        let sized = match guard.prewarm {
            PrewarmMode::Off => Ok(Vec::new()),
            _ => platform.metrics(&[(guard, &deployment)], &windows).await,
        };
        let capacity = match sized {
            Ok(mut answers) if !answers.is_empty() => {
                let metrics = answers.remove(0);
                capacity_needed(guard, &metrics, &evaluation(guard, &deployment, &metrics, &windows, now))
            }
            _ => guard_capacity_from_peak(guard, None),
        };
        let outcome = self.rollback(guard, &platform, deployment.clone(), &target, capacity, &mut record).await;
        self.report(guard, &deployment, &decision, outcome, None)
    }

    /// Prewarm, pin (re-reading on conflicts), verify, mark; audited as an intent and a result.
    async fn rollback(
        &self,
        guard: &Guard,
        platform: &Platform,
        mut deployment: Deployment,
        target: &str,
        capacity: u32,
        record: &mut Record,
    ) -> Outcome {
        let verdict_at = self.clock.now_ms().await.unwrap_or(record.at_ms);
        let real = Instant::now();
        record.record = Kind::Intent;
        if let Err(error) = self.audit.write(record).await {
            // Without a durable intent, nothing is changed.
            return Outcome::Failed { error: error.to_string() };
        }
        let evaluated_candidate = deployment.candidate.clone();
        // The deployment the decision was about; a re-read that still shows it lets the change go ahead.
        let judged = (deployment.primary.clone(), deployment.candidate.clone());
        let same =
            |d: &Deployment| (d.primary.as_str(), d.candidate.as_str()) == (judged.0.as_str(), judged.1.as_str());
        let mut outcome = None;
        if guard.prewarm != PrewarmMode::Off {
            // Should this process die mid-change, capacity it added is released once the change could no longer be
            // running.
            let release_by = verdict_at + (guard.prewarm_timeout + guard.settle).as_millis() as i64 + CHANGE_MARGIN_MS;
            let prewarm = platform.prewarm(guard, target, capacity, true, Release::At(release_by), &self.clock);
            let prewarm = match self.deadline {
                None => prewarm.await,
                Some(by) => tokio::time::timeout_at(by.into(), prewarm).await.unwrap_or_else(|_| {
                    Err(PlatformError {
                        operation: "prewarm",
                        resource: target.to_string(),
                        message: "abandoned to pin before the function's deadline".into(),
                    })
                }),
            };
            match prewarm {
                Ok(prewarm) => {
                    record.timings.prewarm_ms = Some(prewarm.waited_ms);
                    record.prewarm = Some(prewarm);
                }
                // A failed prewarm must not block the rollback: pin cold rather than not at all.
                Err(error) => {
                    tracing::warn!(guard = %guard.name, %error, "prewarm failed; pinning without it");
                    record.error = Some(format!("prewarm failed: {error}"));
                }
            }
            // A prewarm may itself change the routing resource (Cloud Run tags change the etag): pin with a fresh
            // token, as long as the deployment is still the one judged.
            if let Ok(fresh) = platform.deployment(guard).await
                && same(&fresh)
            {
                deployment = fresh;
            }
        }
        let mut pinned_at = None;
        // Whether an earlier attempt may have taken effect without ripcord hearing it (an error is not a "no").
        let mut unheard: Option<String> = None;
        for attempt in 1..=MAX_PIN_ATTEMPTS {
            match platform.pin(guard, target, &deployment.token, &evaluated_candidate, &self.clock).await {
                Ok(Pin::Pinned { .. }) => {
                    pinned_at = Some(self.clock.now_ms().await.unwrap_or(verdict_at));
                    break;
                }
                Ok(Pin::Conflict) => {
                    tracing::warn!(guard = %guard.name, attempt, "routing changed during the rollback; re-reading");
                }
                Err(error) => {
                    tracing::warn!(guard = %guard.name, attempt, %error, "the pin failed or its answer was lost; re-reading");
                    unheard = Some(error.to_string());
                }
            }
            // Never retry blindly: re-read, and act only if the verdict still applies.
            match platform.deployment(guard).await {
                Ok(fresh) if fresh.primary == target && fresh.candidate_serves_all() => {
                    match &unheard {
                        Some(error) => {
                            append_error(
                                record,
                                format!("a pin's answer was lost ({error}); re-read: it serves {target}"),
                            );
                            pinned_at = Some(self.clock.now_ms().await.unwrap_or(verdict_at));
                        }
                        None => outcome = Some(Outcome::AlreadyPinned { to: target.to_string() }),
                    }
                    break;
                }
                Ok(fresh) if fresh.candidate == evaluated_candidate && fresh.rollback_target() == Some(target) => {
                    deployment = fresh;
                    if unheard.is_some() && attempt < MAX_PIN_ATTEMPTS {
                        tokio::time::sleep(PIN_RETRY_BACKOFF * attempt as u32).await;
                    }
                }
                Ok(fresh) => {
                    let reason = format!(
                        "the deployment changed during the rollback (now {} with candidate {} at {:.0}%); the verdict was about candidate {evaluated_candidate}, so nothing was changed",
                        fresh.primary,
                        fresh.candidate,
                        fresh.candidate_share * 100.0
                    );
                    outcome = Some(Outcome::Aborted { reason });
                    break;
                }
                Err(error) => {
                    let error = match &unheard {
                        Some(pin) => format!("{pin}; re-reading failed too: {error}"),
                        None => error.to_string(),
                    };
                    outcome = Some(Outcome::Failed { error });
                    break;
                }
            }
        }
        let outcome = match (outcome, pinned_at) {
            (Some(outcome), _) => outcome,
            (None, None) => Outcome::Failed {
                error: match unheard {
                    Some(error) => format!("gave up after {MAX_PIN_ATTEMPTS} attempts; the last: {error}"),
                    None => format!("the routing kept changing; gave up after {MAX_PIN_ATTEMPTS} attempts"),
                },
            },
            (None, Some(at)) => match platform.deployment(guard).await {
                Ok(read) if read.primary == target && read.candidate_serves_all() => Outcome::RolledBack {
                    to: target.to_string(),
                    prewarm: record.prewarm.clone(),
                    verdict_to_pin_ms: at - verdict_at,
                    verdict_to_pin_real_ms: real.elapsed().as_millis() as u64,
                },
                Ok(read) => Outcome::Failed {
                    error: format!(
                        "verification failed: the alias serves {} (candidate {}) after the pin to {target}",
                        read.primary, read.candidate
                    ),
                },
                Err(error) => Outcome::Failed { error: format!("verification failed: {error}") },
            },
        };
        let now = self.clock.now_ms().await.unwrap_or(verdict_at);
        let mut marks = Vec::new();
        if matches!(outcome, Outcome::RolledBack { .. } | Outcome::AlreadyPinned { .. }) {
            marks.push(Mark::RolledBackAt(now));
        }
        // Capacity ripcord added (now, or as standby before) is released after the settle time, even when the pin
        // did not happen.
        let standby_on_target = deployment.capacity.as_ref().is_some_and(|c| c.revision == target);
        if record.prewarm.as_ref().is_some_and(|p| p.created) || standby_on_target {
            let release = Release::At(now + guard.settle.as_millis() as i64);
            marks.push(Mark::Capacity(Capacity { revision: target.to_string(), release }));
        }
        if !marks.is_empty()
            && let Err(error) = platform.mark(guard, &marks).await
        {
            tracing::warn!(guard = %guard.name, %error, "cannot record the rollback markers (cooldown, capacity release)");
            record.error = Some(format!("markers not recorded: {error}"));
        }
        self.result(record, &outcome).await
    }

    async fn record_known_good(
        &self,
        guard: &Guard,
        platform: &Platform,
        revision: &str,
        record: &mut Record,
    ) -> Outcome {
        record.record = Kind::Intent;
        if let Err(error) = self.audit.write(record).await {
            return Outcome::Failed { error: error.to_string() };
        }
        let outcome = match platform.mark(guard, &[Mark::KnownGood(revision.to_string())]).await {
            Ok(()) => Outcome::RecordedKnownGood { revision: revision.to_string() },
            Err(error) => Outcome::Failed { error: error.to_string() },
        };
        self.result(record, &outcome).await
    }

    /// Closes the guard's interrupted changes: intents whose process died before writing the result (or that are
    /// older than any change can take). Each gets a `result` with outcome `interrupted` that says what the platform
    /// shows now, so the log pairs every intent with a result; a rollback found in effect gets its cooldown
    /// marker. Capacity the change may have added carries its own write-ahead marker and is released by
    /// [`Controller::release_capacity`]. The cycle then decides afresh from what it read.
    async fn close_interrupted(&self, guard: &Guard, platform: &Platform, deployment: &Deployment, now: i64) {
        let bound = guard.prewarm_timeout.as_millis() as i64 + CHANGE_MARGIN_MS;
        let interrupted: Vec<Record> = {
            let mut open = self.open_intents.lock().unwrap_or_else(|p| p.into_inner());
            let (gone, kept) = std::mem::take(&mut *open).into_iter().partition(|intent: &Record| {
                intent.guard == guard.name
                    && (intent.writer.as_ref().is_some_and(Writer::has_stopped) || now - intent.at_ms > bound)
            });
            *open = kept;
            gone
        };
        for intent in interrupted {
            let target = intent.target.clone().unwrap_or_default();
            let pinned = deployment.primary == target && deployment.candidate_serves_all();
            let effect = match intent.action.as_str() {
                "rollback" if pinned => format!("the pin to {target} had taken effect"),
                "rollback" => format!("the pin to {target} had not taken effect; this cycle decides again"),
                _ => "this cycle decides again".to_string(),
            };
            let by = intent.writer.as_ref().map_or_else(String::new, |w| format!(" (pid {} on {})", w.pid, w.host));
            let mut record = intent;
            record.record = Kind::Result;
            record.outcome = Some("interrupted".into());
            record.error = Some(format!(
                "the ripcord process that wrote the intent{by} stopped before writing its result; found at {}: the deployment serves {} (candidate {} at {:.0}%); {effect}",
                crate::fixture::format_timestamp(now),
                deployment.primary,
                deployment.candidate,
                deployment.candidate_share * 100.0
            ));
            record.deployment = Some(DeploymentRecord::from(deployment));
            tracing::warn!(guard = %guard.name, id = %record.id, action = %record.action, "closing an interrupted change");
            if record.action == "rollback"
                && pinned
                && record.mode == Mode::Enforce
                && deployment.last_rollback_ms.is_none_or(|at| at < record.at_ms)
                && let Err(error) = platform.mark(guard, &[Mark::RolledBackAt(now)]).await
            {
                record.error =
                    Some(format!("{}; cooldown marker not recorded: {error}", record.error.unwrap_or_default()));
            }
            if let Err(error) = self.audit.write(&record).await {
                tracing::error!(%error, id = %record.id, "cannot close the interrupted change in the audit log");
            }
        }
    }

    /// Releases capacity ripcord added once it is no longer needed: after the settle time following a rollback,
    /// or, for standby capacity, once its revision is no longer the rollback target. Audited like any change.
    async fn release_capacity(
        &self,
        guard: &Guard,
        platform: &Platform,
        deployment: &Deployment,
        now: i64,
        actor: Actor,
    ) {
        let Some(capacity) = &deployment.capacity else { return };
        let (due, why) = match capacity.release {
            Release::At(due) => (now >= due, "the settle time after the rollback is over"),
            Release::WhenPromoted => (
                deployment.rollback_target() != Some(capacity.revision.as_str()),
                "the bake is over: the revision is no longer the rollback target",
            ),
        };
        if !due || self.mode(guard) == Mode::DryRun {
            return;
        }
        let mut record = self.record(guard, deployment, now, actor, "release");
        record.reason = format!("{why}; releasing the capacity added to {}", capacity.revision);
        record.action = "release-prewarm".into();
        record.target = Some(capacity.revision.clone());
        let released = async {
            platform.release(guard, &capacity.revision).await?;
            platform.mark(guard, &[Mark::ClearCapacity]).await.map(|()| None)
        };
        self.change(&mut record, "released", released).await;
    }

    /// `prewarm = "standby"`: while a candidate bakes, keeps the rollback target warm (without waiting for it).
    async fn keep_standby(
        &self,
        guard: &Guard,
        platform: &Platform,
        deployment: &Deployment,
        capacity: u32,
        now: i64,
        actor: Actor,
    ) {
        let Some(target) = deployment.rollback_target() else { return };
        if guard.prewarm != PrewarmMode::Standby || self.mode(guard) == Mode::DryRun || deployment.capacity.is_some() {
            return;
        }
        let mut record = self.record(guard, deployment, now, actor, "standby");
        record.reason = format!("candidate {} is baking: keeping {target} warm", deployment.candidate);
        record.action = "standby-prewarm".into();
        record.target = Some(target.to_string());
        let added = async {
            Ok(Some(platform.prewarm(guard, target, capacity, false, Release::WhenPromoted, &self.clock).await?))
        };
        self.change(&mut record, "warming", added).await;
    }

    /// Runs a small change between an intent and a result record (`done` names the result's outcome).
    async fn change(
        &self,
        record: &mut Record,
        done: &str,
        change: impl std::future::Future<Output = Result<Option<Prewarm>, PlatformError>>,
    ) {
        record.record = Kind::Intent;
        if let Err(error) = self.audit.write(record).await {
            tracing::error!(%error, action = %record.action, "cannot audit the change; not making it");
            return;
        }
        record.record = Kind::Result;
        match change.await {
            Ok(prewarm) => {
                record.outcome = Some(done.into());
                record.prewarm = prewarm;
            }
            Err(error) => {
                record.outcome = Some("failed".into());
                record.error = Some(error.to_string());
            }
        }
        if let Err(error) = self.audit.write(record).await {
            tracing::error!(%error, "cannot audit the result of {}", record.action);
        }
    }

    /// A record about `guard` with the deployment as read; the caller fills in the rest.
    fn record(&self, guard: &Guard, deployment: &Deployment, now: i64, actor: Actor, suffix: &str) -> Record {
        let id =
            if suffix.is_empty() { format!("{}-{now}", guard.name) } else { format!("{}-{now}-{suffix}", guard.name) };
        Record {
            deployment: Some(DeploymentRecord::from(deployment)),
            writer: Some(self.writer.clone()),
            ..Record::new(Kind::Decision, id, now, &guard.name, actor, self.mode(guard))
        }
    }

    async fn result(&self, record: &mut Record, outcome: &Outcome) -> Outcome {
        record.record = Kind::Result;
        let (name, error) = match outcome {
            Outcome::NoAction => ("none", None),
            Outcome::RolledBack { verdict_to_pin_ms, verdict_to_pin_real_ms, .. } => {
                record.timings.verdict_to_pin_ms = Some(*verdict_to_pin_ms);
                record.timings.verdict_to_pin_real_ms = Some(*verdict_to_pin_real_ms);
                ("pinned", None)
            }
            Outcome::AlreadyPinned { .. } => ("already-pinned", None),
            Outcome::RecordedKnownGood { .. } => ("recorded", None),
            Outcome::Aborted { reason } => ("aborted", Some(reason.clone())),
            Outcome::Failed { error } => ("failed", Some(error.clone())),
        };
        record.outcome = Some(name.to_string());
        if let Some(error) = error {
            record.error = Some(match record.error.take() {
                Some(earlier) => format!("{error}; {earlier}"),
                None => error,
            });
        }
        match self.audit.write(record).await {
            Ok(()) => outcome.clone(),
            Err(error) => Outcome::Failed { error: format!("{error} (the change itself ended as: {name})") },
        }
    }

    fn record_evaluation(&self, evaluation: &Evaluation) {
        let Some(path) = &self.record else { return };
        let line = crate::fixture::to_json(evaluation).to_string();
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
        if let Err(error) = written {
            tracing::warn!(path = %path.display(), %error, "cannot record the evaluation");
        }
    }

    fn report(
        &self,
        guard: &Guard,
        deployment: &Deployment,
        decision: &Decision,
        outcome: Outcome,
        evaluation: Option<Evaluation>,
    ) -> GuardReport {
        GuardReport {
            guard: guard.name.clone(),
            deployment: Some(DeploymentRecord::from(deployment)),
            verdict: decision.verdict,
            reason: decision.reason.clone(),
            outcome,
            evaluation,
        }
    }
}

/// The traffic split as people read it, e.g. `1 at 90%, 2 at 10%`.
fn split(deployment: &Deployment) -> String {
    if deployment.candidate_serves_all() {
        format!("{} at 100%", deployment.primary)
    } else {
        let share = deployment.candidate_share * 100.0;
        format!("{} at {:.0}%, {} at {share:.0}%", deployment.primary, 100.0 - share, deployment.candidate)
    }
}

/// Adds `note` to the record's error text, keeping what was there.
fn append_error(record: &mut Record, note: String) {
    record.error = Some(match record.error.take() {
        Some(earlier) => format!("{earlier}; {note}"),
        None => note,
    });
}

fn failed(guard: &Guard, error: String) -> GuardReport {
    GuardReport {
        guard: guard.name.clone(),
        deployment: None,
        verdict: Verdict::Inconclusive,
        reason: error.clone(),
        outcome: Outcome::Failed { error },
        evaluation: None,
    }
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::None => "none",
        Action::Rollback { .. } => "rollback",
        Action::RecordGood { .. } => "record-known-good",
    }
}

fn action_target(action: &Action) -> Option<String> {
    match action {
        Action::None => None,
        Action::Rollback { to } => Some(to.clone()),
        Action::RecordGood { revision } => Some(revision.clone()),
    }
}

fn policy_records(outcomes: &[PolicyOutcome]) -> Vec<PolicyRecord> {
    outcomes
        .iter()
        .map(|o| match &o.outcome {
            Ok(report) => PolicyRecord {
                plugin: o.plugin.clone(),
                verdict: report.verdict,
                reason: report.reason.clone(),
                checks: report.checks.clone(),
                error: None,
            },
            Err(error) => PolicyRecord {
                plugin: o.plugin.clone(),
                verdict: Verdict::Inconclusive,
                reason: error.clone(),
                checks: Vec::new(),
                error: Some(error.clone()),
            },
        })
        .collect()
}

/// The guard's evaluation windows, ending at the last whole metric period before `now`.
pub fn guard_windows(now: i64, guard: &Guard) -> Vec<Window> {
    let end = now.div_euclid(PERIOD_MS) * PERIOD_MS;
    Window::ending_at(end, guard.window.as_millis() as i64, guard.windows)
}

/// The span covering every guard's windows (one metrics query range per batch).
fn evaluation_windows<'a>(now: i64, guards: impl Iterator<Item = &'a Guard>) -> Vec<Window> {
    guards
        .map(|g| guard_windows(now, g))
        .max_by_key(|w| w.last().map_or(0, |l| l.end) - w.first().map_or(0, |f| f.start))
        .unwrap_or_default()
}

/// Builds the policies' input from the platform's answers, re-split into this guard's windows.
fn evaluation(
    guard: &Guard,
    deployment: &Deployment,
    metrics: &GuardMetrics,
    windows: &[Window],
    now: i64,
) -> Evaluation {
    let resplit = |revision: &crate::evaluation::Revision| crate::evaluation::Revision {
        id: revision.id.clone(),
        traffic_share: revision.traffic_share,
        metrics: revision
            .metrics
            .iter()
            .map(|m| {
                crate::evaluation::MetricSeries::split(
                    &m.name,
                    m.kind,
                    m.points.iter().map(|p| (p.at, p.value)),
                    windows,
                )
            })
            .filter(|m| !m.points.is_empty())
            .collect(),
    };
    Evaluation {
        guard: guard.name.clone(),
        platform: guard.platform(),
        now: windows.last().map_or(now, |w| w.end),
        deployed_at: None,
        windows: windows.to_vec(),
        baseline: metrics.baseline.as_ref().filter(|_| deployment.baseline.is_some()).map(resplit),
        candidate: resplit(&metrics.candidate),
        params: Default::default(),
    }
}

/// Capacity to prewarm: the deployment's peak concurrency in the last window, or Little's law (request rate x
/// median duration) when the peak is not reported, times the guard's headroom.
fn capacity_needed(guard: &Guard, metrics: &GuardMetrics, evaluation: &Evaluation) -> u32 {
    let little = || {
        let last = evaluation.windows.len().checked_sub(1)? as u32;
        let seconds = guard.window.as_secs_f64();
        let revisions = evaluation.baseline.iter().chain(std::iter::once(&evaluation.candidate));
        let mut concurrency = 0.0;
        for revision in revisions {
            let requests: f64 = revision.series("requests")?.values(last).sum();
            let latency = revision.series("latency_p50").and_then(|s| s.values(last).reduce(f64::max)).unwrap_or(100.0);
            concurrency += requests / seconds * latency / 1000.0;
        }
        Some(concurrency)
    };
    guard_capacity_from_peak(guard, metrics.peak_concurrency.or_else(little))
}

fn guard_capacity_from_peak(guard: &Guard, peak: Option<f64>) -> u32 {
    let peak = peak.unwrap_or(1.0).max(1.0);
    (peak * guard.prewarm_headroom).ceil().clamp(1.0, 10_000.0) as u32
}

//! The cycle and the rollback state machine as units, against the in-memory provider (`provider/memory.rs`): each
//! path — a clean rollback, a stale token, a new deploy, someone else's pin, a lost answer, a pin that keeps
//! failing, a prewarm that fails or outlives the function, no durable intent, an interrupted intent, a cooldown,
//! a promotion — in a few lines. The end-to-end suite runs the same paths against the simulator.

use crate::act::context::{Cycle, GuardContext};
use crate::act::rollback::Rollback;
use crate::config::Config;
use crate::cycle::controller::Controller;
use crate::judge::policies::PolicySet;
use crate::model::clock::Clock;
use crate::model::evaluation::{MetricKind, MetricSeries, Revision, Window};
use crate::model::verdict::Verdict;
use crate::plugin::runtime::{CacheDir, Runtime, RuntimeSettings};
use crate::provider::memory::{InMemory, PinAttempt, PrewarmAnswer};
use crate::provider::{Deployment, GuardMetrics, Mark, Provider};
use crate::record::audit::{Action, Actor, Audit, Kind, Outcome, Record, Writer};
use crate::record::effect::Effect;
use std::sync::Arc;
use std::time::Instant;

/// 2026-11-26T09:05:00Z.
const NOW: i64 = 1_795_683_900_000;

/// v1 at 90%, v2 a 10% canary; v1 is the known good.
fn canary() -> Deployment {
    Deployment {
        primary: "1".into(),
        candidate: "2".into(),
        candidate_share: 0.1,
        baseline: Some("1".into()),
        known_good: Some("1".into()),
        token: "token-0".into(),
        last_rollback_ms: None,
        capacity: None,
        rollout: None,
        approval: None,
    }
}

/// `deployment` serving `revision` alone.
fn serving(revision: &str, known_good: &str) -> Deployment {
    Deployment {
        primary: revision.into(),
        candidate: revision.into(),
        candidate_share: 1.0,
        baseline: Some(known_good.into()),
        known_good: Some(known_good.into()),
        ..canary()
    }
}

struct Harness {
    dir: tempfile::TempDir,
    controller: Controller,
    provider: Arc<InMemory>,
}

/// A controller with one guard `g` (builtin:error-rate, 1-minute windows) on the in-memory provider; `defaults`
/// goes into `[defaults]`.
fn harness(deployment: Deployment, defaults: &str) -> Harness {
    harness_with_audit(deployment, defaults, None)
}

fn harness_with_audit(deployment: Deployment, defaults: &str, audit: Option<&str>) -> Harness {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "[settings]\naudit_log = \"audit.jsonl\"\n[defaults]\nwindow = \"1m\"\nwindows = 3\n{defaults}\n[[guard]]\nname = \"g\"\nplatform = \"aws-lambda\"\nfunction = \"f\"\nalias = \"live\"\npolicies = [{{ use = \"builtin:error-rate\", params = {{ max_rate = 0.02, windows = 2, min_requests = 100 }} }}]\n"
    );
    let config = Config::parse(&text, &dir.path().join("guards.toml")).unwrap_or_else(|e| panic!("{e}"));
    let cache = CacheDir::At(std::env::temp_dir().join("ripcord-unit-test-cache"));
    let runtime = Runtime::new(RuntimeSettings { cache, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"));
    let policies = PolicySet::load_strict(&config, runtime).unwrap_or_else(|e| panic!("{e}"));
    let audit_path = audit.map_or_else(|| config.audit_log.clone(), std::path::PathBuf::from);
    let audit = Audit::open(&audit_path, None).unwrap_or_else(|e| panic!("{e}"));
    let controller = Controller::new(config, policies, Clock::virtual_at(NOW), audit);
    let provider = Arc::new(InMemory::new(deployment, &["1", "2", "3"]));
    controller.use_provider("aws/", provider.clone());
    Harness { dir, controller, provider }
}

impl Harness {
    fn cycle(&self) -> GuardContext<'_> {
        let deployment = self.provider.state().deployment.clone();
        GuardContext {
            services: &self.controller.services,
            guard: &self.controller.config.guards[0],
            provider: self.provider.clone() as Arc<dyn Provider>,
            deployment,
            cycle: Cycle { now: NOW, actor: Actor::Schedule, by: None, started: Instant::now() },
        }
    }

    /// Rolls the guard back to v1, as a cycle whose verdict was rollback would.
    fn rollback(&self) -> Effect {
        let cycle = self.cycle();
        let record = cycle.record("", Action::Rollback);
        block_on(Rollback::new(&cycle, "1", 5, record, Instant::now()).run())
    }

    fn audit(&self) -> Vec<Record> {
        Audit::read(&self.dir.path().join("audit.jsonl")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn result(&self) -> Record {
        self.audit().into_iter().rfind(|r| r.record == Kind::Result).unwrap_or_else(|| panic!("no result"))
    }

    fn calls(&self) -> Vec<String> {
        self.provider.state().calls.clone()
    }

    fn pins(&self, script: impl IntoIterator<Item = PinAttempt>) {
        self.provider.state().pins.extend(script);
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    runtime.unwrap_or_else(|e| panic!("{e}")).block_on(future)
}

#[test]
fn a_clean_rollback_writes_an_intent_prewarms_pins_verifies_marks_and_writes_the_result() {
    let h = harness(canary(), "prewarm = \"on-rollback\"");
    let effect = h.rollback();
    assert!(matches!(&effect, Effect::RolledBack { to, prewarm: Some(p), .. } if to == "1" && p.ready), "{effect:?}");
    assert_eq!(h.calls(), ["prewarm 1", "deployment", "pin 1", "deployment", "mark"]);
    assert!(h.provider.state().deployment.serves_only("1"));
    let marks = h.provider.state().marks.clone();
    assert!(marks.iter().any(|m| matches!(m, Mark::RolledBackAt(NOW))), "cooldown from the verdict: {marks:?}");
    assert!(marks.iter().any(|m| matches!(m, Mark::Capacity(c) if c.revision == "1")), "release later: {marks:?}");
    let kinds: Vec<Kind> = h.audit().iter().map(|r| r.record).collect();
    assert_eq!(kinds, [Kind::Intent, Kind::Result]);
    assert_eq!(h.result().outcome, Some(Outcome::Pinned));
}

#[test]
fn a_stale_token_is_re_read_and_the_pin_tried_again() {
    let h = harness(canary(), "prewarm = \"off\"");
    h.pins([PinAttempt::Conflict]);
    let effect = h.rollback();
    assert!(matches!(effect, Effect::RolledBack { .. }), "{effect:?}");
    assert_eq!(h.calls().iter().filter(|c| c.starts_with("pin")).count(), 2);
}

#[test]
fn a_new_deploy_during_the_rollback_is_not_overridden() {
    let h = harness(canary(), "prewarm = \"off\"");
    let newer = Deployment { candidate: "3".into(), ..canary() };
    h.pins([PinAttempt::Interfere(Box::new(newer))]);
    let effect = h.rollback();
    assert!(matches!(&effect, Effect::Aborted { reason } if reason.contains("candidate 3")), "{effect:?}");
    assert_eq!(h.provider.state().deployment.candidate, "3", "the new deploy stands");
    assert!(!h.provider.state().marks.iter().any(|m| matches!(m, Mark::RolledBackAt(_))), "no cooldown");
    assert_eq!(h.result().outcome, Some(Outcome::Aborted));
}

#[test]
fn a_target_someone_else_pinned_is_already_pinned() {
    let h = harness(canary(), "prewarm = \"off\"");
    h.pins([PinAttempt::Interfere(Box::new(serving("1", "1")))]);
    let effect = h.rollback();
    assert_eq!(effect, Effect::AlreadyPinned { to: "1".into() });
    assert!(h.provider.state().marks.iter().any(|m| matches!(m, Mark::RolledBackAt(_))), "cooldown");
}

#[test]
fn a_pin_whose_answer_was_lost_is_reported_as_the_platform_shows_it() {
    let h = harness(canary(), "prewarm = \"off\"");
    h.pins([PinAttempt::ApplyButLoseAnswer]);
    let effect = h.rollback();
    assert!(matches!(effect, Effect::RolledBack { .. }), "pinned, not failed: {effect:?}");
    assert_eq!(h.calls().iter().filter(|c| c.starts_with("pin")).count(), 1, "not pinned twice");
    let result = h.result();
    assert_eq!(result.outcome, Some(Outcome::Pinned));
    assert!(result.error.is_some_and(|e| e.contains("a pin's answer was lost")));
}

#[test]
fn a_pin_that_keeps_failing_is_tried_three_times_then_reported() {
    let h = harness(canary(), "prewarm = \"on-rollback\"");
    h.pins([PinAttempt::Fail, PinAttempt::Fail, PinAttempt::Fail]);
    let effect = h.rollback();
    let Effect::Failed { error } = &effect else { panic!("{effect:?}") };
    assert!(error.starts_with("gave up after 3 attempts; the last: pin on memory: service unavailable"), "{error}");
    assert_eq!(h.provider.state().deployment.primary, "1");
    assert_eq!(h.provider.state().deployment.candidate, "2", "the split stays as it was");
    let marks = h.provider.state().marks.clone();
    assert!(!marks.iter().any(|m| matches!(m, Mark::RolledBackAt(_))), "no cooldown: {marks:?}");
    assert!(marks.iter().any(|m| matches!(m, Mark::Capacity(_))), "the capacity added is still released: {marks:?}");
    // A pin that carries its markers (Cloud Run) may leave them behind a failed operation: they are put back.
    assert!(marks.contains(&Mark::ClearRolledBackAt), "the cooldown a failed pin may have left is cleared: {marks:?}");
    assert_eq!(h.provider.state().deployment.last_rollback_ms, None);
    assert_eq!(h.result().outcome, Some(Outcome::Failed));
}

#[test]
fn a_failed_prewarm_pins_cold() {
    let h = harness(canary(), "prewarm = \"on-rollback\"");
    h.provider.state().prewarm = PrewarmAnswer::Fail;
    let effect = h.rollback();
    assert!(matches!(&effect, Effect::RolledBack { prewarm: None, .. }), "{effect:?}");
    assert!(h.result().error.is_some_and(|e| e.starts_with("prewarm failed: ")));
}

#[test]
fn a_prewarm_still_waiting_at_the_functions_deadline_is_abandoned_and_the_target_pinned() {
    let mut h = harness(canary(), "prewarm = \"on-rollback\"");
    h.provider.state().prewarm = PrewarmAnswer::Hang;
    h.controller.set_deadline(Some(Instant::now()));
    let effect = h.rollback();
    assert!(matches!(effect, Effect::RolledBack { .. }), "{effect:?}");
    assert!(h.result().error.is_some_and(|e| e.contains("abandoned to pin before the function's deadline")));
}

#[test]
fn without_a_durable_intent_nothing_is_changed() {
    let h = harness_with_audit(canary(), "prewarm = \"on-rollback\"", Some("/dev/full"));
    let effect = h.rollback();
    assert!(matches!(effect, Effect::Failed { .. }), "{effect:?}");
    assert_eq!(h.calls(), Vec::<String>::new(), "no call to the platform at all");
}

/// Per-minute series of `requests` and `errors` for the last five minutes.
fn metrics(candidate_errors: f64) -> GuardMetrics {
    metrics_at(NOW, ("1", "2"), candidate_errors)
}

/// Per-minute series of `requests` and `errors` for the five minutes before `now`: baseline and candidate
/// `revisions`, the baseline at 0.1% errors.
fn metrics_at(now: i64, revisions: (&str, &str), candidate_errors: f64) -> GuardMetrics {
    let windows = Window::ending_at(now, 60_000, 5);
    let revision = |id: &str, share: f64, error_rate: f64| {
        let series = |name: &str, value: f64| {
            let points = windows.iter().map(|w| (w.start, value));
            MetricSeries::split(name, MetricKind::for_metric(name), points, &windows)
        };
        let requests = 1000.0 * share;
        Revision {
            id: id.into(),
            traffic_share: share,
            metrics: vec![series("requests", requests), series("errors", requests * error_rate)],
        }
    };
    GuardMetrics {
        baseline: Some(revision(revisions.0, 0.9, 0.001)),
        candidate: revision(revisions.1, 0.1, candidate_errors),
        peak_concurrency: Some(4.0),
        total_requests: Vec::new(),
    }
}

/// `revision` serving all traffic at 1000 requests a minute and 0.1% errors, for the five minutes before `now`.
fn alone_at(now: i64, revision: &str) -> GuardMetrics {
    let mut alone = metrics_at(now, ("-", revision), 0.001);
    alone.baseline = None;
    alone.candidate.traffic_share = 1.0;
    for series in &mut alone.candidate.metrics {
        series.points.iter_mut().for_each(|p| p.value *= 10.0);
    }
    alone
}

fn check(h: &Harness) -> crate::record::effect::GuardResult {
    let mut results = block_on(h.controller.check(&[], Actor::Schedule));
    assert_eq!(results.len(), 1);
    results.remove(0)
}

#[test]
fn a_cycle_rolls_a_failing_canary_back() {
    let h = harness(canary(), "prewarm = \"off\"");
    h.provider.state().metrics = Some(metrics(0.3));
    let result = check(&h);
    assert_eq!(result.verdict, Verdict::Rollback);
    assert!(matches!(result.effect, Effect::RolledBack { .. }), "{result:?}");
    let kinds: Vec<Kind> = h.audit().iter().map(|r| r.record).collect();
    assert_eq!(kinds, [Kind::Decision, Kind::Intent, Kind::Result]);
}

#[test]
fn a_cycle_in_cooldown_reports_the_rollback_verdict_and_changes_nothing() {
    let h = harness(Deployment { last_rollback_ms: Some(NOW - 60_000), ..canary() }, "prewarm = \"off\"");
    h.provider.state().metrics = Some(metrics(0.3));
    let result = check(&h);
    assert_eq!((result.verdict, result.effect.clone()), (Verdict::Rollback, Effect::NoAction));
    assert!(result.reason.contains("in cooldown"), "{}", result.reason);
    assert!(!h.calls().iter().any(|c| c.starts_with("pin")));
}

#[test]
fn a_healthy_candidate_serving_all_traffic_becomes_the_known_good() {
    let h = harness(serving("2", "1"), "prewarm = \"off\"\nbake = \"0s\"");
    let mut healthy = metrics(0.001);
    healthy.baseline = None;
    healthy.candidate.traffic_share = 1.0;
    h.provider.state().metrics = Some(healthy);
    let result = check(&h);
    assert_eq!(result.effect, Effect::RecordedKnownGood { revision: "2".into() });
    assert_eq!(h.provider.state().deployment.known_good.as_deref(), Some("2"));
    assert_eq!(h.result().action, Action::RecordKnownGood);
}

/// The life of three releases: v1 known good → v2 canary → v2 at 100% → bake → v2 known good → v3 fails → pin
/// v2 (not v1, two releases back).
#[test]
fn a_release_that_baked_at_full_traffic_is_the_one_rolled_back_to() {
    let h = harness(canary(), "prewarm = \"off\"\nbake = \"10m\"");
    let minute = 60_000;
    let at = |minutes: i64| NOW + minutes * minute;
    let advance = |to: i64| h.controller.clock().set_virtual(to);
    // A healthy v2 canary: its rollout (first traffic) is recorded on the deployment.
    h.provider.state().metrics = Some(metrics(0.001));
    let canary_result = check(&h);
    assert_eq!(canary_result.effect, Effect::NoAction, "{canary_result:?}");
    let rollout = h.provider.state().deployment.rollout.clone().unwrap_or_else(|| panic!("rollout not recorded"));
    assert_eq!(
        (rollout.revision.as_str(), rollout.first_traffic_ms, rollout.all_traffic_ms),
        ("2", NOW - 5 * minute, None)
    );
    // v2 takes all traffic: the bake starts; the baseline is v1's history before v2's first traffic.
    advance(at(2));
    {
        let mut state = h.provider.state();
        let d = &mut state.deployment;
        (d.primary, d.candidate_share) = ("2".into(), 1.0);
        state.metrics = Some(alone_at(at(2), "2"));
        state.history = Some(alone_at(NOW - 5 * minute, "1"));
    }
    let promoted = check(&h);
    assert_eq!(promoted.effect, Effect::NoAction, "{promoted:?}");
    assert!(promoted.reason.contains("baking: 0m of 10m at 100%"), "{}", promoted.reason);
    let evaluation = promoted.evaluation.clone().unwrap_or_else(|| panic!("no evaluation"));
    assert_eq!(evaluation.deployed_at, Some(NOW - 5 * minute));
    let history = evaluation.known_good.unwrap_or_else(|| panic!("no history of the known good"));
    assert_eq!((history.revision.id.as_str(), history.span.end), ("1", NOW - 5 * minute));
    assert_eq!(h.provider.state().deployment.rollout.as_ref().and_then(|r| r.all_traffic_ms), Some(at(2)));
    let decision = h.audit().into_iter().rfind(|r| r.record == Kind::Decision).unwrap_or_else(|| panic!("none"));
    let evidence = decision.evidence.unwrap_or_else(|| panic!("no evidence range in the audit"));
    assert_eq!(evidence.history.map(|h| h.revision), Some("1".to_string()));
    // Ten minutes at 100% later, v2 is the known good.
    advance(at(12));
    h.provider.state().metrics = Some(alone_at(at(12), "2"));
    let baked = check(&h);
    assert_eq!(baked.effect, Effect::RecordedKnownGood { revision: "2".into() }, "{}", baked.reason);
    // v3 fails as a canary: ripcord pins v2.
    advance(at(20));
    {
        let mut state = h.provider.state();
        let d = &mut state.deployment;
        (d.candidate, d.candidate_share, d.baseline) = ("3".into(), 0.1, Some("2".into()));
        d.rollout = None;
        state.metrics = Some(metrics_at(at(20), ("2", "3"), 0.3));
        state.history = Some(alone_at(at(15), "2"));
    }
    let failed = check(&h);
    assert!(matches!(&failed.effect, Effect::RolledBack { to, .. } if to == "2"), "{failed:?}");
    assert!(h.provider.state().deployment.serves_only("2"));
    assert_eq!(h.provider.state().deployment.rollout, None, "v3's rollout forgotten with the rollback");
}

#[test]
fn a_cycle_that_cannot_read_metrics_records_why() {
    let h = harness(canary(), "prewarm = \"off\"");
    let result = check(&h);
    assert!(matches!(&result.effect, Effect::Failed { error } if error.contains("no metrics, on purpose")));
    let audit = h.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].record, audit[0].verdict), (Kind::Decision, Verdict::Inconclusive));
}

#[test]
fn an_interrupted_rollback_found_in_effect_is_closed_with_its_cooldown() {
    // A dead process's intent (same host, a pid that no longer runs) to pin v1, which the platform shows pinned.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("audit.jsonl");
    let here = Writer::this_process();
    let intent = Record {
        action: Action::Rollback,
        target: Some("1".into()),
        writer: Some(Writer { host: here.host, pid: u32::MAX }),
        ..Record::new(Kind::Intent, "g-1".into(), NOW - 120_000, "g", Actor::Schedule, crate::config::Mode::Enforce)
    };
    std::fs::write(&path, format!("{}\n", serde_json::to_string(&intent).unwrap_or_default())).unwrap_or_default();
    let path = path.display().to_string();
    let h = harness_with_audit(serving("1", "1"), "prewarm = \"off\"", Some(&path));
    h.provider.state().metrics = Some(metrics(0.001));
    check(&h);
    let closed = Audit::read(std::path::Path::new(&path)).unwrap_or_default();
    let closed = closed.into_iter().find(|r| r.record == Kind::Result).unwrap_or_else(|| panic!("not closed"));
    assert_eq!(closed.outcome, Some(Outcome::Interrupted));
    assert!(closed.error.is_some_and(|e| e.contains("the pin to 1 had taken effect")));
    assert!(h.provider.state().marks.iter().any(|m| matches!(m, Mark::RolledBackAt(NOW))), "cooldown marker");
}

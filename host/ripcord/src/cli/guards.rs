//! The guard commands: `check` (one cycle), `watch` (a loop), `pull` (manual rollback), `status`, `report` and
//! `replay`.

use super::{RuntimeArgs, ShardArgs};
use anyhow::Context;
use ripcord::audit::{Actor, Audit, Kind};
use ripcord::clock::Clock;
use ripcord::config::{ClockKind, Config, Mode};
use ripcord::controller::{Controller, GuardReport, Outcome};
use ripcord::policies::PolicySet;
use ripcord::report::Verdict;
use ripcord::runtime::Runtime;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit codes of `check`, `watch --cycles`, `pull` and `replay` (documented in the README).
pub(crate) mod exit {
    /// Every guard evaluated; no rollback verdict, none inconclusive.
    pub const HEALTHY: u8 = 0;
    /// A guard could not be evaluated or a change failed.
    pub const ERROR: u8 = 1;
    /// At least one guard's verdict was rollback (acted on, or not in dry-run/cooldown).
    pub const ROLLBACK: u8 = 2;
    /// At least one guard was inconclusive (and none rolled back or failed).
    pub const INCONCLUSIVE: u8 = 3;

    /// The code covering two runs (cycles of `watch`): rollback wins over error, error over inconclusive.
    pub fn worst(a: u8, b: u8) -> u8 {
        let rank = |code| match code {
            ROLLBACK => 3,
            ERROR => 2,
            INCONCLUSIVE => 1,
            _ => 0,
        };
        if rank(b) > rank(a) { b } else { a }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_of_many_cycles_is_the_worst_of_them() {
        use exit::{ERROR, HEALTHY, INCONCLUSIVE, ROLLBACK, worst};
        assert_eq!([ROLLBACK, HEALTHY, INCONCLUSIVE].into_iter().fold(HEALTHY, worst), ROLLBACK);
        assert_eq!([INCONCLUSIVE, ERROR, HEALTHY].into_iter().fold(HEALTHY, worst), ERROR);
        assert_eq!([HEALTHY, INCONCLUSIVE].into_iter().fold(HEALTHY, worst), INCONCLUSIVE);
        assert_eq!([HEALTHY, HEALTHY].into_iter().fold(HEALTHY, worst), HEALTHY);
    }

    #[test]
    fn each_guard_is_due_on_its_own_interval() {
        let text = "[[guard]]\nname = \"fast\"\nplatform = \"aws-lambda\"\nfunction = \"f\"\nalias = \"a\"\ninterval = \"1m\"\npolicies = [{ use = \"builtin:error-rate\" }]\n[[guard]]\nname = \"slow\"\nplatform = \"aws-lambda\"\nfunction = \"g\"\nalias = \"a\"\ninterval = \"10m\"\npolicies = [{ use = \"builtin:error-rate\" }]\n";
        let config = Config::parse(text, Path::new("guards.toml")).unwrap_or_else(|e| panic!("{e}"));
        let mut schedule = Schedule::new(&config.guards, 0);
        let mut judged = std::collections::BTreeMap::<String, u32>::new();
        let mut now = 0;
        for _ in 0..20 {
            for name in schedule.take_due(now) {
                *judged.entry(name).or_default() += 1;
            }
            now = schedule.next_due();
        }
        assert_eq!(now, 20 * 60_000, "one tick a minute");
        assert_eq!(judged["fast"], 20);
        assert_eq!(judged["slow"], 2, "the 10m guard at 0 and 10m only");
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Builds the controller for `config_path`: the configuration, its policies loaded and checked, the clock and the
/// audit log.
pub(crate) fn controller(config_path: &Path, runtime_args: &RuntimeArgs, dry_run: bool) -> anyhow::Result<Controller> {
    let config = Config::load(config_path)?;
    let clock = clock(&config);
    let policies = PolicySet::load(&config, Runtime::new(runtime_args.settings())?)?;
    let audit = Audit::open(&config.audit_log, config.webhook.clone())?;
    let mut controller = Controller::new(config, policies, clock, audit);
    controller.force_dry_run = dry_run;
    Ok(controller)
}

/// The configuration's clock: the simulator's when it says so, else the system's.
fn clock(config: &Config) -> Clock {
    let simulator = config.aws.endpoint_url.as_ref().or(config.gcp.endpoint_url.as_ref());
    match (config.clock, simulator) {
        (ClockKind::Simulator, Some(endpoint)) => Clock::remote(endpoint),
        _ => Clock::System,
    }
}

/// The exit code summarising a cycle.
pub(crate) fn exit_code(reports: &[GuardReport]) -> u8 {
    let any = |f: &dyn Fn(&GuardReport) -> bool| reports.iter().any(f);
    if any(&|r| r.verdict == Verdict::Rollback && !matches!(r.outcome, Outcome::Failed { .. })) {
        exit::ROLLBACK
    } else if any(&|r| matches!(r.outcome, Outcome::Failed { .. } | Outcome::Aborted { .. })) {
        exit::ERROR
    } else if any(&|r| r.verdict == Verdict::Inconclusive) {
        exit::INCONCLUSIVE
    } else {
        exit::HEALTHY
    }
}

/// A revision for people: Lambda versions as `v7`, Cloud Run revisions by name.
fn label(revision: &str) -> String {
    if revision.chars().all(|c| c.is_ascii_digit()) { format!("v{revision}") } else { revision.to_string() }
}

/// The traffic split, e.g. `v1 90% / v2 10%`.
fn traffic(primary: &str, candidate: &str, candidate_share: f64) -> String {
    if candidate == primary {
        format!("{} 100%", label(primary))
    } else {
        let (p, c) = ((1.0 - candidate_share) * 100.0, candidate_share * 100.0);
        format!("{} {p:.0}% / {} {c:.0}%", label(primary), label(candidate))
    }
}

/// Two lines per guard, for people: what was decided and done, then why. Text from plugins and clouds is
/// escaped (control characters, bidi overrides), so no reason can forge the terminal's output.
pub(crate) fn describe(report: &GuardReport) -> String {
    let safe = |text: &str| ripcord::text::terminal_safe(text).into_owned();
    let split = report
        .deployment
        .as_ref()
        .map(|d| traffic(&d.primary, &d.candidate, d.candidate_share))
        .unwrap_or_else(|| "-".into());
    let action = match &report.outcome {
        Outcome::NoAction => "no action".to_string(),
        Outcome::RolledBack { to, prewarm, verdict_to_pin_ms, verdict_to_pin_real_ms } => {
            let warm = match prewarm {
                Some(p) if p.ready => format!(
                    ", prewarmed ({} {} ready after {:.1}s)",
                    p.method,
                    p.requested,
                    p.waited_ms as f64 / 1000.0
                ),
                Some(p) => format!(", prewarm not ready ({})", safe(p.note.as_deref().unwrap_or_default())),
                None => String::new(),
            };
            format!(
                "ROLLED BACK to {}{warm}; verdict-to-pin {verdict_to_pin_ms} ms ({verdict_to_pin_real_ms} ms real)",
                label(to)
            )
        }
        Outcome::AlreadyPinned { to } => format!("already pinned to {}", label(to)),
        Outcome::RecordedKnownGood { revision } => format!("recorded {} as known good", label(revision)),
        Outcome::Aborted { reason } => format!("ABORTED: {}", safe(reason)),
        // The error is the second line (it is the reason too, unless the verdict had one of its own).
        Outcome::Failed { .. } => "FAILED".to_string(),
    };
    let why = match &report.outcome {
        Outcome::Failed { error } if *error != report.reason => {
            format!("{}; error: {}", safe(&report.reason), safe(error))
        }
        _ => safe(&report.reason),
    };
    format!("{:<16} {:<13} {:<22} {action}\n{:<16} {why}", report.guard, report.verdict.as_str(), split, "")
}

/// A cycle as one JSON object: what `--json` prints and what function mode answers.
pub(crate) fn summary(reports: &[GuardReport], code: u8) -> serde_json::Value {
    serde_json::json!({"exit_code": code, "guards": reports})
}

fn print(reports: &[GuardReport], json: bool, code: u8) -> anyhow::Result<()> {
    if json {
        println!("{}", summary(reports, code));
    } else {
        for report in reports {
            println!("{}", describe(report));
        }
    }
    Ok(())
}

pub(crate) fn check(
    config: &Path,
    guards: &[String],
    shard: &ShardArgs,
    dry_run: bool,
    json: bool,
    record: Option<PathBuf>,
    runtime_args: &RuntimeArgs,
) -> anyhow::Result<ExitCode> {
    let mut controller = controller(config, runtime_args, dry_run)?;
    controller.record = record;
    let guards = match shard.shard_count {
        0 => anyhow::bail!("--shard-count (CLOUD_RUN_TASK_COUNT) must be at least 1"),
        1 => guards.to_vec(),
        count if shard.shard_index >= count => anyhow::bail!(
            "--shard-index (CLOUD_RUN_TASK_INDEX) is {}, not below --shard-count (CLOUD_RUN_TASK_COUNT) {count}",
            shard.shard_index
        ),
        count => {
            let mine = controller.config().shard(shard.shard_index, count);
            tracing::info!(shard = shard.shard_index, of = count, guards = ?mine, "this shard's guards");
            let mine: Vec<String> = mine.into_iter().filter(|g| guards.is_empty() || guards.contains(g)).collect();
            if mine.is_empty() {
                // More tasks than guards: this one has nothing to do (an empty list would mean every guard).
                print(&[], json, exit::HEALTHY)?;
                return Ok(ExitCode::from(exit::HEALTHY));
            }
            mine
        }
    };
    let reports = runtime()?.block_on(controller.check(&guards, Actor::Schedule));
    let code = exit_code(&reports);
    print(&reports, json, code)?;
    Ok(ExitCode::from(code))
}

pub(crate) fn watch(
    config: &Path,
    dry_run: bool,
    cycles: Option<u64>,
    json: bool,
    runtime_args: &RuntimeArgs,
) -> anyhow::Result<ExitCode> {
    let controller = controller(config, runtime_args, dry_run)?;
    let mut code = exit::HEALTHY;
    runtime()?.block_on(async {
        let clock = controller.clock();
        let mut schedule = Schedule::new(&controller.config().guards, clock.now_ms().await?);
        let mut done = 0u64;
        loop {
            let now = clock.now_ms().await?;
            let due = schedule.take_due(now);
            if due.is_empty() {
                // Woken early (a system clock step): an empty list would mean every guard.
                let wait = schedule.next_due().saturating_sub(now).max(1);
                clock.sleep(std::time::Duration::from_millis(wait as u64)).await?;
                continue;
            }
            let reports = controller.check(&due, Actor::Schedule).await;
            // The exit code covers every cycle: a rollback an hour ago is not undone by a promote now.
            code = exit::worst(code, exit_code(&reports));
            if !json {
                println!("-- {}", ripcord::fixture::format_timestamp(now));
            }
            print(&reports, json, exit_code(&reports))?;
            done += 1;
            if cycles.is_some_and(|n| done >= n) {
                return Ok::<_, anyhow::Error>(());
            }
            let wait = schedule.next_due().saturating_sub(clock.now_ms().await?).max(0);
            tokio::select! {
                slept = clock.sleep(std::time::Duration::from_millis(wait as u64)) => slept?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    })?;
    Ok(ExitCode::from(code))
}

/// When each guard is next due: every guard is judged on its own `interval`, counted from the start.
#[derive(Debug)]
struct Schedule {
    /// (guard, interval in ms, next due in ms).
    guards: Vec<(String, i64, i64)>,
}

impl Schedule {
    fn new(guards: &[ripcord::config::Guard], now: i64) -> Self {
        Self { guards: guards.iter().map(|g| (g.name.clone(), g.interval.as_millis() as i64, now)).collect() }
    }

    /// The guards due at `now`, each then scheduled one interval later (skipping intervals missed meanwhile).
    fn take_due(&mut self, now: i64) -> Vec<String> {
        let mut due = Vec::new();
        for (name, interval, next) in &mut self.guards {
            if *next <= now {
                due.push(name.clone());
                let missed = (now - *next) / *interval;
                *next += (missed + 1) * *interval;
            }
        }
        due
    }

    fn next_due(&self) -> i64 {
        self.guards.iter().map(|(_, _, next)| *next).min().unwrap_or(i64::MAX)
    }
}

pub(crate) fn pull(
    config: &Path,
    guard: &str,
    to: Option<&str>,
    dry_run: bool,
    json: bool,
    runtime_args: &RuntimeArgs,
) -> anyhow::Result<ExitCode> {
    let controller = controller(config, runtime_args, dry_run)?;
    if controller.config().guard(guard).is_none() {
        let known: Vec<&str> = controller.config().guards.iter().map(|g| g.name.as_str()).collect();
        anyhow::bail!("no guard named {guard:?} in {} (guards: {})", config.display(), known.join(", "));
    }
    let report = runtime()?.block_on(controller.pull(guard, to));
    let code = exit_code(std::slice::from_ref(&report));
    print(std::slice::from_ref(&report), json, code)?;
    Ok(ExitCode::from(code))
}

/// The platform and the audit log, read: no policy is loaded, nothing is written.
pub(crate) fn status(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let log = Audit::load(&config.audit_log).with_context(|| format!("reading {}", config.audit_log.display()))?;
    if let Some(note) = log.damage_note(&config.audit_log) {
        eprintln!("warning: {note}");
    }
    let open = ripcord::audit::unanswered(log.records.iter().cloned());
    let clock = clock(&config);
    let (rows, now) = runtime()?.block_on(async {
        let mut platforms: std::collections::BTreeMap<String, ripcord::platform::Platform> = Default::default();
        let mut rows = Vec::new();
        for guard in &config.guards {
            let platform = match platforms.get(&guard.batch_key()) {
                Some(platform) => Ok(platform.clone()),
                None => ripcord::platform::Platform::for_guard(&config, guard).await.inspect(|p| {
                    platforms.insert(guard.batch_key(), p.clone());
                }),
            };
            let deployment = match platform {
                Ok(p) => p.deployment(guard).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let last = log.records.iter().rev().find(|r| r.guard == guard.name && r.record == Kind::Decision);
            rows.push((guard, deployment, last.cloned()));
        }
        (rows, clock.now_ms().await.unwrap_or(0))
    });
    println!("{:<16} {:<24} {:<10} {:<13} {:<24} NOTES", "GUARD", "TRAFFIC", "KNOWN GOOD", "LAST VERDICT", "AT");
    let mut code = exit::HEALTHY;
    for (guard, deployment, last) in rows {
        let mut notes = Vec::new();
        let (traffic, known_good) = match &deployment {
            Ok(d) => {
                if let Some(until) =
                    d.last_rollback_ms.map(|at| at + guard.cooldown.as_millis() as i64).filter(|u| *u > now)
                {
                    notes.push(format!("cooldown until {}", ripcord::fixture::format_timestamp(until)));
                }
                if let Some(capacity) = &d.capacity {
                    let release = match capacity.release {
                        ripcord::platform::Release::At(due) => {
                            format!("until {}", ripcord::fixture::format_timestamp(due))
                        }
                        ripcord::platform::Release::WhenPromoted => "standby".into(),
                    };
                    notes.push(format!("warm capacity on {} ({release})", label(&capacity.revision)));
                }
                (traffic(&d.primary, &d.candidate, d.candidate_share), d.known_good.clone())
            }
            Err(error) => {
                code = exit::ERROR;
                (format!("error: {error}"), None)
            }
        };
        for intent in open.iter().filter(|i| i.guard == guard.name) {
            let target = intent.target.as_deref().map(label).unwrap_or_default();
            notes.push(format!("change without a result: {} {target} since {}", intent.action, intent.at));
        }
        let (verdict, at) = last.map(|r| (r.verdict.to_string(), r.at)).unwrap_or_else(|| ("-".into(), "-".into()));
        println!(
            "{:<16} {traffic:<24} {:<10} {verdict:<13} {at:<24} {}",
            guard.name,
            known_good.map(|v| label(&v)).unwrap_or_else(|| "-".into()),
            if notes.is_empty() { "-".to_string() } else { notes.join("; ") }
        );
    }
    Ok(ExitCode::from(code))
}

pub(crate) fn report(
    config: &Path,
    audit: Option<PathBuf>,
    out: Option<PathBuf>,
    last: usize,
) -> anyhow::Result<ExitCode> {
    let path = match audit {
        Some(path) => path,
        None => Config::load(config)?.audit_log,
    };
    let log = Audit::load_existing(&path).with_context(|| format!("cannot read the audit log {}", path.display()))?;
    if let Some(note) = log.damage_note(&path) {
        eprintln!("warning: {note}");
    }
    let page = ripcord::timeline::render(&log.records, &path.display().to_string(), last);
    match out {
        Some(out) => std::fs::write(&out, page).with_context(|| format!("writing {}", out.display()))?,
        None => print!("{page}"),
    }
    Ok(ExitCode::from(exit::HEALTHY))
}

pub(crate) fn replay(
    config_path: &Path,
    input: &Path,
    guard: Option<&str>,
    json: bool,
    runtime_args: &RuntimeArgs,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let text = std::fs::read_to_string(input).with_context(|| format!("cannot read {}", input.display()))?;
    let documents: Vec<String> = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(single) => vec![single.to_string()],
        Err(_) => text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect(),
    };
    let policies = PolicySet::load(&config, Runtime::new(runtime_args.settings())?)?;
    let (mut rollback, mut inconclusive) = (false, false);
    for (line, document) in documents.iter().enumerate() {
        let source = PathBuf::from(format!("{}:{}", input.display(), line + 1));
        let evaluation = ripcord::fixture::parse(document, &source)?;
        let name = guard.unwrap_or(&evaluation.guard);
        let g = config
            .guard(name)
            .with_context(|| format!("{}: no guard named {name:?} in {}", source.display(), config_path.display()))?;
        let outcomes = policies.evaluate(g, &evaluation);
        let decision = ripcord::decision::decide(&ripcord::decision::Input {
            outcomes: &outcomes,
            has_data: !evaluation.candidate.metrics.is_empty(),
            mode: Mode::DryRun,
            on_policy_error: g.on_policy_error,
            no_data: g.no_data,
            now_ms: evaluation.now,
            cooldown_until_ms: None,
            rollback_target: evaluation
                .baseline
                .as_ref()
                .map(|b| b.id.clone())
                .filter(|b| *b != evaluation.candidate.id),
            candidate: evaluation.candidate.id.clone(),
            candidate_serves_all: evaluation.candidate.traffic_share >= 1.0,
            candidate_is_known_good: false,
        });
        rollback |= decision.verdict == Verdict::Rollback;
        inconclusive |= decision.verdict == Verdict::Inconclusive;
        let at = ripcord::fixture::format_timestamp(evaluation.now);
        if json {
            let policies: Vec<_> = outcomes
                .iter()
                .map(|o| {
                    serde_json::json!({
                        "plugin": o.plugin,
                        "verdict": o.outcome.as_ref().map(|r| r.verdict).unwrap_or(Verdict::Inconclusive),
                        "reason": o.outcome.as_ref().map(|r| r.reason.clone()).unwrap_or_else(|e| e.clone()),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"at": at, "guard": g.name, "verdict": decision.verdict, "reason": decision.reason, "policies": policies})
            );
        } else {
            println!("{at}  {:<16} {:<13} {}", g.name, decision.verdict.as_str(), decision.reason);
        }
    }
    let code = if rollback {
        exit::ROLLBACK
    } else if inconclusive {
        exit::INCONCLUSIVE
    } else {
        exit::HEALTHY
    };
    Ok(ExitCode::from(code))
}

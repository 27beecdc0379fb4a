//! The guard commands: `check` (one cycle), `watch` (a loop), `pull` (manual rollback), `status`, `report` and
//! `replay`.

use super::{RuntimeArgs, ShardArgs};
use anyhow::Context;
use ripcord::audit::{Actor, Audit, Kind};
use ripcord::clock::Clock;
use ripcord::config::{ClockKind, Config, Mode};
use ripcord::controller::{Controller, GuardReport, Outcome, PolicySet};
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
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Builds the controller for `config_path`.
pub(crate) fn controller(config_path: &Path, runtime_args: &RuntimeArgs, dry_run: bool) -> anyhow::Result<Controller> {
    let config = Config::load(config_path)?;
    let simulator = config.aws.endpoint_url.as_ref().or(config.gcp.endpoint_url.as_ref());
    let clock = match (config.clock, simulator) {
        (ClockKind::Simulator, Some(endpoint)) => Clock::remote(endpoint),
        _ => Clock::System,
    };
    let audit = Audit::open(&config.audit_log, config.webhook.clone())?;
    let runtime = Runtime::new(runtime_args.settings())?;
    let mut controller = Controller::new(config, runtime, clock, audit);
    controller.force_dry_run = dry_run;
    Ok(controller)
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

/// One line per guard, for people.
pub(crate) fn describe(report: &GuardReport) -> String {
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
                Some(p) => format!(", prewarm not ready ({})", p.note.clone().unwrap_or_default()),
                None => String::new(),
            };
            format!(
                "ROLLED BACK to {}{warm}; verdict-to-pin {verdict_to_pin_ms} ms ({verdict_to_pin_real_ms} ms real)",
                label(to)
            )
        }
        Outcome::AlreadyPinned { to } => format!("already pinned to {} by someone else", label(to)),
        Outcome::RecordedKnownGood { revision } => format!("recorded {} as known good", label(revision)),
        Outcome::Aborted { reason } => format!("ABORTED: {reason}"),
        Outcome::Failed { error } => format!("FAILED: {error}"),
    };
    format!("{:<16} {:<13} {:<22} {action}\n{:<16} {}", report.guard, report.verdict.as_str(), split, "", report.reason)
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
    let interval =
        controller.config().guards.iter().map(|g| g.interval).min().unwrap_or(std::time::Duration::from_secs(60));
    let mut code = exit::HEALTHY;
    runtime()?.block_on(async {
        let mut done = 0u64;
        loop {
            let reports = controller.check(&[], Actor::Schedule).await;
            code = exit_code(&reports);
            let now = controller.clock().now_ms().await.unwrap_or(0);
            if !json {
                println!("-- {}", ripcord::fixture::format_timestamp(now));
            }
            print(&reports, json, code)?;
            done += 1;
            if cycles.is_some_and(|n| done >= n) {
                return Ok::<_, anyhow::Error>(());
            }
            tokio::select! {
                slept = controller.clock().sleep(interval) => slept?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    })?;
    Ok(ExitCode::from(code))
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
    let report = runtime()?.block_on(controller.pull(guard, to));
    let code = match report.outcome {
        Outcome::RolledBack { .. } | Outcome::AlreadyPinned { .. } => exit::ROLLBACK,
        Outcome::NoAction => exit::HEALTHY,
        _ => exit::ERROR,
    };
    print(std::slice::from_ref(&report), json, code)?;
    Ok(ExitCode::from(code))
}

pub(crate) fn status(config_path: &Path, runtime_args: &RuntimeArgs) -> anyhow::Result<ExitCode> {
    let controller = controller(config_path, runtime_args, true)?;
    let audit = Audit::read(controller.audit_path())
        .with_context(|| format!("reading {}", controller.audit_path().display()))?;
    let open = ripcord::audit::unanswered(audit.iter().cloned());
    let (rows, now) = runtime()?.block_on(async {
        let mut rows = Vec::new();
        for guard in &controller.config().guards {
            let platform = ripcord::platform::Platform::for_guard(controller.config(), guard).await;
            let deployment = match platform {
                Ok(p) => p.deployment(guard).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let last = audit.iter().rev().find(|r| r.guard == guard.name && r.record == Kind::Decision);
            rows.push((guard, deployment, last.cloned()));
        }
        (rows, controller.clock().now_ms().await.unwrap_or(0))
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
    let records = Audit::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let page = ripcord::timeline::render(&records, &path.display().to_string(), last);
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
    let policies = PolicySet::load(&config, Runtime::new(runtime_args.settings())?);
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

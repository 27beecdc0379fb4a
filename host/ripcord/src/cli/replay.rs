//! `ripcord replay`: the guards' policies over recorded evaluations (a fixture, or `check --record`'s JSONL); no
//! action.

use super::RuntimeArgs;
use super::output::exit;
use anyhow::Context;
use ripcord::config::{Config, Mode};
use ripcord::judge::policies::PolicySet;
use ripcord::model::verdict::Verdict;
use ripcord::plugin::runtime::Runtime;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(crate) fn run(
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
    let (mut rollback, mut inconclusive, mut degraded) = (false, false, false);
    for (line, document) in documents.iter().enumerate() {
        let source = PathBuf::from(format!("{}:{}", input.display(), line + 1));
        let evaluation = ripcord::model::fixture::parse(document, &source)?;
        let name = guard.unwrap_or(&evaluation.guard);
        let g = config.guard(name).with_context(|| match config.broken_guard(name) {
            Some(broken) => format!("{}: guard {name:?}: {}", source.display(), broken.cause()),
            None => format!("{}: no guard named {name:?} in {}", source.display(), config_path.display()),
        })?;
        if let Some(broken) = policies.broken_guard(name) {
            anyhow::bail!("{}: guard {name:?}: {}", source.display(), broken.cause());
        }
        let outcomes = policies.evaluate(g, &evaluation, &Default::default());
        let decision = ripcord::judge::decision::decide(&ripcord::judge::decision::Input {
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
            bake: None,
        });
        rollback |= decision.verdict == Verdict::Rollback;
        inconclusive |= decision.verdict == Verdict::Inconclusive;
        degraded |= !decision.findings.is_empty();
        let at = ripcord::model::time::format_timestamp(evaluation.now);
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
            super::output::line(format!(
                "{}",
                serde_json::json!({"at": at, "guard": g.name, "verdict": decision.verdict, "reason": decision.reason, "findings": decision.findings, "policies": policies})
            ))?;
        } else {
            super::output::line(format!("{at}  {:<16} {:<13} {}", g.name, decision.verdict.as_str(), decision.reason))?;
        }
    }
    let code = if rollback {
        exit::ROLLBACK
    } else if degraded {
        exit::DEGRADED
    } else if inconclusive {
        exit::INCONCLUSIVE
    } else {
        exit::HEALTHY
    };
    Ok(ExitCode::from(code))
}

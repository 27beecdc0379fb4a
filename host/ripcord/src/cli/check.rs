//! `ripcord check`: one cycle over the guards (or one shard of them), for CI gates and scheduled jobs.

use super::CheckArgs;
use super::output::{exit, exit_code, print};
use super::setup::{async_runtime, controller};
use ripcord::record::audit::Actor;
use std::process::ExitCode;

pub(crate) fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let CheckArgs { guards: g, only: mut guards, changed, record, gate, shard } = args;
    let json = g.json;
    let mut controller = controller(&g.config, &g.runtime, g.dry_run)?;
    controller.record_evaluations(record);
    if !changed.is_empty() {
        let watching = controller.changed(&changed);
        tracing::info!(resources = ?changed, guards = ?watching, "checking the guards of the resources that changed");
        if watching.is_empty() {
            eprintln!("no guard watches {}: nothing to check", changed.join(", "));
            print(&[], json, exit::HEALTHY)?;
            return Ok(ExitCode::from(exit::HEALTHY));
        }
        guards.extend(watching);
    }
    let guards = match shard.shard_count {
        0 => anyhow::bail!("--shard-count (CLOUD_RUN_TASK_COUNT) must be at least 1"),
        1 => guards,
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
    let started = std::time::Instant::now();
    let reports = async_runtime()?.block_on(controller.check(&guards, Actor::Schedule));
    // ripcord's own metrics as log fields: a Cloud Run Job's log-based metrics read them.
    ripcord::record::telemetry::CycleSample::of(&reports, started.elapsed().as_millis() as u64).log();
    let code = match exit_code(&reports) {
        code @ (exit::ROLLBACK | exit::ERROR) => code,
        _ if gate => exit::HEALTHY,
        code => code,
    };
    print(&reports, json, code)?;
    Ok(ExitCode::from(code))
}

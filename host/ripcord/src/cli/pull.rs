//! `ripcord pull`: an on-call engineer's rollback, now.

use super::RuntimeArgs;
use super::output::{exit_code, print};
use super::setup::{async_runtime, controller};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(
    config: &Path,
    guard: &str,
    to: Option<&str>,
    reason: Option<String>,
    dry_run: bool,
    json: bool,
    runtime_args: &RuntimeArgs,
) -> anyhow::Result<ExitCode> {
    let controller = controller(config, runtime_args, dry_run)?;
    if controller.config().guard(guard).is_none() {
        let known: Vec<&str> = controller.config().guards.iter().map(|g| g.name.as_str()).collect();
        anyhow::bail!("no guard named {guard:?} in {} (guards: {})", config.display(), known.join(", "));
    }
    let report =
        async_runtime()?.block_on(controller.pull(guard, to, &ripcord::cycle::controller::Requester::local(reason)));
    let code = exit_code(std::slice::from_ref(&report));
    print(std::slice::from_ref(&report), json, code)?;
    Ok(ExitCode::from(code))
}

//! What every guard command starts with: the configuration loaded and checked (its policies too), the clock, the
//! audit log, the controller — and the async runtime the cycles run on.

use super::RuntimeArgs;
use anyhow::Context;
use ripcord::config::{ClockKind, Config};
use ripcord::cycle::controller::Controller;
use ripcord::judge::policies::PolicySet;
use ripcord::model::clock::Clock;
use ripcord::plugin::runtime::Runtime;
use ripcord::record::audit::Audit;
use std::path::Path;

/// The async runtime the guard commands run their cycles on (two workers: the machine ripcord is sized for).
pub(crate) fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Builds the controller for `config_path`: the configuration, its policies loaded and checked, the clock and the
/// audit log. What is global refuses the configuration; a guard that cannot be served is logged here and is an
/// error every cycle, while the others are served (`ripcord validate` refuses both).
pub(crate) fn controller(config_path: &Path, runtime_args: &RuntimeArgs, dry_run: bool) -> anyhow::Result<Controller> {
    let config = Config::load(config_path)?;
    let clock = clock(&config);
    let policies = PolicySet::load(&config, Runtime::new(runtime_args.settings())?);
    for broken in config.broken.iter().chain(policies.broken().iter()) {
        tracing::error!(guard = %broken.name, cause = %broken.cause(), "this guard is not served until its configuration is fixed; the others are");
    }
    let webhook = config.webhook.clone().map(|url| {
        ripcord::record::notify::Webhook::new(url, config.webhook_format, config.report_url.as_deref(), &config.path)
    });
    let audit = Audit::open(&config.audit_log, webhook)?;
    let mut controller = Controller::new(config, policies, clock, audit);
    controller.set_dry_run(dry_run);
    Ok(controller)
}

/// The configuration's clock: the simulator's when it says so, else the system's.
pub(crate) fn clock(config: &Config) -> Clock {
    let simulator = config.aws.endpoint_url.as_ref().or(config.gcp.endpoint_url.as_ref());
    match (config.clock, simulator) {
        (ClockKind::Simulator, Some(endpoint)) => Clock::remote(endpoint),
        _ => Clock::system(),
    }
}

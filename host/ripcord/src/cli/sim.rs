//! `ripcord sim serve`: runs a scenario in the simulator and serves its APIs until interrupted.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn serve(scenario: &Path, listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let sim = ripcord_sim::scenario::load(scenario)?;
    let server =
        ripcord_sim::Server::start(sim.clone(), listen).with_context(|| format!("cannot listen on {listen}"))?;
    println!("RIPCORD_SIM_ENDPOINT={}", server.endpoint());
    eprintln!(
        "simulator serving {} at virtual time {}: AWS Lambda (with the Runtime API), CloudWatch, CodeDeploy, Cloud \
         Run Admin v2 and Cloud Monitoring v3; control API under /_sim/ (time moves only with POST /_sim/advance). \
         Ctrl-C stops it.",
        scenario.display(),
        ripcord_sim::format_time(sim.now_ms())
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(tokio::signal::ctrl_c()).context("waiting for Ctrl-C")?;
    drop(server);
    Ok(ExitCode::SUCCESS)
}

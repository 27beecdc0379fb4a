//! `ripcord function`: the Lambda custom-runtime loop. Starts once (configuration, policies, clients — a failure
//! is reported to Lambda as an init error), then answers events until Lambda freezes or stops the process.

use super::RuntimeArgs;
use super::output::{exit_code, summary};
use super::setup::{async_runtime, controller};
use ripcord::cycle::controller::Controller;
use ripcord::function::{Event, Invocation, LambdaRuntimeApi, hook_status};
use ripcord::provider::codedeploy::CodeDeploy;
use ripcord::record::audit::Actor;
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Time kept back from an invocation's deadline for what follows a prewarm: the pin, its verification, the
/// markers, the result record and the answer to Lambda (a few API calls of at most a second each, usually).
const PIN_RESERVE: Duration = Duration::from_secs(5);

pub(crate) fn run(config: &Path, runtime_args: &RuntimeArgs) -> anyhow::Result<ExitCode> {
    let api = LambdaRuntimeApi::from_env()?;
    async_runtime()?.block_on(async {
        let mut controller = match controller(config, runtime_args, false) {
            Ok(controller) => controller,
            Err(error) => {
                let message = format!("{error:#}");
                if let Err(report) = api.init_error("ripcord.ConfigError", &message).await {
                    tracing::error!(%report, "cannot report the init error to Lambda");
                }
                return Err(error);
            }
        };
        let codedeploy = CodeDeploy::connect(&controller.config().aws).await;
        tracing::info!(config = %config.display(), guards = controller.config().guards.len(), "ripcord function ready");
        loop {
            let invocation = api.next().await?;
            let answered = match answer(&mut controller, &codedeploy, &invocation).await {
                Ok(body) => api.respond(&invocation.request_id, &body).await,
                Err((kind, message)) => {
                    tracing::error!(request_id = %invocation.request_id, kind, %message, "invocation failed");
                    api.fail(&invocation.request_id, kind, &message).await
                }
            };
            if let Err(error) = answered {
                tracing::error!(request_id = %invocation.request_id, %error, "cannot hand the answer back to Lambda");
            }
        }
    })
}

/// ripcord's own metrics for an invocation's cycle: CloudWatch Embedded Metric Format lines on stdout (Lambda
/// sends them to the function's log group, where they become metrics in the `Ripcord` namespace with no API
/// call), and the same counts as log fields.
fn emit_metrics(reports: &[ripcord::record::effect::GuardResult], started: Instant) {
    let sample = ripcord::record::telemetry::CycleSample::of(reports, started.elapsed().as_millis() as u64);
    sample.log();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let mut out = std::io::stdout().lock();
    for line in sample.emf(now) {
        let _ = std::io::Write::write_all(&mut out, format!("{line}\n").as_bytes());
    }
    let _ = std::io::Write::flush(&mut out);
}

/// Handles one event; an error is (Lambda `errorType`, message).
async fn answer(
    controller: &mut Controller,
    codedeploy: &CodeDeploy,
    invocation: &Invocation,
) -> Result<Value, (&'static str, String)> {
    let event = Event::parse(&invocation.payload).map_err(|e| ("ripcord.UnrecognisedEvent", e.to_string()))?;
    tracing::info!(request_id = %invocation.request_id, ?event, "invocation");
    controller.set_dry_run(matches!(event, Event::Check { dry_run: true, .. }));
    controller.set_deadline(invocation.deadline_ms.map(|deadline| {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let left = Duration::from_millis(deadline.saturating_sub(now)).saturating_sub(PIN_RESERVE);
        Instant::now() + left
    }));
    let started = Instant::now();
    match event {
        Event::Scheduled => {
            let reports = controller.check(&[], Actor::Schedule).await;
            emit_metrics(&reports, started);
            Ok(summary(&reports, exit_code(&reports)))
        }
        Event::Check { guards, .. } => {
            let reports = controller.check(&guards, Actor::Schedule).await;
            emit_metrics(&reports, started);
            Ok(summary(&reports, exit_code(&reports)))
        }
        Event::Changed { resources, what } => {
            let guards = controller.changed(&resources);
            tracing::info!(%what, guards = ?guards, "the platform says a deployment changed: checking its guards now");
            if guards.is_empty() {
                // No guard watches it: nothing to check (an empty list would mean every guard).
                return Ok(summary(&[], exit_code(&[])));
            }
            let reports = controller.check(&guards, Actor::Schedule).await;
            emit_metrics(&reports, started);
            Ok(summary(&reports, exit_code(&reports)))
        }
        Event::Pull { guard, to, reason } => {
            let requester = ripcord::cycle::controller::Requester { by: "invoke".into(), reason };
            let report = controller.pull(&guard, to.as_deref(), &requester).await;
            let reports = [report];
            emit_metrics(&reports, started);
            Ok(summary(&reports, exit_code(&reports)))
        }
        Event::DeployHook { deployment_id, execution_id } => {
            let reports = controller.check(&[], Actor::Hook).await;
            emit_metrics(&reports, started);
            let dry_run = controller.config().guards.iter().all(|g| g.mode == ripcord::config::Mode::DryRun);
            let (status, would) = hook_status(&reports, dry_run);
            codedeploy
                .report(&deployment_id, &execution_id, status)
                .await
                .map_err(|e| ("ripcord.HookStatusNotReported", e.to_string()))?;
            let mut body = summary(&reports, exit_code(&reports));
            body["hook"] = json!({"deployment_id": deployment_id, "status": status, "dry_run_would_report": would});
            Ok(body)
        }
    }
}

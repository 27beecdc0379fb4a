//! `ripcord demo`: the whole story in virtual time, with no cloud account. The simulator runs in this process and
//! serves the Lambda and CloudWatch APIs on a loopback port; ripcord's real AWS provider code talks to it through
//! the official SDK clients. v1 is stable, v2 a 10% canary that starts failing 4 minutes in; ripcord detects it,
//! prewarms v1 (unless `--no-prewarm`), pins it, and counts the cold starts users hit in the 5 minutes after.
//! The last line of output is one JSON object.

use super::RuntimeArgs;
use super::output::describe;
use anyhow::Context;
use ripcord::config::Config;
use ripcord::cycle::controller::Controller;
use ripcord::judge::policies::PolicySet;
use ripcord::model::clock::Clock;
use ripcord::plugin::runtime::Runtime;
use ripcord::record::audit::{Actor, Audit};
use ripcord::record::effect::{Effect, GuardResult};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

const LAMBDA_SCENARIO: &str = include_str!("../../../../examples/scenarios/canary-failure.toml");
const CLOUD_RUN_SCENARIO: &str = include_str!("../../../../examples/scenarios/cloud-run-canary.toml");
/// The function (Lambda) or service (Cloud Run) of both scenarios.
const WORKLOAD: &str = "checkout";
/// Let traffic build up before the first check.
const WARM_UP_MS: i64 = 3 * 60_000;
/// Give up if no rollback happened by then.
const MAX_CYCLES: usize = 15;
/// The window after the pin in which cold starts are counted.
const AFTER_PIN_MS: i64 = 5 * 60_000;

/// The platform the demo runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DemoPlatform {
    AwsLambda,
    CloudRun,
}

pub(crate) fn run(platform: DemoPlatform, prewarm: bool, runtime_args: &RuntimeArgs) -> anyhow::Result<ExitCode> {
    let (scenario, file) = match platform {
        DemoPlatform::AwsLambda => (LAMBDA_SCENARIO, "examples/scenarios/canary-failure.toml"),
        DemoPlatform::CloudRun => (CLOUD_RUN_SCENARIO, "examples/scenarios/cloud-run-canary.toml"),
    };
    let sim = ripcord_sim::scenario::parse(scenario, Path::new(file))?;
    let server = ripcord_sim::Server::start(sim.clone(), ([127, 0, 0, 1], 0).into())?;
    let dir = std::env::temp_dir().join(format!("ripcord-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let audit_log = dir.join("audit.jsonl");
    let config =
        Config::parse(&guards_toml(platform, prewarm, &audit_log, &server.endpoint()), &dir.join("guards.toml"))?;
    let audit = Audit::open(&config.audit_log, None)?;
    let policies = PolicySet::load_strict(&config, Runtime::new(runtime_args.settings())?)?;
    let controller = Controller::new(config, policies, Clock::simulator(sim.clone()), audit);
    introduce(platform, prewarm, &server.endpoint());
    sim.advance(WARM_UP_MS);
    let Some(report) = cycles_until_rollback(&controller, &sim)? else {
        println!("{}", json!({"rolled_back": false, "error": format!("no rollback within {MAX_CYCLES} cycles")}));
        return Ok(ExitCode::FAILURE);
    };
    let Effect::RolledBack { to, prewarm: warmed, verdict_to_pin_ms, verdict_to_pin_real_ms } = report.effect else {
        return Ok(ExitCode::FAILURE);
    };
    let pinned_at = sim.now_ms();
    sim.advance(AFTER_PIN_MS);
    let after = after_the_pin(platform, &sim, pinned_at);
    println!(
        "{}  5 minutes after the pin: {} requests, {} {}, {} cold starts, {} errors",
        time(pinned_at + AFTER_PIN_MS),
        after.requests,
        if after.revisions.len() == 1 { "all on" } else { "on" },
        after.revisions.iter().cloned().collect::<Vec<_>>().join(", "),
        after.cold,
        after.errors,
    );
    let records = Audit::read(&audit_log)?;
    let kinds: Vec<String> = records
        .iter()
        .filter(|r| r.action == ripcord::record::audit::Action::Rollback)
        .map(|r| format!("{:?}", r.record).to_lowercase())
        .collect();
    println!("audit: {} ({})", audit_log.display(), kinds.join(", "));
    let prewarmed = warmed.as_ref().is_some_and(|p| p.ready);
    println!(
        "{}",
        json!({
            "rolled_back": true,
            "pinned_version": to,
            "prewarmed": prewarmed,
            "prewarm_capacity": warmed.as_ref().map(|p| p.requested),
            "cold_starts_after_rollback": after.cold,
            "requests_after_rollback": after.requests,
            "platform": match platform { DemoPlatform::AwsLambda => "aws-lambda", DemoPlatform::CloudRun => "cloud-run" },
            "verdict_to_pin_ms": verdict_to_pin_ms,
            "verdict_to_pin_real_ms": verdict_to_pin_real_ms,
            "audit_log": audit_log.display().to_string(),
        })
    );
    Ok(ExitCode::SUCCESS)
}

/// `HH:MM:SS` of a virtual time.
fn time(ms: i64) -> String {
    ripcord_sim::format_time(ms).get(11..19).unwrap_or_default().to_string()
}

/// The demo's guards.toml: one guard on the simulated workload.
fn guards_toml(platform: DemoPlatform, prewarm: bool, audit_log: &Path, endpoint: &str) -> String {
    let target = match platform {
        DemoPlatform::AwsLambda => format!("platform = \"aws-lambda\"\nfunction = \"{WORKLOAD}\"\nalias = \"live\""),
        DemoPlatform::CloudRun => format!(
            "platform = \"cloud-run\"\nproject = \"acme-prod\"\nlocation = \"europe-west1\"\nservice = \"{WORKLOAD}\""
        ),
    };
    format!(
        r#"
[settings]
audit_log = "{audit}"
clock = "simulator"

[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"

[gcp]
endpoint_url = "{endpoint}"

[defaults]
window = "1m"
windows = 3
prewarm = "{prewarm}"

[[guard]]
name = "checkout-api"
{target}
policies = [{{ use = "builtin:error-rate", params = {{ max_rate = 0.02, windows = 2, min_requests = 100 }} }}]
"#,
        audit = audit_log.display(),
        prewarm = if prewarm { "on-rollback" } else { "off" },
    )
}

/// What the demo shows, before it starts.
fn introduce(platform: DemoPlatform, prewarm: bool, endpoint: &str) {
    let (story, clients, how) = match platform {
        DemoPlatform::AwsLambda => (
            format!(
                "AWS Lambda function `{WORKLOAD}`, alias `live` -> v1 (stable), v2 a 10% canary;\nv2 starts failing at 09:04."
            ),
            "aws-sdk-lambda and\naws-sdk-cloudwatch",
            "on-rollback (provisioned concurrency on v1 before the pin)",
        ),
        DemoPlatform::CloudRun => (
            format!(
                "Cloud Run service `{WORKLOAD}`: checkout-00001-stable 90%, checkout-00002-canary 10%;\nthe canary starts failing at 09:04."
            ),
            "google-cloud-run-v2\nand google-cloud-monitoring-v3",
            "on-rollback (tag the stable revision, warm-up requests to its tag URL, then pin)",
        ),
    };
    println!("ripcord demo: {story} Simulator at {endpoint} (virtual time; {clients} talk to it).");
    println!("prewarm: {}", if prewarm { how } else { "off" });
}

/// Cycles a minute apart until one rolls back (its result), at most [`MAX_CYCLES`].
fn cycles_until_rollback(controller: &Controller, sim: &ripcord_sim::Simulator) -> anyhow::Result<Option<GuardResult>> {
    let runtime = super::setup::async_runtime()?;
    for _ in 0..MAX_CYCLES {
        let reports = runtime.block_on(controller.check(&[], Actor::Schedule));
        let now = sim.now_ms();
        for report in &reports {
            println!("{}  {}", time(now), describe(report).replace('\n', "\n          "));
            if let Effect::Failed { error } = &report.effect {
                anyhow::bail!("the demo cycle failed: {error}");
            }
        }
        if let Some(report) = reports.into_iter().find(|r| matches!(r.effect, Effect::RolledBack { .. })) {
            return Ok(Some(report));
        }
        sim.advance(60_000);
    }
    Ok(None)
}

/// The users' requests in the 5 minutes after the pin.
struct AfterThePin {
    requests: usize,
    cold: usize,
    errors: usize,
    revisions: std::collections::BTreeSet<String>,
}

fn after_the_pin(platform: DemoPlatform, sim: &ripcord_sim::Simulator, pinned_at: i64) -> AfterThePin {
    match platform {
        DemoPlatform::AwsLambda => {
            let after = sim.requests(WORKLOAD, pinned_at, pinned_at + AFTER_PIN_MS);
            AfterThePin {
                requests: after.len(),
                cold: after.iter().filter(|r| r.cold_start).count(),
                errors: after.iter().filter(|r| r.error).count(),
                revisions: after.iter().map(|r| format!("v{}", r.version)).collect(),
            }
        }
        DemoPlatform::CloudRun => {
            let after: Vec<_> = sim
                .run_requests(WORKLOAD, pinned_at, pinned_at + AFTER_PIN_MS)
                .into_iter()
                .filter(|r| r.tag.is_none())
                .collect();
            AfterThePin {
                requests: after.len(),
                cold: after.iter().filter(|r| r.cold_start).count(),
                errors: after.iter().filter(|r| r.status >= 500).count(),
                revisions: after.iter().map(|r| r.revision.clone()).collect(),
            }
        }
    }
}

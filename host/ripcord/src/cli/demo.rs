//! `ripcord demo`: the whole story in virtual time, with no cloud account. The simulator runs in this process and
//! serves the Lambda and CloudWatch APIs on a loopback port; ripcord's real AWS provider code talks to it through
//! the official SDK clients. v1 is stable, v2 a 10% canary that starts failing 4 minutes in; ripcord detects it,
//! prewarms v1 (unless `--no-prewarm`), pins it, and counts the cold starts users hit in the 5 minutes after.
//! The last line of output is one JSON object.

use super::RuntimeArgs;
use super::guards::describe;
use anyhow::Context;
use ripcord::audit::{Actor, Audit};
use ripcord::clock::Clock;
use ripcord::config::Config;
use ripcord::controller::{Controller, Outcome};
use ripcord::runtime::Runtime;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

const SCENARIO: &str = include_str!("../../../../examples/scenarios/canary-failure.toml");
const FUNCTION: &str = "checkout";
/// Let traffic build up before the first check.
const WARM_UP_MS: i64 = 3 * 60_000;
/// Give up if no rollback happened by then.
const MAX_CYCLES: usize = 15;
/// The window after the pin in which cold starts are counted.
const AFTER_PIN_MS: i64 = 5 * 60_000;

pub(crate) fn run(prewarm: bool, runtime_args: &RuntimeArgs) -> anyhow::Result<ExitCode> {
    let sim = ripcord_sim::scenario::parse(SCENARIO, Path::new("examples/scenarios/canary-failure.toml"))?;
    let server = ripcord_sim::Server::start(sim.clone(), ([127, 0, 0, 1], 0).into())?;
    let dir = std::env::temp_dir().join(format!("ripcord-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let audit_log = dir.join("audit.jsonl");
    let guards = format!(
        r#"
[settings]
audit_log = "{audit}"
clock = "simulator"

[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"

[defaults]
window = "1m"
windows = 3
prewarm = "{prewarm}"

[[guard]]
name = "checkout-api"
platform = "aws-lambda"
function = "{FUNCTION}"
alias = "live"
policies = [{{ use = "builtin:error-rate", params = {{ max_rate = 0.02, windows = 2, min_requests = 100 }} }}]
"#,
        audit = audit_log.display(),
        endpoint = server.endpoint(),
        prewarm = if prewarm { "on-rollback" } else { "off" },
    );
    let config = Config::parse(&guards, &dir.join("guards.toml"))?;
    let audit = Audit::open(&config.audit_log, None)?;
    let controller =
        Controller::new(config, Runtime::new(runtime_args.settings())?, Clock::Simulator(sim.clone()), audit);
    let time = |ms: i64| ripcord_sim::format_time(ms).get(11..19).unwrap_or_default().to_string();

    println!("ripcord demo: AWS Lambda function `{FUNCTION}`, alias `live` -> v1 (stable) with v2 as a 10% canary;");
    println!(
        "v2 starts failing at 09:04. Simulator at {} (virtual time; the official AWS SDK clients talk to it).",
        server.endpoint()
    );
    println!("prewarm: {}", if prewarm { "on-rollback (provisioned concurrency on v1 before the pin)" } else { "off" });
    sim.advance(WARM_UP_MS);

    let runtime = super::guards::runtime()?;
    let mut rollback = None;
    for _ in 0..MAX_CYCLES {
        let reports = runtime.block_on(controller.check(&[], Actor::Schedule));
        let now = sim.now_ms();
        for report in &reports {
            println!("{}  {}", time(now), describe(report).replace('\n', "\n          "));
            if let Outcome::Failed { error } = &report.outcome {
                anyhow::bail!("the demo cycle failed: {error}");
            }
        }
        if let Some(report) = reports.into_iter().find(|r| matches!(r.outcome, Outcome::RolledBack { .. })) {
            rollback = Some(report);
            break;
        }
        sim.advance(60_000);
    }
    let Some(report) = rollback else {
        println!("{}", json!({"rolled_back": false, "error": format!("no rollback within {MAX_CYCLES} cycles")}));
        return Ok(ExitCode::FAILURE);
    };
    let Outcome::RolledBack { to, prewarm: warmed, verdict_to_pin_ms, verdict_to_pin_real_ms } = report.outcome else {
        return Ok(ExitCode::FAILURE);
    };
    let pinned_at = sim.now_ms();
    sim.advance(AFTER_PIN_MS);
    let after = sim.requests(FUNCTION, pinned_at, pinned_at + AFTER_PIN_MS);
    let cold = after.iter().filter(|r| r.cold_start).count();
    let errors = after.iter().filter(|r| r.error).count();
    let versions: std::collections::BTreeSet<u32> = after.iter().map(|r| r.version).collect();
    println!(
        "{}  5 minutes after the pin: {} requests, all on {:?}, {} cold starts, {} errors",
        time(pinned_at + AFTER_PIN_MS),
        after.len(),
        versions.iter().map(|v| format!("v{v}")).collect::<Vec<_>>(),
        cold,
        errors
    );
    let records = Audit::read(&audit_log)?;
    let kinds: Vec<String> =
        records.iter().filter(|r| r.action == "rollback").map(|r| format!("{:?}", r.record).to_lowercase()).collect();
    println!("audit: {} ({})", audit_log.display(), kinds.join(", "));
    let prewarmed = warmed.as_ref().is_some_and(|p| p.ready);
    println!(
        "{}",
        json!({
            "rolled_back": true,
            "pinned_version": to,
            "prewarmed": prewarmed,
            "prewarm_capacity": warmed.as_ref().map(|p| p.requested),
            "cold_starts_after_rollback": cold,
            "requests_after_rollback": after.len(),
            "verdict_to_pin_ms": verdict_to_pin_ms,
            "verdict_to_pin_real_ms": verdict_to_pin_real_ms,
            "audit_log": audit_log.display().to_string(),
        })
    );
    Ok(ExitCode::SUCCESS)
}

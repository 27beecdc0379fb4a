//! Command-line interface: argument parsing (clap derive), logging setup, and dispatch to the subcommands.

mod check;
mod demo;
#[cfg(test)]
mod documented;
mod function;
mod logging;
mod output;
mod plugin;
mod precompile;
mod pull;
mod replay;
mod report;
mod serve;
mod setup;
mod sim;
mod status;
mod validate;
mod watch;

use clap::{Parser, Subcommand};
use logging::LogFormat;
use ripcord::plugin::runtime::{CacheDir, RuntimeSettings};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Roll serverless deployments back safely: WebAssembly policies decide, ripcord prewarms and pins.
#[derive(Debug, Parser)]
#[command(name = "ripcord", version, about)]
struct Cli {
    /// Log format on stderr (default: json in `function` mode and in a Cloud Run Job, text otherwise).
    #[arg(long, global = true, value_enum, env = "RIPCORD_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `ripcord=debug` (tracing's EnvFilter syntax; default: `info` in `function` mode
    /// and in a Cloud Run Job, where the logs carry the audit records, `warn` otherwise).
    #[arg(long, global = true, env = "RIPCORD_LOG")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole story in virtual time against the built-in simulator: a failing canary, detected,
    /// prewarmed and pinned. The last line is a JSON summary.
    Demo {
        /// Pin without prewarming, to compare the cold starts users hit.
        #[arg(long)]
        no_prewarm: bool,
        /// The platform to simulate.
        #[arg(long, value_enum, default_value = "aws-lambda")]
        platform: demo::DemoPlatform,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// One cycle over the guards: read, measure, judge, act, audit. Exit code: 0 healthy, 1 error,
    /// 2 rollback verdict, 3 inconclusive.
    Check(CheckArgs),
    /// Run cycles every guard interval until interrupted.
    Watch {
        #[command(flatten)]
        guards: GuardArgs,
        /// Stop after this many cycles.
        #[arg(long)]
        cycles: Option<u64>,
        /// Serve ripcord's own metrics (cycles, verdicts, rollbacks, durations) as Prometheus text at
        /// http://ADDR/metrics (e.g. 0.0.0.0:9464; port 0 picks one, printed on stderr).
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Roll a guard back by hand, now: prewarm, pin, verify, audit (ignores cooldown).
    Pull {
        /// The guard's name.
        guard: String,
        /// Pin this revision instead of the guard's baseline / last known good.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Why, for the audit record (which also names you: `local:$USER`).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        guards: GuardArgs,
    },
    /// Run the guards' cycles as `watch` does and serve the on-call API: GET /healthz, /metrics, /api/v1/guards,
    /// /api/v1/guards/NAME; POST /api/v1/guards/NAME/check and /pull. Every request but /healthz needs a bearer
    /// token of `[server] tokens_file`.
    Serve {
        #[command(flatten)]
        guards: GuardArgs,
        /// Address to listen on (default: `[server] listen`, else 0.0.0.0:$PORT when PORT is set, else
        /// 127.0.0.1:8080; port 0 picks one, printed on stderr).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Serve only: the cycles run elsewhere (the scheduled function, a Cloud Run Job) on the same platform and
        /// audit log.
        #[arg(long)]
        no_watch: bool,
    },
    /// Show each guard's traffic split, last known good and last verdict.
    Status {
        /// Path to guards.toml.
        #[arg(long, short, default_value = "guards.toml")]
        config: PathBuf,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Render the audit log as one self-contained HTML page: per guard, a strip of every verdict, the changes
    /// and the latest decisions with their failed checks.
    Report {
        /// Path to guards.toml (for its `audit_log`).
        #[arg(long, short, default_value = "guards.toml")]
        config: PathBuf,
        /// Read this audit log instead of the configuration's.
        #[arg(long, value_name = "FILE")]
        audit: Option<PathBuf>,
        /// Write the page here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Decisions shown in full per guard (the newest).
        #[arg(long, default_value_t = 50)]
        last: usize,
    },
    /// Run the guards' policies over recorded evaluations (a fixture or the JSONL of `check --record`); no action.
    Replay {
        /// Path to guards.toml.
        #[arg(long, short, default_value = "guards.toml")]
        config: PathBuf,
        /// Evaluation JSON, or JSONL with one evaluation per line.
        #[arg(long)]
        input: PathBuf,
        /// Use this guard's policies for every evaluation (default: the guard each evaluation names).
        #[arg(long)]
        guard: Option<String>,
        /// One JSON object per evaluation.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Run as an AWS Lambda function (custom runtime, `bootstrap`): answer EventBridge schedules (one cycle),
    /// CodeDeploy lifecycle hooks (judge, then report Succeeded or Failed) and direct invocations
    /// (`{"action": "check" | "pull", ...}`). Needs AWS_LAMBDA_RUNTIME_API, which Lambda sets.
    Function {
        /// Path to guards.toml (relative to the function's directory).
        #[arg(long, short, default_value = "guards.toml", env = "RIPCORD_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Check a configuration as a whole without calling any platform: every policy loaded and described, every
    /// parameter and platform field checked; prints every problem (file, guard, field, value) and exits 1 on any,
    /// 0 when every guard would be served. For CI before a configuration ships.
    Validate {
        /// Path to guards.toml.
        #[arg(long, short, default_value = "guards.toml")]
        config: PathBuf,
        /// One JSON object: `{"config", "ok", "guards", "served", "problems": [{"guard", "field", "message"}]}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Check a configuration and compile its policies ahead of time into DIR, for a deployment package (run the
    /// deployed ripcord with `--precompiled DIR`). Prints what a package must hold, as JSON.
    Precompile {
        /// Path to guards.toml.
        #[arg(long, short, default_value = "guards.toml")]
        config: PathBuf,
        /// Where the compiled code goes.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Inspect and test policy plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// The platform simulator.
    #[command(subcommand)]
    Sim(SimCommand),
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Serve a scenario on a loopback port — Lambda, CloudWatch and the Lambda Runtime API, CodeDeploy, Cloud Run
    /// Admin v2 and Cloud Monitoring v3 — with its virtual clock; prints RIPCORD_SIM_ENDPOINT=URL.
    Serve {
        /// Scenario file (see examples/scenarios/).
        #[arg(long)]
        scenario: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:4566")]
        listen: std::net::SocketAddr,
    },
}

/// Options shared by the guard commands.
#[derive(Debug, clap::Args)]
pub(crate) struct GuardArgs {
    /// Path to guards.toml.
    #[arg(long, short, default_value = "guards.toml")]
    config: PathBuf,
    /// Report what would be done without changing anything (overrides each guard's mode).
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// Which part of the guards one run of a sharded job takes (a Cloud Run Job's tasks).
#[derive(Debug, clap::Args)]
pub(crate) struct ShardArgs {
    /// This run's shard, from 0.
    #[arg(long, default_value_t = 0, env = "CLOUD_RUN_TASK_INDEX")]
    shard_index: usize,
    /// How many shards the guards are split into (by region or project, then name).
    #[arg(long, default_value_t = 1, env = "CLOUD_RUN_TASK_COUNT")]
    shard_count: usize,
}

/// What `check` runs over and how it answers.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    pub(crate) guards: GuardArgs,
    /// Only these guards (repeatable; default all).
    #[arg(long = "guard", value_name = "NAME")]
    pub(crate) only: Vec<String>,
    /// Only the guards watching this resource, as a change event names it (repeatable): a Lambda `FUNCTION:ALIAS`
    /// or ARN, a Cloud Run service (`projects/P/locations/L/services/S`, or its name) — what an Eventarc trigger
    /// passes a Cloud Run Job's execution. None watching it: exit 0, nothing checked.
    #[arg(long, value_name = "RESOURCE")]
    pub(crate) changed: Vec<String>,
    /// Append every evaluation to this JSONL file (for `ripcord replay`).
    #[arg(long, value_name = "FILE")]
    pub(crate) record: Option<PathBuf>,
    /// Exit as a deploy gate: 0 unless a guard's verdict is rollback (2) or a guard could not be judged (1),
    /// the CodeDeploy hook's rule (inconclusive and degraded pass); for verify steps that fail on any non-zero.
    #[arg(long)]
    pub(crate) gate: bool,
    #[command(flatten)]
    pub(crate) shard: ShardArgs,
}

/// Limits every plugin runs under.
#[derive(Debug, clap::Args)]
pub(crate) struct RuntimeArgs {
    /// Wall-clock time a plugin call may take, e.g. `250ms`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "250ms")]
    deadline: Duration,
    /// Largest memory a plugin may use, in MiB.
    #[arg(long, default_value_t = (ripcord::plugin::runtime::DEFAULT_MEMORY_LIMIT >> 20) as u64)]
    memory_limit_mib: u64,
    /// Directory of compiled plugins (default: $RIPCORD_CACHE_DIR, $XDG_CACHE_HOME/ripcord or ~/.cache/ripcord).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Compile plugins on every run instead of caching the compiled code.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Code compiled ahead of time by `ripcord precompile` (read first, never written; a deployment package's
    /// `precompiled/`).
    #[arg(long, value_name = "DIR", env = "RIPCORD_PRECOMPILED_DIR")]
    precompiled: Option<PathBuf>,
}

impl RuntimeArgs {
    pub(crate) fn settings(&self) -> RuntimeSettings {
        let cache = match (&self.cache_dir, self.no_cache) {
            (_, true) => CacheDir::Disabled,
            (Some(dir), false) => CacheDir::At(dir.clone()),
            (None, false) => CacheDir::Default,
        };
        RuntimeSettings {
            deadline: self.deadline,
            memory_limit: usize::try_from(self.memory_limit_mib << 20).unwrap_or(usize::MAX),
            cache,
            precompiled: self.precompiled.clone(),
            ..RuntimeSettings::default()
        }
    }
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse_from(arguments(std::env::args_os().collect()));
    let unattended = matches!(cli.command, Command::Function { .. }) || std::env::var_os("CLOUD_RUN_JOB").is_some();
    let format = cli.log_format.unwrap_or(if unattended { LogFormat::Json } else { LogFormat::Text });
    let filter = cli.log.as_deref().unwrap_or(if unattended { "info" } else { "warn" });
    logging::init(format, filter);
    let result = match cli.command {
        Command::Demo { no_prewarm, platform, runtime } => demo::run(platform, !no_prewarm, &runtime),
        Command::Check(args) => check::run(args),
        Command::Function { config, runtime } => function::run(&config, &runtime),
        Command::Precompile { config, out } => precompile::run(&config, &out),
        Command::Validate { config, json, runtime } => validate::run(&config, json, &runtime),
        Command::Watch { guards: g, cycles, metrics_addr } => {
            watch::run(&g.config, g.dry_run, cycles, g.json, metrics_addr, &g.runtime)
        }
        Command::Pull { guard, to, reason, guards: g } => {
            pull::run(&g.config, &guard, to.as_deref(), reason, g.dry_run, g.json, &g.runtime)
        }
        Command::Serve { guards: g, listen, no_watch } => serve::run(serve::ServeArgs {
            config: &g.config,
            dry_run: g.dry_run,
            json: g.json,
            listen,
            watch: !no_watch,
            runtime: &g.runtime,
        }),
        Command::Status { config, json } => status::run(&config, json),
        Command::Report { config, audit, out, last } => report::run(&config, audit, out, last),
        Command::Replay { config, input, guard, json, runtime } => {
            replay::run(&config, &input, guard.as_deref(), json, &runtime)
        }
        Command::Plugin(command) => plugin::run(command),
        Command::Sim(SimCommand::Serve { scenario, listen }) => sim::serve(&scenario, listen),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command line, with Lambda's start of a custom runtime read as `function`: Lambda runs the package's
/// `bootstrap` with no arguments.
fn arguments(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let program = args.first().and_then(|a| std::path::Path::new(a).file_name()).and_then(|n| n.to_str());
    if args.len() == 1 && program == Some("bootstrap") {
        args.push("function".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::arguments;

    #[test]
    fn bootstrap_without_arguments_is_function_mode() {
        let args = |list: &[&str]| list.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(arguments(args(&["/var/task/bootstrap"])), args(&["/var/task/bootstrap", "function"]));
        assert_eq!(arguments(args(&["bootstrap", "check"])), args(&["bootstrap", "check"]));
        assert_eq!(arguments(args(&["ripcord"])), args(&["ripcord"]));
    }
}

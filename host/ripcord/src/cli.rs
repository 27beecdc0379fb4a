//! Command-line interface: argument parsing (clap derive), logging setup, and dispatch to the subcommands.

mod plugin;

use clap::{Parser, Subcommand, ValueEnum};
use ripcord::runtime::{CacheDir, RuntimeSettings};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Roll serverless deployments back safely: WebAssembly policies decide, ripcord prewarms and pins.
#[derive(Debug, Parser)]
#[command(name = "ripcord", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "RIPCORD_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `ripcord=debug` (tracing's EnvFilter syntax).
    #[arg(long, global = true, default_value = "warn", env = "RIPCORD_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and test policy plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

/// Limits every plugin runs under.
#[derive(Debug, clap::Args)]
pub(crate) struct RuntimeArgs {
    /// Wall-clock time a plugin call may take, e.g. `250ms`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "250ms")]
    deadline: Duration,
    /// Largest memory a plugin may use, in MiB.
    #[arg(long, default_value_t = (ripcord::runtime::DEFAULT_MEMORY_LIMIT >> 20) as u64)]
    memory_limit_mib: u64,
    /// Directory of compiled plugins (default: $RIPCORD_CACHE_DIR, $XDG_CACHE_HOME/ripcord or ~/.cache/ripcord).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Compile plugins on every run instead of caching the compiled code.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
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
            ..RuntimeSettings::default()
        }
    }
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log);
    let result = match cli.command {
        Command::Plugin(command) => plugin::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

//! `ripcord plugin`: inspect a policy and run it on an evaluation fixture.

use super::RuntimeArgs;
use anyhow::Context;
use clap::Subcommand;
use ripcord::evaluation::ParamValue;
use ripcord::report::Report;
use ripcord::runtime::{Plugin, PluginSource, Runtime};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    /// Show a policy's name, version, contract, metrics and parameters.
    Inspect {
        /// `builtin:NAME` or a path to a `.wasm` component.
        plugin: PluginSource,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Run a policy on an evaluation JSON file and print one JSON object with its verdict, reason and checks.
    Test {
        /// `builtin:NAME` or a path to a `.wasm` component.
        plugin: PluginSource,
        /// Evaluation JSON file (see the README for the format).
        #[arg(long)]
        input: PathBuf,
        /// Set a parameter, overriding the file's: `--param max_rate=0.02` (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, ParamValue)>,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
}

fn parse_param(text: &str) -> Result<(String, ParamValue), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))?;
    if name.is_empty() {
        return Err(format!("expected NAME=VALUE, got {text:?}"));
    }
    Ok((name.to_string(), ParamValue::parse_cli(value)))
}

pub(crate) fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Inspect { plugin, json, runtime } => {
            let runtime = Runtime::new(runtime.settings())?;
            let plugin = runtime.load(&plugin)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&describe_json(&plugin))?);
            } else {
                print!("{}", describe_text(&plugin));
            }
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Test { plugin, input, params, runtime } => {
            let mut evaluation = ripcord::fixture::load(&input)?;
            evaluation.params.extend(params);
            let runtime = Runtime::new(runtime.settings())?;
            let plugin = runtime.load(&plugin)?;
            let started = Instant::now();
            let outcome = runtime.evaluate(&plugin, &evaluation);
            let elapsed_us = started.elapsed().as_micros() as u64;
            let (report, error) = match outcome {
                Ok(report) => (report, None),
                Err(error) => {
                    let detail = json!({"kind": error.kind.code(), "message": error.to_string()});
                    (Report::inconclusive(error.to_string()), Some(detail))
                }
            };
            let output = json!({
                "plugin": plugin.source(),
                "policy": plugin.info().name,
                "version": plugin.info().version,
                "input": input.display().to_string(),
                "verdict": report.verdict,
                "reason": report.reason,
                "checks": report.checks,
                "error": error,
                "elapsed_us": elapsed_us,
            });
            println!("{}", serde_json::to_string(&output).context("cannot encode the result")?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn describe_json(plugin: &Plugin) -> serde_json::Value {
    let info = plugin.info();
    json!({
        "source": plugin.source(),
        "name": info.name,
        "version": info.version,
        "description": info.description,
        "contract": plugin.contract().package(),
        "sha256": plugin.sha256(),
        "metrics": info.metrics,
        "parameters": info.parameters.iter().map(|p| json!({
            "name": p.name, "type": p.default.type_name(), "default": p.default, "description": p.description,
        })).collect::<Vec<_>>(),
    })
}

fn describe_text(plugin: &Plugin) -> String {
    let info = plugin.info();
    let mut out = format!("{} {}  ({})\n", info.name, info.version, plugin.source());
    out += &format!("  {}\n", info.description);
    out += &format!("  contract:   {}\n", plugin.contract().package());
    out += &format!("  sha256:     {}\n", plugin.sha256());
    out += &format!("  metrics:    {}\n", info.metrics.join(", "));
    out += "  parameters:\n";
    let width = info.parameters.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &info.parameters {
        let default = p.default.to_string();
        out += &format!("    {:width$}  {:7}  {:8}  {}\n", p.name, p.default.type_name(), default, p.description);
    }
    out
}

//! `ripcord plugin`: inspect a policy and run it on an evaluation fixture.

use super::RuntimeArgs;
use anyhow::Context;
use clap::Subcommand;
use ripcord::devkit::{self, Lang, Project};
use ripcord::model::evaluation::ParamValue;
use ripcord::model::verdict::PolicyReport;
use ripcord::plugin::runtime::{Contract, Plugin, PluginSource, Runtime};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    /// Create a policy project: the WIT, the build recipe, a sample policy and fixtures with expected verdicts.
    New {
        /// The policy's name (lowercase letters, digits, '-').
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum)]
        lang: Lang,
        /// Where to create the project folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The contract version it targets: 0.1.0 (any language; the reference safety + errors policy) or 0.2.0
        /// (any language; a policy on the host's anytime-valid sequential tests).
        #[arg(long, default_value = "0.1.0", value_parser = parse_contract)]
        contract: Contract,
    },
    /// Build the policy project in this folder (or --project) with its language's toolchain.
    Build {
        /// The project folder.
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// Where to write the component (default: the manifest's `output`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
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
    /// Run a policy on one evaluation (`--input`: prints one JSON object with its verdict, reason and checks), or
    /// on every fixture of a folder (prints a table; exits non-zero if a verdict differs from the expected one).
    Test {
        /// `builtin:NAME` or a path to a `.wasm` component (default: the component of the project in this folder).
        plugin: Option<PluginSource>,
        /// One evaluation JSON file (see docs/reference/evaluation-format.md for the format).
        #[arg(long, conflicts_with = "fixtures")]
        input: Option<PathBuf>,
        /// A folder of fixtures: evaluation JSON files with their expected verdict (default: ./fixtures).
        #[arg(long)]
        fixtures: Option<PathBuf>,
        /// With fixtures: print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
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

/// A contract version this host supports, as `plugin new --contract` takes it.
fn parse_contract(text: &str) -> Result<Contract, String> {
    Contract::SUPPORTED.into_iter().find(|c| c.version() == text).ok_or_else(|| {
        let supported: Vec<&str> = Contract::SUPPORTED.iter().map(|c| c.version()).collect();
        format!("unknown contract version {text:?}; supported: {}", supported.join(", "))
    })
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
        PluginCommand::New { name, lang, dir, contract } => {
            let created = devkit::scaffold(&name, lang, contract, &dir)?;
            println!("created {} ({} policy, contract {})", created.display(), lang.as_str(), contract.version());
            println!("next: cd {} && ripcord plugin build && ripcord plugin test", created.display());
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Build { project, out } => {
            let project = Project::open(&project)?;
            if let Some(install) = devkit::install_plan(&project) {
                eprintln!("installing {install}");
                install.run(&project)?;
            }
            let built = devkit::build(&project, out.as_deref())?;
            println!(
                "built {} ({} bytes) in {:.1} s with {}",
                built.path.display(),
                built.bytes,
                built.seconds,
                built.tool
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Test { plugin, input: None, fixtures, params, json, runtime } => {
            // Defaults come from the project in this folder: its component and its fixtures.
            let here = Project::open(Path::new("."));
            let (plugin, project) = match plugin {
                Some(plugin) => (plugin, here.ok()),
                None => {
                    let project = here?;
                    let output = project.output();
                    anyhow::ensure!(
                        output.is_file(),
                        "{} is not built yet: run `ripcord plugin build`",
                        output.display()
                    );
                    (PluginSource::File(output), Some(project))
                }
            };
            let fixtures =
                fixtures.or_else(|| project.map(|p| p.fixtures())).unwrap_or_else(|| PathBuf::from("fixtures"));
            run_fixtures(&plugin, &fixtures, params, json, &runtime)
        }
        PluginCommand::Test { plugin, input: Some(input), params, runtime, .. } => {
            let plugin = plugin.context("name the plugin to run on --input")?;
            run_once(&plugin, &input, params, &runtime)
        }
    }
}

/// `plugin test PLUGIN --input FILE`: one evaluation, one JSON object.
fn run_once(
    plugin: &PluginSource,
    input: &Path,
    params: Vec<(String, ParamValue)>,
    runtime: &RuntimeArgs,
) -> anyhow::Result<ExitCode> {
    let mut evaluation = ripcord::model::fixture::load(input)?;
    evaluation.params.extend(params);
    let runtime = Runtime::new(runtime.settings())?;
    let plugin = runtime.load(plugin)?;
    let started = Instant::now();
    let outcome = runtime.evaluate(&plugin, &evaluation);
    let elapsed_us = started.elapsed().as_micros() as u64;
    let (report, error) = match outcome {
        Ok(report) => (report, None),
        Err(error) => {
            let detail = json!({"kind": error.kind.code(), "message": error.to_string()});
            (PolicyReport::inconclusive(error.to_string()), Some(detail))
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

/// One fixture's line of `plugin test`.
struct Row {
    name: String,
    expect: Option<ripcord::model::fixture::Expect>,
    /// The verdict, or `error`.
    got: &'static str,
    reason: String,
    passed: bool,
}

/// Runs every fixture of `dir` against `plugin`: a table (or one JSON object), and a failure exit if any verdict
/// differs from the fixture's `expect`.
fn run_fixtures(
    plugin: &PluginSource,
    dir: &Path,
    params: Vec<(String, ParamValue)>,
    json: bool,
    runtime: &RuntimeArgs,
) -> anyhow::Result<ExitCode> {
    let files = ripcord::model::fixture::files_in(dir).context("cannot read the fixtures folder")?;
    anyhow::ensure!(!files.is_empty(), "no fixtures (*.json) in {}", dir.display());
    let runtime = Runtime::new(runtime.settings())?;
    let plugin = runtime.load(plugin)?;
    let mut rows = Vec::new();
    for file in &files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let fixture = ripcord::model::fixture::read(file)?;
        let mut evaluation = fixture.evaluation;
        evaluation.params.extend(params.iter().cloned());
        // A plugin error is a failure unless the fixture expects one: a policy that always throws must not pass
        // the fixtures that expect `inconclusive`.
        let (got, reason) = match runtime.evaluate(&plugin, &evaluation) {
            Ok(report) => (Some(report.verdict), report.reason),
            Err(error) => (None, error.to_string()),
        };
        let passed = fixture.expect.is_some_and(|e| e.is_met_by(got));
        rows.push(Row { name, expect: fixture.expect, got: got.map_or("error", |v| v.as_str()), reason, passed });
    }
    let failed = rows.iter().filter(|r| !r.passed).count();
    if json {
        let fixtures: Vec<_> = rows
            .iter()
            .map(|r| json!({"fixture": r.name, "expected": r.expect, "got": r.got, "passed": r.passed, "reason": r.reason}))
            .collect();
        let summary =
            json!({"plugin": plugin.source(), "fixtures": fixtures, "passed": rows.len() - failed, "failed": failed});
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(7).max(7);
        println!("{:width$}  {:13} {:13} RESULT", "FIXTURE", "EXPECTED", "GOT");
        for r in &rows {
            let expected = r.expect.map_or("(none)", |v| v.as_str());
            let result = if r.passed {
                "pass".to_string()
            } else {
                format!("FAIL: {}", ripcord::model::text::terminal_safe(&r.reason))
            };
            println!("{:width$}  {expected:13} {:13} {result}", r.name, r.got);
        }
        println!("{} fixtures: {} passed, {failed} failed ({})", rows.len(), rows.len() - failed, plugin.identity());
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

//! `ripcord validate`: a configuration checked as a whole before it ships — what refuses it (not TOML, unknown
//! keys, `[settings]`, `[defaults]`, duplicate names, the audit log's folder) and what would leave one guard
//! unserved (its platform fields, its settings, its policies: loaded, `describe`d, parameters checked and probed).
//! Every problem is printed, not only the first, each naming the file, the guard, the field and the value; nothing
//! is called or changed on any platform. The long-running modes serve the other guards when one is broken; this
//! is where a pipeline refuses it.

use super::RuntimeArgs;
use ripcord::config::{Config, ConfigError};
use ripcord::judge::policies::PolicySet;
use ripcord::plugin::runtime::Runtime;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(config_path: &Path, json: bool, runtime_args: &RuntimeArgs) -> anyhow::Result<ExitCode> {
    let (guards, served, problems) = match Config::load_all(config_path) {
        // Not TOML of the expected shape: nothing further can be read.
        Err(error) => (0, 0, vec![error]),
        Ok((config, mut problems)) => {
            let policies = PolicySet::load(&config, Runtime::new(runtime_args.settings())?);
            let broken = config.broken.iter().cloned().chain(policies.broken());
            let mut broken_names = std::collections::BTreeSet::new();
            for guard in broken {
                broken_names.insert(guard.name.clone());
                problems.extend(guard.problems.into_iter().map(ConfigError::Guard));
            }
            // `ripcord serve`'s tokens file, when one is named: its problems are the configuration's.
            if let Some(tokens) = &config.server.tokens_file
                && let Err(error) = super::serve::tokens::Tokens::load(tokens)
            {
                let (path, field) = (config_path.into(), "server.tokens_file".into());
                problems.push(ConfigError::Invalid { path, field, message: error.to_string() });
            }
            let guards = config.guard_names().count();
            (guards, guards - broken_names.len(), problems)
        }
    };
    let problems: Vec<&ConfigError> = problems.iter().flat_map(ConfigError::problems).collect();
    let ok = problems.is_empty();
    if json {
        let listed: Vec<_> = problems.iter().map(|p| problem_json(p)).collect();
        let answer = json!({
            "config": config_path, "ok": ok, "guards": guards, "served": served, "problems": listed,
        });
        super::output::line(format!("{answer}"))?;
    } else {
        // Plugin text (a panic message) may hold newlines or escape sequences: one problem, one safe line.
        for problem in &problems {
            super::output::line(format!("{}", ripcord::model::text::terminal_safe(&problem.to_string())))?;
        }
        let config = config_path.display();
        match problems.len() {
            0 => super::output::line(format!("{config}: {guards} guards, no problems"))?,
            n => super::output::line(format!(
                "{config}: {n} problem{}; {served} of {guards} guards would be served",
                if n == 1 { "" } else { "s" }
            ))?,
        }
    }
    Ok(ExitCode::from(if ok { 0 } else { 1 }))
}

/// One problem as JSON: the guard it belongs to (none for the configuration's own), the field and the message.
fn problem_json(problem: &ConfigError) -> serde_json::Value {
    match problem {
        ConfigError::Guard(p) => json!({"guard": p.guard, "field": p.field, "message": p.message}),
        ConfigError::Invalid { field, message, .. } => json!({"guard": null, "field": field, "message": message}),
        other => json!({"guard": null, "field": null, "message": other.to_string()}),
    }
}

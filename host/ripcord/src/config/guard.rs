//! One `[[guard]]` table made into a [`Guard`]: its name, its target (the fields of its platform, checked), its
//! policies and custom metrics, and its settings resolved against `[defaults]`. Errors are `(field, message)`,
//! the field relative to the guard (`function`, `policies[0].use`) or, for a setting it inherits, under
//! `defaults.`.

use super::file::{DefaultsFile, GuardFile, PolicyFile};
use super::{CustomMetric, Guard, MAX_GUARD_NAME, PolicyRef, Target, echo, names};
use crate::model::evaluation::{ParamValue, Platform};
use crate::plugin::runtime::PluginSource;
use std::collections::BTreeMap;
use std::path::Path;

type Invalid = (String, String);

/// The guard, resolved and checked; on failure every problem found (not only the first).
pub(super) fn resolve(g: GuardFile, index: usize, defaults: &DefaultsFile, base: &Path) -> Result<Guard, Vec<Invalid>> {
    let mut problems: Vec<Invalid> = Vec::new();
    if !valid_name(&g.name) {
        let message = format!("must be 1 to {MAX_GUARD_NAME} letters, digits, '-', '_' or '.', got {}", echo(&g.name));
        problems.push(("name".into(), message));
    }
    let target = target(&g).map_err(|problem| problems.push(problem)).ok();
    if g.policies.is_empty() {
        problems.push(("policies".into(), "at least one policy is required".into()));
    }
    let mut policies = Vec::new();
    for (j, p) in g.policies.into_iter().enumerate() {
        match policy(p, base) {
            Ok(policy) => policies.push(policy),
            Err(found) => problems.extend(found.into_iter().map(|(field, m)| (format!("policies[{j}].{field}"), m))),
        }
    }
    let mut metrics = BTreeMap::new();
    for (name, m) in g.metrics {
        if crate::model::evaluation::CANONICAL_METRICS.contains(&name.as_str()) {
            let message = format!("{name:?} is a canonical metric; custom metrics need another name");
            problems.push((format!("metrics.{name}"), message));
        } else if crate::model::evaluation::slow_requests_threshold(&name).is_some() {
            let message = format!(
                "{name:?} is the host's count of slow requests (slow_requests_<T>ms); custom metrics need another name"
            );
            problems.push((format!("metrics.{name}"), message));
        } else {
            let metric = CustomMetric { namespace: m.namespace, name: m.name, stat: m.stat, dimensions: m.dimensions };
            metrics.insert(name, metric);
        }
    }
    let settings = super::file::resolve(defaults, &g.overrides).map_err(|found| {
        let fields = found.into_iter().map(|(field, m)| {
            let field = if g.overrides.names(field) { field.to_string() } else { format!("defaults.{field}") };
            (field, m)
        });
        problems.extend(fields);
    });
    match (target, settings) {
        (Some(target), Ok(settings)) if problems.is_empty() => {
            Ok(Guard { name: g.name, index, target, policies, metrics, ..settings })
        }
        _ => Err(problems),
    }
}

/// Whether `name` may name a guard (it becomes part of audit record ids and log lines).
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_GUARD_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// What the guard watches: the fields of its platform, present and well formed, and none of the other's.
fn target(g: &GuardFile) -> Result<Target, Invalid> {
    let invalid = |field: &str, message: String| (field.to_string(), message);
    // The other platform's fields, and how this guard's platform and the other one are named.
    let (others, platform, other) = match g.platform {
        Platform::AwsLambda => {
            ([("project", &g.project), ("location", &g.location), ("service", &g.service)], "aws-lambda", "a cloud-run")
        }
        Platform::CloudRun => {
            ([("function", &g.function), ("alias", &g.alias), ("region", &g.region)], "cloud-run", "an aws-lambda")
        }
    };
    if let Some((field, Some(value))) = others.iter().find(|(_, value)| value.is_some()) {
        return Err(invalid(field, format!("{} is {other} setting; this guard is {platform}", echo(value))));
    }
    let need = |field: &str, value: &Option<String>| {
        value.clone().ok_or_else(|| invalid(field, format!("is required for {platform}")))
    };
    match g.platform {
        Platform::AwsLambda => {
            let (function, alias) = (need("function", &g.function)?, need("alias", &g.alias)?);
            names::lambda_function(&function).map_err(|m| invalid("function", m))?;
            names::lambda_alias(&alias).map_err(|m| invalid("alias", m))?;
            if let Some(region) = &g.region {
                names::aws_region(region).map_err(|m| invalid("region", m))?;
            }
            Ok(Target::Lambda { function, alias, region: g.region.clone() })
        }
        Platform::CloudRun => {
            let (project, location, service) =
                (need("project", &g.project)?, need("location", &g.location)?, need("service", &g.service)?);
            names::gcp_project(&project).map_err(|m| invalid("project", m))?;
            names::gcp_location(&location).map_err(|m| invalid("location", m))?;
            names::cloud_run_service(&service).map_err(|m| invalid("service", m))?;
            Ok(Target::CloudRun { project, location, service })
        }
    }
}

/// A policy of the guard: its source (a built-in that exists, or a path relative to the configuration) and its
/// parameters as typed values; on failure every problem found.
fn policy(p: PolicyFile, base: &Path) -> Result<PolicyRef, Vec<Invalid>> {
    let mut problems = Vec::new();
    let source: PluginSource = match p.source.parse() {
        Ok(PluginSource::File(path)) if path.is_relative() => PluginSource::File(base.join(path)),
        Ok(other) => other,
        Err(never) => match never {},
    };
    if let PluginSource::Builtin(name) = &source
        && crate::plugin::builtins::find(name).is_none()
    {
        let message = format!(
            "unknown built-in {}; the built-ins are {}",
            echo(&p.source),
            crate::plugin::builtins::names().join(", ")
        );
        problems.push(("use".into(), message));
    }
    let mut params = BTreeMap::new();
    for (name, value) in p.params {
        let value = match value {
            toml::Value::Boolean(b) => ParamValue::Boolean(b),
            toml::Value::Integer(i) => ParamValue::Integer(i),
            toml::Value::Float(f) => ParamValue::Float(f),
            toml::Value::String(s) => ParamValue::Text(s),
            other => {
                let message = format!("must be a boolean, number or string, got {}", echo(&other.to_string()));
                problems.push((format!("params.{name}"), message));
                continue;
            }
        };
        params.insert(name, value);
    }
    if problems.is_empty() { Ok(PolicyRef { source, params }) } else { Err(problems) }
}

//! One `[[guard]]` table made into a [`Guard`]: its name, its target (the fields of its platform, checked), its
//! policies and custom metrics, and its settings resolved against `[defaults]`. Errors are `(field, message)`,
//! the field relative to the guard (`function`, `policies[0].use`) or, for a setting it inherits, under
//! `defaults.`.

use super::file::{DefaultsFile, GuardFile, PolicyFile};
use super::{CustomMetric, Guard, MAX_GUARD_NAME, PolicyRef, Target, echo, names};
use crate::evaluation::{ParamValue, Platform};
use crate::runtime::PluginSource;
use std::collections::BTreeMap;
use std::path::Path;

type Invalid = (String, String);

/// The guard, resolved and checked.
pub(super) fn resolve(g: GuardFile, defaults: &DefaultsFile, base: &Path) -> Result<Guard, Invalid> {
    let invalid = |field: &str, message: String| (field.to_string(), message);
    if g.name.is_empty()
        || g.name.len() > MAX_GUARD_NAME
        || !g.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        let message = format!("must be 1 to {MAX_GUARD_NAME} letters, digits, '-', '_' or '.', got {}", echo(&g.name));
        return Err(invalid("name", message));
    }
    let target = target(&g)?;
    if g.policies.is_empty() {
        return Err(invalid("policies", "at least one policy is required".into()));
    }
    let policies = g
        .policies
        .into_iter()
        .enumerate()
        .map(|(j, p)| policy(p, base).map_err(|(field, m)| (format!("policies[{j}].{field}"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    let metrics = g
        .metrics
        .into_iter()
        .map(|(name, m)| {
            if crate::evaluation::CANONICAL_METRICS.contains(&name.as_str()) {
                let message = format!("{name:?} is a canonical metric; custom metrics need another name");
                return Err(invalid(&format!("metrics.{name}"), message));
            }
            if crate::evaluation::slow_requests_threshold(&name).is_some() {
                let message =
                    format!("{name:?} is the host's count of slow requests (slow_requests_<T>ms); custom metrics need another name");
                return Err(invalid(&format!("metrics.{name}"), message));
            }
            let metric = CustomMetric { namespace: m.namespace, name: m.name, stat: m.stat, dimensions: m.dimensions };
            Ok((name, metric))
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let settings = super::file::resolve(defaults, &g.overrides).map_err(|(field, m)| {
        let field = if g.overrides.names(field) { field.to_string() } else { format!("defaults.{field}") };
        (field, m)
    })?;
    Ok(Guard { name: g.name, target, policies, metrics, ..settings })
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
    if let Some((field, _)) = others.iter().find(|(_, value)| value.is_some()) {
        return Err(invalid(field, format!("is {other} setting; this guard is {platform}")));
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
/// parameters as typed values.
fn policy(p: PolicyFile, base: &Path) -> Result<PolicyRef, Invalid> {
    let source: PluginSource = match p.source.parse() {
        Ok(PluginSource::File(path)) if path.is_relative() => PluginSource::File(base.join(path)),
        Ok(other) => other,
        Err(never) => match never {},
    };
    if let PluginSource::Builtin(name) = &source
        && crate::builtins::find(name).is_none()
    {
        let message =
            format!("unknown built-in {}; the built-ins are {}", echo(&p.source), crate::builtins::names().join(", "));
        return Err(("use".into(), message));
    }
    let params = p
        .params
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                toml::Value::Boolean(b) => ParamValue::Boolean(b),
                toml::Value::Integer(i) => ParamValue::Integer(i),
                toml::Value::Float(f) => ParamValue::Float(f),
                toml::Value::String(s) => ParamValue::Text(s),
                other => {
                    let message = format!("must be a boolean, number or string, got {}", echo(&other.to_string()));
                    return Err((format!("params.{name}"), message));
                }
            };
            Ok((name, value))
        })
        .collect::<Result<_, _>>()?;
    Ok(PolicyRef { source, params })
}

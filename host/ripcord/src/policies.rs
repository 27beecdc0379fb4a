//! The policies of a configuration: each plugin loaded once and shared by the guards that use it, and checked at
//! configuration time — before any cycle runs — so a guard that could never be judged is an error naming the
//! file, the guard, the field and the value, not an `inconclusive` on every cycle forever.
//!
//! Checks, in order: the plugin loads (the file exists, is a component, targets a supported contract); every
//! parameter the guard sets is one the policy declares (`describe`), with a value of the declared type; and the
//! policy accepts the values — it is asked once to evaluate an evaluation with no data and the guard's parameters,
//! and an error that names one of them (`parameter `windows` must be at least 1, got 0`, as the SDK words it) is
//! a configuration error. Any other answer to that probe is the policy's business at run time.

use crate::config::{Config, ConfigError, Guard, PolicyRef};
use crate::decision::PolicyOutcome;
use crate::evaluation::{Evaluation, History, ParamValue, Revision, ThresholdRequest};
use crate::runtime::{Contract, Plugin, Runtime};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// The loaded policies of a configuration.
#[derive(Debug)]
pub struct PolicySet {
    runtime: Runtime,
    plugins: BTreeMap<String, Arc<Plugin>>,
}

impl PolicySet {
    /// Loads and checks every policy of every guard (see the module's documentation).
    pub fn load(config: &Config, runtime: Runtime) -> Result<Self, ConfigError> {
        let mut plugins: BTreeMap<String, Arc<Plugin>> = BTreeMap::new();
        let mut probed = HashSet::new();
        for (i, guard) in config.guards.iter().enumerate() {
            for (j, policy) in guard.policies.iter().enumerate() {
                let field = |name: &str| format!("guard[{i}].policies[{j}].{name}");
                let invalid = |field: String, message: String| ConfigError::Invalid {
                    path: config.path.clone(),
                    field,
                    message: format!("guard {:?}: {message}", guard.name),
                };
                let key = policy.source.to_string();
                let plugin = match plugins.get(&key) {
                    Some(plugin) => plugin.clone(),
                    None => {
                        let loaded = runtime.load(&policy.source).map_err(|e| invalid(field("use"), e.to_string()))?;
                        let loaded = Arc::new(loaded);
                        plugins.insert(key, loaded.clone());
                        loaded
                    }
                };
                check_params(&plugin, policy).map_err(|(name, m)| invalid(field(&format!("params.{name}")), m))?;
                // One probe per plugin and parameter set: fleets share both.
                if probed.insert((policy.source.to_string(), format!("{:?}", policy.params))) {
                    probe(&runtime, &plugin, guard, policy)
                        .map_err(|(name, m)| invalid(field(&format!("params.{name}")), m))?;
                }
            }
        }
        Ok(Self { runtime, plugins })
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Whether any of the guard's policies may ask for latency thresholds (contract 0.3.0 and later).
    pub fn may_count_slow_requests(&self, guard: &Guard) -> bool {
        guard.policies.iter().any(|p| {
            self.plugins.get(&p.source.to_string()).is_some_and(|plugin| plugin.contract() >= Contract::V0_3_0)
        })
    }

    /// The latency thresholds the guard's policies ask slow requests counted above (contract 0.3.0's
    /// `latency-thresholds`), with the guard's parameters and the known good's history. Blocking (see `Runtime`).
    pub fn latency_thresholds(&self, guard: &Guard, known_good: Option<&History>) -> Thresholds {
        let mut thresholds = Thresholds::default();
        for policy in &guard.policies {
            let key = policy.source.to_string();
            let Some(plugin) = self.plugins.get(&key) else { continue };
            let request = ThresholdRequest {
                guard: guard.name.clone(),
                platform: guard.platform(),
                known_good: known_good.cloned(),
                params: policy.params.clone(),
            };
            match self.runtime.latency_thresholds(plugin, &request) {
                Ok(asked) => thresholds.all.extend(asked),
                Err(error) => {
                    thresholds.failed.insert(key, error.to_string());
                }
            }
        }
        thresholds.all.sort_unstable();
        thresholds.all.dedup();
        thresholds
    }

    /// Asks each of the guard's policies, with the guard's parameters; a policy whose `latency-thresholds` failed
    /// this cycle (`failed`, by plugin) is not asked: its outcome is that failure. Blocking (see `Runtime`).
    pub fn evaluate(
        &self,
        guard: &Guard,
        evaluation: &Evaluation,
        failed: &BTreeMap<String, String>,
    ) -> Vec<PolicyOutcome> {
        guard
            .policies
            .iter()
            .map(|policy| {
                let key = policy.source.to_string();
                let outcome = match (self.plugins.get(&key), failed.get(&key)) {
                    (_, Some(error)) => Err(error.clone()),
                    (Some(plugin), None) => {
                        let mut input = evaluation.clone();
                        input.params = policy.params.clone();
                        self.runtime.evaluate(plugin, &input).map_err(|e| e.to_string())
                    }
                    (None, None) => Err(format!("plugin {key} was not loaded")),
                };
                PolicyOutcome { plugin: key, outcome }
            })
            .collect()
    }
}

/// What a guard's policies asked to be counted this cycle: every threshold (sorted, no repeats), and the policies
/// whose `latency-thresholds` failed, with the error (they are not evaluated this cycle).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    pub all: Vec<u32>,
    pub failed: BTreeMap<String, String>,
}

/// Every parameter the guard sets is declared by the policy, with a value of the declared type; errors are
/// `(parameter, message)`.
fn check_params(plugin: &Plugin, policy: &PolicyRef) -> Result<(), (String, String)> {
    let declared = &plugin.info().parameters;
    for (name, value) in &policy.params {
        let Some(spec) = declared.iter().find(|p| p.name == *name) else {
            let known: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
            let accepts = if known.is_empty() { "it accepts none".to_string() } else { known.join(", ") };
            return Err((name.clone(), format!("{} has no parameter {name:?}; it accepts: {accepts}", policy.source)));
        };
        let fits = match (&spec.default, value) {
            (ParamValue::Float(_), ParamValue::Float(_) | ParamValue::Integer(_)) => true,
            (ParamValue::Integer(_), ParamValue::Integer(_)) => true,
            (ParamValue::Integer(_), ParamValue::Float(v)) => v.fract() == 0.0,
            (ParamValue::Boolean(_), ParamValue::Boolean(_)) | (ParamValue::Text(_), ParamValue::Text(_)) => true,
            _ => false,
        };
        if !fits {
            let message = format!(
                "must be {} (the default is {}), got {} {}",
                describe_type(&spec.default),
                spec.default,
                value.type_name(),
                crate::text::truncate(&value.to_string(), 80)
            );
            return Err((name.clone(), message));
        }
    }
    Ok(())
}

fn describe_type(value: &ParamValue) -> &'static str {
    match value {
        ParamValue::Boolean(_) => "true or false",
        ParamValue::Integer(_) => "an integer",
        ParamValue::Float(_) => "a number",
        ParamValue::Text(_) => "text",
    }
}

/// Asks the policy to evaluate an evaluation with no data and the guard's parameters; an error naming one of the
/// parameters the guard sets (`parameter `NAME``) is returned as `(NAME, message)`.
fn probe(runtime: &Runtime, plugin: &Plugin, guard: &Guard, policy: &PolicyRef) -> Result<(), (String, String)> {
    if policy.params.is_empty() {
        return Ok(());
    }
    let evaluation = Evaluation {
        guard: guard.name.clone(),
        platform: guard.platform(),
        now: 0,
        deployed_at: None,
        windows: crate::evaluation::Window::ending_at(0, guard.window.as_millis() as i64, guard.windows),
        baseline: None,
        known_good: None,
        candidate: Revision { id: String::new(), traffic_share: 0.0, metrics: Vec::new() },
        params: policy.params.clone(),
    };
    let Err(error) = runtime.evaluate(plugin, &evaluation) else { return Ok(()) };
    let message = match &error.kind {
        crate::runtime::PluginErrorKind::Policy(message) => message,
        _ => return Ok(()),
    };
    match policy.params.keys().find(|name| message.contains(&format!("parameter `{name}`"))) {
        Some(name) => Err((name.clone(), format!("{} refuses it: {message}", policy.source))),
        None => Ok(()),
    }
}

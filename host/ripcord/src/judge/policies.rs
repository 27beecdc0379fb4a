//! The policies of a configuration: each plugin loaded once and shared by the guards that use it, and checked at
//! configuration time — before any cycle runs — so a guard that could never be judged is an error naming the
//! file, the guard, the field and the value, not an `inconclusive` on every cycle forever.
//!
//! Checks, in order: the plugin loads (the file exists, is a component, targets a supported contract, `describe`
//! answers within the deadline and the memory cap); every parameter the guard sets is one the policy declares
//! (`describe`), with a value of the declared type; and the policy accepts the values — it is asked once to
//! evaluate an evaluation with no data and the guard's parameters, and an error that names one of them
//! (`parameter `windows` must be at least 1, got 0`, as the SDK words it) is a configuration error. Any other
//! answer to that probe is the policy's business at run time.
//!
//! A problem belongs to the guard it was found for: that guard is broken (an error every cycle, with every problem
//! found), and every other guard is served — one team's bad upload never leaves the fleet unprotected. A broken
//! guard's policies are checked again on every cycle ([`PolicySet::retry`]), so a fixed upload heals it without a
//! restart; a plugin that failed to load is never kept (the compiled-code cache is keyed by the file's SHA-256, and
//! code is only kept for a component that compiled), so the fixed file is what is loaded.

use crate::config::{BrokenGuard, Config, ConfigError, Guard, PolicyRef, Problem};
use crate::judge::decision::PolicyOutcome;
use crate::model::evaluation::{Evaluation, History, ParamValue, Revision, ThresholdRequest};
use crate::plugin::runtime::{Contract, Plugin, Runtime};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

/// The loaded policies of a configuration.
#[derive(Debug)]
pub struct PolicySet {
    runtime: Runtime,
    /// The plugins that loaded, by source.
    plugins: RwLock<BTreeMap<String, Arc<Plugin>>>,
    /// Guards whose policies cannot be loaded or checked, by name, with every problem.
    broken: RwLock<BTreeMap<String, BrokenGuard>>,
    /// Plugin and parameter sets whose probe passed (fleets share both: one probe each).
    probed: Mutex<HashSet<(String, String)>>,
}

impl PolicySet {
    /// Loads and checks every policy of every guard (see the module's documentation). A guard with a problem is
    /// broken ([`PolicySet::broken`]); the others are ready.
    pub fn load(config: &Config, runtime: Runtime) -> Self {
        let set = Self {
            runtime,
            plugins: RwLock::new(BTreeMap::new()),
            broken: RwLock::new(BTreeMap::new()),
            probed: Mutex::new(HashSet::new()),
        };
        set.check(&config.path, config.guards.iter());
        set
    }

    /// [`PolicySet::load`] for what must refuse a configuration any guard of which cannot be served (a deployment
    /// package, the demo, a replay): every problem of every guard, the configuration's own broken guards too.
    pub fn load_strict(config: &Config, runtime: Runtime) -> Result<Self, ConfigError> {
        let set = Self::load(config, runtime);
        let mut problems: Vec<ConfigError> = Vec::new();
        for broken in config.broken.iter().chain(set.broken().iter()) {
            problems.extend(broken.problems.iter().cloned().map(ConfigError::Guard));
        }
        match ConfigError::all(problems) {
            None => Ok(set),
            Some(error) => Err(error),
        }
    }

    /// The guards whose policies cannot be loaded or checked, each with every problem.
    pub fn broken(&self) -> Vec<BrokenGuard> {
        self.broken.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Why `guard` cannot be judged, if its policies cannot be loaded or checked.
    pub fn broken_guard(&self, guard: &str) -> Option<BrokenGuard> {
        self.broken.read().unwrap_or_else(|p| p.into_inner()).get(guard).cloned()
    }

    /// Checks again the policies of those of `guards` that are broken: a plugin that failed to load is loaded
    /// again (once per call, whatever the number of guards using it), so a fixed upload heals its guards.
    /// Blocking: loading compiles (see `Runtime`).
    pub fn retry<'g>(&self, path: &Path, guards: impl IntoIterator<Item = &'g Guard>) {
        let broken = self.broken.read().unwrap_or_else(|p| p.into_inner());
        let again: Vec<&Guard> = guards.into_iter().filter(|g| broken.contains_key(&g.name)).collect();
        drop(broken);
        if !again.is_empty() {
            self.check(path, again.into_iter());
        }
    }

    /// Loads what `guards` need and checks their parameters, recording each guard as ready or broken.
    fn check<'g>(&self, path: &Path, guards: impl Iterator<Item = &'g Guard>) {
        // Plugins that failed to load in this pass: one attempt each, whatever the number of guards using them.
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        for guard in guards {
            let mut problems = Vec::new();
            for (j, policy) in guard.policies.iter().enumerate() {
                let problem = |field: &str, message: String| Problem {
                    path: path.into(),
                    guard: Some(guard.name.clone()),
                    field: format!("guard[{}].policies[{j}].{field}", guard.index),
                    message,
                };
                let key = policy.source.to_string();
                let loaded = self.plugins.read().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
                let plugin = match (loaded, failed.get(&key)) {
                    (Some(plugin), _) => plugin,
                    (None, Some(error)) => {
                        problems.push(problem("use", error.clone()));
                        continue;
                    }
                    (None, None) => match self.runtime.load(&policy.source) {
                        Ok(plugin) => {
                            let plugin = Arc::new(plugin);
                            self.plugins.write().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), plugin.clone());
                            plugin
                        }
                        Err(error) => {
                            let error = error.to_string();
                            failed.insert(key, error.clone());
                            problems.push(problem("use", error));
                            continue;
                        }
                    },
                };
                if let Err((name, message)) = check_params(&plugin, policy) {
                    problems.push(problem(&format!("params.{name}"), message));
                    continue;
                }
                let probe_key = (key, format!("{:?}", policy.params));
                if self.probed.lock().unwrap_or_else(|p| p.into_inner()).contains(&probe_key) {
                    continue;
                }
                match probe(&self.runtime, &plugin, guard, policy) {
                    Ok(()) => {
                        self.probed.lock().unwrap_or_else(|p| p.into_inner()).insert(probe_key);
                    }
                    Err((name, message)) => problems.push(problem(&format!("params.{name}"), message)),
                }
            }
            let mut broken = self.broken.write().unwrap_or_else(|p| p.into_inner());
            if problems.is_empty() {
                if broken.remove(&guard.name).is_some() {
                    tracing::info!(guard = %guard.name, "the guard's policies load now; it is served again");
                }
            } else {
                broken.insert(guard.name.clone(), BrokenGuard { name: guard.name.clone(), problems });
            }
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Whether any of the guard's policies may ask for latency thresholds (contract 0.3.0 and later).
    pub fn may_count_slow_requests(&self, guard: &Guard) -> bool {
        let plugins = self.plugins.read().unwrap_or_else(|p| p.into_inner());
        guard
            .policies
            .iter()
            .any(|p| plugins.get(&p.source.to_string()).is_some_and(|plugin| plugin.contract() >= Contract::V0_3_0))
    }

    /// The latency thresholds the guard's policies ask slow requests counted above (contract 0.3.0's
    /// `latency-thresholds`), with the guard's parameters and the known good's history. Blocking (see `Runtime`).
    pub fn latency_thresholds(&self, guard: &Guard, known_good: Option<&History>) -> Thresholds {
        let mut thresholds = Thresholds::default();
        for policy in &guard.policies {
            let key = policy.source.to_string();
            let Some(plugin) = self.plugin(&key) else { continue };
            let request = ThresholdRequest {
                guard: guard.name.clone(),
                platform: guard.platform(),
                known_good: known_good.cloned(),
                params: policy.params.clone(),
            };
            match self.runtime.latency_thresholds(&plugin, &request) {
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
                let outcome = match (self.plugin(&key), failed.get(&key)) {
                    (_, Some(error)) => Err(error.clone()),
                    (Some(plugin), None) => {
                        let mut input = evaluation.clone();
                        input.params = policy.params.clone();
                        self.runtime.evaluate(&plugin, &input).map_err(|e| e.to_string())
                    }
                    (None, None) => Err(format!("plugin {key} was not loaded")),
                };
                PolicyOutcome { plugin: key, outcome }
            })
            .collect()
    }
}

impl PolicySet {
    /// The loaded plugin of `source`.
    fn plugin(&self, source: &str) -> Option<Arc<Plugin>> {
        self.plugins.read().unwrap_or_else(|p| p.into_inner()).get(source).cloned()
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
                crate::model::text::truncate(&value.to_string(), 80)
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
        windows: crate::model::evaluation::Window::ending_at(0, guard.window.as_millis() as i64, guard.windows),
        baseline: None,
        known_good: None,
        candidate: Revision { id: String::new(), traffic_share: 0.0, metrics: Vec::new() },
        params: policy.params.clone(),
    };
    let Err(error) = runtime.evaluate(plugin, &evaluation) else { return Ok(()) };
    let message = match &error.kind {
        crate::plugin::runtime::PluginErrorKind::Policy(message) => message,
        _ => return Ok(()),
    };
    match policy.params.keys().find(|name| message.contains(&format!("parameter `{name}`"))) {
        Some(name) => Err((name.clone(), format!("{} refuses it: {message}", policy.source))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::runtime::{CacheDir, RuntimeSettings};

    /// Guard `a` on a built-in, guard `b` on the file `policy.wasm` of `dir`.
    fn config(dir: &Path) -> Config {
        let guard = |name: &str, policy: &str| {
            format!(
                "[[guard]]\nname = \"{name}\"\nplatform = \"aws-lambda\"\nfunction = \"{name}\"\nalias = \"live\"\npolicies = [{{ use = \"{policy}\" }}]\n"
            )
        };
        let text = guard("a", "builtin:error-rate") + &guard("b", "policy.wasm");
        Config::parse(&text, &dir.join("guards.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_broken_policy_breaks_only_its_guard_and_a_fixed_file_heals_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("policy.wasm");
        std::fs::write(&file, b"not a component").unwrap_or_else(|e| panic!("{e}"));
        let config = config(dir.path());
        let runtime = || {
            let settings = RuntimeSettings { cache: CacheDir::Disabled, ..Default::default() };
            Runtime::new(settings).unwrap_or_else(|e| panic!("{e}"))
        };
        let set = PolicySet::load(&config, runtime());
        let broken = set.broken();
        assert_eq!(broken.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["b"]);
        let problem = &broken[0].problems[0];
        assert_eq!((problem.guard.as_deref(), problem.field.as_str()), (Some("b"), "guard[1].policies[0].use"));
        assert!(problem.message.contains("not WebAssembly"), "{problem}");
        assert!(set.broken_guard("a").is_none(), "the other guard is served");
        // Still broken: checked again, the same problem.
        set.retry(&config.path, &config.guards);
        assert!(set.broken_guard("b").is_some());
        // The upload is fixed in place: the next check loads it.
        let good = crate::plugin::builtins::find("error-rate").unwrap_or_else(|| panic!("no built-in"));
        std::fs::write(&file, good).unwrap_or_else(|e| panic!("{e}"));
        set.retry(&config.path, &config.guards);
        assert!(set.broken().is_empty(), "{:?}", set.broken());
        assert!(PolicySet::load_strict(&config, runtime()).is_ok());
    }
}

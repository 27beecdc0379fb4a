//! guards.toml errors, as golden files: every bad configuration in `golden/config/NAME.toml` is rejected with
//! exactly the message in `NAME.err` — every problem it has, one per line — naming the file, the field and the
//! value; every configuration in `golden/policies/` is rejected the same way when its policies are loaded and
//! checked, before any cycle. Strictly, as `validate` and `precompile` do: a guard-level problem, which the
//! long-running modes isolate to its guard, is still a problem of the configuration. `RIPCORD_BLESS=1` rewrites
//! them.

use ripcord::config::{Config, ConfigError};
use ripcord::judge::policies::PolicySet;
use ripcord::plugin::runtime::{CacheDir, Runtime, RuntimeSettings};
use std::path::Path;

#[test]
fn bad_configurations_are_rejected_with_file_field_and_value() {
    golden("config", |text, name, _| {
        let (config, mut problems) = Config::parse_all(text, Path::new(name)).map_err(|e| e.to_string())?;
        problems.extend(config.broken.into_iter().flat_map(|b| b.problems).map(ConfigError::Guard));
        ConfigError::all(problems).map_or(Ok(()), |e| Err(e.to_string()))
    });
}

#[test]
fn bad_policies_and_parameters_are_rejected_at_load_with_file_guard_field_and_value() {
    let runtime = || {
        let cache = CacheDir::At(Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden-cache"));
        Runtime::new(RuntimeSettings { cache, ..RuntimeSettings::default() }).unwrap_or_else(|e| panic!("{e}"))
    };
    golden("policies", |text, name, dir| {
        // Policy paths are relative to the configuration's folder; messages are shown relative to it.
        let config = Config::parse(text, &dir.join(name)).map_err(|e| e.to_string())?;
        let prefix = format!("{}/", dir.display());
        PolicySet::load_strict(&config, runtime()).map(drop).map_err(|e| e.to_string().replace(&prefix, ""))
    });
}

/// Checks every `golden/KIND/NAME.toml` against `NAME.err` with `check(text, "NAME.toml", dir)`.
fn golden(kind: &str, check: impl Fn(&str, &str, &Path) -> Result<(), String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/golden").join(kind);
    let dir = dir.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "at least 5 golden cases, found {}", cases.len());
    let bless = std::env::var_os("RIPCORD_BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases {
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&case).unwrap_or_else(|e| panic!("{e}"));
        let got = match check(&text, &name, &dir) {
            Ok(()) => format!("{name}: accepted, but it should have been rejected"),
            Err(error) => error,
        };
        assert!(got.starts_with(&format!("{name}: ")), "the error must name the file: {got}");
        let expected_path = case.with_extension("err");
        if bless {
            std::fs::write(&expected_path, format!("{got}\n")).unwrap_or_else(|e| panic!("{e}"));
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected.trim_end() != got {
            failures.push(format!("{name}\n  expected: {}\n  got:      {got}", expected.trim_end()));
        }
    }
    assert!(failures.is_empty(), "golden mismatches (RIPCORD_BLESS=1 to accept):\n{}", failures.join("\n"));
}

#[test]
fn a_good_configuration_resolves_defaults_and_overrides() {
    let text = r#"
[defaults]
window = "2m"
cooldown = "1h"
prewarm = "standby"

[[guard]]
name = "checkout-api"
platform = "aws-lambda"
function = "checkout"
alias = "live"
region = "eu-west-1"
windows = 6
mode = "dry-run"
policies = [
  { use = "builtin:error-rate", params = { max_rate = 0.01, windows = 2 } },
  { use = "policies/safety.wasm" },
]
metrics.safety_hits = { namespace = "Checkout", name = "SafetyFilterHits", dimensions = { Version = "{version}" } }

[[guard]]
name = "search"
platform = "cloud-run"
project = "acme-prod"
location = "europe-west1"
service = "search"
policies = [{ use = "builtin:latency" }]
"#;
    let config = Config::parse(text, Path::new("/etc/ripcord/guards.toml")).unwrap_or_else(|e| panic!("{e}"));
    let checkout = &config.guards[0];
    assert_eq!(checkout.window, std::time::Duration::from_secs(120));
    assert_eq!(checkout.windows, 6);
    assert_eq!(checkout.cooldown, std::time::Duration::from_secs(3600));
    assert_eq!(checkout.mode, ripcord::config::Mode::DryRun);
    assert_eq!(checkout.prewarm, ripcord::config::PrewarmMode::Standby);
    assert_eq!(checkout.policies[1].source.to_string(), "/etc/ripcord/policies/safety.wasm");
    assert_eq!(checkout.metrics["safety_hits"].stat, "Sum");
    assert_eq!(config.guards[1].mode, ripcord::config::Mode::Enforce);
    assert_eq!(config.audit_log, Path::new("/etc/ripcord/ripcord-audit.jsonl"));
}

#[test]
fn the_shipped_example_configuration_is_valid() {
    let path = crate::support::repo_root().join("examples/guards.toml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.guards.len(), 2);
    assert_eq!(config.guards[1].mode, ripcord::config::Mode::DryRun);
}

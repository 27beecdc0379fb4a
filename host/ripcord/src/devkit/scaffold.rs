//! `ripcord plugin new NAME --lang LANG`: a ready policy project — the WIT it targets, the build recipe, the
//! reference policy (safety + errors) in that language, and fixtures with their expected verdicts — so that
//! `ripcord plugin build && ripcord plugin test` pass right away.

use super::project::{Lang, MANIFEST, Manifest};
use super::toolchain::{COMPONENTIZE_PY, COMPONENTIZE_QJS_VERSION};
use super::{DevkitError, io};
use crate::plugin::runtime::Contract;
use std::path::{Path, PathBuf};

/// What a scaffold starts from: the contract it targets and a sample policy written against it, tested in this
/// repository in every language it is offered in, with its fixtures.
struct Sample {
    contract: Contract,
    wit: &'static str,
    /// The name the sample gives itself (quoted, as in its source); the scaffold renames it.
    reference_name: &'static str,
    /// What the sample does, for the project's README.
    summary: &'static str,
    fixtures: &'static [(&'static str, &'static str)],
    rust: &'static str,
    /// The WIT path the Rust sample uses in this repository; the scaffold points it at `wit`.
    rust_wit_path: &'static str,
    js: &'static str,
    python: &'static str,
    c: &'static str,
}

/// Contract 0.1.0: the reference *safety + errors* policy, in all four languages.
const SAFETY_ERRORS: Sample = Sample {
    contract: Contract::V0_1_0,
    wit: include_str!("../../../../wit/since_v0.1.0/policy.wit"),
    reference_name: "\"safety-errors\"",
    summary: "rollback when the candidate's error rate or safety-filter hits per request exceed their limits in \
              `windows` consecutive windows",
    fixtures: &[
        ("healthy.json", include_str!("../../../../plugins/examples/safety-errors/fixtures/healthy.json")),
        ("error-spike.json", include_str!("../../../../plugins/examples/safety-errors/fixtures/error-spike.json")),
        ("safety-spike.json", include_str!("../../../../plugins/examples/safety-errors/fixtures/safety-spike.json")),
        (
            "one-bad-window.json",
            include_str!("../../../../plugins/examples/safety-errors/fixtures/one-bad-window.json"),
        ),
        ("low-traffic.json", include_str!("../../../../plugins/examples/safety-errors/fixtures/low-traffic.json")),
        (
            "missing-safety-metric.json",
            include_str!("../../../../plugins/examples/safety-errors/fixtures/missing-safety-metric.json"),
        ),
    ],
    rust: include_str!("../../../../plugins/examples/safety-errors/rust/src/lib.rs"),
    rust_wit_path: "\"../../../../wit/since_v0.1.0\"",
    js: include_str!("../../../../plugins/examples/safety-errors/js/policy.js"),
    python: include_str!("../../../../plugins/examples/safety-errors/python/app.py"),
    c: include_str!("../../../../plugins/examples/safety-errors/c/policy.c"),
};

/// Contract 0.2.0: *sequential errors*, on the host's anytime-valid sequential tests, in all four languages.
const SEQUENTIAL_ERRORS: Sample = Sample {
    contract: Contract::V0_2_0,
    wit: include_str!("../../../../wit/since_v0.2.0/policy.wit"),
    reference_name: "\"sequential-errors\"",
    summary: "rollback when the candidate's error rate is above `max_rate` and `ratio` x the baseline's, each by \
              the host's anytime-valid sequential tests at `alpha` (looking every minute does not inflate false \
              rollbacks)",
    fixtures: &[
        ("healthy.json", include_str!("../../../../plugins/examples/sequential-errors/fixtures/healthy.json")),
        ("error-spike.json", include_str!("../../../../plugins/examples/sequential-errors/fixtures/error-spike.json")),
    ],
    rust: include_str!("../../../../plugins/examples/sequential-errors/rust/src/lib.rs"),
    rust_wit_path: "\"../../../../wit/since_v0.2.0\"",
    js: include_str!("../../../../plugins/examples/sequential-errors/js/policy.js"),
    python: include_str!("../../../../plugins/examples/sequential-errors/python/app.py"),
    c: include_str!("../../../../plugins/examples/sequential-errors/c/policy.c"),
};

/// Contract 0.3.0: *slow requests*, on per-request latency counts and the host's change detectors, in all four
/// languages.
const SLOW_REQUESTS: Sample = Sample {
    contract: Contract::V0_3_0,
    wit: include_str!("../../../../wit/since_v0.3.0/policy.wit"),
    reference_name: "\"slow-requests\"",
    summary: "asks the host to count the requests slower than `factor` x the known good's p95 (`latency-thresholds`), \
              and rolls back when more than 5% of the candidate's requests have become slower than that and, during a \
              split, more than `ratio` x the baseline's share are, by the host's change detectors at `alpha` per day",
    fixtures: &[
        ("healthy.json", include_str!("../../../../plugins/examples/slow-requests/fixtures/healthy.json")),
        ("late-slowdown.json", include_str!("../../../../plugins/examples/slow-requests/fixtures/late-slowdown.json")),
    ],
    rust: include_str!("../../../../plugins/examples/slow-requests/rust/src/lib.rs"),
    rust_wit_path: "\"../../../../wit/since_v0.3.0\"",
    js: include_str!("../../../../plugins/examples/slow-requests/js/policy.js"),
    python: include_str!("../../../../plugins/examples/slow-requests/python/app.py"),
    c: include_str!("../../../../plugins/examples/slow-requests/c/policy.c"),
};

/// Creates project `name` in `parent`, a policy in `lang` against `contract`, and returns its folder.
pub fn scaffold(name: &str, lang: Lang, contract: Contract, parent: &Path) -> Result<PathBuf, DevkitError> {
    let sample = match contract {
        Contract::V0_1_0 => &SAFETY_ERRORS,
        Contract::V0_2_0 => &SEQUENTIAL_ERRORS,
        Contract::V0_3_0 => &SLOW_REQUESTS,
    };
    let source = match lang {
        Lang::Rust => sample.rust,
        Lang::Js => sample.js,
        Lang::Python => sample.python,
        Lang::C => sample.c,
    };
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        return Err(DevkitError::Invalid(format!(
            "invalid plugin name {name:?}: use lowercase letters, digits and '-', starting with a letter"
        )));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(DevkitError::Invalid(format!("{} already exists", dir.display())));
    }
    let source = source.replacen(sample.reference_name, &format!("{name:?}"), 1);
    let mut files: Vec<(String, String)> = vec![("wit/policy.wit".into(), sample.wit.into())];
    files.extend(sample.fixtures.iter().map(|(file, text)| (format!("fixtures/{file}"), text.to_string())));
    let manifest =
        Manifest { name: name.into(), lang, output: None, wit: None, fixtures: None, source: None, js_engine: None };
    let manifest = toml::to_string(&manifest).map_err(|e| DevkitError::Invalid(e.to_string()))?;
    files.push((
        MANIFEST.into(),
        format!("# A ripcord policy project: `ripcord plugin build`, then `ripcord plugin test`.\n{manifest}"),
    ));
    files.push(("README.md".into(), readme(name, lang, sample)));
    match lang {
        Lang::Rust => {
            files.push(("Cargo.toml".into(), cargo_toml(name)));
            files.push(("src/lib.rs".into(), source.replace(sample.rust_wit_path, "\"wit\"")));
            files.push((".gitignore".into(), "/target\n*.wasm\n".into()));
        }
        Lang::Js => {
            files.push(("policy.js".into(), source));
            files.push(("package.json".into(), package_json(name)));
            files.push((".gitignore".into(), "node_modules/\n*.wasm\n".into()));
        }
        Lang::Python => {
            files.push(("app.py".into(), source));
            files.push(("requirements.txt".into(), format!("{COMPONENTIZE_PY}\n")));
            files.push((".gitignore".into(), ".venv/\n__pycache__/\n*.wasm\n".into()));
        }
        Lang::C => {
            files.push(("policy.c".into(), source));
            files.push((".gitignore".into(), "gen/\n*.wasm\n".into()));
        }
    }
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(dir)
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
wit-bindgen = {{ version = "0.63.0", default-features = false, features = ["macros", "realloc"] }}

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = true

# A policy builds on its own, even inside another Cargo workspace.
[workspace]
"#
    )
}

fn package_json(name: &str) -> String {
    format!(
        r#"{{
  "name": "{name}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "scripts": {{
    "build": "ripcord plugin build",
    "test": "ripcord plugin test"
  }},
  "devDependencies": {{
    "componentize-qjs": "{COMPONENTIZE_QJS_VERSION}"
  }}
}}
"#
    )
}

fn readme(name: &str, lang: Lang, sample: &Sample) -> String {
    let setup = match lang {
        Lang::Rust => "rustup target add wasm32-wasip2",
        Lang::Js => {
            "# needs Node.js and npm: the first build runs `npm install` (componentize-qjs, pinned in package.json)"
        }
        Lang::Python => "# needs Python 3: the first build makes .venv and installs requirements.txt (componentize-py)",
        Lang::C => "apt install clang lld wasi-libc libclang-rt-dev-wasm32",
    };
    format!(
        r#"# {name}

A ripcord rollback policy in {lang}: {summary}. Change it to your criteria.

```sh
{setup}
ripcord plugin build           # builds {name}.wasm
ripcord plugin test            # runs fixtures/*.json and compares each verdict with its "expect"
ripcord plugin inspect {name}.wasm
```

- `wit/policy.wit`: the contract (`{package}`) this policy implements.
- `fixtures/`: evaluations in ripcord's JSON format, each with the verdict it must give (`"expect"`).
- `{manifest}`: name, language and where the component goes.
"#,
        lang = lang.as_str(),
        manifest = MANIFEST,
        summary = sample.summary,
        package = sample.contract.package(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_projects_never_overwritten() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for bad in ["", "Bad", "9lives", "a b", "../x"] {
            let error =
                scaffold(bad, Lang::C, Contract::V0_1_0, dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("invalid plugin name"), "{bad:?}: {error}");
        }
        let created = scaffold("ok-1", Lang::Python, Contract::V0_1_0, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let app = std::fs::read_to_string(created.join("app.py")).unwrap_or_default();
        assert!(app.contains("\"ok-1\"") && !app.contains("\"safety-errors\""), "not renamed");
        let again = scaffold("ok-1", Lang::Python, Contract::V0_1_0, dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(again.contains("already exists"), "{again}");
    }

    #[test]
    fn a_0_2_0_project_carries_the_0_2_0_contract_and_its_sample() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let created = scaffold("seq", Lang::Rust, Contract::V0_2_0, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let wit = std::fs::read_to_string(created.join("wit/policy.wit")).unwrap_or_default();
        assert!(wit.contains("package ripcord:policy@0.2.0;"), "{wit}");
        let lib = std::fs::read_to_string(created.join("src/lib.rs")).unwrap_or_default();
        assert!(lib.contains("path: \"wit\"") && lib.contains("\"seq\"") && lib.contains("error_limit_test"), "{lib}");
        let readme = std::fs::read_to_string(created.join("README.md")).unwrap_or_default();
        assert!(readme.contains("ripcord:policy@0.2.0"), "{readme}");
        let c = scaffold("seq-c", Lang::C, Contract::V0_2_0, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let source = std::fs::read_to_string(c.join("policy.c")).unwrap_or_default();
        assert!(source.contains("\"seq-c\"") && source.contains("ripcord_policy_stats_error_limit_test"), "{source}");
    }
}

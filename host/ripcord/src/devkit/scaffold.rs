//! `ripcord plugin new NAME --lang LANG`: a ready policy project — the WIT it targets, the build recipe, the
//! reference policy (safety + errors) in that language, and fixtures with their expected verdicts — so that
//! `ripcord plugin build && ripcord plugin test` pass right away.

use super::project::{Lang, MANIFEST, Manifest};
use super::toolchain::{COMPONENTIZE_PY, COMPONENTIZE_QJS_VERSION};
use super::{DevkitError, io};
use std::path::{Path, PathBuf};

const WIT: &str = include_str!("../../../../wit/since_v0.1.0/policy.wit");
/// The name every reference implementation gives itself; the scaffold renames it.
const REFERENCE_NAME: &str = "\"safety-errors\"";
const FIXTURES: [(&str, &str); 6] = [
    ("healthy.json", include_str!("../../../../plugins/examples/safety-errors/fixtures/healthy.json")),
    ("error-spike.json", include_str!("../../../../plugins/examples/safety-errors/fixtures/error-spike.json")),
    ("safety-spike.json", include_str!("../../../../plugins/examples/safety-errors/fixtures/safety-spike.json")),
    ("one-bad-window.json", include_str!("../../../../plugins/examples/safety-errors/fixtures/one-bad-window.json")),
    ("low-traffic.json", include_str!("../../../../plugins/examples/safety-errors/fixtures/low-traffic.json")),
    (
        "missing-safety-metric.json",
        include_str!("../../../../plugins/examples/safety-errors/fixtures/missing-safety-metric.json"),
    ),
];
const RUST: &str = include_str!("../../../../plugins/examples/safety-errors/rust/src/lib.rs");
const JS: &str = include_str!("../../../../plugins/examples/safety-errors/js/policy.js");
const PYTHON: &str = include_str!("../../../../plugins/examples/safety-errors/python/app.py");
const C: &str = include_str!("../../../../plugins/examples/safety-errors/c/policy.c");

/// Creates project `name` in `parent` and returns its folder.
pub fn scaffold(name: &str, lang: Lang, parent: &Path) -> Result<PathBuf, DevkitError> {
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
    let renamed = |source: &str| source.replacen(REFERENCE_NAME, &format!("{name:?}"), 1);
    let mut files: Vec<(String, String)> = vec![("wit/policy.wit".into(), WIT.into())];
    files.extend(FIXTURES.iter().map(|(file, text)| (format!("fixtures/{file}"), text.to_string())));
    let manifest =
        Manifest { name: name.into(), lang, output: None, wit: None, fixtures: None, source: None, js_engine: None };
    let manifest = toml::to_string(&manifest).map_err(|e| DevkitError::Invalid(e.to_string()))?;
    files.push((
        MANIFEST.into(),
        format!("# A ripcord policy project: `ripcord plugin build`, then `ripcord plugin test`.\n{manifest}"),
    ));
    files.push(("README.md".into(), readme(name, lang)));
    match lang {
        Lang::Rust => {
            files.push(("Cargo.toml".into(), cargo_toml(name)));
            let source = renamed(RUST).replace("\"../../../../wit/since_v0.1.0\"", "\"wit\"");
            files.push(("src/lib.rs".into(), source));
            files.push((".gitignore".into(), "/target\n*.wasm\n".into()));
        }
        Lang::Js => {
            files.push(("policy.js".into(), renamed(JS)));
            files.push(("package.json".into(), package_json(name)));
            files.push((".gitignore".into(), "node_modules/\n*.wasm\n".into()));
        }
        Lang::Python => {
            files.push(("app.py".into(), renamed(PYTHON)));
            files.push(("requirements.txt".into(), format!("{COMPONENTIZE_PY}\n")));
            files.push((".gitignore".into(), ".venv/\n__pycache__/\n*.wasm\n".into()));
        }
        Lang::C => {
            files.push(("policy.c".into(), renamed(C)));
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

fn readme(name: &str, lang: Lang) -> String {
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

A ripcord rollback policy in {lang}: rollback when the candidate's error rate or safety-filter hits per request
exceed their limits in `windows` consecutive windows. Change it to your criteria.

```sh
{setup}
ripcord plugin build           # builds {name}.wasm
ripcord plugin test            # runs fixtures/*.json and compares each verdict with its "expect"
ripcord plugin inspect {name}.wasm
```

- `wit/policy.wit`: the contract (`ripcord:policy@0.1.0`) this policy implements.
- `fixtures/`: evaluations in ripcord's JSON format, each with the verdict it must give (`"expect"`).
- `{manifest}`: name, language and where the component goes.
"#,
        lang = lang.as_str(),
        manifest = MANIFEST,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_projects_never_overwritten() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for bad in ["", "Bad", "9lives", "a b", "../x"] {
            let error = scaffold(bad, Lang::C, dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("invalid plugin name"), "{bad:?}: {error}");
        }
        let created = scaffold("ok-1", Lang::Python, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let app = std::fs::read_to_string(created.join("app.py")).unwrap_or_default();
        assert!(app.contains("\"ok-1\"") && !app.contains("\"safety-errors\""), "not renamed");
        let again = scaffold("ok-1", Lang::Python, dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(again.contains("already exists"), "{again}");
    }
}

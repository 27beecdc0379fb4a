//! The manual's configuration is configuration ripcord accepts: every TOML block of the book (`docs/`) and the README
//! is loaded the way its kind is loaded — a `guards.toml` (whole, or a table of one, completed with a guard) by
//! `ripcord validate`, a tokens file through `[server] tokens_file`, any other file (`Cargo.toml`) as TOML — so a
//! renamed key, a removed option or a wrong value in the docs fails the suite. The command lines are checked against
//! the CLI's parser by the binary's own tests (`cli/documented.rs`).

use crate::support::{repo_root, ripcord, stderr, stdout, temp_dir};
use std::path::{Path, PathBuf};

/// README.md and every page of the book.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut out = vec![repo_root().join("README.md")];
    walk(&repo_root().join("docs"), &mut out);
    out.sort();
    out
}

/// Every ```toml block: (page, line of its first line, text).
fn toml_blocks() -> Vec<(PathBuf, usize, String)> {
    blocks("toml")
}

/// Every block fenced as ```LANG: (page, line of its first line, text).
fn blocks(lang: &str) -> Vec<(PathBuf, usize, String)> {
    let mut out = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        let mut open: Option<(usize, String)> = None;
        for (n, line) in text.lines().enumerate() {
            let fence = line.trim_start().strip_prefix("```");
            match (fence, open.take()) {
                (Some(_), Some((first, body))) => out.push((page.clone(), first, body)),
                (Some(info), None) if info.trim() == lang => open = Some((n + 2, String::new())),
                (Some(_), None) => {}
                (None, Some((first, mut body))) => {
                    body.push_str(line);
                    body.push('\n');
                    open = Some((first, body));
                }
                (None, None) => {}
            }
        }
    }
    out
}

/// A guard the table fragments are completed with.
const A_GUARD: &str = r#"
[[guard]]
name = "documented"
platform = "aws-lambda"
function = "checkout"
alias = "live"
policies = [{ use = "builtin:error-rate" }]
"#;

/// A tokens file for the fragments that name one (`[server] tokens_file = "tokens.toml"`).
const A_TOKENS: &str = "[[token]]\nname = \"documented\"\nrole = \"viewer\"\nsha256 = \"39be0ef9abd5084aa21a2102f81816bebe4d64a50f37790feebea011b644f844\"\n";

/// Runs `ripcord validate --json` on `guards` (and `files` beside it); the problems it lists.
fn validate(guards: &str, files: &[(&str, &str)]) -> Vec<String> {
    let dir = temp_dir();
    std::fs::write(dir.path().join("guards.toml"), guards).unwrap_or_else(|e| panic!("{e}"));
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    let config = dir.path().join("guards.toml");
    let output = ripcord(&["validate", "--json", "--config", &config.to_string_lossy()], &dir.path().join("cache"));
    let answer: serde_json::Value = serde_json::from_str(stdout(&output).trim())
        .unwrap_or_else(|e| panic!("validate's answer is not JSON ({e}): {}{}", stdout(&output), stderr(&output)));
    let problems = answer["problems"].as_array().cloned().unwrap_or_default();
    problems.iter().map(|p| format!("{}: {}", p["field"], p["message"])).collect()
}

/// The policy files a configuration names that are not built in (`policies/safety.wasm`): an example's own plugin.
fn own_policies(text: &str) -> Vec<String> {
    text.split("use = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|u| !u.starts_with("builtin:"))
        .map(String::from)
        .collect()
}

#[test]
fn every_configuration_block_in_the_manual_loads() {
    let blocks = toml_blocks();
    assert!(blocks.len() >= 5, "the manual shows only {} TOML blocks; did the pages move?", blocks.len());
    let mut failures = Vec::new();
    let mut guards_files = 0;
    for (page, line, text) in &blocks {
        let at = format!("{}:{line}", page.strip_prefix(repo_root()).unwrap_or(page).display());
        let problems = if text.contains("[[token]]") || text.contains("[oidc]") {
            // A tokens file, named by `[server] tokens_file`: validate reads it as `serve` would.
            let guards = format!("[server]\ntokens_file = \"tokens.toml\"\n{A_GUARD}");
            validate(&guards, &[("tokens.toml", text), ("jwks.json", r#"{"keys": []}"#)])
        } else if text.lines().next().is_some_and(|l| l.starts_with("# ") && !l.contains("guards.toml")) {
            // Another tool's file (`# Cargo.toml`): well-formed TOML.
            text.parse::<toml::Table>().err().map(|e| e.to_string()).into_iter().collect()
        } else {
            guards_files += 1;
            let guards = if text.contains("[[guard]]") { text.clone() } else { format!("{text}{A_GUARD}") };
            // The example's own policies are not in the repository: a policy missing is the only problem allowed.
            let own = own_policies(&guards);
            let problems = validate(&guards, &[("tokens.toml", A_TOKENS)]);
            problems
                .into_iter()
                .filter(|p| !(p.contains(".use") && own.iter().any(|o| p.contains(o.as_str()))))
                .collect()
        };
        failures.extend(problems.into_iter().map(|p| format!("{at}: {p}")));
    }
    assert!(guards_files >= 3, "only {guards_files} guards.toml blocks were checked");
    assert!(failures.is_empty(), "configuration in the manual that ripcord refuses:\n{}", failures.join("\n"));
}

/// The check above can fail: a misspelt key in a documented block is a problem `validate` lists.
#[test]
fn a_misspelt_key_in_a_documented_block_is_found() {
    let problems = validate(&format!("[defaults]\nintervall = \"1m\"\n{A_GUARD}"), &[]);
    assert!(problems.iter().any(|p| p.contains("intervall")), "{problems:?}");
}

/// The evaluation JSON format's examples are evaluations the fixture loader (`plugin test --input`) reads.
#[test]
fn every_evaluation_shown_in_the_format_reference_loads() {
    let page = repo_root().join("docs/reference/evaluation-format.md");
    let shown: Vec<_> = blocks("json").into_iter().filter(|(p, _, _)| *p == page).collect();
    assert!(!shown.is_empty(), "{} shows no evaluation", page.display());
    for (_, line, text) in shown {
        if let Err(e) = ripcord::model::fixture::parse(&text, &page) {
            panic!("{}:{line}: the example does not load: {e}", page.display());
        }
    }
}

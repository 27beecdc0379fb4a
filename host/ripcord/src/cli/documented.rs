//! The manual cannot drift from the CLI: every `ripcord …` command line in a shell block of the book (`docs/`) or
//! the README parses with the real argument parser, every command of the CLI has a row in the book's command table,
//! and every `--flag` that table names exists on its command. Test-only; the configuration blocks are checked by
//! the end-to-end suite (`tests/e2e/book.rs`), which can load them.

use super::Cli;
use clap::{CommandFactory, Parser};
use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

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
    let mut out = vec![repository().join("README.md")];
    walk(&repository().join("docs"), &mut out);
    out.sort();
    out
}

/// The fenced blocks of a markdown text: (info string, first line number, body lines).
fn blocks(text: &str) -> Vec<(String, usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, Vec<String>)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match open.take() {
                Some(block) => out.push(block),
                None => open = Some((info.trim().to_string(), n + 2, Vec::new())),
            }
        } else if let Some((_, _, body)) = open.as_mut() {
            body.push(line.to_string());
        }
    }
    out
}

/// Splits a shell line into words, honouring quotes; stops at a comment or at what ends a simple command.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
            }
            '#' if !in_word => break,
            '|' | '&' | ';' | '>' | '<' => break,
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The arguments after the program, when the words run ripcord (`ripcord`, a path to it, or `cargo run … --`).
fn ripcord_arguments(words: &[String]) -> Option<Vec<String>> {
    let words: Vec<&String> = words.iter().skip_while(|w| w.contains('=') && !w.starts_with('-')).collect();
    let first = words.first()?;
    if first.as_str() == "ripcord" || first.ends_with("/ripcord") {
        return Some(words[1..].iter().map(|w| w.to_string()).collect());
    }
    if first.as_str() == "cargo" && words.get(1).is_some_and(|w| w.as_str() == "run") {
        let dash = words.iter().position(|w| w.as_str() == "--")?;
        return Some(words[dash + 1..].iter().map(|w| w.to_string()).collect());
    }
    None
}

/// Every command line of a shell block: (page, line, arguments). Continuations (`\`) are joined; a `$ ` prompt is
/// dropped; commands after `&&` count too.
fn command_lines() -> Vec<(PathBuf, usize, Vec<String>)> {
    let mut out = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        for (info, first, body) in blocks(&text) {
            if !matches!(info.as_str(), "sh" | "bash" | "console" | "shell") {
                continue;
            }
            let mut joined: Vec<(usize, String)> = Vec::new();
            let mut pending: Option<(usize, String)> = None;
            for (i, line) in body.iter().enumerate() {
                let (n, mut text) = pending.take().unwrap_or((first + i, String::new()));
                text.push_str(line.trim_end().trim_end_matches('\\'));
                text.push(' ');
                if line.trim_end().ends_with('\\') {
                    pending = Some((n, text));
                } else {
                    joined.push((n, text));
                }
            }
            joined.extend(pending);
            for (n, line) in joined {
                let line = line.trim_start().trim_start_matches("$ ");
                for part in line.split("&&") {
                    if let Some(arguments) = ripcord_arguments(&words(part)) {
                        out.push((page.clone(), n, arguments));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_command_line_the_manual_shows_parses() {
    let lines = command_lines();
    assert!(lines.len() >= 15, "the manual shows only {} ripcord command lines; did the pages move?", lines.len());
    let mut failures = Vec::new();
    for (page, n, arguments) in &lines {
        let argv = std::iter::once("ripcord".to_string()).chain(arguments.iter().cloned());
        if let Err(e) = Cli::try_parse_from(argv)
            && !matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion)
        {
            failures.push(format!("{}:{n}: ripcord {}: {}", page.display(), arguments.join(" "), e.kind()));
        }
    }
    assert!(failures.is_empty(), "command lines in the manual that the CLI refuses:\n{}", failures.join("\n"));
}

/// A command line the parser refuses is found: the check above can fail.
#[test]
fn a_command_line_with_an_unknown_flag_is_refused() {
    let argv = ["ripcord", "check", "--no-such-flag"];
    assert!(Cli::try_parse_from(argv).is_err());
    assert_eq!(
        ripcord_arguments(&words("RIPCORD_LOG=debug cargo run --release -q -- check --json | jq .")),
        Some(vec!["check".to_string(), "--json".to_string()])
    );
    assert_eq!(
        words(r#"ripcord pull api --reason "INC-1: 5xx" # why"#),
        ["ripcord", "pull", "api", "--reason", "INC-1: 5xx"]
    );
}

/// The words of a synopsis that name a command: up to the first argument, flag or placeholder.
fn command_words(synopsis: &str) -> Vec<&str> {
    synopsis
        .split_whitespace()
        .take_while(|w| !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect()
}

/// The command table of the reference: each row's code spans `ripcord SUB [SUB] …`, a span without `ripcord `
/// continuing the row's command (`plugin test PLUGIN --input …` / `plugin inspect PLUGIN`).
fn command_table() -> Vec<(String, String)> {
    let page = repository().join("docs/reference/commands.md");
    let text = std::fs::read_to_string(&page).unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| `ripcord ")) {
        let cell = line.split(" | ").next().unwrap_or_default();
        for span in cell.split('`').skip(1).step_by(2) {
            let path = match span.strip_prefix("ripcord ") {
                Some(rest) => command_words(rest).join(" "),
                None => {
                    let parent = out.last().and_then(|(p, _)| p.split(' ').next()).unwrap_or_default().to_string();
                    let words = command_words(span);
                    if words.first() == Some(&parent.as_str()) {
                        words.join(" ")
                    } else {
                        format!("{parent} {}", words.join(" "))
                    }
                }
            };
            out.push((path, span.to_string()));
        }
    }
    out
}

fn find<'a>(root: &'a clap::Command, path: &str) -> Option<&'a clap::Command> {
    path.split(' ').filter(|p| !p.is_empty()).try_fold(root, |command, name| command.find_subcommand(name))
}

#[test]
fn every_command_has_a_row_and_every_flag_a_row_names_exists() {
    let root = Cli::command();
    let table = command_table();
    let mut failures = Vec::new();
    let mut listed = Vec::new();
    for (path, span) in &table {
        let Some(command) = find(&root, path) else {
            failures.push(format!("`{span}`: ripcord has no command `{path}`"));
            continue;
        };
        listed.push(path.clone());
        let flags: Vec<&str> = span
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter_map(|w| w.strip_prefix("--"))
            .filter(|w| !w.is_empty())
            .collect();
        for flag in flags {
            let known = command.get_arguments().any(|a| a.get_long() == Some(flag))
                || root.get_arguments().any(|a| a.get_long() == Some(flag));
            if !known {
                failures.push(format!("`{span}`: `ripcord {path}` has no flag --{flag}"));
            }
        }
    }
    fn leaves(command: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            let path = format!("{prefix} {}", sub.get_name()).trim().to_string();
            if sub.has_subcommands() {
                leaves(sub, &path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut commands = Vec::new();
    leaves(&root, "", &mut commands);
    for command in commands {
        if !listed.contains(&command) {
            failures.push(format!("`ripcord {command}` has no row in docs/reference/commands.md"));
        }
    }
    assert!(table.len() >= 15, "docs/reference/commands.md lists only {} commands", table.len());
    assert!(failures.is_empty(), "the command reference and the CLI disagree:\n{}", failures.join("\n"));
}

//! The library's tree is its architecture, and stays so: every folder of `host/ripcord/src` is a stage of the cycle
//! that depends only on the stages before it (`docs/architecture.md`, "The stages"), and no file imports another
//! that imports it back, directly or around a circle. Read from the source: every `crate::` and `super::` path,
//! doc links included, outside the test modules.

use crate::support::repo_root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The stages in order, and the ones beside the cycle with what they may use. A top-level module not named here
/// fails the test: a new one must be given its place.
const STAGES: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("plugin", &["model"]),
    ("config", &["model", "plugin"]),
    ("provider", &["model", "plugin", "config"]),
    ("observe", &["model", "plugin", "config", "provider"]),
    ("judge", &["model", "plugin", "config", "provider", "observe"]),
    ("record", &["model", "plugin", "config", "provider", "observe", "judge"]),
    ("act", &["model", "plugin", "config", "provider", "observe", "judge", "record"]),
    ("cycle", &["model", "plugin", "config", "provider", "observe", "judge", "record", "act"]),
    ("function", &["model", "plugin", "config", "provider", "observe", "judge", "record"]),
    ("devkit", &["model", "plugin"]),
];

type Module = Vec<String>;

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library's file modules (not the binary's `cli/`, not test files) and their text without test modules.
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut files = Vec::new();
    source_files(src, &mut files);
    let mut out = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap_or(&file).with_extension("");
        let module: Module = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let first = module[0].as_str();
        if matches!(first, "cli" | "main" | "lib") || module.last().is_some_and(|m| m == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let text = match text.find("#[cfg(test)]\nmod tests {") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        out.insert(module, text);
    }
    out
}

/// Every `crate::…` and `super::…` path in `text`, as module paths (for `super`, from `module`'s parent).
fn paths(module: &Module, text: &str) -> Vec<Module> {
    let mut out = Vec::new();
    for (root, base) in [("crate::", Vec::new()), ("super::", module[..module.len() - 1].to_vec())] {
        let mut rest = text;
        while let Some(at) = rest.find(root) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + root.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut path = base.clone();
            let mut tail = rest;
            loop {
                let len = tail.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(tail.len());
                if len == 0 {
                    break;
                }
                path.push(tail[..len].to_string());
                match tail[len..].strip_prefix("::") {
                    Some(next) => tail = next,
                    None => break,
                }
            }
            out.push(path);
        }
    }
    out
}

/// What each file module uses: the longest prefix of each path that is a file module, itself left out.
fn graph(modules: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut edges = BTreeMap::new();
    for (module, text) in modules {
        let mut used = BTreeSet::new();
        for path in paths(module, text) {
            let target = (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains_key(p));
            if let Some(target) = target.filter(|t| t != module) {
                used.insert(target);
            }
        }
        edges.insert(module.clone(), used);
    }
    edges
}

/// The circles of the graph: its strongly connected components of more than one file (Tarjan).
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a Module) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in &self.edges[v] {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.join("/"));
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut tarjan =
        Tarjan { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in edges.keys() {
        if !tarjan.index.contains_key(v) {
            tarjan.visit(v);
        }
    }
    tarjan.found
}

#[test]
fn every_stage_depends_only_on_the_stages_before_it_and_no_file_on_itself() {
    let src = repo_root().join("host/ripcord/src");
    let modules = modules(&src);
    assert!(modules.len() > 50, "only {} library files under {}", modules.len(), src.display());
    let edges = graph(&modules);
    let allowed: BTreeMap<&str, &[&str]> = STAGES.iter().copied().collect();
    let mut problems = Vec::new();
    for (module, used) in &edges {
        let stage = module[0].as_str();
        let Some(may_use) = allowed.get(stage) else {
            problems.push(format!(
                "{}: the top-level module {stage:?} is not a stage of tests/e2e/layout.rs",
                module.join("/")
            ));
            continue;
        };
        for target in used {
            let other = target[0].as_str();
            if other != stage && !may_use.contains(&other) {
                problems.push(format!(
                    "{} uses {}: stage {stage} may not use {other}",
                    module.join("/"),
                    target.join("/")
                ));
            }
        }
    }
    for circle in circles(&edges) {
        problems.push(format!("an import circle: {}", circle.join(" ↔ ")));
    }
    assert!(problems.is_empty(), "the layout and docs/architecture.md disagree:\n{}", problems.join("\n"));
}

/// The check can fail: a circle and an upward dependency in a made-up tree are found.
#[test]
fn a_circle_and_an_upward_dependency_are_found() {
    let mut modules = BTreeMap::new();
    let module = |p: &str| p.split('/').map(String::from).collect::<Module>();
    modules.insert(module("record/audit"), "use crate::record::notify::Webhook;".to_string());
    modules.insert(module("record/notify"), "use super::audit::Record;".to_string());
    modules.insert(module("model/verdict"), "/// [`crate::act::rollback`]".to_string());
    modules.insert(module("act/rollback"), String::new());
    let edges = graph(&modules);
    assert_eq!(circles(&edges), vec![vec!["record/audit".to_string(), "record/notify".to_string()]]);
    assert!(edges[&module("model/verdict")].contains(&module("act/rollback")));
}

//! Policies in four languages: the reference policy `safety-errors` written in Rust, JavaScript (built with QuickJS
//! and with SpiderMonkey), Python and C (plugins/examples/safety-errors) gives the same verdict, reason and checks on every fixture; and the dev kit's
//! round trip `ripcord plugin new NAME --lang LANG && ripcord plugin build && ripcord plugin test` passes in each
//! language.
//!
//! The toolchains come from `scripts/setup`: componentize-qjs from npm (plugins/examples/safety-errors/js),
//! componentize-py from PyPI (.tools/venv), clang + wasi-libc from apt. Under `scripts/test`
//! (RIPCORD_REQUIRE_TOOLS=1) a missing toolchain fails the test; under a bare `cargo test` the language is skipped
//! with a `SKIPPED` message naming it.

use crate::support::{TEST_DEADLINE, TEST_MEMORY_LIMIT, guest, repo_root, stderr, stdout, temp_dir};
use ripcord::plugin::runtime::{CacheDir, Plugin, PluginSource, Runtime, RuntimeSettings};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn example() -> PathBuf {
    repo_root().join("plugins/examples/safety-errors")
}

/// PATH with the project's toolchains in front: the npm packages of the JavaScript example and the test venv.
fn tool_path() -> OsString {
    let mut dirs = vec![example().join("js/node_modules/.bin"), repo_root().join(".tools/venv/bin")];
    dirs.extend(std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default());
    std::env::join_paths(dirs).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the built `ripcord` binary in `dir` with the toolchains on PATH and a private compile cache.
fn ripcord_in(dir: &Path, args: &[&str], cache: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ripcord"));
    command.args(args).current_dir(dir).env("PATH", tool_path()).env("RIPCORD_CACHE_DIR", cache);
    // A scaffolded Rust policy builds in its own target dir: the one cargo test runs from is locked.
    command.env("CARGO_TARGET_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffolded-policies"));
    command.output().unwrap_or_else(|e| panic!("cannot run ripcord: {e}"))
}

/// `ripcord plugin build` in `project`: the component, or None when the language's toolchain is missing and the
/// run does not require it (the message says which language was skipped).
pub(crate) fn build(lang: &str, project: &Path, out: &Path, cache: &Path) -> Option<PathBuf> {
    let output = ripcord_in(project, &["plugin", "build", "--out", &out.display().to_string()], cache);
    if output.status.success() {
        assert!(out.is_file(), "ripcord plugin build reported success but wrote no {}", out.display());
        return Some(out.to_path_buf());
    }
    let error = stderr(&output);
    let missing = error.contains(" not found: ");
    if missing && std::env::var_os("RIPCORD_REQUIRE_TOOLS").is_none() {
        eprintln!("SKIPPED {lang} policy tests: {}", error.trim());
        return None;
    }
    panic!(
        "ripcord plugin build ({lang}) in {} failed{}:\n{error}",
        project.display(),
        if missing { " (run scripts/setup)" } else { "" }
    );
}

/// The reference policy built in each language whose toolchain is installed, once per test run.
struct Built {
    _dir: tempfile::TempDir,
    components: BTreeMap<&'static str, PathBuf>,
}

fn reference_components() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = temp_dir();
        let mut components = BTreeMap::from([("rust", guest("safety-errors"))]);
        for lang in ["js", "python", "c"] {
            let out = dir.path().join(format!("{lang}.wasm"));
            if let Some(path) = build(lang, &example().join(lang), &out, &dir.path().join("cache")) {
                components.insert(lang, path);
            }
        }
        // The same JavaScript with the other engine (SpiderMonkey, componentize-js): a project around policy.js.
        let spidermonkey = dir.path().join("js-spidermonkey");
        let manifest = format!(
            "name = \"safety-errors\"\nlang = \"js\"\njs_engine = \"spidermonkey\"\nwit = {:?}\nsource = {:?}\n",
            repo_root().join("wit/since_v0.1.0").display().to_string(),
            example().join("js/policy.js").display().to_string(),
        );
        std::fs::create_dir_all(&spidermonkey).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(spidermonkey.join("ripcord-plugin.toml"), manifest).unwrap_or_else(|e| panic!("{e}"));
        let out = dir.path().join("js-spidermonkey.wasm");
        if let Some(path) = build("js (SpiderMonkey)", &spidermonkey, &out, &dir.path().join("cache")) {
            components.insert("js-spidermonkey", path);
        }
        Built { _dir: dir, components }
    })
}

fn fixtures() -> Vec<(String, ripcord::model::fixture::Fixture)> {
    let dir = example().join("fixtures");
    let files = ripcord::model::fixture::files_in(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(files.len() >= 6, "expected the six reference fixtures in {}", dir.display());
    files
        .into_iter()
        .map(|f| {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (name, ripcord::model::fixture::read(&f).unwrap_or_else(|e| panic!("{e}")))
        })
        .collect()
}

/// A runtime with the test limits and a compile cache shared by the tests of this module (the JavaScript and
/// Python components take seconds to compile).
fn cached_runtime() -> Runtime {
    let cache = CacheDir::At(Path::new(env!("CARGO_TARGET_TMPDIR")).join("polyglot-cache"));
    Runtime::new(RuntimeSettings {
        deadline: TEST_DEADLINE,
        memory_limit: TEST_MEMORY_LIMIT,
        cache,
        ..RuntimeSettings::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn load_all(runtime: &Runtime) -> Vec<(&'static str, Plugin)> {
    reference_components()
        .components
        .iter()
        .map(|(lang, path)| {
            (*lang, runtime.load(&PluginSource::File(path.clone())).unwrap_or_else(|e| panic!("{lang}: {e}")))
        })
        .collect()
}

/// What a report says, as comparable JSON (verdict, reason and every check, floats bit for bit).
fn outcome(
    runtime: &Runtime,
    plugin: &Plugin,
    evaluation: &ripcord::model::evaluation::Evaluation,
) -> serde_json::Value {
    match runtime.evaluate(plugin, evaluation) {
        Ok(report) => serde_json::json!({
            "verdict": report.verdict,
            "reason": report.reason,
            "checks": report.checks.iter().map(|c| serde_json::json!({
                "name": c.name, "observed": c.observed.to_bits(), "threshold": c.threshold.to_bits(), "passed": c.passed,
            })).collect::<Vec<_>>(),
        }),
        Err(error) => serde_json::json!({"error": error.kind.code(), "message": error.to_string()}),
    }
}

fn assert_all_agree(
    runtime: &Runtime,
    plugins: &[(&str, Plugin)],
    name: &str,
    evaluation: &ripcord::model::evaluation::Evaluation,
) -> serde_json::Value {
    let (first, reference) = (plugins[0].0, outcome(runtime, &plugins[0].1, evaluation));
    for (lang, plugin) in &plugins[1..] {
        let got = outcome(runtime, plugin, evaluation);
        assert_eq!(got, reference, "{name}: the {lang} policy disagrees with the {first} one");
    }
    reference
}

#[test]
fn four_languages_give_identical_verdicts_and_checks_on_every_fixture() {
    let runtime = cached_runtime();
    let plugins = load_all(&runtime);
    let langs: Vec<&str> = plugins.iter().map(|p| p.0).collect();
    eprintln!("safety-errors compared in: {}", langs.join(", "));
    assert!(langs.contains(&"rust"));
    // Every one is built against the frozen 0.1.0, which the host keeps running unchanged beside 0.2.0.
    for (lang, plugin) in &plugins {
        assert_eq!(plugin.contract().version(), "0.1.0", "{lang}");
    }
    for (name, fixture) in fixtures() {
        let outcome = assert_all_agree(&runtime, &plugins, &name, &fixture.evaluation);
        let expect = fixture.expect.unwrap_or_else(|| panic!("{name} has no \"expect\""));
        assert_eq!(outcome["verdict"], expect.as_str(), "{name}: {outcome}");
        if expect.as_str() != "inconclusive" || name.starts_with("low-traffic") {
            assert!(!outcome["checks"].as_array().is_some_and(Vec::is_empty), "{name}: no checks in {outcome}");
        }
    }
}

#[test]
fn four_languages_describe_themselves_alike_and_agree_on_parameters_and_errors() {
    let runtime = cached_runtime();
    let plugins = load_all(&runtime);
    let describe = |p: &Plugin| serde_json::to_value(p.info()).unwrap_or_else(|e| panic!("{e}"));
    for (lang, plugin) in &plugins[1..] {
        assert_eq!(describe(plugin), describe(&plugins[0].1), "describe() of the {lang} policy differs");
    }
    assert_eq!(plugins[0].1.info().metrics, ["requests", "errors", "safety_hits"]);

    let (_, one_bad) =
        fixtures().into_iter().find(|f| f.0 == "one-bad-window.json").unwrap_or_else(|| panic!("fixture"));
    // windows = 1 makes the one bad (latest) window enough: rollback, in every language.
    let mut evaluation = one_bad.evaluation.clone();
    evaluation.params.insert("windows".into(), ripcord::model::evaluation::ParamValue::Integer(1));
    let outcome = assert_all_agree(&runtime, &plugins, "windows=1", &evaluation);
    assert_eq!(outcome["verdict"], "rollback", "{outcome}");
    // A float where an integer is declared is accepted as a number.
    evaluation.params.insert("min_requests".into(), ripcord::model::evaluation::ParamValue::Float(1e9));
    let outcome = assert_all_agree(&runtime, &plugins, "min_requests=1e9", &evaluation);
    assert_eq!(outcome["verdict"], "inconclusive", "{outcome}");
    // An unknown parameter is the policy's error, reported with its message.
    let mut evaluation = one_bad.evaluation;
    evaluation.params.insert("max_eror_rate".into(), ripcord::model::evaluation::ParamValue::Float(0.1));
    for (lang, plugin) in &plugins {
        let error = runtime.evaluate(plugin, &evaluation).err().unwrap_or_else(|| panic!("{lang}: accepted a typo"));
        assert!(error.to_string().contains("unknown parameter `max_eror_rate`"), "{lang}: {error}");
        assert!(error.to_string().contains("safety-errors"), "{lang}: the error does not name the plugin: {error}");
    }
}

/// `ripcord plugin new demo-LANG --lang LANG && cd demo-LANG && ripcord plugin build && ripcord plugin test`.
fn round_trip(lang: &str) {
    round_trip_at(lang, "0.1.0", 6);
}

/// [`round_trip`] for a project against `contract`, whose sample has `fixtures` fixtures and the contract's version.
fn round_trip_at(lang: &str, contract: &str, fixtures: usize) {
    let dir = temp_dir();
    let cache = dir.path().join("cache");
    let name = format!("demo-{lang}");
    let created = ripcord_in(dir.path(), &["plugin", "new", &name, "--lang", lang, "--contract", contract], &cache);
    assert!(created.status.success(), "plugin new: {}", stderr(&created));
    let project = dir.path().join(&name);
    assert!(project.join("fixtures/healthy.json").is_file() && project.join("wit/policy.wit").is_file());
    let Some(component) = build(lang, &project, &project.join(format!("{name}.wasm")), &cache) else { return };
    let tested = ripcord_in(&project, &["plugin", "test"], &cache);
    let table = stdout(&tested);
    assert!(tested.status.success(), "plugin test failed ({}):\n{table}\n{}", tested.status, stderr(&tested));
    assert!(table.contains(&format!("{fixtures} fixtures: {fixtures} passed, 0 failed")), "{table}");
    assert!(table.contains(&format!("`{name}@{contract}`")), "the scaffold did not rename the policy:\n{table}");
    let inspected = ripcord_in(&project, &["plugin", "inspect", &component.display().to_string()], &cache);
    assert!(stdout(&inspected).contains(&format!("ripcord:policy@{contract}")), "{}", stdout(&inspected));
}

/// `plugin new --contract 0.2.0`: a policy on the host's sequential tests, in each of the four languages.
#[test]
fn plugin_new_build_test_round_trip_at_0_2_0_rust() {
    round_trip_at("rust", "0.2.0", 2);
}

#[test]
fn plugin_new_build_test_round_trip_at_0_2_0_js() {
    round_trip_at("js", "0.2.0", 2);
}

#[test]
fn plugin_new_build_test_round_trip_at_0_2_0_python() {
    round_trip_at("python", "0.2.0", 2);
}

#[test]
fn plugin_new_build_test_round_trip_at_0_2_0_c() {
    round_trip_at("c", "0.2.0", 2);
}

/// `plugin new --contract 0.3.0`: a policy on per-request latency counts and the change detectors, in each language.
#[test]
fn plugin_new_build_test_round_trip_at_0_3_0_rust() {
    round_trip_at("rust", "0.3.0", 2);
}

#[test]
fn plugin_new_build_test_round_trip_at_0_3_0_js() {
    round_trip_at("js", "0.3.0", 2);
}

#[test]
fn plugin_new_build_test_round_trip_at_0_3_0_python() {
    round_trip_at("python", "0.3.0", 2);
}

#[test]
fn plugin_new_build_test_round_trip_at_0_3_0_c() {
    round_trip_at("c", "0.3.0", 2);
}

#[test]
fn plugin_new_build_test_round_trip_rust() {
    round_trip("rust");
}

#[test]
fn plugin_new_build_test_round_trip_js() {
    round_trip("js");
}

#[test]
fn plugin_new_build_test_round_trip_python() {
    round_trip("python");
}

#[test]
fn plugin_new_build_test_round_trip_c() {
    round_trip("c");
}

#[test]
fn plugin_build_names_the_missing_toolchain_and_how_to_install_it() {
    let dir = temp_dir();
    let cache = dir.path().join("cache");
    let expected = [
        ("js", "componentize-qjs not found: run `npm install`"),
        ("python", "componentize-py not found: run `pip install componentize-py==0.25.1`"),
        ("c", "clang not found: install clang, lld and wasi-libc"),
        ("rust", "cargo not found: install Rust"),
    ];
    for (lang, message) in expected {
        let name = format!("bare-{lang}");
        assert!(ripcord_in(dir.path(), &["plugin", "new", &name, "--lang", lang], &cache).status.success());
        let mut command = Command::new(env!("CARGO_BIN_EXE_ripcord"));
        command.args(["plugin", "build"]).current_dir(dir.path().join(&name)).env("PATH", "").env_remove("VIRTUAL_ENV");
        let output = command.output().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(output.status.code(), Some(1), "{lang}: {}", stderr(&output));
        assert!(stderr(&output).contains(message), "{lang}: expected {message:?} in:\n{}", stderr(&output));
    }
}

#[test]
fn plugin_test_fails_on_a_fixture_whose_verdict_differs() {
    let dir = temp_dir();
    let fixtures = dir.path().join("fixtures");
    std::fs::create_dir_all(&fixtures).unwrap_or_else(|e| panic!("{e}"));
    for (file, expect) in [("healthy.json", "promote"), ("error-spike.json", "promote")] {
        let text = std::fs::read_to_string(example().join("fixtures").join(file)).unwrap_or_else(|e| panic!("{e}"));
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        json["expect"] = expect.into();
        std::fs::write(fixtures.join(file), json.to_string()).unwrap_or_else(|e| panic!("{e}"));
    }
    let plugin = guest("safety-errors").display().to_string();
    let output = ripcord_in(dir.path(), &["plugin", "test", &plugin], &dir.path().join("cache"));
    let table = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{table}{}", stderr(&output));
    let row = table.lines().find(|l| l.starts_with("error-spike.json")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("promote") && row.contains("rollback") && row.contains("FAIL"), "{row}");
    assert!(table.contains("2 fixtures: 1 passed, 1 failed"), "{table}");

    let json = ripcord_in(dir.path(), &["plugin", "test", &plugin, "--json"], &dir.path().join("cache"));
    let summary: serde_json::Value = serde_json::from_str(stdout(&json).trim()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((summary["passed"].as_u64(), summary["failed"].as_u64()), (Some(1), Some(1)), "{summary}");
}

/// A scaffolded `lang` project whose policy misbehaves when the guard is named `loop` (spins forever) or `hog`
/// (allocates without end), built; None when the toolchain is missing and not required.
fn misbehaving(lang: &str, dir: &Path, marker: &str, injected: &str) -> Option<PathBuf> {
    let name = format!("wild-{lang}");
    let created = ripcord_in(dir, &["plugin", "new", &name, "--lang", lang], &dir.join("cache"));
    assert!(created.status.success(), "plugin new: {}", stderr(&created));
    let source = dir.join(&name).join(if lang == "js" { "policy.js" } else { "app.py" });
    let text = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains(marker), "{} no longer contains {marker:?}", source.display());
    std::fs::write(&source, text.replacen(marker, &format!("{injected}{marker}"), 1)).unwrap_or_else(|e| panic!("{e}"));
    build(lang, &dir.join(&name), &dir.join(format!("{name}.wasm")), &dir.join("cache"))
}

/// JavaScript and Python guests embed a whole interpreter; the deadline and the memory cap still hold them, the
/// error names the plugin, and the same plugin then answers normally.
#[test]
fn interpreted_policies_that_loop_or_hog_memory_are_contained() {
    let dir = temp_dir();
    let guests = [
        misbehaving(
            "js",
            dir.path(),
            "    const maxError = ",
            "    if (evaluation.guard === \"loop\") for (;;) {}\n    if (evaluation.guard === \"hog\") { const hog = []; for (;;) hog.push(new Float64Array(1 << 17).fill(1)); }\n",
        ),
        misbehaving(
            "python",
            dir.path(),
            "        max_error, max_safety = ",
            "        if evaluation.guard == \"loop\":\n            while True:\n                pass\n        if evaluation.guard == \"hog\":\n            hog = []\n            while True:\n                hog.append(bytearray(1 << 20))\n",
        ),
    ];
    let runtime = cached_runtime();
    let (_, healthy) = fixtures().into_iter().find(|f| f.0 == "healthy.json").unwrap_or_else(|| panic!("fixture"));
    for component in guests.into_iter().flatten() {
        let plugin = runtime.load(&PluginSource::File(component.clone())).unwrap_or_else(|e| panic!("{e}"));
        for (guard, cause) in [("loop", "exceeded its deadline"), ("hog", "exceeded its memory limit")] {
            let mut evaluation = healthy.evaluation.clone();
            evaluation.guard = guard.into();
            let error = runtime.evaluate(&plugin, &evaluation).err().unwrap_or_else(|| panic!("{guard}: no error"));
            let message = error.to_string();
            assert!(
                message.contains(cause) && message.contains("wild-"),
                "{}: {guard}: {message}",
                component.display()
            );
            let after = runtime.evaluate(&plugin, &healthy.evaluation).map(|r| r.verdict.as_str());
            assert_eq!(after.ok(), Some("promote"), "{} after {guard}", component.display());
        }
    }
}

/// The folder holding `program` on PATH.
fn dir_of(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join(program).is_file())
}

/// `plugin build` in a fresh JavaScript or Python project installs the project's own toolchain (npm install,
/// a .venv with pip) from the registries when it is nowhere else, then builds; `plugin test` passes.
#[test]
fn plugin_build_installs_a_missing_project_toolchain_from_the_registries() {
    let dir = temp_dir();
    let cache = dir.path().join("cache");
    for (lang, manager, installed) in
        [("js", "npm", "node_modules/.bin/componentize-qjs"), ("python", "python3", ".venv/bin/componentize-py")]
    {
        let Some(manager_dir) = dir_of(manager) else {
            let message = format!("{manager} is not on PATH");
            assert!(std::env::var_os("RIPCORD_REQUIRE_TOOLS").is_none(), "{message}");
            eprintln!("SKIPPED {lang} toolchain install: {message}");
            continue;
        };
        let name = format!("fresh-{lang}");
        assert!(ripcord_in(dir.path(), &["plugin", "new", &name, "--lang", lang], &cache).status.success());
        let project = dir.path().join(&name);
        // Only the package manager's folder (and the system's) on PATH: no componentizer anywhere.
        let path = std::env::join_paths([manager_dir, PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
            .unwrap_or_else(|e| panic!("{e}"));
        let run = |args: &[&str]| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_ripcord"));
            command.args(args).current_dir(&project).env("PATH", &path).env_remove("VIRTUAL_ENV");
            command.env("RIPCORD_CACHE_DIR", &cache).output().unwrap_or_else(|e| panic!("{e}"))
        };
        let built = run(&["plugin", "build"]);
        assert!(built.status.success(), "{lang}: {}", stderr(&built));
        assert!(stderr(&built).contains("installing componentize-"), "{lang}: {}", stderr(&built));
        assert!(project.join(installed).is_file(), "{lang}: {installed} was not installed");
        let tested = run(&["plugin", "test"]);
        assert!(stdout(&tested).contains("6 fixtures: 6 passed, 0 failed"), "{lang}: {}", stdout(&tested));
    }
}

/// A contract 0.2.0 policy uses the host's anytime-valid sequential tests in every language
/// (plugins/examples/sequential-errors): the Python one builds, declares 0.2.0 and passes its fixtures, and the
/// Rust, JavaScript and C ones agree with it.
#[test]
fn a_0_2_0_policy_uses_the_sequential_tests_alike_in_four_languages() {
    let dir = temp_dir();
    let project = repo_root().join("plugins/examples/sequential-errors/python");
    let out = dir.path().join("sequential-errors.wasm");
    let Some(component) = build("python (0.2.0)", &project, &out, &dir.path().join("cache")) else { return };
    let runtime = cached_runtime();
    let plugin = runtime.load(&PluginSource::File(component.clone())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plugin.contract().version(), "0.2.0");
    let fixtures = repo_root().join("plugins/examples/sequential-errors/fixtures").display().to_string();
    let tested = ripcord_in(
        &project,
        &["plugin", "test", &component.display().to_string(), "--fixtures", &fixtures],
        &dir.path().join("cache"),
    );
    assert!(tested.status.success(), "{}\n{}", stdout(&tested), stderr(&tested));
    assert!(stdout(&tested).contains("2 fixtures: 2 passed, 0 failed"), "{}", stdout(&tested));

    // The same policy in Rust on the raw 0.2.0 bindings, in JavaScript and in C gives the same verdicts and the
    // same evidence.
    let mut others = vec![("rust", guest("sequential-errors"))];
    for lang in ["js", "c"] {
        let project = repo_root().join("plugins/examples/sequential-errors").join(lang);
        let out = dir.path().join(format!("sequential-errors-{lang}.wasm"));
        others.extend(build(&format!("{lang} (0.2.0)"), &project, &out, &dir.path().join("cache")).map(|c| (lang, c)));
    }
    for (lang, component) in others {
        let other = runtime.load(&PluginSource::File(component)).unwrap_or_else(|e| panic!("{lang}: {e}"));
        assert_eq!(other.contract().version(), "0.2.0", "{lang}");
        for file in ["healthy.json", "error-spike.json"] {
            let path = repo_root().join("plugins/examples/sequential-errors/fixtures").join(file);
            let evaluation = ripcord::model::fixture::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let python = runtime.evaluate(&plugin, &evaluation).unwrap_or_else(|e| panic!("python: {e}"));
            let got = runtime.evaluate(&other, &evaluation).unwrap_or_else(|e| panic!("{lang}: {e}"));
            assert_eq!(python.verdict, got.verdict, "{lang}, {file}");
            assert_eq!(python.checks, got.checks, "{lang}, {file}");
        }
    }
}

/// A contract 0.3.0 policy counts slow requests and uses the change detectors in every language
/// (plugins/examples/slow-requests): the Python one builds, declares 0.3.0 and passes its fixtures, and the Rust,
/// JavaScript and C ones agree with it — on the thresholds they ask for (`latency-thresholds`, from the fixture's
/// known good), the verdicts and the evidence.
#[test]
fn a_0_3_0_policy_counts_slow_requests_and_detects_changes_alike_in_four_languages() {
    use ripcord::model::evaluation::ThresholdRequest;
    let dir = temp_dir();
    let folder = repo_root().join("plugins/examples/slow-requests");
    let out = dir.path().join("slow-requests.wasm");
    let Some(component) = build("python (0.3.0)", &folder.join("python"), &out, &dir.path().join("cache")) else {
        return;
    };
    let runtime = cached_runtime();
    let plugin = runtime.load(&PluginSource::File(component.clone())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plugin.contract().version(), "0.3.0");
    let fixtures = folder.join("fixtures").display().to_string();
    let tested = ripcord_in(
        &folder.join("python"),
        &["plugin", "test", &component.display().to_string(), "--fixtures", &fixtures],
        &dir.path().join("cache"),
    );
    assert!(tested.status.success(), "{}\n{}", stdout(&tested), stderr(&tested));
    assert!(stdout(&tested).contains("2 fixtures: 2 passed, 0 failed"), "{}", stdout(&tested));
    let mut others = vec![("rust", guest("slow-requests"))];
    for lang in ["js", "c"] {
        let out = dir.path().join(format!("slow-requests-{lang}.wasm"));
        others.extend(
            build(&format!("{lang} (0.3.0)"), &folder.join(lang), &out, &dir.path().join("cache")).map(|c| (lang, c)),
        );
    }
    for (lang, component) in others {
        let other = runtime.load(&PluginSource::File(component)).unwrap_or_else(|e| panic!("{lang}: {e}"));
        assert_eq!(other.contract().version(), "0.3.0", "{lang}");
        for file in ["healthy.json", "late-slowdown.json"] {
            let evaluation =
                ripcord::model::fixture::load(&folder.join("fixtures").join(file)).unwrap_or_else(|e| panic!("{e}"));
            let request = ThresholdRequest {
                guard: evaluation.guard.clone(),
                platform: evaluation.platform,
                known_good: evaluation.known_good.clone(),
                params: evaluation.params.clone(),
            };
            let asked = runtime.latency_thresholds(&plugin, &request).unwrap_or_else(|e| panic!("python: {e}"));
            let named = evaluation
                .candidate
                .metrics
                .iter()
                .filter_map(|m| ripcord::model::evaluation::slow_requests_threshold(&m.name));
            assert_eq!(asked, named.collect::<Vec<_>>(), "python asks for the fixture's threshold, {file}");
            assert_eq!(runtime.latency_thresholds(&other, &request).ok(), Some(asked), "{lang}, {file}");
            let python = runtime.evaluate(&plugin, &evaluation).unwrap_or_else(|e| panic!("python: {e}"));
            let got = runtime.evaluate(&other, &evaluation).unwrap_or_else(|e| panic!("{lang}: {e}"));
            assert_eq!(python.verdict, got.verdict, "{lang}, {file}");
            assert_eq!(python.checks, got.checks, "{lang}, {file}");
        }
        let no_history = ThresholdRequest {
            guard: "g".into(),
            platform: ripcord::model::evaluation::Platform::CloudRun,
            known_good: None,
            params: Default::default(),
        };
        assert_eq!(
            runtime.latency_thresholds(&other, &no_history).ok(),
            Some(vec![]),
            "{lang}: no history, no threshold"
        );
    }
}

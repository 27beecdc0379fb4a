//! Components that are not policies, or target another contract version, are refused with a clear error.

use crate::support::runtime;

fn load_wat(source: &str, wat: &str) -> String {
    let wasm = wat::parse_str(wat).unwrap_or_else(|e| panic!("{e}"));
    match runtime().load_bytes(source, &wasm) {
        Ok(plugin) => panic!("{source} loaded: {plugin:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_newer_contract_version_is_named_in_the_error() {
    let error =
        load_wat("future.wasm", r#"(component (instance $i) (export "ripcord:policy/evaluator@0.9.0" (instance $i)))"#);
    assert_eq!(
        error,
        "plugin future.wasm: targets contract ripcord:policy@0.9.0, which this ripcord does not support \
         (supported: 0.1.0, 0.2.0, 0.3.0)"
    );
}

#[test]
fn a_component_without_the_evaluator_is_not_a_policy() {
    let error = load_wat("other.wasm", r#"(component (instance $i) (export "acme:tool/run@1.0.0" (instance $i)))"#);
    assert!(error.contains("plugin other.wasm: is not a ripcord policy"), "{error}");
    assert!(error.contains("acme:tool/run@1.0.0"), "{error}");
}

#[test]
fn a_core_module_is_not_a_component() {
    let error = load_wat("core.wasm", "(module)");
    assert!(error.starts_with("plugin core.wasm: is not a valid WebAssembly component"), "{error}");
}

#[test]
fn an_export_with_the_wrong_shape_cannot_be_linked() {
    let error =
        load_wat("hollow.wasm", r#"(component (instance $i) (export "ripcord:policy/evaluator@0.1.0" (instance $i)))"#);
    assert!(error.starts_with("plugin hollow.wasm: cannot be linked"), "{error}");
}

#[test]
fn unknown_imports_cannot_be_linked() {
    let error = load_wat(
        "http.wasm",
        r#"(component
             (import "wasi:http/outgoing-handler@0.2.0" (instance (export "handle" (func))))
             (instance $i)
             (export "ripcord:policy/evaluator@0.1.0" (instance $i)))"#,
    );
    assert!(error.contains("cannot be linked"), "{error}");
    assert!(error.contains("wasi:http/outgoing-handler@0.2.0"), "{error}");
}

/// A released contract folder never changes: plugins built against it must keep loading. Change the contract in
/// a new `wit/since_vX.Y.Z` folder instead, with its own binding module in the host.
#[test]
fn the_released_contracts_are_frozen() {
    use sha2::Digest;
    for (version, frozen) in [("0.1.0", FROZEN_V0_1_0), ("0.2.0", FROZEN_V0_2_0), ("0.3.0", FROZEN_V0_3_0)] {
        let path = crate::support::repo_root().join(format!("wit/since_v{version}/policy.wit"));
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let digest: String = sha2::Sha256::digest(&text).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest, frozen, "wit/since_v{version}/policy.wit changed after release");
    }
}

const FROZEN_V0_1_0: &str = "e6d423447bffeed6467ec1c81713a2f3cd94644fe0c7ba912324620db833b8a6";
const FROZEN_V0_2_0: &str = "d7bfeca2218ea802c91597c230ad4939f5143a2b3ea633ecca581d8ccf7f2805";
const FROZEN_V0_3_0: &str = "26f27e5ab1f49574fb860023ea8f3276425fecdd3b9f954a1b0cbca820fc1f5d";

/// Plugins of every contract version run side by side in one host: the Rust reference policy, built against the
/// frozen 0.1.0 with wit-bindgen alone (as plugins built before 0.2.0 are), and the 0.3.0 built-ins.
#[test]
fn plugins_built_against_0_1_0_keep_running_beside_0_3_0_ones() {
    use crate::support::{fixture, guest, load, repo_root};
    use ripcord::model::verdict::Verdict;
    use ripcord::plugin::runtime::Contract;
    let runtime = runtime();
    let legacy = load(&runtime, &guest("safety-errors").display().to_string());
    assert_eq!(legacy.contract(), Contract::V0_1_0);
    let builtin = load(&runtime, "builtin:error-rate");
    assert_eq!(builtin.contract(), Contract::V0_3_0);
    let legacy_fixture = |name: &str| {
        let path = repo_root().join("plugins/examples/safety-errors/fixtures").join(name);
        ripcord::model::fixture::load(&path).unwrap_or_else(|e| panic!("{e}"))
    };
    for (file, expected) in [("healthy.json", Verdict::Promote), ("error-spike.json", Verdict::Rollback)] {
        let verdict = runtime.evaluate(&legacy, &legacy_fixture(file)).map(|r| r.verdict);
        assert_eq!(verdict.ok(), Some(expected), "{} on {file}", legacy.identity());
        let verdict = runtime.evaluate(&builtin, &fixture(file)).map(|r| r.verdict);
        assert_eq!(verdict.ok(), Some(expected), "{} on {file}", builtin.identity());
    }
}

/// Each version extends the one before: it keeps every interface function, so a policy ported to the next version
/// changes only what it uses of the new one.
#[test]
fn each_contract_keeps_every_function_of_the_one_before() {
    let read = |version: &str| {
        let path = crate::support::repo_root().join(format!("wit/since_v{version}/policy.wit"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let functions = |text: &str| -> Vec<String> {
        text.lines().filter(|l| l.contains(": func(")).map(|l| l.trim().to_string()).collect()
    };
    for (before, after) in [("0.1.0", "0.2.0"), ("0.2.0", "0.3.0")] {
        let (old, new) = (functions(&read(before)), functions(&read(after)));
        for function in old {
            assert!(new.contains(&function), "{after} dropped or changed `{function}`");
        }
    }
}

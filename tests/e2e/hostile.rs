//! Misbehaving plugins are contained: each yields an error naming the plugin and the cause, the host keeps running,
//! and the next evaluation of a healthy plugin succeeds. How close to the deadline a plugin is stopped is measured
//! by `benches/verdict.rs` (`hostile/*`), not asserted here: a loaded machine must not fail a test.

use crate::support::{TEST_DEADLINE, TEST_MEMORY_LIMIT, fixture, guest, load, runtime, temp_dir, with_param};
use ripcord::model::verdict::Verdict;
use ripcord::plugin::runtime::{MAX_TRANSFER_BYTES, Plugin, PluginError, PluginErrorKind, Runtime};
use std::sync::OnceLock;
use std::time::Instant;

struct Host {
    runtime: Runtime,
    hostile: Plugin,
    healthy: Plugin,
}

/// One runtime for all hostile tests, as in production: a plugin's misbehaviour must not affect the next call.
fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let runtime = runtime();
        let hostile = load(&runtime, &guest("hostile").display().to_string());
        let healthy = load(&runtime, "builtin:error-rate");
        Host { runtime, hostile, healthy }
    })
}

/// Runs the hostile plugin with `behaviour` (and extra text parameters), checks that it fails in time naming
/// itself, and that the host then still evaluates both plugins normally.
fn misbehave(behaviour: &str, extra: &[(&str, &str)]) -> PluginError {
    let host = host();
    let mut evaluation = with_param(fixture("healthy.json"), "behaviour", behaviour);
    for (name, value) in extra {
        evaluation = with_param(evaluation, name, value);
    }
    let error = match host.runtime.evaluate(&host.hostile, &evaluation) {
        Ok(report) => panic!("{behaviour}: expected a failure, got {report:?}"),
        Err(error) => error,
    };
    let message = error.to_string();
    assert!(message.contains("`hostile@0.1.0`") && message.contains("hostile.wasm"), "{message}");

    let healthy = host.runtime.evaluate(&host.healthy, &fixture("healthy.json"));
    assert_eq!(healthy.map(|r| r.verdict).ok(), Some(Verdict::Promote), "after {behaviour}");
    let behaving = host.runtime.evaluate(&host.hostile, &with_param(fixture("healthy.json"), "behaviour", "behave"));
    assert_eq!(behaving.map(|r| r.verdict).ok(), Some(Verdict::Promote), "after {behaviour}");
    error
}

#[test]
fn infinite_loop_is_stopped_at_the_deadline() {
    let started = Instant::now();
    let error = misbehave("loop", &[]);
    assert!(matches!(error.kind, PluginErrorKind::Deadline(d) if d == TEST_DEADLINE), "{error}");
    assert!(error.to_string().contains("exceeded its deadline of 200ms"), "{error}");
    assert!(started.elapsed() >= TEST_DEADLINE, "stopped before its deadline");
}

#[test]
fn memory_growth_past_the_cap_is_refused() {
    let error = misbehave("memory", &[]);
    match error.kind {
        PluginErrorKind::MemoryLimit { limit, requested } => {
            assert_eq!(limit, TEST_MEMORY_LIMIT);
            assert!(requested > limit);
        }
        other => panic!("expected a memory-limit error, got {other}"),
    }
}

#[test]
fn deep_recursion_traps() {
    let error = misbehave("recursion", &[]);
    let message = error.to_string();
    assert!(
        matches!(error.kind, PluginErrorKind::StackOverflow) || message.contains("out of bounds memory access"),
        "{message}"
    );
}

#[test]
fn explicit_trap_is_reported_with_the_panic_message() {
    let error = misbehave("trap", &[]);
    let message = error.to_string();
    assert!(matches!(error.kind, PluginErrorKind::Trap { .. }), "{message}");
    assert!(message.contains("unreachable"), "{message}");
    assert!(message.contains("hostile plugin panics on purpose"), "stderr tail missing: {message}");
}

/// Answers too big to take are refused while wasmtime lifts them, before the host copies anything: a
/// multi-megabyte reason, 200,000 checks, a 32 MiB log message.
#[test]
fn oversized_answers_are_refused_before_they_are_copied() {
    for behaviour in ["huge-reason", "many-checks", "log-burst"] {
        let error = misbehave(behaviour, &[]);
        assert!(matches!(error.kind, PluginErrorKind::TransferLimit(MAX_TRANSFER_BYTES)), "{behaviour}: {error}");
        assert!(error.to_string().contains("handed the host more than 4194304 bytes in one call"), "{error}");
    }
}

#[test]
fn a_reason_over_the_limit_is_rejected() {
    let error = misbehave("long-reason", &[]);
    let message = error.to_string();
    assert!(matches!(error.kind, PluginErrorKind::InvalidOutput(_)), "{message}");
    assert!(message.contains("reason is 102400 bytes, more than the 65536 allowed"), "{message}");
}

#[test]
fn printing_then_panicking_is_a_trap_with_the_panic_message() {
    let error = misbehave("print-and-panic", &[]);
    assert!(matches!(error.kind, PluginErrorKind::Trap { .. }), "{error}");
    assert!(error.to_string().contains("hostile plugin prints, then panics"), "{error}");
}

/// Printing is captured, bounded, and never breaks the plugin: 20,000 lines (more than is kept) still promote.
#[test]
fn printing_a_lot_is_captured_and_harmless() {
    let host = host();
    let evaluation = with_param(fixture("healthy.json"), "behaviour", "print-lots");
    let report = host.runtime.evaluate(&host.hostile, &evaluation).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Promote);
}

/// Reading stdin finds nothing (end of file); the plugin answers.
#[test]
fn stdin_is_empty() {
    let host = host();
    let evaluation = with_param(fixture("healthy.json"), "behaviour", "stdin");
    let report = host.runtime.evaluate(&host.hostile, &evaluation).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.reason, "read 0 bytes from stdin");
}

/// The runtime also works when called (as it must be) from a blocking thread of an async runtime, where WASI's
/// synchronous bindings use that runtime: a plugin that prints there is served, not a panic of the process.
#[test]
fn plugins_that_print_run_on_an_async_runtimes_blocking_threads() {
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let tokio = tokio.unwrap_or_else(|e| panic!("{e}"));
    let answers = tokio.block_on(async {
        let mut answers = Vec::new();
        for behaviour in ["stdout", "print-lots", "print-and-panic", "stdin"] {
            let asked = tokio::task::spawn_blocking(move || {
                let host = host();
                let evaluation = with_param(fixture("healthy.json"), "behaviour", behaviour);
                host.runtime.evaluate(&host.hostile, &evaluation).map(|r| r.verdict).map_err(|e| e.kind.code())
            });
            answers.push(asked.await.unwrap_or_else(|e| panic!("{behaviour}: {e}")));
        }
        answers
    });
    assert_eq!(answers, [Ok(Verdict::Promote), Ok(Verdict::Promote), Err("trap"), Ok(Verdict::Promote)]);
}

#[test]
fn reading_a_host_file_is_denied() {
    let dir = temp_dir();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "host secret").unwrap_or_else(|e| panic!("{e}"));
    let secret = secret.display().to_string();
    for path in [secret.as_str(), "/etc/passwd", "."] {
        let error = misbehave("file", &[("path", path)]);
        assert!(matches!(error.kind, PluginErrorKind::Policy(_)), "{error}");
        assert!(error.to_string().contains("file access denied"), "{error}");
    }
}

#[test]
fn opening_a_socket_is_denied() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    listener.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
    let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).to_string();
    let error = misbehave("socket", &[("address", &address)]);
    assert!(error.to_string().contains("socket denied"), "{error}");
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the plugin reached the host's socket: {accepted:?}"
    );
}

#[test]
fn environment_and_arguments_are_empty() {
    // SAFETY-free check: the test process has environment variables; the plugin must see none of them.
    assert!(std::env::vars().next().is_some());
    let error = misbehave("env", &[]);
    assert!(error.to_string().contains("no environment and no arguments visible"), "{error}");
}

#[test]
fn log_spam_is_bounded_and_harmless() {
    let host = host();
    let evaluation = with_param(fixture("healthy.json"), "behaviour", "spam-log");
    let report = host.runtime.evaluate(&host.hostile, &evaluation).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.verdict, Verdict::Promote);
}

#[test]
fn plugins_fail_independently_in_parallel() {
    let host = host();
    std::thread::scope(|scope| {
        let looping = scope
            .spawn(|| host.runtime.evaluate(&host.hostile, &with_param(fixture("healthy.json"), "behaviour", "loop")));
        for _ in 0..20 {
            let report = host.runtime.evaluate(&host.healthy, &fixture("error-spike.json"));
            assert_eq!(report.map(|r| r.verdict).ok(), Some(Verdict::Rollback));
        }
        let looped = looping.join().unwrap_or_else(|_| panic!("evaluation thread panicked"));
        assert!(matches!(looped, Err(PluginError { kind: PluginErrorKind::Deadline(_), .. })));
    });
}

//! Misbehaving plugins are contained: each yields an error naming the plugin and the cause within the deadline
//! plus 50 ms, the host keeps running, and the next evaluation of a healthy plugin succeeds.

use crate::support::{TEST_DEADLINE, TEST_MEMORY_LIMIT, fixture, guest, load, runtime, temp_dir, with_param};
use ripcord::report::Verdict;
use ripcord::runtime::{Plugin, PluginError, PluginErrorKind, Runtime};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SLACK: Duration = Duration::from_millis(50);

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
    let started = Instant::now();
    let outcome = host.runtime.evaluate(&host.hostile, &evaluation);
    let elapsed = started.elapsed();
    let error = match outcome {
        Ok(report) => panic!("{behaviour}: expected a failure, got {report:?}"),
        Err(error) => error,
    };
    assert!(elapsed <= TEST_DEADLINE + SLACK, "{behaviour}: took {elapsed:?}");
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

#[test]
fn multi_megabyte_reason_is_rejected() {
    let error = misbehave("huge-reason", &[]);
    let message = error.to_string();
    assert!(matches!(error.kind, PluginErrorKind::InvalidOutput(_)), "{message}");
    assert!(message.contains("reason is 8388608 bytes, more than the 65536 allowed"), "{message}");
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

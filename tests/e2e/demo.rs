//! `ripcord demo`, as a user runs it: the last line is the JSON summary the README and the book promise, with the
//! keys they show.

use crate::support::{ripcord, temp_dir};

fn demo(args: &[&str]) -> serde_json::Value {
    let cache = temp_dir();
    let output = ripcord(&[&["demo"], args].concat(), cache.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

#[test]
fn demo_prewarms_pins_the_stable_version_without_cold_starts() {
    let summary = demo(&[]);
    assert_eq!(summary["rolled_back"], true, "{summary}");
    assert_eq!(summary["pinned_version"], "1");
    assert_eq!(summary["prewarmed"], true);
    assert_eq!(summary["cold_starts_after_rollback"], 0);
    assert!(summary["verdict_to_pin_ms"].as_i64().is_some_and(|ms| ms >= 30_000), "{summary}");
    // The summary the README and the book's Getting started show has the keys the demo prints, no more, no fewer.
    let keys = |v: &serde_json::Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    for page in ["README.md", "docs/getting-started.md"] {
        let text = std::fs::read_to_string(crate::support::repo_root().join(page)).unwrap_or_default();
        let shown = text.lines().find(|l| l.starts_with("{\"audit_log\"")).unwrap_or_default();
        let shown: serde_json::Value = serde_json::from_str(shown).unwrap_or_else(|e| panic!("{page}: {e}: {shown}"));
        assert_eq!(keys(&shown), keys(&summary), "{page} shows another summary than the demo prints");
    }
    let audit = summary["audit_log"].as_str().map(std::path::PathBuf::from).unwrap_or_default();
    let records = ripcord::record::audit::Audit::read(&audit).unwrap_or_else(|e| panic!("{e}"));
    let rollback: Vec<_> = records.iter().filter(|r| r.action.to_string() == "rollback").map(|r| r.record).collect();
    assert_eq!(
        rollback,
        [
            ripcord::record::audit::Kind::Decision,
            ripcord::record::audit::Kind::Intent,
            ripcord::record::audit::Kind::Result
        ]
    );
}

#[test]
fn demo_without_prewarm_hits_cold_starts() {
    let summary = demo(&["--no-prewarm"]);
    assert_eq!(summary["rolled_back"], true, "{summary}");
    assert_eq!(summary["prewarmed"], false);
    assert!(summary["cold_starts_after_rollback"].as_u64().is_some_and(|n| n > 0), "{summary}");
}

#[test]
fn cloud_run_demo_pins_the_stable_revision_warm() {
    let summary = demo(&["--platform", "cloud-run"]);
    assert_eq!(summary["rolled_back"], true, "{summary}");
    assert_eq!(summary["pinned_version"], "checkout-00001-stable");
    assert_eq!(summary["prewarmed"], true);
    assert_eq!(summary["cold_starts_after_rollback"], 0);
    let cold = demo(&["--platform", "cloud-run", "--no-prewarm"]);
    assert!(cold["cold_starts_after_rollback"].as_u64().is_some_and(|n| n > 0), "{cold}");
}

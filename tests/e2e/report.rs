//! The HTML report as a browser shows it: rendered by headless Chromium (Debian's, installed by scripts/setup)
//! for a rollback, a healthy run, an empty log and a log of hostile strings; the DOM Chromium ends with is
//! checked (the headline, one chart per metric with both revisions drawn, no script run, nothing loaded from
//! anywhere) and screenshots at desktop and phone width are kept in `target/tmp/report-screenshots/`.

use crate::support::{SimHarness, V2_FAILS, lambda_scenario, stderr};
use ripcord::config::Mode;
use ripcord::model::verdict::{Check, Verdict};
use ripcord::record::audit::{Actor, Kind, PolicyRecord, Record};
use std::path::{Path, PathBuf};
use std::process::Command;

const CANARY: &str = "version = 1\nrouting = { version = 2, weight = 0.1 }";
const KNOWN_GOOD_1: &str = r#""ripcord:known-good:live" = "1""#;

/// Chromium, or None when it is missing and the run does not require it.
pub fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        let ok = Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success());
        ok.then(|| PathBuf::from(name))
    });
    if found.is_none() {
        assert!(std::env::var_os("RIPCORD_REQUIRE_TOOLS").is_none(), "chromium is not installed: run scripts/setup");
        eprintln!("SKIPPED the report's browser test: chromium is not installed (scripts/setup installs it)");
    }
    found
}

/// The DOM after Chromium loaded `page` (scripts, had there been any, would have run), and screenshots of it.
fn browse(chromium: &Path, page: &Path, name: &str) -> String {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&shots).unwrap_or_else(|e| panic!("{e}"));
    let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = |extra: &[String]| {
        let output = Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap_or_else(|e| panic!("cannot run chromium: {e}"));
        assert!(output.status.success(), "chromium failed: {}", stderr(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for (width, suffix) in [(1200, "desktop"), (390, "phone")] {
        let shot = shots.join(format!("{name}-{suffix}.png"));
        run(&[format!("--screenshot={}", shot.display()), format!("--window-size={width},2400")]);
        assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000), "no screenshot {}", shot.display());
    }
    run(&["--dump-dom".to_string()])
}

/// The tags of a serialized DOM (text and attribute values escape `<` and `>`, so each `<…>` is a tag).
fn tags(dom: &str) -> Vec<&str> {
    dom.split('<').skip(1).filter_map(|rest| rest.split('>').next()).collect()
}

/// The attribute names of a serialized tag (values are double-quoted, with `"` escaped).
fn attribute_names(tag: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = tag.split_once(' ').map_or("", |(_, attributes)| attributes);
    while !rest.trim().is_empty() {
        rest = rest.trim_start();
        let end = rest.find(['=', ' ']).unwrap_or(rest.len());
        names.push(rest[..end].to_ascii_lowercase());
        rest = &rest[end..];
        if let Some(value) = rest.strip_prefix("=\"") {
            rest = value.split_once('"').map_or("", |(_, after)| after);
        }
    }
    names
}

/// What every report must be: ripcord's page, untouched by any script, loading nothing — checked on the elements
/// and attributes Chromium ended with, not on the text (which may well say `<script>`, escaped).
fn assert_inert(dom: &str) {
    assert!(dom.contains("<title>ripcord report</title>"), "a script changed the title: {dom}");
    let tags = tags(dom);
    for tag in &tags {
        let name = tag.split([' ', '/']).next().unwrap_or_default().to_ascii_lowercase();
        assert!(
            !["script", "img", "iframe", "link", "object", "embed", "base", "meta http-equiv"].contains(&name.as_str()),
            "an element that runs or loads something: <{tag}>"
        );
        for attribute in attribute_names(tag) {
            assert!(
                !attribute.starts_with("on")
                    && !["src", "href", "style", "srcset", "action"].contains(&attribute.as_str()),
                "an attribute that runs or loads something ({attribute}): <{tag}>"
            );
        }
    }
    assert_eq!(tags.iter().filter(|t| **t == "style").count(), 1, "one style element, ripcord's");
    let style = dom.split("<style>").nth(1).and_then(|s| s.split("</style>").next()).unwrap_or_default();
    assert!(!style.contains("url(") && !style.contains("@import"), "the style loads something: {style}");
}

/// A guard's report after one `check` on `scenario` (5 minutes of traffic first); the page's path.
fn report_after_check(scenario: &str, exit: i32) -> (SimHarness, PathBuf) {
    let h = SimHarness::start(scenario);
    h.sim.advance(5 * 60_000);
    h.guards("prewarm = \"on-rollback\"");
    assert_eq!(h.ripcord(&["check"]).status.code(), Some(exit));
    let page = h.dir.path().join("report.html");
    let output = h.ripcord(&["report", "--out", &page.display().to_string()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    (h, page)
}

fn charts(dom: &str) -> Vec<&str> {
    dom.split("<figure class=\"chart\"").skip(1).collect()
}

#[test]
fn a_rollback_report_shows_the_headline_and_a_chart_per_metric_in_a_browser() {
    let Some(chromium) = chromium() else { return };
    let (_h, page) = report_after_check(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS), 2);
    let dom = browse(&chromium, &page, "rollback");
    assert_rollback_page(&dom);
}

/// The page of a guard rolled back warm (v2 → v1, 30 s of provisioned concurrency): inert, the headline with its
/// numbers, one chart per metric with both revisions, the threshold and the verdict and pin marked, the strip's
/// legend and axis.
fn assert_rollback_page(dom: &str) {
    assert_inert(dom);
    let headline = dom.split("<p class=\"headline\">").nth(1).and_then(|h| h.split("</p>").next()).unwrap_or_default();
    assert!(headline.starts_with("rolled back checkout-api v2 → v1 at "), "{headline}");
    assert!(headline.contains("error rate") && headline.contains("verdict to pin 30.0 s"), "{headline}");
    let charts = charts(dom);
    let metrics: Vec<&str> =
        charts.iter().filter_map(|c| c.split("data-metric=\"").nth(1)?.split('"').next()).collect();
    assert_eq!(metrics, ["Error rate", "Latency p99", "Requests per window"]);
    for chart in &charts {
        assert!(chart.contains("data-revision=\"v1\"") && chart.contains("data-revision=\"v2\""), "{chart}");
    }
    assert!(charts[0].contains("class=\"threshold\"") && charts[0].contains("threshold 2.00%"), "{}", charts[0]);
    assert!(charts[0].contains("class=\"mark rollback\"") && charts[0].contains("class=\"mark pin\""), "{}", charts[0]);
    assert!(dom.contains("class=\"legend\"") && dom.contains("class=\"axis\""), "the strip's legend and time axis");
}

/// The README's first command, then its report: what a newcomer sees.
#[test]
fn the_demos_rollback_report_shows_its_headline_and_charts_in_a_browser() {
    let Some(chromium) = chromium() else { return };
    let cache = crate::support::temp_dir();
    let output = crate::support::ripcord(&["demo"], cache.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let audit = summary["audit_log"].as_str().unwrap_or_else(|| panic!("no audit_log in {summary}"));
    let page = cache.path().join("demo-report.html");
    let output =
        crate::support::ripcord(&["report", "--audit", audit, "--out", &page.display().to_string()], cache.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_rollback_page(&browse(&chromium, &page, "demo"));
}

#[test]
fn a_healthy_run_and_an_empty_log_render_in_a_browser() {
    let Some(chromium) = chromium() else { return };
    let (h, page) = report_after_check(&lambda_scenario(CANARY, KNOWN_GOOD_1, ""), 0);
    let dom = browse(&chromium, &page, "healthy");
    assert_inert(&dom);
    assert!(dom.contains("<p class=\"headline\">checkout-api: promote at "), "{dom}");
    assert!(!dom.contains("class=\"mark rollback\""), "no rollback marked: {dom}");
    assert_eq!(charts(&dom).len(), 3, "{dom}");

    let empty = h.dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap_or_else(|e| panic!("{e}"));
    let page = h.dir.path().join("empty.html");
    let output = h.ripcord(&["report", "--audit", &empty.display().to_string(), "--out", &page.display().to_string()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let dom = browse(&chromium, &page, "empty");
    assert_inert(&dom);
    assert!(dom.contains("The audit log has no records yet.") && charts(&dom).is_empty(), "{dom}");
}

#[test]
fn hostile_strings_in_the_log_stay_text_in_a_browser() {
    let Some(chromium) = chromium() else { return };
    let dir = crate::support::temp_dir();
    let evil = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>";
    let mut record = Record::new(Kind::Decision, "x-1".into(), 1_764_147_600_000, evil, Actor::Schedule, Mode::Enforce);
    record.verdict = Verdict::Rollback;
    record.reason = format!("</style><style>body{{background:url(http://evil.example/x)}}</style>{evil}");
    record.policies = vec![PolicyRecord {
        plugin: format!("\"><svg onload=\"document.title='pwned'\">{evil}"),
        verdict: Verdict::Rollback,
        reason: evil.into(),
        checks: vec![Check { name: format!("error_rate{evil}"), observed: 0.5, threshold: 0.01, passed: false }],
        error: None,
    }];
    let log = dir.path().join("audit.jsonl");
    let line = serde_json::to_string(&record).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&log, format!("{line}\n")).unwrap_or_else(|e| panic!("{e}"));
    let page = dir.path().join("hostile.html");
    let output = Command::new(env!("CARGO_BIN_EXE_ripcord"))
        .args(["report", "--audit", &log.display().to_string(), "--out", &page.display().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let dom = browse(&chromium, &page, "hostile");
    assert_inert(&dom);
    // The text is there, as text.
    assert!(dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"), "{dom}");
    assert!(dom.contains("&lt;/style&gt;&lt;style&gt;body{background:url(http://evil.example/x)}"), "{dom}");
}

/// The charts follow revisions, not roles: after the rollback the known good is the "candidate" of every later
/// decision, and the rolled-back revision keeps its own line with the windows that rolled it back — the error
/// rate chart still reaches the failing canary's rate (30% errors), not only the known good's 0.1%.
#[test]
fn after_a_rollback_the_rolled_back_revision_keeps_its_line_and_its_evidence() {
    let h = SimHarness::start(&lambda_scenario(CANARY, KNOWN_GOOD_1, V2_FAILS));
    h.sim.advance(5 * 60_000);
    h.guards("prewarm = \"off\"");
    let watched = h.ripcord(&["watch", "--cycles", "6"]);
    assert_eq!(watched.status.code(), Some(2), "{}", stderr(&watched));
    let page = h.dir.path().join("report.html");
    let output = h.ripcord(&["report", "--out", &page.display().to_string()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let html = std::fs::read_to_string(&page).unwrap_or_default();
    let error_rate = charts(&html).into_iter().find(|c| c.contains("data-metric=\"Error rate\"")).unwrap_or_default();
    assert!(error_rate.contains("data-revision=\"v2\""), "the rolled-back revision keeps its line: {error_rate}");
    // The axis's top label is 10% above the highest value drawn.
    let top = error_rate.split("text-anchor=\"end\">").nth(1).and_then(|t| t.split('%').next()).unwrap_or_default();
    let top: f64 = top.parse().unwrap_or_else(|e| panic!("{e}: {top:?}"));
    assert!(top >= 20.0, "the failing windows stay on the chart: the axis reaches {top}%");
}

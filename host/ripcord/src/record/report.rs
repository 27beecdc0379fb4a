//! `ripcord report`: an audit log rendered as one self-contained HTML page for on-call and the post-incident
//! review. Per guard: a headline that says what happened and why with its numbers, baseline-against-candidate
//! charts per metric over time (SVG drawn here, from the per-window summaries of the decision records, with the
//! threshold, the deploy, the rollback verdicts and the pins marked), a verdict strip with a legend and a time
//! axis, the changes and the latest decisions with their failed checks. The page is built with maud, which
//! escapes every interpolated string (reasons and check names come from plugins); it has no script and loads
//! nothing from anywhere.

use crate::model::verdict::Verdict;
use crate::record::audit::{Kind, Outcome, Record, RevisionSummary};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use std::collections::BTreeMap;

/// How many verdicts the strip of a guard shows (the newest).
const STRIP_CELLS: usize = 1440;

/// The page for `records` read from `source`, with the newest `last` decisions of each guard in full.
pub fn render(records: &[Record], source: &str, last: usize) -> String {
    let mut guards: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for record in records {
        guards.entry(record.guard.as_str()).or_default().push(record);
    }
    let span = match (records.first(), records.last()) {
        (Some(first), Some(last)) => format!(" · {} to {}", readable_time(&first.at), readable_time(&last.at)),
        _ => String::new(),
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "ripcord report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "ripcord audit report" }
                p.meta { (source) " · " (records.len()) " records · " (guards.len()) " guards" (span) }
                @if guards.is_empty() {
                    p.empty { "The audit log has no records yet." }
                }
                @for (name, records) in &guards {
                    (guard_section(name, records, last))
                }
            }
        }
    };
    page.into_string()
}

/// One guard: headline, counts, charts, verdict strip, changes, latest decisions.
fn guard_section(name: &str, records: &[&Record], last: usize) -> Markup {
    let decisions: Vec<&Record> = records.iter().copied().filter(|r| r.record == Kind::Decision).collect();
    let count = |v: Verdict| decisions.iter().filter(|r| r.verdict == v).count();
    let results: Vec<&Record> = records.iter().copied().filter(|r| r.record == Kind::Result).collect();
    let outcomes = |o: Outcome| results.iter().filter(|r| r.outcome == Some(o)).count();
    let changes: Vec<&Record> = records.iter().copied().filter(|r| r.record != Kind::Decision).collect();
    html! {
        section.guard id={ "guard-" (name) } {
            h2 { (name) }
            p.headline { (headline(records)) }
            p.counts {
                (decisions.len()) " cycles: " (count(Verdict::Promote)) " promote, " (count(Verdict::Hold)) " hold, "
                (count(Verdict::Inconclusive)) " inconclusive, " (count(Verdict::Rollback)) " rollback · changes: "
                (outcomes(Outcome::Pinned)) " pinned, " (outcomes(Outcome::Failed)) " failed, "
                (outcomes(Outcome::Aborted)) " aborted, " (outcomes(Outcome::Interrupted)) " interrupted"
            }
            (charts(records, &decisions))
            (strip(&decisions))
            h3 { "Changes" }
            @if changes.is_empty() {
                p { "None." }
            } @else {
                div.scroll { (changes_table(&changes)) }
            }
            h3 { "Latest decisions (" (last.min(decisions.len())) " of " (decisions.len()) ")" }
            div.scroll { (decisions_table(&decisions, last)) }
        }
    }
}

/// What happened to the guard, in one sentence: its latest change if it rolled back (or failed to), else its
/// latest decision.
fn headline(records: &[&Record]) -> String {
    let latest_change = records.iter().rev().find(|r| r.record == Kind::Result);
    let latest_decision = records.iter().rev().find(|r| r.record == Kind::Decision);
    match (latest_change, latest_decision) {
        (Some(change), Some(decision)) if change.at_ms >= decision.at_ms || decision.verdict != Verdict::Rollback => {
            change.headline()
        }
        (_, Some(decision)) => decision.headline(),
        (Some(change), None) => change.headline(),
        (None, None) => "no records".into(),
    }
}

/// The verdicts, oldest first, one cell each, with a legend and the times of the first and the last.
fn strip(decisions: &[&Record]) -> Markup {
    let shown: Vec<&&Record> = decisions.iter().rev().take(STRIP_CELLS).collect::<Vec<_>>().into_iter().rev().collect();
    html! {
        div.legend {
            @for verdict in [Verdict::Promote, Verdict::Hold, Verdict::Inconclusive, Verdict::Rollback] {
                span { span class={ "swatch v-" (verdict) } {} (verdict) }
            }
        }
        div.strip role="img" aria-label="verdicts over time" {
            @for r in &shown {
                span class={ "v-" (r.verdict) } title={ (readable_time(&r.at)) " " (r.verdict) ": " (r.reason) } {}
            }
        }
        @if let (Some(first), Some(last)) = (shown.first(), shown.last()) {
            div.axis { span { (readable_time(&first.at)) } span { (readable_time(&last.at)) } }
        }
    }
}

/// A metric a chart draws from the window summaries.
struct ChartMetric {
    title: &'static str,
    value: fn(&RevisionSummary) -> Option<f64>,
    /// Formats a value for the axis.
    show: fn(f64) -> String,
    /// Checks whose threshold is this metric's (the newest decision's).
    check: fn(&str) -> bool,
}

const CHART_METRICS: &[ChartMetric] = &[
    ChartMetric {
        title: "Error rate",
        value: |s| s.error_rate,
        show: |v| format!("{:.2}%", v * 100.0),
        check: |name| name == "error_rate",
    },
    ChartMetric {
        title: "Latency p99",
        value: |s| s.latency_p99,
        show: |v| format!("{v:.0} ms"),
        check: |name| name == "latency_p99" || name.starts_with("latency_p99["),
    },
    ChartMetric { title: "Requests per window", value: |s| s.requests, show: |v| format!("{v:.0}"), check: |_| false },
];

/// One revision's windows as charted: by start, the window's end and the revision's summary.
type RevisionSeries = BTreeMap<i64, (i64, RevisionSummary)>;
/// Every revision's windows over the guard's decisions, in the order the revisions first appear: a line per
/// revision, whatever role it had in each decision (the candidate rolled back keeps its own line, with the windows
/// that rolled it back; the known good pinned after it keeps its own). A later decision's reading of the same
/// revision's window wins.
type Series = Vec<(String, RevisionSeries)>;

/// Each revision's series from the decisions' evidence, keyed by the revision each window summary was about.
fn series_by_revision(decisions: &[&Record]) -> Series {
    let mut series: Series = Vec::new();
    for d in decisions {
        let Some(deployment) = &d.deployment else { continue };
        for w in d.evidence.iter().flat_map(|e| &e.windows) {
            let (Ok(start), Ok(end)) = (crate::model::time::timestamp(&w.start), crate::model::time::timestamp(&w.end))
            else {
                continue;
            };
            let read =
                [(deployment.baseline.as_deref(), &w.baseline), (Some(deployment.candidate.as_str()), &w.candidate)];
            for (revision, summary) in read {
                let (Some(revision), Some(summary)) = (revision, summary) else { continue };
                let index = match series.iter().position(|(r, _)| r == revision) {
                    Some(index) => index,
                    None => {
                        series.push((revision.to_string(), RevisionSeries::new()));
                        series.len() - 1
                    }
                };
                series[index].1.insert(start, (end, summary.clone()));
            }
        }
    }
    series
}

/// One chart per metric with data: a line per revision over time.
fn charts(records: &[&Record], decisions: &[&Record]) -> Markup {
    let series = series_by_revision(decisions);
    let newest = decisions.last();
    let threshold = |metric: &ChartMetric| {
        newest
            .into_iter()
            .flat_map(|d| &d.policies)
            .flat_map(|p| &p.checks)
            .find(|c| (metric.check)(&c.name))
            .map(|c| c.threshold)
    };
    let mut marks: Vec<(i64, &'static str, String)> = Vec::new();
    if let Some(deployed) = newest.and_then(|d| d.evidence.as_ref()).and_then(|e| e.deployed_at.as_deref())
        && let Ok(at) = crate::model::time::timestamp(deployed)
    {
        marks.push((at, "deploy", format!("deploy {}", readable_time(deployed))));
    }
    for d in decisions.iter().filter(|d| d.verdict == Verdict::Rollback) {
        marks.push((d.at_ms, "rollback", format!("rollback verdict {}", readable_time(&d.at))));
    }
    for r in records.iter().filter(|r| r.record == Kind::Result && r.outcome == Some(Outcome::Pinned)) {
        marks.push((r.at_ms, "pin", format!("pinned {}", readable_time(&r.at))));
    }
    html! {
        @for metric in CHART_METRICS {
            @if series.iter().flat_map(|(_, s)| s.values()).any(|(_, summary)| (metric.value)(summary).is_some()) {
                (chart(metric, &series, threshold(metric), &marks))
            }
        }
    }
}

/// The colours of the revisions' lines, in the order they first appear (then again): classes `rev0`… of the
/// stylesheet (the page stays inert: no style attribute).
const LINE_COLOURS: [&str; 6] = ["#48c", "#e70", "#3a3", "#a4c", "#c84", "#777"];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One SVG chart: a line per revision, the threshold, the marks; a title and a legend naming the revisions.
fn chart(metric: &ChartMetric, series: &Series, threshold: Option<f64>, marks: &[(i64, &str, String)]) -> Markup {
    let windows = || series.iter().flat_map(|(_, s)| s.iter());
    let (Some(first), Some(last)) = (windows().map(|(start, _)| *start).min(), windows().map(|(_, w)| w.0).max())
    else {
        return html! {};
    };
    // The marks (a pin lands after the last window) widen the span.
    let latest_mark = marks.iter().map(|m| m.0).max().unwrap_or(last);
    let (t0, t1) = (first, last.max(latest_mark).max(first + 1));
    let values = windows().filter_map(|(_, (_, summary))| (metric.value)(summary));
    let top = values.chain(threshold).fold(0.0_f64, f64::max).max(f64::MIN_POSITIVE) * 1.1;
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| TOP + (1.0 - v / top) * (HEIGHT - TOP - BOTTOM);
    // A window's point sits at its middle.
    let lines: Vec<(String, String, String)> = series
        .iter()
        .enumerate()
        .map(|(i, (revision, windows))| {
            let points: Vec<String> = windows
                .iter()
                .filter_map(|(start, (end, summary))| {
                    (metric.value)(summary).map(|v| format!("{:.1},{:.1}", x((start + end) / 2), y(v)))
                })
                .collect();
            (crate::model::text::revision_label(revision), format!("rev{}", i % LINE_COLOURS.len()), points.join(" "))
        })
        .filter(|(_, _, points)| !points.is_empty())
        .collect();
    let axis_time = |t: i64| crate::model::time::format_timestamp(t).get(11..16).unwrap_or_default().to_string();
    html! {
        figure.chart data-metric=(metric.title) {
            figcaption {
                b { (metric.title) }
                @for (label, class, _) in &lines {
                    span class={ "key " (class) } { (label) }
                }
                @if let Some(t) = threshold { span.key.threshold { "threshold " ((metric.show)(t)) } }
            }
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(metric.title) {
                line.axis x1=(LEFT) y1=(y(0.0)) x2=(WIDTH - RIGHT) y2=(y(0.0)) {}
                line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(y(0.0)) {}
                text x=(LEFT - 4.0) y=(TOP + 8.0) text-anchor="end" { ((metric.show)(top)) }
                text x=(LEFT - 4.0) y=(y(0.0)) text-anchor="end" { ((metric.show)(0.0)) }
                text x=(LEFT) y=(HEIGHT - 8.0) { (axis_time(t0)) }
                text x=(WIDTH - RIGHT) y=(HEIGHT - 8.0) text-anchor="end" { (axis_time(t1)) }
                @for (at, kind, label) in marks.iter().filter(|m| m.0 >= t0 && m.0 <= t1) {
                    line class={ "mark " (kind) } x1=(x(*at)) y1=(TOP) x2=(x(*at)) y2=(y(0.0)) { title { (label) } }
                    // Labels stay inside the chart (a pin lands at its right edge) and do not cover each other.
                    @let right = x(*at) > WIDTH / 2.0;
                    @let row = match *kind { "deploy" => 1.0, "rollback" => 2.0, _ => 3.0 };
                    text class={ "mark " (kind) } x=(if right { x(*at) - 3.0 } else { x(*at) + 3.0 }) y=(TOP + 12.0 * row)
                        text-anchor=(if right { "end" } else { "start" }) { (kind) }
                }
                @if let Some(t) = threshold {
                    line.threshold x1=(LEFT) y1=(y(t)) x2=(WIDTH - RIGHT) y2=(y(t)) {}
                }
                @for (label, class, points) in &lines {
                    polyline class={ "revision " (class) } data-revision=(label) points=(points) {}
                }
            }
        }
    }
}

/// Every intent and result: what changed, how it ended, how long it took.
fn changes_table(changes: &[&Record]) -> Markup {
    html! {
        table {
            tr { th { "at" } th { "record" } th { "actor" } th { "action" } th { "target" } th { "outcome" } th { "verdict to pin" } th { "prewarm" } th { "reason / error" } }
            @for r in changes {
                tr class={ "o-" (r.outcome.map(|o| o.to_string()).unwrap_or_default()) } {
                    td.time { (readable_time(&r.at)) }
                    td { (format!("{:?}", r.record).to_lowercase()) }
                    td { (format!("{:?}", r.actor).to_lowercase()) }
                    td { (r.action) }
                    td { (r.target.as_deref().map(crate::model::text::revision_label).unwrap_or_default()) }
                    td { (r.outcome.map(|o| o.to_string()).unwrap_or_default()) }
                    td {
                        @if let Some(ms) = r.timings.verdict_to_pin_ms {
                            (format!("{:.1} s", ms as f64 / 1000.0))
                            @if let Some(real) = r.timings.verdict_to_pin_real_ms { " (" (real) " ms real)" }
                        }
                    }
                    td {
                        @if let Some(p) = &r.prewarm {
                            (p.method) " " (crate::model::text::revision_label(&p.revision)) " ×" (p.requested) @if p.ready { ", ready" }
                        }
                    }
                    td { (r.reason) @if let Some(error) = &r.error { " — " (error) } }
                }
            }
        }
    }
}

/// The newest `last` decisions with the checks that failed, observed against threshold in their units.
fn decisions_table(decisions: &[&Record], last: usize) -> Markup {
    html! {
        table {
            tr { th { "at" } th { "verdict" } th { "traffic" } th { "reason" } th { "policies" } }
            @for r in decisions.iter().rev().take(last) {
                tr {
                    td.time { (readable_time(&r.at)) }
                    td class={ "v-" (r.verdict) } { (r.verdict) }
                    td { (r.deployment.as_ref().map(|d| {
                        let label = crate::model::text::revision_label;
                        if d.candidate == d.primary {
                            format!("{} 100%", label(&d.primary))
                        } else {
                            format!("{} {:.0}% / {} {:.0}%", label(&d.primary), (1.0 - d.candidate_share) * 100.0, label(&d.candidate), d.candidate_share * 100.0)
                        }
                    }).unwrap_or_default()) }
                    td { (r.reason) }
                    td {
                        @for p in &r.policies {
                            div {
                                b { (p.plugin) } " " (p.verdict)
                                @let failed: Vec<String> = p.checks.iter().filter(|c| !c.passed).map(|c| c.describe()).collect();
                                @if !failed.is_empty() { ": " (failed.join("; ")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An RFC 3339 time as people read it in a table: `2026-11-26 09:06:30` (UTC; the zone is in the page's meta).
fn readable_time(at: &str) -> String {
    match (at.get(0..10), at.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => at.to_string(),
    }
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1em auto;max-width:60em;padding:0 1em;color:#222}\
h2{margin-top:2em;border-bottom:1px solid #ccc}.meta{color:#666}.headline{font-size:1.1em;font-weight:600}\
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}td.time{white-space:nowrap}\
.legend{display:flex;gap:1em;flex-wrap:wrap;font-size:.9em;color:#444}.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}\
.strip{display:flex;flex-wrap:wrap;gap:1px;margin:.3em 0}.strip span{width:6px;height:14px;display:inline-block}\
.axis{display:flex;justify-content:space-between;font-size:.8em;color:#666;max-width:100%}\
.v-promote{background:#3a3}.v-hold{background:#aaa}.v-inconclusive{background:#db3}.v-rollback{background:#d33}\
td.v-promote,td.v-hold,td.v-inconclusive{background:none}td.v-rollback{background:none;color:#b00;font-weight:600}\
tr.o-failed td,tr.o-interrupted td{color:#b00;font-weight:600}tr.o-pinned td{color:#060}\
figure.chart{margin:1em 0}figure.chart svg{width:100%;height:auto;max-width:640px;display:block}\
figcaption{display:flex;gap:1em;flex-wrap:wrap;align-items:baseline}.key::before{content:'';display:inline-block;width:14px;height:3px;margin-right:4px;vertical-align:middle}\
.key.rev0::before{background:#48c}.key.rev1::before{background:#e70}.key.rev2::before{background:#3a3}\
.key.rev3::before{background:#a4c}.key.rev4::before{background:#c84}.key.rev5::before{background:#777}.key.threshold::before{background:#d33}\
svg text{font-size:11px;fill:#555}svg .axis{stroke:#999}svg polyline{fill:none;stroke-width:2}\
svg .rev0{stroke:#48c}svg .rev1{stroke:#e70}svg .rev2{stroke:#3a3}svg .rev3{stroke:#a4c}svg .rev4{stroke:#c84}\
svg .rev5{stroke:#777}svg .threshold{stroke:#d33;stroke-dasharray:4 3}\
svg .mark{stroke-width:1.5}svg .mark.deploy{stroke:#48c;stroke-dasharray:2 2}svg .mark.rollback{stroke:#d33}svg .mark.pin{stroke:#3a3}\
svg text.mark{stroke:none;font-size:10px}svg text.mark.deploy{fill:#48c}svg text.mark.rollback{fill:#d33}svg text.mark.pin{fill:#3a3}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::record::audit::Actor;

    #[test]
    fn plugin_text_cannot_inject_markup() {
        let mut record = Record::new(Kind::Decision, "g-1".into(), 0, "g<1>", Actor::Schedule, Mode::Enforce);
        record.reason = "<script>alert('x')</script> & \"quoted\"".into();
        let page = render(&[record], "audit.jsonl", 10);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;quoted&quot;"), "{page}");
        assert!(page.contains("id=\"guard-g&lt;1&gt;\""), "{page}");
    }

    #[test]
    fn an_empty_log_says_so() {
        assert!(render(&[], "audit.jsonl", 10).contains("no records yet"));
    }
}

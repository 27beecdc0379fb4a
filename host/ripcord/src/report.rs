//! `ripcord report`: an audit log rendered as one self-contained HTML page — per guard, a strip of every
//! verdict, the changes (intent → result, verdict-to-pin, prewarm) and the latest decisions with the checks that
//! failed — for the post-incident review and for people without `jq`. Every string in the log may come from a
//! plugin (reasons, check names), so every string is escaped; the page loads nothing from anywhere.

use crate::audit::{Kind, Outcome, Record};
use crate::verdict::Verdict;
use std::collections::BTreeMap;
use std::fmt::Write;

/// How many verdicts the strip of a guard shows (the newest).
const STRIP_CELLS: usize = 1440;

/// HTML-escapes `text` for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page for `records` read from `source`, with the newest `last` decisions of each guard in full.
pub fn render(records: &[Record], source: &str, last: usize) -> String {
    let mut guards: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for record in records {
        guards.entry(record.guard.as_str()).or_default().push(record);
    }
    let mut page = String::new();
    let span = match (records.first(), records.last()) {
        (Some(first), Some(last)) => format!(" · {} to {}", escape(&first.at), escape(&last.at)),
        _ => String::new(),
    };
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ripcord report</title>\n<style>{STYLE}</style></head>\n<body>\n<h1>ripcord audit report</h1>\n<p class=\"meta\">{} · {} records · {} guards{span}</p>\n",
        escape(source),
        records.len(),
        guards.len()
    );
    if guards.is_empty() {
        page.push_str("<p>The audit log has no records yet.</p>\n");
    }
    for (name, records) in &guards {
        guard_section(&mut page, name, records, last);
    }
    page.push_str("</body></html>\n");
    page
}

/// One guard: its counts, its verdict strip, its changes and its latest decisions.
fn guard_section(page: &mut String, name: &str, records: &[&Record], last: usize) {
    let decisions: Vec<&Record> = records.iter().copied().filter(|r| r.record == Kind::Decision).collect();
    let count = |v: Verdict| decisions.iter().filter(|r| r.verdict == v).count();
    let results: Vec<&Record> = records.iter().copied().filter(|r| r.record == Kind::Result).collect();
    let outcomes = |o: Outcome| results.iter().filter(|r| r.outcome == Some(o)).count();
    let _ = write!(
        page,
        "<section id=\"guard-{id}\"><h2>{id}</h2>\n<p>{} cycles: {} promote, {} hold, {} inconclusive, {} rollback · changes: {} pinned, {} failed, {} aborted, {} interrupted</p>\n",
        decisions.len(),
        count(Verdict::Promote),
        count(Verdict::Hold),
        count(Verdict::Inconclusive),
        count(Verdict::Rollback),
        outcomes(Outcome::Pinned),
        outcomes(Outcome::Failed),
        outcomes(Outcome::Aborted),
        outcomes(Outcome::Interrupted),
        id = escape(name),
    );
    page.push_str("<div class=\"strip\">");
    for r in decisions.iter().rev().take(STRIP_CELLS).rev() {
        let _ = write!(
            page,
            "<span class=\"v-{}\" title=\"{} {}: {}\"></span>",
            r.verdict,
            escape(&r.at),
            r.verdict,
            escape(&r.reason)
        );
    }
    page.push_str("</div>\n");
    changes_table(page, records);
    decisions_table(page, &decisions, last);
    page.push_str("</section>\n");
}

/// Every intent and result: what changed, how it ended, how long it took.
fn changes_table(page: &mut String, records: &[&Record]) {
    page.push_str("<h3>Changes</h3>\n");
    let changes: Vec<&Record> = records.iter().copied().filter(|r| r.record != Kind::Decision).collect();
    if changes.is_empty() {
        page.push_str("<p>None.</p>\n");
    } else {
        page.push_str("<table><tr><th>at</th><th>record</th><th>actor</th><th>action</th><th>target</th><th>outcome</th><th>verdict to pin</th><th>prewarm</th><th>reason / error</th></tr>\n");
        for r in changes {
            let to_pin = r
                .timings
                .verdict_to_pin_ms
                .map(|ms| format!("{ms} ms ({} ms real)", r.timings.verdict_to_pin_real_ms.unwrap_or(0)))
                .unwrap_or_default();
            let prewarm = r
                .prewarm
                .as_ref()
                .map(|p| {
                    format!("{} {} x{}{}", p.method, p.revision, p.requested, if p.ready { ", ready" } else { "" })
                })
                .unwrap_or_default();
            let why = match &r.error {
                Some(error) => format!("{} — {}", r.reason, error),
                None => r.reason.clone(),
            };
            let _ = writeln!(
                page,
                "<tr class=\"o-{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&r.outcome.map(|o| o.to_string()).unwrap_or_default()),
                escape(&r.at),
                format!("{:?}", r.record).to_lowercase(),
                format!("{:?}", r.actor).to_lowercase(),
                escape(&r.action.to_string()),
                escape(r.target.as_deref().unwrap_or("")),
                escape(&r.outcome.map(|o| o.to_string()).unwrap_or_default()),
                escape(&to_pin),
                escape(&prewarm),
                escape(&why)
            );
        }
        page.push_str("</table>\n");
    }
}

/// The newest `last` decisions with the checks that failed.
fn decisions_table(page: &mut String, decisions: &[&Record], last: usize) {
    let _ = writeln!(page, "<h3>Latest decisions ({} of {})</h3>", last.min(decisions.len()), decisions.len());
    page.push_str("<table><tr><th>at</th><th>verdict</th><th>traffic</th><th>reason</th><th>policies</th></tr>\n");
    for r in decisions.iter().rev().take(last) {
        let traffic = r
            .deployment
            .as_ref()
            .map(|d| {
                if d.candidate == d.primary {
                    format!("{} 100%", d.primary)
                } else {
                    format!("{} / {} {:.0}%", d.primary, d.candidate, d.candidate_share * 100.0)
                }
            })
            .unwrap_or_default();
        let mut policies = String::new();
        for p in &r.policies {
            let failed: Vec<String> = p
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| format!("{} = {} (threshold {})", c.name, number(c.observed), number(c.threshold)))
                .collect();
            let _ = write!(
                policies,
                "<div><b>{}</b> {}{}</div>",
                escape(&p.plugin),
                p.verdict,
                if failed.is_empty() { String::new() } else { format!(": {}", escape(&failed.join("; "))) }
            );
        }
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"v-{}\">{}</td><td>{}</td><td>{}</td><td>{policies}</td></tr>",
            escape(&r.at),
            r.verdict,
            r.verdict,
            escape(&traffic),
            escape(&r.reason)
        );
    }
    page.push_str("</table>\n");
}

/// A check value for people: four decimals at most, `none` when nothing was observed.
fn number(value: f64) -> String {
    if !value.is_finite() {
        return "none".into();
    }
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#222}h2{margin-top:2em;border-bottom:1px solid #ccc}\
.meta{color:#666}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}\
.strip{display:flex;flex-wrap:wrap;gap:1px;margin:.5em 0}.strip span{width:6px;height:14px;display:inline-block}\
span.v-promote{background:#3a3}span.v-hold{background:#aaa}span.v-inconclusive{background:#db3}span.v-rollback{background:#d33}\
td.v-rollback,tr.o-failed td,tr.o-interrupted td{color:#b00;font-weight:600}tr.o-pinned td{color:#060}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Actor;
    use crate::config::Mode;

    #[test]
    fn plugin_text_cannot_inject_markup() {
        let mut record = Record::new(Kind::Decision, "g-1".into(), 0, "g<1>", Actor::Schedule, Mode::Enforce);
        record.reason = "<script>alert('x')</script> & \"quoted\"".into();
        let page = render(&[record], "audit.jsonl", 10);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"), "{page}");
        assert!(page.contains("id=\"guard-g&lt;1&gt;\""), "{page}");
    }

    #[test]
    fn an_empty_log_says_so() {
        assert!(render(&[], "audit.jsonl", 10).contains("no records yet"));
    }
}

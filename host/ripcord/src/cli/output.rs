//! How the guard commands speak: exit codes for CI gates, two lines per guard for people (every text from a
//! plugin or a cloud escaped), one JSON object for machines.

use ripcord::model::verdict::Verdict;
use ripcord::record::effect::{Effect, GuardResult};
use std::io::Write;

/// Exit codes of `check`, `watch --cycles`, `pull` and `replay` (documented in docs/reference/exit-codes.md).
pub(crate) mod exit {
    /// Every guard evaluated; no rollback verdict, none inconclusive.
    pub const HEALTHY: u8 = 0;
    /// A guard could not be evaluated or a change failed.
    pub const ERROR: u8 = 1;
    /// At least one guard's verdict was rollback (acted on, or not in dry-run/cooldown).
    pub const ROLLBACK: u8 = 2;
    /// At least one guard was inconclusive (and none rolled back, failed or degraded).
    pub const INCONCLUSIVE: u8 = 3;
    /// A shared degradation: a guard's baseline degraded with its candidate (an outage they share, not the
    /// candidate's doing); nothing rolled back, nothing failed.
    pub const DEGRADED: u8 = 4;

    /// The code covering two runs (cycles of `watch`): rollback wins over error, error over a shared
    /// degradation, that over inconclusive.
    pub fn worst(a: u8, b: u8) -> u8 {
        let rank = |code| match code {
            ROLLBACK => 4,
            ERROR => 3,
            DEGRADED => 2,
            INCONCLUSIVE => 1,
            _ => 0,
        };
        if rank(b) > rank(a) { b } else { a }
    }
}

/// The exit code of many cycles (`watch --cycles N`). A rollback, an error or a shared degradation in any cycle
/// stays in it — a rollback an hour ago is not undone by a promote now — while inconclusive is a state, not an
/// event: it counts for a guard whose latest verdict is inconclusive, so the first cycles of a canary, before its
/// evidence, do not fail a watch that ends with every guard judged.
#[derive(Debug, Default)]
pub(crate) struct Watched {
    /// The worst code of the events seen (rollback, error, shared degradation), or healthy.
    events: u8,
    /// Each guard's latest verdict: inconclusive or not.
    inconclusive: std::collections::BTreeMap<String, bool>,
}

impl Watched {
    /// Adds one cycle's results.
    pub(crate) fn add(&mut self, reports: &[GuardResult]) {
        let cycle = exit_code(reports);
        if cycle != exit::INCONCLUSIVE {
            self.events = exit::worst(self.events, cycle);
        }
        for report in reports {
            self.inconclusive.insert(report.guard.clone(), report.verdict == Verdict::Inconclusive);
        }
    }

    /// The code of every cycle added.
    pub(crate) fn code(&self) -> u8 {
        let now = if self.inconclusive.values().any(|i| *i) { exit::INCONCLUSIVE } else { exit::HEALTHY };
        exit::worst(self.events, now)
    }
}

/// The exit code summarising a cycle.
pub(crate) fn exit_code(reports: &[GuardResult]) -> u8 {
    let any = |f: &dyn Fn(&GuardResult) -> bool| reports.iter().any(f);
    if any(&|r| r.verdict == Verdict::Rollback && !matches!(r.effect, Effect::Failed { .. })) {
        exit::ROLLBACK
    } else if any(&|r| matches!(r.effect, Effect::Failed { .. } | Effect::Aborted { .. })) {
        exit::ERROR
    } else if any(&|r| !r.findings.is_empty()) {
        exit::DEGRADED
    } else if any(&|r| r.verdict == Verdict::Inconclusive) {
        exit::INCONCLUSIVE
    } else {
        exit::HEALTHY
    }
}

/// A revision for people: Lambda versions as `v7`, Cloud Run revisions by name.
pub(crate) fn label(revision: &str) -> String {
    ripcord::model::text::revision_label(revision)
}

/// The traffic split, e.g. `v1 90% / v2 10%`.
pub(crate) fn traffic(primary: &str, candidate: &str, candidate_share: f64) -> String {
    if candidate == primary {
        format!("{} 100%", label(primary))
    } else {
        let (p, c) = ((1.0 - candidate_share) * 100.0, candidate_share * 100.0);
        format!("{} {p:.0}% / {} {c:.0}%", label(primary), label(candidate))
    }
}

/// Two lines per guard, for people: what was decided and done, then why. Text from plugins and clouds is
/// escaped (control characters, bidi overrides), so no reason can forge the terminal's output.
pub(crate) fn describe(report: &GuardResult) -> String {
    let safe = |text: &str| ripcord::model::text::terminal_safe(text).into_owned();
    let split = report
        .deployment
        .as_ref()
        .map(|d| traffic(&d.primary, &d.candidate, d.candidate_share))
        .unwrap_or_else(|| "-".into());
    let action = match &report.effect {
        Effect::NoAction => "no action".to_string(),
        Effect::RolledBack { to, prewarm, verdict_to_pin_ms, verdict_to_pin_real_ms } => {
            let warm = match prewarm {
                Some(p) if p.ready => format!(
                    ", prewarmed ({} {} ready after {:.1}s)",
                    p.method,
                    p.requested,
                    p.waited_ms as f64 / 1000.0
                ),
                Some(p) => format!(", prewarm not ready ({})", safe(p.note.as_deref().unwrap_or_default())),
                None => String::new(),
            };
            format!(
                "ROLLED BACK to {}{warm}; verdict-to-pin {verdict_to_pin_ms} ms ({verdict_to_pin_real_ms} ms real)",
                label(to)
            )
        }
        Effect::AlreadyPinned { to } => format!("already pinned to {}", label(to)),
        Effect::RecordedKnownGood { revision } => format!("recorded {} as known good", label(revision)),
        Effect::Aborted { reason } => format!("ABORTED: {}", safe(reason)),
        // The error is the second line (it is the reason too, unless the verdict had one of its own).
        Effect::Failed { .. } => "FAILED".to_string(),
        Effect::Deferred { .. } => "DEFERRED (platform quota): read first next cycle".to_string(),
        Effect::AwaitingApproval { to, until } => {
            format!("AWAITING APPROVAL of the rollback to {} (until {until})", label(to))
        }
    };
    let why = match &report.effect {
        Effect::Failed { error } if *error != report.reason => {
            format!("{}; error: {}", safe(&report.reason), safe(error))
        }
        _ => safe(&report.reason),
    };
    let action = if report.findings.is_empty() {
        action
    } else {
        let found: Vec<String> = report.findings.iter().map(|f| f.to_string().to_uppercase()).collect();
        format!("{action}; {}", found.join(", "))
    };
    let mut text =
        format!("{:<16} {:<13} {:<22} {action}\n{:<16} {why}", report.guard, report.verdict.as_str(), split, "");
    // The numbers behind the verdict: each failing check, observed against threshold.
    let failing: Vec<String> = report
        .policies
        .iter()
        .flat_map(|p| p.checks.iter().filter(|c| !c.passed))
        .map(|c| safe(&c.describe()))
        .collect();
    if !failing.is_empty() {
        let shown = failing.len().min(MAX_FAILING_SHOWN);
        let more = if failing.len() > shown { format!(" (and {} more)", failing.len() - shown) } else { String::new() };
        text.push_str(&format!("\n{:<16} failing: {}{more}", "", failing[..shown].join("; ")));
    }
    text
}

/// Failing checks shown per guard in the text output (all are in `--json`).
const MAX_FAILING_SHOWN: usize = 6;

/// A cycle as one JSON object: what `--json` prints and what function mode answers. `at` is the cycle's time (the
/// clock's), else the system's.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Summary<'a> {
    at: String,
    exit_code: u8,
    guards: &'a [GuardResult],
}

impl<'a> Summary<'a> {
    pub(crate) fn new(reports: &'a [GuardResult], code: u8) -> Self {
        let at = reports.iter().find_map(|r| r.at.clone()).unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
            ripcord::model::time::format_timestamp(now as i64)
        });
        Self { at, exit_code: code, guards: reports }
    }
}

/// The summary as a JSON value, for function mode's answers (which add to it).
pub(crate) fn summary(reports: &[GuardResult], code: u8) -> serde_json::Value {
    serde_json::to_value(Summary::new(reports, code)).unwrap_or_default()
}

pub(crate) fn print(reports: &[GuardResult], json: bool, code: u8) -> anyhow::Result<()> {
    let written = if json {
        // Written as it is serialized: a 10,000-guard cycle built as one JSON value first took 36 MiB more.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer(&mut out, &Summary::new(reports, code))
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush())
    } else {
        reports.iter().try_for_each(|report| line(describe(report)))
    };
    quiet_if_closed(written)
}

/// Writes `text` and a newline to stdout; a reader that went away (`| head`) is not an error (see
/// [`stdout_closed`]).
pub(crate) fn line(text: impl std::fmt::Display) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    quiet_if_closed(writeln!(out, "{text}").and_then(|()| out.flush())).map_err(std::io::Error::other)
}

/// Whether stdout's reader went away (a closed pipe): the command ends quietly after what it is doing — a cycle's
/// changes are made and recorded before anything is printed — as Unix tools do, instead of panicking.
pub(crate) fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn quiet_if_closed(written: std::io::Result<()>) -> anyhow::Result<()> {
    match written {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_of_many_cycles_is_the_worst_of_them() {
        use exit::{DEGRADED, ERROR, HEALTHY, INCONCLUSIVE, ROLLBACK, worst};
        assert_eq!([ROLLBACK, HEALTHY, INCONCLUSIVE].into_iter().fold(HEALTHY, worst), ROLLBACK);
        assert_eq!([INCONCLUSIVE, DEGRADED, HEALTHY].into_iter().fold(HEALTHY, worst), DEGRADED);
        assert_eq!([DEGRADED, ERROR].into_iter().fold(HEALTHY, worst), ERROR);
        assert_eq!([INCONCLUSIVE, ERROR, HEALTHY].into_iter().fold(HEALTHY, worst), ERROR);
        assert_eq!([HEALTHY, INCONCLUSIVE].into_iter().fold(HEALTHY, worst), INCONCLUSIVE);
        assert_eq!([HEALTHY, HEALTHY].into_iter().fold(HEALTHY, worst), HEALTHY);
    }

    #[test]
    fn a_watch_keeps_what_happened_and_is_inconclusive_only_where_a_guard_ended_so() {
        use Verdict::{Inconclusive, Promote, Rollback};
        let code = |cycles: &[Vec<GuardResult>]| {
            let mut watched = Watched::default();
            cycles.iter().for_each(|c| watched.add(c));
            watched.code()
        };
        let quiet = |guard, verdict| GuardResult::bare(guard, verdict, Effect::NoAction);
        // A canary's first cycles, before its evidence, then promote: healthy.
        assert_eq!(code(&[vec![quiet("a", Inconclusive)], vec![quiet("a", Promote)]]), exit::HEALTHY);
        // Still inconclusive at the end: inconclusive.
        assert_eq!(code(&[vec![quiet("a", Promote)], vec![quiet("a", Inconclusive)]]), exit::INCONCLUSIVE);
        // One guard judged, the other still not: inconclusive.
        let both = |a, b| vec![quiet("a", a), quiet("b", b)];
        assert_eq!(code(&[both(Inconclusive, Inconclusive), both(Promote, Inconclusive)]), exit::INCONCLUSIVE);
        // A rollback or an error in any cycle stays.
        assert_eq!(code(&[vec![quiet("a", Rollback)], vec![quiet("a", Promote)]]), exit::ROLLBACK);
        let failed = GuardResult::bare("a", Inconclusive, Effect::Failed { error: "GetAlias: throttled".into() });
        assert_eq!(code(&[vec![failed], vec![quiet("a", Promote)]]), exit::ERROR);
    }
}

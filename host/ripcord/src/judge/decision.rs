//! The decision engine, pure: from the policies' verdicts and the guard's settings to one verdict and one action.
//! No I/O and no clock: everything it needs is in [`Input`], so every rule is unit-tested here.
//!
//! Rules: any rollback → rollback; all promote → promote; otherwise hold if any policy holds, else inconclusive.
//! A failed policy counts as `on_policy_error`; a candidate with no data at all counts as `no_data`. A rollback is
//! acted on only in enforce mode, outside the cooldown after the previous rollback, and when there is a known-good
//! revision to go back to.
//!
//! Promotion to known good: a candidate that has served all traffic for the guard's `bake` — with requests
//! served while baking, no policy failing, and no verdict of rollback or hold in the deciding cycle — is recorded
//! as the last known good. An inconclusive verdict does not block it: a policy that cannot compare (no baseline
//! to compare with after a full promotion) must not keep the previous known good forever. A policy's finding (a
//! shared degradation) is carried to the decision, so the audit, the exit code and the notification name it.
//!
//! A steady guard — the known good serves all traffic, nothing is on trial — has no candidate to judge: a policy
//! that cannot compare (no baseline, no history: the known good is its own reference) or a quiet hour without
//! requests leaves it `promote` ("steady: …"), not inconclusive forever. A policy that holds, rolls back or fails
//! is still reported as it is.

use crate::config::{Fallback, Mode};
use crate::model::verdict::{Finding, Verdict};

/// One policy's answer, or why it could not give one.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOutcome {
    /// The plugin's source, e.g. `builtin:error-rate`.
    pub plugin: String,
    /// The report, or the error — which names the plugin, as every plugin error does.
    pub outcome: Result<crate::model::verdict::PolicyReport, String>,
}

/// Everything a decision depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Input<'a> {
    pub outcomes: &'a [PolicyOutcome],
    /// Whether the candidate reported any metric at all.
    pub has_data: bool,
    pub mode: Mode,
    pub on_policy_error: Fallback,
    pub no_data: Fallback,
    pub now_ms: i64,
    /// End of the cooldown after the last rollback, if one is running.
    pub cooldown_until_ms: Option<i64>,
    /// The revision a rollback would pin (the last known good), if known and different from the candidate.
    pub rollback_target: Option<String>,
    /// The candidate revision.
    pub candidate: String,
    /// Whether the candidate serves all traffic (fully promoted).
    pub candidate_serves_all: bool,
    /// Whether the candidate is already recorded as the last known good.
    pub candidate_is_known_good: bool,
    /// How far the candidate's bake at 100% has come (when it serves all traffic).
    pub bake: Option<Bake>,
}

/// A fully promoted candidate's bake: how long it has served all traffic, how long it must, and the requests
/// it served meanwhile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bake {
    pub served_all_ms: i64,
    pub needed_ms: i64,
    pub requests: f64,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    /// Prewarm and pin `to`.
    Rollback {
        to: String,
    },
    /// Record `revision` as the last known good.
    RecordGood {
        revision: String,
    },
    /// Ask a person: the rollback to `to` becomes pending (`mode = "approve"`, `approval.rs`).
    AwaitApproval {
        to: String,
    },
    /// Drop a pending rollback nobody answered (`on_approval_timeout = "drop"`).
    DropApproval,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    pub action: Action,
    /// One sentence: why this verdict and action.
    pub reason: String,
    /// Why the verdict's action was not taken (dry-run, cooldown, nothing to roll back to, still baking).
    pub suppressed: Option<String>,
    /// What the policies found besides the verdict (a shared degradation), once each.
    pub findings: Vec<Finding>,
}

fn fallback(f: Fallback) -> Verdict {
    match f {
        Fallback::Inconclusive => Verdict::Inconclusive,
        Fallback::Hold => Verdict::Hold,
        Fallback::Rollback => Verdict::Rollback,
    }
}

/// Combines the verdicts of a guard's policies.
pub fn combine(outcomes: &[PolicyOutcome], on_policy_error: Fallback) -> Verdict {
    let verdicts: Vec<Verdict> =
        outcomes.iter().map(|o| o.outcome.as_ref().map_or(fallback(on_policy_error), |r| r.verdict)).collect();
    if verdicts.contains(&Verdict::Rollback) {
        Verdict::Rollback
    } else if !verdicts.is_empty() && verdicts.iter().all(|v| *v == Verdict::Promote) {
        Verdict::Promote
    } else if verdicts.contains(&Verdict::Hold) {
        Verdict::Hold
    } else {
        Verdict::Inconclusive
    }
}

/// Decides the verdict and the action.
pub fn decide(input: &Input<'_>) -> Decision {
    let (verdict, reason) = if input.has_data {
        let verdict = combine(input.outcomes, input.on_policy_error);
        (verdict, explain(input.outcomes, verdict))
    } else {
        let verdict = fallback(input.no_data);
        (verdict, format!("candidate {} reported no metrics (no_data = {verdict})", input.candidate))
    };
    let (verdict, mut reason) = steady(input, verdict, reason);
    let (action, suppressed) = match verdict {
        Verdict::Rollback => match &input.rollback_target {
            None => (Action::None, Some("no last known good revision to roll back to".to_string())),
            Some(_) if input.mode == Mode::DryRun => (Action::None, Some("dry-run: no change made".to_string())),
            Some(_) if input.cooldown_until_ms.is_some_and(|until| input.now_ms < until) => {
                let until = input.cooldown_until_ms.map(crate::model::time::format_timestamp).unwrap_or_default();
                (Action::None, Some(format!("in cooldown after the last rollback, until {until}")))
            }
            Some(to) => (Action::Rollback { to: to.clone() }, None),
        },
        Verdict::Promote | Verdict::Inconclusive
            if input.has_data && input.candidate_serves_all && !input.candidate_is_known_good =>
        {
            promotion(input)
        }
        _ => (Action::None, None),
    };
    if let Some(why) = &suppressed {
        reason = format!("{reason}; {why}");
    }
    let mut findings: Vec<Finding> = Vec::new();
    for finding in input.outcomes.iter().filter_map(|o| o.outcome.as_ref().ok()).flat_map(|r| &r.findings) {
        if !findings.contains(finding) {
            findings.push(*finding);
        }
    }
    Decision { verdict, action, reason, suppressed, findings }
}

/// A steady guard's verdict: inconclusive becomes promote (nothing is on trial; the known good stays), unless a
/// policy failed. Any other verdict, and any guard with a candidate on trial, is left as it is.
fn steady(input: &Input<'_>, verdict: Verdict, reason: String) -> (Verdict, String) {
    let steady = input.candidate_is_known_good && input.candidate_serves_all;
    if !steady || verdict != Verdict::Inconclusive || input.outcomes.iter().any(|o| o.outcome.is_err()) {
        return (verdict, reason);
    }
    let why =
        format!("steady: revision {} is the known good and serves all traffic; nothing on trial", input.candidate);
    (Verdict::Promote, format!("{why} ({reason})"))
}

/// Whether a candidate serving all traffic, judged promote or inconclusive, becomes the known good now; if
/// not, why not.
fn promotion(input: &Input<'_>) -> (Action, Option<String>) {
    let minutes = |ms: i64| format!("{}m", ms.max(0) / 60_000);
    let not_yet = |why: String| (Action::None, Some(why));
    if input.outcomes.iter().any(|o| o.outcome.is_err()) {
        return not_yet("a policy failed: not recorded as known good".into());
    }
    let Some(bake) = input.bake else { return not_yet("baking: just promoted".into()) };
    if bake.served_all_ms < bake.needed_ms {
        return not_yet(format!("baking: {} of {} at 100%", minutes(bake.served_all_ms), minutes(bake.needed_ms)));
    }
    if bake.requests <= 0.0 {
        return not_yet("baked without requests: not recorded as known good".into());
    }
    if input.mode == Mode::DryRun {
        return not_yet("dry-run: last known good not recorded".into());
    }
    (Action::RecordGood { revision: input.candidate.clone() }, None)
}

/// The reason of the deciding policies.
fn explain(outcomes: &[PolicyOutcome], verdict: Verdict) -> String {
    let deciding: Vec<String> = outcomes
        .iter()
        .filter(|o| match &o.outcome {
            Ok(report) => report.verdict == verdict || verdict == Verdict::Promote,
            Err(_) => verdict != Verdict::Promote,
        })
        .map(|o| match &o.outcome {
            Ok(report) => format!("{}: {}", o.plugin, report.reason),
            // Errors name the plugin themselves (`plugin `NAME@VERSION` (SOURCE): CAUSE`).
            Err(error) => error.clone(),
        })
        .collect();
    if deciding.is_empty() { format!("{verdict}") } else { deciding.join("; ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::verdict::PolicyReport;

    fn outcome(verdict: Verdict) -> PolicyOutcome {
        PolicyOutcome {
            plugin: format!("builtin:{verdict}"),
            outcome: Ok(PolicyReport {
                verdict,
                reason: format!("said {verdict}"),
                checks: Vec::new(),
                findings: Vec::new(),
            }),
        }
    }

    fn failed() -> PolicyOutcome {
        PolicyOutcome { plugin: "p.wasm".into(), outcome: Err("plugin `p@1` (p.wasm): trapped".into()) }
    }

    fn input(outcomes: &[PolicyOutcome]) -> Input<'_> {
        Input {
            outcomes,
            has_data: true,
            mode: Mode::Enforce,
            on_policy_error: Fallback::Inconclusive,
            no_data: Fallback::Inconclusive,
            now_ms: 1_000_000,
            cooldown_until_ms: None,
            rollback_target: Some("1".into()),
            candidate: "2".into(),
            candidate_serves_all: false,
            candidate_is_known_good: false,
            bake: None,
        }
    }

    const BAKED: Bake = Bake { served_all_ms: 600_000, needed_ms: 600_000, requests: 1_000.0 };

    #[test]
    fn verdicts_combine() {
        use Verdict::*;
        let cases = [
            (vec![Promote, Rollback], Rollback),
            (vec![Promote, Promote], Promote),
            (vec![Promote, Hold, Inconclusive], Hold),
            (vec![Promote, Inconclusive], Inconclusive),
            (vec![], Inconclusive),
        ];
        for (verdicts, want) in cases {
            let outcomes: Vec<_> = verdicts.into_iter().map(outcome).collect();
            assert_eq!(combine(&outcomes, Fallback::Inconclusive), want);
        }
    }

    #[test]
    fn a_failed_policy_counts_as_on_policy_error() {
        let outcomes = [outcome(Verdict::Promote), failed()];
        assert_eq!(combine(&outcomes, Fallback::Inconclusive), Verdict::Inconclusive);
        assert_eq!(combine(&outcomes, Fallback::Rollback), Verdict::Rollback);
        let d = decide(&Input { on_policy_error: Fallback::Rollback, ..input(&outcomes) });
        assert_eq!(d.action, Action::Rollback { to: "1".into() });
        assert!(d.reason.contains("plugin `p@1` (p.wasm): trapped"), "{}", d.reason);
    }

    #[test]
    fn rollback_acts_unless_dry_run_cooldown_or_no_target() {
        let outcomes = [outcome(Verdict::Rollback)];
        assert_eq!(decide(&input(&outcomes)).action, Action::Rollback { to: "1".into() });
        let dry = decide(&Input { mode: Mode::DryRun, ..input(&outcomes) });
        assert_eq!((dry.verdict, dry.action), (Verdict::Rollback, Action::None));
        assert!(dry.reason.contains("dry-run"));
        let cooling = decide(&Input { cooldown_until_ms: Some(2_000_000), ..input(&outcomes) });
        assert_eq!(cooling.action, Action::None);
        assert!(cooling.suppressed.as_deref().is_some_and(|s| s.contains("cooldown")));
        let expired = decide(&Input { cooldown_until_ms: Some(999_999), ..input(&outcomes) });
        assert_eq!(expired.action, Action::Rollback { to: "1".into() });
        let nowhere = decide(&Input { rollback_target: None, ..input(&outcomes) });
        assert_eq!(nowhere.action, Action::None);
    }

    #[test]
    fn no_data_follows_the_setting() {
        let outcomes = [outcome(Verdict::Inconclusive)];
        let d = decide(&Input { has_data: false, ..input(&outcomes) });
        assert_eq!((d.verdict, d.action.clone()), (Verdict::Inconclusive, Action::None));
        let d = decide(&Input { has_data: false, no_data: Fallback::Rollback, ..input(&outcomes) });
        assert_eq!(d.action, Action::Rollback { to: "1".into() });
    }

    #[test]
    fn a_fully_promoted_candidate_becomes_known_good_after_its_bake() {
        let outcomes = [outcome(Verdict::Promote)];
        let canary = Input { bake: Some(BAKED), ..input(&outcomes) };
        assert_eq!(decide(&canary).action, Action::None, "mid-canary: nothing to record yet");
        let full = Input { candidate_serves_all: true, ..canary };
        assert_eq!(decide(&full).action, Action::RecordGood { revision: "2".into() });
        assert_eq!(decide(&Input { candidate_is_known_good: true, ..full.clone() }).action, Action::None);
        assert_eq!(decide(&Input { mode: Mode::DryRun, ..full.clone() }).action, Action::None);
        let baking = decide(&Input { bake: Some(Bake { served_all_ms: 240_000, ..BAKED }), ..full.clone() });
        assert_eq!(baking.action, Action::None);
        assert!(baking.reason.ends_with("baking: 4m of 10m at 100%"), "{}", baking.reason);
        let idle = decide(&Input { bake: Some(Bake { requests: 0.0, ..BAKED }), ..full.clone() });
        assert_eq!(idle.action, Action::None, "no requests, no evidence");
        assert_eq!(decide(&Input { bake: None, ..full }).action, Action::None, "bake not started");
    }

    #[test]
    fn a_policy_that_cannot_compare_does_not_block_promotion_but_hold_and_failure_do() {
        let full = |outcomes| Input { candidate_serves_all: true, bake: Some(BAKED), ..input(outcomes) };
        let cannot_compare = [outcome(Verdict::Promote), outcome(Verdict::Inconclusive)];
        let d = decide(&full(&cannot_compare));
        assert_eq!((d.verdict, d.action), (Verdict::Inconclusive, Action::RecordGood { revision: "2".into() }));
        let holding = [outcome(Verdict::Promote), outcome(Verdict::Hold)];
        assert_eq!(decide(&full(&holding)).action, Action::None);
        let failing = [outcome(Verdict::Promote), failed()];
        let d = decide(&full(&failing));
        assert_eq!(d.action, Action::None);
        assert!(d.reason.contains("a policy failed"), "{}", d.reason);
        assert_eq!(decide(&Input { has_data: false, ..full(&cannot_compare) }).action, Action::None);
    }

    #[test]
    fn a_steady_guard_is_promote_unless_a_policy_holds_rolls_back_or_fails() {
        let steady = |outcomes: &[PolicyOutcome], has_data: bool| {
            let d = decide(&Input {
                has_data,
                candidate_serves_all: true,
                candidate_is_known_good: true,
                rollback_target: None,
                ..input(outcomes)
            });
            (d.verdict, d.action, d.reason)
        };
        let (verdict, action, reason) = steady(&[outcome(Verdict::Promote), outcome(Verdict::Inconclusive)], true);
        assert_eq!((verdict, action), (Verdict::Promote, Action::None));
        assert!(
            reason.starts_with("steady: revision 2 is the known good") && reason.contains("said inconclusive"),
            "{reason}"
        );
        assert_eq!(steady(&[], false).0, Verdict::Promote, "a quiet hour without requests");
        assert_eq!(steady(&[outcome(Verdict::Hold)], true).0, Verdict::Hold);
        assert_eq!(steady(&[outcome(Verdict::Rollback)], true).0, Verdict::Rollback);
        assert_eq!(steady(&[failed()], true).0, Verdict::Inconclusive, "a broken policy stays visible");
        // A candidate on trial, even at 100%, is not steady: inconclusive stays inconclusive.
        let baking = decide(&Input { candidate_serves_all: true, ..input(&[outcome(Verdict::Inconclusive)]) });
        assert_eq!(baking.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn findings_reach_the_decision_once() {
        let mut shared = outcome(Verdict::Hold);
        if let Ok(report) = &mut shared.outcome {
            report.findings.push(Finding::SharedDegradation);
        }
        let d = decide(&input(&[shared.clone(), shared, outcome(Verdict::Promote)]));
        assert_eq!((d.verdict, d.findings), (Verdict::Hold, vec![Finding::SharedDegradation]));
    }
}

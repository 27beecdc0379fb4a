//! What every contract version since 0.2.0 shares, written once (as `since_v0_1_0.rs` does for 0.1.0): the
//! sequential tests of `stats`, the evaluation with the known good's history, and reports with findings. Each
//! macro is expanded inside a version's binding module (`v0_2_0.rs`, `v0_3_0.rs`), where `stats` and `types` name
//! that version's bindings.

/// The 0.2.0 sequential tests, as methods: expanded inside a version's `impl stats::Host for Sandbox`.
macro_rules! sequential_functions {
    () => {
        fn error_ratio_test(
            &mut self,
            periods: Vec<stats::PeriodCounts>,
            ratio: f64,
            alpha: f64,
        ) -> Option<stats::Sequential> {
            seq::error_ratio_test(&period_counts_from_wit(periods), ratio, alpha).map(sequential_to_wit)
        }

        fn error_limit_test(
            &mut self,
            periods: Vec<stats::RateCounts>,
            limit: f64,
            alpha: f64,
        ) -> Option<stats::Sequential> {
            seq::error_limit_test(&rate_counts_from_wit(periods), limit, alpha).map(sequential_to_wit)
        }

        fn exceedance_test(
            &mut self,
            candidate: Vec<f64>,
            reference: Vec<f64>,
            factor: f64,
            alpha: f64,
        ) -> Option<stats::Sequential> {
            seq::exceedance_test(&candidate, &reference, factor, alpha).map(sequential_to_wit)
        }
    };
}

/// The conversions of the 0.2.0 types: counts and sequential results, the evaluation (with `known-good`) and the
/// report (with findings).
macro_rules! conversions {
    () => {
        fn period_counts_from_wit(periods: Vec<stats::PeriodCounts>) -> Vec<seq::PeriodCounts> {
            periods
                .into_iter()
                .map(|p| seq::PeriodCounts {
                    baseline_requests: p.baseline_requests,
                    baseline_errors: p.baseline_errors,
                    candidate_requests: p.candidate_requests,
                    candidate_errors: p.candidate_errors,
                })
                .collect()
        }

        fn rate_counts_from_wit(periods: Vec<stats::RateCounts>) -> Vec<seq::RateCounts> {
            periods.into_iter().map(|p| seq::RateCounts { requests: p.requests, errors: p.errors }).collect()
        }

        fn sequential_to_wit(s: seq::Sequential) -> stats::Sequential {
            stats::Sequential {
                e_value: s.e_value,
                max_e_value: s.max_e_value,
                p_value: s.p_value,
                reject: s.reject,
                estimate: s.estimate,
                observations: s.observations,
            }
        }

        fn history_to_wit(h: &host_eval::History) -> types::History {
            types::History {
                revision: revision_to_wit(&h.revision),
                span: types::Window { start: h.span.start, end: h.span.end },
            }
        }

        fn evaluation_to_wit(e: &Evaluation) -> types::Evaluation {
            types::Evaluation {
                guard: e.guard.clone(),
                platform: platform_to_wit(e.platform),
                now: e.now,
                deployed_at: e.deployed_at,
                windows: e.windows.iter().map(|w| types::Window { start: w.start, end: w.end }).collect(),
                // Since 0.2.0 the baseline is the concurrent one only: absent when the candidate serves all
                // traffic (the known good's own metrics are then in `known-good`).
                baseline: e.baseline.as_ref().filter(|_| e.candidate.traffic_share < 1.0).map(revision_to_wit),
                known_good: e.known_good.as_ref().map(history_to_wit),
                candidate: revision_to_wit(&e.candidate),
                params: params_to_wit(&e.params),
            }
        }

        fn report_from_wit(report: types::Report) -> PolicyReport {
            let findings = report
                .findings
                .into_iter()
                .map(|f| match f {
                    types::Finding::SharedDegradation => Finding::SharedDegradation,
                })
                .collect();
            PolicyReport { findings, ..report_basics_from_wit(report.verdict, report.reason, report.checks) }
        }
    };
}

pub(super) use {conversions, sequential_functions};

//! Bindings for contract `ripcord:policy@0.2.0` (`wit/since_v0.2.0`) and the conversions between its WIT types
//! and the host's plain data: 0.1.0 plus the sequential tests in `stats`, the known good's history in the
//! evaluation and findings in the report. The host types follow this, the newest version.
//! What 0.1.0 defined and this version kept is written once, in `since_v0_1_0.rs`.

use super::sandbox::{LogLevel, Sandbox};
use crate::evaluation::{self as host_eval, Evaluation};
use crate::policy_info::{ParamSpec, PolicyInfo};
use crate::stats::sequential as seq;
use crate::verdict::{Check, Finding, PolicyReport, Verdict};
use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

wasmtime::component::bindgen!({
    path: "../../wit/since_v0.2.0",
    world: "policy",
});

use self::ripcord::policy::{host, stats, types};

super::since_v0_1_0::host_interfaces!();

impl stats::Host for Sandbox {
    super::since_v0_1_0::stats_functions!();

    fn error_ratio_test(
        &mut self,
        periods: Vec<stats::PeriodCounts>,
        ratio: f64,
        alpha: f64,
    ) -> Option<stats::Sequential> {
        let periods: Vec<seq::PeriodCounts> = periods
            .into_iter()
            .map(|p| seq::PeriodCounts {
                baseline_requests: p.baseline_requests,
                baseline_errors: p.baseline_errors,
                candidate_requests: p.candidate_requests,
                candidate_errors: p.candidate_errors,
            })
            .collect();
        seq::error_ratio_test(&periods, ratio, alpha).map(sequential_to_wit)
    }

    fn error_limit_test(
        &mut self,
        periods: Vec<stats::RateCounts>,
        limit: f64,
        alpha: f64,
    ) -> Option<stats::Sequential> {
        let periods: Vec<seq::RateCounts> =
            periods.into_iter().map(|p| seq::RateCounts { requests: p.requests, errors: p.errors }).collect();
        seq::error_limit_test(&periods, limit, alpha).map(sequential_to_wit)
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

super::since_v0_1_0::bindings!();

fn evaluation_to_wit(e: &Evaluation) -> types::Evaluation {
    types::Evaluation {
        guard: e.guard.clone(),
        platform: platform_to_wit(e.platform),
        now: e.now,
        deployed_at: e.deployed_at,
        windows: e.windows.iter().map(|w| types::Window { start: w.start, end: w.end }).collect(),
        // 0.2.0's baseline is the concurrent one only: absent when the candidate serves all traffic (the known
        // good's own metrics are then in `known-good`).
        baseline: e.baseline.as_ref().filter(|_| e.candidate.traffic_share < 1.0).map(revision_to_wit),
        known_good: e.known_good.as_ref().map(|h| types::History {
            revision: revision_to_wit(&h.revision),
            span: types::Window { start: h.span.start, end: h.span.end },
        }),
        candidate: revision_to_wit(&e.candidate),
        params: params_to_wit(e),
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

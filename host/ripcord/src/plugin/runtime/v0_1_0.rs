//! Bindings for contract `ripcord:policy@0.1.0` (`wit/since_v0.1.0`, frozen) and the conversions between its
//! WIT types and the host's plain data; what later versions kept unchanged is written once, in `since_v0_1_0.rs`.
//! A new contract version gets its own module like this one; the host types follow the newest version.

use super::sandbox::{LogLevel, Sandbox};
use crate::model::evaluation::{self as host_eval, Evaluation};
use crate::model::policy_info::{ParamSpec, PolicyInfo};
use crate::model::verdict::{Check, PolicyReport, Verdict};
use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

wasmtime::component::bindgen!({
    path: "../../wit/since_v0.1.0",
    world: "policy",
});

use self::ripcord::policy::{host, stats, types};

super::since_v0_1_0::host_interfaces!();

impl stats::Host for Sandbox {
    super::since_v0_1_0::stats_functions!();
}

super::since_v0_1_0::bindings!();

fn evaluation_to_wit(e: &Evaluation) -> types::Evaluation {
    types::Evaluation {
        guard: e.guard.clone(),
        platform: platform_to_wit(e.platform),
        now: e.now,
        deployed_at: e.deployed_at,
        windows: e.windows.iter().map(|w| types::Window { start: w.start, end: w.end }).collect(),
        baseline: e.baseline.as_ref().map(revision_to_wit),
        candidate: revision_to_wit(&e.candidate),
        params: params_to_wit(&e.params),
    }
}

fn report_from_wit(report: types::Report) -> PolicyReport {
    report_basics_from_wit(report.verdict, report.reason, report.checks)
}

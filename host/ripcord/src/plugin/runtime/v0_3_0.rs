//! Bindings for contract `ripcord:policy@0.3.0` (`wit/since_v0.3.0`, frozen) and the conversions between its WIT
//! types and the host's plain data: 0.2.0 plus the change detectors in `stats` and the `latency-thresholds`
//! export (the slow-request counts it asks for arrive as ordinary `slow_requests_<T>ms` series, so the evaluation
//! keeps 0.2.0's shape). The host types follow this, the newest version.

use super::sandbox::{LogLevel, Sandbox};
use crate::model::evaluation::{self as host_eval, Evaluation, ThresholdRequest};
use crate::model::policy_info::{ParamSpec, PolicyInfo};
use crate::model::verdict::{Check, Finding, PolicyReport, Verdict};
use crate::plugin::stats::{change, sequential as seq};
use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

wasmtime::component::bindgen!({
    path: "../../wit/since_v0.3.0",
    world: "policy",
});

use self::ripcord::policy::{host, stats, types};

super::since_v0_1_0::host_interfaces!();

impl stats::Host for Sandbox {
    super::since_v0_1_0::stats_functions!();
    super::since_v0_2_0::sequential_functions!();

    fn error_ratio_detector(
        &mut self,
        periods: Vec<stats::PeriodCounts>,
        ratio: f64,
        detector: stats::Detector,
    ) -> Option<stats::Detection> {
        change::error_ratio_detector(&period_counts_from_wit(periods), ratio, detector_from_wit(detector))
            .map(detection_to_wit)
    }

    fn error_limit_detector(
        &mut self,
        periods: Vec<stats::RateCounts>,
        limit: f64,
        detector: stats::Detector,
    ) -> Option<stats::Detection> {
        change::error_limit_detector(&rate_counts_from_wit(periods), limit, detector_from_wit(detector))
            .map(detection_to_wit)
    }
}

fn detector_from_wit(d: stats::Detector) -> change::Detector {
    change::Detector { alpha: d.alpha, horizon: d.horizon, from_first_traffic: d.from_first_traffic }
}

fn detection_to_wit(d: change::Detection) -> stats::Detection {
    stats::Detection {
        statistic: d.statistic,
        max_statistic: d.max_statistic,
        alarm: d.alarm,
        onset: u32::try_from(d.onset).unwrap_or(u32::MAX),
        estimate: d.estimate,
        observations: d.observations,
    }
}

super::since_v0_1_0::bindings!();
super::since_v0_2_0::conversions!();

impl Bound {
    /// The latency thresholds the policy wants slow requests counted above, in a fresh instance.
    pub(crate) fn latency_thresholds(
        &self,
        store: &mut Store<Sandbox>,
        request: &ThresholdRequest,
    ) -> wasmtime::Result<Result<Vec<u32>, String>> {
        let instance = self.0.instantiate(&mut *store)?;
        let input = types::ThresholdRequest {
            guard: request.guard.clone(),
            platform: platform_to_wit(request.platform),
            known_good: request.known_good.as_ref().map(history_to_wit),
            params: params_to_wit(&request.params),
        };
        instance.ripcord_policy_evaluator().call_latency_thresholds(&mut *store, &input)
    }
}

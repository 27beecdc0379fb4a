//! Bindings for contract `ripcord:policy@0.1.0` (`wit/since_v0.1.0`, frozen) and the conversions between its
//! WIT types and the host's plain data. A new contract version gets its own module like this one; the host types
//! follow the newest version.

use super::sandbox::{LogLevel, Sandbox};
use crate::evaluation::{self as host_eval, Evaluation};
use crate::policy_info::{ParamSpec, PolicyInfo};
use crate::verdict::{Check, PolicyReport, Verdict};
use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

wasmtime::component::bindgen!({
    path: "../../wit/since_v0.1.0",
    world: "policy",
});

use self::ripcord::policy::{host, stats, types};

impl types::Host for Sandbox {}

impl host::Host for Sandbox {
    fn log(&mut self, level: host::LogLevel, message: String) {
        let level = match level {
            host::LogLevel::Trace => LogLevel::Trace,
            host::LogLevel::Debug => LogLevel::Debug,
            host::LogLevel::Info => LogLevel::Info,
            host::LogLevel::Warn => LogLevel::Warn,
            host::LogLevel::Error => LogLevel::Error,
        };
        Sandbox::log(self, level, &message);
    }
}

impl stats::Host for Sandbox {
    fn percentile(&mut self, samples: Vec<f64>, p: f64) -> Option<f64> {
        crate::stats::percentile(&samples, p)
    }

    fn summarize(&mut self, samples: Vec<f64>) -> Option<stats::Summary> {
        crate::stats::summarize(&samples).map(|s| stats::Summary {
            count: u32::try_from(s.count).unwrap_or(u32::MAX),
            mean: s.mean,
            stddev: s.stddev,
        })
    }

    fn mann_whitney_u(
        &mut self,
        baseline: Vec<f64>,
        candidate: Vec<f64>,
        alternative: stats::Alternative,
    ) -> Option<stats::MannWhitney> {
        let alternative = match alternative {
            stats::Alternative::TwoSided => crate::stats::Alternative::TwoSided,
            stats::Alternative::Less => crate::stats::Alternative::Less,
            stats::Alternative::Greater => crate::stats::Alternative::Greater,
        };
        crate::stats::mann_whitney_u(&baseline, &candidate, alternative).map(|m| stats::MannWhitney {
            u: m.u,
            p_value: m.p_value,
            effect_size: m.effect_size,
            shift: m.shift,
        })
    }

    fn burn_rate(&mut self, bad: f64, total: f64, slo_target: f64) -> Option<f64> {
        crate::stats::burn_rate(bad, total, slo_target)
    }

    fn sample_guard(&mut self, counts: Vec<u64>, minimum: u64) -> Option<String> {
        crate::stats::sample_guard(&counts, minimum)
    }
}

/// Adds this version's host interfaces to the linker.
pub(crate) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    Policy::add_to_linker::<Sandbox, HasSelf<Sandbox>>(linker, |sandbox| sandbox)
}

/// A plugin pre-linked against this version.
pub(crate) struct Bound(PolicyPre<Sandbox>);

impl Bound {
    pub(crate) fn new(pre: InstancePre<Sandbox>) -> wasmtime::Result<Self> {
        PolicyPre::new(pre).map(Self)
    }

    pub(crate) fn describe(&self, store: &mut Store<Sandbox>) -> wasmtime::Result<PolicyInfo> {
        let instance = self.0.instantiate(&mut *store)?;
        let info = instance.ripcord_policy_evaluator().call_describe(&mut *store)?;
        Ok(PolicyInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            metrics: info.metrics,
            parameters: info
                .parameters
                .into_iter()
                .map(|p| ParamSpec { name: p.name, description: p.description, default: param_from_wit(p.default) })
                .collect(),
        })
    }

    pub(crate) fn evaluate(
        &self,
        store: &mut Store<Sandbox>,
        evaluation: &Evaluation,
    ) -> wasmtime::Result<Result<PolicyReport, String>> {
        let instance = self.0.instantiate(&mut *store)?;
        let input = evaluation_to_wit(evaluation);
        let output = instance.ripcord_policy_evaluator().call_evaluate(&mut *store, &input)?;
        Ok(output.map(report_from_wit))
    }
}

fn evaluation_to_wit(e: &Evaluation) -> types::Evaluation {
    types::Evaluation {
        guard: e.guard.clone(),
        platform: match e.platform {
            host_eval::Platform::AwsLambda => types::Platform::AwsLambda,
            host_eval::Platform::CloudRun => types::Platform::CloudRun,
        },
        now: e.now,
        deployed_at: e.deployed_at,
        windows: e.windows.iter().map(|w| types::Window { start: w.start, end: w.end }).collect(),
        baseline: e.baseline.as_ref().map(revision_to_wit),
        candidate: revision_to_wit(&e.candidate),
        params: e
            .params
            .iter()
            .map(|(name, value)| types::Param { name: name.clone(), value: param_to_wit(value) })
            .collect(),
    }
}

fn revision_to_wit(r: &host_eval::Revision) -> types::Revision {
    types::Revision {
        id: r.id.clone(),
        traffic_share: r.traffic_share,
        metrics: r
            .metrics
            .iter()
            .map(|m| types::MetricSeries {
                name: m.name.clone(),
                kind: match m.kind {
                    host_eval::MetricKind::Counter => types::MetricKind::Counter,
                    host_eval::MetricKind::Gauge => types::MetricKind::Gauge,
                    host_eval::MetricKind::Distribution => types::MetricKind::Distribution,
                },
                points: m.points.iter().map(|p| types::Point { at: p.at, window: p.window, value: p.value }).collect(),
            })
            .collect(),
    }
}

fn param_to_wit(value: &host_eval::ParamValue) -> types::ParamValue {
    match value {
        host_eval::ParamValue::Boolean(v) => types::ParamValue::Boolean(*v),
        host_eval::ParamValue::Integer(v) => types::ParamValue::Integer(*v),
        host_eval::ParamValue::Float(v) => types::ParamValue::Float(*v),
        host_eval::ParamValue::Text(v) => types::ParamValue::Text(v.clone()),
    }
}

fn param_from_wit(value: types::ParamValue) -> host_eval::ParamValue {
    match value {
        types::ParamValue::Boolean(v) => host_eval::ParamValue::Boolean(v),
        types::ParamValue::Integer(v) => host_eval::ParamValue::Integer(v),
        types::ParamValue::Float(v) => host_eval::ParamValue::Float(v),
        types::ParamValue::Text(v) => host_eval::ParamValue::Text(v),
    }
}

fn report_from_wit(report: types::Report) -> PolicyReport {
    PolicyReport {
        verdict: match report.verdict {
            types::Verdict::Promote => Verdict::Promote,
            types::Verdict::Hold => Verdict::Hold,
            types::Verdict::Rollback => Verdict::Rollback,
            types::Verdict::Inconclusive => Verdict::Inconclusive,
        },
        reason: report.reason,
        checks: report
            .checks
            .into_iter()
            .map(|c| Check { name: c.name, observed: c.observed, threshold: c.threshold, passed: c.passed })
            .collect(),
        findings: Vec::new(),
    }
}

//! What every contract version since 0.1.0 shares, written once: the `host` interface, the `stats` functions
//! 0.1.0 defined, the conversions of the types 0.1.0 defined and later versions kept (revisions, parameters,
//! verdicts, checks, policy info), and the pre-linked plugin. `bindgen!` generates separate Rust types for each
//! version, so the shared code is a set of macros expanded inside each version's binding module (`v0_1_0.rs`,
//! `v0_2_0.rs`, `v0_3_0.rs`), where `host`, `stats`, `types`, `Policy` and `PolicyPre` name that version's bindings. A version
//! that changes one of these types writes its own conversion instead of expanding the macro.

/// `impl host::Host` (logging into the sandbox's bounded capture) and `impl types::Host`.
macro_rules! host_interfaces {
    () => {
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
    };
}

/// The 0.1.0 `stats` functions, as methods: expanded inside a version's `impl stats::Host for Sandbox`.
macro_rules! stats_functions {
    () => {
        fn percentile(&mut self, samples: Vec<f64>, p: f64) -> Option<f64> {
            crate::plugin::stats::percentile(&samples, p)
        }

        fn summarize(&mut self, samples: Vec<f64>) -> Option<stats::Summary> {
            crate::plugin::stats::summarize(&samples).map(|s| stats::Summary {
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
                stats::Alternative::TwoSided => crate::plugin::stats::Alternative::TwoSided,
                stats::Alternative::Less => crate::plugin::stats::Alternative::Less,
                stats::Alternative::Greater => crate::plugin::stats::Alternative::Greater,
            };
            crate::plugin::stats::mann_whitney_u(&baseline, &candidate, alternative).map(|m| stats::MannWhitney {
                u: m.u,
                p_value: m.p_value,
                effect_size: m.effect_size,
                shift: m.shift,
            })
        }

        fn burn_rate(&mut self, bad: f64, total: f64, slo_target: f64) -> Option<f64> {
            crate::plugin::stats::burn_rate(bad, total, slo_target)
        }

        fn sample_guard(&mut self, counts: Vec<u64>, minimum: u64) -> Option<String> {
            crate::plugin::stats::sample_guard(&counts, minimum)
        }
    };
}

/// `add_to_linker` and `Bound` (a plugin pre-linked against the version: `describe` and `evaluate`), using the
/// version's own `evaluation_to_wit` and `report_from_wit`; and the conversions of the types 0.1.0 defined.
macro_rules! bindings {
    () => {
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
                        .map(|p| ParamSpec {
                            name: p.name,
                            description: p.description,
                            default: param_from_wit(p.default),
                        })
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

        fn platform_to_wit(platform: host_eval::Platform) -> types::Platform {
            match platform {
                host_eval::Platform::AwsLambda => types::Platform::AwsLambda,
                host_eval::Platform::CloudRun => types::Platform::CloudRun,
            }
        }

        fn params_to_wit(params: &host_eval::Params) -> Vec<types::Param> {
            params.iter().map(|(name, value)| types::Param { name: name.clone(), value: param_to_wit(value) }).collect()
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
                        points: m
                            .points
                            .iter()
                            .map(|p| types::Point { at: p.at, window: p.window, value: p.value })
                            .collect(),
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

        /// A report's verdict, reason and checks (what 0.1.0 defined); findings are the version's own.
        fn report_basics_from_wit(verdict: types::Verdict, reason: String, checks: Vec<types::Check>) -> PolicyReport {
            PolicyReport {
                verdict: match verdict {
                    types::Verdict::Promote => Verdict::Promote,
                    types::Verdict::Hold => Verdict::Hold,
                    types::Verdict::Rollback => Verdict::Rollback,
                    types::Verdict::Inconclusive => Verdict::Inconclusive,
                },
                reason,
                checks: checks
                    .into_iter()
                    .map(|c| Check { name: c.name, observed: c.observed, threshold: c.threshold, passed: c.passed })
                    .collect(),
                findings: Vec::new(),
            }
        }
    };
}

pub(super) use {bindings, host_interfaces, stats_functions};

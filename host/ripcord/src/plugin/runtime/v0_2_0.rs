//! Bindings for contract `ripcord:policy@0.2.0` (`wit/since_v0.2.0`, frozen) and the conversions between its WIT
//! types and the host's plain data: 0.1.0 plus the sequential tests in `stats`, the known good's history in the
//! evaluation and findings in the report. What 0.1.0 defined and this version kept is written once, in
//! `since_v0_1_0.rs`; what this version added and later ones kept, in `since_v0_2_0.rs`.

use super::sandbox::{LogLevel, Sandbox};
use crate::model::evaluation::{self as host_eval, Evaluation};
use crate::model::policy_info::{ParamSpec, PolicyInfo};
use crate::model::verdict::{Check, Finding, PolicyReport, Verdict};
use crate::plugin::stats::sequential as seq;
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
    super::since_v0_2_0::sequential_functions!();
}

super::since_v0_1_0::bindings!();
super::since_v0_2_0::conversions!();

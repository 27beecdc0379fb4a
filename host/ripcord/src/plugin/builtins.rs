//! The built-in policies: components compiled from `plugins/builtin/` by the build script and embedded in the
//! binary, loaded as `builtin:NAME` exactly like a user's `.wasm`.

struct Builtin {
    name: &'static str,
    wasm: &'static [u8],
}

const BUILTINS: [Builtin; 3] = [
    Builtin { name: "error-rate", wasm: include_bytes!(concat!(env!("RIPCORD_GUEST_DIR"), "/error_rate.wasm")) },
    Builtin { name: "latency", wasm: include_bytes!(concat!(env!("RIPCORD_GUEST_DIR"), "/latency.wasm")) },
    Builtin { name: "slo-burn", wasm: include_bytes!(concat!(env!("RIPCORD_GUEST_DIR"), "/slo_burn.wasm")) },
];

/// The component of built-in policy `name`.
pub fn find(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|b| b.name == name).map(|b| b.wasm)
}

/// Names of all built-in policies.
pub fn names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.name).collect()
}

//! Policies that fail while they are being *loaded* — their `describe` loops past the deadline, panics, or their
//! memory starts at 1 GiB, past any cap (`huge-memory/build.rs` links it so) — so the host's tests can prove that
//! one guard's broken policy leaves it in error and every other guard served. One source, three packages: the
//! package's name picks the failure (a `describe` has no input to choose by). Never ship them.

use ripcord_policy::prelude::*;
use std::hint::black_box;

/// Which failure this package is.
const FAILURE: &str = env!("CARGO_PKG_NAME");

struct FailsToLoad;

impl Policy for FailsToLoad {
    fn describe() -> PolicyInfo {
        match black_box(FAILURE) {
            "hostile-describe-loop" => loop {
                black_box(0u64);
            },
            "hostile-describe-panic" => panic!("hostile describe panics on purpose"),
            _ => PolicyInfo::new("huge-memory", env!("CARGO_PKG_VERSION"), "Its memory starts at 1 GiB."),
        }
    }

    fn evaluate(_: Evaluation) -> Result<Report, String> {
        Ok(Report::promote("never reached: describe fails first"))
    }
}

ripcord_policy::export_policy!(FailsToLoad);

//! The cycle: the [`controller`] reads every guard's deployment and metrics in batches (observe), and hands each
//! guard to its [`guard`] cycle, which asks the policies (judge), records the decision (record) and acts (act). The
//! last stage: it depends on every other, and none depends on it.

pub mod controller;
mod guard;

#[cfg(test)]
mod tests;

pub use controller::Controller;

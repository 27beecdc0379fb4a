//! Judging: the guards' policies, loaded, checked against their parameters and asked on an evaluation
//! ([`policies`]), and the pure rules that turn their verdicts into one decision and an action ([`decision`]).

pub mod decision;
pub mod policies;

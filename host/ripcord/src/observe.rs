//! Observing a deployment, after the platform clients ([`crate::provider`]) have read it: the evaluation windows
//! and the evaluation a policy is asked ([`inputs`]), and what this process remembers of the deployments it read so
//! a fleet's reads grow with what changed ([`deployment_cache`]).

pub mod deployment_cache;
pub mod inputs;

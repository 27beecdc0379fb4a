//! What a policy says about itself (`describe`): identity, needed metrics and parameters with defaults.

use crate::model::evaluation::ParamValue;
use serde::Serialize;

/// A parameter a policy accepts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSpec {
    pub name: String,
    pub description: String,
    pub default: ParamValue,
}

/// A policy's self-description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub metrics: Vec<String>,
    pub parameters: Vec<ParamSpec>,
}

//! The simulator's wire APIs as the official SDK clients call them: every answer must be accepted and decoded,
//! errors must come out as the SDKs' typed errors. One test binary, a module per cloud.

mod aws;
mod gcp;

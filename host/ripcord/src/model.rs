//! The plain data every stage shares, and the small utilities under it: what a policy is asked ([`evaluation`]) and
//! answers ([`verdict`], [`policy_info`]), the evaluation JSON format plugin authors write ([`fixture`]), the clock a
//! cycle takes its time from ([`clock`]), time and text formatting, bounded concurrency. It depends on nothing else
//! of ripcord, so every stage may depend on it.

pub mod clock;
pub mod concurrency;
pub mod evaluation;
pub mod fixture;
pub mod policy_info;
pub mod text;
pub mod time;
pub mod verdict;

//! Acting on a decision, one guard at a time, through the context every step shares ([`context`]: the services of
//! the controller, the guard, its platform client, its deployment as read, the cycle's time): the rollback state
//! machine (prewarm, pin, verify: [`rollback`]), the capacity it adds and releases ([`capacity`]), closing what a
//! dead process left open ([`recovery`]), a person's pull ([`pull`]) and the approval step ([`approval`]). Every
//! change is written to the audit log before (intent) and after (result).

pub(crate) mod approval;
pub mod capacity;
pub(crate) mod context;
pub(crate) mod pull;
pub(crate) mod recovery;
pub(crate) mod rollback;

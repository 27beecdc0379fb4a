//! What ripcord writes down and tells: the append-only audit log ([`audit`]: intent before a change, result after,
//! a decision every cycle), the webhook it notifies ([`notify`], plain messages), the HTML report drawn from the log
//! ([`report`]), what a guard's cycle did ([`effect`]) and ripcord's own metrics of it ([`telemetry`]). The acting
//! stage writes its intents and results here before and after every change.

pub mod audit;
pub mod effect;
pub mod notify;
pub mod report;
pub mod telemetry;

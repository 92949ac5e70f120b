//! event-log: a durable, replicated, tamper-evident log of state transitions.
pub use event_log_core::*;

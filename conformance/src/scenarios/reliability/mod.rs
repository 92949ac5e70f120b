//! Scenarios for the defects a review found: no input, fault or peer may brick,
//! stall, split or silently lose a log, on any store.

mod limits;

pub use limits::{config_validated, over_limits_refused};

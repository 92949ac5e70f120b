//! Scenarios for the defects a review found: no input, fault or peer may brick,
//! stall, split or silently lose a log, on any store.

mod excluded;
mod limits;

pub use excluded::excluded_sled_refuses_appends;
pub use limits::{config_validated, over_limits_refused};

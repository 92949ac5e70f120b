//! The conformance suite every [`OpStore`] runs. (Scenarios are being written.)
#![warn(missing_docs)]

pub mod harness;
pub use harness::StoreHarness;
pub use event_log_core::OpStore;

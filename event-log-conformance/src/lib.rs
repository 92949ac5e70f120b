//! The conformance suite every [`OpStore`] runs: MemStore, SQLite, redb, PostgreSQL,
//! and yours.
//!
//! # Run the suite against your own store
//!
//! ```ignore
//! // tests/conformance.rs of your crate; add `event-log-conformance` as a dev-dependency.
//! struct MyHarness;
//! #[async_trait::async_trait]
//! impl event_log_conformance::StoreHarness for MyHarness { /* create() and open() */ }
//! event_log_conformance::store_tests!(MyHarness);
//! ```
//!
//! Or, without a type of your own, an [`FnHarness`] of a create and an open function
//! (for a store in one file, [`file::harness`] makes one around a temp dir):
//!
//! ```ignore
//! fn harness() -> FnHarness<TempDir, PathBuf, MyStore> {
//!     event_log_conformance::file::harness("events.db", MyStore::open)
//! }
//! event_log_conformance::store_tests!(harness());
//! ```
//!
//! That emits one `#[test]` per scenario, so a failure names its scenario and reads
//! `[scenario] what was expected, what was found`, with proptest's minimal input.
//! Proptest case counts default to values that keep one backend's suite well under a
//! minute on two cores; set `PROPTEST_CASES` for deeper runs.
#![warn(missing_docs)]

pub mod assert;
pub mod failure;
pub mod fault;
pub mod file;
pub mod fixture;
mod fn_harness;
pub mod harness;
pub mod producers;
pub mod read;
pub mod scenarios;

pub use event_log_core::OpStore;
pub use failure::Failure;
pub use fn_harness::FnHarness;
pub use harness::{Damage, StoreHarness};

/// Runs one scenario on a fresh two-worker tokio runtime.
pub fn run<H: StoreHarness>(
    harness: &H,
    scenario: fn(&H, &tokio::runtime::Runtime) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure {
            scenario: "runtime",
            detail: format!("cannot build a tokio runtime: {e}"),
        })?;
    scenario(harness, &rt)
}

/// Emits one `#[test]` per scenario for the harness built by `$harness`.
///
/// The list of scenarios lives here only: a scenario added to it runs in every
/// backend that calls this macro, with no edit there.
#[macro_export]
macro_rules! store_tests {
    ($harness:expr) => {
        $crate::__conformance_tests!(
            $harness;
            round_trip,
            idempotent_append,
            conflict_rejected_atomically,
            restart_programs,
            concurrent_appenders,
            multi_sled_convergence,
            bad_input_rejected,
            pagination,
            meta_round_trip,
            ordered_append,
            bus_lag,
            over_limits_refused,
            config_validated,
            excluded_sled_refuses_appends,
            damaged_rows_quarantined,
            own_chain_damage_refuses_open,
            follower_catches_up_any_lag,
            followers_see_equivocation,
            late_rows_replayed,
            non_members_refused,
            buffer_flood_is_contained,
            own_late_write_resolved,
            in_doubt_never_dropped,
            idempotent_retries,
            dropped_append_withdrawn,
            rolled_back_store_never_resigns,
            truncated_tail_detected,
            concurrent_store_appenders,
            group_conflict_fails_alone,
            reads_match_the_reference,
            evidence_matches_the_reference,
            author_ops_match_the_reference,
            timeline_matches_the_reference,
            story_ops_match_the_reference,
            keyed_matches_the_reference,
            index_columns_checked,
            damaged_row_is_corrupt,
            odd_payloads_round_trip,
            close_then_reopen_keeps_everything
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($h:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let harness = $h;
                if let Err(failure) = $crate::run(&harness, $crate::scenarios::$name) {
                    panic!("{failure}");
                }
            }
        )*
    };
}

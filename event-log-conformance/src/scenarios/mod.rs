//! The scenarios. Each is a function `fn(&H, &Runtime) -> Result<(), Failure>`, named
//! for the behaviour it checks, with a one-line doc of the expected behaviour.
//! [`crate::store_tests!`] emits one `#[test]` per scenario it lists.

mod bad_input;
mod bus_lag;
mod concurrency;
mod convergence;
mod corrupt;
mod group;
mod indexed;
mod lifecycle;
mod ordered;
mod pagination;
mod reference;
mod reliability;
mod restart;
mod store_level;

pub use bad_input::bad_input_rejected;
pub use bus_lag::bus_lag;
pub use concurrency::concurrent_appenders;
pub use convergence::multi_sled_convergence;
pub use corrupt::damaged_row_is_corrupt;
pub use group::{
    concurrent_appends, concurrent_store_appenders, conflicting_group, group_conflict_fails_alone,
};
pub use indexed::{
    author_ops_match_the_reference, index_columns_checked, keyed_matches_the_reference,
    story_ops_match_the_reference, timeline_matches_the_reference,
};
pub use lifecycle::{close_then_reopen_keeps_everything, odd_payloads_round_trip};
pub use ordered::ordered_append;
pub use pagination::pagination;
pub use reference::{evidence_matches_the_reference, reads_match_the_reference};
pub use reliability::*;
pub use restart::restart_programs;
pub use store_level::{
    conflict_rejected_atomically, idempotent_append, meta_round_trip, round_trip,
};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use crate::failure::{Check, Failure};

/// Proptest cases for a scenario: `PROPTEST_CASES` if set, else the scenario's
/// default (chosen to keep one backend's whole suite well under a minute in CI).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs a property over generated inputs; a failure carries proptest's shrunk input.
pub fn prop<S: Strategy>(
    scenario: &'static str,
    default_cases: u32,
    strategy: S,
    case: impl Fn(S::Value) -> Check,
) -> Result<(), Failure>
where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases: cases(default_cases),
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&strategy, |v| case(v).map_err(TestCaseError::fail))
        .map_err(|e| Failure {
            scenario,
            detail: match e {
                TestError::Fail(reason, value) => {
                    format!("{reason}\n  minimal failing input: {value:?}")
                }
                TestError::Abort(reason) => format!("aborted: {reason}"),
            },
        })
}

/// Runs a step that is not property-based.
pub fn once(scenario: &'static str, r: Check) -> Result<(), Failure> {
    r.map_err(|detail| Failure { scenario, detail })
}

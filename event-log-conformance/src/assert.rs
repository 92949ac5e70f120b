//! Assertions the backends' own tests share, so each states only what it checks.
//!
//! These panic with the error's text when they fail, as `assert!` does: they are
//! for tests.

use event_log_core::{StoreError, StoreErrorKind};

/// Asserts that `result` is an error of `kind` whose text contains each of
/// `needles`, and returns that text for further checks.
#[track_caller]
pub fn fails_with<T>(
    result: Result<T, StoreError>,
    kind: StoreErrorKind,
    needles: &[&str],
) -> String {
    match result {
        Ok(_) => panic!("expected a {kind:?} error, the call succeeded"),
        Err(err) => error_is(&err, kind, needles),
    }
}

/// Asserts that `err` is of `kind` and its text contains each of `needles`, and
/// returns that text for further checks.
#[track_caller]
pub fn error_is(err: &StoreError, kind: StoreErrorKind, needles: &[&str]) -> String {
    assert_eq!(err.kind(), kind, "{err}");
    let text = err.to_string();
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
    text
}

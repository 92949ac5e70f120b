//! The exit codes of `evlog`, and the classification of a command's error into one.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok (also: the reader of stdout went away, as in `evlog show … \| head -1`) |
//! | 1 | any other failure |
//! | 2 | usage error (bad or missing arguments; clap's own code) |
//! | 3 | store unreachable or missing: not found, unavailable, bad or unknown URL |
//! | 4 | damage found: `verify` found damaged rows or missing acknowledged ops |
//! | 5 | refused ops: `sync` sent ops the target refused; `import` read ops it refused or could not place |
//! | 6 | budget missed: `bench` measured a figure outside its budget |
//!
//! Errors are classified by their types ([`event_log::OpenError`],
//! [`event_log::Error`], [`event_log::StoreError`]), never by their messages.

use std::process::ExitCode;

use event_log::{OpenError, StoreError};

/// What a command returns: an exit code, or an error printed on one line.
pub type CmdResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

/// Any other failure. (2, a usage error, is clap's own: it exits with it itself.)
pub const FAILURE: u8 = 1;
/// The store is unreachable or missing, or its URL is bad.
pub const STORE: u8 = 3;
/// `verify` found damage.
pub const DAMAGE: u8 = 4;
/// `sync` sent ops the target refused; `import` read ops it refused or could not place.
pub const REFUSED: u8 = 5;
/// `bench` missed a budget.
pub const BUDGET: u8 = 6;

/// The table of exit codes, as shown after `evlog --help`.
pub const HELP: &str = "\
Exit codes:
  0  ok (also when the reader of the output goes away, as in `evlog show | head -1`)
  1  any other failure
  2  usage error (bad or missing arguments)
  3  store unreachable or missing: not found, unavailable, bad or unknown URL
  4  damage found: verify found damaged rows or missing acknowledged ops
  5  refused ops: sync sent ops the target refused; import read ops it refused
     or could not place
  6  budget missed: bench measured a figure outside its budget";

/// `code` as an [`ExitCode`].
pub fn code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// The exit code for a command's error: [`STORE`] if it, or an error it was caused
/// by, says that the store cannot be reached or found or that its URL is bad;
/// [`FAILURE`] otherwise.
pub fn classify(e: &(dyn std::error::Error + 'static)) -> u8 {
    let mut next = Some(e);
    while let Some(err) = next {
        if store_unreachable(err) {
            return STORE;
        }
        next = err.source();
    }
    FAILURE
}

/// Whether this one error (not its causes) says the store is unreachable or missing.
fn store_unreachable(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(e) = e.downcast_ref::<OpenError>() {
        return match e {
            OpenError::UnknownScheme { .. }
            | OpenError::FeatureDisabled { .. }
            | OpenError::BadUrl { .. } => true,
            OpenError::Store(s) => store_error_unreachable(s),
            OpenError::Log(l) => log_error_unreachable(l),
            _ => false,
        };
    }
    if let Some(e) = e.downcast_ref::<event_log::Error>() {
        return log_error_unreachable(e);
    }
    if let Some(e) = e.downcast_ref::<StoreError>() {
        return store_error_unreachable(e);
    }
    false
}

fn log_error_unreachable(e: &event_log::Error) -> bool {
    match e {
        event_log::Error::Store(s) => store_error_unreachable(s),
        _ => false,
    }
}

fn store_error_unreachable(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::NotFound { .. } | StoreError::Unavailable { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_store_errors_are_3_and_others_1() {
        let not_found: Box<dyn std::error::Error + Send + Sync> =
            Box::new(OpenError::Store(StoreError::NotFound { what: "x".into() }));
        assert_eq!(classify(not_found.as_ref()), STORE);
        let log = event_log::Error::Store(StoreError::Unavailable {
            message: "down".into(),
            source: None,
        });
        assert_eq!(classify(&OpenError::Log(log)), STORE);
        let corrupt = StoreError::Corrupt {
            location: "1".into(),
            detail: "bad".into(),
        };
        assert_eq!(classify(&corrupt), FAILURE);
        assert_eq!(classify(&event_log::Error::Cancelled), FAILURE);
        let io = std::io::Error::other("x");
        assert_eq!(classify(&io), FAILURE);
    }
}

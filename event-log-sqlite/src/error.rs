//! Mapping SQLite failures onto [`StoreError`].
//!
//! One place decides which SQLite result codes mean "try again later"
//! (`Unavailable`), "the file is damaged" (`Corrupt`) and "something else"
//! (`Backend`), so every call site reports failures alike and with context.

use event_log_core::StoreError;
use rusqlite::ErrorCode;

/// Maps a rusqlite error met while doing `what` (a short phrase naming the action
/// and, for file-level failures, the path).
pub(crate) fn sqlite(what: &str, e: rusqlite::Error) -> StoreError {
    let code = match &e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::unavailable(format!("{what}: the database is busy (locked)"), e)
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            StoreError::unavailable(format!("{what}: cannot open the database file"), e)
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::corrupt(what, format!("not a valid SQLite database: {e}"))
        }
        _ => StoreError::backend(what, e),
    }
}

/// The error for a call made after [`event_log_core::OpStore::close`].
pub(crate) fn closed() -> StoreError {
    StoreError::Unavailable {
        message: "the SQLite store is closed".into(),
        source: None,
    }
}

/// A mapper for `map_err` that names the action: `.map_err(error::at("count ops"))`.
pub(crate) fn at(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| sqlite(what, e)
}

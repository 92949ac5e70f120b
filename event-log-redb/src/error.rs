//! How redb's errors become [`StoreError`]s: each carries what was being done
//! (`context`) and, for opens, the path.

use std::fmt::Display;
use std::path::Path;

use event_log_core::StoreError;

/// A redb failure while doing `context` on an open database.
pub(crate) fn storage(context: impl Display, err: impl Into<redb::Error>) -> StoreError {
    let err: redb::Error = err.into();
    match err {
        redb::Error::Corrupted(detail) => StoreError::corrupt(context.to_string(), detail),
        redb::Error::DatabaseClosed | redb::Error::PreviousIo => {
            StoreError::unavailable(format!("{context}: database unusable"), err)
        }
        redb::Error::ValueTooLarge(_)
        | redb::Error::TableTypeMismatch { .. }
        | redb::Error::TableIsMultimap(_)
        | redb::Error::TableIsNotMultimap(_)
        | redb::Error::TypeDefinitionChanged { .. } => StoreError::Invalid {
            message: format!("{context}: {err}"),
        },
        other => StoreError::backend(format!("{context}: redb error"), other),
    }
}

/// A redb failure while opening the file at `path`.
pub(crate) fn open(path: &Path, err: redb::DatabaseError) -> StoreError {
    let path = path.display();
    match err {
        redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => {
            StoreError::unavailable(
                format!(
                    "{path} is locked by the process that has it open (its sled, another reader, or another store in this process): a redb file is open in one process at a time"
                ),
                err,
            )
        }
        redb::DatabaseError::RepairAborted => StoreError::Unavailable {
            message: format!(
                "{path} was not closed cleanly and needs a repair, which a read-only open does not make: open it writable once to repair it"
            ),
            source: Some(Box::new(err)),
        },
        redb::DatabaseError::UpgradeRequired(v) => StoreError::Invalid {
            message: format!(
                "{path} uses redb file format {v}, which this build cannot open without an upgrade"
            ),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            StoreError::Invalid {
                message: format!("{path} is not a redb database ({io})"),
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
            StoreError::unavailable(format!("cannot open {path}"), io)
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            StoreError::corrupt(path.to_string(), detail)
        }
        other => StoreError::backend(format!("cannot open {path}"), other),
    }
}

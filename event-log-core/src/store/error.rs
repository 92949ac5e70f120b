//! Why a store operation failed: [`StoreError`] and its [`StoreErrorKind`]; and
//! [`ConfigError`], a configuration value that cannot be used (of a store's config or
//! the log's).

use bft_json_crdt::{AuthorId, OpId};

/// Boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The kind of a [`StoreError`], for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// A different op holds the `(author, seq)`.
    Conflict,
    /// Stored data does not decode or does not match its id.
    Corrupt,
    /// The store cannot be reached or opened (server down, file locked, …); retry later.
    Unavailable,
    /// The caller asked for something the store cannot do (bad config or argument).
    Invalid,
    /// An ordered append found the op it continues missing; nothing was written.
    MissingPredecessor,
    /// The store does not exist (and the caller asked not to create it).
    NotFound,
    /// Any other backend failure.
    Backend,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A different op already holds `(author, seq)` as the primary op. The whole
    /// append was refused and nothing was written. Two processes signing with one
    /// key produce this.
    #[error(
        "conflict: sled {author} seq {seq} is already held by op {existing}; refusing op {incoming}"
    )]
    Conflict {
        /// The author.
        author: AuthorId,
        /// The taken seq.
        seq: u64,
        /// The op that holds it.
        existing: OpId,
        /// The op that was refused.
        incoming: OpId,
    },
    /// Stored data is damaged.
    #[error("corrupt store data at {location}: {detail}")]
    Corrupt {
        /// Where: a row id, position or op id.
        location: String,
        /// What is wrong.
        detail: String,
    },
    /// The store cannot be reached or opened.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What could not be reached (never a password).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// A bad configuration or argument.
    #[error("invalid store request: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// A configuration value the store cannot work with (found when it opens, before
    /// anything is touched); names the field. Its kind is [`StoreErrorKind::Invalid`].
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// [`OpStore::append_after`](super::OpStore::append_after) found the op it continues not stored when it took
    /// effect (the earlier append failed). Nothing was written.
    #[error("ordered append refused: the op it continues, {after}, is not stored")]
    MissingPredecessor {
        /// The op the refused append continues.
        after: OpId,
    },
    /// The store does not exist, and the caller asked not to create it (reading
    /// tools never create a store): a mistyped path, a missing schema.
    #[error("store not found: {what}")]
    NotFound {
        /// What is missing (a path, a schema; never a password).
        what: String,
    },
    /// Another backend failure.
    #[error("store backend error: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

/// A copy keeps the kind, the fields and the text of the source chain (sources are
/// not `Clone`, so a copy's source is their rendered text). Used to give every caller
/// of a failed group commit the same error.
impl Clone for StoreError {
    fn clone(&self) -> Self {
        fn text(source: &Option<BoxError>) -> Option<BoxError> {
            source.as_ref().map(|s| {
                let mut t = s.to_string();
                let mut next = s.source();
                while let Some(c) = next {
                    t.push_str(": ");
                    t.push_str(&c.to_string());
                    next = c.source();
                }
                t.into()
            })
        }
        match self {
            StoreError::Conflict {
                author,
                seq,
                existing,
                incoming,
            } => StoreError::Conflict {
                author: *author,
                seq: *seq,
                existing: *existing,
                incoming: *incoming,
            },
            StoreError::Corrupt { location, detail } => StoreError::Corrupt {
                location: location.clone(),
                detail: detail.clone(),
            },
            StoreError::Unavailable { message, source } => StoreError::Unavailable {
                message: message.clone(),
                source: text(source),
            },
            StoreError::Invalid { message } => StoreError::Invalid {
                message: message.clone(),
            },
            StoreError::Config(e) => StoreError::Config(e.clone()),
            StoreError::MissingPredecessor { after } => {
                StoreError::MissingPredecessor { after: *after }
            }
            StoreError::NotFound { what } => StoreError::NotFound { what: what.clone() },
            StoreError::Backend { message, source } => StoreError::Backend {
                message: message.clone(),
                source: text(source),
            },
        }
    }
}

impl StoreError {
    /// The kind of this error.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Conflict { .. } => StoreErrorKind::Conflict,
            StoreError::Corrupt { .. } => StoreErrorKind::Corrupt,
            StoreError::Unavailable { .. } => StoreErrorKind::Unavailable,
            StoreError::Invalid { .. } | StoreError::Config(_) => StoreErrorKind::Invalid,
            StoreError::MissingPredecessor { .. } => StoreErrorKind::MissingPredecessor,
            StoreError::NotFound { .. } => StoreErrorKind::NotFound,
            StoreError::Backend { .. } => StoreErrorKind::Backend,
        }
    }

    /// A backend error with a source.
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An unavailable error with a source.
    pub fn unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A corrupt-data error.
    pub fn corrupt(location: impl Into<String>, detail: impl Into<String>) -> Self {
        StoreError::Corrupt {
            location: location.into(),
            detail: detail.into(),
        }
    }
}

/// A configuration value that cannot be used; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: `{field}` {reason}")]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// Refuses a count that must be at least 1 (`0` is never read as 1): the check
    /// every config's `validate` makes of its counts.
    pub fn at_least_one(field: &'static str, value: usize) -> Result<(), ConfigError> {
        if value == 0 {
            return Err(ConfigError {
                field,
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

//! Mapping driver and pool errors onto [`StoreError`] kinds.
//!
//! A lost or refused connection, a server shutting down or refusing connections, a
//! statement the server cancelled (`statement_timeout`), an operation that got no
//! answer within `operation_timeout`, and a pool timeout are `Unavailable` (retry
//! later; appends are idempotent, so retrying the same batch is safe). Everything else
//! the server reports is `Backend`. A TLS handshake that fails on certificates (or a
//! server refusing TLS where it is required) is `Invalid`: retrying cannot help. Messages name the server by its redacted URL,
//! never with a password.

use std::time::Duration;

use deadpool_postgres::PoolError;
use event_log_core::StoreError;
use tokio_postgres::error::SqlState;

/// `e` as a store error; `what` says what was being done, `target` is the redacted URL.
pub(crate) fn from_pg(what: &str, target: &str, e: tokio_postgres::Error) -> StoreError {
    let message = match e.as_db_error() {
        Some(db) => format!("{what} on {target}: {db}"),
        None => format!("{what} on {target}: {e}"),
    };
    if is_tls_refusal(&e) {
        // Not a passing outage: retrying cannot make a certificate trusted, or a server
        // offer TLS. Never a plain-text connection instead.
        return StoreError::Invalid {
            message: format!("{message} (TLS refused or not verified)"),
        };
    }
    if is_connection_problem(&e) {
        StoreError::unavailable(message, e)
    } else {
        StoreError::backend(message, e)
    }
}

/// A pool error as a store error.
pub(crate) fn from_pool(what: &str, target: &str, e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => from_pg(what, target, e),
        PoolError::Timeout(kind) => StoreError::Unavailable {
            message: format!("{what} on {target}: timed out ({kind:?}) waiting for a connection"),
            source: None,
        },
        PoolError::Closed => StoreError::Unavailable {
            message: format!("{what} on {target}: the store was closed"),
            source: None,
        },
        other => StoreError::backend(format!("{what} on {target}"), other),
    }
}

/// An operation that got no answer within `after`: its connection was discarded.
pub(crate) fn timed_out(what: &str, target: &str, after: Duration) -> StoreError {
    StoreError::Unavailable {
        message: format!(
            "{what} on {target}: no answer within {after:?} (operation_timeout); the \
             connection was discarded (an append may or may not have been stored: \
             retrying it is safe)"
        ),
        source: None,
    }
}

/// True for a TLS handshake that failed on the certificates or the protocol (the
/// server's certificate not trusted, for its chain or its name; a client certificate
/// refused; a server that does not offer TLS when it is required), as opposed to a
/// connection lost during the handshake.
pub(crate) fn is_tls_refusal(e: &tokio_postgres::Error) -> bool {
    // tokio-postgres's kind is private; its message is stable.
    if !e.to_string().starts_with("error performing TLS handshake") {
        return false;
    }
    match std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>()) {
        // rustls errors reach the driver wrapped in an I/O error.
        Some(io) => io
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()),
        None => true,
    }
}

/// True for errors that say "the server or the connection is gone", as opposed to
/// "the server refused this request".
pub(crate) fn is_connection_problem(e: &tokio_postgres::Error) -> bool {
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08") // connection exception
            || c.starts_with("53") // insufficient resources (too many connections, …)
            || *code == SqlState::ADMIN_SHUTDOWN // pg_terminate_backend, fast shutdown
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW // starting up / shutting down
            || *code == SqlState::QUERY_CANCELED // statement_timeout, pg_cancel_backend
            || *code == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT;
    }
    // No SQLSTATE: an I/O error, a timeout or a closed connection.
    e.is_closed() || source_is_io(e)
}

fn source_is_io(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// True if `e` is a unique violation (SQLSTATE 23505).
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

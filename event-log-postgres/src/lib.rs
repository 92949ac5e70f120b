//! A PostgreSQL [`OpStore`](event_log_core::OpStore) for event-log.
//! (How it fits the whole — formats, durability, sync — is in the repository's
//! `docs/design.md`.)
//!
//! ```no_run
//! # async fn demo() -> Result<(), event_log_core::StoreError> {
//! use event_log_postgres::{PostgresConfig, PostgresStore};
//! let store = PostgresStore::open(
//!     "postgres://app:secret@127.0.0.1:5432/app",
//!     PostgresConfig::default().with_schema("event_log"),
//! )
//! .await?;
//! let mut wakeups = store.listen().await?;
//! # Ok(()) }
//! ```
//!
//! Same behaviour as `event_log_core::MemStore`, the reference, on a server that many
//! sleds can share. Built on `tokio-postgres` with a `deadpool-postgres` pool.
//!
//! # Schema
//! One schema per store (default `event_log`, created if missing), holding
//! `schema_version`, `ops` and `meta`; migrations run under an advisory lock, so
//! concurrent openers are safe. Payloads stay readable with `psql` (a `text` column). See
//! [`schema`] for the tables.
//!
//! # Durability
//! Every `append` is a single statement, hence a single transaction: `Ok` means
//! committed. With `synchronous_commit = on` (the server default) the commit's WAL is
//! flushed before `Ok` returns, so an acknowledged append survives a crash or power
//! loss of the server. [`PostgresConfig::synchronous_commit`] can relax that per
//! session (`off` trades the last few hundred milliseconds of acknowledged appends on
//! a server crash for throughput; see [`SynchronousCommit`]). If the connection is
//! lost mid-append the call fails with `Unavailable`; the batch may or may not have
//! committed, and retrying the same batch is always safe (appends are idempotent by op
//! id) and never duplicates.
//!
//! # Conflicts
//! A partial unique index holds one primary op per `(author, seq)`; evidence ops are
//! exempt. A batch that puts a different primary op on a taken `(author, seq)` fails
//! as a whole with [`StoreError::Conflict`](event_log_core::StoreError::Conflict)
//! naming both ids, and writes nothing (see `append.rs`).
//!
//! # `load` order
//! Positions come from an identity column, taken in batch order. Concurrent appends
//! can commit out of position order, so each append statement holds the schema's
//! *position fence* (an advisory lock) shared from before it takes a position to its
//! commit, and `load` takes it exclusively for its one statement: when a page is
//! read, every position below it belongs to a finished append, and no row that
//! commits later can have a smaller position than one already read. Paging `load`
//! while others append never skips a row (replay and `verify` rely on it). Appends
//! never wait for each other on the fence, only for a `load` statement in progress.
//!
//! # Indexed reads
//! `author_ops`, `timeline`, `story_ops` and `keyed` each read one range of their own
//! index (`(author, seq, id)`, `(lamport, id)`, `(story, lamport, id)`,
//! `(author, key, seq, id)`), in the index's order and cut by the limit: O(k + log n)
//! for k results. Resume points are row-value bounds of the index range. The
//! `lamport`, `story` and `key` columns are stored as the core hands them (see
//! [`schema`]).
//!
//! # `since`
//! The tailing read pages per author by seq, never by a global serial (which commits
//! can overtake): one query, a skip scan over the distinct authors and an index range
//! per author. Ordered by `(author bytes, seq, id)` and never splitting the ops of one
//! `(author, seq)` across the limit, exactly as `MemStore`.
//!
//! # Notifications
//! Each append with new ops `NOTIFY`s the channel named after the schema with
//! `{"author": hex, "seq": highest new seq}` per author, delivered after commit.
//! [`PostgresStore::listen`] listens on a dedicated connection that reconnects with
//! backoff; after a reconnect (or if the subscriber lags) it says so, and the caller
//! catches up with `since`. Notifications are wake-ups, never the data. See [`notify`].
//! [`spawn_follower`] runs that loop for an `EventLog` sharing the schema with other
//! sleds: see [`follower`].
//!
//! # Timeouts
//! Nothing waits for ever on a server that stopped answering (a half-open
//! connection, a black-holed network). Every operation is bounded client-side by
//! [`PostgresConfig::operation_timeout`] (default 30 s; then `Unavailable`, naming
//! the operation and the server); the connection it used is discarded, never handed
//! to another operation. A schema migration at open, which may take long on a big
//! store, is bounded statement by statement (a statement cut short rolls the whole
//! migration back). Sessions run with a `statement_timeout`, TCP keepalives and
//! `TCP_USER_TIMEOUT` on both ends (so the server too ends the session of a vanished
//! client and frees its locks), and pooled connections are checked before reuse
//! ([`Recycling::Verified`]). An append that timed out may or may not be stored;
//! retrying it stores it once.
//!
//! # Sled writer lock
//! [`OpStore::acquire_sled`](event_log_core::OpStore::acquire_sled) (called by
//! `EventLog::open`) takes a session-level advisory lock per sled on the store's
//! *writer* session, over which every later write of the store goes. A second
//! process writing as the same sled waits (up to
//! [`PostgresConfig::sled_lock_timeout`], then `Unavailable`): in particular a
//! restarted process waits for its killed predecessor's session, and the statement
//! that session may still be running, to end. If the writer session is lost, the
//! next write connects again and takes the locks again, or fails if another session
//! took them meanwhile: nothing is written without the lock.
//!
//! # Read-only
//! With [`PostgresConfig::read_only`] (`mode=ro` in the URL) the store runs no DDL
//! and no migration, its sessions are `default_transaction_read_only`, a missing
//! schema is `NotFound` and a write is refused: for read-only roles and hot standbys.
//!
//! # URL parameters
//! Besides libpq's (passed to `tokio-postgres`), a URL may set this crate's
//! ([`OWN_PARAMS`]), which override [`PostgresConfig`]: `schema=NAME`, `mode=ro|rw`,
//! `operation_timeout=`, `statement_timeout=` (`0` keeps the server's),
//! `sled_lock_timeout=` (durations as `30`, `30s`, `500ms` or `2min`) and
//! `recycle=fast|verified`; and the TLS parameters `sslmode`, `sslrootcert`,
//! `sslcert` and `sslkey` (see "TLS" below). A password (in the user info, even holding `@`, or as
//! `password=`) never appears in a message, a log line or `Debug`.
//!
//! # TLS
//! [`PostgresStore::open`] takes TLS from the URL as libpq does, with rustls (AWS-LC
//! provider) and certificates from PEM files; no other TLS stack or system trust
//! store is involved:
//!
//! - `sslmode=disable`: plain text.
//! - `sslmode=prefer` (the default, as in libpq): TLS if the server offers it, else
//!   plain text; the certificate is not checked unless `sslrootcert` is given (then
//!   as `verify-ca`).
//! - `sslmode=require`: TLS or an error, never plain text; the certificate is not
//!   checked (encryption, no authentication) unless `sslrootcert` is given (then as
//!   `verify-ca`, libpq's rule).
//! - `sslmode=verify-ca`: TLS, and the server's certificate must chain to a CA of
//!   `sslrootcert` (and be within its validity dates); the host name is not checked.
//! - `sslmode=verify-full`: as `verify-ca`, and the certificate must be for the host
//!   of the URL (a DNS name, or an IP address SAN for `127.0.0.1`).
//! - `sslrootcert=PATH`: the trusted CA certificates (PEM). Without it, `verify-ca` and
//!   `verify-full` read libpq's default, `~/.postgresql/root.crt`.
//! - `sslcert=PATH` and `sslkey=PATH` (both or neither): a client certificate chain and
//!   its unencrypted private key (PEM: PKCS#8, PKCS#1 or SEC1).
//!
//! A bad `sslmode` value, a missing or unreadable certificate or key file (named with
//! its parameter, never shown), a server certificate not trusted, and a server that
//! does not offer TLS where it is required are [`StoreError::Invalid`](event_log_core::StoreError::Invalid):
//! retrying cannot help, and nothing falls back to plain text. `allow` and
//! `sslrootcert=system` are not supported. [`PostgresStore::open_with_tls`] takes any
//! `tokio_postgres` TLS connector instead; the connector then decides what it
//! verifies, and the URL may set only `sslmode=disable|prefer|require`.
#![warn(missing_docs)]

mod append;
mod backoff;
mod codec;
mod config;
mod conn;
mod connect;
mod error;
pub mod follower;
mod inner;
pub mod notify;
mod options;
mod params;
mod read;
pub mod schema;
mod settings;
mod sql;
mod store;
mod teardown;
mod tls;
mod url;

pub use config::{DEFAULT_SCHEMA, PostgresConfig, validate_schema_name};
pub use follower::{
    FollowerConfig, FollowerHandle, FollowerStats, spawn_follower, spawn_follower_on,
};
pub use notify::{Notice, Notifications};
pub use options::{Keepalive, Recycling, SynchronousCommit};
pub use params::OWN_PARAMS;
pub use schema::SCHEMA_VERSION;
pub use store::PostgresStore;

//! A PostgreSQL [`OpStore`](event_log_core::OpStore) for event-log.
//!
//! ```no_run
//! # async fn demo() -> Result<(), event_log_core::StoreError> {
//! use storage_postgres::{PostgresConfig, PostgresStore};
//! let store = PostgresStore::open(
//!     "postgres://app:secret@127.0.0.1:5432/app",
//!     PostgresConfig::with_schema("event_log"),
//! )
//! .await?;
//! let mut wakeups = store.subscribe().await?;
//! # Ok(()) }
//! ```
//!
//! Same behaviour as `event_log_core::MemStore`, the reference, on a server that many
//! sleds can share. Built on `tokio-postgres` with a `deadpool-postgres` pool.
//!
//! # Schema
//! One schema per store (default `event_log`, created if missing), holding
//! `schema_version` and `ops`; migrations run under an advisory lock, so concurrent
//! openers are safe. Payloads stay readable with `psql` (a `text` column). See
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
//! can commit out of position order, so a reader paging `load` *while* others append
//! could pass a position that commits later; `load` is for replay by the store's
//! owner, not for tailing. Replay is still causal: an op is appended only once its
//! deps are stored (`EventLog` guarantees it), so each dep was committed, hence took
//! its smaller position, before the op that needs it was even inserted.
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
//! [`PostgresStore::subscribe`] listens on a dedicated connection that reconnects with
//! backoff; after a reconnect (or if the subscriber lags) it says so, and the caller
//! catches up with `since`. Notifications are wake-ups, never the data. See [`notify`].
//! [`spawn_follower`] runs that loop for an `EventLog` sharing the schema with other
//! sleds: see [`follower`].
//!
//! # TLS
//! [`PostgresStore::open`] connects in plain text (`NoTls`).
//! [`PostgresStore::open_with_tls`] takes any `tokio_postgres` TLS connector, so
//! this crate pulls no TLS stack itself.
#![warn(missing_docs)]

mod append;
mod config;
mod connect;
mod error;
pub mod follower;
pub mod notify;
mod read;
pub mod schema;
mod store;
mod teardown;

pub use config::{DEFAULT_SCHEMA, PostgresConfig, SynchronousCommit, validate_schema_name};
pub use follower::{
    FollowerConfig, FollowerHandle, FollowerStats, spawn_follower, spawn_follower_on,
};
pub use notify::{Notice, Subscription};
pub use schema::SCHEMA_VERSION;
pub use store::PostgresStore;

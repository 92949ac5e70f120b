//! An event-log [`OpStore`](event_log_core::OpStore) on embedded SQLite.
//! (How it fits the whole — formats, durability, sync — is in the repository's
//! `docs/design.md`.)
//!
//! Open one with [`SqliteStore::open`] (or [`SqliteStore::open_default`]); everything
//! else is the `OpStore` trait. The file is plain SQLite: `sqlite3 events.db 'select
//! payload from ops'` shows every op's JSON payload.
//!
//! Tools that only read open it with [`SqliteStore::open_read_only`] (or
//! [`SqliteConfig::read_only`]): SQLite `SQLITE_OPEN_READONLY`, no writer thread, no
//! migration; a missing file is `StoreError::NotFound` naming the path, never an
//! empty new database.
//!
//! # On-disk format
//! One table `ops(position, id, author, seq, evidence, payload, bytes, lamport, story,
//! key)` in append order (`lamport`, `story` and `key` are the index columns the core
//! hands over in each `OpRecord`; the store never parses the bytes), a partial
//! unique index on `(author, seq) WHERE evidence = 0` (one primary op per seq;
//! equivocation evidence may share it), an index on `(author, seq, id)` for
//! `since`/`heads`/`author_ops`, a partial index of the evidence ops (for
//! `evidence`), an index on `(lamport, id)` for `timeline`, partial indexes on
//! `(story, lamport, id)` for `story_ops` and `(author, key, seq, id)` for `keyed`, a
//! `meta` table of small values, and a `schema_version` table with forward
//! migrations. A file with a newer schema than this crate knows is refused. See
//! [`SCHEMA_VERSION`]. `seq` and `lamport` are SQLite integers: an op with either
//! above `i64::MAX` is refused with `StoreError::Invalid` (no valid op holds one).
//!
//! # Durability argument
//! - The database runs in WAL mode. A commit appends the transaction's pages to the
//!   WAL with a checksummed commit frame; recovery replays only whole, valid
//!   transactions. So after any crash the file holds a prefix of the committed
//!   transactions and is never corrupt, in every [`Durability`] mode.
//! - With [`Durability::Full`] (the default), `synchronous = FULL` makes SQLite sync
//!   the WAL before `COMMIT` returns (with `fullfsync` on platforms whose `fsync`
//!   does not reach the platter). An append is answered only after its `COMMIT`
//!   returned, so an acknowledged append survives a power loss.
//! - With [`Durability::Normal`], the WAL is synced only at WAL checkpoints: an
//!   acknowledged append survives a process crash (it is in the OS cache) but the
//!   last commits may be lost on an OS crash or power loss.
//! - Each append call is atomic (its own SAVEPOINT) and checks conflicts over its
//!   whole batch before writing, so a refused call writes nothing.
//!
//! # Group commit
//! One writer thread owns the only write connection. It takes every append waiting
//! at that moment (up to [`SqliteConfig::max_group`]) into one `BEGIN IMMEDIATE`
//! transaction, one SAVEPOINT per call, and commits once: one WAL sync serves many
//! concurrent appenders. A call that conflicts fails alone; the others commit. Reads
//! run on a small pool of read connections via `spawn_blocking`; WAL lets them run
//! alongside the writer. A second process may open the same file: SQLite's locks
//! serialise the writers (waiting up to [`SqliteConfig::busy_timeout`]).
#![warn(missing_docs)]

mod config;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod query;
mod read;
mod row;
mod schema;
mod stats;
mod store;
mod writer;

pub use config::{Durability, SqliteConfig};
pub use schema::SCHEMA_VERSION;
pub use stats::WriterStats;
pub use store::SqliteStore;

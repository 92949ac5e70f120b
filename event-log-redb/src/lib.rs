//! An [`OpStore`](event_log_core::OpStore) on [redb], an embedded, crash-safe B-tree
//! store in pure Rust.
//! (How it fits the whole — formats, durability, sync — is in the repository's
//! `docs/design.md`.)
//!
//! ```no_run
//! # async fn demo() -> Result<(), event_log_core::StoreError> {
//! use event_log_core::OpStore;
//! use event_log_redb::{RedbConfig, RedbStore};
//!
//! let store = RedbStore::open("events.redb", RedbConfig::default()).await?;
//! let ops = store.load(event_log_core::Position::START, 100).await?;
//! # let _ = ops;
//! store.close().await?;
//! # Ok(()) }
//! ```
//!
//! Tools that only read open it with [`RedbStore::open_read_only`] (or
//! [`RedbConfig::read_only`]): redb's `ReadOnlyDatabase`, no writer thread; a missing
//! file is `StoreError::NotFound` naming the path, never a new empty store.
//!
//! # On-disk format (format version 1)
//!
//! One redb file holds five tables. Integers are big-endian; ids and authors are the
//! 32 raw bytes of [`OpId`](event_log_core::OpId) and [`AuthorId`](event_log_core::AuthorId).
//!
//! | table | key | value | purpose |
//! |---|---|---|---|
//! | `meta` | `&str` | `u64` | `"format_version"` → 1 |
//! | `ops` | `u64` position (1, 2, …) | `&[u8]` record | the ops, in append order |
//! | `ops_by_id` | `[u8; 32]` id | `u64` position | idempotency, [`get`](event_log_core::OpStore::get) |
//! | `ops_by_author` | `([u8; 32], u64, [u8; 32])` (author, seq, id) | `u64` position | [`since`](event_log_core::OpStore::since), [`heads`](event_log_core::OpStore::heads) |
//! | `primary` | `([u8; 32], u64)` (author, seq) | `[u8; 32]` id | the conflict rule: one primary op per (author, seq) |
//! | `kv` | `&str` key | `&[u8]` value | small values kept beside the ops: the log's signed replay checkpoints ([`get_meta`](event_log_core::OpStore::get_meta)) |
//!
//! A record (value of `ops`) is a fixed layout, versioned by its first byte:
//!
//! ```text
//! offset  size  field
//! 0       1     record version = 1
//! 1       1     flags: bit 0 = evidence; other bits 0
//! 2       32    op id
//! 34      32    author
//! 66      8     seq (u64 BE)
//! 74      4     payload length P (u32 BE)
//! 78      P     payload (UTF-8 JSON, readable with any redb viewer)
//! 78+P    4     bytes length B (u32 BE)
//! 82+P    B     canonical signed op bytes, exactly as appended
//! ```
//!
//! The total length must be exactly `82 + P + B`. A record that does not decode, or
//! whose index key disagrees with it, is reported as
//! [`StoreError::Corrupt`](event_log_core::StoreError::Corrupt) naming its position;
//! nothing in this crate panics on stored bytes. A file whose `format_version` is
//! newer than this build's is refused with
//! [`StoreError::Invalid`](event_log_core::StoreError::Invalid) naming both versions,
//! and is not modified.
//!
//! # Durability argument
//!
//! Every write transaction commits with [`redb::Durability::Immediate`]: redb writes
//! the new B-tree pages, then the inactive commit slot (checksummed), flips the primary
//! bit, and `fsync`s before `commit` returns (redb `docs/design.md`, "1PC+C"). An append
//! is acknowledged only after its transaction's `commit` returned `Ok`, so an
//! acknowledged op survives a process crash and a power loss (given a disk that honours
//! `fsync`). After a crash redb reopens at the last commit slot with a valid checksum:
//! a transaction is all there or not there, so a batch is never half-stored and the
//! four tables never disagree. [`RedbConfig::two_phase_commit`] adds redb's 2PC (a
//! second `fsync`) against an adversary who can reorder page writes and crash the
//! process on purpose.
//!
//! A commit that fails with an I/O error (a full disk) fails its whole group, and redb
//! then refuses every later operation of that `Database` (`PreviousIo`); the writer
//! therefore opens the file again before its next group (redb repairs it if needed),
//! so appends succeed again once the cause is gone, on the same open store.
//!
//! redb 4 has no `Eventual` level; its only weaker level, `Durability::None`, keeps a
//! commit in process memory until the next durable commit, so even a process crash
//! would lose acknowledged ops. That breaks the `OpStore` contract, so it is not
//! offered.
//!
//! # Group commit
//!
//! One dedicated writer thread owns all write transactions. It blocks on a channel,
//! then takes every append request already waiting (up to
//! [`RedbConfig::max_group`]) into **one** write transaction and one `fsync`. Each
//! request is checked on its own, against the tables as the earlier requests of the
//! group left them: a conflicting request fails with
//! [`StoreError::Conflict`](event_log_core::StoreError::Conflict) and writes nothing,
//! while the others commit. Only a storage failure (I/O, a failed commit) fails the
//! whole group, and then none of it is stored. Reads run in redb read transactions
//! (MVCC snapshots) on tokio's blocking pool, never on the async executor, and never
//! wait for the writer.
//!
//! [redb]: https://www.redb.org
#![warn(missing_docs)]

mod config;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod read;
mod record;
mod stats;
mod store;
mod tables;
mod writer;

pub use config::RedbConfig;
pub use stats::RedbStats;
pub use store::RedbStore;
pub use tables::FORMAT_VERSION;

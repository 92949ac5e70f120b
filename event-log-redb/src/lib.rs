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
//! # On-disk format (format version 2)
//!
//! One redb file holds eight tables. Integers are big-endian in records; ids and
//! authors are the 32 raw bytes of [`OpId`](event_log_core::OpId) and
//! [`AuthorId`](event_log_core::AuthorId). Tuple keys are redb tuples, ordered element
//! by element (ids, authors and strings as bytes, integers numerically), so every
//! read below is one range of one index: O(k + log n) for k results.
//!
//! | table | key | value | purpose |
//! |---|---|---|---|
//! | `meta` | `&str` | `u64` | `"format_version"` → 2 |
//! | `ops` | `u64` position (1, 2, …) | `&[u8]` record | the ops, in append order |
//! | `ops_by_id` | `[u8; 32]` id | `u64` position | idempotency, [`get`](event_log_core::OpStore::get) |
//! | `ops_by_author` | `([u8; 32], u64, [u8; 32])` (author, seq, id) | `u64` position | [`since`](event_log_core::OpStore::since), [`author_ops`](event_log_core::OpStore::author_ops), [`heads`](event_log_core::OpStore::heads) |
//! | `primary` | `([u8; 32], u64)` (author, seq) | `[u8; 32]` id | the conflict rule: one primary op per (author, seq) |
//! | `ops_by_causal` | `(u64, [u8; 32])` (lamport, id) | `u64` position | [`timeline`](event_log_core::OpStore::timeline) |
//! | `ops_by_story` | `(&str, u64, [u8; 32])` (story, lamport, id) | `u64` position | [`story_ops`](event_log_core::OpStore::story_ops); ops with a story only |
//! | `ops_by_key` | `([u8; 32], &str, u64, [u8; 32])` (author, idempotency key, seq, id) | `u64` position | [`keyed`](event_log_core::OpStore::keyed); ops with a key only |
//! | `kv` | `&str` key | `&[u8]` value | small values kept beside the ops: the log's signed replay checkpoints ([`get_meta`](event_log_core::OpStore::get_meta)) |
//!
//! Every index of an op is written in the write transaction that writes its
//! record. A story is a whole tuple element, so the range of story `s-1` never holds
//! an op of `s-10`.
//!
//! A record (value of `ops`) is a fixed layout, versioned by its first byte:
//!
//! ```text
//! offset  size  field
//! 0       1     record version = 2
//! 1       1     flags: bit 0 = evidence, bit 1 = story present,
//!               bit 2 = idempotency key present; other bits 0
//! 2       32    op id
//! 34      32    author
//! 66      8     seq (u64 BE)
//! 74      8     lamport (u64 BE)
//! 82      4+S   if bit 1: story length S (u32 BE), story (UTF-8)
//! ..      4+K   if bit 2: idempotency key length K (u32 BE), key (UTF-8)
//! ..      4+P   payload length P (u32 BE), payload (UTF-8 JSON, readable with any redb viewer)
//! ..      4+B   bytes length B (u32 BE), canonical signed op bytes, exactly as appended
//! ```
//!
//! Nothing may follow the op bytes. The lamport, story and key are the
//! [`OpRecord`](event_log_core::OpRecord)'s index columns as the core handed them:
//! the store stores and returns them, and never parses the op bytes (the log checks
//! the columns against the signed bytes when it reads them). A record that does not
//! decode, or whose index key disagrees with it, is reported as
//! [`StoreError::Corrupt`](event_log_core::StoreError::Corrupt) naming its position
//! (and, for a cut or garbled field, the field); nothing in this crate panics on
//! stored bytes. A file whose `format_version` is newer than this build's is refused
//! with [`StoreError::Invalid`](event_log_core::StoreError::Invalid) naming both
//! versions, and is not modified.
//!
//! ## Format version 1, and the migration
//!
//! Version 1 had the same tables but the three index tables, and records with
//! version byte 1, flags bit 0 only, no lamport, story or key (id, author, seq,
//! then the payload and the bytes, each after its length). A writable open of a
//! version-1 file migrates it, in the open's one write transaction: every record is
//! rewritten at version 2 with the columns
//! [`IndexColumns::of_bytes`](event_log_core::IndexColumns::of_bytes) reads from its
//! op bytes (bytes that are no op get lamport 0 and no story or key; the log reports
//! such a row as damaged), the three indexes are filled, and `format_version` is set
//! to 2. A crash or an error before the commit leaves the file at version 1, whole.
//! A record that is not a version-1 record is left as it was, and reads report it
//! as `Corrupt`, as before. [`RedbStore::schema_status`] reports the step as pending
//! before; a read-only open refuses a version-1 file with `StoreError::Invalid`
//! naming both versions (it never writes, so it never migrates).
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
//! tables never disagree. [`RedbConfig::two_phase_commit`] adds redb's 2PC (a
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
mod meta;
mod migrate;
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

//! The pure core of event-log: what is stored, how it is sequenced, how gaps are
//! recorded, the [`OpStore`] plugin trait, an in-memory [`MemStore`], and
//! [`EventLog`], the one type applications use.
//!
//! No async runtime, no I/O, no database: an application's tests can embed only this
//! crate:
//!
//! ```
//! use event_log_core::{Causal, EventLog, MemStore, Transition, SigningKey};
//! # pollster::block_on(async {
//! let key = SigningKey::from_bytes(&[7; 32]);
//! let log = EventLog::open(MemStore::new(), key).await?;
//! log.append_transition(Transition::now("story-1", "backlog", "coding", "DepsMet")).await?;
//! // Reads are served by the store, a page at a time.
//! let page = log.read_timeline(&Causal::START, 100).await?;
//! assert_eq!(page.events.len(), 1);
//! assert!(page.end);
//! # Ok::<_, event_log_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Id spaces
//!
//! Five numbers identify things; they are never interchangeable (the repository's
//! `docs/design.md` gives the whole design, these words included).
//!
//! | number | counts | starts at | contiguous | scope |
//! |---|---|---|---|---|
//! | store position ([`Position`]) | rows in one store's append order | 1 (`Position(0)` is before the first) | per store, may have holes | one store; differs between replicas |
//! | seq | ops of one author | 1 | yes, per sled | global: `(author, seq)` names one op |
//! | event id ([`EventId`]) | entries of one sled (`event_id = seq - 1`) | 0 | yes, per sled | global: `(sled, event_id)` names one entry |
//! | lamport | causal depth: 1 + the highest lamport of the deps | 1 | no | global; orders the timeline |
//! | logical id | transitions published on one bus run, before persistence | 0 per run | yes, per run | one publisher run ([`RunId`]); what a [`Gap`] names |
//!
//! A [`VersionVector`] maps each sled to its highest contiguous seq held: it is
//! the cursor of reads ([`EventLog::read_since`]), subscriptions and sync.
#![warn(missing_docs)]

mod checkpoint;
mod damage;
mod entry;
mod error;
mod event;
#[doc(hidden)]
pub mod fuzz;
mod log;
mod memstore;
pub mod metrics;
mod seal;
/// Helpers for store authors: the conflict rule every store applies
/// ([`backend::rules::plan_append`]) and the parsing of a file store's URL
/// parameters ([`backend::url_query`]).
pub mod backend {
    pub use crate::store::{rules, url_query};
}
mod state;
mod store;
mod sync;
mod watermark;

/// The CRDT layer, for tools that work on ops directly.
pub use bft_json_crdt as bft;
pub use bft_json_crdt::{
    AuthorId, Equivocation, Limits, Membership, OpId, Outcome, RawOp, Rejected, SignedOp,
    SigningKey, VersionVector,
};
pub use damage::{DamageKind, DamagedRow, MAX_REPORTED_DAMAGE, MissingOps};
pub use entry::{Entry, Gap, Origin, RunId, Transition, Unclean, to_micros};
pub use error::{Error, Result};
pub use event::{EventId, LoggedEvent, SledId, render_lines};
pub use log::{
    CatchUp, EventLog, EventLogConfig, EventObserver, LogStats, MergeDelivery, MergeRejected,
    MergeReport, OpenStats, Page, VerifyReport, verify,
};
pub use memstore::MemStore;
pub use store::{
    BoxError, Causal, ConfigError, IndexColumns, Migration, OpKey, OpRecord, OpStore, Position,
    SchemaStatus, StoreDescription, StoreError, StoreErrorKind,
};
pub use sync::{SyncReport, push, push_chunked, sync};
pub use watermark::{MemWatermark, SharedWatermark, Watermark};

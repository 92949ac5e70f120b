//! **event-log**: a durable, replicated, tamper-evident log of state transitions.
//!
//! A service publishes *transitions* (a work item moved from one stage to another).
//! Each is persisted, survives restarts, replicates across the nodes (*sleds*) of a
//! deployment, and is never lost silently: a consumer that falls behind records a
//! *gap sentinel* naming exactly the dropped ones. Each sled signs its entries with an
//! Ed25519 key; entries are ops of a Byzantine-tolerant CRDT, so replicas converge and
//! forged or tampered entries are refused.
//!
//! This crate is the facade: it re-exports the core ([`EventLog`], [`Transition`],
//! [`MemStore`], the [`OpStore`] trait…), the bus and every store selected by cargo
//! feature, and opens a log from a URL:
//!
//! | URL | store | feature |
//! |---|---|---|
//! | `memory:` | [`MemStore`] (nothing survives the process) | always |
//! | `sqlite://path/to/log.db` (`?durability=normal`) | SQLite, WAL, `synchronous=FULL` | `sqlite` (default) |
//! | `redb://path/to/log.redb` | redb, `Durability::Immediate` | `redb` |
//! | `postgres://user@host/db` (`?schema=name`) | PostgreSQL | `postgres` |
//!
//! Every store URL takes `mode=ro` (`sqlite://log.db?mode=ro`): the store is opened
//! for reading only, never created, migrated or written, and a missing one is
//! [`StoreError::NotFound`] naming it; the log opened over it is read-only too.
//! [`open_read_only`] and [`open_store_read_only`] force it, whatever the URL says:
//! what tools that only look at a store use.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let key = event_log::keys::load_or_create("sled.key")?;
//! let log = event_log::open("sqlite://events.db", key).await?;
//! log.append_transition(event_log::Transition::now("story-1", "backlog", "coding", "DepsMet"))
//!     .await?;
//! // Reads are served by the store, a page at a time.
//! let mut after = event_log::Causal::START;
//! loop {
//!     let page = log.read_timeline(&after, 500).await?;
//!     for line in &page.events {
//!         println!("{line}");
//!     }
//!     after = page.next;
//!     if page.end {
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! An unselected backend is never compiled: `cargo build --no-default-features
//! --features redb` pulls in neither rusqlite nor tokio-postgres.
//!
//! The feature `aws-lc` (default) signs ops with AWS-LC, about 1.8 × as fast as
//! `ed25519-dalek`, which signs them without it; Ed25519 is deterministic, so the
//! signatures are the same bytes either way.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod keys;
pub mod redact;
mod url;
pub mod watermark;

pub use event_log_core::*;
pub use redact::redact_url;
pub use url::{
    AnyStore, OpenError, SCHEMES, Scheme, migrate, open, open_read_only, open_store,
    open_store_read_only, open_with, schema_status,
};
pub use watermark::FileWatermark;

/// The bus: broadcast of transitions, the persisting subscriber, live feeds.
#[cfg(feature = "bus")]
#[cfg_attr(docsrs, doc(cfg(feature = "bus")))]
pub use event_log_bus as bus;

/// The SQLite store.
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use event_log_sqlite as sqlite;

/// The redb store.
#[cfg(feature = "redb")]
#[cfg_attr(docsrs, doc(cfg(feature = "redb")))]
pub use event_log_redb as redb;

/// The PostgreSQL store.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use event_log_postgres as postgres;

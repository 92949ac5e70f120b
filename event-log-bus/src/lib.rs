//! The tokio side of event-log: how transitions travel from the code that fires them
//! to the durable log, and how persisted events travel on to whoever watches.
//! (How it fits the whole — formats, durability, sync — is in the repository's
//! `docs/design.md`.)
//!
//! - [`TransitionBus`] — a bounded broadcast of [`Transition`]s. Publishing never
//!   blocks: a slow receiver loses the oldest messages and is told how many
//!   (`Lagged(n)`). Or, built with [`TransitionBus::with_backpressure`], its
//!   [`TransitionBus::publish_wait`] waits for room until the persister has stored
//!   what is in flight, and fails with a [`PublishError`] instead of waiting for a
//!   persister that stopped.
//! - [`spawn_persister`] — the subscriber task that appends every transition it
//!   receives to an [`EventLog`], in groups (one `append_all` per drained batch). What
//!   it could not receive (lag) or could not store (a store down beyond the retry
//!   budget) becomes **one gap sentinel per dropped range**, never a silent drop. Its
//!   counters ([`PersisterStats`]) are plain numbers, cheap to read.
//! - [`LiveFeed`] — pushes every persisted event (local appends and merged remote
//!   ops) to subscribers; [`LiveFeed::subscribe_from`] first replays the log from a
//!   cursor and then continues live, with no duplicate and no hole, and a subscriber
//!   that falls behind re-reads the durable log instead of losing events.
//!
//! # Metrics
//! Gaps (and the transitions dropped in them), persister lag, retries and refused
//! transitions are also reported through the `metrics` facade, for any exporter the
//! application installs: [`metrics`] lists the names (`event_log_bus_gaps_total`,
//! `event_log_bus_dropped_transitions_total`, `event_log_bus_lagged_transitions_total`,
//! `event_log_bus_lag_transitions`, `event_log_bus_persister_retries_total`,
//! `event_log_bus_refused_transitions_total`, …).
//!
//! The promise, per persister run (one [`RunId`], logical ids counted from 0):
//! `persisted + Σ gap sizes = transitions published while it was subscribed`, gap
//! ranges disjoint and in ascending order — also after the log is reopened. Across
//! a crash, the next run of the sled appends one unclean-shutdown sentinel naming the
//! crashed run, the first of its logical ids not persisted, and how many from there
//! on it is known to have published (a lower bound: the count is saved periodically;
//! see the persister's module docs for the limits).
//!
//! [`Transition`]: event_log_core::Transition
//! [`EventLog`]: event_log_core::EventLog
//! [`RunId`]: event_log_core::RunId
#![warn(missing_docs)]

mod bus;
mod chunk;
mod error;
mod feed;
mod filter;
pub mod metrics;
mod persister;
mod stats;
mod subscription;

pub use crate::bus::{BusReceiver, TransitionBus};
pub use error::{BusError, PersisterError, PublishError};
pub use feed::{LiveFeed, LiveFeedConfig};
pub use filter::EventFilter;
pub use persister::{PersisterConfig, PersisterHandle, RetryPolicy, spawn_persister};
pub use stats::PersisterStats;
pub use subscription::Subscription;

//! [`LoggedEvent`]: a persisted entry as applications read it.

use std::fmt;

use bft_json_crdt::{AuthorId, OpId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::entry::Entry;

/// A sled: one node of a deployment, identified by its Ed25519 public key.
/// Prints as 64 lowercase hex characters.
pub type SledId = AuthorId;

/// The per-sled position of an entry: 0-based, contiguous, never reused.
pub type EventId = u64;

/// One persisted entry of one sled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedEvent {
    /// Position in the sled's stream (op seq − 1).
    pub event_id: EventId,
    /// The sled that recorded it.
    pub sled_id: SledId,
    /// When it happened (UTC, microseconds).
    pub at: DateTime<Utc>,
    /// The entry.
    pub entry: Entry,
    /// The id of the op that carries it.
    pub op_id: OpId,
    /// The op's lamport timestamp (causal order).
    pub lamport: u64,
}

impl LoggedEvent {
    /// The story of a transition, `None` for a gap.
    pub fn story_id(&self) -> Option<&str> {
        self.entry.story_id()
    }

    /// Where the event sits in the causal order: resume a timeline read after it.
    pub fn causal(&self) -> crate::store::Causal {
        crate::store::Causal {
            lamport: self.lamport,
            id: self.op_id,
        }
    }

    /// True for a sentinel: a gap, or a publisher run that ended uncleanly.
    pub fn is_gap(&self) -> bool {
        matches!(self.entry, Entry::Gap(_) | Entry::Unclean(_))
    }

    /// One human-readable line, for prompts and terminals, e.g.
    /// `2026-11-29T10:00:00.000001Z sled 1a2b3c4d #3 events between 3 and 5 were dropped (logical ids of publisher run 00000000000000a7)`.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for LoggedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sled {} #{} {}",
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            self.sled_id.short(),
            self.event_id,
            self.entry
        )
    }
}

/// Renders events one line each, joined by newlines.
pub fn render_lines<'a>(events: impl IntoIterator<Item = &'a LoggedEvent>) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&e.render());
        out.push('\n');
    }
    out
}

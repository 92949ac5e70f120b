//! [`Transition`]: one state change of one work item, and its origin.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::run::RunId;

/// Truncates a timestamp to microseconds, the precision the log keeps.
pub fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// One state change of one work item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The work item.
    pub story_id: String,
    /// Label of the stage before.
    pub from_stage: String,
    /// Label of the stage after.
    pub to_stage: String,
    /// Label of the pipeline event that fired the transition.
    pub pipeline_event: String,
    /// When it fired (UTC, microsecond precision).
    pub at: DateTime<Utc>,
    /// A key the caller chose to make retries safe: a sled appends at most one
    /// transition per key, and appending a transition whose key this sled already
    /// used returns the event stored first instead of writing a second one (see
    /// [`crate::EventLog::append_transition`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Where a publisher's stream put it: its run and logical id, set by the bus's
    /// persisting subscriber. Gap sentinels name the same logical ids, so a reader
    /// can check that every id of a run is either here or inside a gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// What the service wants to say about the transition besides the seed's fields:
    /// string key/values such as `actor`, `correlation_id`, `reason`. Kept in the
    /// readable payload (`"metadata":{"actor":"alice"}`, keys sorted), signed and
    /// checked like every other field, absent from the payload when empty. Keys are
    /// non-empty; the whole entry stays within [`crate::Limits::max_payload`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// A transition's place in a publisher's stream: run and logical id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The publisher run.
    pub run: RunId,
    /// The logical id within that run (0-based).
    pub id: u64,
}

impl Transition {
    /// A transition that fired at `at` (truncated to microseconds).
    pub fn new(
        story_id: impl Into<String>,
        from_stage: impl Into<String>,
        to_stage: impl Into<String>,
        pipeline_event: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        Transition {
            story_id: story_id.into(),
            from_stage: from_stage.into(),
            to_stage: to_stage.into(),
            pipeline_event: pipeline_event.into(),
            at: to_micros(at),
            idempotency_key: None,
            origin: None,
            metadata: BTreeMap::new(),
        }
    }

    /// The same transition with one more metadata value (see
    /// [`Transition::metadata`]); a key given twice keeps the last value.
    pub fn with_meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Bytes of text the transition carries (every string field, metadata keys and
    /// values included): JSON escaping makes its payload at most six times this,
    /// plus the fixed fields.
    pub fn text_len(&self) -> usize {
        self.story_id.len()
            + self.from_stage.len()
            + self.to_stage.len()
            + self.pipeline_event.len()
            + self.idempotency_key.as_ref().map_or(0, String::len)
            + self
                .metadata
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>()
    }

    /// The same transition with an idempotency key (see
    /// [`Transition::idempotency_key`]).
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// A transition that fired now.
    pub fn now(
        story_id: impl Into<String>,
        from_stage: impl Into<String>,
        to_stage: impl Into<String>,
        pipeline_event: impl Into<String>,
    ) -> Self {
        Self::new(story_id, from_stage, to_stage, pipeline_event, Utc::now())
    }
}

//! What the log stores: transitions and gap sentinels, and their JSON payload form.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

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
        }
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

/// Identifies one run of a publisher's stream (one subscriber run). Logical ids
/// restart at 0 in each run, so a gap names its run to stay unambiguous across
/// restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId(pub u64);

impl RunId {
    /// A fresh random run id.
    pub fn random() -> Self {
        use rand_core::RngCore;
        RunId(rand_core::OsRng.next_u64())
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A gap sentinel: logical ids `from..=to` of run `run` of this sled's stream were
/// dropped before they were persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The publisher run whose logical ids these are.
    pub run: RunId,
    /// First dropped logical id.
    pub from: u64,
    /// Last dropped logical id (inclusive).
    pub to: u64,
    /// When the drop was noticed (UTC, microseconds).
    pub at: DateTime<Utc>,
}

impl Gap {
    /// A gap noticed now.
    pub fn new(run: RunId, from: u64, to: u64) -> Self {
        Gap {
            run,
            from,
            to,
            at: to_micros(Utc::now()),
        }
    }

    /// How many logical ids were dropped.
    pub fn len(&self) -> u64 {
        self.to.saturating_sub(self.from).saturating_add(1)
    }

    /// Never true: a gap covers at least one id.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Every field any entry type has, for [`Entry::from_payload`].
#[derive(Deserialize)]
struct FlatEntry<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    story_id: Option<String>,
    from_stage: Option<String>,
    to_stage: Option<String>,
    pipeline_event: Option<String>,
    run: Option<RunId>,
    from: Option<u64>,
    to: Option<u64>,
    at: DateTime<Utc>,
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// A transition.
    Transition(Transition),
    /// A gap sentinel.
    Gap(Gap),
}

impl Entry {
    /// When the entry happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Entry::Transition(t) => t.at,
            Entry::Gap(g) => g.at,
        }
    }

    /// The story, for a transition.
    pub fn story_id(&self) -> Option<&str> {
        match self {
            Entry::Transition(t) => Some(&t.story_id),
            Entry::Gap(_) => None,
        }
    }

    /// The payload stored in the op: a small JSON object, readable in a SQL shell.
    pub fn to_payload(&self) -> Vec<u8> {
        // Serialising plain strings, integers and timestamps cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses an op payload.
    ///
    /// Same format as the `Deserialize` impl, read through a flat record: serde's
    /// internally tagged enums buffer every field first, which doubled the cost of a
    /// replay.
    pub fn from_payload(payload: &[u8]) -> Result<Entry, serde_json::Error> {
        use serde::de::Error as _;
        let f: FlatEntry<'_> = serde_json::from_slice(payload)?;
        let missing = |field: &str| serde_json::Error::custom(format!("missing field `{field}`"));
        match &*f.kind {
            "transition" => Ok(Entry::Transition(Transition {
                story_id: f.story_id.ok_or_else(|| missing("story_id"))?,
                from_stage: f.from_stage.ok_or_else(|| missing("from_stage"))?,
                to_stage: f.to_stage.ok_or_else(|| missing("to_stage"))?,
                pipeline_event: f.pipeline_event.ok_or_else(|| missing("pipeline_event"))?,
                at: f.at,
            })),
            "gap" => Ok(Entry::Gap(Gap {
                run: f.run.ok_or_else(|| missing("run"))?,
                from: f.from.ok_or_else(|| missing("from"))?,
                to: f.to.ok_or_else(|| missing("to"))?,
                at: f.at,
            })),
            other => Err(serde_json::Error::custom(format!(
                "unknown entry type `{other}`, expected `transition` or `gap`"
            ))),
        }
    }

    /// Checks what a well-formed entry must satisfy beyond its JSON shape.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Entry::Gap(g) if g.from > g.to => {
                Err(format!("gap range is empty: from {} > to {}", g.from, g.to))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Transition(t) => write!(
                f,
                "{}: {} -> {} ({})",
                t.story_id, t.from_stage, t.to_stage, t.pipeline_event
            ),
            Entry::Gap(g) => write!(f, "events between {} and {} were dropped", g.from, g.to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast payload parser reads exactly what serde's derive writes and reads.
    #[test]
    fn payload_round_trips_both_entry_types() {
        let t = Entry::Transition(Transition::now("s\"1", "a", "b", "E"));
        let g = Entry::Gap(Gap::new(RunId(7), 3, 5));
        for e in [t, g] {
            let bytes = e.to_payload();
            assert_eq!(Entry::from_payload(&bytes).unwrap(), e);
            assert_eq!(serde_json::from_slice::<Entry>(&bytes).unwrap(), e);
        }
        assert!(Entry::from_payload(br#"{"type":"nope","at":"2026-01-01T00:00:00Z"}"#).is_err());
        assert!(
            Entry::from_payload(br#"{"type":"gap","from":1,"at":"2026-01-01T00:00:00Z"}"#).is_err()
        );
        assert!(Entry::from_payload(b"not json").is_err());
    }
}

//! What the log stores: transitions and gap sentinels, and their JSON payload form.

use std::collections::BTreeMap;
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

/// Identifies one run of a publisher's stream (one subscriber run). Logical ids
/// restart at 0 in each run, so a gap names its run to stay unambiguous across
/// restarts.
///
/// Serialised as 16 lowercase hex characters (a JSON number would lose precision in
/// readers that parse numbers as doubles); a number is accepted when reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub u64);

impl Serialize for RunId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RunId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a run id: 16 hex characters or an unsigned integer")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RunId, E> {
                Ok(RunId(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RunId, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl std::str::FromStr for RunId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "bad run id {s:?}: expected up to 16 hex characters"
            ));
        }
        u64::from_str_radix(s, 16)
            .map(RunId)
            .map_err(|e| format!("bad run id {s:?}: {e}"))
    }
}

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

/// A sentinel for a publisher run that ended without a clean shutdown (the process
/// crashed or was killed): whatever its bus held but had not persisted is lost, and
/// this entry says so, so that "never lost silently" holds across crashes too.
///
/// Written by the bus's persisting subscriber when it starts and finds that the
/// previous run of this sled did not record a clean end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unclean {
    /// The run that ended without a clean shutdown.
    pub run: RunId,
    /// The first logical id of that run not found persisted (0 if none was).
    pub from: u64,
    /// How many of that run's logical ids from `from` on are known to have been
    /// published (from the publisher's durable count, saved periodically; more may
    /// have been published after it was last saved).
    pub known_lost: u64,
    /// When the unclean end was noticed (UTC, microseconds).
    pub at: DateTime<Utc>,
}

impl Unclean {
    /// The last logical id known lost, if any is.
    pub fn known_to(&self) -> Option<u64> {
        self.known_lost
            .checked_sub(1)
            .map(|n| self.from.saturating_add(n))
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
    known_lost: Option<u64>,
    idempotency_key: Option<String>,
    origin: Option<Origin>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
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
    /// A publisher run ended without a clean shutdown (a sentinel too).
    Unclean(Unclean),
}

impl From<Transition> for Entry {
    fn from(t: Transition) -> Self {
        Entry::Transition(t)
    }
}

impl From<Gap> for Entry {
    fn from(g: Gap) -> Self {
        Entry::Gap(g)
    }
}

impl Entry {
    /// When the entry happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Entry::Transition(t) => t.at,
            Entry::Gap(g) => g.at,
            Entry::Unclean(u) => u.at,
        }
    }

    /// The story, for a transition.
    pub fn story_id(&self) -> Option<&str> {
        match self {
            Entry::Transition(t) => Some(&t.story_id),
            Entry::Gap(_) | Entry::Unclean(_) => None,
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
                idempotency_key: f.idempotency_key,
                origin: f.origin,
                metadata: f.metadata,
            })),
            "gap" => Ok(Entry::Gap(Gap {
                run: f.run.ok_or_else(|| missing("run"))?,
                from: f.from.ok_or_else(|| missing("from"))?,
                to: f.to.ok_or_else(|| missing("to"))?,
                at: f.at,
            })),
            "unclean" => Ok(Entry::Unclean(Unclean {
                run: f.run.ok_or_else(|| missing("run"))?,
                from: f.from.ok_or_else(|| missing("from"))?,
                known_lost: f.known_lost.ok_or_else(|| missing("known_lost"))?,
                at: f.at,
            })),
            other => Err(serde_json::Error::custom(format!(
                "unknown entry type `{other}`, expected `transition`, `gap` or `unclean`"
            ))),
        }
    }

    /// Checks what a well-formed entry must satisfy beyond its JSON shape.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Entry::Gap(g) if g.from > g.to => {
                Err(format!("gap range is empty: from {} > to {}", g.from, g.to))
            }
            Entry::Transition(t) if t.metadata.contains_key("") => {
                Err("a metadata key is empty".to_owned())
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Transition(t) => {
                write!(
                    f,
                    "{}: {} -> {} ({})",
                    t.story_id, t.from_stage, t.to_stage, t.pipeline_event
                )?;
                for (i, (k, v)) in t.metadata.iter().enumerate() {
                    let sep = if i == 0 { " [" } else { ", " };
                    write!(f, "{sep}{k}={v}")?;
                }
                if !t.metadata.is_empty() {
                    f.write_str("]")?;
                }
                Ok(())
            }
            Entry::Gap(g) => write!(
                f,
                "events between {} and {} were dropped (logical ids of publisher run {})",
                g.from, g.to, g.run
            ),
            Entry::Unclean(u) => {
                write!(
                    f,
                    "publisher run {} ended without a clean shutdown: ",
                    u.run
                )?;
                match u.known_to() {
                    Some(to) => write!(
                        f,
                        "events between {} and {} were published but never persisted, and \
                         any published after them",
                        u.from, to
                    ),
                    None => write!(
                        f,
                        "any events it published from logical id {} on were never persisted",
                        u.from
                    ),
                }
            }
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
        let mut keyed = Transition::now("s", "a", "b", "E").with_idempotency_key("k-1");
        keyed.origin = Some(Origin {
            run: RunId(u64::MAX),
            id: 9,
        });
        let u = Entry::Unclean(Unclean {
            run: RunId(3),
            from: 4,
            known_lost: 2,
            at: to_micros(Utc::now()),
        });
        for e in [t, g, Entry::Transition(keyed), u] {
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

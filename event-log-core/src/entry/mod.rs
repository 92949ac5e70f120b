//! What the log stores: transitions and gap sentinels, and their JSON payload form.

mod run;
mod sentinel;
mod transition;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use run::RunId;
pub use sentinel::{Gap, Unclean};
pub use transition::{Origin, Transition, to_micros};

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

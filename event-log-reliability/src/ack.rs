//! The child's acknowledgement lines: `ack <sled> <event_id> <tag>`, one per append
//! that returned `Ok`, written and flushed only after it returned.

use std::fmt;
use std::str::FromStr;

use event_log::{EventId, SledId};

/// One acknowledged append, as the child prints it and the checker reads it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ack {
    /// The sled that appended (64 hex characters on the line).
    pub sled: SledId,
    /// The event id the log returned for it.
    pub event_id: EventId,
    /// The transition's story id: unique per append of a chain (`r<run>-t<task>-<n>`),
    /// so a stored event can be matched to the append that made it.
    pub tag: String,
}

impl Ack {
    /// The tag of append `n` of task `task` in child run `run`.
    pub fn tag(run: u64, task: usize, n: u64) -> String {
        format!("r{run}-t{task}-{n}")
    }
}

impl fmt::Display for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ack {} {} {}", self.sled, self.event_id, self.tag)
    }
}

/// A line that is not `ack <sled> <event_id> <tag>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ack line ({reason}): {line:?}")]
pub struct ParseAckError {
    /// The line (its first 200 characters).
    pub line: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for Ack {
    type Err = ParseAckError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let bad = |reason| ParseAckError {
            line: line.chars().take(200).collect(),
            reason,
        };
        let mut words = line.split(' ');
        if words.next() != Some("ack") {
            return Err(bad("does not start with `ack `"));
        }
        let sled = words
            .next()
            .ok_or_else(|| bad("no sled"))?
            .parse::<SledId>()
            .map_err(|_| bad("the sled is not 64 hex characters"))?;
        let event_id = words
            .next()
            .ok_or_else(|| bad("no event id"))?
            .parse::<EventId>()
            .map_err(|_| bad("the event id is not a number"))?;
        let tag = words.next().ok_or_else(|| bad("no tag"))?;
        if tag.is_empty() || tag.chars().any(char::is_whitespace) {
            return Err(bad("empty tag or a tag with whitespace"));
        }
        if words.next().is_some() {
            return Err(bad("more than four words"));
        }
        Ok(Ack {
            sled,
            event_id,
            tag: tag.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sled() -> SledId {
        event_log::keys::sled_id(&event_log::keys::generate())
    }

    #[test]
    fn a_line_round_trips() {
        let ack = Ack {
            sled: sled(),
            event_id: 41,
            tag: Ack::tag(3, 1, 7),
        };
        let line = ack.to_string();
        assert_eq!(line.split(' ').count(), 4, "{line}");
        assert_eq!(line.parse::<Ack>().unwrap(), ack);
    }

    #[test]
    fn torn_and_foreign_lines_are_refused() {
        let line = Ack {
            sled: sled(),
            event_id: 41,
            tag: "r0-t0-0".into(),
        }
        .to_string();
        // A line cut short before its tag is refused. (A cut inside the tag would
        // read as another tag: the chain only takes lines that end in a newline.)
        for cut in [3, 10, 68, 69, 70, 71, 72] {
            assert!(line[..cut].parse::<Ack>().is_err(), "{}", &line[..cut]);
        }
        for other in [
            "",
            "hello",
            "ack",
            &format!("{line} extra"),
            &line.replace("ack", "nak"),
        ] {
            assert!(other.parse::<Ack>().is_err(), "{other}");
        }
    }
}

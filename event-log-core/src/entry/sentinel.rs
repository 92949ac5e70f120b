//! The sentinels a publisher's run leaves: [`Gap`] (logical ids dropped) and
//! [`Unclean`] (the run ended without a clean shutdown).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::run::RunId;
use super::transition::to_micros;

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

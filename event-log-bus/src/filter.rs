//! [`EventFilter`]: which persisted events a feed subscriber wants.

use event_log_core::{LoggedEvent, SledId};

/// Selects events by story and/or sled; the default selects every event. Sentinels
/// (gaps, unclean shutdowns) have no story, so a story filter never selects them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events of this story.
    pub story_id: Option<String>,
    /// Only events recorded by this sled.
    pub sled_id: Option<SledId>,
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Events of one story.
    pub fn story(story_id: impl Into<String>) -> Self {
        EventFilter {
            story_id: Some(story_id.into()),
            sled_id: None,
        }
    }

    /// Events of one sled (its transitions and sentinels).
    pub fn sled(sled_id: SledId) -> Self {
        EventFilter {
            story_id: None,
            sled_id: Some(sled_id),
        }
    }

    /// True if `event` is selected.
    pub fn matches(&self, event: &LoggedEvent) -> bool {
        self.sled_id.is_none_or(|s| s == event.sled_id)
            && self
                .story_id
                .as_deref()
                .is_none_or(|s| event.story_id() == Some(s))
    }
}

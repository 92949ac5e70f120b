//! Whole-log reads for tests and small logs: every page of one of the log's paged
//! reads, collected into a `Vec` ([`ReadAll`]). A service reading a large log pages
//! itself ([`EventLog::read_since`] and the other `read_*` methods) instead.

use event_log_core::{
    Causal, EventId, EventLog, LoggedEvent, OpStore, Result, SledId, VersionVector,
};

/// Events a page holds per read here.
const PAGE: usize = 1024;

/// Whole-log reads of an [`EventLog`], each collecting every page of one paged read.
#[allow(async_fn_in_trait)]
pub trait ReadAll {
    /// Every visible event, by `(sled_id, event_id)`.
    async fn all_events(&self) -> Result<Vec<LoggedEvent>>;
    /// Every visible event after `cursor`, by `(sled_id, event_id)`.
    async fn all_events_since(&self, cursor: &VersionVector) -> Result<Vec<LoggedEvent>>;
    /// Every visible event in causal order.
    async fn all_timeline(&self) -> Result<Vec<LoggedEvent>>;
    /// Every visible event of one story, in causal order.
    async fn all_story_events(&self, story: &str) -> Result<Vec<LoggedEvent>>;
    /// Every visible event of one sled, by event id.
    async fn all_sled_events(&self, sled: &SledId) -> Result<Vec<LoggedEvent>>;
    /// One visible event, by sled and event id.
    async fn one_event(&self, sled: &SledId, event_id: EventId) -> Result<Option<LoggedEvent>>;
}

impl<S: OpStore> ReadAll for EventLog<S> {
    async fn all_events(&self) -> Result<Vec<LoggedEvent>> {
        self.all_events_since(&VersionVector::new()).await
    }

    async fn all_events_since(&self, cursor: &VersionVector) -> Result<Vec<LoggedEvent>> {
        let mut vv = cursor.clone();
        let mut out = Vec::new();
        loop {
            let page = self.read_since(&vv, PAGE).await?;
            out.extend(page.events);
            vv = page.next;
            if page.end {
                return Ok(out);
            }
        }
    }

    async fn all_timeline(&self) -> Result<Vec<LoggedEvent>> {
        let mut after = Causal::START;
        let mut out = Vec::new();
        loop {
            let page = self.read_timeline(&after, PAGE).await?;
            out.extend(page.events);
            after = page.next;
            if page.end {
                return Ok(out);
            }
        }
    }

    async fn all_story_events(&self, story: &str) -> Result<Vec<LoggedEvent>> {
        let mut after = Causal::START;
        let mut out = Vec::new();
        loop {
            let page = self.read_story(story, &after, PAGE).await?;
            out.extend(page.events);
            after = page.next;
            if page.end {
                return Ok(out);
            }
        }
    }

    async fn all_sled_events(&self, sled: &SledId) -> Result<Vec<LoggedEvent>> {
        let mut from: EventId = 0;
        let mut out = Vec::new();
        loop {
            let page = self.read_sled(sled, from, PAGE).await?;
            out.extend(page.events);
            from = page.next;
            if page.end {
                return Ok(out);
            }
        }
    }

    async fn one_event(&self, sled: &SledId, event_id: EventId) -> Result<Option<LoggedEvent>> {
        self.read_event(sled, event_id).await
    }
}

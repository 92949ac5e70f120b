//! [`Subscription`]: one reader of a [`crate::LiveFeed`] — backlog from the durable
//! log first (for a catch-up subscription), then live commits, each event once.
//!
//! The subscription keeps a cursor (sled → next event id it has not taken). Live
//! commits at or past the cursor are taken and advance it; those before it were
//! already read from the log and are dropped. Because it subscribes to the live
//! broadcast *before* reading the log, every event is in the log read, in the live
//! stream, or both — never neither. After a `Lagged` it re-reads the log from its
//! cursor, which covers every commit the broadcast overwrote.

use std::collections::VecDeque;
use std::sync::Arc;

use event_log_core::{EventLog, LoggedEvent, OpStore, VersionVector};
use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::filter::EventFilter;

/// What the feed's broadcast carries and a subscription reads: the events of one
/// commit.
pub(crate) type Commit = Arc<[LoggedEvent]>;

/// A stream of persisted events, read with [`Subscription::next`] or as a
/// [`Stream`] ([`Subscription::into_stream`]). Ends (`None`) when the feed is
/// dropped or closed, after what it already holds.
pub struct Subscription<S: OpStore> {
    log: Arc<EventLog<S>>,
    rx: broadcast::Receiver<Commit>,
    /// Next event id not yet taken, per sled.
    taken: VersionVector,
    /// Next event id not yet delivered, per sled.
    delivered: VersionVector,
    filter: EventFilter,
    queue: VecDeque<LoggedEvent>,
    read_log: bool,
    rereads: u64,
    closed: bool,
}

impl<S: OpStore> std::fmt::Debug for Subscription<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("cursor", &self.delivered)
            .field("filter", &self.filter)
            .field("queued", &self.queue.len())
            .field("rereads", &self.rereads)
            .finish_non_exhaustive()
    }
}

impl<S: OpStore> Subscription<S> {
    pub(crate) fn new(
        log: Arc<EventLog<S>>,
        rx: broadcast::Receiver<Commit>,
        cursor: VersionVector,
        filter: EventFilter,
        read_log: bool,
    ) -> Self {
        Subscription {
            log,
            rx,
            taken: cursor.clone(),
            delivered: cursor,
            filter,
            queue: VecDeque::new(),
            read_log,
            rereads: 0,
            closed: false,
        }
    }

    /// The next event, waiting for one if none is ready; `None` once the feed is gone.
    pub async fn next(&mut self) -> Option<LoggedEvent> {
        loop {
            if let Some(e) = self.pop() {
                return Some(e);
            }
            if self.closed {
                return None;
            }
            let r = self.rx.recv().await;
            self.on_live(r);
        }
    }

    /// The next event if one is ready now, without waiting.
    pub fn try_next(&mut self) -> Option<LoggedEvent> {
        loop {
            if let Some(e) = self.pop() {
                return Some(e);
            }
            if self.closed {
                return None;
            }
            match self.rx.try_recv() {
                Ok(c) => self.on_live(Ok(c)),
                Err(TryRecvError::Lagged(n)) => self.on_live(Err(RecvError::Lagged(n))),
                Err(TryRecvError::Closed) => self.on_live(Err(RecvError::Closed)),
                Err(TryRecvError::Empty) => return None,
            }
        }
    }

    /// The cursor after every event delivered so far: pass it to
    /// [`crate::LiveFeed::subscribe_from`] to resume with no duplicate and no hole.
    pub fn cursor(&self) -> &VersionVector {
        &self.delivered
    }

    /// How often this subscriber fell behind the live broadcast and re-read the log.
    pub fn rereads(&self) -> u64 {
        self.rereads
    }

    /// This subscription as a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = LoggedEvent> + Send + 'static {
        futures::stream::unfold(self, |mut s| async move {
            let e = s.next().await?;
            Some((e, s))
        })
    }

    fn pop(&mut self) -> Option<LoggedEvent> {
        if self.queue.is_empty() && self.read_log {
            self.read_log = false;
            let backlog = self.log.events_since(&self.taken);
            self.take_all(&backlog);
        }
        let e = self.queue.pop_front()?;
        self.delivered.raise(e.sled_id, e.event_id + 1);
        Some(e)
    }

    fn on_live(&mut self, r: Result<Commit, RecvError>) {
        match r {
            Ok(commit) => self.take_all(&commit),
            Err(RecvError::Lagged(n)) => {
                self.rereads += 1;
                crate::metrics::feed_lagged();
                self.read_log = true;
                tracing::debug!(commits = n, "feed subscriber lagged; re-reading the log");
            }
            Err(RecvError::Closed) => self.closed = true,
        }
    }

    /// Takes the events not yet taken; queues those the filter selects.
    fn take_all(&mut self, events: &[LoggedEvent]) {
        for e in events {
            if e.event_id < self.taken.get(&e.sled_id) {
                continue;
            }
            self.taken.raise(e.sled_id, e.event_id + 1);
            if self.filter.matches(e) {
                self.queue.push_back(e.clone());
            }
        }
    }
}

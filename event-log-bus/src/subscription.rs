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
    /// The log must be read (a catch-up, or a re-read after a lag), from `page`.
    read_log: bool,
    /// Where the next page of the log read starts (the page cursor, which also
    /// skips rows out of the view).
    page: VersionVector,
    /// Consecutive failed log reads (for the retry delay).
    failures: u32,
    rereads: u64,
    closed: bool,
}

/// Events read from the log per page of a catch-up.
const PAGE: usize = 512;

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
            page: cursor.clone(),
            delivered: cursor,
            filter,
            queue: VecDeque::new(),
            read_log,
            failures: 0,
            rereads: 0,
            closed: false,
        }
    }

    /// The next event, waiting for one if none is ready; `None` once the feed is gone.
    ///
    /// A catch-up reads the log a page at a time (memory does not grow with the
    /// backlog). A failed read (the store unavailable) is logged and retried after a
    /// growing delay, up to 5 s; the subscription resumes where it was.
    pub async fn next(&mut self) -> Option<LoggedEvent> {
        loop {
            if let Some(e) = self.pop() {
                return Some(e);
            }
            if self.read_log {
                if let Err(delay) = self.read_page().await {
                    tokio::time::sleep(delay).await;
                }
                continue;
            }
            if self.closed {
                return None;
            }
            let r = self.rx.recv().await;
            self.on_live(r);
        }
    }

    /// The next event if one is ready now, without waiting (a log read that cannot
    /// complete at once, say on a store served by a thread, is left to
    /// [`Subscription::next`]).
    pub fn try_next(&mut self) -> Option<LoggedEvent> {
        use futures::FutureExt;
        loop {
            if let Some(e) = self.pop() {
                return Some(e);
            }
            if self.read_log {
                // Not ready at once, or failed (retried by `next`): nothing now.
                self.read_page().now_or_never()?.ok()?;
                continue;
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
        let e = self.queue.pop_front()?;
        self.delivered.raise(e.sled_id, e.event_id + 1);
        Some(e)
    }

    /// Reads the next page of the log from the page cursor and takes its events;
    /// the read ends at the page that reaches the end of the log. Live commits
    /// received meanwhile wait in the broadcast: those the pages covered are
    /// dropped as already taken, a lag makes the log be read again. A failed read
    /// returns how long to wait before the next try.
    async fn read_page(&mut self) -> Result<(), std::time::Duration> {
        match self.log.read_since(&self.page, PAGE).await {
            Ok(page) => {
                self.failures = 0;
                self.take_all(&page.events);
                self.page = page.next;
                if page.end {
                    self.read_log = false;
                }
                Ok(())
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                let delay = std::time::Duration::from_millis(50)
                    .saturating_mul(1 << self.failures.min(7))
                    .min(std::time::Duration::from_secs(5));
                tracing::warn!(error = %e, retry_in = ?delay, "feed subscriber cannot read the log; retrying");
                Err(delay)
            }
        }
    }

    fn on_live(&mut self, r: Result<Commit, RecvError>) {
        match r {
            Ok(commit) if self.read_log => {
                // Committed before the log read reaches its end: a page covers it.
                drop(commit);
            }
            Ok(commit) => self.take_all(&commit),
            Err(RecvError::Lagged(n)) => {
                self.rereads += 1;
                crate::metrics::feed_lagged();
                if !self.read_log {
                    self.page = self.taken.clone();
                }
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

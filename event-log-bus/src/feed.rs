//! [`LiveFeed`]: persisted events, pushed to whoever watches.
//!
//! The feed registers itself as an [`EventObserver`] of an [`EventLog`], so it sees
//! every event that becomes visible — this sled's appends and ops merged from other
//! sleds — right after the store made it durable, in commit order. It forwards each
//! commit to a tokio broadcast; [`Subscription`]s read from there.
//!
//! Promises to a subscriber: each event at most once and, as long as the log is
//! open, none missed: a catch-up subscription replays the durable log from its
//! cursor before going live, and a subscriber that lags behind the broadcast re-reads
//! the log from its cursor instead of losing events. Per sled, events arrive in
//! event-id order; there is no order across sleds.

use std::sync::Arc;

use event_log_core::{EventLog, EventObserver, LoggedEvent, OpStore, VersionVector};
use parking_lot::RwLock;
use tokio::sync::broadcast;

use crate::bus::check_capacity;
use crate::error::BusError;
use crate::filter::EventFilter;
use crate::subscription::{Commit, Subscription};

/// Tunables of a [`LiveFeed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveFeedConfig {
    /// Commits (groups of events appended or merged together) buffered for a slow
    /// subscriber before it lags and falls back to re-reading the log. Rounded up to a
    /// power of two. Default 1024.
    pub capacity: usize,
}

impl Default for LiveFeedConfig {
    fn default() -> Self {
        LiveFeedConfig { capacity: 1024 }
    }
}

/// The listener half: lives inside the log, forwards commits.
struct Forwarder {
    tx: RwLock<Option<broadcast::Sender<Commit>>>,
}

impl EventObserver for Forwarder {
    fn on_events(&self, events: &[LoggedEvent]) {
        if let Some(tx) = self.tx.read().as_ref()
            && tx.receiver_count() > 0
        {
            // A subscriber that is not yet subscribed reads these from the log.
            let _ = tx.send(Arc::from(events));
        }
    }
}

/// Pushes the persisted events of one [`EventLog`] to subscribers.
///
/// Dropping the feed (or [`LiveFeed::close`]) ends every subscription once it has
/// delivered what it already holds.
pub struct LiveFeed<S: OpStore> {
    log: Arc<EventLog<S>>,
    forwarder: Arc<Forwarder>,
}

impl<S: OpStore> std::fmt::Debug for LiveFeed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFeed")
            .field("subscribers", &self.subscriber_count())
            .finish_non_exhaustive()
    }
}

impl<S: OpStore> LiveFeed<S> {
    /// Attaches a feed to `log` (registers it as a listener).
    pub fn attach(log: Arc<EventLog<S>>, config: LiveFeedConfig) -> Result<Self, BusError> {
        check_capacity(config.capacity)?;
        let (tx, _) = broadcast::channel(config.capacity);
        let forwarder = Arc::new(Forwarder {
            tx: RwLock::new(Some(tx)),
        });
        log.add_observer(forwarder.clone());
        Ok(LiveFeed { log, forwarder })
    }

    /// The log this feed watches.
    pub fn log(&self) -> &Arc<EventLog<S>> {
        &self.log
    }

    /// Live events from now on: everything persisted after this call.
    pub fn subscribe(&self, filter: EventFilter) -> Subscription<S> {
        // Subscribe first, then take the cursor: a commit in between is in both and
        // the cursor drops it from the live side.
        let rx = self.live();
        let cursor = self.log.version_vector();
        Subscription::new(self.log.clone(), rx, cursor, filter, false)
    }

    /// Every event after `cursor` (sled → next event id wanted; a sled not in it
    /// starts at 0, so an empty cursor replays the whole log), then live events, each
    /// exactly once.
    pub fn subscribe_from(&self, cursor: VersionVector, filter: EventFilter) -> Subscription<S> {
        // Subscribe before the backlog is read, so no commit falls between the two.
        let rx = self.live();
        Subscription::new(self.log.clone(), rx, cursor, filter, true)
    }

    /// A receiver of live commits; an already closed one once the feed is closed.
    fn live(&self) -> broadcast::Receiver<Commit> {
        match self.forwarder.tx.read().as_ref() {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// Subscribers currently attached.
    pub fn subscriber_count(&self) -> usize {
        self.forwarder
            .tx
            .read()
            .as_ref()
            .map_or(0, broadcast::Sender::receiver_count)
    }

    /// Stops forwarding; subscriptions end after what they already hold.
    pub fn close(&self) {
        self.forwarder.tx.write().take();
    }
}

impl<S: OpStore> Drop for LiveFeed<S> {
    fn drop(&mut self) {
        self.close();
    }
}

//! [`TransitionBus`]: the bounded broadcast of transitions.
//!
//! It exists so that the code firing transitions never waits for storage: `publish`
//! is a non-blocking push into a ring buffer, and each receiver (the persister, any
//! other consumer) reads at its own pace. The price of never blocking is that a
//! receiver that falls a whole buffer behind loses messages; it is told exactly how
//! many, which is what lets the persister record an exact gap.
//!
//! ## Capacity and `Lagged(n)`
//!
//! tokio's `broadcast` rounds the capacity up to the next power of two (a capacity of
//! 3 holds 4 messages). When a receiver is that far behind, the next `publish`
//! overwrites its oldest unread message; the receiver's next `recv` then returns
//! `Lagged(n)`: *n messages were overwritten that this receiver never saw*. After it,
//! the receiver resumes at the oldest message still retained, so the n lost ones are
//! exactly the n logical ids right after the last one it read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use event_log_core::Transition;
use tokio::sync::broadcast;

use crate::error::BusError;

/// What the broadcast carries: shared, so a message is cloned once per consumer that
/// keeps it, not once per receiver slot.
pub(crate) type Message = Arc<Transition>;

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    unheard: AtomicU64,
}

/// A bounded, non-blocking broadcast of [`Transition`]s. Clone it freely: clones
/// publish into the same channel. The channel closes (receivers see the end of the
/// stream) when the last clone is dropped.
#[derive(Clone)]
pub struct TransitionBus {
    tx: broadcast::Sender<Message>,
    capacity: usize,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for TransitionBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitionBus")
            .field("capacity", &self.capacity)
            .field("receivers", &self.receiver_count())
            .field("published", &self.published())
            .finish()
    }
}

impl TransitionBus {
    /// A bus holding up to `capacity` unread messages per receiver (rounded up to a
    /// power of two by tokio).
    pub fn new(capacity: usize) -> Result<Self, BusError> {
        check_capacity(capacity)?;
        let (tx, _) = broadcast::channel(capacity);
        Ok(TransitionBus {
            tx,
            capacity,
            counters: Arc::default(),
        })
    }

    /// The capacity asked for (before tokio's rounding).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Publishes a transition. Never blocks and never fails: returns the number of
    /// receivers that will see it. With no receiver (0) the transition is discarded
    /// and counted in [`TransitionBus::unheard`].
    pub fn publish(&self, transition: Transition) -> usize {
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        match self.tx.send(Arc::new(transition)) {
            Ok(n) => n,
            Err(_) => {
                self.counters.unheard.fetch_add(1, Ordering::Relaxed);
                0
            }
        }
    }

    /// A new receiver. It sees every transition published from now on (logical id 0
    /// is the first of them), unless it lags.
    pub fn subscribe(&self) -> BusReceiver {
        let rx = self.tx.subscribe();
        // Read after subscribing. A publish counts, then sends under the channel's
        // lock, which subscribing takes too: one whose send came before the
        // subscription is counted by this load. So a publish counted after `start`
        // sends after the subscription and reaches this receiver (or its lag
        // count): `published - start` never counts a message it cannot see.
        let start = self.counters.published.load(Ordering::Relaxed);
        BusReceiver {
            rx,
            counters: self.counters.clone(),
            start,
        }
    }

    /// Receivers currently subscribed.
    pub fn receiver_count(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Transitions published since the bus was created (by every clone), including
    /// unheard ones. One relaxed atomic load.
    pub fn published(&self) -> u64 {
        self.counters.published.load(Ordering::Relaxed)
    }

    /// Transitions published while no receiver was subscribed (discarded).
    pub fn unheard(&self) -> u64 {
        self.counters.unheard.load(Ordering::Relaxed)
    }
}

pub(crate) fn check_capacity(capacity: usize) -> Result<(), BusError> {
    if capacity == 0 {
        Err(BusError::ZeroCapacity)
    } else if capacity > usize::MAX / 2 {
        Err(BusError::CapacityTooLarge(capacity))
    } else {
        Ok(())
    }
}

/// One subscription to a [`TransitionBus`]: hand it to [`crate::spawn_persister`].
/// Messages published after [`TransitionBus::subscribe`] queue up in it (up to the
/// capacity) even before the persister starts.
pub struct BusReceiver {
    pub(crate) rx: broadcast::Receiver<Message>,
    counters: Arc<Counters>,
    /// The bus's published count when this receiver subscribed.
    start: u64,
}

impl std::fmt::Debug for BusReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusReceiver")
            .field("waiting", &self.len())
            .field("published", &self.published())
            .finish()
    }
}

impl BusReceiver {
    /// Transitions published on the bus since this receiver subscribed, by every
    /// clone: at most the logical ids of this receiver's stream (read, waiting, or
    /// lost to lag) once the publishes in progress have returned. One relaxed
    /// atomic load, no lock.
    ///
    /// A publish counts as it starts, just before its message is sent, so a
    /// process that dies in between has counted a message it never sent.
    pub fn published(&self) -> u64 {
        self.counters
            .published
            .load(Ordering::Relaxed)
            .saturating_sub(self.start)
    }

    /// Messages waiting in this receiver (at most the rounded capacity).
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// True if no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

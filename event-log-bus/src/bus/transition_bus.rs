//! [`TransitionBus`]: the sending side, lossy `publish` and backpressured
//! `publish_wait`, and `subscribe`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use event_log_core::Transition;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, broadcast};

use super::message::{BusCounters, Message};
use super::receiver::BusReceiver;
use super::window::Gate;
use crate::error::{BusError, PublishError};

/// A bounded, non-blocking broadcast of [`Transition`]s. Clone it freely: clones
/// publish into the same channel. The channel closes (receivers see the end of the
/// stream) when the last clone is dropped.
#[derive(Clone)]
pub struct TransitionBus {
    tx: broadcast::Sender<Message>,
    capacity: usize,
    counters: Arc<BusCounters>,
    /// The window of a backpressured bus; `None` for a lossy one.
    gate: Option<Arc<Gate>>,
}

impl std::fmt::Debug for TransitionBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitionBus")
            .field("capacity", &self.capacity)
            .field("backpressure", &self.gate.is_some())
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
            gate: None,
        })
    }

    /// A bus with backpressure: at most `capacity` transitions published with
    /// [`TransitionBus::publish_wait`] wait to be settled by its persister, and
    /// `publish_wait` waits for room instead of overwriting (see the module docs for
    /// what its return means). Attach the persister with
    /// [`crate::spawn_persister`] before publishing.
    ///
    /// ```
    /// # async fn demo(log: std::sync::Arc<event_log_core::EventLog<event_log_core::MemStore>>)
    /// # -> Result<(), Box<dyn std::error::Error>> {
    /// use event_log_bus::{PersisterConfig, TransitionBus, spawn_persister};
    /// use event_log_core::Transition;
    ///
    /// let bus = TransitionBus::with_backpressure(1024)?;
    /// let persister = spawn_persister(bus.receiver(), log, PersisterConfig::default());
    /// // Waits while 1024 transitions are not yet stored; fails if the persister stopped.
    /// let id = bus
    ///     .publish_wait(Transition::now("story-1", "backlog", "coding", "DepsMet"))
    ///     .await?;
    /// let stats = persister.shutdown().await?;
    /// assert!(stats.persisted + stats.dropped > id);
    /// # Ok(()) }
    /// ```
    pub fn with_backpressure(capacity: usize) -> Result<Self, BusError> {
        if capacity > Semaphore::MAX_PERMITS {
            return Err(BusError::CapacityTooLarge(capacity));
        }
        let mut bus = TransitionBus::new(capacity)?;
        bus.gate = Some(Arc::new(Gate {
            capacity,
            lease: Mutex::new(None),
        }));
        Ok(bus)
    }

    /// True for a bus built with [`TransitionBus::with_backpressure`].
    pub fn is_backpressured(&self) -> bool {
        self.gate.is_some()
    }

    /// Publishes a transition on a backpressured bus, waiting while its window is
    /// full (`capacity` transitions published this way not yet settled by the
    /// persister). Returns its logical id in the attached persister's run once the
    /// bus has **accepted** it (not once it is stored: see the module docs).
    ///
    /// Fails, handing the transition back, if the bus is lossy, no persister is
    /// attached, or the attached persister stopped (also while waiting): it never
    /// waits for a persister that will not make room. Cancel-safe: dropping the
    /// future before it completes publishes nothing.
    pub async fn publish_wait(&self, transition: Transition) -> Result<u64, PublishError> {
        let Some(gate) = &self.gate else {
            return Err(PublishError::NotBackpressured(Box::new(transition)));
        };
        let lease = match gate.lease.lock().clone() {
            None => return Err(PublishError::NoPersister(Box::new(transition))),
            Some(l) if l.closed.load(Ordering::SeqCst) => {
                return Err(PublishError::PersisterStopped(Box::new(transition)));
            }
            Some(l) => l,
        };
        let Ok(slot) = lease.slots.acquire().await else {
            return Err(PublishError::PersisterStopped(Box::new(transition)));
        };
        let current = gate.lease.lock();
        let attached = current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &lease));
        if !attached || lease.closed.load(Ordering::SeqCst) {
            return Err(PublishError::PersisterStopped(Box::new(transition)));
        }
        slot.forget();
        lease.permitted.fetch_add(1, Ordering::SeqCst);
        let seq = self.counters.published.fetch_add(1, Ordering::SeqCst);
        match self.tx.send(Arc::new(transition)) {
            Ok(_) => Ok(seq.saturating_sub(lease.base)),
            Err(broadcast::error::SendError(t)) => {
                // Not expected: the persister closes its lease before it drops its
                // receiver. Counted as published and unheard, as `publish` does, and
                // handed back.
                self.counters.unheard.fetch_add(1, Ordering::Relaxed);
                let t = Arc::try_unwrap(t).unwrap_or_else(|t| Transition::clone(&t));
                Err(PublishError::PersisterStopped(Box::new(t)))
            }
        }
    }

    /// The capacity asked for (before tokio's rounding).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Publishes a transition. Never blocks and never fails: returns the number of
    /// receivers that will see it. With no receiver (0) the transition is discarded
    /// and counted in [`TransitionBus::unheard`].
    ///
    /// On a backpressured bus it is the same: it never waits and takes no slot of
    /// the window (see the module docs).
    pub fn publish(&self, transition: Transition) -> usize {
        let _serial = self.gate.as_ref().map(|g| g.lease.lock());
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
    pub fn receiver(&self) -> BusReceiver {
        let _serial = self.gate.as_ref().map(|g| g.lease.lock());
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
            gate: self.gate.clone(),
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

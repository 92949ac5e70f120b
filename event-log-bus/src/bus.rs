//! [`TransitionBus`]: the bounded broadcast of transitions.
//!
//! It exists so that the code firing transitions never waits for storage: `publish`
//! is a non-blocking push into a ring buffer, and each receiver (the persister, any
//! other consumer) reads at its own pace. The price of never blocking is that a
//! receiver that falls a whole buffer behind loses messages; it is told exactly how
//! many, which is what lets the persister record an exact gap.
//!
//! ## Backpressure: [`TransitionBus::with_backpressure`]
//!
//! A service that would rather slow down than drop builds its bus with
//! [`TransitionBus::with_backpressure`] and publishes with
//! [`TransitionBus::publish_wait`]. Such a bus has a window of `capacity` *slots*
//! (a tokio [`Semaphore`]): `publish_wait` takes one (waiting while none is free)
//! and the persister attached to the bus gives it back once the transition is
//! **settled**, that is stored in the log (or recorded in a gap, see below). So at
//! most `capacity` transitions published with `publish_wait` are ever unsettled, the
//! broadcast ring (at least `capacity`) never overwrites one of them, and the
//! persister never lags behind a `publish_wait` publisher. While the store fails,
//! the persister retries without the budget of [`crate::RetryPolicy`] (it never
//! gives a batch up), the window fills and `publish_wait` waits.
//!
//! What `publish_wait` returning `Ok(id)` means: the transition was **accepted by
//! the bus**, as logical id `id` of the attached persister's run; it is not yet
//! durable. It becomes durable when the persister's `persisted + dropped` counters
//! ([`crate::PersisterStats`]) pass `id`, in order. An accepted transition is stored
//! unless the persister stops before: on [`crate::PersisterHandle::shutdown`] while
//! the store is down (after one retry budget it is recorded as a gap once the store
//! works again, or counted in `pending_gap`), on a [`crate::PersisterError`] (its
//! stats say what was not stored; the next run's unclean-shutdown sentinel records
//! it), or if the log would refuse it (over its op limits: a gap of its own id). It
//! is never dropped silently.
//!
//! `publish_wait` fails with a typed [`PublishError`] instead of waiting for ever:
//! no persister attached yet ([`PublishError::NoPersister`]), the persister stopped
//! (ended, failed, or shutting down: [`PublishError::PersisterStopped`], also
//! returned to publishers already waiting), or a lossy bus
//! ([`PublishError::NotBackpressured`]). The transition comes back inside the error.
//! A second persister spawned on the bus while one is attached runs lossy (logged);
//! one spawned after the first stopped takes over the window.
//!
//! `publish` keeps its meaning on a backpressured bus: it never waits and takes no
//! slot, so it can still overwrite unread messages (recorded as a gap exactly as on
//! a lossy bus, possibly of ids `publish_wait` published). The promise "nothing
//! lost" holds for a bus whose publishers all use `publish_wait`.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use event_log_core::Transition;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, broadcast};

use crate::error::{BusError, PublishError};

/// What the broadcast carries: shared, so a message is cloned once per consumer that
/// keeps it, not once per receiver slot.
pub(crate) type Message = Arc<Transition>;

#[derive(Debug, Default)]
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
    /// The window of a backpressured bus; `None` for a lossy one.
    gate: Option<Arc<Gate>>,
}

/// The window of a backpressured bus.
#[derive(Debug)]
pub(crate) struct Gate {
    capacity: usize,
    /// The attached persister's lease. Held while counting and sending a message
    /// (every publish of the bus) and while subscribing, so that a message's place
    /// in a receiver's stream is exactly its count minus the receiver's start.
    lease: Mutex<Option<Arc<Lease>>>,
}

/// One persister's hold on the window.
#[derive(Debug)]
pub(crate) struct Lease {
    slots: Semaphore,
    /// Messages sent with a slot under this lease.
    permitted: AtomicU64,
    /// Slots given back so far.
    released: AtomicU64,
    /// The bus's published count when the persister's receiver subscribed.
    base: u64,
    closed: AtomicBool,
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
    /// let persister = spawn_persister(bus.subscribe(), log, PersisterConfig::default());
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
    pub fn subscribe(&self) -> BusReceiver {
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

/// One subscription to a [`TransitionBus`]: hand it to [`crate::spawn_persister`].
/// Messages published after [`TransitionBus::subscribe`] queue up in it (up to the
/// capacity) even before the persister starts.
pub struct BusReceiver {
    pub(crate) rx: broadcast::Receiver<Message>,
    counters: Arc<Counters>,
    /// The bus's published count when this receiver subscribed.
    start: u64,
    /// The bus's window, if it is backpressured.
    gate: Option<Arc<Gate>>,
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

    /// Attaches this receiver's persister to the bus's window: `None` on a lossy bus,
    /// or while another persister holds it.
    pub(crate) fn attach(&self) -> Option<GateLease> {
        let gate = self.gate.clone()?;
        let mut current = gate.lease.lock();
        if current
            .as_ref()
            .is_some_and(|l| !l.closed.load(Ordering::SeqCst))
        {
            tracing::warn!(
                "another persister holds this bus's backpressure window: this one runs \
                 lossy (it may lag, and records what it lost as gaps)"
            );
            return None;
        }
        let lease = Arc::new(Lease {
            slots: Semaphore::new(gate.capacity),
            permitted: AtomicU64::new(0),
            released: AtomicU64::new(0),
            base: self.start,
            closed: AtomicBool::new(false),
        });
        *current = Some(lease.clone());
        drop(current);
        Some(GateLease {
            gate,
            lease,
            counters: self.counters.clone(),
        })
    }
}

/// A persister's hold on a backpressured bus's window: gives slots back as
/// transitions are settled, and closes the window (waking every waiting publisher
/// with an error) when the persister stops, at the latest when it is dropped.
#[derive(Debug)]
pub(crate) struct GateLease {
    gate: Arc<Gate>,
    lease: Arc<Lease>,
    counters: Arc<Counters>,
}

impl GateLease {
    /// Gives slots back for the logical ids settled so far (`settled`: stored as
    /// transitions or inside stored gaps, counted from 0 in order).
    ///
    /// Slots are counted, not tagged: of the `published` messages of the stream,
    /// `permitted` took a slot and the rest (sent by `publish`, or before the lease)
    /// did not. Counting the slot-less ones as settled first gives back
    /// `settled − slot-less`, which never exceeds what was taken and reaches it once
    /// everything is settled, so a healthy persister never keeps a slot for ever.
    pub(crate) fn release(&self, settled: u64) {
        let _serial = self.gate.lease.lock();
        let permitted = self.lease.permitted.load(Ordering::SeqCst);
        let published = self
            .counters
            .published
            .load(Ordering::SeqCst)
            .saturating_sub(self.lease.base);
        let slotless = published.saturating_sub(permitted);
        let due = settled.saturating_sub(slotless).min(permitted);
        let released = self.lease.released.load(Ordering::SeqCst);
        if due > released && !self.lease.closed.load(Ordering::SeqCst) {
            let n = usize::try_from(due - released).unwrap_or(usize::MAX);
            self.lease.slots.add_permits(n.min(Semaphore::MAX_PERMITS));
            self.lease.released.store(due, Ordering::SeqCst);
        }
    }

    /// Closes the window: `publish_wait` fails from now on, also for publishers
    /// already waiting. Every message sent under the lease is in the receiver.
    pub(crate) fn close(&self) {
        let _serial = self.gate.lease.lock();
        if !self.lease.closed.swap(true, Ordering::SeqCst) {
            self.lease.slots.close();
            tracing::info!(
                "backpressure window closed: publish_wait fails until a persister attaches"
            );
        }
    }
}

impl Drop for GateLease {
    fn drop(&mut self) {
        self.close();
    }
}

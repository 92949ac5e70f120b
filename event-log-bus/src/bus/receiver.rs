//! [`BusReceiver`]: one subscription to a [`crate::TransitionBus`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::{Semaphore, broadcast};

use super::message::{BusCounters, Message};
use super::window::{Gate, GateLease, Lease};

/// One receiver of a [`crate::TransitionBus`]: hand it to [`crate::spawn_persister`].
/// Messages published after [`crate::TransitionBus::receiver`] queue up in it (up to the
/// capacity) even before the persister starts.
pub struct BusReceiver {
    pub(crate) rx: broadcast::Receiver<Message>,
    pub(super) counters: Arc<BusCounters>,
    /// The bus's published count when this receiver subscribed.
    pub(super) start: u64,
    /// The bus's window, if it is backpressured.
    pub(super) gate: Option<Arc<Gate>>,
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

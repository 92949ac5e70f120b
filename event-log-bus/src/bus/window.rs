//! The window of a backpressured bus (see the `bus` module docs): its slots, the
//! lease one persister holds on it, and how settled ids give slots back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::message::BusCounters;

/// The window of a backpressured bus.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(super) capacity: usize,
    /// The attached persister's lease. Held while counting and sending a message
    /// (every publish of the bus) and while subscribing, so that a message's place
    /// in a receiver's stream is exactly its count minus the receiver's start.
    pub(super) lease: Mutex<Option<Arc<Lease>>>,
}

/// One persister's hold on the window.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(super) slots: Semaphore,
    /// Messages sent with a slot under this lease.
    pub(super) permitted: AtomicU64,
    /// Slots given back so far.
    pub(super) released: AtomicU64,
    /// The bus's published count when the persister's receiver subscribed.
    pub(super) base: u64,
    /// Set once the persister stopped: `publish_wait` fails from then on.
    pub(super) closed: AtomicBool,
}

/// A persister's hold on a backpressured bus's window: gives slots back as
/// transitions are settled, and closes the window (waking every waiting publisher
/// with an error) when the persister stops, at the latest when it is dropped.
#[derive(Debug)]
pub(crate) struct GateLease {
    pub(super) gate: Arc<Gate>,
    pub(super) lease: Arc<Lease>,
    pub(super) counters: Arc<BusCounters>,
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

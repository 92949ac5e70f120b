//! What travels on the bus and what the bus counts, shared by the sending side, the
//! receivers and the backpressure window.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use event_log_core::Transition;

/// What the broadcast carries: shared, so a message is cloned once per consumer that
/// keeps it, not once per receiver slot.
pub(crate) type Message = Arc<Transition>;

/// What a bus and its receivers count, shared by every clone.
#[derive(Debug, Default)]
pub(super) struct BusCounters {
    /// Transitions published since the bus was created, by every clone.
    pub(super) published: AtomicU64,
    /// Of those, the ones published while no receiver was subscribed.
    pub(super) unheard: AtomicU64,
}

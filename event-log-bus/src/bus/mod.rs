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
//!
//! One file per part, each importing only those before it: `message` (what travels
//! and what is counted), `window` (the backpressure window), `receiver`, and
//! `transition_bus` (the sending side).

mod message;
mod receiver;
mod transition_bus;
mod window;

pub(crate) use message::Message;
pub use receiver::BusReceiver;
pub use transition_bus::TransitionBus;
pub(crate) use transition_bus::check_capacity;
pub(crate) use window::GateLease;

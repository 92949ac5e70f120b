//! The callers of a group, and what they learn if its leader is dropped.

use super::Pending;
use crate::error::Error;
use crate::store::StoreError;

/// The queue requests wait in for a leader.
pub(super) type Queue = parking_lot::Mutex<Vec<Pending>>;

/// The callers of a group. Dropped without being taken (the leader's future was
/// cancelled): a group not yet handed to the store goes back to the queue; a group in
/// flight tells its callers the outcome is unknown (the log completes it later).
pub(super) struct Waiters<'a> {
    pub(super) list: Vec<Pending>,
    queue: Option<&'a Queue>,
}

impl<'a> Waiters<'a> {
    /// Callers that go back to the front of `queue` if dropped.
    pub(super) fn requeue_on_drop(list: Vec<Pending>, queue: &'a Queue) -> Self {
        Waiters {
            list,
            queue: Some(queue),
        }
    }

    /// Requests back at the front of `queue`, now.
    pub(super) fn requeue(list: Vec<Pending>, queue: &'a Queue) {
        drop(Self::requeue_on_drop(list, queue));
    }

    /// The group may reach the store from now on: if dropped, its callers learn
    /// that the outcome is unknown, not that nothing happened.
    pub(super) fn in_flight(&mut self) {
        self.queue = None;
    }

    /// The group is known unwritten after all: dropped, its requests go back to the
    /// queue.
    pub(super) fn requeue_to(&mut self, queue: &'a Queue) {
        self.queue = Some(queue);
    }

    /// The callers, to be answered.
    pub(super) fn take(mut self) -> Vec<Pending> {
        std::mem::take(&mut self.list)
    }
}

impl Drop for Waiters<'_> {
    fn drop(&mut self) {
        if self.list.is_empty() {
            return;
        }
        let list = std::mem::take(&mut self.list);
        match self.queue {
            Some(queue) => {
                let mut q = queue.lock();
                let rest = std::mem::take(&mut *q);
                *q = list;
                q.extend(rest);
            }
            None => {
                for p in list {
                    let _ = p.reply.send(Err(Error::InDoubt {
                        source: StoreError::Unavailable {
                            message: "the append leading this group was cancelled while writing it"
                                .into(),
                            source: None,
                        },
                    }));
                }
            }
        }
    }
}

/// Sends every caller the error `make(e)`.
pub(super) fn reply_all(callers: Vec<Pending>, make: impl Fn(StoreError) -> Error, e: StoreError) {
    for p in callers {
        let _ = p.reply.send(Err(make(e.clone())));
    }
}

//! Groups in flight: handed to the store, waiting for its answer.

use std::collections::VecDeque;

use bft_json_crdt::OpId;
use futures::future::BoxFuture;

use super::signing::Signing;
use super::waiters::Waiters;
use crate::store::StoreError;

/// A group handed to the store, not yet answered. Its ops sit in
/// [`LeaderState::in_doubt`], in chain order with the other flights'.
pub(super) struct Flight<'a> {
    pub(super) callers: Waiters<'a>,
    /// How many ops the group holds.
    pub(super) ops: usize,
    /// Its last op's id: the next group continues after it.
    pub(super) last: OpId,
    /// The store call.
    pub(super) write: BoxFuture<'a, Result<(), StoreError>>,
    /// Its answer, once in (a later flight may answer before an earlier one).
    pub(super) answer: Option<Result<(), StoreError>>,
}

/// What woke the leader.
pub(super) enum Wake {
    /// The oldest flight's answer.
    Answered(Result<(), StoreError>),
    /// The oldest signing job finished.
    Signed,
    /// A request was queued.
    Queued,
}

/// Waits for the first of: the oldest flight's answer, the oldest signing job,
/// a new request (when `listener` is given).
pub(super) async fn next_wake(
    flights: &mut VecDeque<Flight<'_>>,
    signing: &mut VecDeque<Signing<'_>>,
    mut listener: Option<event_listener::EventListener>,
) -> Wake {
    use std::future::Future;
    use std::task::Poll;
    futures::future::poll_fn(|cx| {
        // Every flight is polled, in order: a first poll is what queues a
        // request on a pipelining store, and fixes its place in line.
        for f in flights.iter_mut() {
            if f.answer.is_none()
                && let Poll::Ready(r) = f.write.as_mut().poll(cx)
            {
                f.answer = Some(r);
            }
        }
        if let Some(r) = flights.front_mut().and_then(|f| f.answer.take()) {
            return Poll::Ready(Wake::Answered(r));
        }
        if let Some(job) = signing.front_mut()
            && job.poll_done(cx).is_ready()
        {
            return Poll::Ready(Wake::Signed);
        }
        if let Some(l) = listener.as_mut()
            && std::pin::Pin::new(l).poll(cx).is_ready()
        {
            return Poll::Ready(Wake::Queued);
        }
        Poll::Pending
    })
    .await
}

//! Appending this sled's entries: sequencing, signing, group commit. The
//! repository's `docs/design.md` (§5) gives the same protocol with the rest of the
//! design.
//!
//! # The pipeline
//!
//! An append queues a request ([`Pending`]) and races for the *leader lock*. Whoever
//! holds it leads ([`EventLog::lead`]): it runs a [`Pipeline`](pipeline::Pipeline)
//! for a bounded time, writing every request queued meanwhile, then hands the lock
//! on. A request another leader wrote is answered without ever taking the lock.
//!
//! The pipeline moves each request through four steps, each in its own module:
//! 1. **admit** ([`draft`]): requests are taken from the queue (withdrawn ones
//!    dropped, idempotency keys resolved against what is stored) and *linked* into
//!    this sled's chain: seqs, deps, lamports, ids. Cheap, under the state lock.
//! 2. **sign** ([`signing`]): the linked drafts are signed, inline when nothing
//!    else is pending, else on rayon's pool while earlier groups are written.
//! 3. **launch** ([`pipeline`]): a signed group goes to the store once the group
//!    it continues is in flight, up to [`OpStore::append_pipeline`] groups at once
//!    through [`OpStore::append_after`], so the store's append order stays causal.
//! 4. **settle** ([`pipeline`], [`doubt`]): answers are taken in chain order. The
//!    fate of a failed group is decided in one place, [`fate::Fate::of`].
//!
//! # The in-doubt protocol
//!
//! A store call that failed without saying whether it wrote (a lost connection, a
//! timeout) leaves its ops **in doubt**: they may be stored. The log keeps them, in
//! chain order, in [`LeaderState::in_doubt`], and their callers get
//! [`Error::InDoubt`]. Three rules make this safe:
//! - **No seq is reused for other content.** Before any new op is linked, the
//!   in-doubt ops are appended again, unchanged ([`EventLog::flush`] does it
//!   without new entries). Appends are idempotent by op id, so whichever of the two
//!   calls reached the store, each op is stored once.
//! - **A later group never lands after a hole.** A group is sent only guarded by
//!   the group it continues ([`OpStore::append_after`]); once one group is known
//!   unwritten (a conflict, a missing predecessor) every group behind it is known
//!   unwritten too: their ops leave the doubt list and their callers go back to
//!   the queue, never told "in doubt" for ops that cannot be stored.
//! - **A taken seq is re-sequenced, not lost.** If the retry is refused because
//!   another writer of this sled (a previous process, late) took those seqs, the
//!   in-doubt ops that are not stored were never written anywhere: their entries
//!   are queued again, first, as *detached* requests nobody waits for, and signed
//!   at new seqs once the log caught up with the store
//!   ([`EventLog::resequence_in_doubt`]).
//!
//! A leader's future may be dropped at any point (a caller's timeout). Requests it
//! took but never sent go back to the queue; requests it sent learn that their
//! outcome is unknown ([`waiters::Waiters`]); either way nothing is lost.

mod doubt;
mod draft;
mod fate;
mod flight;
mod keys;
mod pipeline;
mod signing;
mod waiters;

use std::sync::atomic::Ordering;

use bft_json_crdt::{OpId, SignedOp};
use futures::channel::oneshot;
use futures::future::Either;

use keys::KeyLookup;
pub(crate) use keys::KeyRegistry;

use super::EventLog;
use crate::entry::{Entry, Gap, Transition};
use crate::error::{Error, Result};
use crate::event::LoggedEvent;
use crate::store::OpStore;

/// One caller's request, waiting for a leader to write it.
pub(crate) struct Pending {
    entries: Vec<Entry>,
    /// The entries' payloads, encoded (and checked against the limits) by the caller.
    payloads: Vec<Vec<u8>>,
    /// Times the store refused it because another writer of this sled held its seq.
    conflicts: u8,
    /// Nobody waits for the answer: entries that were in doubt, signed again after
    /// their seqs turned out taken ([`EventLog::resequence_in_doubt`]). Never
    /// withdrawn for a dropped receiver.
    detached: bool,
    /// What the store held for its idempotency keys (`None`: it holds none).
    keys: Option<KeyLookup>,
    reply: oneshot::Sender<Result<Vec<LoggedEvent>>>,
}

impl Pending {
    /// A request of `entries`, already checked and encoded as `payloads`.
    fn new(
        entries: Vec<Entry>,
        payloads: Vec<Vec<u8>>,
        detached: bool,
        keys: Option<KeyLookup>,
    ) -> (Self, oneshot::Receiver<Result<Vec<LoggedEvent>>>) {
        let (reply, rx) = oneshot::channel();
        let p = Pending {
            entries,
            payloads,
            conflicts: 0,
            detached,
            keys,
            reply,
        };
        (p, rx)
    }
}

/// State owned by whoever holds the leader lock.
#[derive(Default)]
pub(crate) struct LeaderState {
    /// Signed ops whose store append failed with an unknown outcome: they may be
    /// stored. They are appended again (idempotent) before any new op, so a seq is
    /// never reused for different content.
    in_doubt: Vec<(SignedOp, Entry)>,
    /// The store holds ops of this sled that this log does not: catch up before
    /// the next group is sequenced.
    behind: bool,
}

impl<S: OpStore> EventLog<S> {
    /// Appends a transition of this sled. Returns once the store made it durable.
    pub async fn append_transition(&self, t: Transition) -> Result<LoggedEvent> {
        self.append(Entry::Transition(t)).await
    }

    /// Appends a gap sentinel: logical ids `gap.from..=gap.to` of run `gap.run` were
    /// dropped. Returns once the store made it durable.
    pub async fn append_gap(&self, gap: Gap) -> Result<LoggedEvent> {
        self.append(Entry::Gap(gap)).await
    }

    /// Appends one entry.
    pub async fn append(&self, entry: Entry) -> Result<LoggedEvent> {
        let mut v = self.append_all(vec![entry]).await?;
        v.pop().ok_or(Error::Cancelled)
    }

    /// Appends entries as one contiguous run of seqs, atomically (all or none).
    ///
    /// Concurrent calls are grouped: whoever takes the leader lock signs and writes
    /// every request waiting at that moment in one store call.
    ///
    /// An error with an unknown outcome (the store was unreachable mid-write) means
    /// the entries may be stored; they are then completed by the next append, never
    /// dropped, and their seqs are never reused for other content.
    ///
    /// # Cancellation and retries
    /// Dropping the returned future (a caller's timeout) before a leader took the
    /// request withdraws it: it is never written. Once a leader took it (it is being
    /// signed or written for a group), it is written — or in doubt and completed
    /// later — whatever happens to the future, and its outcome is only learnt by
    /// reading the log. To retry safely, give transitions an idempotency key
    /// ([`Transition::with_idempotency_key`]): an append whose keys this sled
    /// already used returns the events stored first and writes nothing (the same
    /// key on other content is [`Error::IdempotencyKeyReused`]); concurrent appends
    /// with one key write it once.
    pub async fn append_all(&self, entries: Vec<Entry>) -> Result<Vec<LoggedEvent>> {
        let started = std::time::Instant::now();
        let result = self.append_entries(entries).await;
        crate::metrics::append_finished(started.elapsed(), &result);
        result
    }

    /// [`EventLog::append_all`] without its metrics.
    async fn append_entries(&self, entries: Vec<Entry>) -> Result<Vec<LoggedEvent>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if self.config.read_only {
            return Err(Error::ReadOnly {
                operation: "append",
            });
        }
        if let Some(refusal) = self.refusal() {
            return Err(refusal.into());
        }
        let payloads = self.encode(&entries)?;
        let keys = self.look_up_keys(&entries).await?;
        let (request, mut rx) = Pending::new(entries, payloads, false, keys);
        self.queue.lock().push(request);
        self.queued.notify(1);
        // Wait for whichever comes first: our reply (another leader wrote our request)
        // or the leader lock (we lead and write everything queued). A request that was
        // already written must not queue for the lock again, or appenders convoy
        // through the lock one by one and every store call carries a single entry.
        loop {
            let lock = self.leader.lock();
            futures::pin_mut!(lock);
            match futures::future::select(rx, lock).await {
                Either::Left((reply, _)) => return reply.map_err(|_| Error::Cancelled)?,
                Either::Right((mut leader, pending)) => {
                    // A leader writes for a bounded time and hands the lock on; if ours
                    // was not among the groups written, wait again for the reply or
                    // the lock.
                    self.lead(&mut leader).await;
                    let behind = std::mem::take(&mut leader.behind);
                    drop(leader);
                    if behind && let Err(e) = self.catch_up().await {
                        tracing::warn!(error = %e, "cannot catch up with this sled's own ops in the store");
                    }
                    if self.others_waiting.load(Ordering::Relaxed) > 0 {
                        // A merge, catch-up or flush waits for the lock: let it run
                        // before taking the lock again.
                        YieldNow(false).await;
                    }
                    rx = pending;
                }
            }
        }
    }

    /// Checks the entries and encodes their payloads, refusing any over the limits
    /// before anything is signed: an op over the limits would be refused by every
    /// replica, this one's next open included.
    fn encode(&self, entries: &[Entry]) -> Result<Vec<Vec<u8>>> {
        let limit = self.config.limits.max_payload;
        entries
            .iter()
            .map(|e| {
                e.validate().map_err(|detail| Error::BadPayload {
                    id: OpId::default(),
                    detail,
                })?;
                let payload = e.to_payload();
                if payload.len() > limit {
                    return Err(Error::OverLimits {
                        what: "payload",
                        limit,
                        actual: payload.len(),
                    });
                }
                Ok(payload)
            })
            .collect()
    }

    /// Why this sled may not append now, if it may not: it equivocated (its appends
    /// would never be visible), or the store holds fewer of its ops than it signed.
    fn refusal(&self) -> Option<Refusal> {
        if let Some(seq) = self.excluded_since() {
            return Some(Refusal::Excluded {
                sled: self.sled_id(),
                seq,
            });
        }
        self.rolled_back()
            .map(|(held, signed)| Refusal::RolledBack { held, signed })
    }

    /// Entries whose append outcome is unknown, waiting for the next append or flush.
    pub async fn in_doubt(&self) -> usize {
        self.lock_leader().await.in_doubt.len()
    }

    /// Writes everything queued, for a bounded time. Holds the leader lock.
    ///
    /// First completes what is in doubt (nothing new is linked after ops that may
    /// be stored) and stops if the log is behind the store (the caller catches up
    /// once the lock is free) or may not append (queued requests are refused).
    async fn lead(&self, w: &mut LeaderState) {
        if !w.in_doubt.is_empty() && !self.complete_in_doubt(w).await {
            return;
        }
        if w.behind {
            return;
        }
        if let Some(refusal) = self.refusal() {
            // A merge since these requests queued showed that this sled equivocated,
            // or its ops went missing from the store.
            for p in std::mem::take(&mut *self.queue.lock()) {
                let _ = p.reply.send(Err(refusal.into()));
            }
            return;
        }
        pipeline::Pipeline::new(self, w).run().await;
    }

    /// `(held, signed)` while the store holds fewer of this sled's ops than it
    /// signed (see [`crate::Watermark`]); `None` once they are back.
    fn rolled_back(&self) -> Option<(u64, u64)> {
        let mut owed = self.signed_up_to.lock();
        let signed = (*owed)?;
        let held = self.state.read().replica.max_seq(&self.sled_id());
        if held >= signed {
            tracing::info!(held, "this sled's missing ops are back; appending again");
            *owed = None;
            return None;
        }
        Some((held, signed))
    }

    /// Moves this sled's watermark to `tip` (seq and id), its newest durable op.
    pub(crate) fn advance_mark(&self, tip: Option<(u64, OpId)>) {
        if let (Some(w), Some((seq, id))) = (&self.config.watermark, tip)
            && !self.config.read_only
        {
            let mark = crate::watermark::Mark { seq, id };
            w.0.save(mark.seal(self.key.signing_key()));
        }
    }

    /// The seq this sled is excluded from the view from, if it equivocated: its
    /// appends would never be visible.
    fn excluded_since(&self) -> Option<u64> {
        self.state.read().replica.excluded_from(&self.sled_id())
    }
}

/// Why this sled may not append now (see [`EventLog::refusal`]).
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// It equivocated: excluded from the view from this seq.
    Excluded {
        sled: crate::event::SledId,
        seq: u64,
    },
    /// The store holds fewer of its ops than it signed.
    RolledBack { held: u64, signed: u64 },
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        match r {
            Refusal::Excluded { sled, seq } => Error::Excluded { sled, seq },
            Refusal::RolledBack { held, signed } => Error::RolledBack { held, signed },
        }
    }
}

/// Yields once to the executor (runtime-agnostic).
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

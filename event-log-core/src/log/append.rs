//! Appending this sled's entries: sequencing, signing, group commit.

use std::sync::atomic::Ordering;

use bft_json_crdt::{Op, OpId, SignedOp};
use futures::channel::oneshot;
use futures::future::Either;

use super::EventLog;
use crate::entry::{Entry, Gap, Transition};
use crate::error::{Error, Result};
use crate::event::LoggedEvent;
use crate::store::{OpRecord, OpStore, StoreError};

/// One caller's request, waiting for a leader to write it.
pub(crate) struct Pending {
    entries: Vec<Entry>,
    reply: oneshot::Sender<Result<Vec<LoggedEvent>>>,
}

/// Most groups one leader writes before handing the writer lock on, so a leader's
/// own append returns and merges, catch-ups and flushes get their turn.
const MAX_GROUPS_PER_LEADER: usize = 8;

/// The callers of a group. Dropped without being taken (the leader's future was
/// cancelled): a group not yet handed to the store goes back to the queue; a group in
/// flight tells its callers the outcome is unknown (the log completes it later).
struct Waiters<'a> {
    list: Vec<Pending>,
    queue: Option<&'a parking_lot::Mutex<Vec<Pending>>>,
}

impl<'a> Waiters<'a> {
    fn requeue_on_drop(list: Vec<Pending>, queue: &'a parking_lot::Mutex<Vec<Pending>>) -> Self {
        Waiters {
            list,
            queue: Some(queue),
        }
    }

    fn in_flight(&mut self) {
        self.queue = None;
    }

    fn take(mut self) -> Vec<Pending> {
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

/// State owned by whoever holds the writer lock.
#[derive(Default)]
pub(crate) struct Writer {
    /// Signed ops whose store append failed with an unknown outcome: they may be
    /// stored. They are appended again (idempotent) before any new op, so a seq is
    /// never reused for different content.
    in_doubt: Vec<(SignedOp, Entry)>,
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
    /// Concurrent calls are grouped: whoever takes the writer lock signs and writes
    /// every request waiting at that moment in one store call.
    ///
    /// An error with an unknown outcome (the store was unreachable mid-write) means
    /// the entries may be stored; they are then completed by the next append, never
    /// dropped, and their seqs are never reused for other content.
    pub async fn append_all(&self, entries: Vec<Entry>) -> Result<Vec<LoggedEvent>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        for e in &entries {
            e.validate().map_err(|detail| Error::BadPayload {
                id: OpId::default(),
                detail,
            })?;
        }
        let (tx, rx) = oneshot::channel();
        self.queue.lock().push(Pending { entries, reply: tx });
        // Wait for whichever comes first: our reply (another leader wrote our request)
        // or the writer lock (we lead and write everything queued). A request that was
        // already written must not queue for the lock again, or appenders convoy
        // through the lock one by one and every store call carries a single entry.
        let mut rx = rx;
        loop {
            let lock = self.writer.lock();
            futures::pin_mut!(lock);
            match futures::future::select(rx, lock).await {
                Either::Left((reply, _)) => return reply.map_err(|_| Error::Cancelled)?,
                Either::Right((mut writer, pending)) => {
                    // A leader writes a bounded number of groups and hands the lock on;
                    // if ours was not among them, wait again for the reply or the lock.
                    self.lead(&mut writer).await;
                    drop(writer);
                    rx = pending;
                }
            }
        }
    }

    /// Completes appends whose outcome was unknown ([`Error::InDoubt`]), without
    /// new entries. Returns how many in-doubt entries it
    /// completed; an `Err` means the store still fails (nothing is lost: they stay in
    /// doubt for the next try).
    pub async fn flush(&self) -> Result<usize> {
        let mut w = self.writer.lock().await;
        if w.in_doubt.is_empty() {
            return Ok(0);
        }
        Ok(self.retry_in_doubt(&mut w).await?)
    }

    /// Appends the in-doubt ops again (idempotent) and applies them; returns how many.
    async fn retry_in_doubt(&self, w: &mut Writer) -> std::result::Result<usize, StoreError> {
        let records: Vec<OpRecord> = w
            .in_doubt
            .iter()
            .map(|(op, _)| OpRecord::new(op, false))
            .collect();
        match self.store.append(&records).await {
            Ok(()) => {
                let ops = std::mem::take(&mut w.in_doubt);
                let n = ops.len();
                tracing::info!(ops = n, "completed appends whose outcome was unknown");
                let events = self.state.write().commit(ops);
                self.notify(&events);
                self.settle_unblocked().await;
                Ok(n)
            }
            Err(e) => {
                if matches!(e, StoreError::Conflict { .. }) {
                    // Nothing was written and another writer holds these seqs.
                    w.in_doubt.clear();
                }
                Err(e)
            }
        }
    }

    /// Entries whose append outcome is unknown, waiting for the next append or flush.
    pub async fn in_doubt(&self) -> usize {
        self.writer.lock().await.in_doubt.len()
    }

    /// Writes everything queued. Holds the writer lock.
    ///
    /// Pipelined: while one group is being written, the next group is taken from the
    /// queue, linked after the group in flight and signed, so signing overlaps the
    /// store's sync. Store calls stay one at a time, in order, so every store's append
    /// order stays causal. If a write fails, the group signed behind it is put back in
    /// the queue unwritten (its seqs were never used).
    async fn lead(&self, w: &mut Writer) {
        let mut next: Option<(Waiters<'_>, Vec<(SignedOp, Entry)>)> = None;
        let mut first = true;
        for _ in 0..MAX_GROUPS_PER_LEADER {
            if !w.in_doubt.is_empty() && !self.complete_in_doubt(w).await {
                // Dropping `next` puts its requests back in the queue, unwritten.
                return;
            }
            let (mut batch, ops) = match next.take() {
                Some((mut batch, mut ops)) => {
                    // Whoever queued while the last group was written joins this one,
                    // so groups grow instead of splitting into small cohorts.
                    let room = self.config.max_batch.saturating_sub(ops.len());
                    let extra = self.take_batch(room);
                    if !extra.is_empty() {
                        let more = self.sign_batch(&extra, ops.last().map(|(op, _)| op));
                        batch.list.extend(extra);
                        ops.extend(more);
                    }
                    (batch, ops)
                }
                None => {
                    if !first {
                        // Let the appenders just answered queue their next entries, so
                        // the next store call carries a full group, not a straggler.
                        YieldNow(false).await;
                    }
                    first = false;
                    let list = self.take_batch(self.config.max_batch);
                    if list.is_empty() {
                        return;
                    }
                    let ops = self.sign_batch(&list, None);
                    (Waiters::requeue_on_drop(list, &self.queue), ops)
                }
            };
            let records: Vec<OpRecord> =
                ops.iter().map(|(op, _)| OpRecord::new(op, false)).collect();
            let last = ops.last().map(|(op, _)| op.clone());
            w.in_doubt = ops;
            // From here the group may reach the store: if this future is dropped, its
            // callers learn that the outcome is unknown, not that nothing happened.
            batch.in_flight();
            self.counters.append_calls.fetch_add(1, Ordering::Relaxed);
            let prepare = async {
                YieldNow(false).await;
                let list = self.take_batch(self.config.max_batch);
                if list.is_empty() {
                    return None;
                }
                let ops = self.sign_batch(&list, last.as_ref());
                Some((Waiters::requeue_on_drop(list, &self.queue), ops))
            };
            let (result, prepared) = futures::join!(self.store.append(&records), prepare);
            let batch = batch.take();
            match result {
                Ok(()) => {
                    let ops = std::mem::take(&mut w.in_doubt);
                    self.counters
                        .appended
                        .fetch_add(ops.len() as u64, Ordering::Relaxed);
                    let replies: Vec<LoggedEvent> = ops
                        .iter()
                        .map(|(op, entry)| crate::state::event_of(op, entry.clone()))
                        .collect();
                    let events = self.state.write().commit(ops);
                    self.notify(&events);
                    self.settle_unblocked().await;
                    let mut it = replies.into_iter();
                    for p in batch {
                        let mine: Vec<LoggedEvent> = it.by_ref().take(p.entries.len()).collect();
                        let _ = p.reply.send(Ok(mine));
                    }
                    next = prepared;
                }
                Err(e) => {
                    // `prepared` is dropped: its requests go back to the queue.
                    drop(prepared);
                    let conflict = matches!(e, StoreError::Conflict { .. });
                    if conflict {
                        // Nothing was written; another writer holds our seqs.
                        w.in_doubt.clear();
                    }
                    tracing::warn!(error = %e, "append failed");
                    for p in batch {
                        let err = if conflict {
                            Error::Store(e.clone())
                        } else {
                            Error::InDoubt { source: e.clone() }
                        };
                        let _ = p.reply.send(Err(err));
                    }
                }
            }
        }
        // Hand the lock on; a prepared group goes back to the queue, unwritten.
    }

    /// Peer ops that waited in the buffer for one of our own ops (possible when a peer
    /// saw our op in a shared store before we committed it): validate, persist and
    /// apply them now. On a store error they are dropped from the buffer and logged;
    /// the peer sends them again.
    async fn settle_unblocked(&self) {
        let ingest = {
            let mut st = self.state.write();
            let ops = st.replica.take_unblocked();
            if ops.is_empty() {
                return;
            }
            st.replica.ingest(ops)
        };
        let mut ready = Vec::with_capacity(ingest.ready.len());
        for r in &ingest.ready {
            match super::open::parse_entry(&r.op) {
                Ok(entry) => ready.push((r.op.clone(), entry, r.evidence)),
                Err(e) => tracing::warn!(error = %e, "buffered op carries an invalid entry"),
            }
        }
        if ready.is_empty() {
            return;
        }
        let records: Vec<OpRecord> = ready
            .iter()
            .map(|(op, _, evidence)| OpRecord::new(op, *evidence))
            .collect();
        match self.store.append(&records).await {
            Ok(()) => {
                let ops = ready
                    .into_iter()
                    .map(|(op, entry, _)| (op, entry))
                    .collect();
                let events = self.state.write().commit(ops);
                self.notify(&events);
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not persist buffered ops released by a local append")
            }
        }
    }

    /// Completes the in-doubt ops. On failure, fails every queued request (their
    /// seqs would follow the ops in doubt) and returns false.
    async fn complete_in_doubt(&self, w: &mut Writer) -> bool {
        match self.retry_in_doubt(w).await {
            Ok(_) => true,
            Err(e) => {
                let waiting = std::mem::take(&mut *self.queue.lock());
                for p in waiting {
                    let _ = p.reply.send(Err(Error::Store(e.clone())));
                }
                false
            }
        }
    }

    /// Takes queued requests holding at most `room` entries (at least one request
    /// when `room` > 0, however large).
    fn take_batch(&self, room: usize) -> Vec<Pending> {
        if room == 0 {
            return Vec::new();
        }
        let mut q = self.queue.lock();
        let mut n = 0;
        let mut k = 0;
        while k < q.len() && (k == 0 || n + q[k].entries.len() <= room) {
            n += q[k].entries.len();
            k += 1;
        }
        q.drain(..k).collect()
    }

    /// Signs the entries of a batch as a chain of this sled's next seqs.
    fn sign_batch(&self, batch: &[Pending], after: Option<&SignedOp>) -> Vec<(SignedOp, Entry)> {
        let (drafts, entries) = self.draft_batch(batch, after);
        Op::sign_all(drafts, &self.key)
            .into_iter()
            .zip(entries)
            .collect()
    }

    /// Links the batch's ops (seqs, deps, lamports, ids), reading the state under its
    /// lock; the costly signing happens after the lock is released.
    ///
    /// With `after` (the last op of a group still being written), the batch continues
    /// that op's chain and depends on nothing else.
    fn draft_batch(&self, batch: &[Pending], after: Option<&SignedOp>) -> (Vec<Op>, Vec<Entry>) {
        let (mut seq, mut prev, mut heads) = match after {
            Some(op) => (op.seq(), Some((op.id(), op.lamport())), Vec::new()),
            None => {
                let st = self.state.read();
                let replica = &st.replica;
                let seq = replica.max_seq(&self.sled);
                let prev: Option<(OpId, u64)> = replica
                    .ops_after(&self.sled, seq.saturating_sub(1))
                    .into_iter()
                    .find(|o| o.seq() == seq)
                    .map(|o| (o.id(), o.lamport()));
                // Other sleds' heads we know, newest first, bounded.
                let mut heads: Vec<(u64, OpId)> = replica
                    .heads()
                    .into_iter()
                    .filter_map(|h| replica.get(&h))
                    .filter(|o| o.author() != self.sled)
                    .map(|o| (o.lamport(), o.id()))
                    .collect();
                heads.sort_unstable_by(|a, b| b.cmp(a));
                heads.truncate(self.config.max_extra_deps);
                (seq, prev, heads)
            }
        };
        let mut drafts: Vec<Op> = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for p in batch {
            for entry in &p.entries {
                seq += 1;
                let mut deps: Vec<OpId> = Vec::with_capacity(1 + heads.len());
                let mut max_lamport = 0;
                if let Some((id, l)) = prev {
                    deps.push(id);
                    max_lamport = l;
                }
                for (l, id) in heads.drain(..) {
                    deps.push(id);
                    max_lamport = max_lamport.max(l);
                }
                let op = Op {
                    author: self.sled,
                    seq,
                    lamport: max_lamport + 1,
                    deps,
                    payload: entry.to_payload(),
                };
                // Ids do not cover signatures: link the chain first, sign in parallel.
                prev = Some((op.id_for(&self.sled), op.lamport));
                drafts.push(op);
                entries.push(entry.clone());
            }
        }
        (drafts, entries)
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

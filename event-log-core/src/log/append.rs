//! Appending this sled's entries: sequencing, signing, group commit.

use std::sync::atomic::Ordering;

use bft_json_crdt::{Op, OpId, SignedOp};
use std::collections::VecDeque;

use futures::channel::oneshot;
use futures::future::{BoxFuture, Either};

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

    /// The group is known unwritten after all: dropped, its requests go back to the
    /// queue.
    fn requeue_to(&mut self, queue: &'a parking_lot::Mutex<Vec<Pending>>) {
        self.queue = Some(queue);
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

/// A group of requests, signed, not yet written: its callers and their ops.
type Group<'a> = (Waiters<'a>, Vec<(SignedOp, Entry)>);

/// A group handed to the store, not yet answered. Its ops sit in
/// [`Writer::in_doubt`], in chain order with the other flights'.
struct Flight<'a> {
    callers: Waiters<'a>,
    /// How many ops the group holds.
    ops: usize,
    /// Its last op: the next group continues after it.
    last: SignedOp,
    /// The store call.
    write: BoxFuture<'a, std::result::Result<(), StoreError>>,
}

/// Sends every caller the error `make(e)`.
fn reply_all(callers: Vec<Pending>, make: impl Fn(StoreError) -> Error, e: StoreError) {
    for p in callers {
        let _ = p.reply.send(Err(make(e.clone())));
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
        self.queued.notify(1);
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
    /// Pipelined: while a group is being written, requests that queue meanwhile are
    /// taken, linked after the last group sent and signed as they arrive, so signing
    /// overlaps the store's work instead of preceding it. A store that takes ordered
    /// appends ([`OpStore::append_pipeline`] > 1) gets the next group at once, through
    /// [`OpStore::append_after`], while earlier ones are still in flight; other
    /// stores get it as soon as the previous group is answered. Either way a group is
    /// stored only after the group it continues, so every store's append order stays
    /// causal and a failed group never leaves a later one stored after a hole.
    ///
    /// Answers are settled in order. A group whose outcome is unknown stays in doubt
    /// (completed before any new op); a group the store refused, and every group
    /// behind it, is known unwritten: conflicts are reported to their callers, the
    /// others go back to the queue (their seqs were never used).
    async fn lead(&self, w: &mut Writer) {
        if !w.in_doubt.is_empty() && !self.complete_in_doubt(w).await {
            return;
        }
        let depth = self.store.append_pipeline().clamp(1, MAX_GROUPS_PER_LEADER);
        let mut flights: VecDeque<Flight<'_>> = VecDeque::new();
        // Signed, not yet sent; continues after `tail`, the last op signed.
        let mut next: Option<Group<'_>> = None;
        let mut tail: Option<SignedOp> = None;
        let mut launched = 0;
        // Ops at the front of `w.in_doubt` from groups answered with an unknown outcome.
        let mut doubt = 0;
        // Set once a group failed: nothing more is sent; the rest is settled.
        let mut failed = false;
        // Set once a group is known unwritten: no later group can be stored.
        let mut dead = false;
        let mut first = true;
        loop {
            if !failed && launched < MAX_GROUPS_PER_LEADER && flights.len() < depth {
                if next.is_none() && flights.is_empty() {
                    if !first {
                        // Let the appenders just answered queue their next entries, so
                        // the next store call carries a full group, not a straggler.
                        YieldNow(false).await;
                    }
                    first = false;
                    let list = self.take_batch(self.config.max_batch);
                    if !list.is_empty() {
                        let ops = self.sign_batch(&list, None);
                        next = Some((Waiters::requeue_on_drop(list, &self.queue), ops));
                    }
                }
                if let Some((callers, ops)) = next.take() {
                    let flight = self.launch(w, callers, ops, flights.back().map(|f| f.last.id()));
                    tail = Some(flight.last.clone());
                    flights.push_back(flight);
                    launched += 1;
                    continue;
                }
            }
            let prepare = !failed && launched + usize::from(next.is_some()) < MAX_GROUPS_PER_LEADER;
            let launch = flights.len() < depth;
            let Some(front) = flights.front_mut() else {
                // Nothing in flight and nothing to send.
                return;
            };
            let Some(result) = self
                .wait_and_prepare(&mut front.write, &mut next, &mut tail, prepare, launch)
                .await
            else {
                // A group is signed and the pipeline has room: send it now.
                continue;
            };
            let flight = flights
                .pop_front()
                .expect("the front flight was just awaited");
            let n = flight.ops;
            let callers = flight.callers.take();
            match result {
                Ok(()) if !dead => {
                    // Stored, and with it every group before it that was in doubt.
                    let ops: Vec<(SignedOp, Entry)> = w.in_doubt.drain(..doubt + n).collect();
                    doubt = 0;
                    self.commit_written(ops, n, callers).await;
                }
                Ok(()) => {
                    // Cannot happen with a store that honours the guard.
                    tracing::error!(
                        "the store reports a group written after the group it continues was refused"
                    );
                    drop(Waiters::requeue_on_drop(callers, &self.queue));
                }
                Err(_) if dead => {
                    // Behind a group known unwritten (its ops already left the doubt
                    // list): neither was this one. Back to the queue.
                    drop(Waiters::requeue_on_drop(callers, &self.queue));
                }
                Err(e) => {
                    failed = true;
                    let unwritten = matches!(
                        e,
                        StoreError::Conflict { .. } | StoreError::MissingPredecessor { .. }
                    );
                    if unwritten {
                        // Nothing of this group was written, so nothing of the groups
                        // behind it can be (each continues the one before): they leave
                        // the doubt list now, and their callers go back to the queue
                        // even if this leader is dropped before their answers come.
                        dead = true;
                        w.in_doubt.truncate(doubt);
                        for f in flights.iter_mut() {
                            f.callers.requeue_to(&self.queue);
                        }
                    }
                    match e {
                        StoreError::Conflict { .. } => {
                            // Another writer holds our seqs.
                            tracing::warn!(error = %e, "append refused");
                            reply_all(callers, Error::Store, e);
                        }
                        StoreError::MissingPredecessor { .. } => {
                            // The group before it was not written: back to the queue.
                            tracing::debug!(error = %e, "group behind a failed group requeued");
                            drop(Waiters::requeue_on_drop(callers, &self.queue));
                        }
                        e => {
                            // May be stored: completed before any new op.
                            tracing::warn!(error = %e, "append failed");
                            doubt += n;
                            reply_all(callers, |e| Error::InDoubt { source: e }, e);
                        }
                    }
                }
            }
        }
        // Returning hands the lock on; a group signed but not sent (`next`) goes back
        // to the queue when dropped.
    }

    /// Sends a signed group to the store, guarded by `after` (the last op of a group
    /// still in flight; `None` when nothing is in flight).
    fn launch<'a>(
        &'a self,
        w: &mut Writer,
        mut callers: Waiters<'a>,
        ops: Vec<(SignedOp, Entry)>,
        after: Option<OpId>,
    ) -> Flight<'a> {
        let records: Vec<OpRecord> = ops.iter().map(|(op, _)| OpRecord::new(op, false)).collect();
        let last = ops
            .last()
            .map(|(op, _)| op.clone())
            .expect("a group holds at least one op");
        let n = ops.len();
        w.in_doubt.extend(ops);
        // From here the group may reach the store: if the leader's future is dropped,
        // its callers learn that the outcome is unknown, not that nothing happened.
        callers.in_flight();
        self.counters.append_calls.fetch_add(1, Ordering::Relaxed);
        let store = &self.store;
        // A pipelining store takes every group of the pipeline through its ordered
        // path, the first too, so none can overtake another.
        let write: BoxFuture<'a, std::result::Result<(), StoreError>> =
            if after.is_some() || store.append_pipeline() > 1 {
                Box::pin(async move { store.append_after(after.as_ref(), &records).await })
            } else {
                Box::pin(async move { store.append(&records).await })
            };
        Flight {
            callers,
            ops: n,
            last,
            write,
        }
    }

    /// Applies ops the store made durable, and answers the callers of the last `n`.
    async fn commit_written(&self, ops: Vec<(SignedOp, Entry)>, n: usize, callers: Vec<Pending>) {
        self.counters
            .appended
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        let replies: Vec<LoggedEvent> = ops[ops.len() - n..]
            .iter()
            .map(|(op, entry)| crate::state::event_of(op, entry.clone()))
            .collect();
        let events = self.state.write().commit(ops);
        self.notify(&events);
        self.settle_unblocked().await;
        let mut it = replies.into_iter();
        for p in callers {
            let mine: Vec<LoggedEvent> = it.by_ref().take(p.entries.len()).collect();
            let _ = p.reply.send(Ok(mine));
        }
    }

    /// Waits for `write`; meanwhile takes the requests that queue and signs them into
    /// `next`, continuing the chain after `tail`. Returns the store's answer, or
    /// `None` as soon as `next` holds a group and `launch` allows sending it.
    async fn wait_and_prepare<'a>(
        &'a self,
        write: &mut BoxFuture<'a, std::result::Result<(), StoreError>>,
        next: &mut Option<Group<'a>>,
        tail: &mut Option<SignedOp>,
        prepare: bool,
        launch: bool,
    ) -> Option<std::result::Result<(), StoreError>> {
        if !prepare {
            return Some(write.await);
        }
        loop {
            if launch && next.is_some() {
                return None;
            }
            let room = self
                .config
                .max_batch
                .saturating_sub(next.as_ref().map_or(0, |(_, ops)| ops.len()));
            if room == 0 {
                return Some(write.await);
            }
            // Listen before looking at the queue, so a request queued in between
            // still wakes us.
            let listener = self.queued.listen();
            let list = self.take_batch(room);
            if list.is_empty() {
                match futures::future::select(&mut *write, listener).await {
                    Either::Left((result, _)) => return Some(result),
                    Either::Right(((), _)) => continue,
                }
            }
            drop(listener);
            let ops = self.sign_batch(&list, tail.as_ref());
            *tail = ops.last().map(|(op, _)| op.clone());
            match next {
                Some((callers, group)) => {
                    callers.list.extend(list);
                    group.extend(ops);
                }
                None => *next = Some((Waiters::requeue_on_drop(list, &self.queue), ops)),
            }
            if !launch {
                // Signing took a while: collect the store's answer if it is in.
                if let std::task::Poll::Ready(result) = futures::poll!(&mut *write) {
                    return Some(result);
                }
            }
        }
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

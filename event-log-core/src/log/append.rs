//! Appending this sled's entries: sequencing, signing, group commit.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;

use bft_json_crdt::{Draft, KeyPair, Op, OpId, SignedOp};
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
    /// The entries' payloads, encoded (and checked against the limits) by the caller.
    payloads: Vec<Vec<u8>>,
    /// Times the store refused it because another writer of this sled held its seq.
    conflicts: u8,
    /// Nobody waits for the answer: entries that were in doubt, signed again after
    /// their seqs turned out taken ([`EventLog::resequence_in_doubt`]). Never
    /// withdrawn for a dropped receiver.
    detached: bool,
    reply: oneshot::Sender<Result<Vec<LoggedEvent>>>,
}

/// Most entries taken from the queue and signed as one job.
const SIGN_CHUNK: usize = 128;

/// How long one leader keeps sending groups before handing the writer lock on, so
/// its own append returns (merges, catch-ups and flushes do not wait for this: a
/// leader stops sending as soon as one waits). The pipeline drains at each handover,
/// so a short budget costs throughput under load.
const LEADER_BUDGET: std::time::Duration = std::time::Duration::from_millis(50);

/// Times one request is re-sequenced after its seq was found taken by another
/// writer of this sled, before the conflict is reported.
const MAX_OWN_CONFLICTS: u8 = 3;

/// Most groups in flight at once, whatever the store allows.
const MAX_PIPELINE: usize = 64;

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

/// The last op linked into this sled's chain: what the next op continues.
#[derive(Debug, Clone, Copy)]
struct Tip {
    seq: u64,
    id: OpId,
    lamport: u64,
}

/// What woke the leader.
enum Event {
    /// The oldest flight's answer.
    Answered(std::result::Result<(), StoreError>),
    /// The oldest signing job finished.
    Signed,
    /// A request was queued.
    Queued,
}

/// Requests linked into the chain, their ops being signed on rayon's pool.
struct Signing<'a> {
    callers: Waiters<'a>,
    entries: Vec<Entry>,
    rx: Option<oneshot::Receiver<Vec<SignedOp>>>,
    /// Set once the job is over.
    ready: bool,
    /// The signed ops, if the job delivered them.
    done: Option<Vec<SignedOp>>,
}

impl<'a> Signing<'a> {
    /// Signs `drafts` here (`inline`) or on rayon's pool.
    fn start(
        callers: Waiters<'a>,
        drafts: Vec<Draft>,
        entries: Vec<Entry>,
        key: &std::sync::Arc<KeyPair>,
        inline: bool,
    ) -> Self {
        if inline {
            return Signing {
                callers,
                entries,
                rx: None,
                ready: true,
                done: signed(Draft::sign_all(drafts, key)),
            };
        }
        let (tx, rx) = oneshot::channel();
        let key = key.clone();
        // One job per chunk, signed on one thread, first in first out: chunks finish
        // in chain order, the oldest first, while the pool's threads share them.
        rayon::spawn_fifo(move || {
            let ops = drafts.into_iter().map(|d| d.sign(&key)).collect();
            if let Some(ops) = signed(ops) {
                let _ = tx.send(ops);
            }
        });
        Signing {
            callers,
            entries,
            rx: Some(rx),
            ready: false,
            done: None,
        }
    }

    /// Ready once the pool's job is over.
    fn poll_done(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        use std::future::Future;
        let Some(rx) = self.rx.as_mut() else {
            return std::task::Poll::Ready(());
        };
        match std::pin::Pin::new(rx).poll(cx) {
            std::task::Poll::Ready(r) => {
                self.rx = None;
                self.ready = true;
                self.done = r.ok();
                std::task::Poll::Ready(())
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    /// The signed group, or `Err(self)` if the job was lost without an answer (its
    /// requests, never sent, go back to the queue when it is dropped).
    fn finish(self) -> std::result::Result<Group<'a>, Self> {
        match self.done {
            Some(ops) => Ok((self.callers, ops.into_iter().zip(self.entries).collect())),
            None => Err(self),
        }
    }
}

/// The signed ops, or `None` (logged) if a draft was not this log's: cannot happen,
/// the log drafts with its own key; the job then counts as lost and its requests go
/// back to the queue.
fn signed(
    ops: std::result::Result<Vec<SignedOp>, bft_json_crdt::WrongKey>,
) -> Option<Vec<SignedOp>> {
    ops.map_err(|e| tracing::error!(error = %e, "a signing job failed"))
        .ok()
}

/// A group handed to the store, not yet answered. Its ops sit in
/// [`Writer::in_doubt`], in chain order with the other flights'.
struct Flight<'a> {
    callers: Waiters<'a>,
    /// How many ops the group holds.
    ops: usize,
    /// Its last op's id: the next group continues after it.
    last: OpId,
    /// The store call.
    write: BoxFuture<'a, std::result::Result<(), StoreError>>,
    /// Its answer, once in (a later flight may answer before an earlier one).
    answer: Option<std::result::Result<(), StoreError>>,
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
    /// Concurrent calls are grouped: whoever takes the writer lock signs and writes
    /// every request waiting at that moment in one store call.
    ///
    /// An error with an unknown outcome (the store was unreachable mid-write) means
    /// the entries may be stored; they are then completed by the next append, never
    /// dropped, and their seqs are never reused for other content.
    ///
    /// # Cancellation and retries
    /// Dropping the returned future (a caller's timeout) before a writer took the
    /// request withdraws it: it is never written. Once a writer took it (it is being
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
        if let Some(seq) = self.excluded_since() {
            return Err(Error::Excluded {
                sled: self.sled_id(),
                seq,
            });
        }
        if let Some((held, signed)) = self.rolled_back() {
            return Err(Error::RolledBack { held, signed });
        }
        let limit = self.config.limits.max_payload;
        let mut payloads = Vec::with_capacity(entries.len());
        for e in &entries {
            e.validate().map_err(|detail| Error::BadPayload {
                id: OpId::default(),
                detail,
            })?;
            // Refused here, before signing: an op over the limits would be refused
            // by every replica, this one's next open included.
            let payload = e.to_payload();
            if payload.len() > limit {
                return Err(Error::OverLimits {
                    what: "payload",
                    limit,
                    actual: payload.len(),
                });
            }
            payloads.push(payload);
        }
        let (tx, rx) = oneshot::channel();
        self.queue.lock().push(Pending {
            entries,
            payloads,
            conflicts: 0,
            detached: false,
            reply: tx,
        });
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
                    // A leader writes for a bounded time and hands the lock on; if ours
                    // was not among the groups written, wait again for the reply or
                    // the lock.
                    self.lead(&mut writer).await;
                    let behind = std::mem::take(&mut writer.behind);
                    drop(writer);
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

    /// Completes appends whose outcome was unknown ([`Error::InDoubt`]), without
    /// new entries. Returns how many in-doubt entries it
    /// completed; an `Err` means the store still fails (nothing is lost: they stay in
    /// doubt for the next try).
    pub async fn flush(&self) -> Result<usize> {
        let mut w = self.lock_writer().await;
        if w.in_doubt.is_empty() {
            return Ok(0);
        }
        let n = self.retry_in_doubt(&mut w).await?;
        if std::mem::take(&mut w.behind) {
            // Their seqs were taken: signed again after catching up (see
            // `resequence_in_doubt`), and written now.
            drop(w);
            self.catch_up().await?;
            let mut w = self.lock_writer().await;
            self.lead(&mut w).await;
        }
        Ok(n)
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
                self.advance_mark(ops.last().map(|(op, _)| op));
                let events = self.state.write().commit(ops);
                self.notify(&events);
                self.settle_unblocked().await;
                Ok(n)
            }
            Err(e @ StoreError::Conflict { .. }) => {
                tracing::warn!(error = %e, "seqs of appends in doubt are taken; signing them again");
                self.resequence_in_doubt(w).await
            }
            Err(e) => Err(e),
        }
    }

    /// After the store refused the in-doubt ops with a conflict (nothing written; a
    /// previous process of this sled stored its own ops at those seqs, late): the
    /// in-doubt ops that are not stored were never written anywhere, so their
    /// entries are queued again, first, as requests nobody waits for (their callers
    /// already learnt "in doubt"), to be signed at new seqs once the log caught up
    /// (`behind`). Those that are stored (from an earlier try) come in by that
    /// catch-up. Entries with idempotency keys already committed are not written
    /// again. Returns how many entries were settled this way.
    async fn resequence_in_doubt(&self, w: &mut Writer) -> std::result::Result<usize, StoreError> {
        let mut unstored = Vec::new();
        for (op, entry) in &w.in_doubt {
            if self.store.get(&op.id()).await?.is_none() {
                unstored.push(entry.clone());
            }
        }
        let n = w.in_doubt.len();
        w.in_doubt.clear();
        w.behind = true;
        if !unstored.is_empty() {
            let payloads = unstored.iter().map(Entry::to_payload).collect();
            let (reply, _) = oneshot::channel();
            self.queue.lock().insert(
                0,
                Pending {
                    entries: unstored,
                    payloads,
                    conflicts: 0,
                    detached: true,
                    reply,
                },
            );
        }
        Ok(n)
    }

    /// Entries whose append outcome is unknown, waiting for the next append or flush.
    pub async fn in_doubt(&self) -> usize {
        self.lock_writer().await.in_doubt.len()
    }

    /// Writes everything queued. Holds the writer lock.
    ///
    /// An event loop over three kinds of work, so that none waits for another:
    /// - requests that queue are taken, linked into this sled's chain (seqs, deps,
    ///   ids: cheap, here) and signed on rayon's pool, in the background, while
    ///   groups are being written;
    /// - signed groups are sent as soon as they are ready and the pipeline has room:
    ///   a store that takes ordered appends ([`OpStore::append_pipeline`] > 1) gets
    ///   up to that many at once through [`OpStore::append_after`]; others get one at
    ///   a time. A group is stored only after the group it continues, so every
    ///   store's append order stays causal and a failed group never leaves a later
    ///   one stored after a hole;
    /// - answers are settled in order. A group stored commits (with every earlier
    ///   group that was in doubt) and answers its callers. A group whose outcome is
    ///   unknown stays in doubt (completed before any new op). A group the store
    ///   refused (conflict, missing predecessor) makes every group behind it known
    ///   unwritten: conflicts are reported, the other callers go back to the queue
    ///   (their seqs were never used).
    async fn lead(&self, w: &mut Writer) {
        if !w.in_doubt.is_empty() && !self.complete_in_doubt(w).await {
            return;
        }
        if w.behind {
            // Catch up first (the caller does, once the lock is free).
            return;
        }
        let refusal = |make: &dyn Fn() -> Error| {
            for p in std::mem::take(&mut *self.queue.lock()) {
                let _ = p.reply.send(Err(make()));
            }
        };
        if let Some(seq) = self.excluded_since() {
            // A merge since these requests queued showed that this sled equivocated.
            let sled = self.sled_id();
            refusal(&|| Error::Excluded { sled, seq });
            return;
        }
        if let Some((held, signed)) = self.rolled_back() {
            refusal(&|| Error::RolledBack { held, signed });
            return;
        }
        let depth = self.store.append_pipeline().clamp(1, MAX_PIPELINE);
        let started = std::time::Instant::now();
        // Idempotency keys of the requests this leader took.
        let mut keys: HashSet<String> = HashSet::new();
        let mut flights: VecDeque<Flight<'_>> = VecDeque::new();
        // Requests linked into the chain and being signed, in chain order.
        let mut signing: VecDeque<Signing<'_>> = VecDeque::new();
        // Signed, not yet sent.
        let mut next: Option<Group<'_>> = None;
        // The last op linked into the chain (of `signing`, `next` or a flight).
        let mut tip: Option<Tip> = None;
        // Set once a group was sent.
        let mut sent = false;
        // Ops at the front of `w.in_doubt` from groups answered with an unknown outcome.
        let mut doubt = 0;
        // Set once a group failed: nothing more is taken or sent; the rest is settled.
        let mut failed = false;
        // Set once a group is known unwritten: no later group can be stored.
        let mut dead = false;
        // Set once this leader yielded with nothing left to do.
        let mut idle = false;
        loop {
            // Signed groups join `next`, in chain order.
            while signing.front().is_some_and(|s| s.ready) {
                let job = signing.pop_front().expect("checked above");
                if failed {
                    // Nothing more is sent: its requests go back to the queue.
                    drop(job);
                    continue;
                }
                let Ok(group) = job.finish() else {
                    // Cannot happen (a panic on the pool aborts the process); be safe:
                    // the chain after `next` is broken, so nothing more is sent and
                    // every request not sent goes back to the queue.
                    tracing::error!("a signing job was lost; requeueing its requests");
                    failed = true;
                    break;
                };
                match &mut next {
                    Some((callers, ops)) => {
                        callers.list.extend(group.0.take());
                        ops.extend(group.1);
                    }
                    None => next = Some(group),
                }
            }
            let sending = !failed
                && started.elapsed() < LEADER_BUDGET
                && self.others_waiting.load(Ordering::Relaxed) == 0;
            // A store taking one group at a time gets it only once what is being
            // signed has joined it, and whoever queued meanwhile too: its calls are
            // the bottleneck (a sync each), so they should carry all there is.
            let one_at_a_time = depth == 1 && flights.is_empty() && next.is_some();
            if sending && one_at_a_time && signing.is_empty() {
                YieldNow(false).await;
                let room = self
                    .config
                    .max_batch
                    .saturating_sub(next.as_ref().map_or(0, |(_, ops)| ops.len()));
                let list = self.take_batch(room, &mut keys);
                if !list.is_empty() {
                    signing.push_back(self.start_signing(list, &mut tip, true));
                    continue;
                }
            }
            // `next` precedes everything being signed in the chain: it may go now.
            if sending
                && flights.len() < depth
                && (!one_at_a_time || signing.is_empty())
                && let Some((callers, ops)) = next.take()
            {
                let flight = self.launch(w, callers, ops, flights.back().map(|f| f.last));
                flights.push_back(flight);
                sent = true;
                continue;
            }
            // Take what queued (listening first, so a request queued in between still
            // wakes us), up to a full group beyond what is already prepared.
            // (Not while a one-at-a-time store waits for signing to finish: the
            // group goes as soon as it has, with whoever queued meanwhile.)
            let taking = sending && !one_at_a_time;
            let listener = taking.then(|| self.queued.listen());
            if taking {
                let prepared = next.as_ref().map_or(0, |(_, ops)| ops.len())
                    + signing.iter().map(|s| s.entries.len()).sum::<usize>();
                // At most a chunk at a time, so a crowd of requests becomes several
                // groups: the first is sent while the next ones are still signing.
                let room = self
                    .config
                    .max_batch
                    .saturating_sub(prepared)
                    .min(SIGN_CHUNK);
                if flights.is_empty() && next.is_none() && signing.is_empty() && sent && !idle {
                    // Everything written and answered: let the appenders just
                    // answered queue their next entries, so the next store call
                    // carries a full group, not a straggler.
                    idle = true;
                    YieldNow(false).await;
                }
                let list = self.take_batch(room, &mut keys);
                if !list.is_empty() {
                    idle = false;
                    // Nothing else to do meanwhile: sign here. Otherwise in the
                    // background, so answers are settled and groups sent meanwhile.
                    let inline = flights.is_empty() && signing.is_empty();
                    signing.push_back(self.start_signing(list, &mut tip, inline));
                    continue;
                }
            }
            if flights.is_empty() && (signing.is_empty() || !sending) {
                // Nothing in flight, nothing being signed, nothing queued (or no
                // more sending): hand the lock on. Requests prepared but not sent go
                // back to the queue when dropped.
                return;
            }
            match self.next_event(&mut flights, &mut signing, listener).await {
                Event::Signed | Event::Queued => continue,
                Event::Answered(result) => {
                    let flight = flights.pop_front().expect("the front flight answered");
                    let n = flight.ops;
                    let callers = flight.callers.take();
                    if flights.is_empty() {
                        // Chain links of later groups come from `tip`; with nothing
                        // in flight and nothing prepared the state is the source.
                        if signing.is_empty() && next.is_none() {
                            tip = None;
                        }
                    }
                    match result {
                        Ok(()) if !dead => {
                            // Stored, and with it every earlier group in doubt.
                            let ops: Vec<(SignedOp, Entry)> =
                                w.in_doubt.drain(..doubt + n).collect();
                            doubt = 0;
                            self.commit_written(ops, n, callers).await;
                        }
                        Ok(()) => {
                            // Cannot happen with a store that honours the guard.
                            tracing::error!(
                                "the store reports a group written after the group it \
                                 continues was refused"
                            );
                            drop(Waiters::requeue_on_drop(callers, &self.queue));
                        }
                        Err(_) if dead => {
                            // Behind a group known unwritten (its ops already left
                            // the doubt list): neither was this one. Back to the queue.
                            drop(Waiters::requeue_on_drop(callers, &self.queue));
                        }
                        Err(e) => {
                            failed = true;
                            let unwritten = matches!(
                                e,
                                StoreError::Conflict { .. } | StoreError::MissingPredecessor { .. }
                            );
                            if unwritten {
                                // Nothing of this group was written, so nothing of the
                                // groups behind it can be (each continues the one
                                // before): they leave the doubt list now, and their
                                // callers go back to the queue even if this leader is
                                // dropped before their answers come.
                                dead = true;
                                w.in_doubt.truncate(doubt);
                                for f in flights.iter_mut() {
                                    f.callers.requeue_to(&self.queue);
                                }
                            }
                            match e {
                                StoreError::Conflict { author, .. } if author == self.sled_id() => {
                                    // Another writer of this sled took the seq: a
                                    // previous process's last write that committed
                                    // after this one opened. Catch up, then
                                    // re-sequence (a few times at most).
                                    tracing::info!(error = %e, "own seq taken; catching up and re-sequencing");
                                    w.behind = true;
                                    let (again, give_up): (Vec<_>, Vec<_>) = callers
                                        .into_iter()
                                        .map(|mut p| {
                                            p.conflicts += 1;
                                            p
                                        })
                                        .partition(|p| p.conflicts < MAX_OWN_CONFLICTS);
                                    reply_all(give_up, Error::Store, e);
                                    drop(Waiters::requeue_on_drop(again, &self.queue));
                                }
                                StoreError::Conflict { .. } => {
                                    tracing::warn!(error = %e, "append refused");
                                    reply_all(callers, Error::Store, e);
                                }
                                StoreError::MissingPredecessor { .. } => {
                                    tracing::debug!(error = %e, "group requeued");
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
            }
        }
    }

    /// Links `list` into the chain after `tip` (after the last committed op when
    /// `None`: nothing is prepared or in flight), moves `tip` on, and signs the
    /// drafts here (`inline`) or on rayon's pool.
    fn start_signing<'a>(
        &'a self,
        list: Vec<Pending>,
        tip: &mut Option<Tip>,
        inline: bool,
    ) -> Signing<'a> {
        let (drafts, entries, new_tip) = self.draft_batch(&list, *tip);
        *tip = Some(new_tip);
        let callers = Waiters::requeue_on_drop(list, &self.queue);
        Signing::start(callers, drafts, entries, &self.key, inline)
    }

    /// Waits for the first of: the oldest flight's answer, the oldest signing job,
    /// a new request (when `listener` is given).
    async fn next_event(
        &self,
        flights: &mut VecDeque<Flight<'_>>,
        signing: &mut VecDeque<Signing<'_>>,
        mut listener: Option<event_listener::EventListener>,
    ) -> Event {
        futures::future::poll_fn(|cx| {
            use std::future::Future;
            use std::task::Poll;
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
                return Poll::Ready(Event::Answered(r));
            }
            if let Some(job) = signing.front_mut()
                && job.poll_done(cx).is_ready()
            {
                return Poll::Ready(Event::Signed);
            }
            if let Some(l) = listener.as_mut()
                && std::pin::Pin::new(l).poll(cx).is_ready()
            {
                return Poll::Ready(Event::Queued);
            }
            Poll::Pending
        })
        .await
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
            .map(|(op, _)| op.id())
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
            answer: None,
        }
    }

    /// Applies ops the store made durable, and answers the callers of the last `n`.
    async fn commit_written(&self, ops: Vec<(SignedOp, Entry)>, n: usize, callers: Vec<Pending>) {
        self.counters
            .appended
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        crate::metrics::group_written(ops.len());
        let replies: Vec<LoggedEvent> = ops[ops.len() - n..]
            .iter()
            .map(|(op, entry)| crate::state::event_of(op, entry.clone()))
            .collect();
        self.advance_mark(ops.last().map(|(op, _)| op));
        let events = self.state.write().commit(ops);
        self.notify(&events);
        // Answer before anything else is awaited: if this leader's future is dropped
        // later, these callers still learn that their entries are stored.
        let mut it = replies.into_iter();
        for p in callers {
            let mine: Vec<LoggedEvent> = it.by_ref().take(p.entries.len()).collect();
            let _ = p.reply.send(Ok(mine));
        }
        self.settle_unblocked().await;
    }

    /// Peer ops that waited in the buffer for one of our own ops (possible when a peer
    /// saw our op in a shared store before we committed it): validate, persist and
    /// apply them now. On a store error they are dropped from the buffer and logged;
    /// the peer sends them again.
    async fn settle_unblocked(&self) {
        let ready = {
            let mut st = self.state.write();
            let ops = st.replica.take_unblocked();
            if ops.is_empty() {
                return;
            }
            st.replica.ingest(ops).ready
        };
        if let Err(e) = self.persist_and_commit(ready, |_| false).await {
            tracing::warn!(error = %e, "could not persist buffered ops released by a local append");
        }
    }

    /// `(held, signed)` while the store holds fewer of this sled's ops than it
    /// signed (see [`crate::watermark`]); `None` once they are back.
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

    /// Moves this sled's watermark to `op`, its newest durable op.
    pub(crate) fn advance_mark(&self, op: Option<&SignedOp>) {
        if let (Some(w), Some(op)) = (&self.config.watermark, op)
            && !self.config.read_only
        {
            let mark = crate::watermark::Mark {
                seq: op.seq(),
                id: op.id(),
            };
            w.0.save(mark.seal(self.key.signing_key()));
        }
    }

    /// The seq this sled is excluded from the view from, if it equivocated: its
    /// appends would never be visible.
    fn excluded_since(&self) -> Option<u64> {
        self.state.read().replica.excluded_from(&self.sled_id())
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
    fn take_batch(&self, room: usize, keys: &mut HashSet<String>) -> Vec<Pending> {
        if room == 0 {
            return Vec::new();
        }
        let mut q = self.queue.lock();
        let mut taken = Vec::new();
        let mut left = Vec::new();
        let mut n = 0;
        let mut full = false;
        for p in q.drain(..) {
            if p.reply.is_canceled() && !p.detached {
                // Its caller gave up before any writer took it: withdrawn.
                continue;
            }
            // First come, first taken: once one does not fit, the rest wait too.
            full = full || (!taken.is_empty() && n + p.entries.len() > room);
            if full {
                left.push(p);
                continue;
            }
            match self.resolve_keys(&p, keys) {
                Keys::Fresh => {
                    for k in p.entries.iter().filter_map(entry_key) {
                        keys.insert(k.to_owned());
                    }
                    n += p.entries.len();
                    taken.push(p);
                }
                // The same key is being written for another request: wait for its
                // outcome (the next leader finds it committed).
                Keys::InFlight => left.push(p),
                Keys::Answered(reply) => {
                    let _ = p.reply.send(reply);
                }
            }
        }
        *q = left;
        taken
    }

    /// Whether a request's idempotency keys are new, being written, or already
    /// answer it.
    fn resolve_keys(&self, p: &Pending, in_flight: &HashSet<String>) -> Keys {
        if !p.entries.iter().any(|e| entry_key(e).is_some()) {
            return Keys::Fresh;
        }
        if p.entries
            .iter()
            .filter_map(entry_key)
            .any(|k| in_flight.contains(k))
        {
            return Keys::InFlight;
        }
        let st = self.state.read();
        let mut existing = Vec::new();
        for e in &p.entries {
            let Some(k) = entry_key(e) else { continue };
            match st.keyed(&self.sled_id(), k) {
                Some(held) if same_transition(&held.entry, e) => existing.push(held.clone()),
                Some(held) => {
                    return Keys::Answered(Err(Error::IdempotencyKeyReused {
                        key: k.to_owned(),
                        existing: held.event_id,
                    }));
                }
                None if existing.is_empty() => return Keys::Fresh,
                None => {
                    return Keys::Answered(Err(Error::IdempotencyKeyReused {
                        key: k.to_owned(),
                        existing: existing[0].event_id,
                    }));
                }
            }
        }
        if existing.len() == p.entries.len() {
            Keys::Answered(Ok(existing))
        } else if existing.is_empty() {
            Keys::Fresh
        } else {
            // Part of the call was written before under these keys, part not: a
            // retry must repeat the call as it was.
            Keys::Answered(Err(Error::IdempotencyKeyReused {
                key: p
                    .entries
                    .iter()
                    .find_map(entry_key)
                    .unwrap_or_default()
                    .to_owned(),
                existing: existing[0].event_id,
            }))
        }
    }

    /// Links the batch's ops (seqs, deps, lamports, ids), reading the state under its
    /// lock; the costly signing happens after the lock is released.
    ///
    /// With `after` (the last op linked before, whose group is still being signed or
    /// written), the batch continues that op's chain and depends on nothing else.
    /// Returns the drafts, their entries and the new tip of the chain.
    fn draft_batch(&self, batch: &[Pending], after: Option<Tip>) -> (Vec<Draft>, Vec<Entry>, Tip) {
        let (mut seq, mut prev, mut heads) = match after {
            Some(tip) => (tip.seq, Some((tip.id, tip.lamport)), Vec::new()),
            None => {
                let st = self.state.read();
                let replica = &st.replica;
                let seq = replica.max_seq(&self.sled_id());
                let prev: Option<(OpId, u64)> = replica
                    .ops_after(&self.sled_id(), seq.saturating_sub(1))
                    .into_iter()
                    .find(|o| o.seq() == seq)
                    .map(|o| (o.id(), o.lamport()));
                // Other sleds' heads we know, newest first, bounded.
                let mut heads: Vec<(u64, OpId)> = replica
                    .heads()
                    .into_iter()
                    .filter_map(|h| replica.get(&h))
                    .filter(|o| o.author() != self.sled_id())
                    .map(|o| (o.lamport(), o.id()))
                    .collect();
                heads.sort_unstable_by(|a, b| b.cmp(a));
                heads.truncate(self.config.max_extra_deps);
                (seq, prev, heads)
            }
        };
        let mut drafts: Vec<Draft> = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for p in batch {
            for (entry, payload) in p.entries.iter().zip(&p.payloads) {
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
                let draft = Op {
                    author: self.sled_id(),
                    seq,
                    lamport: max_lamport + 1,
                    deps,
                    payload: payload.clone(),
                }
                .draft(&self.key);
                // Ids do not cover signatures: link the chain first, sign in parallel.
                prev = Some((draft.id(), draft.lamport()));
                drafts.push(draft);
                entries.push(entry.clone());
            }
        }
        let (id, lamport) = prev.expect("a batch holds at least one entry");
        (drafts, entries, Tip { seq, id, lamport })
    }
}

/// What a request's idempotency keys say about it.
enum Keys {
    /// No key of it was used: write it.
    Fresh,
    /// A key of it is being written for another request.
    InFlight,
    /// Answered from what is stored.
    Answered(Result<Vec<LoggedEvent>>),
}

/// The idempotency key of an entry, if it has one.
fn entry_key(e: &Entry) -> Option<&str> {
    match e {
        Entry::Transition(t) => t.idempotency_key.as_deref(),
        _ => None,
    }
}

/// A retry carries the same transition; only its timestamp may differ.
fn same_transition(held: &Entry, retry: &Entry) -> bool {
    match (held, retry) {
        (Entry::Transition(a), Entry::Transition(b)) => {
            a.story_id == b.story_id
                && a.from_stage == b.from_stage
                && a.to_stage == b.to_stage
                && a.pipeline_event == b.pipeline_event
        }
        _ => false,
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

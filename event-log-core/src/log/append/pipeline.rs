//! The pipeline one leader runs: an event loop over three kinds of work, so that
//! none waits for another.
//!
//! - requests that queue are admitted (taken and linked into this sled's chain:
//!   cheap, here) and signed, in the background while groups are being written;
//! - signed groups are launched as soon as they are ready and the pipeline has
//!   room: a store that takes ordered appends ([`OpStore::append_pipeline`] > 1)
//!   gets up to that many at once through [`OpStore::append_after`]; others get one
//!   at a time. A group is stored only after the group it continues, so every
//!   store's append order stays causal and a failed group never leaves a later one
//!   stored after a hole;
//! - answers are settled in chain order. A group stored is applied (with every
//!   earlier group that was in doubt) and answers its callers; for a failed group,
//!   [`Fate::of`] decides.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Instant;

use bft_json_crdt::SignedOp;
use futures::future::BoxFuture;

use super::draft::Tip;
use super::fate::Fate;
use super::flight::{Flight, Wake, next_wake};
use super::signing::{Group, Signing};
use super::waiters::{Waiters, reply_all};
use super::{EventLog, LeaderState, Pending, YieldNow};
use crate::entry::Entry;
use crate::error::Error;
use crate::store::{OpRecord, OpStore, StoreError};

/// Most entries taken from the queue and signed as one job.
const SIGN_CHUNK: usize = 128;

/// How long one leader keeps sending groups before handing the leader lock on, so
/// its own append returns (merges, catch-ups and flushes do not wait for this: a
/// leader stops sending as soon as one waits). The pipeline drains at each handover,
/// so a short budget costs throughput under load.
const LEADER_BUDGET: std::time::Duration = std::time::Duration::from_millis(50);

/// Times one request is re-sequenced after its seq was found taken by another
/// writer of this sled, before the conflict is reported.
const MAX_OWN_CONFLICTS: u8 = 3;

/// Most groups in flight at once, whatever the store allows.
const MAX_PIPELINE: usize = 64;

/// Whether the pipeline still takes and sends work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Admitting, signing, launching and settling.
    Running,
    /// A group failed (its outcome unknown) or a signing job was lost: nothing more
    /// is admitted or launched; the flights' answers are settled.
    Draining,
    /// A group is known unwritten: no later group can be stored (each continues
    /// the one before), so every later answer sends its callers back to the queue.
    Broken,
}

/// Whether the leader already let the appenders it answered queue again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lull {
    /// No group launched yet.
    NothingSent,
    /// Groups launched since the last lull.
    Busy,
    /// Everything was answered and the leader yielded once; it does not again until
    /// it admits more.
    Yielded,
}

/// One leader's pipeline: its flights, signing jobs, the next group and the
/// in-doubt ops it added. Dropped at any point, nothing is lost (see [`Waiters`]).
pub(super) struct Pipeline<'a, S: OpStore> {
    log: &'a EventLog<S>,
    state: &'a mut LeaderState,
    /// Most groups in flight at once.
    depth: usize,
    started: Instant,
    phase: Phase,
    lull: Lull,
    /// Idempotency keys of the requests this leader admitted.
    keys: HashSet<String>,
    /// Groups handed to the store, oldest first.
    flights: VecDeque<Flight<'a>>,
    /// Requests linked into the chain and being signed, in chain order.
    signing: VecDeque<Signing<'a>>,
    /// Signed, not yet launched; it precedes everything being signed.
    next: Option<Group<'a>>,
    /// The last op linked into the chain (of `signing`, `next` or a flight).
    tip: Option<Tip>,
    /// Ops at the front of `state.in_doubt` from groups answered with an unknown
    /// outcome.
    doubt: usize,
}

impl<S: OpStore> Drop for Pipeline<'_, S> {
    /// Requests not sent go back to the front of the queue in chain order: the
    /// newest are dropped first, so the oldest end up in front.
    fn drop(&mut self) {
        while let Some(job) = self.signing.pop_back() {
            drop(job);
        }
        drop(self.next.take());
        while let Some(flight) = self.flights.pop_back() {
            drop(flight);
        }
    }
}

impl<'a, S: OpStore> Pipeline<'a, S> {
    /// A pipeline for the holder of the leader lock.
    pub(super) fn new(log: &'a EventLog<S>, state: &'a mut LeaderState) -> Self {
        Pipeline {
            depth: log.store.append_pipeline().clamp(1, MAX_PIPELINE),
            log,
            state,
            started: Instant::now(),
            phase: Phase::Running,
            lull: Lull::NothingSent,
            keys: HashSet::new(),
            flights: VecDeque::new(),
            signing: VecDeque::new(),
            next: None,
            tip: None,
            doubt: 0,
        }
    }

    /// Runs until nothing is in flight and nothing more may be sent. Requests
    /// admitted but not sent go back to the queue when dropped.
    pub(super) async fn run(mut self) {
        loop {
            self.collect_signed();
            let sending = self.sending();
            // A store taking one group at a time gets it only once what is being
            // signed has joined it, and whoever queued meanwhile too: its calls are
            // the bottleneck (a sync each), so they should carry all there is.
            let one_at_a_time = self.depth == 1 && self.flights.is_empty() && self.next.is_some();
            if sending && one_at_a_time && self.signing.is_empty() {
                YieldNow(false).await;
                if self.admit(self.room(), true) {
                    continue;
                }
            }
            if sending
                && self.flights.len() < self.depth
                && (!one_at_a_time || self.signing.is_empty())
                && self.launch_next()
            {
                continue;
            }
            // Admit what queued (listening first, so a request queued in between
            // still wakes us). Not while a one-at-a-time store waits for signing to
            // finish: the group goes as soon as it has, with whoever queued meanwhile.
            let taking = sending && !one_at_a_time;
            let listener = taking.then(|| self.log.queued.listen());
            if taking {
                if self.all_settled() && self.lull == Lull::Busy {
                    // Everything written and answered: let the appenders just
                    // answered queue their next entries, so the next store call
                    // carries a full group, not a straggler.
                    self.lull = Lull::Yielded;
                    YieldNow(false).await;
                }
                // Nothing else to do meanwhile: sign here. Otherwise in the
                // background, so answers are settled and groups sent meanwhile. At
                // most a chunk at a time, so a crowd of requests becomes several
                // groups: the first is sent while the next ones are still signing.
                let inline = self.flights.is_empty() && self.signing.is_empty();
                if self.admit(self.room().min(SIGN_CHUNK), inline) {
                    continue;
                }
            }
            if self.flights.is_empty() && (self.signing.is_empty() || !sending) {
                return;
            }
            match next_wake(&mut self.flights, &mut self.signing, listener).await {
                Wake::Signed | Wake::Queued => {}
                Wake::Answered(result) => self.settle(result).await,
            }
        }
    }

    /// Whether more groups may be admitted and launched: still running, within the
    /// leader's budget, and no merge, catch-up or flush waiting for the lock.
    fn sending(&self) -> bool {
        self.phase == Phase::Running
            && self.started.elapsed() < LEADER_BUDGET
            && self.log.others_waiting.load(Ordering::Relaxed) == 0
    }

    /// Nothing signing, signed or in flight.
    fn all_settled(&self) -> bool {
        self.flights.is_empty() && self.next.is_none() && self.signing.is_empty()
    }

    /// Entries a group may still take beyond what is prepared (signed or signing).
    fn room(&self) -> usize {
        let prepared = self.next.as_ref().map_or(0, |(_, ops)| ops.len())
            + self.signing.iter().map(|s| s.entries.len()).sum::<usize>();
        self.log.config.max_batch.saturating_sub(prepared)
    }

    /// Takes queued requests (at most `room` entries), links them after the tip and
    /// starts signing them. Returns whether it took any.
    fn admit(&mut self, room: usize, inline: bool) -> bool {
        let list = self.log.take_batch(room, &mut self.keys);
        if list.is_empty() {
            return false;
        }
        if self.lull == Lull::Yielded {
            self.lull = Lull::Busy;
        }
        let job = self.log.start_signing(list, &mut self.tip, inline);
        self.signing.push_back(job);
        true
    }

    /// Finished signing jobs join `next`, in chain order.
    fn collect_signed(&mut self) {
        while self.signing.front().is_some_and(|s| s.ready) {
            let job = self.signing.pop_front().expect("checked above");
            if self.phase != Phase::Running {
                // Nothing more is sent: its requests go back to the queue.
                drop(job);
                continue;
            }
            let Ok(group) = job.finish() else {
                // Cannot happen (a panic on the pool aborts the process); be safe:
                // the chain after `next` is broken, so nothing more is sent and
                // every request not sent goes back to the queue.
                tracing::error!("a signing job was lost; requeueing its requests");
                self.phase = Phase::Draining;
                break;
            };
            match &mut self.next {
                Some((callers, ops)) => {
                    callers.list.extend(group.0.take());
                    ops.extend(group.1);
                }
                None => self.next = Some(group),
            }
        }
    }

    /// Sends `next` to the store, guarded by the last op of the newest flight.
    /// Returns whether there was a group to send.
    fn launch_next(&mut self) -> bool {
        let Some((mut callers, ops)) = self.next.take() else {
            return false;
        };
        let after = self.flights.back().map(|f| f.last);
        let records: Vec<OpRecord> = ops
            .iter()
            .map(|(op, entry)| OpRecord::with_entry(op, false, entry))
            .collect();
        let last = ops
            .last()
            .map(|(op, _)| op.id())
            .expect("a group holds at least one op");
        let n = ops.len();
        self.state.in_doubt.extend(ops);
        callers.in_flight();
        self.log
            .counters
            .append_calls
            .fetch_add(1, Ordering::Relaxed);
        let store = &self.log.store;
        // A pipelining store takes every group of the pipeline through its ordered
        // path, the first too, so none can overtake another.
        let write: BoxFuture<'a, Result<(), StoreError>> =
            if after.is_some() || store.append_pipeline() > 1 {
                Box::pin(async move { store.append_after(after.as_ref(), &records).await })
            } else {
                Box::pin(async move { store.append(&records).await })
            };
        self.flights.push_back(Flight {
            callers,
            ops: n,
            last,
            write,
            answer: None,
        });
        self.lull = Lull::Busy;
        true
    }

    /// Settles the oldest flight's answer.
    async fn settle(&mut self, result: Result<(), StoreError>) {
        let flight = self.flights.pop_front().expect("the front flight answered");
        let n = flight.ops;
        let callers = flight.callers.take();
        if self.all_settled() {
            // Chain links of later groups come from `tip`; with nothing in flight and
            // nothing prepared the state is the source.
            self.tip = None;
        }
        let queue = &self.log.queue;
        match (result, self.phase) {
            (Ok(()), Phase::Broken) => {
                // Cannot happen with a store that honours the guard.
                tracing::error!(
                    "the store reports a group written after the group it continues was refused"
                );
                Waiters::requeue(callers, queue);
            }
            (Ok(()), _) => {
                // Stored, and with it every earlier group in doubt.
                let ops: Vec<(SignedOp, Entry)> =
                    self.state.in_doubt.drain(..self.doubt + n).collect();
                self.doubt = 0;
                self.log.settle_stored(ops, n, callers).await;
            }
            // Behind a group known unwritten (its ops already left the doubt list):
            // neither was this one. Back to the queue.
            (Err(_), Phase::Broken) => Waiters::requeue(callers, queue),
            (Err(e), _) => self.fail(e, n, callers),
        }
    }

    /// A group of `n` ops failed with `e`: nothing more is sent, and its callers
    /// learn their fate.
    fn fail(&mut self, e: StoreError, n: usize, callers: Vec<Pending>) {
        let queue = &self.log.queue;
        let fate = Fate::of(&e, &self.log.sled_id());
        if fate.unwritten() {
            // Nothing of this group was written, so nothing of the groups behind it
            // can be: they leave the doubt list now, and their callers go back to the
            // queue even if this leader is dropped before their answers come.
            self.phase = Phase::Broken;
            self.state.in_doubt.truncate(self.doubt);
            for f in self.flights.iter_mut() {
                f.callers.requeue_to(queue);
            }
        } else {
            self.phase = Phase::Draining;
        }
        match fate {
            Fate::OwnSeqTaken => {
                tracing::info!(error = %e, "own seq taken; catching up and re-sequencing");
                self.state.behind = true;
                let (again, give_up): (Vec<_>, Vec<_>) = callers
                    .into_iter()
                    .map(|mut p| {
                        p.conflicts += 1;
                        p
                    })
                    .partition(|p| p.conflicts < MAX_OWN_CONFLICTS);
                reply_all(give_up, Error::Store, e);
                Waiters::requeue(again, queue);
            }
            Fate::Refused => {
                tracing::warn!(error = %e, "append refused");
                reply_all(callers, Error::Store, e);
            }
            Fate::Requeue => {
                tracing::debug!(error = %e, "group requeued");
                Waiters::requeue(callers, queue);
            }
            Fate::InDoubt => {
                tracing::warn!(error = %e, "append failed");
                self.doubt += n;
                reply_all(callers, |e| Error::InDoubt { source: e }, e);
            }
        }
    }
}

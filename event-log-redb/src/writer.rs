//! The writer thread: the only place that writes, one group commit at a time.
//!
//! Append requests arrive on a channel. The thread blocks for the first, takes every
//! request already queued behind it (up to `max_group`), and runs them all in one
//! write transaction: one commit, one `fsync`. Each request is checked on its own
//! against the tables as the earlier requests of the group left them, so a conflict
//! fails only its own request. Requests are answered only after the commit returned.
//!
//! Its parts have the names of the SQLite writer's: `Writer` (the handle),
//! `Request` (one append waiting), `run` (the group loop), `commit_group` (commit a
//! group and answer each request), `write_group` (the one transaction),
//! `check_after` (the ordered-append guard) and the conflict rule applied through
//! [`event_log_core::backend::rules::plan_append`].

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use bft_json_crdt::{AuthorId, OpId};
use event_log_core::backend::rules::{self, RuleOp};
use event_log_core::{OpRecord, StoreError};
use parking_lot::Mutex;
use redb::{Database, ReadableTable, Table};
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::error;
use crate::record;
use crate::stats::Counters;
use crate::tables::{
    AuthorKey, BY_AUTHOR, BY_CAUSAL, BY_ID, BY_KEY, BY_STORY, CausalKey, IdemKey, OPS, PRIMARY,
    StoryKey,
};

/// One op of a request, encoded by the caller so the writer only inserts.
pub(crate) struct PendingOp {
    id: [u8; 32],
    author: [u8; 32],
    seq: u64,
    evidence: bool,
    lamport: u64,
    story: Option<String>,
    key: Option<String>,
    record: Vec<u8>,
}

impl PendingOp {
    /// Encodes `r`; fails if it cannot be stored at all.
    pub(crate) fn new(r: &OpRecord) -> Result<Self, StoreError> {
        Ok(PendingOp {
            id: r.id.0,
            author: r.author.0,
            seq: r.seq,
            evidence: r.evidence,
            lamport: r.lamport,
            story: r.story.clone(),
            key: r.key.clone(),
            record: record::encode(r)?,
        })
    }
}

impl RuleOp for PendingOp {
    fn id(&self) -> OpId {
        OpId(self.id)
    }
    fn author(&self) -> AuthorId {
        AuthorId(self.author)
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn evidence(&self) -> bool {
        self.evidence
    }
}

/// One `append` call waiting for the writer.
struct Request {
    ops: Vec<PendingOp>,
    /// Written only if this op id is stored (an ordered append).
    after: Option<[u8; 32]>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The handle the store keeps: the request channel and the thread.
pub(crate) struct Writer {
    sender: Mutex<Option<Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Opens the database again after an I/O error: redb refuses every later operation
/// of a `Database` whose write failed (`PreviousIo`, "close and re-open the
/// database"), so a full disk that empties again would otherwise fail every append
/// until the process restarts. Called by the writer thread before its next group,
/// with its own handle already dropped; returns the new handle.
pub(crate) type Reopen = Box<dyn FnMut() -> Result<Arc<Database>, StoreError> + Send>;

/// What the thread needs to know.
pub(crate) struct WriterSettings {
    pub(crate) max_group: usize,
    pub(crate) two_phase_commit: bool,
}

fn stopped() -> StoreError {
    StoreError::Unavailable {
        message: "the redb store is closed (its writer thread has stopped)".into(),
        source: None,
    }
}

impl Writer {
    /// Starts the writer thread on `db`; after an I/O error it writes on the
    /// database `reopen` returns.
    pub(crate) fn start(
        db: Arc<Database>,
        settings: WriterSettings,
        counters: Arc<Counters>,
        reopen: Reopen,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("redb-writer".into())
            .spawn(move || run(db, reopen, &rx, &settings, &counters))
            .map_err(|e| StoreError::backend("cannot start the redb writer thread", e))?;
        Ok(Writer {
            sender: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues an append (when this future is first polled; requests are written in
    /// queue order) and waits for its commit (or its refusal). With `after`, it is
    /// written only if that op is stored by then (else `MissingPredecessor`).
    pub(crate) async fn append(
        &self,
        ops: Vec<PendingOp>,
        after: Option<[u8; 32]>,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        {
            let sender = self.sender.lock();
            let sender = sender.as_ref().ok_or_else(stopped)?;
            sender
                .send(Request { ops, after, reply })
                .map_err(|_| stopped())?;
        }
        answer.await.map_err(|_| stopped())?
    }

    /// Closes the channel. The thread commits what is already queued, then exits;
    /// join the returned handle to wait for that.
    pub(crate) fn stop(&self) -> Option<JoinHandle<()>> {
        drop(self.sender.lock().take());
        self.thread.lock().take()
    }
}

/// The thread body: group commits until the channel is closed and drained. After a
/// group failed with an I/O error, the database is opened again (`reopen`) before
/// the next group; while that fails, each group fails with its error.
fn run(
    db: Arc<Database>,
    mut reopen: Reopen,
    rx: &Receiver<Request>,
    settings: &WriterSettings,
    counters: &Counters,
) {
    debug!("redb writer started");
    let mut db = Some(db);
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < settings.max_group {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let current = match db.take() {
            Some(current) => current,
            None => match reopen() {
                Ok(reopened) => {
                    info!("redb database reopened after an I/O error");
                    reopened
                }
                Err(e) => {
                    Counters::add(&counters.failures, group.len() as u64);
                    warn!(error = %e, "reopening the redb database after an I/O error failed");
                    for req in group {
                        let _ = req.reply.send(Err(e.clone()));
                    }
                    continue;
                }
            },
        };
        if commit_group(&current, group, settings, counters) == Health::Ok {
            db = Some(current);
        }
        // Else `current` is dropped here: the next group reopens the database.
    }
    debug!("redb writer stopped");
}

/// Whether the database can go on after a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Committed, or failed without an I/O error.
    Ok,
    /// An I/O error: redb refuses every later operation of this `Database`.
    Reopen,
}

/// A group's failure: the error, and whether it was an I/O error.
struct GroupError {
    error: StoreError,
    io: bool,
}

/// Commits one group and answers every request in it.
fn commit_group(
    db: &Database,
    group: Vec<Request>,
    settings: &WriterSettings,
    counters: &Counters,
) -> Health {
    let size = group.len() as u64;
    counters
        .largest_group
        .fetch_max(size, std::sync::atomic::Ordering::Relaxed);
    match write_group(db, &group, settings.two_phase_commit) {
        Ok(outcomes) => {
            Counters::add(&counters.commits, 1);
            let written: u64 = outcomes.iter().filter_map(|o| o.as_ref().ok()).sum();
            debug!(requests = size, ops = written, "group committed");
            for (req, outcome) in group.into_iter().zip(outcomes) {
                let answer = match outcome {
                    Ok(n) => {
                        Counters::add(&counters.appends, 1);
                        Counters::add(&counters.ops_written, n);
                        Ok(())
                    }
                    Err(e) => {
                        Counters::add(&counters.conflicts, 1);
                        warn!(error = %e, "append refused");
                        Err(e)
                    }
                };
                // The caller may have given up waiting; its ops are committed anyway.
                let _ = req.reply.send(answer);
            }
            Health::Ok
        }
        Err(GroupError { error: e, io }) => {
            Counters::add(&counters.failures, size);
            error!(error = %e, requests = size, "group commit failed; nothing of it was stored");
            for req in group {
                let _ = req.reply.send(Err(e.clone()));
            }
            if io { Health::Reopen } else { Health::Ok }
        }
    }
}

/// Runs a group in one write transaction. The outer error is a storage failure (the
/// transaction is dropped, so nothing is stored), saying whether it was an I/O error;
/// the inner results are per request: the number of new ops written, or the conflict
/// that refused it.
fn write_group(
    db: &Database,
    group: &[Request],
    two_phase_commit: bool,
) -> Result<Vec<Result<u64, StoreError>>, GroupError> {
    let io = std::cell::Cell::new(false);
    let outcomes = write_group_inner(db, group, two_phase_commit, &io);
    outcomes.map_err(|error| GroupError {
        error,
        io: io.get(),
    })
}

/// [`write_group`]'s transaction; sets `io` when redb fails with an I/O error.
fn write_group_inner(
    db: &Database,
    group: &[Request],
    two_phase_commit: bool,
    io: &std::cell::Cell<bool>,
) -> Result<Vec<Result<u64, StoreError>>, StoreError> {
    let ctx = "group commit";
    let fail = |e: redb::Error| {
        if matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo) {
            io.set(true);
        }
        error::storage(ctx, e)
    };
    let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
    txn.set_durability(redb::Durability::Immediate)
        .map_err(|e| fail(e.into()))?;
    txn.set_two_phase_commit(two_phase_commit);
    let mut outcomes = Vec::with_capacity(group.len());
    {
        let mut tables = Tables {
            ops: txn.open_table(OPS).map_err(|e| fail(e.into()))?,
            by_id: txn.open_table(BY_ID).map_err(|e| fail(e.into()))?,
            by_author: txn.open_table(BY_AUTHOR).map_err(|e| fail(e.into()))?,
            primary: txn.open_table(PRIMARY).map_err(|e| fail(e.into()))?,
            by_causal: txn.open_table(BY_CAUSAL).map_err(|e| fail(e.into()))?,
            by_story: txn.open_table(BY_STORY).map_err(|e| fail(e.into()))?,
            by_key: txn.open_table(BY_KEY).map_err(|e| fail(e.into()))?,
        };
        let last = tables.ops.last().map_err(|e| fail(e.into()))?;
        let mut next = last.map_or(0, |(k, _)| k.value());
        for req in group {
            if let Err(missing) = tables.check_after(req.after).map_err(|e| fail(e.into()))? {
                outcomes.push(Err(missing));
                continue;
            }
            match tables.check(&req.ops).map_err(|e| fail(e.into()))? {
                Err(conflict) => outcomes.push(Err(conflict)),
                Ok(new_ops) => {
                    for op in &new_ops {
                        next = next.checked_add(1).ok_or_else(|| StoreError::Invalid {
                            message: "the store has used every position (u64::MAX)".into(),
                        })?;
                        tables.insert(next, op).map_err(|e| fail(e.into()))?;
                    }
                    outcomes.push(Ok(new_ops.len() as u64));
                }
            }
        }
    }
    txn.commit().map_err(|e| fail(e.into()))?;
    Ok(outcomes)
}

/// The tables of one write transaction.
struct Tables<'txn> {
    ops: Table<'txn, u64, &'static [u8]>,
    by_id: Table<'txn, [u8; 32], u64>,
    by_author: Table<'txn, AuthorKey, u64>,
    primary: Table<'txn, ([u8; 32], u64), [u8; 32]>,
    by_causal: Table<'txn, CausalKey, u64>,
    by_story: Table<'txn, StoryKey, u64>,
    by_key: Table<'txn, IdemKey, u64>,
}

impl Tables<'_> {
    /// An ordered append's guard: `after`, if given, must be stored (by an earlier
    /// transaction or an earlier request of this one).
    fn check_after(
        &self,
        after: Option<[u8; 32]>,
    ) -> Result<Result<(), StoreError>, redb::StorageError> {
        match after {
            Some(after) if self.by_id.get(after)?.is_none() => {
                Ok(Err(StoreError::MissingPredecessor { after: OpId(after) }))
            }
            _ => Ok(Ok(())),
        }
    }

    /// The conflict rule ([`rules::plan_append`]) for one request, over the whole
    /// request before any write: its new ops, or the conflict that refuses it.
    fn check<'r>(
        &self,
        ops: &'r [PendingOp],
    ) -> Result<Result<Vec<&'r PendingOp>, StoreError>, redb::StorageError> {
        rules::plan_append(
            ops,
            |id| Ok(self.by_id.get(id.0)?.is_some()),
            |author, seq| {
                Ok(self
                    .primary
                    .get((author.0, seq))?
                    .map(|id| OpId(id.value())))
            },
        )
    }

    /// Writes one new op at `position` and indexes it, in every index of its
    /// columns, in this transaction.
    fn insert(&mut self, position: u64, op: &PendingOp) -> Result<(), redb::StorageError> {
        self.ops.insert(position, op.record.as_slice())?;
        self.by_id.insert(op.id, position)?;
        self.by_author
            .insert((op.author, op.seq, op.id), position)?;
        if !op.evidence {
            self.primary.insert((op.author, op.seq), op.id)?;
        }
        self.by_causal.insert((op.lamport, op.id), position)?;
        if let Some(story) = op.story.as_deref() {
            self.by_story.insert((story, op.lamport, op.id), position)?;
        }
        if let Some(key) = op.key.as_deref() {
            self.by_key
                .insert((op.author, key, op.seq, op.id), position)?;
        }
        Ok(())
    }
}

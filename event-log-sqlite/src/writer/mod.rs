//! The one writer: a dedicated thread that owns the write connection and commits
//! appends in groups.
//!
//! SQLite allows one writer at a time, and every durable commit costs a sync of the
//! WAL. So every append is sent to this thread, which takes *all* requests waiting
//! at that moment and commits them in one transaction (group commit): many
//! concurrent appenders share one sync.
//!
//! Promises:
//! - each request is atomic on its own: it runs inside its own SAVEPOINT, so a
//!   request that conflicts fails alone and writes nothing, while the other
//!   requests of its group still commit;
//! - a reply is sent only after the group's `COMMIT` has returned, so `Ok` means the
//!   ops are as durable as the configured [`crate::Durability`] makes them;
//! - requests are committed in the order they were received, so positions follow
//!   the order of the calls;
//! - on shutdown every request already received is committed and answered first.
//!
//! Its parts have the names of the redb writer's: `Writer` (the handle), `Request`
//! (one append waiting), `run` (the group loop), `commit_group` (commit a group and
//! answer each request), `write_group` (the one transaction), `check_after` (the
//! ordered-append guard) and the conflict rule applied through
//! [`event_log_core::backend::rules::plan_append`]. What one request writes
//! (`check_after`, and `apply` with the rule) is in `apply`.

mod apply;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bft_json_crdt::OpId;
use event_log_core::{OpRecord, StoreError};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::error;
use crate::stats::{Counters, WriterStats};
use apply::{apply, check_after};

enum Msg {
    Append(Request),
    PutMeta(MetaRequest),
    Shutdown,
}

struct MetaRequest {
    key: String,
    value: Vec<u8>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

struct Request {
    ops: Vec<OpRecord>,
    /// Written only if this op is stored (an ordered append).
    after: Option<OpId>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The running thread, and a channel that disconnects when it ends.
struct Running {
    handle: JoinHandle<()>,
    done: std::sync::mpsc::Receiver<()>,
}

/// The handle of the writer thread.
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Msg>,
    running: Mutex<Option<Running>>,
    counters: Arc<Counters>,
    /// How long `Drop` waits for the thread before leaving it to finish alone.
    drop_wait: Duration,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(
        conn: Connection,
        max_group: usize,
        drop_wait: Duration,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let handle = std::thread::Builder::new()
            .name("event-log-sqlite-writer".into())
            .spawn(move || {
                let _done = done_tx;
                run(conn, rx, max_group, &thread_counters);
            })
            .map_err(|e| StoreError::backend("start the SQLite writer thread", e))?;
        Ok(Writer {
            tx,
            running: Mutex::new(Some(Running { handle, done })),
            counters,
            drop_wait,
        })
    }

    /// Appends `ops` atomically; returns once they are committed. With `after`, only
    /// if that op is stored when the request is written (else `MissingPredecessor`,
    /// nothing written). The request is queued when this future is first polled, and
    /// requests are written in queue order.
    pub(crate) async fn append(
        &self,
        ops: Vec<OpRecord>,
        after: Option<OpId>,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Append(Request { ops, after, reply }))
            .map_err(|_| error::closed())?;
        answer.await.map_err(|_| StoreError::Unavailable {
            message: "the SQLite writer stopped before answering".into(),
            source: None,
        })?
    }

    /// Stores a meta value (in its own transaction, after the appends before it).
    pub(crate) async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::PutMeta(MetaRequest {
                key: key.to_owned(),
                value: value.to_vec(),
                reply,
            }))
            .map_err(|_| error::closed())?;
        answer.await.map_err(|_| StoreError::Unavailable {
            message: "the SQLite writer stopped before answering".into(),
            source: None,
        })?
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> WriterStats {
        self.counters.snapshot()
    }

    /// Commits what was received, stops the thread and waits for it. Idempotent.
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        let Some(running) = self.take_running() else {
            return Ok(());
        };
        // The receiver is alive until the thread ends, which only this call causes.
        let _ = self.tx.send(Msg::Shutdown);
        tokio::task::spawn_blocking(move || running.handle.join())
            .await
            .map_err(|e| StoreError::backend("wait for the SQLite writer thread", e))?
            .map_err(|_| StoreError::Backend {
                message: "the SQLite writer thread panicked".into(),
                source: None,
            })
    }

    fn take_running(&self) -> Option<Running> {
        match self.running.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let Some(running) = self.take_running() else {
            return;
        };
        // Every acknowledged append is already committed; this only lets the thread
        // finish a request in flight and close the file, waiting a bounded time.
        let _ = self.tx.send(Msg::Shutdown);
        match running.done.recv_timeout(self.drop_wait) {
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) | Ok(()) => {
                let _ = running.handle.join();
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                warn!(
                    "the SQLite writer did not stop within {:?}; leaving it to finish alone",
                    self.drop_wait
                );
            }
        }
    }
}

/// The thread body: receive, group, commit, reply; until shut down.
fn run(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    max_group: usize,
    counters: &Counters,
) {
    debug!("SQLite writer started");
    // After `Shutdown`, `close` makes later sends fail while queued requests stay
    // receivable, and `blocking_recv` returns `None` once they are drained.
    while let Some(first) = rx.blocking_recv() {
        let mut group = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Append(request) => group.push(request),
                Msg::PutMeta(m) => {
                    // Keep order: what was queued before the meta write commits first.
                    if !group.is_empty() {
                        commit_group(&mut conn, std::mem::take(&mut group), counters);
                    }
                    let result = conn
                        .execute(
                            "INSERT INTO meta (key, value) VALUES (?1, ?2)
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            rusqlite::params![m.key, m.value],
                        )
                        .map(|_| ())
                        .map_err(|e| StoreError::backend("write a meta value", e));
                    let _ = m.reply.send(result);
                }
                Msg::Shutdown => rx.close(),
            }
            if group.len() >= max_group {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !group.is_empty() {
            commit_group(&mut conn, group, counters);
        }
    }
    info!("SQLite writer stopped");
}

/// Commits one group and answers every request in it.
fn commit_group(conn: &mut Connection, group: Vec<Request>, counters: &Counters) {
    let requests = group.len();
    match write_group(conn, &group) {
        Ok(results) => {
            Counters::add(&counters.groups, 1);
            let written: usize = results.iter().filter_map(|r| r.as_ref().ok()).sum();
            debug!(requests, ops = written, "committed a group");
            for (request, result) in group.into_iter().zip(results) {
                let answer = match result {
                    Ok(n) => {
                        Counters::add(&counters.appends, 1);
                        Counters::add(&counters.ops_written, n as u64);
                        Ok(())
                    }
                    Err(e) => {
                        if matches!(e, StoreError::Conflict { .. }) {
                            Counters::add(&counters.conflicts, 1);
                        } else {
                            Counters::add(&counters.failures, 1);
                        }
                        Err(e)
                    }
                };
                // The caller may have stopped waiting; its ops are committed anyway.
                let _ = request.reply.send(answer);
            }
        }
        Err(e) => {
            error!(requests, error = %e, "a group transaction failed; nothing of it was written");
            Counters::add(&counters.failures, requests as u64);
            let template = e.clone();
            let mut first = Some(e);
            for request in group {
                let answer = first.take().unwrap_or_else(|| template.clone());
                let _ = request.reply.send(Err(answer));
            }
        }
    }
}

/// Runs one group transaction. `Err` means the transaction as a whole failed and
/// nothing of it was written; otherwise each request has its own result (the number
/// of ops it wrote, or why it wrote nothing).
fn write_group(
    conn: &mut Connection,
    group: &[Request],
) -> Result<Vec<Result<usize, StoreError>>, StoreError> {
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error::at("begin a group transaction"))?;
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        let sp = tx
            .savepoint()
            .map_err(error::at("open a savepoint for an append"))?;
        match check_after(&sp, request.after).and_then(|()| apply(&sp, &request.ops)) {
            Ok(written) => {
                sp.commit()
                    .map_err(error::at("release the savepoint of an append"))?;
                results.push(Ok(written));
            }
            Err(e) => {
                if sp.is_autocommit() {
                    // SQLite rolled the whole transaction back (disk full, I/O error):
                    // nothing of the group is left to commit.
                    return Err(e);
                }
                // Roll the request back and release its savepoint.
                sp.finish()
                    .map_err(error::at("roll back the savepoint of an append"))?;
                results.push(Err(e));
            }
        }
    }
    tx.commit()
        .map_err(error::at("commit a group transaction"))?;
    Ok(results)
}

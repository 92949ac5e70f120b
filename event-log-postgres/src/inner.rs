//! What every handle of one store shares: the pool, the statements, the limits, and
//! the *writer* session with the sleds' locks. The `append` and `read` modules are
//! functions over [`Inner`]; [`crate::PostgresStore`] is an `Arc` of it.
//!
//! # The writer session
//! A session of its own, outside the pool, on which ordered appends are pipelined
//! and which holds the session-level advisory lock of every sled acquired through
//! this store ([`Inner::acquire_sled`]). Once a sled is acquired every write goes
//! over it, so nothing is written without the lock. When it breaks, the next write
//! connects again and takes the locks again (waiting, as `acquire_sled` does, for a
//! session that may hold them meanwhile), or fails if another session took them.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bft_json_crdt::AuthorId;
use deadpool_postgres::{ClientWrapper, Pool};
use event_log_core::StoreError;
use tracing::warn;

use crate::backoff::Backoff;
use crate::codec::col;
use crate::conn::{Conn, bounded};
use crate::error::{from_pg, is_connection_problem};
use crate::notify::ListenTarget;
use crate::sql::Sql;

/// The state of one store, shared by its clones.
pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) sql: Sql,
    pub(crate) schema: String,
    pub(crate) listen: Arc<ListenTarget>,
    /// Appends in flight at once (`OpStore::append_pipeline`).
    pub(crate) pipeline: usize,
    /// Bound on every operation.
    pub(crate) operation_timeout: Duration,
    /// Bound on waiting for a sled's writer lock.
    pub(crate) sled_lock_timeout: Duration,
    pub(crate) read_only: bool,
    /// The writer session and the sleds whose locks it holds.
    pub(crate) lane: tokio::sync::Mutex<Lane>,
    /// Whether any sled was acquired (read without taking the lane).
    pub(crate) holds_sleds: AtomicBool,
}

/// The writer session (see the module docs).
pub(crate) struct Writer {
    pub(crate) client: ClientWrapper,
    /// Set when an operation on it was abandoned before its answer was read.
    poisoned: AtomicBool,
}

impl Writer {
    fn usable(&self) -> bool {
        !self.client.is_closed() && !self.poisoned.load(Ordering::Acquire)
    }

    /// A guard poisoning the writer unless [`Busy::done`] is called.
    pub(crate) fn busy(&self) -> Busy<'_> {
        Busy {
            writer: self,
            done: false,
        }
    }
}

/// See [`Writer::busy`].
pub(crate) struct Busy<'a> {
    writer: &'a Writer,
    done: bool,
}

impl Busy<'_> {
    /// The answer was read: the connection is in a known state.
    pub(crate) fn done(mut self) {
        self.done = true;
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.writer.poisoned.store(true, Ordering::Release);
        }
    }
}

/// The writer and the sleds it must hold.
#[derive(Default)]
pub(crate) struct Lane {
    writer: Option<Arc<Writer>>,
    sleds: BTreeSet<AuthorId>,
}

impl Lane {
    /// Forgets `writer` if `e` says its connection is gone (and it is still the
    /// current one), so the next write takes a new one (and the sleds' locks again).
    pub(crate) fn forget_if_broken(&mut self, writer: &Arc<Writer>, e: &tokio_postgres::Error) {
        if is_connection_problem(e) && self.writer.as_ref().is_some_and(|w| Arc::ptr_eq(w, writer))
        {
            self.writer = None;
        }
    }

    /// Forgets the writer and the sleds: the session closes, releasing the locks.
    pub(crate) fn clear(&mut self) {
        self.writer = None;
        self.sleds.clear();
    }
}

impl Inner {
    /// The server's URL without the password.
    pub(crate) fn target(&self) -> &str {
        &self.listen.redacted_url
    }

    /// `op` within `operation_timeout`.
    pub(crate) async fn bounded<T>(
        &self,
        what: &str,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        bounded(what, self.target(), self.operation_timeout, op).await
    }

    /// `Invalid` for a write on a read-only store.
    pub(crate) fn refuse_if_read_only(&self, what: &str) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::Invalid {
                message: format!(
                    "{what} on {}: the store was opened read-only (mode=ro)",
                    self.target()
                ),
            });
        }
        Ok(())
    }

    /// True once a sled was acquired: writes then go over the writer session.
    pub(crate) fn holds_sleds(&self) -> bool {
        self.holds_sleds.load(Ordering::Acquire)
    }

    /// The writer session, connecting (and taking the sleds' locks) if there is none
    /// or it broke.
    pub(crate) async fn writer(&self, lane: &mut Lane) -> Result<Arc<Writer>, StoreError> {
        if let Some(w) = lane.writer.as_ref().filter(|w| w.usable()) {
            return Ok(w.clone());
        }
        lane.writer = None;
        let client = Conn::get(&self.pool, "connecting the writer", self.target())
            .await?
            .detach();
        let writer = Arc::new(Writer {
            client,
            poisoned: AtomicBool::new(false),
        });
        for sled in &lane.sleds {
            self.lock_sled(&writer, sled).await?;
        }
        lane.writer = Some(writer.clone());
        Ok(writer)
    }

    /// Takes `sled`'s writer lock on the writer session (see
    /// `OpStore::acquire_sled`); a read-only store takes none.
    pub(crate) async fn acquire_sled(&self, sled: &AuthorId) -> Result<(), StoreError> {
        if self.read_only {
            return Ok(());
        }
        let wait = self.sled_lock_timeout + self.operation_timeout;
        bounded("taking the sled writer lock", self.target(), wait, async {
            let mut lane = self.lane.lock().await;
            if lane.sleds.contains(sled) {
                return Ok(());
            }
            let fresh = lane.writer.as_ref().is_none_or(|w| !w.usable());
            lane.sleds.insert(*sled);
            let result = if fresh {
                // Connecting takes every lock in `sleds`, this one included.
                self.writer(&mut lane).await.map(|_| ())
            } else {
                let writer = self.writer(&mut lane).await?;
                self.lock_sled(&writer, sled).await
            };
            if result.is_err() {
                lane.sleds.remove(sled);
                if fresh {
                    lane.writer = None;
                }
            } else {
                self.holds_sleds.store(true, Ordering::Release);
            }
            result
        })
        .await
    }

    /// Takes `sled`'s writer lock on `writer`'s session, waiting at most
    /// `sled_lock_timeout` for another session to release it.
    async fn lock_sled(&self, writer: &Writer, sled: &AuthorId) -> Result<(), StoreError> {
        let target = self.target();
        let key = format!("event-log sled {} {sled}", self.schema);
        let started = Instant::now();
        let mut pause = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
        let mut warned = false;
        loop {
            let row = writer
                .client
                .query_one(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                    &[&key],
                )
                .await
                .map_err(|e| from_pg("taking the sled writer lock", target, e))?;
            if col::<bool>(&row, 0, "sled lock")? {
                return Ok(());
            }
            let waited = started.elapsed();
            if waited >= self.sled_lock_timeout {
                return Err(StoreError::Unavailable {
                    message: format!(
                        "taking the writer lock of sled {sled} on {target}: another session \
                         still holds it after {waited:?} (another process writing as this \
                         sled, or a previous one the server has not seen end yet; \
                         sled_lock_timeout {:?})",
                        self.sled_lock_timeout
                    ),
                    source: None,
                });
            }
            if !warned && waited >= Duration::from_secs(1) {
                warn!(%sled, server = %target, "waiting for another session to release the sled's writer lock");
                warned = true;
            }
            // The deadline is wall time, queries included, so it stays ours; backon
            // supplies the jittered sleeps (several sessions waiting for the same lock
            // do not all retry in step).
            tokio::time::sleep(pause.next_delay().min(self.sled_lock_timeout - waited)).await;
        }
    }
}

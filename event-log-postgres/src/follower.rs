//! The follower: keeps an [`EventLog`] on a shared PostgreSQL schema up to date with
//! the ops other sleds append there.
//!
//! Several sleds (processes, or logs in one process) can share one schema. Each one's
//! [`EventLog`] sees its own appends at once, but another sled's ops only when it
//! calls [`EventLog::catch_up`]. [`spawn_follower`] starts a tokio task that does so
//! whenever there may be something new:
//!
//! - on every [`Notice::Appended`] of another sled (our own sled's are ignored, and so
//!   is a notice whose ops the log already holds);
//! - on [`Notice::Reconnected`] and [`Notice::Lagged`] (notifications were lost);
//! - every [`FollowerConfig::poll_interval`] without any catch-up, as the fallback: a
//!   notification that never arrives delays ops by at most one interval, it never loses
//!   them.
//!
//! A burst of notices is coalesced: every notice queued when the task wakes is taken
//! at once and answered by one catch-up (which reads everything new, page by page).
//! Notices that arrive *during* a catch-up cause one more.
//!
//! Applied ops reach the log's listeners ([`EventLog::add_observer`]) exactly as
//! merged ops do, once each.
//!
//! # Failures
//! Nothing here panics. A failed catch-up or subscription is logged with `tracing`,
//! counted in [`FollowerStats::errors`] and retried with exponential backoff
//! ([`FollowerConfig::min_backoff`] doubling to [`FollowerConfig::max_backoff`], each
//! sleep jittered so that followers failing together do not retry in step); the
//! listening connection itself reconnects on its own (see [`crate::notify`]). While
//! there is no subscription the poll keeps the log current.
//!
//! # Latency
//! Measured by the `replication_latency` test (event-log-postgres/tests/replication.rs,
//! run with `--nocapture`): 200 sequential appends on sled B, timed from the start of
//! B's append to A's listener receiving the event, PostgreSQL 15 on loopback on the
//! same 2-CPU machine (`synchronous_commit=off`), six runs: mean 0.5–1.1 ms, p50
//! 0.5–0.9 ms, p99 0.9–5.9 ms (B's append alone: mean 0.4–0.75 ms). That is the
//! notification path; an op whose notification is lost waits for the next poll, at most
//! [`FollowerConfig::poll_interval`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use event_log_core::{CatchUp, EventLog, OpStore, SledId};
use futures::FutureExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::notify::{Notice, Notifications};
use crate::store::PostgresStore;

/// Tunables of a follower. The defaults suit most deployments.
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    /// A catch-up runs at the latest this long after the previous one, notified or
    /// not: the most a lost notification can delay an op. Default 1 s.
    pub poll_interval: Duration,
    /// First delay before retrying a failed catch-up or subscription. Default 50 ms.
    pub min_backoff: Duration,
    /// Largest delay between retries (the delay doubles from `min_backoff`; a random
    /// part of up to the delay again is added, never past this). Default 5 s.
    pub max_backoff: Duration,
}

impl Default for FollowerConfig {
    fn default() -> Self {
        FollowerConfig {
            poll_interval: Duration::from_secs(1),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Counters of a follower, since it started. Cheap to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowerStats {
    /// Catch-ups that completed.
    pub catch_ups: u64,
    /// Ops read from the store and applied (they reached the log's listeners).
    pub applied: u64,
    /// Ops applied by catch-ups that only the poll started: ops whose notification
    /// was lost. Mostly zero; steady growth means notifications do not arrive.
    pub applied_by_poll: u64,
    /// Ops the store holds that the log refused (damaged or forged rows).
    pub rejected: u64,
    /// Failed catch-ups and subscription attempts (each retried).
    pub errors: u64,
    /// Notices received from the subscription, of any kind.
    pub notices: u64,
    /// Times notifications were lost: [`Notice::Reconnected`], [`Notice::Lagged`], or
    /// the subscription had to be opened again.
    pub reconnects: u64,
}

#[derive(Default)]
struct Counters {
    catch_ups: AtomicU64,
    applied: AtomicU64,
    applied_by_poll: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
    notices: AtomicU64,
    reconnects: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> FollowerStats {
        FollowerStats {
            catch_ups: self.catch_ups.load(Ordering::Relaxed),
            applied: self.applied.load(Ordering::Relaxed),
            applied_by_poll: self.applied_by_poll.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            notices: self.notices.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }
}

/// A running follower. [`FollowerHandle::shutdown`] stops it; dropping the handle
/// stops it too (without waiting).
#[derive(Debug)]
pub struct FollowerHandle {
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.snapshot().fmt(f)
    }
}

impl FollowerHandle {
    /// The counters so far.
    pub fn stats(&self) -> FollowerStats {
        self.counters.snapshot()
    }

    /// Stops the follower and waits for its task to end. A catch-up in progress is
    /// abandoned at its next await; that is safe: it only reads the store, and what it
    /// already applied stays applied.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            warn!(error = %e, "follower task ended abnormally");
        }
    }
}

impl Drop for FollowerHandle {
    fn drop(&mut self) {
        // Dropping `stop` wakes the task, which then ends.
        self.stop.take();
    }
}

/// Starts following `log`'s own store: see the module docs. Must be called inside a
/// tokio runtime.
pub fn spawn_follower(log: Arc<EventLog<PostgresStore>>, config: FollowerConfig) -> FollowerHandle {
    let store = log.store().clone();
    spawn_follower_on(log, store, config)
}

/// Like [`spawn_follower`] for a log over any store type (for example the facade's
/// boxed store), listening through `store`, a handle on the same schema the log's
/// store uses. Must be called inside a tokio runtime.
pub fn spawn_follower_on<S: OpStore>(
    log: Arc<EventLog<S>>,
    store: PostgresStore,
    config: FollowerConfig,
) -> FollowerHandle {
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = oneshot::channel();
    let follower = Follower {
        sled: log.sled_id(),
        log,
        store,
        config,
        counters: counters.clone(),
        stop: stop_rx,
        subscription: None,
    };
    let task = tokio::spawn(follower.run());
    FollowerHandle {
        counters,
        stop: Some(stop_tx),
        task: Some(task),
    }
}

/// Why a catch-up is due, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// Nothing new is known.
    No,
    /// Only the poll timer says so.
    Poll,
    /// A notice says so.
    Notice,
}

struct Follower<S: OpStore> {
    log: Arc<EventLog<S>>,
    sled: SledId,
    store: PostgresStore,
    config: FollowerConfig,
    counters: Arc<Counters>,
    stop: oneshot::Receiver<()>,
    subscription: Option<Notifications>,
}

/// The task stops.
struct Stopped;

impl<S: OpStore> Follower<S> {
    async fn run(mut self) {
        info!(sled = %self.sled.short(), schema = %self.store.schema(), "follower started");
        let _ = self.follow().await;
        info!(sled = %self.sled.short(), "follower stopped");
    }

    async fn follow(&mut self) -> Result<(), Stopped> {
        let mut backoff = Backoff::new(self.config.min_backoff, self.config.max_backoff);
        // Subscribe before the first catch-up, so nothing committed in between is
        // missed; the first catch-up covers everything before.
        let mut due = Due::Notice;
        let mut next_poll = Instant::now() + self.config.poll_interval;
        loop {
            if self.subscription.is_none() {
                match self.store.listen().await {
                    Ok(s) => {
                        self.subscription = Some(s);
                        due = Due::Notice;
                        backoff.reset();
                    }
                    Err(e) => {
                        Counters::bump(&self.counters.errors, 1);
                        let delay = backoff.next_delay().min(self.config.poll_interval);
                        warn!(error = %e, retry_in = ?delay, "follower cannot subscribe; polling meanwhile");
                        // Retried on the next loop; the poll goes on meanwhile.
                        self.pause(delay).await?;
                        due = due.max(Due::Poll);
                    }
                }
            }
            if due != Due::No {
                let log = self.log.clone();
                let caught_up = tokio::select! {
                    _ = &mut self.stop => return Err(Stopped),
                    r = log.catch_up() => r,
                };
                match caught_up {
                    Ok(done) => {
                        self.count(done, due);
                        backoff.reset();
                        next_poll = Instant::now() + self.config.poll_interval;
                    }
                    Err(e) => {
                        Counters::bump(&self.counters.errors, 1);
                        let delay = backoff.next_delay();
                        warn!(error = %e, retry_in = ?delay, "follower catch-up failed; retrying");
                        self.pause(delay).await?;
                        continue;
                    }
                }
            }
            due = self.wait(next_poll).await?;
        }
    }

    fn count(&self, done: CatchUp, due: Due) {
        let c = &self.counters;
        Counters::bump(&c.catch_ups, 1);
        Counters::bump(&c.applied, done.applied as u64);
        Counters::bump(&c.rejected, done.rejected as u64);
        if due == Due::Poll && done.applied > 0 {
            Counters::bump(&c.applied_by_poll, done.applied as u64);
            debug!(
                applied = done.applied,
                "the poll found ops no notification announced"
            );
        }
    }

    /// Sleeps `delay`, unless asked to stop.
    async fn pause(&mut self, delay: Duration) -> Result<(), Stopped> {
        tokio::select! {
            _ = &mut self.stop => Err(Stopped),
            _ = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// Waits until a catch-up is due: a relevant notice (taking every queued notice
    /// with it), the poll deadline, or a lost subscription.
    async fn wait(&mut self, next_poll: Instant) -> Result<Due, Stopped> {
        loop {
            let Some(sub) = self.subscription.as_mut() else {
                return Ok(Due::Poll);
            };
            let first = tokio::select! {
                _ = &mut self.stop => return Err(Stopped),
                _ = tokio::time::sleep_until(next_poll) => return Ok(Due::Poll),
                n = sub.recv() => n,
            };
            let Some(first) = first else {
                // The listener task ended: open a new subscription.
                Counters::bump(&self.counters.reconnects, 1);
                warn!("follower subscription ended; subscribing again");
                self.subscription = None;
                return Ok(Due::Notice);
            };
            // Coalesce: everything already queued is answered by the same catch-up.
            let mut notices = vec![first];
            while let Some(Some(n)) = sub.recv().now_or_never() {
                notices.push(n);
            }
            let due = notices
                .iter()
                .map(|n| self.judge(n))
                .max()
                .unwrap_or(Due::No);
            if due != Due::No {
                return Ok(due);
            }
        }
    }

    /// Whether a notice calls for a catch-up.
    fn judge(&self, notice: &Notice) -> Due {
        Counters::bump(&self.counters.notices, 1);
        match notice {
            Notice::Appended { author, seq } => {
                if *author == self.sled || self.log.version_vector().get(author) >= *seq {
                    Due::No
                } else {
                    Due::Notice
                }
            }
            Notice::Reconnected | Notice::Lagged { .. } => {
                Counters::bump(&self.counters.reconnects, 1);
                debug!(?notice, "notifications were lost; catching up");
                Due::Notice
            }
        }
    }
}

//! Read connections: a small pool used from `spawn_blocking`.
//!
//! In WAL mode readers never wait for the writer and see every transaction committed
//! before their statement began. This module exists to run reads off the async
//! executor, concurrently, on at most [`crate::SqliteConfig::readers`] connections
//! that are opened on demand and reused.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use event_log_core::StoreError;
use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::config::SqliteConfig;
use crate::error;
use crate::schema;

/// The pool of read connections.
pub(crate) struct ReadPool {
    path: PathBuf,
    config: SqliteConfig,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    closed: AtomicBool,
}

impl ReadPool {
    /// A pool that starts with the connection `first`.
    pub(crate) fn new(path: PathBuf, config: SqliteConfig, first: Connection) -> Self {
        let permits = Semaphore::new(config.readers);
        ReadPool {
            path,
            config,
            idle: Mutex::new(vec![first]),
            permits,
            closed: AtomicBool::new(false),
        }
    }

    /// Runs `read` on a pooled connection, on the blocking thread pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|_| error::closed())?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let idle = pool.idle().pop();
            let mut conn = match idle {
                Some(conn) => conn,
                None => schema::open_reader(&pool.path, &pool.config)?,
            };
            let out = read(&mut conn);
            let mut idle = pool.idle();
            if !pool.closed.load(Ordering::Acquire) && idle.len() < pool.config.readers {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::backend("run a read on the blocking pool", e))?
    }

    /// Refuses further reads and closes the idle connections.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        self.idle().clear();
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

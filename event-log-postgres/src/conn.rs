//! Pooled connections that are thrown away, never reused, when an operation using
//! them is abandoned half-way.
//!
//! An operation cut short (by [`crate::PostgresConfig::operation_timeout`], or by its
//! caller dropping the future) may leave its connection with a request sent and no
//! answer read, or in a network partition with bytes lost: reusing it would hand the
//! next operation a connection whose answers are not its own. [`Conn`] detaches such a
//! connection from the pool when it is dropped still busy, which closes it; a finished
//! operation hands it back with [`Conn::done`].

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use event_log_core::StoreError;

use crate::error::{from_pg, from_pool, is_connection_problem, timed_out};

/// A pooled connection, discarded on drop unless [`Conn::done`] was called.
pub(crate) struct Conn {
    obj: Option<Object>,
}

impl Conn {
    /// A connection from `pool`, for the operation `what` on `target`.
    pub(crate) async fn get(pool: &Pool, what: &str, target: &str) -> Result<Conn, StoreError> {
        let obj = pool.get().await.map_err(|e| from_pool(what, target, e))?;
        Ok(Conn { obj: Some(obj) })
    }

    /// The operation finished with the connection in a known state: back to the pool.
    pub(crate) fn done(mut self) {
        self.obj.take();
    }

    /// Settles the connection after the driver error `e`: discarded if `e` says the
    /// connection is gone (so the next caller, say one retrying the same batch, gets a
    /// live one even before the pool notices), back to the pool otherwise.
    pub(crate) fn settle(self, e: &tokio_postgres::Error) {
        if !is_connection_problem(e) {
            self.done();
        }
    }

    /// Settles the connection after the driver's `result` for the operation `what` on
    /// `target`: back to the pool on success, else as [`Conn::settle`] says, and the
    /// error mapped to a store error.
    pub(crate) fn finish<T>(
        self,
        result: Result<T, tokio_postgres::Error>,
        what: &str,
        target: &str,
    ) -> Result<T, StoreError> {
        match result {
            Ok(v) => {
                self.done();
                Ok(v)
            }
            Err(e) => {
                self.settle(&e);
                Err(from_pg(what, target, e))
            }
        }
    }

    /// The connection, detached from the pool (closed when dropped).
    pub(crate) fn detach(mut self) -> deadpool_postgres::ClientWrapper {
        Object::take(
            self.obj
                .take()
                .expect("a Conn holds its connection until consumed"),
        )
    }
}

impl Deref for Conn {
    type Target = Object;
    fn deref(&self) -> &Object {
        self.obj
            .as_ref()
            .expect("a Conn holds its connection until consumed")
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Object {
        self.obj
            .as_mut()
            .expect("a Conn holds its connection until consumed")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            // Still busy: close it rather than let the pool hand it out again.
            drop(Object::take(obj));
        }
    }
}

/// Runs `op`, failing with `Unavailable` if it takes longer than `bound`. A timed-out
/// `op` is dropped, and with it (see [`Conn`]) the connection it was using.
pub(crate) async fn bounded<T>(
    what: &str,
    target: &str,
    bound: Duration,
    op: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(bound, op).await {
        Ok(r) => r,
        Err(_) => Err(timed_out(what, target, bound)),
    }
}

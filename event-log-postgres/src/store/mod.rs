//! [`PostgresStore`]: opening, and the [`OpStore`] implementation (which delegates to
//! the `append`, `read` and `notify` modules over the shared [`Inner`] state).
//!
//! Here: the store, its constructors and accessors. Building the pool and
//! preparing the schema is in `open`; the [`OpStore`] methods are in `op_store`.

mod op_store;
mod open;

use std::sync::Arc;

use deadpool_postgres::Pool;
use event_log_core::{OpRecord, OpStore, SchemaStatus, StoreError};
use tokio_postgres::Socket;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use crate::append;
use crate::config::PostgresConfig;
use crate::conn::Conn;
use crate::inner::Inner;
use crate::notify::Notifications;
use crate::schema::{self, Tables};
use crate::settings;
use open::{Opened, Prepare};

/// An [`OpStore`] on PostgreSQL. Cheap to clone: clones share one connection pool.
///
/// See the crate docs for the schema, durability, conflicts, `since` and
/// notifications.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
    /// The server's `synchronous_commit` for this store's sessions, read at open.
    synchronous_commit: Arc<str>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &self.inner.listen.redacted_url)
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Opens the store at `url` (`postgres://user:password@host:port/db?…`, or the
    /// `key=value` form), creating or migrating its schema (unless read-only: see
    /// [`PostgresConfig::read_only`]). This crate's URL parameters (see the crate docs)
    /// override `config`. TLS follows the URL's `sslmode`, `sslrootcert`, `sslcert` and
    /// `sslkey`, as in libpq (crate docs, "TLS"; the default `prefer` takes TLS when
    /// the server offers it).
    ///
    /// Errors: a malformed URL or config, an unreadable certificate file, and a TLS
    /// handshake refused (certificate not trusted, TLS required but not offered) are
    /// [`StoreError::Invalid`]; a server that
    /// cannot be reached, within [`PostgresConfig::operation_timeout`], is
    /// [`StoreError::Unavailable`]; a read-only open of a missing schema is
    /// [`StoreError::NotFound`]. Messages name the server by URL without the
    /// password.
    pub async fn open(url: &str, config: PostgresConfig) -> Result<Self, StoreError> {
        let settings = settings::resolve(url, config)?;
        let prepare = Prepare::of(&settings.config);
        open::prepared(settings, prepare).await.map(Self::opened)
    }

    /// Where the schema at `url` stands against [`crate::SCHEMA_VERSION`], read
    /// without DDL in a read-only session (`evlog migrate --dry-run`): a schema that
    /// does not exist yet is `current: None` (a writable open creates it). TLS and
    /// the URL's parameters as in [`PostgresStore::open`]; errors as its read-only
    /// open's, except that a missing schema is not one.
    pub async fn schema_status(
        url: &str,
        config: PostgresConfig,
    ) -> Result<SchemaStatus, StoreError> {
        let settings = settings::resolve(url, config.with_read_only(true))?;
        let store = Self::opened(open::prepared(settings, Prepare::Nothing).await?);
        let inner = &store.inner;
        let status = inner
            .bounded("reading the schema version", async {
                let client =
                    Conn::get(&inner.pool, "reading the schema version", inner.target()).await?;
                let tables = Tables::new(&inner.schema);
                let status = schema::status(&client, &tables, inner.target()).await?;
                client.done();
                Ok(status)
            })
            .await;
        store.close().await?;
        status
    }

    /// Like [`PostgresStore::open`], connecting through the TLS connector `tls`: any
    /// `tokio_postgres` `MakeTlsConnect` implementation, such as
    /// `postgres_native_tls::MakeTlsConnector` or `tokio_postgres_rustls::MakeRustlsConnect`
    /// (add that crate to your own dependencies). Put `sslmode=require` in the URL to
    /// refuse a plain connection. The connector decides what it verifies: a URL with
    /// `sslmode=verify-ca`, `verify-full`, `sslrootcert`, `sslcert` or `sslkey` is
    /// [`StoreError::Invalid`] here (use [`PostgresStore::open`] for those).
    pub async fn open_with_tls<T>(
        url: &str,
        config: PostgresConfig,
        tls: T,
    ) -> Result<Self, StoreError>
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + Sync + 'static,
        T::TlsConnect: Send + Sync,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let settings = settings::resolve(url, config)?;
        let prepare = Prepare::of(&settings.config);
        if settings.tls.needs_own_connector() {
            return Err(StoreError::Invalid {
                message: format!(
                    "opening {} with a caller's TLS connector: sslmode=verify-ca, \
                     verify-full, sslrootcert, sslcert and sslkey are read only by \
                     PostgresStore::open (the connector decides what it verifies; use \
                     sslmode=require)",
                    settings.target
                ),
            });
        }
        open::resolved(settings, tls, prepare)
            .await
            .map(Self::opened)
    }

    /// The schema holding this store's tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The `LISTEN/NOTIFY` channel appends notify: the schema name.
    pub fn channel(&self) -> &str {
        &self.inner.listen.channel
    }

    /// The server's URL without the password, as used in messages and logs.
    pub fn redacted_url(&self) -> &str {
        &self.inner.listen.redacted_url
    }

    /// Starts listening for appends on this store's schema, from any process, on a
    /// dedicated connection. Returns once listening: every append committed after
    /// this returns is announced, or its loss is reported as [`crate::Notice::Reconnected`]
    /// or [`crate::Notice::Lagged`]. Notifications are wake-ups only: read the ops
    /// with [`OpStore::since`]. Must be called inside a tokio runtime.
    ///
    /// Fails with `Unavailable` if listening does not start within
    /// [`PostgresConfig::operation_timeout`].
    pub async fn listen(&self) -> Result<Notifications, StoreError> {
        self.inner
            .bounded(
                "starting to listen",
                crate::notify::start(self.inner.listen.clone()),
            )
            .await
    }

    /// True if the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// Inserts rows with no checks, no conflict handling and no notification: a
    /// baseline for benchmarks ("how fast can this server take these rows at all").
    /// Fails on any duplicate. Not part of the store's contract.
    #[doc(hidden)]
    pub async fn raw_insert_rows(&self, ops: &[OpRecord]) -> Result<u64, StoreError> {
        append::raw(&self.inner, ops).await
    }

    /// The SQL of the indexed read `read` (`author_ops`, `timeline`, `story_ops` or
    /// `keyed`), for tests that `EXPLAIN` it. Not part of the store's contract.
    #[doc(hidden)]
    pub fn read_sql(&self, read: &str) -> Option<&str> {
        let sql = &self.inner.sql.read;
        Some(match read {
            "author_ops" => &sql.author_ops,
            "timeline" => &sql.timeline,
            "story_ops" => &sql.story_ops,
            "keyed" => &sql.keyed,
            _ => return None,
        })
    }

    /// The store made of the parts an open returned.
    fn opened(opened: Opened) -> Self {
        PostgresStore {
            inner: Arc::new(opened.inner),
            synchronous_commit: opened.synchronous_commit.into(),
        }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }
}

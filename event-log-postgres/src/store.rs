//! [`PostgresStore`]: opening, and the [`OpStore`] implementation (which delegates to
//! the `append`, `read` and `notify` modules over the shared [`Inner`] state).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use async_trait::async_trait;
use bft_json_crdt::{AuthorId, OpId, VersionVector};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use event_log_core::{
    Causal, OpKey, OpRecord, OpStore, Position, SchemaStatus, StoreDescription, StoreError,
};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{NoTls, Socket};
use tracing::info;

use crate::codec::col;
use crate::config::PostgresConfig;
use crate::conn::{Conn, bounded};
use crate::connect::connector;
use crate::error::from_pg;
use crate::inner::{Inner, Lane};
use crate::notify::{ListenTarget, Notifications};
use crate::options::Recycling;
use crate::schema::{self, Tables, check_read_only, migrate};
use crate::settings;
use crate::sql::Sql;
use crate::tls::SslMode;
use crate::{append, read};

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

/// What an open does to the schema.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prepare {
    /// Create or migrate it (a writable store).
    Migrate,
    /// Check that it exists at this build's version (a read-only store).
    Check,
    /// Nothing: read its version only ([`PostgresStore::schema_status`]).
    Nothing,
}

impl Prepare {
    fn of(config: &PostgresConfig) -> Self {
        if config.read_only {
            Prepare::Check
        } else {
            Prepare::Migrate
        }
    }
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
        Self::open_prepared(settings, prepare).await
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
        let store = Self::open_prepared(settings, Prepare::Nothing).await?;
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

    async fn open_prepared(
        settings: settings::Settings,
        prepare: Prepare,
    ) -> Result<Self, StoreError> {
        if settings.tls.mode == SslMode::Disable && !settings.tls.needs_own_connector() {
            return Self::open_resolved(settings, NoTls, prepare).await;
        }
        let tls = settings.tls.connector()?;
        Self::open_resolved(settings, tls, prepare).await
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
        Self::open_resolved(settings, tls, prepare).await
    }

    async fn open_resolved<T>(
        settings: settings::Settings,
        tls: T,
        prepare: Prepare,
    ) -> Result<Self, StoreError>
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + Sync + 'static,
        T::TlsConnect: Send + Sync,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let settings::Settings {
            config,
            pg: pg_config,
            target,
            tls: tls_params,
        } = settings;
        let manager = Manager::from_config(
            pg_config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: match config.recycling {
                    Recycling::Fast => RecyclingMethod::Fast,
                    Recycling::Verified => RecyclingMethod::Verified,
                },
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(config.pool_wait_timeout)
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| StoreError::backend(format!("building the pool for {target}"), e))?;
        let tables = Tables::new(&config.schema);
        // Each step is bounded by the operation timeout; a migration, which may take
        // long on a big store, statement by statement (see `schema::migrate`).
        let bound = config.operation_timeout;
        let synchronous_commit = async {
            let what = "opening the store";
            let mut client = bounded(what, &target, bound, Conn::get(&pool, what, &target)).await?;
            match prepare {
                Prepare::Check => {
                    bounded(
                        what,
                        &target,
                        bound,
                        check_read_only(&client, &config.schema, &tables, &target),
                    )
                    .await?
                }
                Prepare::Migrate => {
                    migrate(&mut client, &config.schema, &tables, &target, bound).await?
                }
                Prepare::Nothing => {}
            }
            let row = bounded(what, &target, bound, async {
                client
                    .query_one("SHOW synchronous_commit", &[])
                    .await
                    .map_err(|e| from_pg("reading synchronous_commit", &target, e))
            })
            .await?;
            let synchronous_commit: String = col(&row, 0, "synchronous_commit")?;
            client.done();
            Ok(synchronous_commit)
        }
        .await
        .map_err(|e| match e {
            StoreError::Invalid { message } if message.contains("TLS") => StoreError::Invalid {
                message: format!("{message}; {}", tls_params.describe()),
            },
            e => e,
        })?;
        info!(
            server = %target,
            tls = %tls_params.describe(),
            schema = %config.schema,
            read_only = config.read_only,
            "opened PostgreSQL op store"
        );
        let sql = Sql::new(&tables, &config.schema, config.notify);
        let listen = Arc::new(ListenTarget {
            connector: connector(tls),
            pg_config,
            channel: config.schema.clone(),
            redacted_url: target,
            config: config.clone(),
        });
        Ok(PostgresStore {
            synchronous_commit: synchronous_commit.into(),
            inner: Arc::new(Inner {
                pool,
                sql,
                schema: config.schema,
                listen,
                pipeline: config.pipeline,
                operation_timeout: config.operation_timeout,
                sled_lock_timeout: config.sled_lock_timeout,
                read_only: config.read_only,
                lane: tokio::sync::Mutex::new(Lane::default()),
                holds_sleds: AtomicBool::new(false),
            }),
        })
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

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }
}

#[async_trait]
impl OpStore for PostgresStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        append::batch(&self.inner, ops).await
    }

    fn append_pipeline(&self) -> usize {
        self.inner.pipeline
    }

    /// Runs on the store's one ordered-append connection, in call order; the op
    /// `after` is looked up in the same statement that inserts.
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        append::ordered(&self.inner, after, ops).await
    }

    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        read::load(&self.inner, after, limit).await
    }

    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        read::since(&self.inner, vv, limit).await
    }

    /// One range of the `(author, seq, id)` index, completed to the last seq.
    async fn author_ops(
        &self,
        author: &AuthorId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        read::author_ops(&self.inner, author, after, limit).await
    }

    /// One range of the `(lamport, id)` index.
    async fn timeline(&self, after: &Causal, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        read::timeline(&self.inner, after, limit).await
    }

    /// One range of the partial `(story, lamport, id)` index.
    async fn story_ops(
        &self,
        story: &str,
        after: &Causal,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        read::story_ops(&self.inner, story, after, limit).await
    }

    /// One range of the partial `(author, key, seq, id)` index.
    async fn keyed(
        &self,
        author: &AuthorId,
        key: &str,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        read::keyed(&self.inner, author, key, limit).await
    }

    async fn heads(&self) -> Result<VersionVector, StoreError> {
        read::heads(&self.inner).await
    }

    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        read::get(&self.inner, id).await
    }

    /// From the partial index on evidence rows.
    async fn evidence(&self) -> Result<Vec<OpKey>, StoreError> {
        read::evidence(&self.inner).await
    }

    /// Takes the sled's writer lock: a session-level advisory lock held by the
    /// store's writer session, over which every later write of the store goes. Waits
    /// up to [`PostgresConfig::sled_lock_timeout`] for another session holding it (a
    /// previous process whose last statement may still be running), then fails with
    /// `Unavailable`. A read-only store takes no lock.
    async fn acquire_sled(&self, sled: &AuthorId) -> Result<(), StoreError> {
        self.inner.acquire_sled(sled).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        read::count(&self.inner).await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        read::get_meta(&self.inner, key).await
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.refuse_if_read_only("writing a meta value")?;
        read::put_meta(&self.inner, key, value).await
    }

    /// Closes the pool and the writer session (releasing the sleds' locks): later
    /// calls on this store (and its clones) fail with `Unavailable`. Listeners ([`PostgresStore::listen`])
    /// keep their own connections.
    fn describe(&self) -> StoreDescription {
        StoreDescription::new(
            "postgres",
            format!("synchronous_commit={}", self.synchronous_commit),
        )
        .with_schema_version(schema::SCHEMA_VERSION.unsigned_abs())
        .with_read_only(self.inner.read_only)
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.inner.lane.lock().await.clear();
        self.inner.pool.close();
        Ok(())
    }
}

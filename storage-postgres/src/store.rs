//! [`PostgresStore`]: opening, and the [`OpStore`] implementation (which delegates to
//! the `append`, `read` and `notify` modules).

use std::sync::Arc;

use async_trait::async_trait;
use bft_json_crdt::{OpId, VersionVector};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use event_log_core::{OpRecord, OpStore, Position, StoreError};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{NoTls, Socket};
use tracing::info;

use crate::append::AppendSql;
use crate::config::{PostgresConfig, connection_config, redacted_url};
use crate::connect::connector;
use crate::error::from_pool;
use crate::notify::{ListenTarget, Subscription};
use crate::read::ReadSql;
use crate::schema::{Tables, migrate};

/// The statements of a store, written once at open for its schema.
#[derive(Debug)]
pub(crate) struct Sql {
    pub append: AppendSql,
    pub read: ReadSql,
}

struct Inner {
    pool: Pool,
    sql: Sql,
    schema: String,
    listen: Arc<ListenTarget>,
    /// Appends in flight at once ([`OpStore::append_pipeline`]).
    pipeline: usize,
    /// The connection ordered appends are pipelined on, taken from the pool on first
    /// use and replaced when it breaks.
    lane: tokio::sync::Mutex<Option<Arc<deadpool_postgres::Object>>>,
}

/// An [`OpStore`] on PostgreSQL. Cheap to clone: clones share one connection pool.
///
/// See the crate docs for the schema, durability, conflicts, `since` and
/// notifications.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
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
    /// `key=value` form) without TLS, creating or migrating its schema.
    ///
    /// Errors: a malformed URL or config is [`StoreError::Invalid`]; a server that
    /// cannot be reached is [`StoreError::Unavailable`], whose message names the
    /// server by URL without the password.
    pub async fn open(url: &str, config: PostgresConfig) -> Result<Self, StoreError> {
        Self::open_with_tls(url, config, NoTls).await
    }

    /// Like [`PostgresStore::open`], connecting through the TLS connector `tls`: any
    /// `tokio_postgres` `MakeTlsConnect` implementation, such as
    /// `postgres_native_tls::MakeTlsConnector` or `tokio_postgres_rustls::MakeRustlsConnect`
    /// (add that crate to your own dependencies). Put `sslmode=require` in the URL to
    /// refuse a plain connection.
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
        config.validate()?;
        let pg_config = connection_config(url, &config)?;
        let target = redacted_url(&pg_config);
        let manager = Manager::from_config(
            pg_config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(config.pool_wait_timeout)
            .create_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| StoreError::backend(format!("building the pool for {target}"), e))?;
        let tables = Tables::new(&config.schema);
        {
            let mut client = pool
                .get()
                .await
                .map_err(|e| from_pool("opening the store", &target, e))?;
            migrate(&mut client, &config.schema, &tables, &target).await?;
        }
        info!(server = %target, schema = %config.schema, "opened PostgreSQL op store");
        let sql = Sql {
            append: AppendSql::new(&tables, &config.schema, config.notify),
            read: ReadSql::new(&tables),
        };
        let listen = Arc::new(ListenTarget {
            connector: connector(tls),
            pg_config,
            channel: config.schema.clone(),
            redacted_url: target,
            config: config.clone(),
        });
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                sql,
                schema: config.schema,
                listen,
                pipeline: config.pipeline,
                lane: tokio::sync::Mutex::new(None),
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
    pub async fn subscribe(&self) -> Result<Subscription, StoreError> {
        crate::notify::subscribe(self.inner.listen.clone()).await
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    pub(crate) fn sql(&self) -> &Sql {
        &self.inner.sql
    }

    pub(crate) fn lane(&self) -> &tokio::sync::Mutex<Option<Arc<deadpool_postgres::Object>>> {
        &self.inner.lane
    }
}

#[async_trait]
impl OpStore for PostgresStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        self.append_batch(ops).await
    }

    fn append_pipeline(&self) -> usize {
        self.inner.pipeline
    }

    /// Runs on the store's one ordered-append connection, in call order; the op
    /// `after` is looked up in the same statement that inserts.
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        self.append_ordered(after, ops).await
    }

    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        self.load_after(after, limit).await
    }

    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        self.since_vv(vv, limit).await
    }

    async fn heads(&self) -> Result<VersionVector, StoreError> {
        self.heads_vv().await
    }

    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        self.get_by_id(id).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.count_ops().await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_meta_value(key).await
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put_meta_value(key, value).await
    }

    /// Closes the pool: later calls on this store (and its clones) fail with
    /// `Unavailable`. Subscriptions keep their own connections.
    async fn close(&self) -> Result<(), StoreError> {
        self.inner.lane.lock().await.take();
        self.inner.pool.close();
        Ok(())
    }
}

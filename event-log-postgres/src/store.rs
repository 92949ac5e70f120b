//! [`PostgresStore`]: opening, and the [`OpStore`] implementation (which delegates to
//! the `append`, `read` and `notify` modules).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bft_json_crdt::{AuthorId, OpId, VersionVector};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use event_log_core::{OpKey, OpRecord, OpStore, Position, StoreError};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{NoTls, Socket};
use tracing::{info, warn};

use crate::append::AppendSql;
use crate::config::{PostgresConfig, Recycling};
use crate::conn::{Conn, bounded};
use crate::connect::connector;
use crate::error::from_pg;
use crate::notify::{ListenTarget, Subscription};
use crate::read::ReadSql;
use crate::schema::{Tables, check_read_only, migrate};
use crate::settings;
use crate::tls::SslMode;

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
    /// Bound on every operation.
    operation_timeout: Duration,
    /// Bound on waiting for a sled's writer lock.
    sled_lock_timeout: Duration,
    read_only: bool,
    /// The writer connection and the sleds whose locks it holds.
    lane: tokio::sync::Mutex<Lane>,
    /// Whether any sled was acquired (read without taking the lane).
    holds_sleds: AtomicBool,
}

/// The writer connection: a session of its own, outside the pool, on which ordered
/// appends are pipelined and which holds the session-level advisory lock of every
/// sled acquired through this store. When it breaks, the next write connects again
/// and takes the locks again (waiting, as [`OpStore::acquire_sled`] does, for a
/// session that may hold them meanwhile).
pub(crate) struct Writer {
    pub(crate) client: deadpool_postgres::ClientWrapper,
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
    /// Forgets `writer` if it is the current one.
    pub(crate) fn forget(&mut self, writer: &Arc<Writer>) {
        if self.writer.as_ref().is_some_and(|w| Arc::ptr_eq(w, writer)) {
            self.writer = None;
        }
    }
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
        if settings.tls.mode == SslMode::Disable && !settings.tls.needs_own_connector() {
            return Self::open_resolved(settings, NoTls).await;
        }
        let tls = settings.tls.connector()?;
        Self::open_resolved(settings, tls).await
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
        Self::open_resolved(settings, tls).await
    }

    async fn open_resolved<T>(settings: settings::Settings, tls: T) -> Result<Self, StoreError>
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
        bounded(
            "opening the store",
            &target,
            config.operation_timeout,
            async {
                let mut client = Conn::get(&pool, "opening the store", &target).await?;
                if config.read_only {
                    check_read_only(&client, &config.schema, &tables, &target).await?;
                } else {
                    migrate(&mut client, &config.schema, &tables, &target).await?;
                }
                client.done();
                Ok(())
            },
        )
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
    pub async fn subscribe(&self) -> Result<Subscription, StoreError> {
        self.bounded(
            "starting to listen",
            crate::notify::subscribe(self.inner.listen.clone()),
        )
        .await
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    pub(crate) fn sql(&self) -> &Sql {
        &self.inner.sql
    }

    pub(crate) fn lane(&self) -> &tokio::sync::Mutex<Lane> {
        &self.inner.lane
    }

    /// True if the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// `op` within [`PostgresConfig::operation_timeout`].
    pub(crate) async fn bounded<T>(
        &self,
        what: &str,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        bounded(what, self.redacted_url(), self.inner.operation_timeout, op).await
    }

    /// `Invalid` for a write on a read-only store.
    pub(crate) fn refuse_if_read_only(&self, what: &str) -> Result<(), StoreError> {
        if self.inner.read_only {
            return Err(StoreError::Invalid {
                message: format!(
                    "{what} on {}: the store was opened read-only (mode=ro)",
                    self.redacted_url()
                ),
            });
        }
        Ok(())
    }

    /// True once a sled was acquired: writes then go over the writer session.
    pub(crate) async fn holds_sleds(&self) -> bool {
        self.inner.holds_sleds.load(Ordering::Acquire)
    }

    /// The writer connection, connecting (and taking the sleds' locks) if there is
    /// none or it broke.
    pub(crate) async fn writer(&self, lane: &mut Lane) -> Result<Arc<Writer>, StoreError> {
        if let Some(w) = lane.writer.as_ref().filter(|w| w.usable()) {
            return Ok(w.clone());
        }
        lane.writer = None;
        let target = self.redacted_url();
        let client = Conn::get(self.pool(), "connecting the writer", target)
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

    /// Takes `sled`'s writer lock on `writer`'s session, waiting at most
    /// [`PostgresConfig::sled_lock_timeout`] for another session to release it.
    async fn lock_sled(&self, writer: &Writer, sled: &AuthorId) -> Result<(), StoreError> {
        let target = self.redacted_url();
        let key = format!("event-log sled {} {sled}", self.inner.schema);
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
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
            if crate::read::col::<bool>(&row, 0, "sled lock")? {
                return Ok(());
            }
            let waited = started.elapsed();
            if waited >= self.inner.sled_lock_timeout {
                return Err(StoreError::Unavailable {
                    message: format!(
                        "taking the writer lock of sled {sled} on {target}: another session \
                         still holds it after {waited:?} (another process writing as this \
                         sled, or a previous one the server has not seen end yet; \
                         sled_lock_timeout {:?})",
                        self.inner.sled_lock_timeout
                    ),
                    source: None,
                });
            }
            if !warned && waited >= Duration::from_secs(1) {
                warn!(%sled, server = %target, "waiting for another session to release the sled's writer lock");
                warned = true;
            }
            tokio::time::sleep(pause.min(self.inner.sled_lock_timeout - waited)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
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

    /// From the partial index on evidence rows.
    async fn evidence(&self) -> Result<Vec<OpKey>, StoreError> {
        self.evidence_keys().await
    }

    /// Takes the sled's writer lock: a session-level advisory lock held by the
    /// store's writer session, over which every later write of the store goes. Waits
    /// up to [`PostgresConfig::sled_lock_timeout`] for another session holding it (a
    /// previous process whose last statement may still be running), then fails with
    /// `Unavailable`. A read-only store takes no lock.
    async fn acquire_sled(&self, sled: &AuthorId) -> Result<(), StoreError> {
        if self.inner.read_only {
            return Ok(());
        }
        let wait = self.inner.sled_lock_timeout + self.inner.operation_timeout;
        bounded(
            "taking the sled writer lock",
            self.redacted_url(),
            wait,
            async {
                let mut lane = self.lane().lock().await;
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
                    self.inner.holds_sleds.store(true, Ordering::Release);
                }
                result
            },
        )
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.count_ops().await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_meta_value(key).await
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.refuse_if_read_only("writing a meta value")?;
        self.put_meta_value(key, value).await
    }

    /// Closes the pool and the writer session (releasing the sleds' locks): later
    /// calls on this store (and its clones) fail with `Unavailable`. Subscriptions
    /// keep their own connections.
    async fn close(&self) -> Result<(), StoreError> {
        {
            let mut lane = self.inner.lane.lock().await;
            lane.writer = None;
            lane.sleds.clear();
        }
        self.inner.pool.close();
        Ok(())
    }
}

//! Opening a store: the connection pool (with the TLS the URL asks for), the
//! schema's preparation (migrated, checked, or left alone) and the server's
//! `synchronous_commit`, giving the parts a store is made of.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use event_log_core::StoreError;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{NoTls, Socket};
use tracing::info;

use crate::codec::col;
use crate::config::PostgresConfig;
use crate::conn::{Conn, bounded};
use crate::connect::connector;
use crate::error::from_pg;
use crate::inner::{Inner, Lane};
use crate::notify::ListenTarget;
use crate::options::Recycling;
use crate::schema::{Tables, check_read_only, migrate};
use crate::settings;
use crate::sql::Sql;
use crate::tls::SslMode;

/// What an open does to the schema.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Prepare {
    /// Create or migrate it (a writable store).
    Migrate,
    /// Check that it exists at this build's version (a read-only store).
    Check,
    /// Nothing: read its version only (`PostgresStore::schema_status`).
    Nothing,
}

impl Prepare {
    pub(super) fn of(config: &PostgresConfig) -> Self {
        if config.read_only {
            Prepare::Check
        } else {
            Prepare::Migrate
        }
    }
}

/// An opened store's parts: the shared state, and the server's
/// `synchronous_commit` for the store's sessions.
pub(super) struct Opened {
    /// The state every clone of the store shares.
    pub(super) inner: Inner,
    /// The server's `synchronous_commit`, read at open.
    pub(super) synchronous_commit: String,
}

/// Opens with the TLS the settings ask for: none for `sslmode=disable` (unless a
/// certificate parameter needs this crate's connector), else this crate's connector.
pub(super) async fn prepared(
    settings: settings::Settings,
    prepare: Prepare,
) -> Result<Opened, StoreError> {
    if settings.tls.mode == SslMode::Disable && !settings.tls.needs_own_connector() {
        return resolved(settings, NoTls, prepare).await;
    }
    let tls = settings.tls.connector()?;
    resolved(settings, tls, prepare).await
}

/// Opens through the TLS connector `tls`: builds the pool, prepares the schema
/// as `prepare` says and reads the server's `synchronous_commit`.
pub(super) async fn resolved<T>(
    settings: settings::Settings,
    tls: T,
    prepare: Prepare,
) -> Result<Opened, StoreError>
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
    Ok(Opened {
        synchronous_commit,
        inner: Inner {
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
        },
    })
}

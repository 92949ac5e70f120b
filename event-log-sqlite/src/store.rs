//! [`SqliteStore`]: the [`OpStore`] implementation, tying the writer thread and the
//! read pool together.
//!
//! This module promises the `OpStore` contract (see `event_log_core::OpStore`) with
//! `MemStore`'s exact semantics, and that no call blocks the async executor: appends
//! go to the writer thread, reads to the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bft_json_crdt::{AuthorId, OpId, VersionVector};
use event_log_core::{
    Causal, OpKey, OpRecord, OpStore, Position, SchemaStatus, StoreDescription, StoreError,
};
use tracing::info;

use crate::config::SqliteConfig;
use crate::query;
use crate::read::ReadPool;
use crate::schema;
use crate::stats::WriterStats;
use crate::writer::Writer;

/// An [`OpStore`] in one SQLite file.
///
/// Safe to share (`Arc<SqliteStore>`) between tasks. Needs a tokio runtime: reads run
/// on `spawn_blocking`. Dropping it without [`OpStore::close`] loses nothing: every
/// acknowledged append is already durable.
pub struct SqliteStore {
    path: PathBuf,
    config: SqliteConfig,
    /// `None` in a read-only store.
    writer: Option<Writer>,
    readers: Arc<ReadPool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if allowed) the store in the file at `path`, migrating its
    /// schema forward; with [`SqliteConfig::read_only`], opens it for reading only,
    /// creating and migrating nothing.
    ///
    /// Errors: `NotFound` naming the path if the file does not exist and may not be
    /// created (read-only, or `create_if_missing` off); `Unavailable` naming the path
    /// if the file cannot be opened or is locked; `Invalid` if the config is unusable,
    /// the file's schema is newer than this crate knows, or (read-only) older;
    /// `Corrupt` if the file is not a SQLite database.
    pub async fn open(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self, StoreError> {
        config.validate()?;
        let path = path.as_ref().to_path_buf();
        if (config.read_only || !config.create_if_missing)
            && let Err(e) = std::fs::metadata(&path)
            && e.kind() == std::io::ErrorKind::NotFound
        {
            return Err(StoreError::NotFound {
                what: format!("no SQLite database at {}", path.display()),
            });
        }
        let (p, c) = (path.clone(), config.clone());
        let (write_conn, read_conn) = tokio::task::spawn_blocking(move || {
            if c.read_only {
                let r = schema::open_reader(&p, &c)?;
                schema::check_version(&r, &p)?;
                return Ok::<_, StoreError>((None, r));
            }
            let w = schema::open_writer(&p, &c)?;
            let r = schema::open_reader(&p, &c)?;
            Ok((Some(w), r))
        })
        .await
        .map_err(|e| StoreError::backend("open the SQLite store", e))??;
        // Drop waits at most this long for the writer (see `Writer`'s Drop).
        let drop_wait = config.busy_timeout + Duration::from_secs(5);
        let writer = match write_conn {
            Some(conn) => Some(Writer::start(conn, config.max_group, drop_wait)?),
            None => None,
        };
        let readers = Arc::new(ReadPool::new(path.clone(), config.clone(), read_conn));
        info!(
            path = %path.display(),
            durability = ?config.durability,
            read_only = config.read_only,
            schema_version = schema::SCHEMA_VERSION,
            "opened SQLite store"
        );
        Ok(SqliteStore {
            path,
            config,
            writer,
            readers,
        })
    }

    /// Opens the store at `path` with [`SqliteConfig::default`] (durable on power loss).
    pub async fn open_default(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open(path, SqliteConfig::default()).await
    }

    /// Opens the store at `path` for reading only ([`SqliteConfig::read_only`]): a
    /// missing file is `NotFound`, nothing is created, migrated or written.
    pub async fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open(path, SqliteConfig::default().with_read_only(true)).await
    }

    /// Where the schema of the file at `path` stands against [`crate::SCHEMA_VERSION`],
    /// read without creating, migrating or writing anything (`evlog migrate
    /// --dry-run`). No file, or a file without an event-log schema, is `current:
    /// None`. Opening the store writable applies the pending steps.
    ///
    /// Errors: `Unavailable` if the file cannot be read, `Corrupt` if it is not a
    /// SQLite database, `Invalid` if its recorded version is negative.
    pub async fn schema_status(
        path: impl AsRef<Path>,
        config: SqliteConfig,
    ) -> Result<SchemaStatus, StoreError> {
        config.validate()?;
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || schema::status(&path, &config))
            .await
            .map_err(|e| StoreError::backend("read the SQLite schema version", e))?
    }

    /// The writer, or the error of a write to a read-only store.
    fn writer(&self, what: &str) -> Result<&Writer, StoreError> {
        self.writer.as_ref().ok_or_else(|| StoreError::Invalid {
            message: format!(
                "cannot {what}: the SQLite store {} is opened read-only",
                self.path.display()
            ),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &SqliteConfig {
        &self.config
    }

    /// The writer's counters (group commits, appends, ops written, conflicts).
    /// All zero in a read-only store.
    pub fn stats(&self) -> WriterStats {
        self.writer.as_ref().map(Writer::stats).unwrap_or_default()
    }
}

#[async_trait]
impl OpStore for SqliteStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        self.writer("append ops")?.append(ops.to_vec(), None).await
    }

    fn append_pipeline(&self) -> usize {
        self.config.pipeline
    }

    /// Queued to the writer thread when first polled, written in queue order; the
    /// guard runs inside the request's savepoint.
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        self.writer("append ops")?
            .append(ops.to_vec(), after.copied())
            .await
    }

    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        self.readers
            .run(move |conn| query::load(conn, after, limit))
            .await
    }

    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        let vv = vv.clone();
        self.readers
            .run(move |conn| query::since(conn, &vv, limit))
            .await
    }

    /// One range of the index `ops_author_seq_id`, in one read transaction.
    async fn author_ops(
        &self,
        author: &AuthorId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let author = *author;
        self.readers
            .run(move |conn| query::author_ops(conn, &author, after, limit))
            .await
    }

    /// One range of the index `ops_lamport_id`.
    async fn timeline(&self, after: &Causal, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        let after = *after;
        self.readers
            .run(move |conn| query::causal_ops(conn, None, &after, limit))
            .await
    }

    /// One range of the partial index `ops_story`.
    async fn story_ops(
        &self,
        story: &str,
        after: &Causal,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let (story, after) = (story.to_owned(), *after);
        self.readers
            .run(move |conn| query::causal_ops(conn, Some(&story), &after, limit))
            .await
    }

    /// One range of the partial index `ops_key`.
    async fn keyed(
        &self,
        author: &AuthorId,
        key: &str,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let (author, key) = (*author, key.to_owned());
        self.readers
            .run(move |conn| query::keyed(conn, &author, &key, limit))
            .await
    }

    async fn heads(&self) -> Result<VersionVector, StoreError> {
        self.readers.run(query::heads).await
    }

    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        let id = *id;
        self.readers.run(move |conn| query::get(conn, &id)).await
    }

    /// From the partial index `ops_evidence`: O(k) for k evidence ops.
    async fn evidence(&self) -> Result<Vec<OpKey>, StoreError> {
        self.readers.run(|conn| query::evidence(conn)).await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.readers
            .run(move |conn| query::get_meta(conn, &key))
            .await
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.writer("write a meta value")?
            .put_meta(key, value)
            .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.readers.run(|conn| query::count(conn)).await
    }

    fn describe(&self) -> StoreDescription {
        StoreDescription::new(
            "sqlite",
            format!("synchronous={}", self.config.durability.synchronous()),
        )
        .with_schema_version(schema::SCHEMA_VERSION)
        .with_read_only(self.config.read_only)
    }

    /// Commits every append already received, stops the writer thread and closes
    /// the connections. Later calls fail with `StoreError::Unavailable`. Idempotent.
    async fn close(&self) -> Result<(), StoreError> {
        let result = match &self.writer {
            Some(w) => w.close().await,
            None => Ok(()),
        };
        self.readers.close();
        info!(path = %self.path.display(), "closed SQLite store");
        result
    }
}

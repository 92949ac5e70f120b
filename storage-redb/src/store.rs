//! [`RedbStore`]: the [`OpStore`] itself — opening, the async face over the writer
//! thread and the blocking reads, and a clean shutdown.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bft_json_crdt::{OpId, VersionVector};
use event_log_core::{OpRecord, OpStore, Position, StoreError};
use parking_lot::RwLock;
use redb::Database;
use tracing::{debug, info, warn};

use crate::config::RedbConfig;
use crate::error;
use crate::read;
use crate::stats::{Counters, RedbStats};
use crate::tables;
use crate::writer::{PendingOp, Writer, WriterSettings};

/// An [`OpStore`] in one redb file. See the crate docs for the format, the
/// durability argument and group commit.
///
/// Share it (`Arc<RedbStore>` is itself an `OpStore`); every method takes `&self`.
/// Dropping it stops the writer thread after it has committed what was already
/// queued; [`OpStore::close`] does the same without blocking the async executor and
/// reports errors. Either way the file is released, so it can be opened again.
pub struct RedbStore {
    path: PathBuf,
    /// `None` once closed.
    db: RwLock<Option<Arc<Database>>>,
    writer: Writer,
    counters: Arc<Counters>,
    /// [`RedbConfig::pipeline`], at least 1.
    pipeline: usize,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("open", &self.db.read().is_some())
            .finish()
    }
}

/// Runs blocking redb work off the async executor: on tokio's blocking pool when
/// called inside a tokio runtime, inline otherwise (e.g. under `pollster`).
async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => rt
            .spawn_blocking(f)
            .await
            .map_err(|e| StoreError::backend("a blocking redb task failed", e))?,
        Err(_) => f(),
    }
}

/// Opens (or creates) the file and checks its format version.
fn open_db(path: &Path, config: &RedbConfig) -> Result<Database, StoreError> {
    let mut builder = Database::builder();
    if let Some(bytes) = config.cache_size {
        builder.set_cache_size(bytes);
    }
    builder.set_check_integrity_on_open(config.check_integrity_on_open);
    let db = builder.create(path).map_err(|e| error::open(path, e))?;
    tables::prepare(&db, path)?;
    Ok(db)
}

impl RedbStore {
    /// Opens the store at `path`, creating the file if it does not exist.
    ///
    /// Errors: [`StoreError::Unavailable`] if the file is locked by another process
    /// (or another open store in this process) or cannot be opened;
    /// [`StoreError::Invalid`] if it is not a redb database, is a redb database of
    /// something else, or has a newer store format version; each names the path.
    pub async fn open(path: impl AsRef<Path>, config: RedbConfig) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = {
            let (path, config) = (path.clone(), config.clone());
            blocking(move || open_db(&path, &config)).await?
        };
        let db = Arc::new(db);
        let counters = Arc::new(Counters::default());
        let writer = Writer::spawn(
            db.clone(),
            WriterSettings {
                max_group: config.max_group,
                two_phase_commit: config.two_phase_commit,
            },
            counters.clone(),
        )?;
        info!(path = %path.display(), "opened redb store");
        Ok(RedbStore {
            path,
            db: RwLock::new(Some(db)),
            writer,
            counters,
            pipeline: config.pipeline.max(1),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The counters since this store was opened.
    pub fn stats(&self) -> RedbStats {
        self.counters.snapshot()
    }

    /// The database for a read, or `Unavailable` once closed.
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.db
            .read()
            .clone()
            .ok_or_else(|| StoreError::Unavailable {
                message: format!("the redb store at {} is closed", self.path.display()),
                source: None,
            })
    }

    /// Runs a read on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db()?;
        blocking(move || f(&db)).await
    }
}

#[async_trait]
impl OpStore for RedbStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let pending = ops
            .iter()
            .map(PendingOp::new)
            .collect::<Result<Vec<_>, _>>()?;
        self.writer.append(pending, None).await
    }

    fn append_pipeline(&self) -> usize {
        self.pipeline
    }

    /// Queued to the writer thread when first polled, written in queue order; the
    /// guard is checked in the write transaction.
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        let pending = ops
            .iter()
            .map(PendingOp::new)
            .collect::<Result<Vec<_>, _>>()?;
        self.writer.append(pending, after.map(|a| a.0)).await
    }

    async fn load(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, OpRecord)>, StoreError> {
        self.read(move |db| read::load(db, after, limit)).await
    }

    async fn since(&self, vv: &VersionVector, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        let vv = vv.clone();
        self.read(move |db| read::since(db, &vv, limit)).await
    }

    async fn heads(&self) -> Result<VersionVector, StoreError> {
        self.read(read::heads).await
    }

    async fn get(&self, id: &OpId) -> Result<Option<OpRecord>, StoreError> {
        let id = *id;
        self.read(move |db| read::get(db, &id)).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.read(read::count).await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.read(move |db| read::get_meta(db, &key)).await
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.read(move |db| read::put_meta(db, &key, &value)).await
    }

    /// Commits what is queued, stops the writer thread and releases the file.
    /// Later calls fail with [`StoreError::Unavailable`]; closing twice is `Ok`.
    async fn close(&self) -> Result<(), StoreError> {
        let thread = self.writer.stop();
        let db = self.db.write().take();
        let path = self.path.clone();
        blocking(move || {
            if let Some(thread) = thread
                && thread.join().is_err()
            {
                warn!(path = %path.display(), "the redb writer thread had panicked");
            }
            // Close explicitly to see errors, unless a read still holds the database
            // (it then closes when that read ends).
            if let Some(db) = db.and_then(|db| Arc::try_unwrap(db).ok()) {
                db.close()
                    .map_err(|e| error::storage(format!("closing {}", path.display()), e))?;
            }
            info!(path = %path.display(), "closed redb store");
            Ok(())
        })
        .await
    }
}

impl Drop for RedbStore {
    /// Stops the writer thread after it commits what is queued (at most one group
    /// commit of waiting), so the file is released when this returns.
    fn drop(&mut self) {
        if let Some(thread) = self.writer.stop() {
            if thread.join().is_err() {
                warn!(path = %self.path.display(), "the redb writer thread had panicked");
            }
            debug!(path = %self.path.display(), "redb store dropped");
        }
    }
}

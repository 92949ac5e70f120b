//! [`RedbStore`]: the [`OpStore`] itself — opening, the async face over the writer
//! thread and the blocking reads, and a clean shutdown.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bft_json_crdt::{AuthorId, OpId, VersionVector};
use event_log_core::{
    Causal, Migration, OpKey, OpRecord, OpStore, Position, SchemaStatus, StoreDescription,
    StoreError,
};
use parking_lot::RwLock;
use redb::{Database, ReadOnlyDatabase};
use tracing::{debug, info, warn};

use crate::config::RedbConfig;
use crate::error;
use crate::read::{self, Readable};
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
    /// `None` once closed (and while the writer reopens the database after an I/O
    /// error). Shared with the writer thread, which installs the reopened database.
    db: Arc<RwLock<Option<Handle>>>,
    /// `None` in a read-only store.
    writer: Option<Writer>,
    counters: Arc<Counters>,
    /// [`RedbConfig::pipeline`] (validated: at least 1).
    pipeline: usize,
    /// [`RedbConfig::two_phase_commit`], for [`OpStore::describe`].
    two_phase_commit: bool,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("open", &self.db.read().is_some())
            .finish()
    }
}

/// The open database: writable, or opened read-only.
#[derive(Clone)]
enum Handle {
    Writable(Arc<Database>),
    ReadOnly(Arc<ReadOnlyDatabase>),
}

impl Handle {
    fn readable(&self) -> &Readable {
        match self {
            Handle::Writable(db) => &**db,
            Handle::ReadOnly(db) => &**db,
        }
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

/// Opens (or creates) the file and checks its format version; read-only, opens an
/// existing file and only checks.
fn open_db(path: &Path, config: &RedbConfig) -> Result<Handle, StoreError> {
    let mut builder = Database::builder();
    if let Some(bytes) = config.cache_size {
        builder.set_cache_size(bytes);
    }
    builder.set_check_integrity_on_open(config.check_integrity_on_open);
    if config.read_only {
        let db = builder
            .open_read_only(path)
            .map_err(|e| error::open(path, e))?;
        tables::check(&db, path)?;
        return Ok(Handle::ReadOnly(Arc::new(db)));
    }
    let db = builder.create(path).map_err(|e| error::open(path, e))?;
    tables::prepare(&db, path)?;
    Ok(Handle::Writable(Arc::new(db)))
}

/// How long a reopen after an I/O error waits for reads still holding the old
/// database (redb opens a file once per process) before it fails this time.
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The writer's [`crate::writer::Reopen`]: takes the failed database out of `slot`,
/// waits for reads still holding it, closes it and opens the file again (redb
/// repairs it if the failed write left it so), then puts the new one in `slot`.
fn reopener(
    slot: Arc<RwLock<Option<Handle>>>,
    path: PathBuf,
    config: RedbConfig,
) -> crate::writer::Reopen {
    Box::new(move || {
        let old = slot.write().take();
        if let Some(Handle::Writable(mut old)) = old {
            let started = std::time::Instant::now();
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        // It failed already; its close reports that again.
                        let _ = db.close();
                        break;
                    }
                    Err(shared) if started.elapsed() < REOPEN_WAIT => {
                        old = shared;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Err(shared) => {
                        *slot.write() = Some(Handle::Writable(shared));
                        return Err(StoreError::Unavailable {
                            message: format!(
                                "{}: reopening after an I/O error waits for reads still using the database",
                                path.display()
                            ),
                            source: None,
                        });
                    }
                }
            }
        }
        let reopened = open_db(&path, &config)?;
        let Handle::Writable(db) = &reopened else {
            return Err(StoreError::Invalid {
                message: format!("{} reopened read-only", path.display()),
            });
        };
        let db = db.clone();
        *slot.write() = Some(reopened);
        Ok(db)
    })
}

impl RedbStore {
    /// Opens the store at `path`, creating the file if it does not exist; with
    /// [`RedbConfig::read_only`], opens an existing file for reading only.
    ///
    /// Errors: [`StoreError::NotFound`] if the file does not exist and the open is
    /// read-only; [`StoreError::Unavailable`] if the file is locked by another process
    /// (or another open store in this process) or cannot be opened;
    /// [`StoreError::Config`] if a config value cannot be used;
    /// [`StoreError::Invalid`] if it is not a redb database, is a redb database of
    /// something else (read-only: or of nothing yet), or has a newer store format
    /// version (read-only: or an older one, which only a writable open migrates);
    /// each names the path.
    ///
    /// A writable open of a file of an older format version migrates it forward
    /// first, in one write transaction (see [`RedbStore::schema_status`] for the
    /// steps).
    pub async fn open(path: impl AsRef<Path>, config: RedbConfig) -> Result<Self, StoreError> {
        config.validate()?;
        let path = path.as_ref().to_path_buf();
        if config.read_only
            && let Err(e) = std::fs::metadata(&path)
            && e.kind() == std::io::ErrorKind::NotFound
        {
            return Err(StoreError::NotFound {
                what: format!("no redb database at {}", path.display()),
            });
        }
        let db = {
            let (path, config) = (path.clone(), config.clone());
            blocking(move || open_db(&path, &config)).await?
        };
        let counters = Arc::new(Counters::default());
        let writable = match &db {
            Handle::Writable(db) => Some(db.clone()),
            Handle::ReadOnly(_) => None,
        };
        let slot = Arc::new(RwLock::new(Some(db)));
        let writer = match writable {
            Some(db) => Some(Writer::start(
                db,
                WriterSettings {
                    max_group: config.max_group,
                    two_phase_commit: config.two_phase_commit,
                },
                counters.clone(),
                reopener(slot.clone(), path.clone(), config.clone()),
            )?),
            None => None,
        };
        info!(path = %path.display(), read_only = config.read_only, "opened redb store");
        Ok(RedbStore {
            path,
            db: slot,
            writer,
            counters,
            pipeline: config.pipeline,
            two_phase_commit: config.two_phase_commit,
        })
    }

    /// Opens the existing store at `path` for reading only ([`RedbConfig::read_only`]).
    pub async fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open(path, RedbConfig::default().with_read_only(true)).await
    }

    /// Where the file at `path` stands against [`crate::FORMAT_VERSION`], read
    /// without creating or writing anything (`evlog migrate --dry-run`): no file, or
    /// an empty redb file, is `current: None` (opening it writable creates the
    /// tables); a file of format version 1 has the step to version 2 pending (every
    /// record rewritten with its lamport, story and idempotency key, which the
    /// causal, story and key indexes are filled from), which a writable open applies.
    ///
    /// Errors as [`RedbStore::open`] read-only: `Unavailable` while another process
    /// has the file open (redb locks it), `Invalid` for a redb file of something else
    /// or a newer format.
    pub async fn schema_status(
        path: impl AsRef<Path>,
        config: RedbConfig,
    ) -> Result<SchemaStatus, StoreError> {
        config.validate()?;
        let path = path.as_ref().to_path_buf();
        let steps = [
            Migration::new(1, "create the tables (format version 1)"),
            Migration::new(
                2,
                "add the lamport, story and idempotency key to every record, and index the causal order, stories and keys (format version 2)",
            ),
        ];
        let current = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            _ => blocking(move || {
                let db = Database::builder()
                    .open_read_only(&path)
                    .map_err(|e| error::open(&path, e))?;
                tables::version(&db, &path)
            })
            .await?
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
        };
        Ok(SchemaStatus::from_steps("redb", current, &steps))
    }

    /// True if opened with [`RedbConfig::read_only`].
    pub fn is_read_only(&self) -> bool {
        self.writer.is_none()
    }

    /// The error of a write to a read-only store.
    fn read_only(&self, what: &str) -> StoreError {
        StoreError::Invalid {
            message: format!(
                "cannot {what}: the redb store {} is opened read-only",
                self.path.display()
            ),
        }
    }

    /// The writer, or the error of a write to a read-only store.
    fn writer(&self, what: &str) -> Result<&Writer, StoreError> {
        self.writer.as_ref().ok_or_else(|| self.read_only(what))
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
    fn db(&self) -> Result<Handle, StoreError> {
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
        F: FnOnce(&Readable) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db()?;
        blocking(move || f(db.readable())).await
    }
}

#[async_trait]
impl OpStore for RedbStore {
    async fn append(&self, ops: &[OpRecord]) -> Result<(), StoreError> {
        let writer = self.writer("append ops")?;
        if ops.is_empty() {
            return Ok(());
        }
        let pending = ops
            .iter()
            .map(PendingOp::new)
            .collect::<Result<Vec<_>, _>>()?;
        writer.append(pending, None).await
    }

    fn append_pipeline(&self) -> usize {
        self.pipeline
    }

    /// Queued to the writer thread when first polled, written in queue order; the
    /// guard is checked in the write transaction.
    async fn append_after(&self, after: Option<&OpId>, ops: &[OpRecord]) -> Result<(), StoreError> {
        let writer = self.writer("append ops")?;
        let pending = ops
            .iter()
            .map(PendingOp::new)
            .collect::<Result<Vec<_>, _>>()?;
        writer.append(pending, after.map(|a| a.0)).await
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

    /// One range of `ops_by_author`.
    async fn author_ops(
        &self,
        author: &AuthorId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let author = *author;
        self.read(move |db| read::author_ops(db, &author, after, limit))
            .await
    }

    /// One range of `ops_by_causal`.
    async fn timeline(&self, after: &Causal, limit: usize) -> Result<Vec<OpRecord>, StoreError> {
        let after = *after;
        self.read(move |db| read::timeline(db, &after, limit)).await
    }

    /// One range of `ops_by_story`.
    async fn story_ops(
        &self,
        story: &str,
        after: &Causal,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let (story, after) = (story.to_owned(), *after);
        self.read(move |db| read::story_ops(db, &story, &after, limit))
            .await
    }

    /// One range of `ops_by_key`.
    async fn keyed(
        &self,
        author: &AuthorId,
        key: &str,
        limit: usize,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let (author, key) = (*author, key.to_owned());
        self.read(move |db| read::keyed(db, &author, &key, limit))
            .await
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

    /// From the indexes, keys only: the `ops_by_author` entries that are not the
    /// primary op of their (author, seq). No record is read.
    async fn evidence(&self) -> Result<Vec<OpKey>, StoreError> {
        self.read(read::evidence).await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.read(move |db| read::get_meta(db, &key)).await
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let Handle::Writable(db) = self.db()? else {
            return Err(self.read_only("write a meta value"));
        };
        let (key, value) = (key.to_owned(), value.to_vec());
        blocking(move || read::put_meta(&db, &key, &value)).await
    }

    /// Commits what is queued, stops the writer thread and releases the file.
    /// Later calls fail with [`StoreError::Unavailable`]; closing twice is `Ok`.
    fn describe(&self) -> StoreDescription {
        let durability = if self.two_phase_commit {
            "Durability::Immediate, two-phase commit"
        } else {
            "Durability::Immediate"
        };
        StoreDescription::new("redb", durability)
            .with_schema_version(u32::try_from(tables::FORMAT_VERSION).unwrap_or(u32::MAX))
            .with_read_only(self.is_read_only())
    }

    async fn close(&self) -> Result<(), StoreError> {
        let thread = self.writer.as_ref().and_then(Writer::stop);
        let slot = self.db.clone();
        let path = self.path.clone();
        blocking(move || {
            if let Some(thread) = thread
                && thread.join().is_err()
            {
                warn!(path = %path.display(), "the redb writer thread had panicked");
            }
            // Taken after the writer stopped: it may have reopened the database.
            let db = slot.write().take();
            // Close explicitly to see errors, unless a read still holds the database
            // (it then closes when that read ends).
            let closing = || format!("closing {}", path.display());
            match db {
                Some(Handle::Writable(db)) => {
                    if let Ok(db) = Arc::try_unwrap(db) {
                        db.close().map_err(|e| error::storage(closing(), e))?;
                    }
                }
                Some(Handle::ReadOnly(db)) => {
                    if let Ok(db) = Arc::try_unwrap(db) {
                        db.close().map_err(|e| error::storage(closing(), e))?;
                    }
                }
                None => {}
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
        if let Some(thread) = self.writer.as_ref().and_then(Writer::stop) {
            if thread.join().is_err() {
                warn!(path = %self.path.display(), "the redb writer thread had panicked");
            }
            debug!(path = %self.path.display(), "redb store dropped");
        }
    }
}

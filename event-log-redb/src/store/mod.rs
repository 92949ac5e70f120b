//! [`RedbStore`]: the [`OpStore`] itself — opening, the async face over the writer
//! thread and the blocking reads, and a clean shutdown. The open database (opening,
//! reopening after an I/O error, the blocking pool) is in `handle`; the [`OpStore`]
//! methods are in `op_store`.
//!
//! [`OpStore`]: event_log_core::OpStore

mod handle;
mod op_store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use event_log_core::{Migration, SchemaStatus, StoreError};
use parking_lot::RwLock;
use redb::Database;
use tracing::{debug, info, warn};

use crate::config::RedbConfig;
use crate::error;
use crate::read::Readable;
use crate::stats::{Counters, RedbStats};
use crate::tables;
use crate::writer::{Writer, WriterSettings};
use handle::{Handle, blocking, open_db, reopener};

/// An [`OpStore`] in one redb file. See the crate docs for the format, the
/// durability argument and group commit.
///
/// Share it (`Arc<RedbStore>` is itself an `OpStore`); every method takes `&self`.
/// Dropping it stops the writer thread after it has committed what was already
/// queued; [`OpStore::close`] does the same without blocking the async executor and
/// reports errors. Either way the file is released, so it can be opened again.
///
/// [`OpStore`]: event_log_core::OpStore
/// [`OpStore::close`]: event_log_core::OpStore::close
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
    /// [`RedbConfig::two_phase_commit`], for
    /// [`OpStore::describe`](event_log_core::OpStore::describe).
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

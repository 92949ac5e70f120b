//! The open redb database behind a [`RedbStore`](super::RedbStore): opening the
//! file and checking its format version, reopening it after an I/O error, and
//! running blocking redb work off the async executor.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use event_log_core::StoreError;
use parking_lot::RwLock;
use redb::{Database, ReadOnlyDatabase};

use crate::config::RedbConfig;
use crate::error;
use crate::read::Readable;
use crate::tables;

/// The open database: writable, or opened read-only.
#[derive(Clone)]
pub(super) enum Handle {
    Writable(Arc<Database>),
    ReadOnly(Arc<ReadOnlyDatabase>),
}

impl Handle {
    pub(super) fn readable(&self) -> &Readable {
        match self {
            Handle::Writable(db) => &**db,
            Handle::ReadOnly(db) => &**db,
        }
    }
}

/// Runs blocking redb work off the async executor: on tokio's blocking pool when
/// called inside a tokio runtime, inline otherwise (e.g. under `pollster`).
pub(super) async fn blocking<T, F>(f: F) -> Result<T, StoreError>
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
pub(super) fn open_db(path: &Path, config: &RedbConfig) -> Result<Handle, StoreError> {
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
pub(super) fn reopener(
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

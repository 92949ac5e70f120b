//! [`FileWatermark`]: a sled's watermark in a file beside its key.
//!
//! The log keeps a signed high-water mark of the sled's own ops outside its store
//! (see [`event_log_core::Watermark`]), so that a store that lost acknowledged ops
//! (restored from a backup, failed over to an asynchronous standby…) is detected
//! at open ([`crate::Error::RolledBack`]) instead of making the sled sign the lost
//! seqs again. Keep it where the key is: they belong to the sled, not to the store,
//! and a store restored from a backup must not bring an old mark back with it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use event_log::watermark::FileWatermark;
//! let key = event_log::keys::load_or_create("sled.key")?;
//! let config = event_log::EventLogConfig::default().with_watermark(Some(
//!     event_log::SharedWatermark::new(FileWatermark::beside_key("sled.key")?),
//! ));
//! let log = event_log::open_with("sqlite://events.db", key, config).await?;
//! # Ok(()) }
//! ```
//!
//! # File
//! Three lines: `event-log watermark v1`, the mark (opaque bytes, sealed by the
//! log) in hex, and the CRC-32 of those bytes in hex. A file that does not parse or
//! whose checksum is wrong is [`WatermarkError::Corrupt`]: never ignored, since a
//! sled without its mark cannot tell whether its store was rolled back. A missing
//! file is no mark yet (a new sled).
//!
//! # Writing
//! [`Watermark::save`] only records the newest mark and wakes a writer thread; the
//! thread writes the newest mark it finds (saves made meanwhile are coalesced)
//! crash-safely: to a temporary file in the same directory, synced, renamed over
//! the mark, and the directory synced. So the file always holds a whole mark, old
//! or new. [`Watermark::flush`] (called by [`crate::EventLog::close`]) waits until
//! the newest mark is on disk, and reports a write that failed
//! ([`WatermarkError::Write`]), trying it again first.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use event_log_core::{BoxError, Watermark};

mod format;
#[cfg(test)]
mod tests;

use format::{decode, write_mark};

/// Why a [`FileWatermark`] cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatermarkError {
    /// The mark file exists but cannot be read.
    #[error("cannot read the sled's watermark file {path}: {source}")]
    Io {
        /// The mark file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The mark file does not hold a whole, intact mark.
    #[error(
        "the sled's watermark file {path} is corrupt ({reason}). Without it the log cannot tell \
         whether its store lost ops it signed. Restore the file from a backup taken with the \
         key; or, only if the store is known to hold every op this sled signed, remove the file \
         (the log writes a new one from the store)"
    )]
    Corrupt {
        /// The mark file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The newest mark could not be written.
    #[error("cannot write the sled's watermark file {path}: {source}")]
    Write {
        /// The mark file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The writer thread could not be started.
    #[error("cannot start the watermark writer for {path}: {source}")]
    Spawn {
        /// The mark file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The mark file of the key file at `key_path`: `<key path>.mark`.
pub fn mark_path(key_path: impl AsRef<Path>) -> PathBuf {
    let mut p = key_path.as_ref().as_os_str().to_owned();
    p.push(".mark");
    PathBuf::from(p)
}

/// A [`Watermark`] in a file, written crash-safely behind the appends by a
/// background thread (see the [module docs](self)). Clones share the file and the
/// thread, which ends once every clone is dropped, after writing the last save.
///
/// One sled, one mark file: two watermarks (or processes) on one file would each
/// write their own newest mark over the other's.
#[derive(Clone)]
pub struct FileWatermark {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for FileWatermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWatermark")
            .field("path", &self.handle.shared.path)
            .finish_non_exhaustive()
    }
}

/// Owned by the clones of a [`FileWatermark`]; stops the writer when dropped.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake_writer.notify_one();
    }
}

struct Shared {
    path: PathBuf,
    state: Mutex<State>,
    wake_writer: Condvar,
}

#[derive(Default)]
struct State {
    /// The newest mark saved by this watermark.
    latest: Option<Arc<Vec<u8>>>,
    /// Generation of `latest` (one per save, and per retry).
    saved: u64,
    /// Whether `latest` waits for the writer.
    pending: bool,
    /// Generation of the last write finished (successfully or not).
    written: u64,
    /// Why that write failed.
    failure: Option<Arc<std::io::Error>>,
    /// Flushes waiting for a write.
    waiters: Vec<Waker>,
    /// No handle left: write what is pending, then stop.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held across anything that can panic but a push.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer thread: writes the newest pending mark until closed.
    fn run(&self) {
        loop {
            let (mark, generation) = {
                let mut s = self.lock();
                while !s.pending && !s.closed {
                    s = self.wake_writer.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                if !s.pending {
                    return;
                }
                s.pending = false;
                match &s.latest {
                    Some(m) => (m.clone(), s.saved),
                    None => continue,
                }
            };
            let result = write_mark(&self.path, &mark);
            if let Err(e) = &result {
                tracing::warn!(path = %self.path.display(), error = %e,
                    "cannot write the sled's watermark");
            }
            let mut s = self.lock();
            s.written = generation;
            s.failure = result.err().map(Arc::new);
            for w in s.waiters.drain(..) {
                w.wake();
            }
        }
    }
}

impl FileWatermark {
    /// A watermark kept in the file at `path` (which need not exist yet). Starts
    /// its writer thread; reads nothing until [`Watermark::load`].
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, WatermarkError> {
        let path = path.into();
        let shared = Arc::new(Shared {
            path: path.clone(),
            state: Mutex::new(State::default()),
            wake_writer: Condvar::new(),
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("event-log-watermark".into())
            .spawn(move || writer.run())
            .map_err(|source| WatermarkError::Spawn { path, source })?;
        Ok(FileWatermark {
            handle: Arc::new(Handle { shared }),
        })
    }

    /// The watermark of the sled whose key file is `key_path`, in
    /// [`mark_path`]`(key_path)`.
    pub fn beside_key(key_path: impl AsRef<Path>) -> Result<Self, WatermarkError> {
        Self::open(mark_path(key_path))
    }

    /// The mark file.
    pub fn path(&self) -> &Path {
        &self.handle.shared.path
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Reads the mark file: `None` if there is none.
    fn read(&self) -> Result<Option<Vec<u8>>, WatermarkError> {
        let path = self.path();
        match std::fs::read(path) {
            Ok(bytes) => decode(&bytes)
                .map(Some)
                .map_err(|reason| WatermarkError::Corrupt {
                    path: path.to_owned(),
                    reason,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(WatermarkError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Waits until the write of generation `target` (or a later one) finished,
    /// and reports its outcome.
    fn flushed(&self, target: u64) -> Flushed {
        Flushed {
            shared: self.shared().clone(),
            target,
        }
    }
}

/// The future of [`FileWatermark::flush`].
struct Flushed {
    shared: Arc<Shared>,
    target: u64,
}

impl Future for Flushed {
    type Output = Result<(), WatermarkError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.shared.lock();
        if s.written >= self.target {
            // A later write supersedes ours: its outcome is what is on disk.
            return Poll::Ready(match &s.failure {
                None => Ok(()),
                Some(e) => Err(WatermarkError::Write {
                    path: self.shared.path.clone(),
                    source: e.clone(),
                }),
            });
        }
        if !s.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            s.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

// `Watermark` is an `async_trait`; its methods are written out as the macro would.
impl Watermark for FileWatermark {
    /// The newest mark saved through this watermark if any, else the one in the
    /// file (read directly: a few bytes, once per open).
    fn load<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, BoxError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            if let Some(m) = &self.shared().lock().latest {
                return Ok(Some(m.as_ref().clone()));
            }
            Ok(self.read()?)
        })
    }

    /// Records `mark` as the newest and wakes the writer; never waits.
    fn save(&self, mark: Vec<u8>) {
        let shared = self.shared();
        {
            let mut s = shared.lock();
            s.latest = Some(Arc::new(mark));
            s.saved += 1;
            s.pending = true;
        }
        shared.wake_writer.notify_one();
    }

    /// Waits until the newest mark saved is in the file. If the last write failed,
    /// tries it again first, and reports [`WatermarkError::Write`] if that fails too.
    fn flush<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let target = {
            let mut s = self.shared().lock();
            if s.failure.is_some() && !s.pending && s.written == s.saved {
                s.saved += 1;
                s.pending = true;
                self.shared().wake_writer.notify_one();
            }
            s.saved
        };
        let flushed = self.flushed(target);
        Box::pin(async move { Ok(flushed.await?) })
    }
}

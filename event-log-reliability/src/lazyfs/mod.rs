//! A FUSE file system that loses unsynced writes on a power cut, after Jepsen's
//! LazyFS: the power-loss tests' disk.
//!
//! [`LazyFs::mount`] mounts a passthrough file system on a mount point over a
//! **backing directory**, which plays the disk's platters. Every `write` to a file
//! stays in the file system's memory (its "page cache", in 4 KiB pages) until that
//! file is `fsync`ed or `fdatasync`ed: only then are its dirty pages and its size
//! written to the backing file. Reads and `stat` see the cached state, as on a real
//! system. [`LazyFs::power_cut`] drops every unsynced write at once, refuses every
//! later request with `EIO` (so nothing the kernel still flushes reaches the disk)
//! and unmounts: afterwards the backing directory holds exactly what was synced.
//! [`LazyFs::unmount`] is the clean shutdown: every dirty page is written first.
//! Dropping a mounted [`LazyFs`] is a power cut.
//!
//! The state (inode table, handles, unsynced pages) is in `state`, the page cache
//! over it in `cache`, and the FUSE requests in `fs`.
//!
//! # What it models of a real disk, and what not
//!
//! - **Modelled:** the loss of every write not followed by an `fsync`/`fdatasync`
//!   of its file (LazyFS's `clear-cache` fault): the worst case of a volatile page
//!   cache and a disk that keeps exactly what it was told to flush. Per file, a sync
//!   persists every write made to that file before it, in full.
//! - **Not modelled:** a *partial* loss of unsynced data (some pages of a file
//!   reaching the disk before its sync, in any order, or torn within a sector).
//!   A store that survives the cut here may still be hurt by such reordering; the
//!   tests check the sync discipline (what is acknowledged was synced), not torn
//!   writes.
//! - **Metadata is write-through:** `create`, `mkdir`, `unlink`, `rmdir`, `rename`,
//!   `chmod` and size changes by `truncate` are applied to the backing directory at
//!   once and survive a cut, as on a journalling file system that committed them
//!   (ext4's `data=ordered` commits metadata before data). A real disk may also lose
//!   a create or a rename whose directory was not synced; that is not modelled, so
//!   `fsync` of a directory has nothing to flush (and, as on Linux, it does not
//!   flush the data of the files in it). A truncate that extends a file makes the
//!   new size durable (its bytes zero), not the unsynced data under it.
//! - Files only: no symlinks, hard links, special files or extended attributes
//!   (`ENOSYS`). Locks (`flock`, `fcntl`) are the kernel's local ones, which is
//!   what processes on one machine share. Writable shared `mmap` works (SQLite's
//!   `-shm` index), its pages reaching this file system as writes.
//! - The backing files are never `fsync`ed themselves: the machine does not lose
//!   power, only this layer does.

mod cache;
mod fs;
mod state;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fuser::{BackgroundSession, Config, MountOption};

use fs::Fs;
pub use state::PAGE;
use state::{State, lock};

/// Why the file system could not be mounted or unmounted.
#[derive(Debug, thiserror::Error)]
pub enum LazyFsError {
    /// The backing directory or the mount point is unusable.
    #[error("{what} {path}: {source}")]
    Dir {
        /// Which directory.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The FUSE mount failed.
    #[error(
        "mounting the lazy FUSE file system on {mountpoint} failed: {source}. The power-loss \
         tests mount it themselves with mount(2), which needs root and the kernel's FUSE \
         device (/dev/fuse; in a container, `--device /dev/fuse --cap-add SYS_ADMIN`)"
    )]
    Mount {
        /// The mount point.
        mountpoint: PathBuf,
        /// What the mount said.
        #[source]
        source: io::Error,
    },
    /// Writing the dirty pages at a clean unmount failed.
    #[error("flushing {path} at unmount: {source}")]
    Flush {
        /// The file (relative to the backing directory).
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The unmount failed, or the file system's thread ended with an error.
    #[error("unmounting {mountpoint}: {source}")]
    Unmount {
        /// The mount point.
        mountpoint: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// What a power cut dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PowerCut {
    /// Files that had unsynced writes.
    pub files: usize,
    /// Dirty pages dropped.
    pub pages: usize,
}

/// A mounted lazy file system (see the module docs); a power cut when dropped.
pub struct LazyFs {
    session: Option<BackgroundSession>,
    state: Arc<Mutex<State>>,
    mountpoint: PathBuf,
    backing: PathBuf,
}

impl std::fmt::Debug for LazyFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyFs")
            .field("mountpoint", &self.mountpoint)
            .field("backing", &self.backing)
            .field("mounted", &self.session.is_some())
            .finish()
    }
}

impl LazyFs {
    /// Mounts the file system on `mountpoint` (an existing, empty directory) over
    /// `backing` (an existing directory, the "disk"). Needs root and `/dev/fuse`.
    pub fn mount(backing: &Path, mountpoint: &Path) -> Result<LazyFs, LazyFsError> {
        let dir = |what, path: &Path| {
            let path = path.to_owned();
            move |source| LazyFsError::Dir { what, path, source }
        };
        let backing = backing
            .canonicalize()
            .map_err(dir("the backing directory", backing))?;
        let mountpoint = mountpoint
            .canonicalize()
            .map_err(dir("the mount point", mountpoint))?;
        let state = Arc::new(Mutex::new(State::new(backing.clone())));
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("evlog-lazyfs".to_owned()),
            MountOption::Subtype("lazyfs".to_owned()),
            MountOption::DefaultPermissions,
        ];
        let session = fuser::spawn_mount(
            Fs {
                state: state.clone(),
            },
            &mountpoint,
            &config,
        )
        .map_err(|source| LazyFsError::Mount {
            mountpoint: mountpoint.clone(),
            source,
        })?;
        tracing::debug!(mountpoint = %mountpoint.display(), backing = %backing.display(), "lazyfs mounted");
        Ok(LazyFs {
            session: Some(session),
            state,
            mountpoint,
            backing,
        })
    }

    /// The mount point: what the programs under test open.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The backing directory: what survives a power cut.
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Dirty (unsynced) pages held now.
    pub fn dirty_pages(&self) -> usize {
        lock(&self.state)
            .dirty
            .values()
            .map(|d| d.pages.len())
            .sum()
    }

    /// Cuts the power: drops every unsynced write, fails every later request with
    /// `EIO`, and unmounts. Run it when nothing has a file open on the mount (the
    /// programs under test killed and reaped), or the unmount is only lazy.
    pub fn power_cut(mut self) -> Result<PowerCut, LazyFsError> {
        let cut = self.cut();
        self.detach()?;
        Ok(cut)
    }

    /// Unmounts cleanly: every dirty page written to the backing files first.
    pub fn unmount(mut self) -> Result<(), LazyFsError> {
        {
            let mut state = lock(&self.state);
            let dirty: Vec<u64> = state.dirty.keys().copied().collect();
            for ino in dirty {
                let path = state.inodes.get(&ino).cloned();
                match path {
                    Some(path) => state.sync(ino, None).map_err(|e| LazyFsError::Flush {
                        path,
                        source: io::Error::from_raw_os_error(e.code()),
                    })?,
                    // Unlinked: nothing on the disk to write to.
                    None => drop(state.dirty.remove(&ino)),
                }
            }
            state.dead = true;
        }
        self.detach()
    }

    fn cut(&self) -> PowerCut {
        let mut state = lock(&self.state);
        state.dead = true;
        let cut = PowerCut {
            files: state.dirty.len(),
            pages: state.dirty.values().map(|d| d.pages.len()).sum(),
        };
        state.dirty.clear();
        tracing::debug!(mountpoint = %self.mountpoint.display(), ?cut, "lazyfs power cut");
        cut
    }

    fn detach(&mut self) -> Result<(), LazyFsError> {
        match self.session.take() {
            Some(session) => session
                .umount_and_join()
                .map_err(|source| LazyFsError::Unmount {
                    mountpoint: self.mountpoint.clone(),
                    source,
                }),
            None => Ok(()),
        }
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        if self.session.is_some() {
            self.cut();
            if let Err(e) = self.detach() {
                tracing::warn!("{e}");
            }
        }
    }
}

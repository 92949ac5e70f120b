//! A small tmpfs the fault tests mount, to fill: a real full disk (`ENOSPC`) under a
//! store, not a simulated one.
//!
//! [`Tmpfs::mount`] mounts `tmpfs` of a given size on a fresh temporary directory
//! (root only: `mount -t tmpfs -o size=… tmpfs DIR`); dropping it unmounts it (lazily,
//! if a file is still open) and removes the directory. [`Tmpfs::fill`] writes a
//! ballast file until the file system refuses more; dropping or
//! [`Ballast::remove`]-ing it gives the space back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a tmpfs could not be mounted or filled.
#[derive(Debug, thiserror::Error)]
pub enum TmpfsError {
    /// The mount point could not be created.
    #[error("creating a mount point: {0}")]
    MountPoint(#[source] std::io::Error),
    /// `mount` could not be run, or refused.
    #[error(
        "mounting a {size}-byte tmpfs on {dir} failed ({detail}): the full-disk tests mount one \
         and need root (CI runs the tests as root): run them as root, or leave them out by name \
         (`--skip full_disk`)"
    )]
    Mount {
        /// The mount point.
        dir: PathBuf,
        /// The size asked for.
        size: u64,
        /// What `mount` said.
        detail: String,
    },
    /// Writing the ballast failed with something else than a full disk.
    #[error("writing the ballast file {path}: {source}")]
    Ballast {
        /// The ballast file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A mounted tmpfs; unmounted and removed on drop.
#[derive(Debug)]
pub struct Tmpfs {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    size: u64,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes on a new temporary directory.
    pub fn mount(size: u64) -> Result<Tmpfs, TmpfsError> {
        let dir = tempfile::Builder::new()
            .prefix("evlog-tmpfs-")
            .tempdir()
            .map_err(TmpfsError::MountPoint)?;
        let path = dir.path().to_owned();
        let failed = |detail: String| TmpfsError::Mount {
            dir: path.clone(),
            size,
            detail,
        };
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0755"))
            .arg("tmpfs")
            .arg(&path)
            .output()
            .map_err(|e| failed(format!("cannot run mount: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let said = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(failed(format!("{}: {said}", out.status)));
        }
        tracing::debug!(dir = %path.display(), size, "tmpfs mounted");
        Ok(Tmpfs {
            dir: Some(dir),
            path,
            size,
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size it was mounted with, in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes a ballast file (`name` in the tmpfs) until the file system is full:
    /// in 1 MiB writes, then 4 KiB ones, each flushed, until `ENOSPC`.
    pub fn fill(&self, name: &str) -> Result<Ballast, TmpfsError> {
        let path = self.path.join(name);
        let failed = |source| TmpfsError::Ballast {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::create(&path).map_err(failed)?;
        let mut bytes = 0u64;
        for chunk in [1 << 20, 4096, 512] {
            let zeros = vec![0u8; chunk];
            loop {
                match file.write_all(&zeros).and_then(|()| file.flush()) {
                    Ok(()) => bytes += chunk as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                    Err(e) => return Err(failed(e)),
                }
            }
        }
        tracing::debug!(path = %path.display(), bytes, "ballast written: the tmpfs is full");
        Ok(Ballast {
            path: Some(path),
            bytes,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file open: detach it now, freed when closed.
            let lazy = Command::new("umount").arg("-l").arg(&self.path).status();
            if !lazy.is_ok_and(|s| s.success()) {
                tracing::warn!(dir = %self.path.display(), "could not unmount the test tmpfs");
                // Keep the directory: removing it would empty the mounted file system.
                if let Some(dir) = self.dir.take() {
                    let _ = dir.keep();
                }
            }
        }
    }
}

/// A file filling a [`Tmpfs`]; removed on drop.
#[derive(Debug)]
pub struct Ballast {
    path: Option<PathBuf>,
    bytes: u64,
}

impl Ballast {
    /// How many bytes it holds.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Removes the file, giving its space back.
    pub fn remove(mut self) -> std::io::Result<()> {
        match self.path.take() {
            Some(path) => std::fs::remove_file(path),
            None => Ok(()),
        }
    }
}

impl Drop for Ballast {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

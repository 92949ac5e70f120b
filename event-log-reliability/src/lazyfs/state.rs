//! The file system's state: the inode table (paths and inode numbers, both ways),
//! the open handles, and each file's unsynced state, behind one lock. The page
//! cache's reads, writes and syncs over it are in `cache`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType, INodeNo};

/// The page size of the cache: a write dirties the 4 KiB pages it touches.
pub const PAGE: u64 = 4096;

/// A file's unsynced state: its dirty pages (by page number) and its size as the
/// programs see it.
#[derive(Debug, Default)]
pub(super) struct Dirty {
    pub(super) pages: BTreeMap<u64, Box<[u8]>>,
    pub(super) size: u64,
}

/// An open file or directory.
#[derive(Debug)]
pub(super) struct Handle {
    ino: u64,
    /// The backing file, opened read-write (`None` for a directory).
    file: Option<File>,
}

/// Everything the file system knows, behind one lock.
#[derive(Debug)]
pub(super) struct State {
    backing: PathBuf,
    /// After a power cut every request fails with `EIO`.
    pub(super) dead: bool,
    /// Inode numbers by path relative to the backing directory (`""` is the root).
    paths: HashMap<PathBuf, u64>,
    pub(super) inodes: HashMap<u64, PathBuf>,
    next_ino: u64,
    pub(super) handles: HashMap<u64, Handle>,
    next_fh: u64,
    pub(super) dirty: HashMap<u64, Dirty>,
}

impl State {
    pub(super) fn new(backing: PathBuf) -> Self {
        let root = PathBuf::new();
        State {
            backing,
            dead: false,
            paths: HashMap::from([(root.clone(), 1)]),
            inodes: HashMap::from([(1, root)]),
            next_ino: 2,
            handles: HashMap::new(),
            next_fh: 1,
            dirty: HashMap::new(),
        }
    }

    pub(super) fn path(&self, ino: u64) -> Result<PathBuf, Errno> {
        self.inodes.get(&ino).cloned().ok_or(Errno::ENOENT)
    }

    pub(super) fn real(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    pub(super) fn child(&self, parent: u64, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    fn ino_of(&mut self, rel: &Path) -> u64 {
        if let Some(&ino) = self.paths.get(rel) {
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.paths.insert(rel.to_owned(), ino);
        self.inodes.insert(ino, rel.to_owned());
        ino
    }

    pub(super) fn forget_path(&mut self, rel: &Path) {
        if let Some(ino) = self.paths.remove(rel) {
            self.inodes.remove(&ino);
        }
    }

    pub(super) fn attr(&mut self, rel: &Path) -> Result<FileAttr, Errno> {
        let meta = std::fs::symlink_metadata(self.real(rel))?;
        let ino = self.ino_of(rel);
        let kind = if meta.is_dir() {
            FileType::Directory
        } else if meta.is_file() {
            FileType::RegularFile
        } else if meta.file_type().is_symlink() {
            FileType::Symlink
        } else {
            return Err(Errno::EIO);
        };
        let size = self.dirty.get(&ino).map_or(meta.len(), |d| d.size);
        let time = |secs: i64, nanos: i64| {
            let secs = u64::try_from(secs).unwrap_or(0);
            let nanos = u32::try_from(nanos).unwrap_or(0);
            UNIX_EPOCH + Duration::new(secs, nanos)
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time(meta.atime(), meta.atime_nsec()),
            mtime: time(meta.mtime(), meta.mtime_nsec()),
            ctime: time(meta.ctime(), meta.ctime_nsec()),
            crtime: SystemTime::UNIX_EPOCH,
            kind,
            perm: (meta.mode() & 0o7777) as u16,
            nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: 0,
            blksize: PAGE as u32,
            flags: 0,
        })
    }

    /// A backing file for `ino`: the handle's, or the path opened anew.
    pub(super) fn with_file<T>(
        &self,
        ino: u64,
        fh: Option<u64>,
        f: impl FnOnce(&File) -> io::Result<T>,
    ) -> Result<T, Errno> {
        if let Some(file) = fh
            .and_then(|fh| self.handles.get(&fh))
            .filter(|h| h.ino == ino)
            .and_then(|h| h.file.as_ref())
        {
            return Ok(f(file)?);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.real(&self.path(ino)?))?;
        Ok(f(&file)?)
    }

    pub(super) fn open_handle(&mut self, ino: u64, file: Option<File>) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino, file });
        fh
    }

    /// After `from` was renamed to `to` in the backing directory: what was at `to`
    /// is forgotten, and the renamed entry and everything under it keep their inodes
    /// at their new paths.
    pub(super) fn moved(&mut self, from: &Path, to: &Path) {
        self.forget_path(to);
        let moved: Vec<(PathBuf, u64)> = self
            .paths
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, &ino)| (p.clone(), ino))
            .collect();
        for (old, ino) in moved {
            let new = match old.strip_prefix(from) {
                Ok(rest) if rest.as_os_str().is_empty() => to.to_owned(),
                Ok(rest) => to.join(rest),
                Err(_) => continue,
            };
            self.paths.remove(&old);
            self.paths.insert(new.clone(), ino);
            self.inodes.insert(ino, new);
        }
    }

    /// The entries of the directory `ino`, `.` and `..` first, each with its inode
    /// (numbered here if new) and its type.
    pub(super) fn entries(&mut self, ino: u64) -> Result<Vec<(u64, FileType, OsString)>, Errno> {
        let rel = self.path(ino)?;
        let parent = rel
            .parent()
            .map_or(1, |p| self.paths.get(p).copied().unwrap_or(1));
        let mut entries = vec![
            (ino, FileType::Directory, OsStr::new(".").to_owned()),
            (parent, FileType::Directory, OsStr::new("..").to_owned()),
        ];
        for entry in std::fs::read_dir(self.real(&rel))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let kind = if kind.is_dir() {
                FileType::Directory
            } else if kind.is_symlink() {
                FileType::Symlink
            } else {
                FileType::RegularFile
            };
            let child = rel.join(entry.file_name());
            entries.push((self.ino_of(&child), kind, entry.file_name()));
        }
        Ok(entries)
    }
}

/// The state, also after a panic of a request that held it.
pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The backing file's open options for FUSE open flags: always read-write (pages
/// are read back for read-modify-write), never truncating (done as a size change).
pub(super) fn backing_options(flags: i32) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true).custom_flags(
        flags & !(libc::O_ACCMODE | libc::O_TRUNC | libc::O_CREAT | libc::O_EXCL | libc::O_APPEND),
    );
    options
}

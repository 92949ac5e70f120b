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

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    BackgroundSession, BsdFileFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem,
    FopenFlags, Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// The page size of the cache: a write dirties the 4 KiB pages it touches.
pub const PAGE: u64 = 4096;

/// Attributes and entries are never cached by the kernel: sizes change with every
/// write and are the file system's to say.
const TTL: Duration = Duration::ZERO;

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

/// A file's unsynced state: its dirty pages (by page number) and its size as the
/// programs see it.
#[derive(Debug, Default)]
struct Dirty {
    pages: BTreeMap<u64, Box<[u8]>>,
    size: u64,
}

/// An open file or directory.
#[derive(Debug)]
struct Handle {
    ino: u64,
    /// The backing file, opened read-write (`None` for a directory).
    file: Option<File>,
}

/// Everything the file system knows, behind one lock.
#[derive(Debug)]
struct State {
    backing: PathBuf,
    /// After a power cut every request fails with `EIO`.
    dead: bool,
    /// Inode numbers by path relative to the backing directory (`""` is the root).
    paths: HashMap<PathBuf, u64>,
    inodes: HashMap<u64, PathBuf>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    dirty: HashMap<u64, Dirty>,
}

impl State {
    fn new(backing: PathBuf) -> Self {
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

    fn path(&self, ino: u64) -> Result<PathBuf, Errno> {
        self.inodes.get(&ino).cloned().ok_or(Errno::ENOENT)
    }

    fn real(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<PathBuf, Errno> {
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

    fn forget_path(&mut self, rel: &Path) {
        if let Some(ino) = self.paths.remove(rel) {
            self.inodes.remove(&ino);
        }
    }

    fn attr(&mut self, rel: &Path) -> Result<FileAttr, Errno> {
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
    fn with_file<T>(
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

    fn read(&self, ino: u64, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let (logical, dirty) = match self.dirty.get(&ino) {
            Some(d) => (d.size, Some(d)),
            None => (self.with_file(ino, Some(fh), |f| f.metadata())?.len(), None),
        };
        let end = logical.min(offset.saturating_add(u64::from(size)));
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (end - offset) as usize];
        self.with_file(ino, Some(fh), |f| read_at_most(f, &mut buf, offset))?;
        if let Some(dirty) = dirty {
            for (&page, data) in dirty.pages.range(offset / PAGE..=(end - 1) / PAGE) {
                let start = page * PAGE;
                let from = start.max(offset);
                let to = (start + PAGE).min(end);
                buf[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&data[(from - start) as usize..(to - start) as usize]);
            }
        }
        Ok(buf)
    }

    fn write(&mut self, ino: u64, fh: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        if !self.dirty.contains_key(&ino) {
            let size = self.with_file(ino, Some(fh), |f| f.metadata())?.len();
            self.dirty.insert(
                ino,
                Dirty {
                    pages: BTreeMap::new(),
                    size,
                },
            );
        }
        let end = offset + data.len() as u64;
        let mut at = offset;
        while at < end {
            let page = at / PAGE;
            let start = page * PAGE;
            let to = (start + PAGE).min(end);
            let cached = self
                .dirty
                .get(&ino)
                .is_some_and(|d| d.pages.contains_key(&page));
            if !cached {
                // Read-modify-write: the page starts as the disk holds it.
                let mut fresh = vec![0u8; PAGE as usize].into_boxed_slice();
                self.with_file(ino, Some(fh), |f| read_at_most(f, &mut fresh, start))?;
                if let Some(d) = self.dirty.get_mut(&ino) {
                    d.pages.insert(page, fresh);
                }
            }
            let dirty = self.dirty.get_mut(&ino).ok_or(Errno::EIO)?;
            let buf = dirty.pages.get_mut(&page).ok_or(Errno::EIO)?;
            buf[(at - start) as usize..(to - start) as usize]
                .copy_from_slice(&data[(at - offset) as usize..(to - offset) as usize]);
            at = to;
        }
        let dirty = self.dirty.get_mut(&ino).ok_or(Errno::EIO)?;
        dirty.size = dirty.size.max(end);
        Ok(())
    }

    /// Writes `ino`'s dirty pages and size to the backing file.
    fn sync(&mut self, ino: u64, fh: Option<u64>) -> Result<(), Errno> {
        let Some(dirty) = self.dirty.remove(&ino) else {
            return Ok(());
        };
        let written = self.with_file(ino, fh, |f| {
            for (&page, data) in &dirty.pages {
                let start = page * PAGE;
                if start >= dirty.size {
                    continue;
                }
                let len = (dirty.size - start).min(PAGE) as usize;
                f.write_all_at(&data[..len], start)?;
            }
            f.set_len(dirty.size)
        });
        if written.is_err() {
            // Not synced: the pages stay dirty.
            self.dirty.insert(ino, dirty);
        }
        written
    }

    /// A size change (`truncate`): applied to the backing file at once (metadata is
    /// write-through), and to the cached pages.
    fn set_size(&mut self, ino: u64, fh: Option<u64>, size: u64) -> Result<(), Errno> {
        self.with_file(ino, fh, |f| f.set_len(size))?;
        if let Some(dirty) = self.dirty.get_mut(&ino) {
            dirty.size = size;
            dirty.pages.retain(|&page, _| page * PAGE < size);
            let tail = size % PAGE;
            if tail != 0
                && let Some(last) = dirty.pages.get_mut(&(size / PAGE))
            {
                last[tail as usize..].fill(0);
            }
        }
        Ok(())
    }

    fn open_handle(&mut self, ino: u64, file: Option<File>) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino, file });
        fh
    }
}

/// Reads into `buf` from `offset` until `buf` is full or the file ends (the rest of
/// `buf` is left as it was: zeros).
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The FUSE side: each request takes the state's lock.
struct Fs {
    state: Arc<Mutex<State>>,
}

impl Fs {
    /// The state, or `EIO` after a power cut.
    fn live(&self) -> Result<MutexGuard<'_, State>, Errno> {
        let state = lock(&self.state);
        if state.dead {
            Err(Errno::EIO)
        } else {
            Ok(state)
        }
    }

    fn entry(&self, rel: Result<PathBuf, Errno>, reply: ReplyEntry) {
        let attr = rel.and_then(|rel| self.live()?.attr(&rel));
        match attr {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn empty(reply: ReplyEmpty, done: Result<(), Errno>) {
    match done {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

/// The backing file's open options for FUSE open flags: always read-write (pages
/// are read back for read-modify-write), never truncating (done as a size change).
fn backing_options(flags: i32) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true).custom_flags(
        flags & !(libc::O_ACCMODE | libc::O_TRUNC | libc::O_CREAT | libc::O_EXCL | libc::O_APPEND),
    );
    options
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let rel = self.live().and_then(|s| s.child(parent.0, name));
        self.entry(rel, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let attr = self.live().and_then(|mut s| {
            let rel = s.path(ino.0)?;
            s.attr(&rel)
        });
        match attr {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let attr = self.live().and_then(|mut s| {
            let rel = s.path(ino.0)?;
            if let Some(mode) = mode {
                std::fs::set_permissions(
                    s.real(&rel),
                    std::fs::Permissions::from_mode(mode & 0o7777),
                )?;
            }
            if let Some(size) = size {
                s.set_size(ino.0, fh.map(|h| h.0), size)?;
            }
            s.attr(&rel)
        });
        match attr {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let rel = self.live().and_then(|s| {
            let rel = s.child(parent.0, name)?;
            std::fs::DirBuilder::new()
                .mode(mode & !umask & 0o7777)
                .create(s.real(&rel))?;
            Ok(rel)
        });
        self.entry(rel, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let done = self.live().and_then(|mut s| {
            let rel = s.child(parent.0, name)?;
            std::fs::remove_file(s.real(&rel))?;
            // Open handles keep the (unlinked) inode and its dirty pages.
            s.forget_path(&rel);
            Ok(())
        });
        empty(reply, done);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let done = self.live().and_then(|mut s| {
            let rel = s.child(parent.0, name)?;
            std::fs::remove_dir(s.real(&rel))?;
            s.forget_path(&rel);
            Ok(())
        });
        empty(reply, done);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let done = self.live().and_then(|mut s| {
            let from = s.child(parent.0, name)?;
            let to = s.child(newparent.0, newname)?;
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                if std::fs::symlink_metadata(s.real(&to)).is_ok() {
                    return Err(Errno::EEXIST);
                }
            } else if !flags.is_empty() {
                return Err(Errno::EINVAL);
            }
            std::fs::rename(s.real(&from), s.real(&to))?;
            s.forget_path(&to);
            // Move the renamed entry and everything under it.
            let moved: Vec<(PathBuf, u64)> = s
                .paths
                .iter()
                .filter(|(p, _)| p.starts_with(&from))
                .map(|(p, &ino)| (p.clone(), ino))
                .collect();
            for (old, ino) in moved {
                let new = match old.strip_prefix(&from) {
                    Ok(rest) if rest.as_os_str().is_empty() => to.clone(),
                    Ok(rest) => to.join(rest),
                    Err(_) => continue,
                };
                s.paths.remove(&old);
                s.paths.insert(new.clone(), ino);
                s.inodes.insert(ino, new);
            }
            Ok(())
        });
        empty(reply, done);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let fh = self.live().and_then(|mut s| {
            let rel = s.path(ino.0)?;
            let file = backing_options(flags.0).open(s.real(&rel))?;
            let fh = s.open_handle(ino.0, Some(file));
            if flags.0 & libc::O_TRUNC != 0 {
                s.set_size(ino.0, Some(fh), 0)?;
            }
            Ok(fh)
        });
        match fh {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let created = self.live().and_then(|mut s| {
            let rel = s.child(parent.0, name)?;
            let mut options = backing_options(flags);
            options.mode(mode & !umask & 0o7777);
            if flags & libc::O_EXCL != 0 {
                options.create_new(true);
            } else {
                options.create(true);
            }
            let file = options.open(s.real(&rel))?;
            let attr = s.attr(&rel)?;
            let fh = s.open_handle(attr.ino.0, Some(file));
            if flags & libc::O_TRUNC != 0 {
                s.set_size(attr.ino.0, Some(fh), 0)?;
            }
            Ok((attr, fh))
        });
        match created {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.live().and_then(|s| s.read(ino.0, fh.0, offset, size)) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self
            .live()
            .and_then(|mut s| s.write(ino.0, fh.0, offset, data))
        {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) is not a sync: the pages stay dirty.
        empty(reply, self.live().map(drop));
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        // After a cut too: the handle is gone either way.
        lock(&self.state).handles.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(
            reply,
            self.live().and_then(|mut s| s.sync(ino.0, Some(fh.0))),
        );
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let fh = self.live().and_then(|mut s| {
            s.path(ino.0)?;
            Ok(s.open_handle(ino.0, None))
        });
        match fh {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = self.live().and_then(|mut s| {
            let rel = s.path(ino.0)?;
            let parent = rel
                .parent()
                .map_or(1, |p| s.paths.get(p).copied().unwrap_or(1));
            let mut entries = vec![
                (ino.0, FileType::Directory, OsStr::new(".").to_owned()),
                (parent, FileType::Directory, OsStr::new("..").to_owned()),
            ];
            for entry in std::fs::read_dir(s.real(&rel))? {
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
                entries.push((s.ino_of(&child), kind, entry.file_name()));
            }
            Ok(entries)
        });
        match entries {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.state).handles.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Metadata is write-through: nothing to flush (see the module docs).
        empty(reply, self.live().map(drop));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // A roomy disk of 4 KiB blocks: the tests never fill this one.
        let blocks = 1 << 24;
        reply.statfs(
            blocks,
            blocks,
            blocks,
            1 << 20,
            1 << 20,
            PAGE as u32,
            255,
            PAGE as u32,
        );
    }
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

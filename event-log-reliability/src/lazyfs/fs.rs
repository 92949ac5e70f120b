//! The FUSE side: each request takes the state's lock (and fails with `EIO` after
//! a power cut) and is answered from the state.

use std::ffi::OsStr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    BsdFileFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::state::{PAGE, State, backing_options, lock};

/// Attributes and entries are never cached by the kernel: sizes change with every
/// write and are the file system's to say.
const TTL: Duration = Duration::ZERO;

/// The FUSE side: each request takes the state's lock.
pub(super) struct Fs {
    pub(super) state: Arc<Mutex<State>>,
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

fn empty(reply: ReplyEmpty, done: Result<(), Errno>) {
    match done {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
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
            s.moved(&from, &to);
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
        let entries = self.live().and_then(|mut s| s.entries(ino.0));
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

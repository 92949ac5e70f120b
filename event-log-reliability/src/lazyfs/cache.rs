//! The page cache over the backing files: reads see the dirty pages over the
//! backing file, writes dirty whole pages (read-modify-write), a sync writes a
//! file's dirty pages and size to its backing file, and a size change applies at
//! once.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use fuser::Errno;

use super::state::{Dirty, PAGE, State};

impl State {
    pub(super) fn read(&self, ino: u64, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
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

    pub(super) fn write(
        &mut self,
        ino: u64,
        fh: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Errno> {
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
    pub(super) fn sync(&mut self, ino: u64, fh: Option<u64>) -> Result<(), Errno> {
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
    pub(super) fn set_size(&mut self, ino: u64, fh: Option<u64>, size: u64) -> Result<(), Errno> {
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

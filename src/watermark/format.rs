//! The mark file's format (see the [module docs](super)): three lines, the header,
//! the mark in hex and its CRC-32, written crash-safely.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::keys::{create_temp, sync_dir};

const HEADER: &str = "event-log watermark v1";

/// The file's text for `mark`.
pub(super) fn encode(mark: &[u8]) -> String {
    format!("{HEADER}\n{}\n{:08x}\n", hex::encode(mark), crc32(mark))
}

/// The mark in a file's bytes, or what is wrong with them.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not text".to_owned())?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("the first line is not `{HEADER}`"));
    }
    let mark = lines.next().ok_or("no mark line")?;
    let crc = lines.next().ok_or("no checksum line (truncated?)")?;
    if lines.next().is_some() || !text.ends_with('\n') {
        return Err("unexpected content after the checksum (or truncated)".into());
    }
    let mark = hex::decode(mark).map_err(|_| "the mark line is not hex".to_owned())?;
    let crc = (crc.len() == 8)
        .then(|| u32::from_str_radix(crc, 16).ok())
        .flatten()
        .ok_or("the checksum line is not 8 hex digits")?;
    if crc32(&mark) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(mark)
}

/// Writes `mark` to `path` crash-safely: temporary file, sync, rename, sync of the
/// directory.
pub(super) fn write_mark(path: &Path, mark: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let (temp, file) = create_temp(path)?;
    let written = write_synced(file, encode(mark).as_bytes()).and_then(|()| {
        std::fs::rename(&temp, path)?;
        sync_dir(dir)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

fn write_synced(mut file: File, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// CRC-32 (IEEE 802.3, as in zip and PNG).
pub(super) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

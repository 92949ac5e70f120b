//! The migration from format version 1 to 2, run by a writable open inside the
//! open's write transaction: every record is rewritten with its index columns
//! (lamport, story, idempotency key) and indexed in `ops_by_causal`,
//! `ops_by_story` and `ops_by_key`.
//!
//! The store never parses op bytes: the columns come from
//! [`IndexColumns::of_bytes`], the core's reading of the canonical bytes a row holds.
//! Bytes that are not an op get lamport 0 and no story or key (the log reports such
//! a row as damaged when it reads it). A record that does not decode as a version-1
//! record at all is left as it is and indexed nowhere new: reads meet it as
//! `Corrupt` naming its position, as they did before the migration.
//!
//! One transaction, not resumable batches: redb commits it whole or not at all, so a
//! crash or an error mid-way leaves the file at version 1 to be migrated again, and
//! no build ever reads a file whose records are of two versions. Records are read
//! and rewritten [`CHUNK`] at a time, so the process holds one chunk of records, not
//! the table; the file needs room for the rewritten pages until the commit (redb
//! writes copies, never in place).

use event_log_core::{IndexColumns, OpRecord, StoreError};
use redb::{ReadableTable, WriteTransaction};
use std::path::Path;
use tracing::warn;

use crate::error;
use crate::record;
use crate::tables::{BY_CAUSAL, BY_KEY, BY_STORY, OPS};

/// Records read and rewritten per step of the migration.
const CHUNK: usize = 1024;

/// What a migration did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// Records rewritten.
    pub(crate) rows: u64,
    /// Of those, records whose bytes are not an op (lamport 0, no story or key).
    pub(crate) undecodable_ops: u64,
    /// Records left as they were: not a version-1 record.
    pub(crate) damaged_records: u64,
}

/// Migrates the records of a version-1 file in `txn` (which the caller commits,
/// with the new format version).
pub(crate) fn from_v1(txn: &WriteTransaction, path: &Path) -> Result<Report, StoreError> {
    let ctx = format!("migrating {} to format version 2", path.display());
    let fail = |e: redb::StorageError| error::storage(&ctx, e);
    let mut ops = txn.open_table(OPS).map_err(|e| error::storage(&ctx, e))?;
    let mut by_causal = txn
        .open_table(BY_CAUSAL)
        .map_err(|e| error::storage(&ctx, e))?;
    let mut by_story = txn
        .open_table(BY_STORY)
        .map_err(|e| error::storage(&ctx, e))?;
    let mut by_key = txn
        .open_table(BY_KEY)
        .map_err(|e| error::storage(&ctx, e))?;
    let mut report = Report::default();
    let mut from = 0u64;
    loop {
        let chunk: Vec<(u64, Vec<u8>)> = ops
            .range(from..)
            .map_err(fail)?
            .take(CHUNK)
            .map(|entry| entry.map(|(k, v)| (k.value(), v.value().to_vec())))
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        let Some(&(last, _)) = chunk.last() else {
            break;
        };
        for (position, raw) in chunk {
            let old = match record::decode_v1(position, &raw) {
                Ok(old) => old,
                Err(e) => {
                    warn!(error = %e, "a damaged record is left as it is by the migration");
                    report.damaged_records += 1;
                    continue;
                }
            };
            let columns = IndexColumns::of_bytes(&old.bytes).unwrap_or_else(|| {
                report.undecodable_ops += 1;
                IndexColumns {
                    lamport: 0,
                    story: None,
                    key: None,
                }
            });
            let rec = OpRecord {
                id: old.id,
                author: old.author,
                seq: old.seq,
                payload: old.payload,
                bytes: old.bytes,
                evidence: old.evidence,
                lamport: columns.lamport,
                story: columns.story,
                key: columns.key,
            };
            // A version-1 record was already below redb's value limit; the columns
            // come from its own bytes, so this fails only for a record just under it.
            let encoded = record::encode(&rec)?;
            ops.insert(position, encoded.as_slice()).map_err(fail)?;
            by_causal
                .insert((rec.lamport, rec.id.0), position)
                .map_err(fail)?;
            if let Some(story) = rec.story.as_deref() {
                by_story
                    .insert((story, rec.lamport, rec.id.0), position)
                    .map_err(fail)?;
            }
            if let Some(key) = rec.key.as_deref() {
                by_key
                    .insert((rec.author.0, key, rec.seq, rec.id.0), position)
                    .map_err(fail)?;
            }
            report.rows += 1;
        }
        match last.checked_add(1) {
            Some(next) => from = next,
            None => break,
        }
    }
    Ok(report)
}

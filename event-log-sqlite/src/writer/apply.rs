//! What one append request writes, inside its savepoint: the ordered-append guard
//! (`check_after`) and the new ops, checked with the conflict rule
//! ([`rules::plan_append`]) before any is inserted, their seqs and Lamport
//! timestamps in SQLite's signed 64-bit integers.

use bft_json_crdt::OpId;
use event_log_core::backend::rules;
use event_log_core::{OpRecord, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use tracing::debug;

use crate::error;
use crate::row;

/// An ordered append's guard: `after`, if given, must be stored (by an earlier
/// transaction or an earlier request of this one).
pub(super) fn check_after(conn: &Connection, after: Option<OpId>) -> Result<(), StoreError> {
    let Some(after) = after else {
        return Ok(());
    };
    let found = conn
        .prepare_cached("SELECT 1 FROM ops WHERE id = ?1")
        .and_then(|mut q| {
            q.query_row(params![after.as_bytes().as_slice()], |_| Ok(()))
                .optional()
        })
        .map_err(error::at("look up the op an ordered append continues"))?;
    match found {
        Some(()) => Ok(()),
        None => Err(StoreError::MissingPredecessor { after }),
    }
}

/// Writes the new ops of one request, after checking all of them with the conflict
/// rule ([`rules::plan_append`]): a conflict is found before anything is written.
/// Returns the number of ops written.
pub(super) fn apply(conn: &Connection, ops: &[OpRecord]) -> Result<usize, StoreError> {
    let mut stored = conn
        .prepare_cached("SELECT 1 FROM ops WHERE id = ?1")
        .map_err(error::at("prepare the id lookup"))?;
    let mut primary = conn
        .prepare_cached(
            "SELECT position, id FROM ops WHERE author = ?1 AND seq = ?2 AND evidence = 0",
        )
        .map_err(error::at("prepare the primary lookup"))?;
    // Every seq and lamport must fit SQLite's integer, evidence ops' too, before
    // the rule runs.
    for r in ops {
        sql_seq(r.seq, || format!("op {}", r.id))?;
        sql_lamport(r)?;
    }
    let new_ops = rules::plan_append(
        ops,
        |id| {
            stored
                .exists([id.as_bytes()])
                .map_err(error::at("look an op up by id"))
        },
        |author, seq| {
            primary
                .query_row(
                    params![
                        author.as_bytes(),
                        sql_seq(seq, || format!("an op of sled {author}"))?
                    ],
                    |row| Ok(row::position(row, 0).and_then(|p| row::blob32(row, 1, "id", p))),
                )
                .optional()
                .map_err(error::at("look a primary op up by (author, seq)"))?
                .transpose()
                .map(|id| id.map(OpId))
        },
    )?
    .inspect_err(|e| debug!(error = %e, "conflict"))?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO ops (id, author, seq, evidence, payload, bytes, lamport, story, key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(error::at("prepare the insert"))?;
    for r in &new_ops {
        insert
            .execute(params![
                r.id.as_bytes(),
                r.author.as_bytes(),
                sql_seq(r.seq, || format!("op {}", r.id))?,
                r.evidence,
                r.payload,
                r.bytes,
                sql_lamport(r)?,
                r.story,
                r.key
            ])
            .map_err(error::at("insert an op"))?;
    }
    Ok(new_ops.len())
}

/// `seq` as SQLite keeps it (an `INTEGER`, signed 64-bit); `whose` names the op.
fn sql_seq(seq: u64, whose: impl FnOnce() -> String) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Invalid {
        message: format!("{} has seq {seq}, above what SQLite can store", whose()),
    })
}

/// The record's Lamport timestamp as SQLite keeps it (an `INTEGER`, signed 64-bit).
///
/// Above `i64::MAX` it is refused, as a seq is, rather than mapped: a valid op's
/// timestamp is 1 + the highest of its deps' (the replica checks it), so reaching
/// 2^63 takes 2^63 causally chained ops; refusing keeps the column the plain number
/// (readable with `sqlite3`, ordered as SQLite orders integers).
fn sql_lamport(r: &OpRecord) -> Result<i64, StoreError> {
    i64::try_from(r.lamport).map_err(|_| StoreError::Invalid {
        message: format!(
            "op {} has Lamport timestamp {}, above what SQLite can store",
            r.id, r.lamport
        ),
    })
}

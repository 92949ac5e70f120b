//! Reads in the causal order: one range of `ops_by_causal` (the timeline) or of
//! `ops_by_story` (a story's ops).

use std::ops::Bound;

use bft_json_crdt::OpId;
use event_log_core::{Causal, OpRecord, StoreError};

use super::{Readable, begin, check_columns, record_at};
use crate::error;
use crate::tables::{BY_CAUSAL, BY_STORY, CausalKey, OPS};

/// Ops after `after` in the causal order, at most `limit` (at least 1): one range
/// of `ops_by_causal`.
pub(crate) fn timeline(
    db: &Readable,
    after: &Causal,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let ctx = "reading the timeline";
    let txn = begin(db, ctx)?;
    let ops = txn.open_table(OPS).map_err(|e| error::storage(ctx, e))?;
    let by_causal = txn
        .open_table(BY_CAUSAL)
        .map_err(|e| error::storage(ctx, e))?;
    let range = by_causal
        .range::<CausalKey>((
            Bound::Excluded((after.lamport, after.id.0)),
            Bound::Unbounded,
        ))
        .map_err(|e| error::storage(ctx, e))?;
    let mut out = Vec::new();
    for entry in range.take(limit.max(1)) {
        let (k, v) = entry.map_err(|e| error::storage(ctx, e))?;
        let (lamport, id) = k.value();
        let position = v.value();
        let r = record_at(&ops, position)?;
        check_columns(position, &r, r.lamport == lamport && r.id.0 == id, || {
            format!("ops_by_causal as (lamport {lamport}, op {})", OpId(id))
        })?;
        out.push(r);
    }
    Ok(out)
}

/// Ops of `story` after `after` in the causal order, at most `limit` (at least 1):
/// one range of `ops_by_story`, within the story.
pub(crate) fn story_ops(
    db: &Readable,
    story: &str,
    after: &Causal,
    limit: usize,
) -> Result<Vec<OpRecord>, StoreError> {
    let ctx = format!("reading the ops of story {story:?}");
    let txn = begin(db, &ctx)?;
    let ops = txn.open_table(OPS).map_err(|e| error::storage(&ctx, e))?;
    let by_story = txn
        .open_table(BY_STORY)
        .map_err(|e| error::storage(&ctx, e))?;
    let range = by_story
        // The story borrowed for this call only ([`crate::tables::StoryKey`] is 'static).
        .range::<(&str, u64, [u8; 32])>((
            Bound::Excluded((story, after.lamport, after.id.0)),
            Bound::Included((story, u64::MAX, [0xff; 32])),
        ))
        .map_err(|e| error::storage(&ctx, e))?;
    let mut out = Vec::new();
    for entry in range.take(limit.max(1)) {
        let (k, v) = entry.map_err(|e| error::storage(&ctx, e))?;
        let (_, lamport, id) = k.value();
        let position = v.value();
        let r = record_at(&ops, position)?;
        let holds = r.story.as_deref() == Some(story) && r.lamport == lamport && r.id.0 == id;
        check_columns(position, &r, holds, || {
            format!(
                "ops_by_story as (story {story:?}, lamport {lamport}, op {})",
                OpId(id)
            )
        })?;
        out.push(r);
    }
    Ok(out)
}

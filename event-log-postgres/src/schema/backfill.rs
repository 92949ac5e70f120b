//! Migration 4's backfill: the index columns of the rows stored before they
//! existed, filled in from each row's signed bytes.

use std::time::Duration;

use deadpool_postgres::Transaction;
use event_log_core::{IndexColumns, StoreError};

use super::tables::Tables;
use crate::codec::col;
use crate::conn::bounded;
use crate::error::from_pg;

/// Rows read and updated per statement of the backfill.
const BACKFILL_BATCH: i64 = 1000;

/// Fills in `lamport`, `story` and `key` of every stored row from its signed bytes,
/// [`BACKFILL_BATCH`] rows at a time in position order, inside the migration's
/// transaction (so a migration cut short leaves the schema at the previous version,
/// with nothing half-filled). The core decodes the bytes
/// ([`IndexColumns::of_bytes`]): the store still never parses an op itself. A row
/// whose bytes are no op keeps lamport 0 and no story or key; the log reports such a
/// row as damaged when it reads it. Each statement is bounded by `bound`. Returns
/// (rows filled in, rows left so).
pub(super) async fn backfill(
    tx: &Transaction<'_>,
    t: &Tables,
    target: &str,
    bound: Duration,
) -> Result<(u64, u64), StoreError> {
    let pg = |what: &'static str| move |e| from_pg(what, target, e);
    let select = format!(
        "SELECT position, bytes FROM {} WHERE position > $1 ORDER BY position LIMIT $2",
        t.ops
    );
    let update = format!(
        "UPDATE {} AS o SET lamport = u.lamport, story = u.story, key = u.key
         FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])
             AS u(position, lamport, story, key)
         WHERE o.position = u.position",
        t.ops
    );
    let what = "backfilling the index columns";
    let (select, update) = bounded(what, target, bound, async {
        Ok((
            tx.prepare(&select).await.map_err(pg(what))?,
            tx.prepare(&update).await.map_err(pg(what))?,
        ))
    })
    .await?;
    let (mut filled, mut undecodable) = (0u64, 0u64);
    let mut after = 0i64;
    loop {
        let rows = bounded(what, target, bound, async {
            tx.query(&select, &[&after, &BACKFILL_BATCH])
                .await
                .map_err(pg(what))
        })
        .await?;
        let Some(last) = rows.last() else { break };
        after = col(last, 0, "backfill position")?;
        let mut positions: Vec<i64> = Vec::with_capacity(rows.len());
        let mut lamports: Vec<i64> = Vec::with_capacity(rows.len());
        let mut stories: Vec<Option<Vec<u8>>> = Vec::with_capacity(rows.len());
        let mut keys: Vec<Option<Vec<u8>>> = Vec::with_capacity(rows.len());
        for row in &rows {
            let position: i64 = col(row, 0, "backfill position")?;
            let bytes: Vec<u8> = col(row, 1, &format!("position {position}: bytes"))?;
            // A timestamp above i64::MAX is no valid op's (see `codec`): left as an
            // undecodable row, which the log then reports.
            let Some((cols, lamport)) = IndexColumns::of_bytes(&bytes)
                .and_then(|c| i64::try_from(c.lamport).ok().map(|l| (c, l)))
            else {
                undecodable += 1;
                continue;
            };
            positions.push(position);
            lamports.push(lamport);
            stories.push(cols.story.map(String::into_bytes));
            keys.push(cols.key.map(String::into_bytes));
        }
        if !positions.is_empty() {
            bounded(what, target, bound, async {
                tx.execute(&update, &[&positions, &lamports, &stories, &keys])
                    .await
                    .map_err(pg(what))
            })
            .await?;
        }
        filled += positions.len() as u64;
    }
    Ok((filled, undecodable))
}

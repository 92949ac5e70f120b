//! A row damaged behind the store's back is reported, never a panic and never a
//! silently different record.

use event_log_core::{OpStore, Position, StoreError, VersionVector};
use tokio::runtime::Runtime;

use super::once;
use crate::failure::{Check, Context, Failure};
use crate::fixture::{chain, key, load_all, records};
use crate::harness::{Damage, StoreHarness, fresh_store};
use crate::{ensure, ensure_eq};

/// For every way the backend's [`StoreHarness::damage_row`] knows, the second of
/// three rows damaged: `load` over it fails with `Corrupt` naming its position (and
/// what the damage names), the rows before and after it still load, `count` is
/// unchanged, and (where the damage reaches them) `get` of it and `since` fail with
/// `Corrupt` too.
pub fn damaged_row_is_corrupt<H: StoreHarness>(h: &H, rt: &Runtime) -> Result<(), Failure> {
    once("damaged_row_is_corrupt", rt.block_on(all_variants(h)))
}

async fn all_variants<H: StoreHarness>(h: &H) -> Check {
    let mut variant = 0;
    while one_variant(h, variant).await? {
        variant += 1;
    }
    if variant == 0 {
        // Nothing was checked: say so, so a green run is not mistaken for coverage.
        eprintln!(
            "damaged_row_is_corrupt: skipped, the harness has no damage_row hook \
             (StoreHarness::damage_row or FnHarness::with_damage)"
        );
    }
    Ok(())
}

/// Fails unless `result` is `Corrupt` whose location names `position` (if given)
/// and whose text holds `names`.
fn corrupt<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    position: Option<Position>,
    names: &str,
    what: &str,
) -> Check {
    match result {
        Err(e @ StoreError::Corrupt { .. }) => {
            let StoreError::Corrupt { location, .. } = &e else {
                unreachable!()
            };
            if let Some(p) = position {
                ensure!(
                    location.contains(&p.0.to_string()),
                    "{what}: the location {location:?} names position {p}"
                );
            }
            let text = e.to_string();
            ensure!(text.contains(names), "{what}: {text:?} names {names:?}");
            Ok(())
        }
        other => Err(format!("{what}: expected Corrupt, found {other:?}")),
    }
}

/// One damaged store; `false` when the backend has no way `variant`.
async fn one_variant<H: StoreHarness>(h: &H, variant: usize) -> Result<bool, String> {
    let (_guard, loc, store) = fresh_store(h).await?;
    let ops = records(&chain(&key(1), 3, &[]));
    store.append(&ops).await.ctx("append")?;
    let rows = load_all(&store, 10).await.ctx("load")?;
    store.close().await.ctx("close")?;
    drop(store);
    let at = rows[1].0;
    let Some(Damage {
        names,
        every_reader,
    }) = h.damage_row(&loc, at, variant).await.ctx("damage a row")?
    else {
        return Ok(false);
    };
    let what = |reader: &str| format!("damage {variant} ({names:?}), {reader}");
    let store = h.open(&loc).await.ctx("reopen")?;
    corrupt(
        store.load(Position::START, 10).await,
        Some(at),
        names,
        &what("load"),
    )?;
    let first = store.load(Position::START, 1).await.ctx("load before")?;
    ensure_eq!(
        first,
        rows[..1].to_vec(),
        "{}: the row before",
        what("load")
    );
    let after = store.load(at, 10).await.ctx("load after")?;
    ensure_eq!(after, rows[2..].to_vec(), "{}: the row after", what("load"));
    ensure_eq!(store.count().await.ctx("count")?, 3, "{}", what("count"));
    if every_reader {
        corrupt(store.get(&ops[1].id).await, None, "", &what("get"))?;
        let since = store.since(&VersionVector::new(), 10).await;
        corrupt(since, None, "", &what("since"))?;
    }
    Ok(true)
}

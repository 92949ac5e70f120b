//! A full check of a store: every row, every signature and link, and the store
//! against every signed frontier it holds.

use bft_json_crdt::{AuthorId, Equivocation, VersionVector};

use super::EventLogConfig;
use super::follow::pull;
use super::scan::{Scan, ScanSink};
use crate::checkpoint::{self, Checkpoint};
use crate::damage::{DamagedRow, MissingOps};
use crate::error::Result;
use crate::store::{OpStore, Position};

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows read.
    pub rows: u64,
    /// Ops that passed every check and are held.
    pub valid: u64,
    /// Damaged rows (all counted).
    pub damaged: u64,
    /// The first damaged rows, with position, op id and reason.
    pub damage: Vec<DamagedRow>,
    /// Sleds whose acknowledged ops the store does not hold: a checkpoint some sled
    /// signed records more of them than the store holds intact.
    pub missing: Vec<MissingOps>,
    /// Sleds that signed two ops at one seq.
    pub equivocations: Vec<Equivocation>,
}

impl VerifyReport {
    /// True if nothing is damaged or missing.
    pub fn is_clean(&self) -> bool {
        self.damaged == 0 && self.missing.is_empty()
    }
}

/// Checks every row of `store` (ids, columns against the signed bytes, signatures,
/// causal links, payloads), then the store against every signed checkpoint in it
/// (of every sled it holds ops of, and of `also`): a sled's frontier that the store
/// no longer reaches is reported as missing acknowledged ops (a truncated tail).
///
/// Reads only; `progress(rows)` is called after each page.
pub async fn verify<S: OpStore>(
    store: &S,
    config: &EventLogConfig,
    also: &[AuthorId],
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport> {
    let mut scan = Scan::new(config);
    let page_size = config.replay_page.max(1);
    let mut after = Position::START;
    let mut rows = 0u64;
    loop {
        let page = store.load(after, page_size).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        rows += page.len() as u64;
        scan.verify(&page, config);
        progress(rows);
    }
    pull(store, &mut ScanSink(&mut scan, config), page_size).await?;
    scan.finish();
    let held = scan.state.replica.version_vector();
    let mut authors: Vec<AuthorId> = store.heads().await?.iter().map(|(a, _)| *a).collect();
    authors.extend(also.iter().copied());
    if let Some(m) = &config.members {
        authors.extend(m.iter().copied());
    }
    authors.sort();
    authors.dedup();
    let mut claims = VersionVector::new();
    for a in &authors {
        if let Some(c) = store
            .get_meta(&checkpoint::key(a))
            .await?
            .and_then(|b| Checkpoint::open(&b, a))
        {
            for (sled, seq) in c.frontier.iter() {
                claims.raise(*sled, *seq);
            }
        }
    }
    let missing = claims
        .iter()
        .filter(|(a, s)| **s > held.get(a))
        .map(|(a, s)| MissingOps {
            sled: *a,
            held: held.get(a),
            acknowledged: *s,
        })
        .collect();
    Ok(VerifyReport {
        rows,
        valid: scan.state.replica.len() as u64,
        damaged: scan.damage.count(),
        damage: scan.damage.rows().to_vec(),
        missing,
        equivocations: scan.state.replica.equivocations(),
    })
}

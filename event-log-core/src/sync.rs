//! Sync between two logs held by one process (a sled's local store and a shared one,
//! or two replicas in a test): version vectors first, then heads.

use crate::error::Result;
use crate::log::{EventLog, MergeReport};
use crate::store::OpStore;

/// What one direction of a sync did.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    /// Ops sent from `a` to `b` and what `b` did with them.
    pub a_to_b: MergeReport,
    /// Ops sent from `b` to `a` and what `a` did with them.
    pub b_to_a: MergeReport,
}

/// Brings `to` up to date with `from`.
///
/// First sends the ops `to`'s version vector lacks; then, for every head of `from`
/// that `to` still does not hold (an equivocating sled can give both sides equal
/// vectors over different ops), walks back from it and sends the unknown ancestry.
/// Safe to interrupt and run again: merging is idempotent.
pub async fn push<A: OpStore, B: OpStore>(
    from: &EventLog<A>,
    to: &EventLog<B>,
) -> Result<MergeReport> {
    push_chunked(from, to, 1000, |_, _| {}).await
}

/// [`push`] in chunks of `chunk` ops, in causal order: each chunk is verified and
/// made durable in `to` before the next is sent, so an interrupted push resumes where
/// it stopped. `progress(sent, total)` is called after each chunk.
pub async fn push_chunked<A: OpStore, B: OpStore>(
    from: &EventLog<A>,
    to: &EventLog<B>,
    chunk: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<MergeReport> {
    let missing = from.export_since(&to.version_vector()).await?;
    let total = missing.len();
    let mut report = MergeReport::default();
    let mut sent = 0;
    for part in missing.chunks(chunk.max(1)) {
        let r = to.merge(part.to_vec()).await?;
        report.deliveries.extend(r.deliveries);
        sent += part.len();
        progress(sent, total);
    }
    let unknown: Vec<_> = from
        .heads()
        .into_iter()
        .filter(|h| !to.contains(h))
        .collect();
    if !unknown.is_empty() {
        let ops = from
            .ancestry_unknown(&unknown, |id| to.contains(id))
            .await?;
        let more = to.merge(ops).await?;
        report.deliveries.extend(more.deliveries);
    }
    Ok(report)
}

/// Syncs two logs both ways; afterwards both hold the same ops and show the same view.
pub async fn sync<A: OpStore, B: OpStore>(a: &EventLog<A>, b: &EventLog<B>) -> Result<SyncReport> {
    let a_to_b = push(a, b).await?;
    let b_to_a = push(b, a).await?;
    Ok(SyncReport { a_to_b, b_to_a })
}

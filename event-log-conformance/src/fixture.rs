//! Building signed ops and entries for scenarios.

use crate::read::ReadAll;
use bft_json_crdt::{Op, OpId};
use chrono::{TimeZone, Utc};
use event_log_core::{
    Entry, EventLog, Gap, OpRecord, OpStore, RunId, SignedOp, SigningKey, Transition,
};

/// A deterministic key for sled number `n`.
pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n.wrapping_add(1); 32])
}

/// A transition entry numbered `i`, with a fixed microsecond timestamp.
pub fn transition(i: u64) -> Transition {
    let at = Utc
        .timestamp_opt(1_790_000_000 + i as i64, (i as u32 % 1000) * 1000 + 7_000)
        .single()
        .unwrap_or_default();
    Transition::new(
        format!("story-{}", i % 5),
        "backlog",
        "coding",
        format!("Event{i}"),
        at,
    )
}

/// An entry: a transition, or a gap when `gap` is set.
pub fn entry(i: u64, gap: bool) -> Entry {
    if gap {
        Entry::Gap(Gap::new(RunId(7), i * 10, i * 10 + 2))
    } else {
        Entry::Transition(transition(i))
    }
}

/// A chain of `n` ops by one key, seqs `1..=n`, each depending on the previous one
/// (and the first on `extra_deps`). Payloads are valid entries.
pub fn chain(key: &SigningKey, n: u64, extra_deps: &[&SignedOp]) -> Vec<SignedOp> {
    let mut out: Vec<SignedOp> = Vec::new();
    for seq in 1..=n {
        let mut deps: Vec<OpId> = Vec::new();
        let mut lamport = 0;
        if let Some(prev) = out.last() {
            deps.push(prev.id());
            lamport = prev.lamport();
        } else {
            for d in extra_deps {
                deps.push(d.id());
                lamport = lamport.max(d.lamport());
            }
        }
        let op = Op {
            author: Default::default(),
            seq,
            lamport: lamport + 1,
            deps,
            payload: entry(seq, seq % 4 == 0).to_payload(),
        }
        .sign(key);
        out.push(op);
    }
    out
}

/// An op by `key` at `seq` with the given prev (a second branch = equivocation).
pub fn op_at(key: &SigningKey, seq: u64, prev: Option<&SignedOp>, salt: u64) -> SignedOp {
    Op {
        author: Default::default(),
        seq,
        lamport: prev.map_or(0, |p| p.lamport()) + 1,
        deps: prev.map(|p| vec![p.id()]).unwrap_or_default(),
        payload: entry(1000 + salt, false).to_payload(),
    }
    .sign(key)
}

/// A first op (no deps) by `key` at `seq` with any payload bytes, valid entry or
/// not.
pub fn op_with(key: &SigningKey, seq: u64, payload: &[u8]) -> SignedOp {
    Op {
        author: Default::default(),
        seq,
        lamport: 1,
        deps: Vec::new(),
        payload: payload.to_vec(),
    }
    .sign(key)
}

/// Records for ops (none evidence).
pub fn records(ops: &[SignedOp]) -> Vec<OpRecord> {
    ops.iter().map(|o| OpRecord::new(o, false)).collect()
}

/// Every op of a store, in load order, paging by `page`.
pub async fn load_all<S: OpStore>(
    store: &S,
    page: usize,
) -> Result<Vec<(event_log_core::Position, OpRecord)>, event_log_core::StoreError> {
    let mut out = Vec::new();
    let mut after = event_log_core::Position::START;
    loop {
        let batch = store.load(after, page).await?;
        let Some((last, _)) = batch.last() else { break };
        after = *last;
        out.extend(batch);
    }
    Ok(out)
}

/// The (sled, event_id, entry) triples of a log, for comparing logs and models.
pub async fn summary<S: OpStore>(
    log: &EventLog<S>,
) -> event_log_core::Result<Vec<(String, u64, Entry)>> {
    Ok(log
        .all_events()
        .await?
        .into_iter()
        .map(|e| (e.sled_id.to_hex(), e.event_id, e.entry))
        .collect())
}

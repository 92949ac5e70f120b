//! The raw measurements `evlog bench` builds its figures from: signing a chain,
//! a producer task, one fdatasync, resident memory.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_log::bft::{KeyPair, Op, OpId, SignedOp, WrongKey};
use event_log::{Entry, EventLog, OpStore, Transition};

/// The payload of the `i`th benchmark op: a transition, as the log writes it.
fn payload(i: u64) -> Vec<u8> {
    Entry::Transition(Transition::now(
        format!("story-{}", i % 1000),
        "backlog",
        "coding",
        "DepsMet",
    ))
    .to_payload()
}

/// A chain of `n` ops by `key` after `prev`, signed one by one as the log signs.
pub(super) fn sign_chain(
    key: &KeyPair,
    start_seq: u64,
    n: u64,
    mut prev: Option<(OpId, u64)>,
) -> Result<Vec<SignedOp>, WrongKey> {
    let mut out = Vec::with_capacity(n as usize);
    for k in 0..n {
        let op = Op {
            author: Default::default(),
            seq: start_seq + k,
            lamport: prev.map_or(0, |p| p.1) + 1,
            deps: prev.map(|p| vec![p.0]).unwrap_or_default(),
            payload: payload(k),
        }
        .draft(key)
        .sign(key)?;
        prev = Some((op.id(), op.lamport()));
        out.push(op);
    }
    Ok(out)
}

/// Starts one producer of the throughput measurement: `per` appends, each awaited.
///
/// Generic on purpose: spawned where the store type is `Arc<dyn OpStore>`, the
/// compiler cannot prove the append future `Send` for every lifetime of the `dyn`;
/// here it follows from `S: OpStore`.
pub(super) fn spawn_producer<S: OpStore>(
    log: Arc<EventLog<S>>,
    p: u64,
    per: u64,
) -> tokio::task::JoinHandle<Result<(), event_log::Error>> {
    tokio::spawn(async move {
        for i in 0..per {
            log.append_transition(Transition::now(format!("p{p}-{i}"), "a", "b", "E"))
                .await?;
        }
        Ok(())
    })
}

/// The mean time of one 4 KiB write and `fdatasync` in `dir`, over `n` of them.
pub(super) fn fdatasync_latency(dir: &std::path::Path, n: u32) -> std::io::Result<Duration> {
    let path = dir.join("evlog-bench-fsync.tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)?;
    let block = [7u8; 4096];
    let start = Instant::now();
    for _ in 0..n {
        f.write_all(&block)?;
        f.sync_data()?;
    }
    let d = start.elapsed() / n;
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(d)
}

/// This process's resident memory, from `/proc` (None where it cannot be read).
pub(super) fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

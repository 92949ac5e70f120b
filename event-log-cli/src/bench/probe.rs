//! The raw measurements `evlog bench` builds its figures from: signing a chain,
//! a producer task, one fdatasync, resident memory, and the latencies of each call.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_log::bft::{KeyPair, Op, OpId, SignedOp, WrongKey};
use event_log::{Entry, EventLog, OpStore, Transition};
use hdrhistogram::Histogram;

/// The latencies of a run of calls: their exact mean, and percentiles from an HDR
/// histogram (nanoseconds, 3 significant digits).
#[derive(Clone)]
pub(super) struct Latencies {
    histogram: Histogram<u64>,
    total: Duration,
    count: u32,
}

impl Latencies {
    pub(super) fn new() -> Latencies {
        Latencies {
            // 3 significant digits, resizing to whatever it records: cannot fail.
            histogram: Histogram::new(3).expect("3 significant digits are in range"),
            total: Duration::ZERO,
            count: 0,
        }
    }

    /// Records one call that took `d`.
    pub(super) fn record(&mut self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        // The histogram resizes itself, so only a value past u64 could be refused.
        let _ = self.histogram.record(nanos);
        self.total += d;
        self.count = self.count.saturating_add(1);
    }

    /// Times `f` and records it.
    pub(super) async fn time<T>(&mut self, f: impl std::future::Future<Output = T>) -> T {
        let t = Instant::now();
        let out = f.await;
        self.record(t.elapsed());
        out
    }

    /// Adds another run's calls.
    pub(super) fn merge(&mut self, other: &Latencies) {
        // Both resize themselves: adding cannot run out of range.
        let _ = self.histogram.add(&other.histogram);
        self.total += other.total;
        self.count = self.count.saturating_add(other.count);
    }

    /// The mean call (exact, not from the histogram).
    pub(super) fn mean(&self) -> Duration {
        self.total / self.count.max(1)
    }

    /// The `q` quantile (0..=1) of the calls.
    pub(super) fn quantile(&self, q: f64) -> Duration {
        Duration::from_nanos(self.histogram.value_at_quantile(q))
    }
}

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

/// Starts one producer of the throughput measurement: `per` appends, each awaited
/// and timed.
///
/// Generic on purpose: spawned where the store type is `Arc<dyn OpStore>`, the
/// compiler cannot prove the append future `Send` for every lifetime of the `dyn`;
/// here it follows from `S: OpStore`.
pub(super) fn spawn_producer<S: OpStore>(
    log: Arc<EventLog<S>>,
    p: u64,
    per: u64,
) -> tokio::task::JoinHandle<Result<Latencies, event_log::Error>> {
    tokio::spawn(async move {
        let mut lat = Latencies::new();
        for i in 0..per {
            let t = Transition::now(format!("p{p}-{i}"), "a", "b", "E");
            lat.time(log.append_transition(t)).await?;
        }
        Ok(lat)
    })
}

/// The times of `n` 4 KiB writes, each followed by `fdatasync`, in `dir`.
pub(super) fn fdatasync_latency(dir: &std::path::Path, n: u32) -> std::io::Result<Latencies> {
    let path = dir.join("evlog-bench-fsync.tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)?;
    let block = [7u8; 4096];
    let mut lat = Latencies::new();
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        lat.record(t.elapsed());
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(lat)
}

/// This process's resident memory, from `/proc` (None where it cannot be read).
pub(super) fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_give_the_exact_mean_and_the_percentiles() {
        let mut a = Latencies::new();
        for us in 1..=98 {
            a.record(Duration::from_micros(us));
        }
        let mut b = Latencies::new();
        b.record(Duration::from_millis(10));
        b.record(Duration::from_millis(20));
        a.merge(&b);
        assert_eq!(
            a.mean(),
            Duration::from_nanos((4_851_000 + 30_000_000) / 100)
        );
        let p50 = a.quantile(0.5).as_secs_f64() * 1e6;
        assert!((49.9..=50.1).contains(&p50), "{p50}");
        let p99 = a.quantile(0.99).as_secs_f64() * 1e3;
        assert!((9.99..=10.01).contains(&p99), "{p99}");
        assert_eq!(Latencies::new().mean(), Duration::ZERO);
    }
}

//! What a hostile peer's ops cost a replica, against honest ops measured in the same
//! run: per-op cost of equivocations fed at decreasing seqs (each lowers the author's
//! exclusion point) and of a flood of ops that can only wait, at `n` and `4n` ops.
//! Linear work keeps each ratio flat from `n` to `4n`; quadratic work would make it
//! grow about fourfold.
//!
//! `cargo bench -p bft-json-crdt --bench adversarial` (`ADVERSARIAL_N`, default 1000;
//! `ADVERSARIAL_ROUNDS`, default 5). Rounds alternate the workloads; medians are
//! reported.

use std::time::{Duration, Instant};

use bft_json_crdt::{AuthorId, Limits, Op, Replica, SignedOp, SigningKey};

fn key(i: u8) -> SigningKey {
    let mut seed = [0x33; 32];
    seed[0] = i;
    SigningKey::from_bytes(&seed)
}

fn op(key: &SigningKey, seq: u64, deps: &[&SignedOp], payload: &[u8]) -> SignedOp {
    Op {
        author: AuthorId::from(&key.verifying_key()),
        seq,
        lamport: 1 + deps.iter().map(|d| d.lamport()).max().unwrap_or(0),
        deps: deps.iter().map(|d| d.id()).collect(),
        payload: payload.to_vec(),
    }
    .sign(key)
}

fn chain(key: &SigningKey, n: usize) -> Vec<SignedOp> {
    let mut out: Vec<SignedOp> = Vec::with_capacity(n);
    for i in 0..n {
        let deps: Vec<&SignedOp> = out.last().into_iter().collect();
        let o = op(key, i as u64 + 1, &deps, format!("op {i}").as_bytes());
        out.push(o);
    }
    out
}

/// The signed inputs of one size.
struct Inputs {
    honest: Vec<SignedOp>,
    base: Vec<SignedOp>,
    forks: Vec<SignedOp>,
    orphans: Vec<SignedOp>,
}

fn inputs(n: usize) -> Inputs {
    let honest = chain(&key(1), n);
    let k = key(2);
    let base = chain(&k, n + 1);
    // A second op at every seq from n+1 down to 2: each one an equivocation at a
    // lower seq than the last.
    let forks = (1..=n)
        .rev()
        .map(|s| op(&k, s as u64 + 1, &[&base[s - 1]], b"fork"))
        .collect();
    let ghost = op(&key(9), 1, &[], b"never sent");
    let orphans = (0..n)
        .map(|i| {
            op(
                &key(3),
                i as u64 + 1,
                &[&ghost],
                format!("wait {i}").as_bytes(),
            )
        })
        .collect();
    Inputs {
        honest,
        base,
        forks,
        orphans,
    }
}

fn limits(n: usize) -> Limits {
    Limits {
        max_buffered_per_author: n + 1,
        max_buffered: 2 * n + 1,
        ..Limits::default()
    }
}

fn time_apply(r: &mut Replica, ops: &[SignedOp]) -> Duration {
    let started = Instant::now();
    for o in ops {
        std::hint::black_box(r.apply(o.clone()));
    }
    started.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env("ADVERSARIAL_N", 1000).max(10);
    let rounds = env("ADVERSARIAL_ROUNDS", 5).max(1);
    let sizes = [n, 4 * n];
    let sets: Vec<Inputs> = sizes.iter().map(|&s| inputs(s)).collect();
    // Per size: per-op ratios against honest ops of the same round.
    let mut fork_ratio = vec![Vec::new(); sizes.len()];
    let mut flood_ratio = vec![Vec::new(); sizes.len()];
    let mut honest_us = vec![Vec::new(); sizes.len()];
    for _ in 0..rounds {
        for (i, set) in sets.iter().enumerate() {
            let size = sizes[i];
            let mut r = Replica::new(limits(size));
            let honest = time_apply(&mut r, &set.honest).as_secs_f64() / size as f64;
            let mut r = Replica::new(limits(size));
            for o in &set.base {
                r.apply(o.clone());
            }
            let forks = time_apply(&mut r, &set.forks).as_secs_f64() / size as f64;
            let mut r = Replica::new(limits(size));
            let flood = time_apply(&mut r, &set.orphans).as_secs_f64() / size as f64;
            honest_us[i].push(honest * 1e6);
            fork_ratio[i].push(forks / honest);
            flood_ratio[i].push(flood / honest);
        }
    }
    println!("adversarial ops against honest ops, per op, median of {rounds} alternating rounds");
    for (i, size) in sizes.iter().enumerate() {
        println!(
            "  n = {size:>6}: honest {:.1} us/op; decreasing equivocations {:.2}x; buffer flood {:.2}x",
            median(honest_us[i].clone()),
            median(fork_ratio[i].clone()),
            median(flood_ratio[i].clone()),
        );
    }
    let growth = |v: &[Vec<f64>]| median(v[1].clone()) / median(v[0].clone());
    println!(
        "  growth of the ratio from n to 4n (1.0 = linear, ~4 = quadratic): equivocations {:.2}, flood {:.2}",
        growth(&fork_ratio),
        growth(&flood_ratio)
    );
}

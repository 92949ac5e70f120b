//! `load` on a schema other writers append to: a row whose insert took a position but
//! had not committed when a page was read (while a row with a higher position had)
//! must not be skipped by a reader paging by position.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use event_log_core::{OpId, OpRecord, OpStore, Position};

/// Two appends: the first takes a lower position for op `a`, then waits (on a row
/// lock an admin transaction holds on its second op's id) while the second append
/// (op `b`, higher position) commits. A reader pages `load` meanwhile; after the first
/// append commits, paging on from the last position read must still visit `a`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_never_skips_a_row_that_commits_late() {
    let (_guard, store) = fresh_store("lateload").await;
    let schema = store.schema().to_owned();
    let a = chain(1, 1, 1, "a").remove(0);
    let x = chain(2, 1, 1, "x").remove(0);
    let b = chain(3, 1, 1, "b").remove(0);

    // Hold `x`'s id: the append of [a, x] inserts `a` (taking a position), then waits
    // for this transaction to decide about `x`.
    let mut admin = admin().await;
    let tx = admin.transaction().await.unwrap();
    tx.execute(
        &format!(
            "INSERT INTO \"{schema}\".ops (id, author, seq, evidence, payload, bytes, lamport)
             VALUES ($1, $2, $3, false, $4, $5, $6)"
        ),
        &[
            &x.id.as_bytes().as_slice(),
            &x.author.as_bytes().as_slice(),
            &(x.seq as i64),
            &x.payload,
            &x.bytes,
            &(x.lamport as i64),
        ],
    )
    .await
    .unwrap();
    let first = {
        let (store, batch) = (store.clone(), vec![a.clone(), x.clone()]);
        tokio::spawn(async move { store.append(&batch).await })
    };
    blocked_backend(&tx, &schema).await;
    // `b` takes a higher position and commits first.
    store.append(std::slice::from_ref(&b)).await.unwrap();

    // A reader pages from the start while `a` is still uncommitted.
    let reading = {
        let store = store.clone();
        tokio::spawn(async move { store.load(Position::START, 100).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.rollback().await.unwrap();
    first.await.unwrap().unwrap();
    let page1 = reading.await.unwrap().unwrap();
    let mut visited: Vec<(Position, OpRecord)> = page1.clone();
    let mut after = page1.last().map(|p| p.0).unwrap_or(Position::START);
    loop {
        let page = store.load(after, 100).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.0;
        visited.extend(page);
    }
    let names = |ops: &[(Position, OpRecord)]| -> Vec<String> {
        ops.iter()
            .map(|(p, r)| {
                let name = [(&a, "a"), (&x, "x"), (&b, "b")]
                    .iter()
                    .find(|(o, _)| o.id == r.id)
                    .map(|(_, n)| *n)
                    .unwrap_or("?");
                format!("{name}@{p}")
            })
            .collect()
    };
    let all = store.load(Position::START, 100).await.unwrap();
    eprintln!(
        "first page {:?}; paged on {:?}; the store in position order {:?}",
        names(&page1),
        names(&visited[page1.len()..]),
        names(&all)
    );
    let seen: HashSet<OpId> = visited.iter().map(|(_, r)| r.id).collect();
    assert_eq!(seen.len(), visited.len(), "no row twice");
    assert_eq!(
        seen,
        HashSet::from([a.id, b.id, x.id]),
        "paging load visited every row (first page {:?})",
        names(&page1)
    );
}

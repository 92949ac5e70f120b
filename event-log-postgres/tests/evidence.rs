//! `evidence()`: the ops stored as equivocation evidence, from their own index.

mod common;

use common::*;
use event_log_core::{MemStore, OpKey, OpRecord, OpStore};

/// Exactly the evidence ops, each once, ordered by (author, seq, id), as `MemStore`
/// answers; and the query is served by the partial index on evidence rows.
#[tokio::test]
async fn evidence_lists_the_evidence_ops_from_an_index() {
    let (_guard, store) = fresh_store("evidence").await;
    assert_eq!(store.evidence().await.unwrap(), Vec::<OpKey>::new());
    let mem = MemStore::new();
    let mut ops = chain(1, 1, 3, "p");
    ops.extend(chain(2, 1, 2, "p"));
    // Forks of sled 1 at seq 2 and sled 2 at seq 1, kept as evidence.
    for (n, seq, tag) in [(1u8, 2u64, "e1"), (2, 1, "e2"), (1, 2, "e3")] {
        ops.push(OpRecord::new(
            &signed(n, seq, vec![], &format!(r#"{{"fork":"{tag}"}}"#)),
            true,
        ));
    }
    store.append(&ops).await.unwrap();
    store.append(&ops[5..]).await.unwrap(); // again: stored once
    mem.append(&ops).await.unwrap();

    let got = store.evidence().await.unwrap();
    assert_eq!(got.len(), 3);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "ordered: {got:?}");
    assert_eq!(got, mem.evidence().await.unwrap());

    let admin = admin().await;
    admin
        .batch_execute("SET enable_seqscan = off")
        .await
        .unwrap();
    let plan: Vec<String> = admin
        .query(
            &format!(
                "EXPLAIN SELECT author, seq, id FROM \"{}\".ops WHERE evidence
                 ORDER BY author, seq, id",
                store.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("ops_evidence")),
        "served by the evidence index: {plan:#?}"
    );
}

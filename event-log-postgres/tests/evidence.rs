//! `evidence()`: the ops stored as equivocation evidence, from their own index.
//! (That it answers exactly as `MemStore` does is the conformance scenario
//! `evidence_matches_the_reference`.)

mod common;

use common::*;
use event_log_core::{OpRecord, OpStore};

/// The evidence query is served by the partial index on evidence rows.
#[tokio::test]
async fn evidence_is_served_by_an_index() {
    let (_guard, store) = fresh_store("evidence").await;
    let mut ops = chain(1, 1, 3, "p");
    ops.push(OpRecord::new(
        &signed(1, 2, vec![], r#"{"fork":"e1"}"#),
        true,
    ));
    store.append(&ops).await.unwrap();
    assert_eq!(store.evidence().await.unwrap().len(), 1);

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

//! A well-formed record in the wrong place is `Corrupt` naming its position, never
//! a panic. (Garbage, truncated and empty records are the conformance scenario
//! `damaged_row_is_corrupt`, through the harness's `damage_row`.)

mod common;

use common::{OPS, fresh, open, overwrite, rec};
use event_log_core::{OpStore, Position, StoreError};

fn assert_corrupt_at(result: Result<impl std::fmt::Debug, StoreError>, position: u64) {
    match result {
        Err(StoreError::Corrupt { location, detail }) => {
            assert!(
                location.contains(&format!("#{position}")),
                "{location}: {detail}"
            );
        }
        other => panic!("expected corruption at #{position}, got {other:?}"),
    }
}

/// A record of another op where the id index expects op 2 makes `get` and `since`
/// fail with `Corrupt` at position 2.
#[tokio::test]
async fn a_record_of_another_op_is_reported_with_its_position() {
    let (_dir, path) = fresh();
    let ops = [
        rec(1, 1, "a", false),
        rec(1, 2, "b", false),
        rec(1, 3, "c", false),
    ];
    let store = open(&path).await;
    store.append(&ops).await.unwrap();
    let good_second = store.load(Position(1), 1).await.unwrap();
    let third = store.load(Position(2), 1).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    let db = redb::Database::create(&path).unwrap();
    let raw = {
        use redb::ReadableDatabase;
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(OPS).unwrap();
        table.get(3).unwrap().unwrap().value().to_vec()
    };
    drop(db);
    overwrite(&path, 2, &raw);
    let store = open(&path).await;
    assert_corrupt_at(store.get(&ops[1].id).await, 2);
    assert_corrupt_at(store.since(&Default::default(), 10).await, 2);
    assert_eq!(third[0].1, ops[2]);
    assert_eq!(good_second[0].1, ops[1]);
}

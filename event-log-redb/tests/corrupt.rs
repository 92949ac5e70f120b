//! Damaged records are reported as `Corrupt` naming their position, never a panic.

mod common;

use common::{fresh, open, rec};
use event_log_core::{OpStore, Position, StoreError};

/// The `ops` table as the crate docs define it: position → record bytes.
const OPS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("ops");

/// Overwrites the record at `position` through redb directly.
fn overwrite(path: &std::path::Path, position: u64, value: &[u8]) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(OPS)
        .unwrap()
        .insert(position, value)
        .unwrap();
    txn.commit().unwrap();
}

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

/// Garbage, a truncated record and a record of the wrong op each make every reader fail with `Corrupt`.
#[tokio::test]
async fn a_corrupted_record_is_reported_with_its_position() {
    let (_dir, path) = fresh();
    let ops = [
        rec(1, 1, "a", false),
        rec(1, 2, "b", false),
        rec(1, 3, "c", false),
    ];
    let store = open(&path).await;
    store.append(&ops).await.unwrap();
    let good_second = store.load(Position(1), 1).await.unwrap();
    store.close().await.unwrap();
    drop(store);

    let damage: [&[u8]; 3] = [b"garbage", &[1, 0, 7], &[]];
    for value in damage {
        overwrite(&path, 2, value);
        let store = open(&path).await;
        assert_corrupt_at(store.load(Position::START, 10).await, 2);
        assert_eq!(store.load(Position::START, 1).await.unwrap().len(), 1);
        assert_eq!(store.load(Position(2), 10).await.unwrap().len(), 1);
        assert_corrupt_at(store.get(&ops[1].id).await, 2);
        assert_corrupt_at(store.since(&Default::default(), 10).await, 2);
        assert_eq!(store.count().await.unwrap(), 3);
        store.close().await.unwrap();
    }

    // A well-formed record of another op, where the index expects op 2.
    let store = open(&path).await;
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

//! Damaged rows are reported as `StoreError::Corrupt` naming the position and the
//! column, never as a panic. (`load`, `get` and `since` over each damaged column are
//! the conformance scenario `damaged_row_is_corrupt`, through the harness's
//! `damage_row`; `heads`, which reads two columns only, is checked here.)

mod common;

use common::*;
use event_log_core::{OpStore, StoreError};

/// `heads` meets a damaged author or seq, naming the position and the column.
#[tokio::test]
async fn heads_meets_a_damaged_author_or_seq() {
    for (update, column) in [
        (
            "UPDATE ops SET author = x'0102' WHERE position = 3",
            "author",
        ),
        ("UPDATE ops SET seq = 'x' WHERE position = 3", "seq"),
    ] {
        let (_dir, path, store) = fresh().await;
        store.append(&chain(1, 3)).await.unwrap();
        assert_eq!(raw(&path).execute(update, []).unwrap(), 1);
        match store.heads().await.unwrap_err() {
            StoreError::Corrupt { location, detail } => {
                assert!(location.contains("#3"), "{location:?} names position 3");
                assert!(
                    detail.contains(&format!("column {column}")),
                    "{detail:?} names column {column}"
                );
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}

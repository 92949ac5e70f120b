//! Tests of opening by URL that need the module's private items.

use super::open_store;

/// The error for a URL that cannot be opened names the URL without its secret,
/// whatever the shape (before, a `?password=` was shown verbatim, and a
/// password holding `@` was cut at its first `@`).
#[tokio::test]
async fn open_errors_show_no_password() {
    let mut cases = vec![
        ("nosuch://alice:p@ss@db/x", "ss@"),
        ("host=db password=Secret1", "Secret1"),
    ];
    if cfg!(feature = "sqlite") {
        cases.push(("sqlite://?password=Secret2", "Secret2"));
        cases.push(("sqlite://x.db?password=Secret3", "Secret3"));
        cases.push(("sqlite://x.db?durability=p@ss@x&token=Secret4", "Secret4"));
    }
    if cfg!(feature = "redb") {
        cases.push(("redb://x.redb?token=Secret5", "Secret5"));
    }
    for (url, secret) in cases {
        let e = match open_store(url).await {
            Ok(_) => panic!("{url} opened"),
            Err(e) => e.to_string(),
        };
        assert!(!e.contains(secret), "{url}: {e}");
    }
}

#[cfg(feature = "sqlite")]
mod read_only_tests {
    use event_log_core::{Error, StoreErrorKind, Transition};

    use crate::url::{OpenError, open_read_only, open_store, open_store_read_only};

    fn not_found(r: Result<impl Sized, OpenError>) -> String {
        match r {
            Err(OpenError::Store(e)) if e.kind() == StoreErrorKind::NotFound => e.to_string(),
            Err(e) => panic!("expected NotFound, found {e}"),
            Ok(_) => panic!("a missing store opened"),
        }
    }

    /// A missing store opened read-only (by `mode=ro` or by the read-only
    /// functions) is `NotFound` naming the path, and nothing is created (before, a
    /// reading tool created an empty store at a mistyped path).
    #[tokio::test]
    async fn read_only_opens_of_a_missing_store_are_not_found_and_create_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("missing.db");
        let url = format!("sqlite://{}", db.display());
        let shown = db.display().to_string();
        assert!(not_found(open_store(&format!("{url}?mode=ro")).await).contains(&shown));
        assert!(not_found(open_store_read_only(&url).await).contains(&shown));
        assert!(not_found(open_read_only(&url).await).contains(&shown));
        if cfg!(feature = "redb") {
            let url = format!("redb://{}", dir.path().join("missing.redb").display());
            assert!(not_found(open_store_read_only(&url).await).contains("missing.redb"));
            not_found(open_store(&format!("{url}?mode=ro")).await);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A log opened read-only shows what is stored, refuses appends, and leaves the
    /// file as it was (no checkpoint, no migration); `mode=rw` in the URL does not
    /// make a forced read-only open writable.
    #[tokio::test]
    async fn read_only_log_reads_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("log.db");
        let url = format!("sqlite://{}", db.display());
        let log = crate::url::open(&url, crate::keys::generate())
            .await
            .unwrap();
        for i in 0..3 {
            log.append_transition(Transition::now(format!("s{i}"), "a", "b", "t"))
                .await
                .unwrap();
        }
        log.close().await.unwrap();
        let bytes = std::fs::read(&db).unwrap();
        for url in [url.clone(), format!("{url}?mode=rw")] {
            let ro = open_read_only(&url).await.unwrap();
            assert_eq!(ro.visible_len(), 3);
            match ro
                .append_transition(Transition::now("s9", "a", "b", "t"))
                .await
            {
                Err(Error::ReadOnly { .. }) => {}
                other => panic!("expected ReadOnly, found {other:?}"),
            }
            ro.close().await.unwrap();
        }
        // `mode=ro` makes `open` read-only too.
        let ro = crate::url::open(&format!("{url}?mode=ro"), crate::keys::generate())
            .await
            .unwrap();
        assert!(
            ro.append_transition(Transition::now("s9", "a", "b", "t"))
                .await
                .is_err()
        );
        ro.close().await.unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), bytes, "the store was written");
    }

    /// A `mode` other than `ro` or `rw` is a bad URL.
    #[tokio::test]
    async fn bad_mode_is_a_bad_url() {
        match open_store("sqlite:///tmp/x.db?mode=readonly").await {
            Err(OpenError::BadUrl { reason, .. }) => assert!(reason.contains("mode"), "{reason}"),
            Err(e) => panic!("expected BadUrl, found {e}"),
            Ok(_) => panic!("opened"),
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres_tests {
    use crate::url::{pg_query, pg_read_only};

    /// The query and `mode` are found after the user info, as event-log-postgres
    /// finds them, also when the password holds `@` or `?`.
    #[test]
    fn postgres_mode_is_read_after_the_user_info() {
        assert_eq!(pg_query("postgres://u:p@ss@h/db?mode=ro"), Some("mode=ro"));
        assert_eq!(pg_query("postgres://u:p?ss@h/db"), None);
        assert_eq!(pg_query("postgres://h/db"), None);
        assert!(pg_read_only("postgres://u:p?mode=rw@h/db?mode=ro"));
        assert!(!pg_read_only("postgres://h/db?mode=ro&mode=rw"));
        assert!(!pg_read_only("postgres://u:mode=ro@h/db"));
    }
}

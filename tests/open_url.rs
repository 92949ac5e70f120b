//! `event_log::open(url, key)`: each scheme, and clear errors for bad URLs.

use event_log::{OpenError, Transition, keys};

#[tokio::test]
async fn memory_and_file_urls_open_logs() {
    let log = event_log::open("memory:", keys::generate()).await.unwrap();
    log.append_transition(Transition::now("s", "a", "b", "E"))
        .await
        .unwrap();
    assert_eq!(log.visible_len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let key = keys::load_or_create(dir.path().join("sled.key")).unwrap();
    #[allow(unused_mut)]
    let mut urls = Vec::new();
    #[cfg(feature = "sqlite")]
    urls.push(format!(
        "sqlite://{}?durability=normal",
        dir.path().join("a.db").display()
    ));
    #[cfg(feature = "redb")]
    urls.push(format!("redb://{}", dir.path().join("a.redb").display()));
    for url in urls {
        {
            let log = event_log::open(&url, key.clone()).await.unwrap();
            log.append_transition(Transition::now("s", "a", "b", "E"))
                .await
                .unwrap();
            log.close().await.unwrap();
        }
        let log = event_log::open(&url, key.clone()).await.unwrap();
        assert_eq!(log.visible_len(), 1, "{url}");
        assert_eq!(log.sled_id(), keys::sled_id(&key));
    }
}

#[tokio::test]
async fn bad_urls_are_typed_errors_naming_the_problem() {
    let err = event_log::open("mysql://h/db", keys::generate())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, OpenError::UnknownScheme { ref scheme } if scheme == "mysql"),
        "{err}"
    );
    let err = event_log::open("no-scheme-here", keys::generate())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, OpenError::BadUrl { .. }), "{err}");
    #[cfg(feature = "sqlite")]
    {
        let err = event_log::open("sqlite://x.db?durability=sometimes", keys::generate())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("durability must be"), "{err}");
        let err = event_log::open("sqlite://", keys::generate())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, OpenError::BadUrl { .. }), "{err}");
    }
    #[cfg(feature = "postgres")]
    {
        let err = event_log::open("postgres://me:hunter2@127.0.0.1:1/db", keys::generate())
            .await
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "no password in errors: {text}");
        assert!(
            matches!(err, OpenError::Store(ref e) if e.kind() == event_log::StoreErrorKind::Unavailable),
            "{text}"
        );
    }
    #[cfg(not(feature = "redb"))]
    {
        let err = event_log::open("redb://x.redb", keys::generate())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("`redb` feature"), "{err}");
    }
}

/// A directory, or the other embedded backend's file, is one clear error naming
/// the fix, not the backend's I/O error codes; nothing is created or changed.
#[cfg(all(feature = "sqlite", feature = "redb"))]
#[tokio::test]
async fn wrong_files_are_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let sqlite = format!("{d}/a.db");
    let redb = format!("{d}/b.redb");
    for url in [format!("sqlite://{sqlite}"), format!("redb://{redb}")] {
        event_log::open(&url, keys::generate())
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
    }
    let before = (
        std::fs::read(&sqlite).unwrap(),
        std::fs::read(&redb).unwrap(),
    );
    let cases = [
        (format!("sqlite://{d}"), "is a directory".to_owned()),
        (format!("redb://{d}"), "is a directory".to_owned()),
        (
            format!("redb://{sqlite}"),
            format!("open it as sqlite://{sqlite}"),
        ),
        (
            format!("sqlite://{redb}"),
            format!("open it as redb://{redb}"),
        ),
    ];
    for (url, says) in cases {
        for read_only in [false, true] {
            let err = if read_only {
                event_log::open_read_only(&url).await.err()
            } else {
                event_log::open(&url, keys::generate()).await.err()
            }
            .unwrap_or_else(|| panic!("{url} opened"));
            assert!(matches!(err, OpenError::BadUrl { .. }), "{url}: {err:?}");
            let text = err.to_string();
            assert!(text.contains(&says), "{url}: {text}");
            assert!(!text.contains("Error code"), "{url}: {text}");
        }
    }
    assert_eq!(
        (
            std::fs::read(&sqlite).unwrap(),
            std::fs::read(&redb).unwrap()
        ),
        before,
        "nothing written"
    );
}

#[test]
fn key_files_round_trip_and_refuse_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let a = keys::load_or_create(&path).unwrap();
    let b = keys::load_or_create(&path).unwrap();
    assert_eq!(
        a.to_bytes(),
        b.to_bytes(),
        "the second call loads the same key"
    );
    std::fs::write(dir.path().join("bad"), "not a key").unwrap();
    let err = keys::load(dir.path().join("bad")).err().unwrap();
    assert!(matches!(err, keys::KeyError::Malformed { .. }), "{err}");
}

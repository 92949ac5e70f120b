//! `FileWatermark`: a sled's signed high-water mark in a file beside its key, so
//! that a store restored from an older backup is detected (issue 11).

#![cfg(feature = "sqlite")]

use std::path::{Path, PathBuf};

use event_log::watermark::{FileWatermark, WatermarkError, mark_path};
use event_log::{
    Error, EventLog, EventLogConfig, OpStore, OpenError, SharedWatermark, Transition, Watermark,
    keys,
};

struct Sled {
    dir: tempfile::TempDir,
    key_path: PathBuf,
}

impl Sled {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("sled.key");
        keys::create(&key_path).unwrap();
        Sled { dir, key_path }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("log.db")
    }

    fn mark(&self) -> PathBuf {
        mark_path(&self.key_path)
    }

    /// Opens the log as a new process would: key and mark read from their files.
    async fn open(&self) -> Result<EventLog<event_log::AnyStore>, OpenError> {
        let config = EventLogConfig::default().with_watermark(Some(SharedWatermark::new(
            FileWatermark::beside_key(&self.key_path).unwrap(),
        )));
        let url = format!("sqlite://{}", self.db().display());
        event_log::open_with(&url, keys::load(&self.key_path).unwrap(), config).await
    }

    async fn append(&self, from: u32, to: u32) {
        let log = self.open().await.unwrap();
        for i in from..to {
            log.append_transition(transition(i)).await.unwrap();
        }
        log.close().await.unwrap();
    }
}

fn transition(i: u32) -> Transition {
    Transition::now(format!("story-{i}"), "backlog", "coding", "DepsMet")
}

/// Copies the SQLite database (with its WAL, if any) from `from` to `to`.
fn copy_db(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(to).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("log.db") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("log.db") {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A SQLite file restored from an earlier backup holds fewer of the sled's ops
/// than its mark beside the key says it signed: reopened, the log reports the loss
/// and refuses to append (`Error::RolledBack`), writing nothing.
#[tokio::test(flavor = "multi_thread")]
async fn restored_sqlite_backup_is_detected_as_rolled_back() {
    let sled = Sled::new();
    sled.append(0, 3).await;
    let backup = sled.dir.path().join("backup");
    copy_db(sled.dir.path(), &backup);
    sled.append(3, 5).await;
    assert!(sled.mark().exists(), "the mark is beside the key");

    copy_db(&backup, sled.dir.path());
    // Control: the restored store alone cannot tell (its own checkpoint was backed
    // up with it), so without the mark the sled would sign seq 4 again.
    let control = sled.dir.path().join("control");
    copy_db(&backup, &control);
    let url = format!("sqlite://{}", control.join("log.db").display());
    let blind = event_log::open(&url, keys::load(&sled.key_path).unwrap())
        .await
        .unwrap();
    assert!(blind.missing().is_empty(), "the store alone sees no loss");
    assert_eq!(
        blind
            .append_transition(transition(9))
            .await
            .unwrap()
            .event_id,
        3,
        "without the mark, seq 4 is signed again"
    );
    blind.close().await.unwrap();

    let log = sled.open().await.unwrap();
    let missing = log.missing();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!((missing[0].held, missing[0].acknowledged), (3, 5));
    match log.append_transition(transition(9)).await {
        Err(Error::RolledBack { held, signed }) => assert_eq!((held, signed), (3, 5)),
        other => panic!("expected RolledBack, got {other:?}"),
    }
    assert_eq!(log.store().count().await.unwrap(), 3, "nothing written");
    log.close().await.unwrap();

    // Still refused after another restart: the mark was not lowered to the store.
    let log = sled.open().await.unwrap();
    assert!(matches!(
        log.append_transition(transition(9)).await,
        Err(Error::RolledBack { held: 3, signed: 5 })
    ));
    log.close().await.unwrap();
}

/// The same store, reopened without having been rolled back, appends after its
/// ops: the mark follows the store.
#[tokio::test(flavor = "multi_thread")]
async fn an_intact_store_appends_across_restarts() {
    let sled = Sled::new();
    sled.append(0, 3).await;
    sled.append(3, 5).await;
    let log = sled.open().await.unwrap();
    assert!(log.missing().is_empty());
    let e = log.append_transition(transition(5)).await.unwrap();
    assert_eq!(e.event_id, 5);
    log.close().await.unwrap();
}

/// A damaged mark file makes open fail with a typed error naming the file, never
/// ignored (a store rolled back meanwhile would go unnoticed).
#[tokio::test(flavor = "multi_thread")]
async fn corrupt_mark_file_is_a_typed_error() {
    let sled = Sled::new();
    sled.append(0, 2).await;
    let good = std::fs::read(sled.mark()).unwrap();
    let flipped = {
        // One hex digit of the mark changed.
        let mut b = good.clone();
        let i = b.iter().position(|&c| c == b'\n').unwrap() + 10;
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("flipped", flipped),
        ("garbage", b"not a watermark\n".to_vec()),
    ];
    for (what, bytes) in cases {
        std::fs::write(sled.mark(), &bytes).unwrap();
        let err = sled
            .open()
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: opened"));
        let OpenError::Log(Error::Watermark { source }) = &err else {
            panic!("{what}: expected Error::Watermark, got {err:?}");
        };
        match source.downcast_ref::<WatermarkError>() {
            Some(WatermarkError::Corrupt { path, .. }) => assert_eq!(path, &sled.mark()),
            other => panic!("{what}: expected WatermarkError::Corrupt, got {other:?}"),
        }
        let msg = format!("{err}: {source}");
        assert!(msg.contains(&sled.mark().display().to_string()), "{msg}");
    }
    // Restored, the log opens again.
    std::fs::write(sled.mark(), &good).unwrap();
    sled.open().await.unwrap().close().await.unwrap();
}

/// An unreadable mark (here: a directory where the file should be) is a typed I/O
/// error; a missing one is no mark yet.
#[tokio::test(flavor = "multi_thread")]
async fn unreadable_mark_is_an_error_and_missing_mark_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let w = FileWatermark::open(dir.path().join("none.mark")).unwrap();
    assert_eq!(w.load().await.unwrap(), None);
    w.flush().await.unwrap();

    let path = dir.path().join("dir.mark");
    std::fs::create_dir(&path).unwrap();
    let w = FileWatermark::open(&path).unwrap();
    let err = w.load().await.unwrap_err();
    match err.downcast_ref::<WatermarkError>() {
        Some(WatermarkError::Io { path: p, .. }) => assert_eq!(p, &path),
        other => panic!("expected WatermarkError::Io, got {other:?} ({err})"),
    }
}

/// Saves return at once and coalesce; `flush` waits until the newest is on disk,
/// where a new watermark (a new process) finds it. No temporary file is left.
#[tokio::test(flavor = "multi_thread")]
async fn flush_makes_the_newest_save_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sled.key.mark");
    let w = FileWatermark::open(&path).unwrap();
    for i in 0..1000u32 {
        w.save(i.to_be_bytes().to_vec());
        assert_eq!(w.load().await.unwrap(), Some(i.to_be_bytes().to_vec()));
    }
    w.flush().await.unwrap();
    let again = FileWatermark::open(&path).unwrap();
    assert_eq!(
        again.load().await.unwrap(),
        Some(999u32.to_be_bytes().to_vec())
    );
    drop(w);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["sled.key.mark"]);
}

/// A save that cannot be written is reported by `flush` (typed, naming the file),
/// and `flush` tries again: once the cause is gone it succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn failed_write_is_reported_by_flush_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("sub");
    std::fs::write(&blocker, b"a file where the directory should be").unwrap();
    let path = blocker.join("sled.key.mark");
    let w = FileWatermark::open(&path).unwrap();
    w.save(b"mark".to_vec());
    let err = w.flush().await.unwrap_err();
    match err.downcast_ref::<WatermarkError>() {
        Some(WatermarkError::Write { path: p, .. }) => assert_eq!(p, &path),
        other => panic!("expected WatermarkError::Write, got {other:?} ({err})"),
    }
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir(&blocker).unwrap();
    w.flush().await.unwrap();
    let again = FileWatermark::open(&path).unwrap();
    assert_eq!(again.load().await.unwrap(), Some(b"mark".to_vec()));
}

/// Dropping the watermark still writes the last save (no flush needed for that,
/// only for knowing when).
#[tokio::test(flavor = "multi_thread")]
async fn dropped_watermark_writes_its_last_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.mark");
    let w = FileWatermark::open(&path).unwrap();
    w.save(b"last".to_vec());
    drop(w);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let again = FileWatermark::open(&path).unwrap();
        if let Ok(Some(m)) = again.load().await {
            assert_eq!(m, b"last");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never written");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

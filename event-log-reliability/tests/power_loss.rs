//! Power-loss tests: the store on the `lazyfs` FUSE file system, which keeps every
//! write in memory until its file is synced. Each cycle mounts it over the store's
//! backing directory, runs one `crash-child` on it, kills the child with SIGKILL,
//! cuts the power (every unsynced write dropped, the file system unmounted) and
//! checks the store from the backing directory alone, against the README's
//! durability table:
//!
//! - SQLite `durability=full` and redb (`Durability::Immediate`): no acknowledged
//!   event lost, nothing corrupt;
//! - SQLite `durability=normal`: nothing corrupt, and what is lost is only a suffix
//!   of each sled's acknowledged events, all of the last cycle (the last commits).
//!
//! "Nothing corrupt": the store opens, the checker finds no duplicate, no hole and no
//! damaged row, missing op or equivocation, and (at the end) each sled's next append
//! continues after its last stored event. Cycles alternate two sleds on one store.
//!
//! `EVLOG_POWER_CYCLES` (default 5) sets the cycles per mode; `EVLOG_CRASH_SEED`
//! replays the kill moments. Needs root and `/dev/fuse`: without them the tests fail
//! saying so, they never skip. Each test prints one line of counts.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use event_log_reliability::{Ack, ChainConfig, LazyFs, check, next_append, run_chain};

/// Cycles per mode when `EVLOG_POWER_CYCLES` is not set.
const DEFAULT_CYCLES: usize = 5;

fn cycles() -> usize {
    match std::env::var("EVLOG_POWER_CYCLES") {
        Err(_) => DEFAULT_CYCLES,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                panic!("EVLOG_POWER_CYCLES must be a whole number of cycles, at least 1; got {v:?}")
            }
        },
    }
}

fn seed() -> u64 {
    if let Ok(v) = std::env::var("EVLOG_CRASH_SEED") {
        return v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("EVLOG_CRASH_SEED must be a number; got {v:?}"));
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// One line on stdout, past libtest's capture.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn mount(backing: &Path, mountpoint: &Path) -> LazyFs {
    LazyFs::mount(backing, mountpoint).unwrap_or_else(|e| panic!("{e}"))
}

/// What a mode promises on power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Promise {
    /// Nothing acknowledged is lost.
    Survives,
    /// Only the last commits may be lost: a suffix of each sled's acks, of the last
    /// cycle.
    LosesOnlyTheLastCommits,
}

/// Runs the power-loss cycles of one mode; `url(dir)` is the store's URL in `dir`.
fn power_loss(mode: &str, promise: Promise, url: impl Fn(&Path) -> String) {
    let cycles = cycles();
    let seed = seed();
    let backing = tempfile::tempdir().unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    // The keys live beside the lazy disk, not on it: a sled's identity is not what
    // is tested.
    let keys_dir = tempfile::tempdir().unwrap();
    let keys: Vec<PathBuf> = ["sled-a.key", "sled-b.key"]
        .iter()
        .map(|k| keys_dir.path().join(k))
        .collect();
    let on_disk = url(backing.path());
    let rt = runtime();
    // Every ack the store must still hold.
    let mut survivors: Vec<Ack> = Vec::new();
    let (mut acknowledged, mut lost, mut dropped_pages, mut dropped_files) = (0, 0, 0, 0);
    let mut lossy_cycles = 0;
    for cycle in 0..cycles {
        let fs = mount(backing.path(), mountpoint.path());
        let mut config = ChainConfig::new(
            env!("CARGO_BIN_EXE_crash-child"),
            url(fs.mountpoint()),
            vec![keys[cycle % keys.len()].clone()],
        );
        config.kills = 1;
        config.seed = seed ^ cycle as u64;
        config.first_run = cycle as u64;
        // Killed after its first ack: every cycle acknowledges something to lose.
        config.early_one_in = 0;
        let chain = run_chain(&config).unwrap_or_else(|e| {
            panic!("{mode} cycle {cycle} (EVLOG_CRASH_SEED={seed}): the child run failed: {e}")
        });
        let cut = fs
            .power_cut()
            .unwrap_or_else(|e| panic!("{mode} cycle {cycle}: the power cut: {e}"));
        dropped_pages += cut.pages;
        dropped_files += cut.files;
        acknowledged += chain.acks.len();
        let mut expected = survivors.clone();
        expected.extend(chain.acks.iter().cloned());
        let report = rt.block_on(check(&on_disk, &expected)).unwrap_or_else(|e| {
            panic!(
                "{mode} cycle {cycle} (EVLOG_CRASH_SEED={seed}): the store does not open after \
                 a power cut (corrupt): {e}"
            )
        });
        let corrupt = !report.duplicates.is_empty()
            || !report.holes.is_empty()
            || !report.problems.is_empty();
        assert!(
            !corrupt,
            "{mode} cycle {cycle} (EVLOG_CRASH_SEED={seed}): corrupt after a power cut: \
             duplicates {:?}, holes {:?}, problems {:?}",
            report.duplicates, report.holes, report.problems
        );
        match promise {
            Promise::Survives => assert!(
                report.lost.is_empty(),
                "{mode} cycle {cycle} (EVLOG_CRASH_SEED={seed}): {} acknowledged events lost \
                 to a power cut ({} dirty pages dropped), first: {:?}",
                report.lost.len(),
                cut.pages,
                &report.lost[..report.lost.len().min(5)]
            ),
            Promise::LosesOnlyTheLastCommits => {
                for ack in &report.lost {
                    assert!(
                        chain.acks.contains(ack),
                        "{mode} cycle {cycle} (EVLOG_CRASH_SEED={seed}): lost an ack of an \
                         earlier cycle, which had survived its own power cut: {ack:?}"
                    );
                    let stored = report.events.get(&ack.sled).copied().unwrap_or(0);
                    assert!(
                        ack.event_id >= stored,
                        "{mode} cycle {cycle} (EVLOG_CRASH_SEED={seed}): lost {ack:?} inside \
                         the sled's stored events (0..{stored}), not a suffix: an id signed \
                         again or a hole"
                    );
                }
            }
        }
        lost += report.lost.len();
        lossy_cycles += usize::from(!report.lost.is_empty());
        survivors = expected
            .into_iter()
            .filter(|ack| !report.lost.contains(ack))
            .collect();
    }
    // The next append of each sled continues after its last stored event, on the
    // disk as the power cuts left it.
    let report = rt
        .block_on(check(&on_disk, &survivors))
        .unwrap_or_else(|e| panic!("{mode}: the final check: {e}"));
    assert!(report.is_clean(), "{mode}: the final check: {report:?}");
    let mut per_sled = BTreeMap::new();
    for (i, key) in keys.iter().enumerate().take(cycles) {
        let key = event_log::keys::load(key)
            .unwrap_or_else(|e| panic!("{mode}: a cycle created no key {i}: {e}"));
        let sled = event_log::keys::sled_id(&key);
        let append = rt
            .block_on(next_append(&on_disk, key, &format!("final-{i}")))
            .unwrap_or_else(|e| panic!("{mode}: the next append of sled {i}: {e}"));
        let stored = report.events.get(&sled).copied().unwrap_or(0);
        assert_eq!(
            (append.expected, append.got),
            (stored, stored),
            "{mode}: sled {i}'s next append does not continue after its last stored event"
        );
        per_sled.insert(i, stored);
    }
    say(&format!(
        "power-loss test {mode}: cycles {cycles}, acknowledged {acknowledged}, lost = {lost} \
         (in {lossy_cycles} cycles), corrupt = 0 ({dropped_pages} unsynced pages of \
         {dropped_files} files dropped; {} events in {} sleds; EVLOG_CRASH_SEED={seed})",
        report.events.values().sum::<u64>(),
        report.events.len(),
    ));
    assert!(
        acknowledged > 0,
        "{mode}: the children acknowledged nothing"
    );
}

#[test]
fn sqlite_full_survives_power_loss() {
    power_loss("sqlite full", Promise::Survives, |dir| {
        format!(
            "sqlite://{}?durability=full",
            dir.join("power.db").display()
        )
    });
}

#[test]
fn sqlite_normal_loses_only_the_last_commits_on_power_loss() {
    power_loss("sqlite normal", Promise::LosesOnlyTheLastCommits, |dir| {
        format!(
            "sqlite://{}?durability=normal",
            dir.join("power.db").display()
        )
    });
}

#[test]
fn redb_immediate_survives_power_loss() {
    power_loss("redb immediate", Promise::Survives, |dir| {
        format!("redb://{}", dir.join("power.redb").display())
    });
}

/// The layer itself: after a cut the backing directory holds exactly what was
/// synced; a clean unmount writes everything; metadata is write-through.
#[test]
fn lazyfs_keeps_exactly_what_was_synced() {
    let backing = tempfile::tempdir().unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    let fs = mount(backing.path(), mountpoint.path());
    let at = |name: &str| fs.mountpoint().join(name);
    std::fs::create_dir(at("dir")).unwrap();
    let synced = std::fs::File::create(at("dir/synced")).unwrap();
    synced.write_all_at(&[1u8; 10_000], 0).unwrap();
    synced.sync_data().unwrap();
    // Unsynced: an overwrite inside a synced page, and an extension.
    synced.write_all_at(&[2u8; 100], 50).unwrap();
    synced.write_all_at(&[3u8; 5000], 10_000).unwrap();
    let mut unsynced = std::fs::File::create(at("unsynced")).unwrap();
    unsynced.write_all(b"never synced").unwrap();
    // Reads see the cache; close is not a sync.
    let seen = std::fs::read(at("dir/synced")).unwrap();
    assert_eq!(seen.len(), 15_000);
    assert_eq!((seen[49], seen[50], seen[149], seen[150]), (1, 2, 2, 1));
    assert_eq!(seen[10_000], 3);
    assert_eq!(std::fs::read(at("unsynced")).unwrap(), b"never synced");
    drop((synced, unsynced));
    assert!(fs.dirty_pages() >= 3, "{} dirty pages", fs.dirty_pages());
    let cut = fs.power_cut().unwrap();
    assert_eq!(cut.files, 2, "{cut:?}");
    assert_eq!(
        std::fs::read(backing.path().join("dir/synced")).unwrap(),
        vec![1u8; 10_000],
        "the synced state, without the unsynced overwrite and extension"
    );
    assert_eq!(
        std::fs::read(backing.path().join("unsynced")).unwrap(),
        b"",
        "created (metadata is write-through), its data lost"
    );

    // Remounted over the same disk: the state after the cut; a clean unmount keeps
    // unsynced writes.
    let fs = mount(backing.path(), mountpoint.path());
    assert_eq!(
        std::fs::read(fs.mountpoint().join("dir/synced")).unwrap(),
        vec![1u8; 10_000]
    );
    std::fs::write(fs.mountpoint().join("unsynced"), b"kept by a clean unmount").unwrap();
    std::fs::rename(
        fs.mountpoint().join("unsynced"),
        fs.mountpoint().join("dir/renamed"),
    )
    .unwrap();
    let truncated = std::fs::OpenOptions::new()
        .write(true)
        .open(fs.mountpoint().join("dir/synced"))
        .unwrap();
    truncated.set_len(10).unwrap();
    drop(truncated);
    fs.unmount().unwrap();
    assert_eq!(
        std::fs::read(backing.path().join("dir/renamed")).unwrap(),
        b"kept by a clean unmount"
    );
    assert_eq!(
        std::fs::read(backing.path().join("dir/synced")).unwrap(),
        vec![1u8; 10]
    );
}

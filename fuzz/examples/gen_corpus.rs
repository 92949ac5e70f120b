//! Writes the seed corpus of every fuzz target into `corpus/<target>/`: a few real
//! encodings (ops, entry payloads, stored records and rows) and op-graph scripts.
//!
//! `cargo run --example gen_corpus` (from `fuzz/`); the files are committed, so run
//! it again only when an encoding changes.

use std::path::{Path, PathBuf};

use bft_json_crdt::{Op, OpId, SignedOp, SigningKey};
use event_log_core::{Entry, OpRecord};

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

fn op(k: u8, seq: u64, deps: &[&SignedOp], payload: &[u8]) -> SignedOp {
    let key = key(k);
    Op {
        author: (&key.verifying_key()).into(),
        seq,
        lamport: 1 + deps.iter().map(|d| d.lamport()).max().unwrap_or(0),
        deps: deps.iter().map(|d| d.id()).collect(),
        payload: payload.to_vec(),
    }
    .sign(&key)
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    std::fs::write(dir.join(name), bytes).expect("corpus file");
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let payloads: Vec<(&str, Vec<u8>)> = [
        (
            "transition",
            r#"{"type":"transition","story_id":"story-1","from_stage":"backlog","to_stage":"coding","pipeline_event":"DepsMet","at":"2026-01-02T03:04:05.123456Z"}"#,
        ),
        (
            "transition_meta",
            r#"{"type":"transition","story_id":"s","from_stage":"a","to_stage":"b","pipeline_event":"e","idempotency_key":"k-9","metadata":{"pr":"17","who":"ci"},"at":"2026-01-02T03:04:05Z"}"#,
        ),
        (
            "gap",
            r#"{"type":"gap","run":"00000000000000ab","from":3,"to":9,"at":"2026-01-02T03:04:05Z"}"#,
        ),
        (
            "unclean",
            r#"{"type":"unclean","run":171,"from":4,"known_lost":2,"at":"2026-01-02T03:04:05Z"}"#,
        ),
    ]
    .into_iter()
    .map(|(name, json)| {
        let entry = Entry::from_payload(json.as_bytes()).expect("a seed entry parses");
        (name, entry.to_payload())
    })
    .collect();
    for (name, p) in &payloads {
        write(&dir, "entry_payload", name, p);
    }

    // Ops: a root, a chain link with a cross-author dep, an op with several deps.
    let a1 = op(1, 1, &[], &payloads[0].1);
    let b1 = op(2, 1, &[], &payloads[2].1);
    let a2 = op(1, 2, &[&a1, &b1], &payloads[1].1);
    let c1 = op(3, 1, &[&a2, &b1], &payloads[3].1);
    let empty = op(4, 1, &[], b"");
    let ops = [
        ("root", &a1),
        ("link", &a2),
        ("deps", &c1),
        ("empty", &empty),
    ];
    for (name, o) in ops {
        write(&dir, "op_decode", name, o.bytes());
        let mut raw = o.id().as_bytes().to_vec();
        raw.extend_from_slice(o.bytes());
        write(&dir, "op_decode", &format!("{name}_raw"), &raw);
    }

    // Stored records of the ops that carry entries: as every store holds them, and
    // as redb and SQLite lay them out.
    for (i, (name, o)) in ops.into_iter().take(3).enumerate() {
        let rec = OpRecord::new(o, false);
        let mut flat = rec.id.as_bytes().to_vec();
        flat.extend_from_slice(rec.author.as_bytes());
        flat.extend_from_slice(&rec.seq.to_be_bytes());
        flat.push(u8::from(rec.evidence));
        flat.push(u8::try_from(rec.payload.len()).unwrap_or(u8::MAX));
        flat.extend_from_slice(rec.payload.as_bytes());
        flat.extend_from_slice(&rec.bytes);
        write(&dir, "stored_record", name, &flat);
        write(
            &dir,
            "redb_record",
            name,
            &event_log_redb::fuzz::encode(&rec),
        );
        write(
            &dir,
            "sqlite_row",
            name,
            &event_log_sqlite::fuzz::row_input(i as u64 + 1, &rec),
        );
    }
    let evidence = OpRecord::new(&a2, true);
    write(
        &dir,
        "redb_record",
        "evidence",
        &event_log_redb::fuzz::encode(&evidence),
    );
    write(
        &dir,
        "sqlite_row",
        "evidence",
        &event_log_sqlite::fuzz::row_input(9, &evidence),
    );

    // Op-graph scripts for `replica_ingest` (see `bft_json_crdt::fuzz`): each command
    // is a kind byte (its low 3 bits; 0x80 adds a cross dep, 0x40 ends a batch), an
    // author byte, then the kind's operands.
    let ghost = |b: u8| [b; 32];
    let mut orphans = vec![7, 1];
    orphans.extend_from_slice(&ghost(0xaa));
    orphans.extend_from_slice(&[1, 1, 7, 1]);
    orphans.extend_from_slice(&ghost(0xab));
    orphans.extend_from_slice(&[2, 2, 0x40, 2, 0, 1, 0, 1, 0, 2]);
    let scripts: [(&str, Vec<u8>); 5] = [
        (
            "honest",
            vec![
                0, 0, 0, 1, 0x80, 1, 0, 2, 0x80, 2, 1, 3, 0x40, 0, 0, 4, 0x80, 1, 3, 5,
            ],
        ),
        (
            "equivocation",
            vec![
                0, 0, 0, 1, 0, 0, 0, 2, 4, 0, 1, 9, 0x40, 0, 0, 3, 0x80, 1, 2, 4,
            ],
        ),
        (
            "tampered",
            vec![
                0, 0, 0, 1, 5, 0, 0, 6, 0, 0, 40, 1, 6, 0, 0, 2, 0x80, 0x40, 0, 0, 0, 2,
            ],
        ),
        ("orphans", orphans),
        (
            "arbitrary",
            vec![
                3, 0, 1, 1, 0, 5, 3, 0, 2, 2, 1, 0, 7, 3, 1, 1, 1, 2, 0x83, 0, 9, 0x40, 0, 0, 0, 1,
            ],
        ),
    ];
    for (name, s) in scripts {
        write(&dir, "replica_ingest", name, &s);
    }
    // A forged id: a known op's bytes under another claimed id.
    let mut forged = OpId([0x11; 32]).as_bytes().to_vec();
    forged.extend_from_slice(a1.bytes());
    write(&dir, "op_decode", "forged_id", &forged);
    println!("wrote {}", dir.display());
}

//! Fuzz entry points: the body of the `cargo fuzz` target `sqlite_row` in the
//! repository's `fuzz/` directory, also run as a proptest property by `cargo test`,
//! so that both exercise the same code. Not part of the API: it panics when the
//! crate breaks a promise on the given input, which is what a fuzzer looks for.

use bft_json_crdt::{AuthorId, OpId};
use event_log_core::{OpRecord, Position, StoreErrorKind};
use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};

use crate::row;
use crate::schema;

/// The columns of an `ops` row ([`row::COLUMNS`]).
const COLUMNS: usize = 10;
/// The columns before the index columns (`lamport`, `story`, `key`): the row of
/// schema version 3.
const BASE_COLUMNS: usize = 7;

/// One column value chosen by the fuzz input, and whether SQLite returns it as
/// text (the blob's bytes cast to `TEXT`, which need not be UTF-8).
struct Column {
    value: Value,
    as_text: bool,
}

/// Reads column values from the fuzz input; zeros once it runs out.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn column(&mut self) -> Column {
        let tag = self.u8();
        let value = match tag % 6 {
            0 => Value::Null,
            1 => Value::Integer(i64::from(self.u8() as i8)),
            2 => {
                let mut b = [0u8; 8];
                let got = self.take(8);
                b[..got.len()].copy_from_slice(got);
                Value::Integer(i64::from_be_bytes(b))
            }
            3 => Value::Real(f64::from(self.u8()) / 4.0),
            _ => {
                let len = usize::from(u16::from_be_bytes([self.u8(), self.u8()]));
                Value::Blob(self.take(len).to_vec())
            }
        };
        Column {
            as_text: tag % 6 == 5,
            value,
        }
    }
}

/// What [`row::decode`] must make of the columns: the record, or `None` for damage.
fn expected(cols: &[Column]) -> Option<(Position, OpRecord)> {
    let int = |c: &Column| match (&c.value, c.as_text) {
        (Value::Integer(i), _) => Some(*i),
        _ => None,
    };
    let blob = |c: &Column| match (&c.value, c.as_text) {
        (Value::Blob(b), false) => Some(b.clone()),
        _ => None,
    };
    let position = int(&cols[0]).filter(|p| *p >= 1)?;
    let id: [u8; 32] = blob(&cols[1])?.try_into().ok()?;
    let author: [u8; 32] = blob(&cols[2])?.try_into().ok()?;
    let seq = int(&cols[3]).filter(|s| *s >= 0)?;
    let evidence = match int(&cols[4])? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let payload = match &cols[5].value {
        Value::Blob(b) if cols[5].as_text => String::from_utf8(b.clone()).ok()?,
        _ => return None,
    };
    let bytes = blob(&cols[6])?;
    let lamport = int(&cols[7]).filter(|l| *l >= 0)?;
    let text_or_null = |c: &Column| match (&c.value, c.as_text) {
        (Value::Null, _) => Some(None),
        (Value::Blob(b), true) => String::from_utf8(b.clone()).ok().map(Some),
        _ => None,
    };
    let story = text_or_null(&cols[8])?;
    let key = text_or_null(&cols[9])?;
    Some((
        Position(position as u64),
        OpRecord {
            id: OpId(id),
            author: AuthorId(author),
            seq: seq as u64,
            payload,
            bytes,
            evidence,
            lamport: lamport as u64,
            story,
            key,
        },
    ))
}

/// The index columns of a row whose input ends after the first seven columns (a
/// seed written before the index columns existed): the values the version-4
/// migration fills in from the `bytes` column.
fn backfilled(bytes: &Column) -> [Column; 3] {
    let value = match (&bytes.value, bytes.as_text) {
        (Value::Blob(b), false) => ValueRef::Blob(b),
        _ => ValueRef::Null,
    };
    let (lamport, story, key) = schema::index_columns(value);
    let text = |t: Option<String>| Column {
        as_text: t.is_some(),
        value: t.map_or(Value::Null, |t| Value::Blob(t.into_bytes())),
    };
    [
        Column {
            value: Value::Integer(lamport),
            as_text: false,
        },
        text(story),
        text(key),
    ]
}

thread_local! {
    /// An in-memory database: the row decoder reads `rusqlite` rows, which only a
    /// statement makes; no table is involved.
    static DB: Connection = Connection::open_in_memory().expect("an in-memory SQLite database");
}

/// Builds an `ops` row from `data` (each of the ten columns of
/// `row::COLUMNS` a NULL, an integer, a real, a text that need not be UTF-8 or a
/// blob of any length; when `data` ends after the first seven, the index columns
/// `lamport`, `story` and `key` are those the schema migration fills in from the
/// `bytes` column, so seeds written before they existed stay stored ops), decodes it with the decoder every read uses and checks it:
/// exactly the well-typed rows decode, to exactly their values; every other row is
/// [`StoreErrorKind::Corrupt`], never a panic; a decoded record then passes the
/// checks every store's rows pass ([`event_log_core::fuzz::stored_record`]).
/// Returns whether the row decoded and is trusted.
pub fn row(data: &[u8]) -> bool {
    let mut input = Input { data };
    let mut cols: Vec<Column> = (0..BASE_COLUMNS).map(|_| input.column()).collect();
    if input.data.is_empty() {
        cols.extend(backfilled(&cols[6]));
    } else {
        cols.extend((BASE_COLUMNS..COLUMNS).map(|_| input.column()));
    }
    let sql = (1..=COLUMNS)
        .map(|i| {
            let (flag, value) = (2 * i - 1, 2 * i);
            format!("iif(?{flag}, CAST(?{value} AS TEXT), ?{value})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut params: Vec<Value> = Vec::with_capacity(2 * COLUMNS);
    for c in &cols {
        params.push(Value::Integer(i64::from(c.as_text)));
        params.push(c.value.clone());
    }
    let got = DB.with(|db| {
        let mut stmt = db
            .prepare_cached(&format!("SELECT {sql}"))
            .expect("the row statement prepares");
        stmt.query_row(rusqlite::params_from_iter(params.iter()), |r| {
            Ok(row::decode(r))
        })
        .expect("a constant SELECT returns one row")
    });
    match (got, expected(&cols)) {
        (Ok(decoded), Some(want)) => {
            assert_eq!(decoded, want, "the row decoded to other values");
            event_log_core::fuzz::stored_record(&decoded.1)
        }
        (Err(e), None) => {
            assert_eq!(e.kind(), StoreErrorKind::Corrupt, "{e}");
            false
        }
        (Ok(decoded), None) => panic!("a damaged row decoded: {decoded:?}"),
        (Err(e), Some(_)) => panic!("a well-typed row was refused: {e}"),
    }
}

/// The fuzz input `row` reads as the row of `rec` at `position` (for seed corpora).
pub fn row_input(position: u64, rec: &OpRecord) -> Vec<u8> {
    let mut out = Vec::new();
    let int = |out: &mut Vec<u8>, v: u64| {
        out.push(2);
        out.extend_from_slice(&v.to_be_bytes());
    };
    let blob = |out: &mut Vec<u8>, tag: u8, b: &[u8]| {
        out.push(tag);
        out.extend_from_slice(&(b.len() as u16).to_be_bytes());
        out.extend_from_slice(b);
    };
    int(&mut out, position);
    blob(&mut out, 4, rec.id.as_bytes());
    blob(&mut out, 4, rec.author.as_bytes());
    int(&mut out, rec.seq);
    int(&mut out, u64::from(rec.evidence));
    blob(&mut out, 5, rec.payload.as_bytes());
    blob(&mut out, 4, &rec.bytes);
    int(&mut out, rec.lamport);
    for text in [&rec.story, &rec.key] {
        match text {
            Some(t) => blob(&mut out, 5, t.as_bytes()),
            None => out.push(0),
        }
    }
    out
}

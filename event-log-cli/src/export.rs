//! `evlog export`: every op of a store as JSON lines, in the store's append order
//! (which is causal: every op comes after the ops it depends on), resumable.
//!
//! One line per op:
//!
//! ```json
//! {"position":17,"id":"…64 hex…","author":"…64 hex…","seq":3,"evidence":false,"payload":"{\"Transition\":…}","bytes":"…hex…"}
//! ```
//!
//! `bytes` is the op's canonical signed encoding: what `evlog import` verifies and
//! stores. `payload`, `author`, `seq` and `id` are there to be read (`jq`); import
//! checks that each matches `bytes` and refuses an edited line. `position` is the
//! op's place in the exporting store, for resuming: `--after POSITION`, or
//! `--out FILE --resume`, which continues after the last complete line of FILE.
//! The store is opened read-only and read page by page: memory does not grow with
//! the store.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use event_log::{OpRecord, OpStore, Position};
use serde::{Deserialize, Serialize};

use crate::exit::CmdResult;
use crate::progress::bar;

/// Arguments of `evlog export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Store URL: sqlite://PATH, redb://PATH, postgres://… (opened read-only)
    #[arg(long, env = "EVLOG_STORE", hide_env_values = true)]
    store: String,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the export in `--out` after its last complete line (a torn last
    /// line, from an interrupted export, is cut off first).
    #[arg(long, requires = "out", conflicts_with = "after")]
    resume: bool,
    /// Start after this store position (the `position` of the last line exported).
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// Ops read per page.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    page: u64,
}

impl Args {
    /// The store URLs given.
    pub fn store_urls(&self) -> Vec<&str> {
        vec![self.store.as_str()]
    }
}

/// One exported op.
#[derive(Debug, Serialize, Deserialize)]
pub struct Line {
    /// The op's position in the exporting store.
    pub position: u64,
    /// The op id, hex.
    pub id: event_log::OpId,
    /// The author (sled), hex.
    pub author: event_log::AuthorId,
    /// The author's seq.
    pub seq: u64,
    /// Whether the exporting store kept it as equivocation evidence.
    pub evidence: bool,
    /// The payload, the JSON text as stored.
    pub payload: String,
    /// The canonical signed encoding, hex.
    pub bytes: String,
}

impl Line {
    fn of(position: Position, r: OpRecord) -> Self {
        Line {
            position: position.0,
            id: r.id,
            author: r.author,
            seq: r.seq,
            evidence: r.evidence,
            payload: r.payload,
            bytes: hex::encode(r.bytes),
        }
    }
}

/// The position after which a resumed export continues: that of the last complete
/// line of `path`, whose torn tail (bytes after the last newline) is cut off.
fn resume_point(path: &Path) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("cannot open {}: {e}", path.display()).into()),
    };
    let mut reader = BufReader::new(&mut file);
    let (mut complete, mut last, mut number) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        number += 1;
        let line: Line = serde_json::from_slice(&buf).map_err(|e| {
            format!(
                "{} line {number} is not an evlog export line ({e}): not resuming",
                path.display()
            )
        })?;
        complete += n as u64;
        last = line.position;
    }
    drop(reader);
    if file.metadata()?.len() > complete {
        eprintln!(
            "evlog export: cutting a torn last line off {} (an interrupted export)",
            path.display()
        );
        file.set_len(complete)?;
    }
    file.seek(SeekFrom::End(0))?;
    Ok(last)
}

/// Runs `evlog export`.
pub async fn run(a: Args) -> CmdResult {
    let after = if a.resume {
        let path = a.out.as_deref().unwrap_or(Path::new(""));
        resume_point(path)?
    } else {
        a.after
    };
    let store = event_log::open_store_read_only(&a.store).await?;
    let mut sink: Box<dyn Write> = match &a.out {
        Some(path) => Box::new(BufWriter::new(
            OpenOptions::new()
                .create(true)
                .append(a.resume)
                .write(true)
                .truncate(!a.resume)
                .open(path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let pb = bar(Some(store.count().await?), "exporting");
    let mut cursor = Position(after);
    let mut written = 0u64;
    let page = usize::try_from(a.page).unwrap_or(usize::MAX);
    loop {
        let rows = store.load(cursor, page).await?;
        let Some((last, _)) = rows.last() else { break };
        cursor = *last;
        let n = rows.len() as u64;
        for (position, record) in rows {
            let mut text = serde_json::to_string(&Line::of(position, record))?;
            text.push('\n');
            // A closed pipe (`evlog export | head`) is OutputError::Closed: a quiet end.
            sink.write_all(text.as_bytes())
                .map_err(crate::out::OutputError::from)?;
            written += 1;
        }
        pb.inc(n);
    }
    sink.flush().map_err(crate::out::OutputError::from)?;
    drop(sink);
    pb.finish_and_clear();
    store.close().await?;
    eprintln!(
        "evlog export: {written} op(s) after position {after}; resume with --after {}",
        cursor.0
    );
    Ok(ExitCode::SUCCESS)
}

//! The last line of defence against printing a password: every error line and log
//! line `evlog` writes to stderr has the secrets of the store URLs it was given
//! replaced by `***`.
//!
//! `evlog` itself only ever prints URLs through [`event_log::redact_url`]; this
//! catches a secret that a store crate or a driver puts into a message of its own.

use std::io::Write;
use std::sync::OnceLock;

/// Secrets shorter than this are not scrubbed from free text: replacing every `x`
/// of a message would garble it (the URLs themselves are still redacted).
const MIN_LEN: usize = 3;

static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

/// Remembers the secrets of `urls` (call once, before anything is printed).
pub fn remember<'a>(urls: impl IntoIterator<Item = &'a str>) {
    let mut all: Vec<String> = urls
        .into_iter()
        .flat_map(event_log::redact::secrets)
        .filter(|s| s.len() >= MIN_LEN)
        .collect();
    // Longest first, so a secret containing another is replaced whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all.dedup();
    let _ = SECRETS.set(all);
}

/// `text` with every remembered secret replaced by `***`.
pub fn scrub(text: &str) -> String {
    let mut out = text.to_owned();
    for s in SECRETS.get().into_iter().flatten() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// A `tracing` writer to stderr that scrubs each log line before writing it.
#[derive(Default)]
pub struct Stderr {
    line: Vec<u8>,
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            let text = scrub(&String::from_utf8_lossy(&self.line));
            self.line.clear();
            std::io::stderr().write_all(text.as_bytes())?;
        }
        Ok(())
    }
}

impl Drop for Stderr {
    fn drop(&mut self) {
        // Each event is written through its own writer, which is dropped after it.
        let _ = self.flush();
    }
}

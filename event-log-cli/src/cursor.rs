//! Parsing a `--since` cursor: `SLED=N[,SLED=N…]`, where SLED is a 64-hex sled id (or
//! a unique prefix of one known to the log) and N the next event id wanted.

use event_log::{SledId, VersionVector};

/// Parses a cursor against the sleds a log knows.
pub fn parse(text: &str, known: &[SledId]) -> Result<VersionVector, String> {
    let mut vv = VersionVector::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (sled, n) = part
            .split_once('=')
            .ok_or_else(|| format!("cursor part `{part}` is not SLED=N"))?;
        let n: u64 = n
            .parse()
            .map_err(|_| format!("cursor part `{part}`: `{n}` is not a number"))?;
        vv.set(resolve(sled, known)?, n);
    }
    Ok(vv)
}

/// A sled id from 64 hex chars, or from a unique prefix of a known one.
pub fn resolve(text: &str, known: &[SledId]) -> Result<SledId, String> {
    if let Ok(id) = text.parse::<SledId>() {
        return Ok(id);
    }
    let t = text.to_ascii_lowercase();
    let hits: Vec<&SledId> = known
        .iter()
        .filter(|s| s.to_hex().starts_with(&t))
        .collect();
    match hits.as_slice() {
        [one] => Ok(**one),
        [] => Err(format!("no sled id starts with `{text}`")),
        _ => Err(format!("sled prefix `{text}` is ambiguous")),
    }
}

/// Formats a cursor the way [`parse`] reads it.
pub fn format(vv: &VersionVector) -> String {
    vv.iter()
        .map(|(s, n)| format!("{s}={n}"))
        .collect::<Vec<_>>()
        .join(",")
}

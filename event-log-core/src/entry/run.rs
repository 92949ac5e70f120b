//! [`RunId`]: names one run of a publisher's stream.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Identifies one run of a publisher's stream (one subscriber run). Logical ids
/// restart at 0 in each run, so a gap names its run to stay unambiguous across
/// restarts.
///
/// Serialised as 16 lowercase hex characters (a JSON number would lose precision in
/// readers that parse numbers as doubles); a number is accepted when reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub u64);

impl Serialize for RunId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RunId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a run id: 16 hex characters or an unsigned integer")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RunId, E> {
                Ok(RunId(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RunId, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl std::str::FromStr for RunId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "bad run id {s:?}: expected up to 16 hex characters"
            ));
        }
        u64::from_str_radix(s, 16)
            .map(RunId)
            .map_err(|e| format!("bad run id {s:?}: {e}"))
    }
}

impl RunId {
    /// A fresh random run id.
    pub fn random() -> Self {
        use rand_core::RngCore;
        RunId(rand_core::OsRng.next_u64())
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

//! [`RawOp`]: the wire form of an op, whose claimed id the receiver checks.

use serde::{Deserialize, Serialize};

use super::signed::SignedOp;
use crate::ids::OpId;
use crate::limits::Limits;
use crate::rejected::{DecodeError, Rejected};

/// An op as it travels between sleds: the id the sender claims, and the bytes.
///
/// The receiver never trusts the id: [`RawOp::decode`] recomputes it and refuses a
/// mismatch with [`Rejected::BadId`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawOp {
    /// The id the sender claims.
    pub id: OpId,
    /// The canonical signed encoding.
    #[serde(with = "hex_bytes")]
    pub bytes: Vec<u8>,
}

impl RawOp {
    /// Decodes the bytes and checks the claimed id against the recomputed one.
    pub fn decode(&self, limits: &Limits) -> Result<SignedOp, Rejected> {
        Self::decode_claimed(self.id, &self.bytes, limits)
    }

    /// [`RawOp::decode`] for a claimed id and borrowed bytes (no copy of a `RawOp`).
    pub fn decode_claimed(
        claimed: OpId,
        bytes: &[u8],
        limits: &Limits,
    ) -> Result<SignedOp, Rejected> {
        let op = SignedOp::from_bytes(bytes, limits).map_err(|error| match error {
            DecodeError::TooLarge { .. } => Rejected::OverLimits { claimed, error },
            _ => Rejected::Malformed { claimed, error },
        })?;
        if op.id() != claimed {
            return Err(Rejected::BadId {
                claimed,
                actual: op.id(),
            });
        }
        Ok(op)
    }
}

impl SignedOp {
    /// The wire form: claimed id and bytes.
    pub fn to_raw(&self) -> RawOp {
        RawOp {
            id: self.id(),
            bytes: self.bytes().to_vec(),
        }
    }
}

impl From<&SignedOp> for RawOp {
    fn from(op: &SignedOp) -> Self {
        op.to_raw()
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

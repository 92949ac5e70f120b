//! Unit tests of the mark file's format.

use super::format::{crc32, decode, encode};

#[test]
fn crc32_of_the_check_string() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn encode_decode_round_trip() {
    for mark in [&b""[..], b"x", &[0u8; 105]] {
        assert_eq!(decode(encode(mark).as_bytes()).unwrap(), mark);
    }
}

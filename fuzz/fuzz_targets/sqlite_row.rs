//! `sqlite_row`: runs [`event_log_sqlite::fuzz::row`] (the same body `cargo test` runs as a proptest property).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = event_log_sqlite::fuzz::row(data);
});

//! BIMI record and its HTTPS URLs: never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use maildrift::checks::bimi::{BimiRecord, HttpsUrl, is_bimi};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = is_bimi(text);
    let _ = BimiRecord::parse(text);
    let _ = HttpsUrl::parse(text);
});

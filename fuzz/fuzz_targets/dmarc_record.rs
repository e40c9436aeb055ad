//! DMARC record parser (RFC 7489 §6.3): never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use maildrift::checks::dmarc::{DmarcPolicy, DmarcRecord};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = DmarcRecord::parse(text);
    let _ = DmarcPolicy::parse(text);
});

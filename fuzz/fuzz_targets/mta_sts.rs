//! MTA-STS TXT record and policy file parsers (RFC 8461 §3.1, §3.2): never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use maildrift::checks::mta_sts::{StsPolicy, StsRecord};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = StsRecord::parse(text);
    let _ = StsPolicy::parse(text);
});

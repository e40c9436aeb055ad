//! SPF record parser (RFC 7208 §4.6, §12): never panics; a parsed record's text parses again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use maildrift::checks::spf::{Qualifier, SpfRecord};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(record) = SpfRecord::parse(text) {
        let _ = format!("{record:?}");
    }
    let _ = Qualifier::parse_all_term(text);
});

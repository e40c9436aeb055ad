//! DKIM key record parser (RFC 6376 §3.6.1), key size included: never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use maildrift::checks::dkim::DkimKey;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = DkimKey::parse(text) {
        let _ = format!("{key:?}");
    }
});

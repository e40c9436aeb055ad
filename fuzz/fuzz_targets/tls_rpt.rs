//! TLS-RPT record parser (RFC 8460 §3): never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = maildrift::checks::tls_rpt::parse(text);
});

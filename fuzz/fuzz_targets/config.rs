//! The config loader: any file gives a config or errors with positions, never a panic, and
//! never hangs (aliases, deep nesting).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = maildrift::config::Config::parse(text, Path::new("fuzz.yml")) {
        let _ = error.to_string();
    }
});

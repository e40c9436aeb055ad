//! The `--web.config.file` loader: any file gives settings or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One file per fuzzing process, rewritten for each input (the loader reads a path).
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("maildrift-fuzz-web-{}.yml", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(path(), data).unwrap();
    if let Err(error) = maildrift::WebConfig::load(path()) {
        let _ = error.to_string();
    }
});

//! Any bytes as a pipeline file: loading and rendering the diagnostics must never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(error) = shipit::config::load_str(Path::new("fuzz/pipeline.toml"), text.to_owned(), shipit::plan::kinds::BUILTINS) {
            let _ = shipit::commands::render_config_error(&error, false);
        }
    }
});

//! `Config::parse` on arbitrary UTF-8: never panics; an error list is never empty, and each
//! error names the file and a line and column that exist in the text, so `FILE:LINE:COL`
//! always points somewhere real.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mtls_gateway::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    match Config::parse(text, path) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an empty error list");
            let lines: Vec<&str> = text.split('\n').collect();
            for error in &errors.0 {
                assert_eq!(error.file, path);
                if let Some(at) = error.at {
                    assert!(
                        at.line >= 1 && at.line <= lines.len(),
                        "{error}: no such line"
                    );
                    let width = lines[at.line - 1].len();
                    assert!(
                        at.col >= 1 && at.col <= width + 1,
                        "{error}: no such column"
                    );
                }
            }
            let _ = errors.to_string();
        }
    }
});

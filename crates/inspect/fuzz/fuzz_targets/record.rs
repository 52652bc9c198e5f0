//! `parse_record` on arbitrary bytes: never panics, never claims more than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_inspect::{ParseError, parse_record};

fuzz_target!(|data: &[u8]| {
    match parse_record(data) {
        Ok((record, used)) => assert!(used <= data.len() && record.fragment.len() + 5 == used),
        Err(ParseError::Incomplete { needed }) => assert!(needed > 0),
        Err(_) => {}
    }
});

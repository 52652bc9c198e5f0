//! `parse_handshake` on arbitrary bytes; the first byte picks what the context knows
//! (TLS 1.2 or 1.3 shapes, and which key exchange), so every message decoder is reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_inspect::{HandshakeContext, ParseError, parse_handshake};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let mut ctx = HandshakeContext::default();
    ctx.version = [None, Some(0x0303), Some(0x0304), Some(0x0301)][usize::from(selector & 3)];
    ctx.cipher_suite = [None, Some(0x1301), Some(0xc02b), Some(0x009c), Some(0x009e)]
        .get(usize::from(selector >> 2))
        .copied()
        .flatten();
    match parse_handshake(input, &ctx) {
        Ok((_, used)) => assert!(used <= input.len()),
        Err(ParseError::Incomplete { needed }) => assert!(needed > 0),
        Err(_) => {}
    }
});

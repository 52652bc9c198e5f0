//! The whole dissector on arbitrary conversations: the input is a sequence of chunks
//! `[direction byte][length u16 big-endian][bytes]`. The key logs of the committed fixtures
//! are loaded, so inputs derived from the fixtures (see ../seed-corpus.sh) reach decryption.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_inspect::{Direction, Dissector, KeyLog};

const KEYLOGS: &[&str] = &[
    include_str!("../../tests/fixtures/tls13_mtls.keys"),
    include_str!("../../tests/fixtures/tls13_hrr_mtls.keys"),
    include_str!("../../tests/fixtures/tls12_aes128gcm_mtls.keys"),
    include_str!("../../tests/fixtures/tls12_chacha_mtls.keys"),
];

fuzz_target!(|data: &[u8]| {
    let mut keylog = KeyLog::empty();
    for text in KEYLOGS {
        if let Ok(log) = KeyLog::parse(text) {
            keylog.extend(log);
        }
    }
    let mut dissector = Dissector::new(keylog);
    let mut rest = data;
    while let Some((&[dir, hi, lo], tail)) = rest.split_first_chunk::<3>() {
        let len = usize::from(u16::from_be_bytes([hi, lo])).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        let direction = if dir & 1 == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        for event in dissector.feed(direction, chunk) {
            // Rendering must not panic either.
            let _ = event.to_string();
        }
        rest = tail;
    }
});

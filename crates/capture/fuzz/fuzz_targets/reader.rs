//! `CaptureReader` on arbitrary bytes, read to the end or the first error: never panics,
//! and every packet it lends decodes (`decode`) without panicking, to a payload inside the
//! packet. The same bytes gzip-compressed must read to the same blocks and the same error
//! (offsets count bytes after decompression), so the gzip path is fuzzed with the plain one.
#![no_main]

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;
use mtls_capture::{Block, CaptureReader, Decoded, decode};

fuzz_target!(|data: &[u8]| {
    let plain = read_all(data);
    // Input that is already gzip would be decompressed once by the reader and then once
    // more here: not the same capture.
    if data.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    if gz.write_all(data).is_err() {
        return;
    }
    let Ok(compressed) = gz.finish() else {
        return;
    };
    assert_eq!(read_all(&compressed), plain, "gzip changed what was read");
});

/// Every block (as Debug text, so packets and key logs compare by content) and the error
/// that ended the capture, if any.
fn read_all(input: &[u8]) -> Vec<String> {
    let mut seen = Vec::new();
    let mut reader = match CaptureReader::new(input) {
        Ok(reader) => reader,
        Err(e) => {
            // Rendering the error must not panic either.
            seen.push(format!("open: {e}"));
            return seen;
        }
    };
    // Each block consumes at least 12 bytes, so this ends; a reader that stopped making
    // progress would show as a libFuzzer timeout.
    loop {
        match reader.next() {
            Ok(Some(block)) => {
                if let Block::Packet(packet) = &block {
                    check_decode(packet.link, &packet.data);
                }
                seen.push(format!("{block:?}"));
            }
            Ok(None) => return seen,
            Err(e) => {
                seen.push(format!("error: {e}"));
                return seen;
            }
        }
    }
}

fn check_decode(link: mtls_capture::LinkType, frame: &[u8]) {
    match decode(link, frame) {
        Ok(Decoded::Tcp(segment)) => {
            let inside = frame.as_ptr_range();
            let payload = segment.payload.as_ptr_range();
            assert!(
                inside.start <= payload.start && payload.end <= inside.end,
                "the payload is not part of the frame"
            );
        }
        Ok(_) => {}
        Err(e) => drop(e.to_string()),
    }
}

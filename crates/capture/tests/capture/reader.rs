//! Capture files built byte by byte: pcap and pcapng, both byte orders, gzip, damage.

use std::io::Write;

use mtls_capture::{Block, CaptureError, CaptureReader, LinkType, Packet};

use crate::util::*;

fn read_all(bytes: &[u8]) -> Result<Vec<Block<'static>>, CaptureError> {
    let mut reader = CaptureReader::new(bytes)?;
    let mut blocks = Vec::new();
    while let Some(block) = reader.next()? {
        blocks.push(block.into_owned());
    }
    Ok(blocks)
}

fn packet(ts_nanos: u64, link: LinkType, data: &[u8]) -> Block<'static> {
    Block::Packet(Packet {
        ts_nanos,
        link,
        data: data.to_vec().into(),
    })
}

#[test]
fn pcap_both_byte_orders_and_resolutions() {
    for big_endian in [false, true] {
        for nanos in [false, true] {
            let file = pcap(big_endian, nanos, 1, &[(10, 5, b"frame one"), (11, 0, b"")]);
            let blocks = read_all(&file).unwrap();
            let unit = if nanos { 1 } else { 1000 };
            assert_eq!(
                blocks,
                vec![
                    packet(10_000_000_000 + 5 * unit, LinkType::Ethernet, b"frame one"),
                    packet(11_000_000_000, LinkType::Ethernet, b""),
                ],
                "big_endian={big_endian} nanos={nanos}"
            );
        }
    }
}

#[test]
fn pcap_link_type_keeps_its_number() {
    let file = pcap(false, false, 276, &[(1, 0, b"x")]);
    assert_eq!(
        read_all(&file).unwrap(),
        vec![packet(1_000_000_000, LinkType::LinuxSll2, b"x")]
    );
    let file = pcap(true, false, 147, &[(1, 0, b"x")]);
    assert_eq!(
        read_all(&file).unwrap(),
        vec![packet(1_000_000_000, LinkType::Other(147), b"x")]
    );
}

#[test]
fn gzip_is_detected_by_its_magic() {
    let file = pcap(false, true, 113, &[(1, 2, b"abc")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&file).unwrap();
    let compressed = gz.finish().unwrap();
    assert_eq!(
        read_all(&compressed).unwrap(),
        vec![packet(1_000_000_002, LinkType::LinuxSll, b"abc")]
    );

    let mut ng = Ng::new(true);
    ng.idb(1, None).epb(0, 7, b"frame");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&ng.bytes).unwrap();
    let compressed = gz.finish().unwrap();
    assert_eq!(
        read_all(&compressed).unwrap(),
        vec![packet(7_000, LinkType::Ethernet, b"frame")]
    );
}

#[test]
fn pcapng_both_byte_orders_interfaces_and_blocks() {
    for big_endian in [false, true] {
        let mut ng = Ng::new(big_endian);
        ng.idb(1, None) // Ethernet, microseconds
            .block(0x0bad_0bad, b"an unknown block is skipped")
            .idb(276, Some(9)) // SLL2, nanoseconds
            .epb(0, 1_500_000, b"eth frame")
            .epb(1, 2_000_000_123, b"sll2 frame")
            .dsb(0x544c_534b, b"CLIENT_RANDOM 00 11\n")
            .dsb(0x5353_4854, b"an SSH secret is not for us")
            .spb(b"simple");
        let blocks = read_all(&ng.bytes).unwrap();
        assert_eq!(
            blocks,
            vec![
                packet(1_500_000_000, LinkType::Ethernet, b"eth frame"),
                packet(2_000_000_123, LinkType::LinuxSll2, b"sll2 frame"),
                Block::KeyLog("CLIENT_RANDOM 00 11\n".into()),
                // A Simple Packet Block has no time: it carries the previous packet's.
                packet(2_000_000_123, LinkType::Ethernet, b"simple"),
            ],
            "big_endian={big_endian}"
        );
    }
}

#[test]
fn pcapng_new_section_switches_byte_order_and_forgets_interfaces() {
    let mut first = Ng::new(false);
    first.idb(1, None).epb(0, 1, b"le");
    let mut second = Ng::new(true);
    second.idb(101, Some(3)).epb(0, 2, b"be");
    let mut file = first.bytes.clone();
    file.extend_from_slice(&second.bytes);
    assert_eq!(
        read_all(&file).unwrap(),
        vec![
            packet(1_000, LinkType::Ethernet, b"le"),
            packet(2_000_000, LinkType::Raw, b"be")
        ]
    );
}

#[test]
fn pcapng_binary_timestamp_resolution() {
    let mut ng = Ng::new(false);
    ng.idb(1, Some(0x80 | 10)).epb(0, 3 * 1024 + 512, b"x"); // 2^-10 s units
    assert_eq!(
        read_all(&ng.bytes).unwrap(),
        vec![packet(3_500_000_000, LinkType::Ethernet, b"x")]
    );
}

#[test]
fn pcapng_packet_on_an_undescribed_interface_is_an_error() {
    let mut ng = Ng::new(false);
    ng.idb(1, None);
    let epb_at = ng.bytes.len() as u64;
    ng.epb(3, 0, b"x");
    let err = read_all(&ng.bytes).unwrap_err();
    assert!(
        matches!(err, CaptureError::Malformed { offset, .. } if offset == epb_at),
        "{err}"
    );
    assert!(err.to_string().contains("interface 3"), "{err}");
}

#[test]
fn truncated_files_name_the_offset() {
    let file = pcap(false, false, 1, &[(1, 0, b"0123456789")]);
    let err = read_all(&file[..file.len() - 3]).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::Truncated {
                offset: 47,
                needed: 10,
                present: 7,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("truncated at byte 47"), "{err}");

    let err = read_all(&file[..30]).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::Truncated {
                offset: 30,
                needed: 16,
                present: 6,
                ..
            }
        ),
        "{err:?}"
    );

    let err = read_all(&file[..10]).unwrap_err();
    assert!(
        matches!(err, CaptureError::Truncated { offset: 10, .. }),
        "{err:?}"
    );

    let mut ng = Ng::new(true);
    let shb_end = ng.bytes.len();
    ng.idb(1, None);
    let idb_end = ng.bytes.len();
    ng.epb(0, 1, b"frame data");
    for cut in 4..ng.bytes.len() {
        if cut == shb_end || cut == idb_end {
            continue; // block boundaries: a clean end
        }
        match read_all(&ng.bytes[..cut]) {
            Err(CaptureError::Truncated { offset, .. }) => assert_eq!(offset, cut as u64),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn absurd_lengths_are_errors_not_allocations() {
    let mut file = pcap(false, false, 1, &[]);
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&0u32.to_le_bytes());
    file.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    file.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    let err = read_all(&file).unwrap_err();
    assert!(
        matches!(err, CaptureError::TooLarge { offset: 24, .. }),
        "{err:?}"
    );

    let mut ng = Ng::new(false);
    let at = ng.bytes.len() as u64;
    ng.bytes.extend_from_slice(&6u32.to_le_bytes());
    ng.bytes.extend_from_slice(&0x8000_0000u32.to_le_bytes());
    let err = read_all(&ng.bytes).unwrap_err();
    assert!(
        matches!(err, CaptureError::TooLarge { offset, .. } if offset == at),
        "{err:?}"
    );

    // Under the limit but far beyond the file: read as it comes, then truncated.
    ng.bytes.truncate(at as usize);
    ng.bytes.extend_from_slice(&6u32.to_le_bytes());
    ng.bytes.extend_from_slice(&0x0100_0000u32.to_le_bytes());
    ng.bytes.extend_from_slice(b"short");
    let end = ng.bytes.len() as u64;
    let err = read_all(&ng.bytes).unwrap_err();
    assert!(
        matches!(err, CaptureError::Truncated { offset, present: 5, .. } if offset == end),
        "{err:?}"
    );
}

#[test]
fn bad_block_lengths_are_malformed() {
    let mut ng = Ng::new(false);
    let at = ng.bytes.len() as u64;
    ng.bytes.extend_from_slice(&6u32.to_le_bytes());
    ng.bytes.extend_from_slice(&13u32.to_le_bytes());
    let err = read_all(&ng.bytes).unwrap_err();
    assert!(
        matches!(err, CaptureError::Malformed { offset, .. } if offset == at),
        "{err:?}"
    );

    let mut ng = Ng::new(false);
    ng.idb(1, None);
    let n = ng.bytes.len();
    ng.bytes[n - 4] ^= 4; // trailing length differs
    assert!(matches!(
        read_all(&ng.bytes),
        Err(CaptureError::Malformed { .. })
    ));
}

#[test]
fn not_a_capture() {
    for input in [&b""[..], b"ab", b"GET / HTTP/1.1\r\n"] {
        let err = CaptureReader::new(input).unwrap_err();
        assert!(matches!(err, CaptureError::NotACapture { .. }), "{err:?}");
    }
}

#[test]
fn random_bytes_never_panic() {
    // A cheap, deterministic fuzz pass over damaged real files.
    let mut ng = Ng::new(false);
    ng.idb(1, Some(9))
        .epb(0, 1, b"frame")
        .dsb(0x544c_534b, b"k\n")
        .spb(b"s");
    let base = ng.bytes;
    let mut state = 0x1234_5678u32;
    for _ in 0..2000 {
        let mut bytes = base.clone();
        for _ in 0..3 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let i = state as usize % bytes.len();
            bytes[i] = (state >> 24) as u8;
        }
        let _ = read_all(&bytes);
    }
}

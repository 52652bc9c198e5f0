//! Nothing panics on random, truncated or corrupted input (the fuzz targets go further).

use mtls_inspect::{
    Close, Conversation, Detail, Direction, Dissector, HandshakeContext, KeyLog, parse_handshake,
    parse_record,
};
use proptest::prelude::*;

use crate::util::{FIXTURES, keylog, reads};

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::ClientToServer),
        Just(Direction::ServerToClient)
    ]
}

fn context() -> impl Strategy<Value = HandshakeContext> {
    (
        prop::option::of(prop_oneof![Just(0x0303u16), Just(0x0304), any::<u16>()]),
        prop::option::of(prop_oneof![
            Just(0x1301u16),
            Just(0xc02b),
            Just(0x009c),
            Just(0x009e),
            any::<u16>()
        ]),
    )
        .prop_map(|(version, cipher_suite)| {
            let mut ctx = HandshakeContext::default();
            ctx.version = version;
            ctx.cipher_suite = cipher_suite;
            ctx
        })
}

proptest! {
    #[test]
    fn record_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok((record, used)) = parse_record(&bytes) {
            prop_assert!(used <= bytes.len());
            prop_assert_eq!(record.fragment.len() + 5, used);
        }
    }

    #[test]
    fn handshake_parser_never_panics(
        msg_type in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..600),
        ctx in context(),
    ) {
        let mut bytes = vec![msg_type];
        bytes.extend_from_slice(&u32::try_from(body.len()).unwrap_or(0).to_be_bytes()[1..]);
        bytes.extend_from_slice(&body);
        if let Ok((_, used)) = parse_handshake(&bytes, &ctx) {
            prop_assert_eq!(used, bytes.len());
        }
        let _ = parse_handshake(&body, &ctx);
    }

    #[test]
    fn dissector_never_panics_on_random_records(
        chunks in prop::collection::vec(
            (direction(), any::<u8>(), prop::collection::vec(any::<u8>(), 0..300)),
            0..12,
        ),
    ) {
        let mut dissector = Dissector::new(KeyLog::empty());
        for (direction, content_type, body) in chunks {
            // Mostly well-framed records of random content, so the parsers behind framing run.
            let mut record = vec![20 + content_type % 5, 3, 3];
            record.extend_from_slice(&u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
            record.extend_from_slice(&body);
            let _ = dissector.feed(direction, &record);
        }
    }

    /// Real handshakes, cut short, split anywhere and with a byte changed: the dissector
    /// runs decryption and every message parser on nearly-valid input.
    #[test]
    fn dissector_survives_damaged_fixtures(
        fixture in 0..FIXTURES.len(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        xor in 1..=255u8,
        split in any::<prop::sample::Index>(),
    ) {
        let name = FIXTURES[fixture];
        let mut reads = reads(name);
        let total: usize = reads.iter().map(|(_, b)| b.len()).sum();
        let (flip_at, mut cut_at) = (flip.index(total), cut.index(total + 1));
        let mut seen = 0;
        let mut dissector = Dissector::new(keylog(name));
        // The summary reads the same damaged events, so it is checked here too, and so is
        // the brief rendering `mtls trace` uses without -V: it must sum up the same.
        let mut conversation = Conversation::new();
        let mut brief = Dissector::new(keylog(name)).with_detail(Detail::Summary);
        let mut brief_conversation = Conversation::new();
        for (direction, bytes) in &mut reads {
            if let Some(byte) = flip_at.checked_sub(seen).and_then(|i| bytes.get_mut(i)) {
                *byte ^= xor;
            }
            seen += bytes.len();
            let take = cut_at.min(bytes.len());
            cut_at -= take;
            let (a, b) = bytes[..take].split_at(split.index(take + 1));
            for part in [a, b] {
                for event in dissector.feed(*direction, part) {
                    conversation.observe(&event);
                }
                for event in brief.feed(*direction, part) {
                    brief_conversation.observe_owned(event);
                }
            }
        }
        let close = Close::Reset { by: Direction::ServerToClient };
        conversation.tcp_closed(close);
        brief_conversation.tcp_closed(close);
        let summary = conversation.summary();
        let _ = summary.to_string();
        prop_assert_eq!(summary, brief_conversation.summary());
    }
}

//! The whole of `mtls trace` on arbitrary packets: the input, after a selector byte, is the
//! body of a pcap file (records) behind a valid header, read by `CaptureReader`, decoded,
//! reassembled and dissected per connection as crates/cli/src/trace.rs does, each
//! connection summed up by a `Conversation` when it closes. The selector picks the link
//! type; the key log of the committed capture is loaded, so inputs made from that capture
//! (see ../seed-corpus.sh) reach TLS 1.3 decryption.
//!
//! Checked: nothing panics, and each connection's summary is the same whether its
//! handshake messages were rendered in full (`mtls trace -V`) or only as far as the summary
//! reads them (`Detail::Summary`, the default), and renders as text and JSON.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use mtls_capture::{Block, CaptureReader, Close, Decoded, Event, FlowId, Reassembler, decode};
use mtls_inspect::conversation::Close as Ending;
use mtls_inspect::{Conversation, Detail, Direction, Dissector, KeyLog};

/// LINKTYPE_ numbers the selector byte picks from: Ethernet (what tcpdump writes on lo),
/// raw IP, Linux cooked v1 and v2, BSD loopback.
const LINKS: [u32; 5] = [1, 101, 113, 276, 0];

static KEYLOG: LazyLock<Arc<KeyLog>> = LazyLock::new(|| {
    let text = include_str!("../../tests/data/mtls-handshakes.keys");
    Arc::new(KeyLog::parse(text).unwrap_or_else(|_| KeyLog::empty()))
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(selector) % LINKS.len()];
    // Little-endian pcap, microseconds: magic, version 2.4, zone, accuracy, snaplen, link.
    let mut file = Vec::with_capacity(24 + body.len());
    for field in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, link] {
        file.extend_from_slice(&field.to_le_bytes());
    }
    file.extend_from_slice(body);

    let Ok(mut reader) = CaptureReader::new(&file[..]) else {
        panic!("a valid pcap header was refused");
    };
    let mut reassembler = Reassembler::new();
    let mut flows = HashMap::new();
    while let Ok(Some(block)) = reader.next() {
        let Block::Packet(packet) = block else {
            continue;
        };
        let Ok(Decoded::Tcp(segment)) = decode(packet.link, &packet.data) else {
            continue;
        };
        let mut events = Vec::new();
        reassembler.feed(packet.ts_nanos, &segment, &mut events);
        for event in events {
            handle(&mut flows, event);
        }
    }
    let mut events = Vec::new();
    reassembler.finish(&mut events);
    for event in events {
        handle(&mut flows, event);
    }
    assert!(flows.is_empty(), "a connection was never closed");
});

/// One connection, dissected twice: in full and as `mtls trace` does without -V.
struct Flow {
    /// Whether the client's first bytes were a TLS record; `None` before any.
    tls: Option<bool>,
    full: (Dissector, Conversation),
    brief: (Dissector, Conversation),
}

fn handle(flows: &mut HashMap<FlowId, Flow>, event: Event<'_>) {
    match event {
        Event::Opened { flow, .. } => {
            let dissector = |detail| Dissector::new(Arc::clone(&KEYLOG)).with_detail(detail);
            flows.insert(
                flow,
                Flow {
                    tls: None,
                    full: (dissector(Detail::Full), Conversation::new()),
                    brief: (dissector(Detail::Summary), Conversation::new()),
                },
            );
        }
        Event::Data {
            flow, dir, bytes, ..
        } => {
            let Some(f) = flows.get_mut(&flow) else {
                return;
            };
            let direction = direction(dir);
            if f.tls.is_none() && direction == Direction::ClientToServer {
                f.tls = Some(bytes.first() == Some(&0x16));
            }
            if f.tls == Some(false) {
                return;
            }
            for (dissector, conversation) in [&mut f.full, &mut f.brief] {
                for event in dissector.feed(direction, &bytes) {
                    // The -V trace renders each event.
                    drop(event.to_string());
                    conversation.observe_owned(event);
                }
            }
        }
        Event::Fin { flow, dir, .. } => {
            if let Some(f) = flows.get_mut(&flow) {
                f.full.1.tcp_fin(direction(dir));
                f.brief.1.tcp_fin(direction(dir));
            }
        }
        Event::Closed {
            flow,
            how,
            first_fin,
            ..
        } => {
            let Some(mut f) = flows.remove(&flow) else {
                panic!("{flow:?} closed but never opened");
            };
            let ending = match (how, first_fin) {
                (Close::Reset { by }, _) => Ending::Reset { by: direction(by) },
                (Close::Fin, Some(by)) => Ending::Fin { by: direction(by) },
                _ => Ending::EndOfCapture,
            };
            f.full.1.tcp_closed(ending);
            f.brief.1.tcp_closed(ending);
            let summary = f.full.1.summary();
            assert_eq!(
                summary,
                f.brief.1.summary(),
                "the brief rendering sums up differently"
            );
            drop(summary.to_string());
            drop(serde_json::to_string(&summary));
        }
        _ => {}
    }
}

fn direction(way: mtls_capture::Direction) -> Direction {
    match way {
        mtls_capture::Direction::ClientToServer => Direction::ClientToServer,
        mtls_capture::Direction::ServerToClient => Direction::ServerToClient,
    }
}

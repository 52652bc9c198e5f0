//! Property tests: two streams cut, reordered, duplicated and thinned come back whole, or
//! with every lost byte reported as a gap, and never with a wrong byte.

use mtls_capture::{Close, Direction, Event, FlowId, Limits, Reassembler, Segment, TcpFlags};
use proptest::prelude::*;

use crate::reassembly::stream;
use crate::util::*;

const C: &str = "192.0.2.1:51000";
const S: &str = "192.0.2.2:8443";

/// A tiny deterministic generator: proptest picks the seed, this spends it.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// One segment to send: direction (0 client, 1 server), stream offset, length, FIN.
#[derive(Debug, Clone, Copy)]
struct Piece {
    dir: usize,
    at: usize,
    len: usize,
    fin: bool,
}

fn pieces(dir: usize, total: usize, rng: &mut Rng) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < total {
        let len = (1 + rng.below(400)).min(total - at);
        out.push(Piece {
            dir,
            at,
            len,
            fin: false,
        });
        at += len;
    }
    // Retransmissions, cut differently from the originals.
    for _ in 0..rng.below(6) {
        if total > 0 {
            let start = rng.below(total);
            let len = 1 + rng.below(total - start);
            out.push(Piece {
                dir,
                at: start,
                len,
                fin: false,
            });
        }
    }
    out.push(Piece {
        dir,
        at: total,
        len: 0,
        fin: true,
    });
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn reassembly_is_exact_or_says_where_it_is_blind(
        client in proptest::collection::vec(any::<u8>(), 0..3000),
        server in proptest::collection::vec(any::<u8>(), 0..3000),
        isn_c in any::<u32>(),
        isn_s in prop_oneof![any::<u32>(), Just(u32::MAX - 10)],
        seed in 1u64..,
        drop_eighths in prop_oneof![Just(0usize), 1usize..5],
    ) {
        let mut rng = Rng(seed);
        let data = [&client, &server];
        let isn = [isn_c, isn_s];
        let addrs = [(addr(C), addr(S)), (addr(S), addr(C))];
        let mut all = pieces(0, client.len(), &mut rng);
        all.extend(pieces(1, server.len(), &mut rng));
        for i in (1..all.len()).rev() {
            all.swap(i, rng.below(i + 1));
        }
        // FINs are never dropped, so the end of each stream is known.
        all.retain(|p| p.fin || drop_eighths == 0 || rng.below(8) >= drop_eighths);

        let mut covered = [vec![false; client.len()], vec![false; server.len()]];
        for p in &all {
            covered[p.dir][p.at..p.at + p.len].fill(true);
        }

        let mut r = Reassembler::new();
        let mut events = Vec::new();
        r.feed(1, &seg(C, S, isn_c, SYN, b""), &mut events);
        r.feed(2, &seg(S, C, isn_s, SYN | ACK, b""), &mut events);
        for (i, p) in all.iter().enumerate() {
            let segment = Segment {
                src: addrs[p.dir].0,
                dst: addrs[p.dir].1,
                seq: isn[p.dir].wrapping_add(1).wrapping_add(p.at as u32),
                ack: 0,
                flags: TcpFlags { ack: true, fin: p.fin, ..TcpFlags::default() },
                payload: &data[p.dir][p.at..p.at + p.len],
            };
            r.feed(3 + i as u64, &segment, &mut events);
        }
        r.finish(&mut events);

        for (dir, direction) in [Direction::ClientToServer, Direction::ServerToClient].into_iter().enumerate() {
            let want: Vec<Option<u8>> = data[dir]
                .iter()
                .zip(&covered[dir])
                .map(|(b, seen)| seen.then_some(*b))
                .collect();
            prop_assert_eq!(stream(&events, FlowId(0), direction), want);
        }
        let complete = covered.iter().all(|c| c.iter().all(|seen| *seen));
        let closes: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::Closed { .. })).collect();
        prop_assert_eq!(closes.len(), 1);
        let how = if complete { Close::Fin } else { Close::EndOfCapture };
        prop_assert!(matches!(closes[0], Event::Closed { how: h, .. } if *h == how), "{:?}", closes);
        prop_assert!(matches!(events[0], Event::Opened { .. }), "first event {:?}", events[0]);
    }

    #[test]
    fn arbitrary_segments_never_panic_and_streams_stay_contiguous(
        segments in proptest::collection::vec(
            (0usize..4, any::<u32>(), 0u8..32, proptest::collection::vec(any::<u8>(), 0..64)),
            0..200,
        ),
        seq_base in any::<u32>(),
    ) {
        let endpoints = ["10.1.0.1:1000", "10.1.0.2:443", "10.1.0.3:2000", "10.1.0.2:443"];
        let mut r = Reassembler::with_limits(Limits { max_buffered: 256, max_flows: 2, closed_memory: 2 });
        let mut events = Vec::new();
        for (i, (who, seq, flags, payload)) in segments.iter().enumerate() {
            let (src, dst) = match who {
                0 => (endpoints[0], endpoints[1]),
                1 => (endpoints[1], endpoints[0]),
                2 => (endpoints[2], endpoints[3]),
                _ => (endpoints[3], endpoints[2]),
            };
            // Keep sequence numbers near each other so data actually lands, and
            // acknowledgments near them as in a real capture.
            let segment = Segment {
                ack: seq_base.wrapping_add(seq.rotate_left(16) % 512),
                ..seg(src, dst, seq_base.wrapping_add(seq % 512), *flags | ACK, payload)
            };
            r.feed(i as u64, &segment, &mut events);
        }
        r.finish(&mut events);
        let flows: Vec<FlowId> = events.iter().filter_map(|e| match e {
            Event::Opened { flow, .. } => Some(*flow),
            _ => None,
        }).collect();
        for flow in flows {
            for dir in [Direction::ClientToServer, Direction::ServerToClient] {
                let _ = stream(&events, flow, dir); // asserts contiguity
            }
            let closed = events.iter().filter(|e| matches!(e, Event::Closed { flow: f, .. } if *f == flow)).count();
            prop_assert_eq!(closed, 1);
        }
        prop_assert_eq!(r.open_flows(), 0);
    }
}

//! Reassembly cases one by one: order, loss, duplicates, starts and ends.

use mtls_capture::{ClientRule, Close, Direction, Event, FlowId, Limits, Reassembler, Segment};

use crate::util::*;

const C: &str = "10.0.0.1:50000";
const S: &str = "10.0.0.2:443";

/// Feed `(ts, segment)` in order, then finish.
pub fn run<'a>(limits: Limits, segments: &[(u64, Segment<'a>)]) -> Vec<Event<'a>> {
    let mut r = Reassembler::with_limits(limits);
    let mut events = Vec::new();
    for (ts, segment) in segments {
        r.feed(*ts, segment, &mut events);
    }
    r.finish(&mut events);
    events
}

/// A direction's bytes (gaps as `None`), checking events follow each other without holes.
pub fn stream(events: &[Event], flow: FlowId, want: Direction) -> Vec<Option<u8>> {
    let mut out = Vec::new();
    for event in events {
        match event {
            Event::Data {
                flow: f,
                dir,
                bytes,
                ..
            } if *f == flow && *dir == want => {
                out.extend(bytes.iter().map(|b| Some(*b)));
            }
            Event::Gap {
                flow: f,
                dir,
                at,
                missing,
            } if *f == flow && *dir == want => {
                assert_eq!(*at, out.len() as u64, "a gap starts where the stream is");
                assert!(*missing > 0);
                out.extend(std::iter::repeat_n(None, *missing as usize));
            }
            _ => {}
        }
    }
    out
}

fn with_ack(segment: Segment<'_>, ack: u32) -> Segment<'_> {
    Segment { ack, ..segment }
}

fn bytes(s: &[u8]) -> Vec<Option<u8>> {
    s.iter().map(|b| Some(*b)).collect()
}

fn handshake(isn_c: u32, isn_s: u32) -> Vec<(u64, Segment<'static>)> {
    vec![
        (1, seg(C, S, isn_c, SYN, b"")),
        (2, seg(S, C, isn_s, SYN | ACK, b"")),
        (3, seg(C, S, isn_c.wrapping_add(1), ACK, b"")),
    ]
}

#[test]
fn a_clean_connection() {
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(C, S, 101, ACK, b"hello ")),
        (5, seg(C, S, 107, ACK, b"server")),
        (6, seg(S, C, 9001, ACK, b"hi")),
        (7, seg(C, S, 113, FIN | ACK, b"")),
        (8, seg(S, C, 9003, FIN | ACK, b"")),
        (9, seg(C, S, 114, ACK, b"")), // the last ACK comes after the flow is gone
    ]);
    let events = run(Limits::default(), &segs);
    assert_eq!(
        events[0],
        Event::Opened {
            flow: FlowId(0),
            client: addr(C),
            server: addr(S),
            client_rule: ClientRule::Syn,
            first_ts: 1,
            syn_ts: Some(1),
            syn_ack_ts: Some(2),
        }
    );
    assert_eq!(
        stream(&events, FlowId(0), Direction::ClientToServer),
        bytes(b"hello server")
    );
    assert_eq!(
        stream(&events, FlowId(0), Direction::ServerToClient),
        bytes(b"hi")
    );
    assert_eq!(
        events.last(),
        Some(&Event::Closed {
            flow: FlowId(0),
            how: Close::Fin,
            ts_nanos: 8,
            first_fin: Some(Direction::ClientToServer),
        })
    );
    // Each FIN in capture order, after the bytes before it.
    let fins: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Fin { dir, ts_nanos, .. } => Some((*dir, *ts_nanos)),
            _ => None,
        })
        .collect();
    assert_eq!(
        fins,
        [
            (Direction::ClientToServer, 7),
            (Direction::ServerToClient, 8)
        ]
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Opened { .. }))
            .count(),
        1
    );
}

#[test]
fn out_of_order_segments_are_put_back_in_order() {
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(C, S, 113, ACK, b"!")),
        (5, seg(C, S, 107, ACK, b"server")),
        (6, seg(C, S, 101, ACK, b"hello ")),
    ]);
    let events = run(Limits::default(), &segs);
    assert_eq!(
        stream(&events, FlowId(0), Direction::ClientToServer),
        bytes(b"hello server!")
    );
    // Everything became deliverable with the segment at ts 6, in one Data event.
    let data: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Data { .. }))
        .collect();
    assert_eq!(data.len(), 1);
    assert!(matches!(data[0], Event::Data { ts_nanos: 6, .. }));
    assert!(matches!(
        events.last(),
        Some(Event::Closed {
            how: Close::EndOfCapture,
            ..
        })
    ));
}

#[test]
fn retransmissions_and_overlaps_keep_the_first_copy() {
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(C, S, 101, ACK, b"abcd")),
        (5, seg(C, S, 101, ACK, b"XXXX")), // retransmission, different bytes
        (6, seg(C, S, 109, ACK, b"ijkl")), // ahead: buffered
        (7, seg(C, S, 107, ACK, b"YYYYZZ")), // overlaps the buffered piece
        (8, seg(C, S, 103, ACK, b"QQef")), // overlaps delivered bytes and fills the hole
        (9, seg(C, S, 105, ACK, b"RRRRRRRRmn")), // everything up to "mn" is known
    ]);
    let events = run(Limits::default(), &segs);
    assert_eq!(
        stream(&events, FlowId(0), Direction::ClientToServer),
        bytes(b"abcdefYYijklmn")
    );
}

#[test]
fn a_hole_never_filled_is_a_gap_at_the_end() {
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(C, S, 101, ACK, b"abc")),
        (5, seg(C, S, 110, ACK, b"jkl")),
        (6, seg(C, S, 113, FIN | ACK, b"")),
        (7, seg(S, C, 9001, FIN | ACK, b"")),
    ]);
    let events = run(Limits::default(), &segs);
    let mut want = bytes(b"abc");
    want.extend([None; 6]);
    want.extend(bytes(b"jkl"));
    assert_eq!(stream(&events, FlowId(0), Direction::ClientToServer), want);
    assert!(events.contains(&Event::Gap {
        flow: FlowId(0),
        dir: Direction::ClientToServer,
        at: 3,
        missing: 6
    }));
    // Both FINs came, but bytes are missing: only the end of the capture closes it.
    assert!(matches!(
        events.last(),
        Some(Event::Closed {
            how: Close::EndOfCapture,
            ..
        })
    ));
}

#[test]
fn bytes_lost_right_before_a_fin_are_a_gap() {
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(C, S, 101, ACK, b"abc")),
        (5, seg(C, S, 110, FIN | ACK, b"")),
    ]);
    let events = run(Limits::default(), &segs);
    let mut want = bytes(b"abc");
    want.extend([None; 6]);
    assert_eq!(stream(&events, FlowId(0), Direction::ClientToServer), want);
}

/// The client's events after its Fin, which must be none.
fn after_client_fin<'a>(events: &'a [Event<'a>]) -> Vec<&'a Event<'a>> {
    events
        .iter()
        .skip_while(|e| {
            !matches!(
                e,
                Event::Fin {
                    dir: Direction::ClientToServer,
                    ..
                }
            )
        })
        .skip(1)
        .filter(|e| {
            matches!(
                e,
                Event::Data {
                    dir: Direction::ClientToServer,
                    ..
                } | Event::Gap {
                    dir: Direction::ClientToServer,
                    ..
                }
            )
        })
        .collect()
}

#[test]
fn bytes_after_a_fin_are_not_part_of_the_stream() {
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(C, S, 101, FIN | ACK, b"hello")),
        // A one-byte keep-alive probe sent after the FIN has the FIN's sequence number.
        (5, seg(C, S, 106, ACK, b"k")),
        (6, seg(C, S, 107, ACK, b"more")),
        (7, seg(S, C, 9001, FIN | ACK, b"")),
    ]);
    let events = run(Limits::default(), &segs);
    assert_eq!(
        stream(&events, FlowId(0), Direction::ClientToServer),
        bytes(b"hello")
    );
    assert_eq!(after_client_fin(&events), Vec::<&Event>::new());
    assert!(matches!(
        events.last(),
        Some(Event::Closed {
            how: Close::Fin,
            ..
        })
    ));
}

#[test]
fn bytes_buffered_beyond_a_late_fin_are_dropped() {
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(C, S, 104, ACK, b"lo!!")),   // offsets 3..7, out of order
        (5, seg(C, S, 110, ACK, b"far")),    // offsets 9..12, out of order
        (6, seg(C, S, 106, FIN | ACK, b"")), // the FIN at offset 5 cuts both
        (7, seg(C, S, 101, ACK, b"hel")),
    ]);
    let events = run(Limits::default(), &segs);
    assert_eq!(
        stream(&events, FlowId(0), Direction::ClientToServer),
        bytes(b"hello")
    );
    assert_eq!(after_client_fin(&events), Vec::<&Event>::new());
}

#[test]
fn a_full_buffer_reports_the_gap_and_moves_on() {
    let limits = Limits {
        max_buffered: 200,
        ..Limits::default()
    };
    let mut segs = handshake(100, 9000);
    let chunk = [7u8; 100];
    segs.push((4, seg(C, S, 201, ACK, &chunk))); // 100 bytes lost before it
    segs.push((5, seg(C, S, 301, ACK, &chunk))); // buffered: 200 + overhead > 200
    let mut r = Reassembler::with_limits(limits);
    let mut events = Vec::new();
    for (ts, s) in &segs {
        r.feed(*ts, s, &mut events);
    }
    assert!(events.contains(&Event::Gap {
        flow: FlowId(0),
        dir: Direction::ClientToServer,
        at: 0,
        missing: 100
    }));
    assert_eq!(
        stream(&events, FlowId(0), Direction::ClientToServer).len(),
        300
    );
    // The lost bytes arrive late: they are old news now, never delivered out of place.
    r.feed(6, &seg(C, S, 101, ACK, &[1u8; 100]), &mut events);
    r.feed(7, &seg(C, S, 401, ACK, b"tail"), &mut events);
    let s = stream(&events, FlowId(0), Direction::ClientToServer);
    assert_eq!(s.len(), 304);
    assert_eq!(&s[300..], &bytes(b"tail")[..]);
}

#[test]
fn a_capture_started_mid_connection_finds_the_client_by_its_client_hello() {
    // The "client" here has the lower port, so only the ClientHello can tell.
    let (c, s) = ("10.0.0.9:80", "10.0.0.2:60000");
    let segs = [
        // Each acknowledges what the other sends next.
        (1, with_ack(seg(s, c, 77, ACK, b""), 5000)),
        (2, with_ack(seg(c, s, 5000, ACK | PSH, CLIENT_HELLO), 77)),
        (3, seg(s, c, 77, ACK | PSH, b"server")),
    ];
    let events = run(Limits::default(), &segs);
    assert!(matches!(
        &events[0],
        Event::Opened { client, client_rule: ClientRule::ClientHello, syn_ts: None, first_ts: 1, .. }
            if *client == addr(c)
    ));
    assert_eq!(
        stream(&events, FlowId(0), Direction::ClientToServer),
        bytes(CLIENT_HELLO)
    );
    assert_eq!(
        stream(&events, FlowId(0), Direction::ServerToClient),
        bytes(b"server")
    );

    let events = run(Limits::default(), &[(1, seg(s, c, 9, ACK, SERVER_HELLO))]);
    assert!(matches!(
        &events[0],
        Event::Opened { client, client_rule: ClientRule::ServerHello, .. } if *client == addr(c)
    ));

    let events = run(Limits::default(), &[(1, seg(C, S, 9, ACK, b"GET"))]);
    assert!(matches!(
        &events[0],
        Event::Opened { client, client_rule: ClientRule::HigherPort, .. } if *client == addr(C)
    ));
    let events = run(Limits::default(), &[(1, seg(S, C, 9, ACK, b"220 ready"))]);
    assert!(matches!(
        &events[0],
        Event::Opened { client, client_rule: ClientRule::HigherPort, .. } if *client == addr(C)
    ));
}

#[test]
fn without_a_syn_ack_the_clients_acknowledgment_says_where_the_server_starts() {
    let mut segs = handshake(100, 9000);
    segs.remove(1); // the SYN-ACK is not in the capture
    segs[1].1.ack = 9001; // the client's ACK of it
    segs.extend([
        // 100 bytes of the server's first flight are not either.
        (4, seg(S, C, 9101, ACK, b"alert")),
        (5, seg(S, C, 9106, FIN | ACK, b"")),
    ]);
    let events = run(Limits::default(), &segs);
    let mut want = vec![None; 100];
    want.extend(bytes(b"alert"));
    assert_eq!(stream(&events, FlowId(0), Direction::ServerToClient), want);

    // An acknowledgment captured before the bytes it acknowledges does not hide them.
    let segs = [
        (1, with_ack(seg(C, S, 101, ACK, b""), 9006)),
        (2, seg(S, C, 9001, ACK, b"hello")),
    ];
    let events = run(Limits::default(), &segs);
    assert_eq!(
        stream(&events, FlowId(0), Direction::ServerToClient),
        bytes(b"hello")
    );
}

#[test]
fn a_lost_tail_is_a_gap_when_a_later_segment_or_acknowledgment_shows_it() {
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(C, S, 101, ACK, b"hello")),
        (5, seg(S, C, 9001, ACK, b"hi")),
        // The server's next 7 bytes and its FIN are lost; its last ACK is not.
        (6, seg(S, C, 9011, ACK, b"")),
    ]);
    let events = run(Limits::default(), &segs);
    let mut want = bytes(b"hi");
    want.extend([None; 8]); // 7 bytes and the FIN's sequence number
    assert_eq!(stream(&events, FlowId(0), Direction::ServerToClient), want);

    // The same loss, shown only by the client's acknowledgment.
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(C, S, 101, ACK, b"hello")),
        (5, seg(S, C, 9001, ACK, b"hi")),
        (6, with_ack(seg(C, S, 106, FIN | ACK, b""), 9011)),
    ]);
    let events = run(Limits::default(), &segs);
    assert_eq!(stream(&events, FlowId(0), Direction::ServerToClient), want);

    // A FIN that was seen bounds it: the ACK after it is one past it.
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(S, C, 9001, FIN | ACK, b"hi")),
        (5, seg(S, C, 9004, ACK, b"")),
    ]);
    let events = run(Limits::default(), &segs);
    assert_eq!(
        stream(&events, FlowId(0), Direction::ServerToClient),
        bytes(b"hi")
    );
}

#[test]
fn a_syn_ack_alone_names_the_client() {
    let events = run(Limits::default(), &[(5, seg(S, C, 1, SYN | ACK, b""))]);
    assert!(matches!(
        &events[0],
        Event::Opened { client, client_rule: ClientRule::SynAck, syn_ack_ts: Some(5), .. }
            if *client == addr(C)
    ));
}

#[test]
fn a_reset_closes_and_late_segments_are_ignored() {
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(C, S, 101, ACK, b"abc")),
        (5, seg(C, S, 110, ACK, b"buffered")),
        (6, seg(S, C, 9001, RST | ACK, b"")),
        (7, seg(C, S, 104, ACK, b"late")),
    ]);
    let events = run(Limits::default(), &segs);
    let mut want = bytes(b"abc");
    want.extend([None; 6]);
    want.extend(bytes(b"buffered"));
    assert_eq!(stream(&events, FlowId(0), Direction::ClientToServer), want);
    let closes: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Closed { .. }))
        .collect();
    assert_eq!(
        closes,
        [&Event::Closed {
            flow: FlowId(0),
            how: Close::Reset {
                by: Direction::ServerToClient
            },
            ts_nanos: 6,
            first_fin: None,
        }]
    );
    assert!(!events.iter().any(|e| matches!(
        e,
        Event::Opened {
            flow: FlowId(1),
            ..
        }
    )));

    // A new SYN on the same 4-tuple is a new connection.
    let mut again = segs.clone();
    again.push((8, seg(C, S, 5, SYN, b"")));
    again.push((9, seg(C, S, 6, ACK, b"new")));
    let events = run(Limits::default(), &again);
    assert_eq!(
        stream(&events, FlowId(1), Direction::ClientToServer),
        bytes(b"new")
    );
}

#[test]
fn sequence_numbers_wrap() {
    let isn = u32::MAX - 3;
    let mut segs = handshake(isn, u32::MAX);
    segs.extend([
        (4, seg(C, S, 2, ACK, b"world")), // after the wrap, first
        (5, seg(C, S, isn.wrapping_add(1), ACK, b"hello")), // spans the wrap
        (6, seg(S, C, 0, ACK, b"ok")),
    ]);
    let events = run(Limits::default(), &segs);
    assert_eq!(
        stream(&events, FlowId(0), Direction::ClientToServer),
        bytes(b"helloworld")
    );
    assert_eq!(
        stream(&events, FlowId(0), Direction::ServerToClient),
        bytes(b"ok")
    );
}

#[test]
fn the_least_recently_active_flow_is_evicted_at_the_cap() {
    let limits = Limits {
        max_flows: 2,
        ..Limits::default()
    };
    let segs = [
        (1, seg("10.0.0.1:1001", S, 1, SYN, b"")),
        (2, seg("10.0.0.1:1002", S, 1, SYN, b"")),
        (3, seg("10.0.0.1:1001", S, 2, ACK, b"a")), // 1001 is now more recent
        (4, seg("10.0.0.1:1003", S, 1, SYN, b"")),
    ];
    let mut r = Reassembler::with_limits(limits);
    let mut events = Vec::new();
    for (ts, s) in &segs {
        r.feed(*ts, s, &mut events);
    }
    assert_eq!(r.open_flows(), 2);
    assert!(events.contains(&Event::Closed {
        flow: FlowId(1),
        how: Close::Evicted,
        ts_nanos: 2,
        first_fin: None,
    }));
}

#[test]
fn one_sided_captures_and_ack_only_flows_close_at_the_end() {
    let segs = [(1, seg(C, S, 10, ACK, b"")), (2, seg(C, S, 10, ACK, b""))];
    let events = run(Limits::default(), &segs);
    assert_eq!(events.len(), 2);
    assert!(matches!(
        events[1],
        Event::Closed {
            how: Close::EndOfCapture,
            ts_nanos: 2,
            ..
        }
    ));
}

/// The capture missed how a connection ended and its ports come back with a new SYN: the
/// old connection ends there (`Close::Reused`) and the new one is followed on its own,
/// its bytes never glued after the old one's.
#[test]
fn a_new_syn_on_ports_still_open_starts_a_new_connection() {
    let mut segs = handshake(100, 9000);
    segs.extend([
        (4, seg(C, S, 101, ACK, b"old")),
        // No FIN or RST: the capture lost them. The same ports, a new ISN.
        (5, seg(C, S, 5000, SYN, b"")),
        (6, seg(S, C, 7000, SYN | ACK, b"")),
        (7, seg(C, S, 5001, ACK, b"new")),
        (8, seg(C, S, 5000, SYN, b"")), // a retransmission of the new SYN changes nothing
    ]);
    let events = run(Limits::default(), &segs);
    assert!(events.contains(&Event::Closed {
        flow: FlowId(0),
        how: Close::Reused,
        ts_nanos: 4,
        first_fin: None,
    }));
    assert_eq!(
        stream(&events, FlowId(0), Direction::ClientToServer),
        bytes(b"old")
    );
    assert_eq!(
        stream(&events, FlowId(1), Direction::ClientToServer),
        bytes(b"new")
    );
    assert!(!events.iter().any(|e| matches!(
        e,
        Event::Opened {
            flow: FlowId(2),
            ..
        }
    )));
}

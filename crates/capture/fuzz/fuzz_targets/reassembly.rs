//! `Reassembler` on arbitrary sequences of small TCP segments between four endpoints, with
//! small limits so buffering, gaps, eviction and the closed-tuple memory are all reached.
//!
//! Input: an 8-byte header, then segments.
//!
//! ```text
//! header   [max_buffered/8] [max_flows-1 | closed_memory << 2] [seq base: u32 BE]
//!          [mode: bit 0 = payload bytes derived from their sequence numbers] [unused]
//! segment  [src | dst << 2] [TCP flags byte] [seq - base: u16 BE] [ack - base: u16 BE]
//!          [length] [length payload bytes, when the mode does not derive them]
//! ```
//!
//! Checked, for every flow and direction: `Opened` comes before any other event of the flow
//! and once; nothing follows `Closed`, which comes exactly once (`finish` closes the rest);
//! each `Data` or `Gap` starts where the previous one ended (a `Gap` names its offset, a
//! `Data` its length); no `Data` is empty, no `Gap` is empty; at most one `Fin` per
//! direction, and no `Data` of that direction after it. With derived payloads (byte = low
//! byte of its sequence number), every delivered byte is the one at its stream offset:
//! byte - offset is the same for the whole direction.
#![no_main]

use std::collections::HashMap;
use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use mtls_capture::{Direction, Event, FlowId, Limits, Reassembler, Segment, TcpFlags};

const ENDPOINTS: [&str; 4] = [
    "10.0.0.1:40000",
    "10.0.0.2:443",
    // The same port as the one above: neither is the "higher port".
    "[2001:db8::1]:443",
    "10.0.0.2:40000",
];

fuzz_target!(|data: &[u8]| {
    let Some((header, mut rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let limits = Limits {
        max_buffered: 16 + usize::from(header[0]) * 8,
        max_flows: 1 + usize::from(header[1] & 3),
        closed_memory: usize::from((header[1] >> 2) & 3),
    };
    let base = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
    let derived = header[6] & 1 == 1;
    let endpoints: Vec<SocketAddr> = ENDPOINTS
        .iter()
        .map(|e| e.parse().expect("a valid address"))
        .collect();

    let mut reassembler = Reassembler::with_limits(limits);
    let mut check = Check::default();
    let mut ts = 0;
    let mut generated = Vec::new();
    while let Some((&[who, flags, hi, lo, ack_hi, ack_lo, len], tail)) =
        rest.split_first_chunk::<7>()
    {
        rest = tail;
        let src = usize::from(who & 3);
        let mut dst = usize::from((who >> 2) & 3);
        if dst == src {
            dst = (src + 1) % 4;
        }
        let seq = base.wrapping_add(u32::from(u16::from_be_bytes([hi, lo])));
        // Acknowledgments near the sequence numbers, as in a real capture (one far off is
        // just ignored by reassembly).
        let ack = base.wrapping_add(u32::from(u16::from_be_bytes([ack_hi, ack_lo])));
        let flags = TcpFlags {
            fin: flags & 0x01 != 0,
            syn: flags & 0x02 != 0,
            rst: flags & 0x04 != 0,
            ack: flags & 0x10 != 0,
        };
        let payload: &[u8] = if derived {
            let first = if flags.syn { seq.wrapping_add(1) } else { seq };
            generated.clear();
            generated.extend((0..u32::from(len)).map(|i| first.wrapping_add(i) as u8));
            &generated
        } else {
            let (payload, tail) = rest.split_at(usize::from(len).min(rest.len()));
            rest = tail;
            payload
        };
        let segment = Segment {
            src: endpoints[src],
            dst: endpoints[dst],
            seq,
            ack,
            flags,
            payload,
        };
        let mut events = Vec::new();
        reassembler.feed(ts, &segment, &mut events);
        ts += 1;
        for event in &events {
            check.event(event, derived);
        }
    }
    let mut events = Vec::new();
    reassembler.finish(&mut events);
    for event in &events {
        check.event(event, derived);
    }
    assert_eq!(reassembler.open_flows(), 0, "finish left flows open");
    for (flow, state) in &check.flows {
        assert!(state.closed, "{flow:?} was never closed");
    }
});

#[derive(Default)]
struct Check {
    flows: HashMap<FlowId, FlowState>,
}

#[derive(Default)]
struct FlowState {
    closed: bool,
    /// Per direction (client, server): the next stream offset, whether a Fin was seen, and
    /// byte - offset of the first delivered byte (derived payloads only).
    next: [u64; 2],
    fin: [bool; 2],
    phase: [Option<u8>; 2],
}

impl Check {
    fn event(&mut self, event: &Event<'_>, derived: bool) {
        let flow = match event {
            Event::Opened { flow, .. } => {
                assert!(
                    self.flows.insert(*flow, FlowState::default()).is_none(),
                    "{flow:?} opened twice"
                );
                return;
            }
            Event::Data { flow, .. }
            | Event::Gap { flow, .. }
            | Event::Fin { flow, .. }
            | Event::Closed { flow, .. } => *flow,
            _ => return,
        };
        let Some(state) = self.flows.get_mut(&flow) else {
            panic!("{event:?} before Opened");
        };
        assert!(!state.closed, "{event:?} after Closed");
        match event {
            Event::Data { dir, bytes, .. } => {
                let d = index(*dir);
                assert!(!bytes.is_empty(), "empty Data");
                assert!(!state.fin[d], "{flow:?} {dir:?}: Data after Fin");
                if derived {
                    for (i, byte) in bytes.iter().enumerate() {
                        let offset = state.next[d] + i as u64;
                        let phase = byte.wrapping_sub(offset as u8);
                        let first = *state.phase[d].get_or_insert(phase);
                        assert_eq!(
                            phase, first,
                            "{flow:?} {dir:?}: byte {byte} at offset {offset} is out of place"
                        );
                    }
                }
                state.next[d] += bytes.len() as u64;
            }
            Event::Gap {
                dir, at, missing, ..
            } => {
                let d = index(*dir);
                assert_eq!(
                    *at, state.next[d],
                    "{flow:?} {dir:?}: Gap not where the stream is"
                );
                assert!(*missing > 0, "empty Gap");
                state.next[d] += missing;
            }
            Event::Fin { dir, .. } => {
                let d = index(*dir);
                assert!(!state.fin[d], "{flow:?} {dir:?}: a second Fin");
                state.fin[d] = true;
            }
            Event::Closed { .. } => state.closed = true,
            _ => {}
        }
    }
}

fn index(dir: Direction) -> usize {
    match dir {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

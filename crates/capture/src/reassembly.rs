//! TCP reassembly: segments in capture order in, each connection's two byte streams out.
//!
//! The dissector must see every byte of a direction once, in order, or be told exactly where
//! its view is blind; a byte at a wrong offset would be worse than none, because it would
//! be parsed as a TLS record and explained confidently. So reassembly is conservative:
//!
//! - Each direction counts stream offsets from its initial sequence number (the SYN's plus
//!   one; without it, the first segment seen or the other side's first acknowledgment,
//!   whichever is earlier, so bytes lost before the first segment seen are a gap), and
//!   compares sequence numbers as 32-bit differences from the next expected one, so
//!   wrap-around needs no special case.
//! - A byte is taken from the first segment that carried it: retransmissions and overlaps
//!   never replace bytes already delivered or buffered. Bytes at or after a side's FIN are
//!   dropped, so nothing of a direction follows its [`Event::Fin`].
//! - Segments ahead of the next expected byte wait in a per-direction buffer bounded by
//!   [`Limits::max_buffered`]. When it is full, or the connection ends, the missing range is
//!   reported as [`Event::Gap`] and the buffered bytes after it are delivered.
//! - A connection is forgotten after FIN from both sides (all bytes delivered) or RST; a
//!   short list of recently closed 4-tuples absorbs the last ACKs and retransmissions that
//!   follow. At most [`Limits::max_flows`] connections are tracked: the least recently
//!   active one is closed with [`Close::Evicted`] to make room.
//!
//! Who is the client: the sender of a SYN (without ACK), else the receiver of a SYN-ACK;
//! for a connection whose handshake the capture missed, the sender of the first payload
//! when it starts with a TLS ClientHello record (16 03 .. .. .. 01), the receiver when it
//! starts with a ServerHello (byte 5 = 2); otherwise the endpoint with the higher port
//! (clients use ephemeral ports, servers well-known ones), and on equal ports the sender of
//! the first payload. [`Event::Opened`] says which rule decided ([`ClientRule`]).
//!
//! [`Event::Opened`] is emitted lazily, just before the connection's first other event or
//! when the SYN-ACK arrives, so it can carry the SYN-ACK time and a client decided by the
//! first payload.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

use foldhash::fast::RandomState;

use crate::packet::Segment;

/// Bounds on the memory reassembly may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one direction may hold out of order (each buffered piece also counts
    /// [`PIECE_OVERHEAD`] bytes, so a flood of 1-byte segments is bounded too). Default 1 MiB.
    pub max_buffered: usize,
    /// Connections tracked at once. Default 100,000.
    pub max_flows: usize,
    /// Recently closed 4-tuples remembered, to ignore their late segments. Default 4096.
    pub closed_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_buffered: 1024 * 1024,
            max_flows: 100_000,
            closed_memory: 4096,
        }
    }
}

/// What each buffered out-of-order piece costs beyond its bytes, for [`Limits::max_buffered`].
pub const PIECE_OVERHEAD: usize = 64;

/// TCP's largest window (2^30 bytes, RFC 7323): no more can be in flight, so a sequence or
/// acknowledgment number further ahead than this is not about the stream.
const MAX_WINDOW: u32 = 1 << 30;

/// A connection's number, in the order connections were first seen (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

/// A direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client to the server.
    ClientToServer,
    /// From the server to the client.
    ServerToClient,
}

/// How the client of a connection was told apart from its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientRule {
    /// It sent the SYN.
    Syn,
    /// It received the SYN-ACK (the SYN was not captured).
    SynAck,
    /// Its first payload was a TLS ClientHello record.
    ClientHello,
    /// The other side's first payload was a TLS ServerHello record.
    ServerHello,
    /// It has the higher port (or, on equal ports, sent the first payload).
    HigherPort,
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Close {
    /// Both sides sent FIN and every byte up to them was delivered.
    Fin,
    /// A side sent RST.
    Reset {
        /// The direction the RST travelled.
        by: Direction,
    },
    /// The capture ended with the connection still open (or missing bytes before a FIN).
    EndOfCapture,
    /// Dropped to stay within [`Limits::max_flows`]; later segments start a new flow.
    Evicted,
    /// A SYN started another connection on the same addresses and ports before this one
    /// was seen to end (the capture missed its end, or the ports were reused).
    Reused,
}

/// What reassembly reports. Bytes that arrived in order are lent from the segment (no
/// copy); bytes that waited out of order are owned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A new connection; comes before any other event of `flow`.
    Opened {
        /// The connection.
        flow: FlowId,
        /// The client's address.
        client: SocketAddr,
        /// The server's address.
        server: SocketAddr,
        /// How the client was decided.
        client_rule: ClientRule,
        /// When the first segment of the connection was captured.
        first_ts: u64,
        /// When the SYN was captured, if it was.
        syn_ts: Option<u64>,
        /// When the SYN-ACK was captured, if it was before this event.
        syn_ack_ts: Option<u64>,
    },
    /// Bytes of one direction, in stream order, following the previous Data or Gap.
    Data {
        /// The connection.
        flow: FlowId,
        /// Which way the bytes went.
        dir: Direction,
        /// When the segment that completed these bytes was captured.
        ts_nanos: u64,
        /// The bytes.
        bytes: Cow<'a, [u8]>,
    },
    /// Bytes the capture does not have; the next Data of `dir` starts at `at + missing`.
    Gap {
        /// The connection.
        flow: FlowId,
        /// Which way the missing bytes went.
        dir: Direction,
        /// Stream offset of the first missing byte.
        at: u64,
        /// How many bytes are missing.
        missing: u64,
    },
    /// One side's FIN, once every byte it sent before it was delivered (or reported
    /// missing): that side sends nothing more. Comes in capture order with the data, so a
    /// reader can tell what was sent after the other side hung up.
    Fin {
        /// The connection.
        flow: FlowId,
        /// The direction the FIN travelled.
        dir: Direction,
        /// When the segment that completed it was captured.
        ts_nanos: u64,
    },
    /// The connection is over; no more events for `flow`.
    Closed {
        /// The connection.
        flow: FlowId,
        /// How it ended.
        how: Close,
        /// When (the segment that ended it, or the last segment seen).
        ts_nanos: u64,
        /// The side whose FIN came first, if any was seen.
        first_fin: Option<Direction>,
    },
}

impl Event<'_> {
    /// The same event, owning its bytes (to keep it past the segment it came from).
    pub fn into_owned(self) -> Event<'static> {
        match self {
            Event::Data {
                flow,
                dir,
                ts_nanos,
                bytes,
            } => Event::Data {
                flow,
                dir,
                ts_nanos,
                bytes: Cow::Owned(bytes.into_owned()),
            },
            Event::Opened {
                flow,
                client,
                server,
                client_rule,
                first_ts,
                syn_ts,
                syn_ack_ts,
            } => Event::Opened {
                flow,
                client,
                server,
                client_rule,
                first_ts,
                syn_ts,
                syn_ack_ts,
            },
            Event::Gap {
                flow,
                dir,
                at,
                missing,
            } => Event::Gap {
                flow,
                dir,
                at,
                missing,
            },
            Event::Fin {
                flow,
                dir,
                ts_nanos,
            } => Event::Fin {
                flow,
                dir,
                ts_nanos,
            },
            Event::Closed {
                flow,
                how,
                ts_nanos,
                first_fin,
            } => Event::Closed {
                flow,
                how,
                ts_nanos,
                first_fin,
            },
        }
    }
}

/// Reassembles the TCP connections of one capture.
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: Limits,
    flows: HashMap<Key, Flow, RandomState>,
    /// Tick → flow, one entry per flow, to find the least recently active one to evict.
    /// An entry's tick is when it was written, not the flow's latest activity (that is
    /// `Flow::tick`): a packet costs no reordering here, and eviction refreshes stale
    /// entries as it meets them (see [`Reassembler::evict`]).
    idle: BTreeMap<u64, Key>,
    tick: u64,
    next_id: u64,
    /// Recently closed 4-tuples, oldest first, each with the number of its closing; a
    /// tuple reopened and closed again has a newer number, so its older entry is stale.
    closed: VecDeque<(Key, u64)>,
    closed_set: HashMap<Key, u64, RandomState>,
    closings: u64,
}

impl Reassembler {
    /// A reassembler with the default [`Limits`].
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// A reassembler with other limits (each is at least 1).
    pub fn with_limits(limits: Limits) -> Reassembler {
        let limits = Limits {
            max_buffered: limits.max_buffered.max(1),
            max_flows: limits.max_flows.max(1),
            closed_memory: limits.closed_memory,
        };
        Reassembler {
            limits,
            ..Reassembler::default()
        }
    }

    /// Connections currently tracked.
    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// Take one segment captured at `ts_nanos`; push the events it causes onto `out`.
    /// Data events may borrow the segment's payload.
    pub fn feed<'a>(&mut self, ts_nanos: u64, segment: &Segment<'a>, out: &mut Vec<Event<'a>>) {
        let (key, half) = if segment.src <= segment.dst {
            (Key(segment.src, segment.dst), 0)
        } else {
            (Key(segment.dst, segment.src), 1)
        };
        let flags = segment.flags;
        if !self.closed_set.is_empty() && self.closed_set.contains_key(&key) {
            if !flags.syn || flags.ack {
                return;
            }
            // A new SYN on a closed 4-tuple is a new connection (its entry in `closed` is
            // now stale and is skipped when it comes up).
            self.closed_set.remove(&key);
        }
        // A SYN with another sequence number on ports still tracked starts a new connection:
        // gluing its bytes after the old one's would be worse than losing the old one's end.
        if flags.syn
            && !flags.ack
            && self
                .flows
                .get(&key)
                .is_some_and(|flow| flow.halves[half].reused_by(segment.seq))
        {
            self.close(key, Close::Reused, None, out);
        }
        if !self.flows.contains_key(&key) {
            if flags.rst {
                return;
            }
            if self.flows.len() >= self.limits.max_flows {
                self.evict(out);
            }
            let mut flow = Flow::new(FlowId(self.next_id), ts_nanos);
            self.next_id += 1;
            flow.tick = self.tick;
            flow.idle_at = self.tick;
            self.idle.insert(self.tick, key);
            self.flows.insert(key, flow);
        }
        let tick = self.tick;
        self.tick += 1;
        let max_buffered = self.limits.max_buffered;
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.tick = tick;
        flow.last_ts = ts_nanos;
        if flags.ack {
            // The other side's stream reached this far: where it starts should its SYN be
            // missing, how far it went should its last segments be.
            let other = &mut flow.halves[1 - half];
            if other.started {
                other.reach(segment.ack);
            } else {
                other.acked.get_or_insert(segment.ack);
            }
        }

        let mut pieces = Pieces::new();
        let data_seq = if flags.syn {
            segment.seq.wrapping_add(1)
        } else {
            segment.seq
        };
        if flags.syn {
            if flags.ack {
                flow.syn_ack_ts.get_or_insert(ts_nanos);
                flow.client.get_or_insert((1 - half, ClientRule::SynAck));
            } else {
                flow.syn_ts.get_or_insert(ts_nanos);
                flow.client.get_or_insert((half, ClientRule::Syn));
            }
            let h = &mut flow.halves[half];
            if !h.started || (h.delivered == 0 && h.pending.is_empty() && !h.from_syn) {
                h.start(data_seq, true);
            }
            h.syn_seq.get_or_insert(segment.seq);
        }
        if !segment.payload.is_empty() || flags.fin {
            let h = &mut flow.halves[half];
            if !h.started {
                h.start_seen(data_seq);
            }
            if flow.client.is_none() && !segment.payload.is_empty() {
                flow.client = Some(client_from_payload(key, half, segment.payload));
            }
            let h = &mut flow.halves[half];
            // The FIN first, so buffered bytes beyond it are not drained by this payload.
            if flags.fin && h.fin_at.is_none() {
                let end = h.offset_of(data_seq) + segment.payload.len() as i64;
                h.set_fin(u64::try_from(end).unwrap_or(0).max(h.delivered));
                flow.first_fin.get_or_insert(half);
            }
            h.accept(data_seq, segment.payload, max_buffered, &mut pieces);
        }
        let h = &mut flow.halves[half];
        if h.started {
            // A segment without payload (an ACK, a RST) still says where its sender is.
            h.reach(data_seq.wrapping_add(segment.payload.len() as u32));
        }
        if flags.syn && flags.ack {
            flow.emit_opened(key, out);
        }
        flow.emit(key, half, ts_nanos, pieces, out);
        flow.emit_fin(key, half, ts_nanos, out);

        if flags.rst {
            let by = flow.direction(key, half);
            self.close(key, Close::Reset { by }, Some(ts_nanos), out);
        } else if flow.halves.iter().all(Half::finished) {
            self.close(key, Close::Fin, Some(ts_nanos), out);
        }
    }

    /// The capture is over: report what is missing in every open connection and close it
    /// with [`Close::EndOfCapture`], in the order connections were first seen.
    pub fn finish(&mut self, out: &mut Vec<Event<'_>>) {
        let mut keys: Vec<(FlowId, Key)> = self.flows.iter().map(|(k, f)| (f.id, *k)).collect();
        keys.sort();
        for (_, key) in keys {
            self.close(key, Close::EndOfCapture, None, out);
        }
    }

    /// Close the least recently active flow. An `idle` entry older than its flow's last
    /// activity is moved to that activity's tick and the search goes on: each packet
    /// leaves at most one such move behind, so eviction costs O(log n) amortised.
    fn evict(&mut self, out: &mut Vec<Event<'_>>) {
        while let Some((tick, key)) = self.idle.pop_first() {
            match self.flows.get_mut(&key) {
                Some(flow) if flow.tick != tick => {
                    flow.idle_at = flow.tick;
                    self.idle.insert(flow.tick, key);
                }
                Some(_) => {
                    self.close(key, Close::Evicted, None, out);
                    return;
                }
                None => {}
            }
        }
    }

    fn close(&mut self, key: Key, how: Close, ts: Option<u64>, out: &mut Vec<Event<'_>>) {
        let Some(mut flow) = self.flows.remove(&key) else {
            return;
        };
        self.idle.remove(&flow.idle_at);
        let ts_nanos = ts.unwrap_or(flow.last_ts);
        for half in 0..2 {
            let mut pieces = Pieces::new();
            flow.halves[half].flush(&mut pieces);
            flow.emit(key, half, ts_nanos, pieces, out);
            flow.emit_fin(key, half, ts_nanos, out);
        }
        flow.emit_opened(key, out);
        let first_fin = flow.first_fin.map(|half| flow.direction(key, half));
        out.push(Event::Closed {
            flow: flow.id,
            how,
            ts_nanos,
            first_fin,
        });
        if matches!(how, Close::Fin | Close::Reset { .. }) && self.limits.closed_memory > 0 {
            while self.closed.len() >= self.limits.closed_memory
                && let Some((old, closing)) = self.closed.pop_front()
            {
                if self.closed_set.get(&old) == Some(&closing) {
                    self.closed_set.remove(&old);
                }
            }
            self.closings += 1;
            self.closed.push_back((key, self.closings));
            self.closed_set.insert(key, self.closings);
        }
    }
}

/// A connection's endpoints, lower address first; half 0 is the direction from `.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key(SocketAddr, SocketAddr);

/// Hashed as a few integers: every packet looks its connection up, and `SocketAddr`'s own
/// `Hash` feeds the hasher field by field (a tenth of reading a capture).
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for addr in [self.0, self.1] {
            match addr {
                SocketAddr::V4(v4) => {
                    state.write_u64(u64::from(v4.ip().to_bits()) << 16 | u64::from(v4.port()));
                }
                SocketAddr::V6(v6) => {
                    state.write_u128(v6.ip().to_bits());
                    state.write_u16(v6.port());
                }
            }
        }
    }
}

#[derive(Debug)]
struct Flow {
    id: FlowId,
    /// The tick of its latest segment.
    tick: u64,
    /// The tick its `idle` entry is filed under.
    idle_at: u64,
    /// The half whose FIN came first.
    first_fin: Option<usize>,
    first_ts: u64,
    last_ts: u64,
    /// Which half (0 or 1) the client sends, and why.
    client: Option<(usize, ClientRule)>,
    opened: bool,
    syn_ts: Option<u64>,
    syn_ack_ts: Option<u64>,
    halves: [Half; 2],
}

impl Flow {
    fn new(id: FlowId, ts: u64) -> Flow {
        Flow {
            id,
            tick: 0,
            idle_at: 0,
            first_fin: None,
            first_ts: ts,
            last_ts: ts,
            client: None,
            opened: false,
            syn_ts: None,
            syn_ack_ts: None,
            halves: [Half::default(), Half::default()],
        }
    }

    fn client_half(&mut self, key: Key) -> usize {
        let (half, _) = *self.client.get_or_insert_with(|| {
            // Nothing but the ports to go by; on equal ports half 0 is as good as any.
            if key.1.port() > key.0.port() {
                (1, ClientRule::HigherPort)
            } else {
                (0, ClientRule::HigherPort)
            }
        });
        half
    }

    fn direction(&mut self, key: Key, half: usize) -> Direction {
        if self.client_half(key) == half {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        }
    }

    /// [`Event::Fin`] for `half`, the first time its FIN is reached.
    fn emit_fin(&mut self, key: Key, half: usize, ts_nanos: u64, out: &mut Vec<Event<'_>>) {
        let h = &mut self.halves[half];
        if h.fin_reported || h.fin_at.is_none_or(|fin| h.delivered < fin) {
            return;
        }
        h.fin_reported = true;
        self.emit_opened(key, out);
        out.push(Event::Fin {
            flow: self.id,
            dir: self.direction(key, half),
            ts_nanos,
        });
    }

    fn emit_opened(&mut self, key: Key, out: &mut Vec<Event<'_>>) {
        if self.opened {
            return;
        }
        self.opened = true;
        let client_half = self.client_half(key);
        let client_rule = self.client.map_or(ClientRule::HigherPort, |(_, rule)| rule);
        let (client, server) = if client_half == 0 {
            (key.0, key.1)
        } else {
            (key.1, key.0)
        };
        out.push(Event::Opened {
            flow: self.id,
            client,
            server,
            client_rule,
            first_ts: self.first_ts,
            syn_ts: self.syn_ts,
            syn_ack_ts: self.syn_ack_ts,
        });
    }

    fn emit<'a>(
        &mut self,
        key: Key,
        half: usize,
        ts_nanos: u64,
        pieces: Pieces<'a>,
        out: &mut Vec<Event<'a>>,
    ) {
        if pieces.is_empty() {
            return;
        }
        self.emit_opened(key, out);
        let dir = self.direction(key, half);
        // Consecutive data pieces make one event; a lone piece is passed on as it is.
        let mut data: Option<Cow<'a, [u8]>> = None;
        for piece in pieces {
            match piece {
                Piece::Data(bytes) => match &mut data {
                    None => data = Some(bytes),
                    Some(joined) => joined.to_mut().extend_from_slice(&bytes),
                },
                Piece::Gap { at, missing } => {
                    if let Some(bytes) = data.take() {
                        out.push(Event::Data {
                            flow: self.id,
                            dir,
                            ts_nanos,
                            bytes,
                        });
                    }
                    out.push(Event::Gap {
                        flow: self.id,
                        dir,
                        at,
                        missing,
                    });
                }
            }
        }
        if let Some(bytes) = data {
            out.push(Event::Data {
                flow: self.id,
                dir,
                ts_nanos,
                bytes,
            });
        }
    }
}

/// Decide the client from a connection's first payload, sent by `half`.
fn client_from_payload(key: Key, half: usize, payload: &[u8]) -> (usize, ClientRule) {
    if let [0x16, 0x03, _, _, _, kind, ..] = payload {
        match kind {
            1 => return (half, ClientRule::ClientHello),
            2 => return (1 - half, ClientRule::ServerHello),
            _ => {}
        }
    }
    let sender = if half == 0 { key.0 } else { key.1 };
    let receiver = if half == 0 { key.1 } else { key.0 };
    if sender.port() >= receiver.port() {
        (half, ClientRule::HigherPort)
    } else {
        (1 - half, ClientRule::HigherPort)
    }
}

/// What one direction's reassembly produces, before it is labelled with flow and direction.
#[derive(Debug)]
enum Piece<'a> {
    Data(Cow<'a, [u8]>),
    Gap { at: u64, missing: u64 },
}

/// The pieces one segment produced: nearly always one, kept without an allocation.
#[derive(Debug, Default)]
struct Pieces<'a> {
    first: Option<Piece<'a>>,
    more: Vec<Piece<'a>>,
}

impl<'a> Pieces<'a> {
    fn new() -> Self {
        Pieces {
            first: None,
            more: Vec::new(),
        }
    }

    fn push(&mut self, piece: Piece<'a>) {
        if self.first.is_none() {
            self.first = Some(piece);
        } else {
            self.more.push(piece);
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

impl<'a> IntoIterator for Pieces<'a> {
    type Item = Piece<'a>;
    type IntoIter =
        std::iter::Chain<std::option::IntoIter<Piece<'a>>, std::vec::IntoIter<Piece<'a>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.more)
    }
}

/// One direction of a connection.
#[derive(Debug, Default)]
struct Half {
    /// Whether `next_seq` is known.
    started: bool,
    /// Whether it came from a SYN (rather than the first segment seen).
    from_syn: bool,
    /// The other side's first acknowledgment number, taken while this half had no start.
    acked: Option<u32>,
    /// How far the stream is known to go: the furthest offset a segment of this side
    /// reached or the other side acknowledged. Bytes before it that never arrived are
    /// reported missing when the connection ends.
    reached: u64,
    /// Sequence number of the stream byte at offset `delivered`.
    next_seq: u32,
    /// Bytes delivered or reported missing so far: the next stream offset.
    delivered: u64,
    /// Out-of-order bytes by stream offset; disjoint, all beyond `delivered`.
    pending: BTreeMap<u64, Vec<u8>>,
    /// Bytes in `pending` plus [`PIECE_OVERHEAD`] per piece.
    pending_cost: usize,
    /// Stream offset of the FIN, once seen.
    fin_at: Option<u64>,
    /// Whether [`Event::Fin`] was emitted.
    fin_reported: bool,
    /// The sequence number of its SYN, if one was seen.
    syn_seq: Option<u32>,
}

impl Half {
    fn start(&mut self, seq: u32, from_syn: bool) {
        self.started = true;
        self.from_syn = from_syn;
        self.next_seq = seq;
        self.reached = 0;
    }

    /// The stream is known to reach `seq`: a segment of this side starts or ends there, or
    /// the other side acknowledged it. Only an advance of at most [`MAX_WINDOW`] counts;
    /// anything else is a retransmission or not about this stream.
    fn reach(&mut self, seq: u32) {
        let ahead = seq.wrapping_sub(self.next_seq);
        if (1..=MAX_WINDOW).contains(&ahead) {
            self.reached = self.reached.max(self.delivered + u64::from(ahead));
        }
    }

    /// The FIN is at stream offset `fin`. Bytes at or after it are no part of the stream:
    /// the receiving TCP never hands them to its application (Linux ignores segment text
    /// after a FIN), and [`Event::Fin`] tells the caller this side sends nothing more. A
    /// capture can still show some: a one-byte keep-alive probe sent after the FIN carries
    /// the FIN's sequence number. Bytes already buffered there are dropped here; `accept`
    /// cuts later ones.
    fn set_fin(&mut self, fin: u64) {
        self.fin_at = Some(fin);
        while let Some(mut last) = self.pending.last_entry() {
            let at = *last.key();
            let len = last.get().len() as u64;
            if at >= fin {
                last.remove();
                self.pending_cost -= len as usize + PIECE_OVERHEAD;
                continue;
            }
            if at + len > fin {
                // Offsets here are within one piece, so they fit in usize.
                last.get_mut().truncate((fin - at) as usize);
                self.pending_cost -= (at + len - fin) as usize;
            }
            break;
        }
    }

    /// Start without a SYN, at the first segment seen (`seq`), or at the other side's first
    /// acknowledgment when that is earlier: the bytes in between were sent (the other side
    /// was waiting for them) and the capture missed them, so they are reported as a gap
    /// instead of the stream seeming to begin after them. A capture that lost a SYN-ACK
    /// and the server's first flight would otherwise show the server's alert as its first
    /// word.
    fn start_seen(&mut self, seq: u32) {
        // Sequence numbers compare as 32-bit differences, as in `offset_of`.
        let from = match self.acked {
            Some(ack) if (1..=MAX_WINDOW).contains(&seq.wrapping_sub(ack)) => ack,
            _ => seq,
        };
        self.start(from, false);
    }

    /// Whether a SYN with sequence number `seq` from this side starts another connection:
    /// its SYN had another number, or (none seen) it already sent bytes or a FIN.
    fn reused_by(&self, seq: u32) -> bool {
        match self.syn_seq {
            Some(isn) => isn != seq,
            None => {
                self.started
                    && (self.delivered > 0 || !self.pending.is_empty() || self.fin_at.is_some())
            }
        }
    }

    fn finished(&self) -> bool {
        self.fin_at.is_some_and(|fin| self.delivered >= fin) && self.pending.is_empty()
    }

    /// The stream offset of `seq`: its distance from the next expected sequence number,
    /// taken as a signed 32-bit difference so wrap-around is invisible.
    fn offset_of(&self, seq: u32) -> i64 {
        self.delivered as i64 + i64::from(seq.wrapping_sub(self.next_seq) as i32)
    }

    fn accept<'a>(
        &mut self,
        seq: u32,
        payload: &'a [u8],
        max_buffered: usize,
        out: &mut Pieces<'a>,
    ) {
        if payload.is_empty() {
            return;
        }
        let start = self.offset_of(seq);
        let mut end = start + payload.len() as i64;
        if let Some(fin) = self.fin_at {
            // Nothing follows a FIN: see `set_fin`.
            end = end.min(i64::try_from(fin).unwrap_or(i64::MAX));
        }
        let delivered = self.delivered as i64;
        if end <= delivered || end <= start {
            return; // a retransmission of bytes already delivered, or bytes after the FIN
        }
        let skip = usize::try_from(delivered - start).unwrap_or(0);
        let take = usize::try_from(end - start).unwrap_or(0);
        let start = u64::try_from(start.max(delivered)).unwrap_or(self.delivered);
        let bytes = payload.get(skip..take).unwrap_or_default();
        if start == self.delivered {
            self.deliver(Cow::Borrowed(bytes), out);
            self.drain(out);
        } else {
            self.buffer(start, bytes);
            while self.pending_cost > max_buffered && self.skip_gap(out) {}
        }
    }

    fn deliver<'a>(&mut self, bytes: Cow<'a, [u8]>, out: &mut Pieces<'a>) {
        if bytes.is_empty() {
            return;
        }
        self.advance(bytes.len() as u64);
        out.push(Piece::Data(bytes));
    }

    fn advance(&mut self, n: u64) {
        self.delivered += n;
        // Truncation is the point: sequence numbers are modulo 2^32.
        self.next_seq = self.next_seq.wrapping_add(n as u32);
    }

    /// Deliver buffered pieces that now continue the stream.
    fn drain(&mut self, out: &mut Pieces<'_>) {
        while let Some(entry) = self.pending.first_entry() {
            let at = *entry.key();
            if at > self.delivered {
                break;
            }
            let mut bytes = entry.remove();
            self.pending_cost -= bytes.len() + PIECE_OVERHEAD;
            let skip = usize::try_from(self.delivered - at).unwrap_or(usize::MAX);
            if skip < bytes.len() {
                bytes.drain(..skip);
                self.deliver(Cow::Owned(bytes), out);
            }
        }
    }

    /// Buffer `bytes` at stream offset `start` (beyond `delivered`), keeping bytes already
    /// buffered where they overlap.
    fn buffer(&mut self, start: u64, bytes: &[u8]) {
        let end = start + bytes.len() as u64;
        // Pieces are disjoint, so sorted by start they are sorted by end too: walk back
        // from the last one starting before `end` until one ends at or before `start`.
        let mut covered: Vec<(u64, u64)> = self
            .pending
            .range(..end)
            .rev()
            .map(|(at, piece)| (*at, *at + piece.len() as u64))
            .take_while(|(_, piece_end)| *piece_end > start)
            .collect();
        covered.reverse();
        let mut cursor = start;
        for (piece_start, piece_end) in covered {
            if piece_start > cursor {
                self.insert(cursor, &bytes[slice(start, cursor, piece_start)]);
            }
            cursor = cursor.max(piece_end);
        }
        if cursor < end {
            self.insert(cursor, &bytes[slice(start, cursor, end)]);
        }
    }

    fn insert(&mut self, at: u64, bytes: &[u8]) {
        self.pending_cost += bytes.len() + PIECE_OVERHEAD;
        self.pending.insert(at, bytes.to_vec());
    }

    /// Report the hole before the first buffered piece and deliver from there; false when
    /// nothing is buffered.
    fn skip_gap(&mut self, out: &mut Pieces<'_>) -> bool {
        let Some(&at) = self.pending.keys().next() else {
            return false;
        };
        let missing = at - self.delivered;
        out.push(Piece::Gap {
            at: self.delivered,
            missing,
        });
        self.advance(missing);
        self.drain(out);
        true
    }

    /// The connection ends: report every hole, deliver everything buffered, and report the
    /// bytes missing before a FIN, or, when no FIN was seen, before the furthest point a
    /// segment or an acknowledgment showed (a lost FIN's own sequence number then counts
    /// as one missing byte: better one too many than a blind spot not reported).
    fn flush(&mut self, out: &mut Pieces<'_>) {
        while self.skip_gap(out) {}
        let end = self.fin_at.unwrap_or(self.reached);
        if end > self.delivered {
            let missing = end - self.delivered;
            out.push(Piece::Gap {
                at: self.delivered,
                missing,
            });
            self.advance(missing);
        }
    }
}

/// The index range of `from..to` (stream offsets) in a segment starting at `base`.
/// Offsets here are within one segment, so they fit in usize.
fn slice(base: u64, from: u64, to: u64) -> std::ops::Range<usize> {
    (from - base) as usize..(to - base) as usize
}

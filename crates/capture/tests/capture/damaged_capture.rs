//! A real capture, damaged the ways captures are: segments cut into pieces, reordered within
//! a short window, duplicated, dropped. Every connection still fully shown must sum up
//! exactly as in the undamaged capture; every other one must say it is broken (a gap) or
//! still sum up the same, and may show less, never something else: no SNI, version, suite,
//! certificate or verdict that the undamaged capture does not show.
//!
//! The capture is tests/data/mtls-handshakes.pcap (six mTLS handshakes with `mtls serve`,
//! see the README there), read once; its key log decrypts the TLS 1.3 handshakes, so the
//! certificates inside them are checked too. Each case runs the pipeline of `mtls trace`:
//! reassembly, then per connection `Dissector` and `Conversation` (`mtls-inspect`).
//!
//! What damage keeps: the order, within a connection, of segments that carry something
//! (payload, SYN, FIN or RST) from different sides. That order is the capture's testimony
//! of who spoke first (an alert after the peer's FIN answers it; the summary lists the
//! handshake messages in wire order), so a capture that swaps it shows another
//! conversation, not a damaged copy of this one. Reordering moves a segment only within its
//! own side's run (pure ACKs of either side go anywhere in the run), fewer than `window`
//! places.
//!
//! A connection counts as fully shown when every payload byte, FIN and RST of it survives
//! (in some copy) and reassembly can tell where each direction starts: from its SYN, from
//! the other side's acknowledgment, or because the first of its segments to arrive is the
//! earliest. Otherwise it is broken, and when the capture shows the loss (a later segment
//! of the same side, even a bare ACK or RST, or the other side's acknowledgment reaches
//! past it) it must report a gap. A loss nothing shows, such as a lost tail with nothing
//! after it, leaves a capture no different from a conversation that never sent those
//! bytes: such a connection is held only to "never something else".
//!
//! The pipeline is `mtls trace`'s: after a gap the dissector reads nothing more of that
//! direction (`Dissector::gap`: where the next record starts is unknown; dissected on, a
//! record cut by the gap was completed with the bytes after it and decoded a JA4 the
//! capture never showed), and the conversation hears of the gap (`tcp_gap`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use mtls_capture::{
    Block, CaptureReader, Close, Decoded, Direction as Way, Event, FlowId, Reassembler, Segment,
    TcpFlags, decode,
};
use mtls_inspect::conversation::{Close as Ending, Outcome, Summary};
use mtls_inspect::{
    CertificateRequest, ClientCertificate, Conversation, Detail, Direction, Dissector, KeyLog,
};
use proptest::prelude::*;

const PCAP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/mtls-handshakes.pcap"
);
const KEYS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/mtls-handshakes.keys"
);

/// A connection's endpoints, lower first (as reassembly keys them).
type Tuple = (SocketAddr, SocketAddr);

/// One TCP segment of the capture, owned.
#[derive(Debug, Clone)]
struct Seg {
    ts: u64,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload: Vec<u8>,
}

impl Seg {
    fn tuple(&self) -> Tuple {
        if self.src <= self.dst {
            (self.src, self.dst)
        } else {
            (self.dst, self.src)
        }
    }

    /// Carries something reassembly or the dissector acts on (a pure ACK does not).
    fn significant(&self) -> bool {
        !self.payload.is_empty() || self.flags.syn || self.flags.fin || self.flags.rst
    }

    /// The sequence number of its first payload byte (a SYN takes one).
    fn data_seq(&self) -> u32 {
        self.seq.wrapping_add(u32::from(self.flags.syn))
    }
}

/// What the pipeline made of one connection.
#[derive(Debug, Clone)]
struct Seen {
    summary: Summary,
    gaps: usize,
}

struct Capture {
    segments: Vec<Seg>,
    keylog: Arc<KeyLog>,
    /// Each connection's summary from the undamaged capture.
    baseline: BTreeMap<Tuple, Summary>,
}

static CAPTURE: LazyLock<Capture> = LazyLock::new(|| {
    let bytes = std::fs::read(PCAP).unwrap();
    let keys = std::fs::read_to_string(KEYS).unwrap();
    let keylog = Arc::new(KeyLog::parse(&keys).unwrap());
    let mut reader = CaptureReader::new(&bytes[..]).unwrap();
    let mut segments = Vec::new();
    while let Some(block) = reader.next().unwrap() {
        if let Block::Packet(packet) = block
            && let Ok(Decoded::Tcp(s)) = decode(packet.link, &packet.data)
        {
            segments.push(Seg {
                ts: packet.ts_nanos,
                src: s.src,
                dst: s.dst,
                seq: s.seq,
                ack: s.ack,
                flags: s.flags,
                payload: s.payload.to_vec(),
            });
        }
    }
    let mut baseline = BTreeMap::new();
    for (tuple, seen) in trace(&segments, &keylog) {
        assert_eq!(seen.len(), 1, "{tuple:?} is one connection");
        assert_eq!(seen[0].gaps, 0, "{tuple:?}: the capture on lo lost nothing");
        baseline.insert(tuple, seen[0].summary.clone());
    }
    Capture {
        segments,
        keylog,
        baseline,
    }
});

#[test]
fn the_undamaged_capture_shows_every_handshake() {
    let capture = &*CAPTURE;
    let mut tuples: Vec<Tuple> = capture.segments.iter().map(Seg::tuple).collect();
    tuples.dedup();
    let outcomes: Vec<(Option<&str>, bool)> = tuples
        .iter()
        .map(|t| {
            let s = &capture.baseline[t];
            (
                s.version.as_deref(),
                matches!(s.outcome, Outcome::Completed),
            )
        })
        .collect();
    // make-capture.sh: curl TLS 1.3 and 1.2 with a certificate, both without, TLS 1.3 with
    // a certificate from another CA, `mtls get`.
    assert_eq!(
        outcomes,
        [
            (Some("TLS 1.3"), true),
            (Some("TLS 1.2"), true),
            (Some("TLS 1.3"), false),
            (Some("TLS 1.2"), false),
            (Some("TLS 1.3"), false),
            (Some("TLS 1.3"), true),
        ],
        "{:#?}",
        capture.baseline
    );
    // The key log opened the TLS 1.3 handshakes: both certificates, or the client's lack
    // of one, are seen everywhere.
    for summary in capture.baseline.values() {
        assert!(summary.server_certificate.is_some(), "{summary:#?}");
        assert_ne!(
            summary.client_certificate,
            ClientCertificate::Unknown,
            "{summary:#?}"
        );
    }
}

/// How one original segment is damaged.
#[derive(Debug, Clone)]
struct Damage {
    /// Pieces its payload is cut into (1: whole).
    pieces: usize,
    /// A second, whole copy follows it (a retransmission, cut differently from the pieces).
    duplicate: bool,
    /// One of its copies or pieces (picked by `seed`) is lost.
    drop: bool,
    /// Picks the cuts, the lost piece and the moves.
    seed: u64,
}

fn damage(allow_drops: bool) -> impl Strategy<Value = Damage> {
    (
        prop_oneof![4 => Just(1usize), 1 => 2usize..=4],
        prop::bool::weighted(0.1),
        prop::bool::weighted(if allow_drops { 0.06 } else { 0.0 }),
        any::<u64>(),
    )
        .prop_map(|(pieces, duplicate, drop, seed)| Damage {
            pieces,
            duplicate,
            drop,
            seed,
        })
}

fn damages() -> impl Strategy<Value = (usize, Vec<Damage>)> {
    let n = CAPTURE.segments.len();
    (1usize..=4, any::<bool>()).prop_flat_map(move |(window, allow_drops)| {
        (Just(window), prop::collection::vec(damage(allow_drops), n))
    })
}

proptest! {
    // About 4 ms a case in a debug build.
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_damaged_capture_is_decoded_the_same_or_reported_broken(
        (window, damages) in damages(),
    ) {
        check(window, &damages)?;
    }
}

/// The property, for one damaged capture.
fn check(window: usize, damages: &[Damage]) -> Result<(), TestCaseError> {
    let capture = &*CAPTURE;
    let segments = damaged(&capture.segments, window, damages);
    let status = status(&capture.segments, &segments);
    let seen = trace(&segments, &capture.keylog);
    for (tuple, baseline) in &capture.baseline {
        let status = status[tuple];
        let Some(flows) = seen.get(tuple) else {
            prop_assert!(!matches!(status, Status::Whole), "{tuple:?} vanished");
            continue;
        };
        for flow in flows {
            let summary = &flow.summary;
            match status {
                Status::Whole => prop_assert_eq!(
                    summary,
                    baseline,
                    "{:?} was fully shown (gaps: {})",
                    tuple,
                    flow.gaps
                ),
                Status::Lost { detectable } => {
                    if detectable && flow.gaps == 0 {
                        prop_assert_eq!(
                            summary,
                            baseline,
                            "{:?} lost bytes the capture shows missing, and no gap said so",
                            tuple
                        );
                    }
                    if let Err(why) = consistent(summary, baseline) {
                        prop_assert!(
                            false,
                            "{:?}: {} (gaps: {})\n{:#?}\nundamaged: {:#?}",
                            tuple,
                            why,
                            flow.gaps,
                            summary,
                            baseline
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// What damage did to a connection.
#[derive(Debug, Clone, Copy)]
enum Status {
    /// Every payload byte, FIN and RST survives and each direction's start is known.
    Whole,
    /// Something is lost or hidden; `detectable` when the capture shows it (see
    /// [`status`]), so reassembly must report a gap.
    Lost { detectable: bool },
}

/// Cut, duplicate, reorder (within each side's run, at most `window - 1` places) and drop.
fn damaged(segments: &[Seg], window: usize, damages: &[Damage]) -> Vec<Seg> {
    // Expand: pieces, then the whole copy; each tagged with whether it is the lost one.
    let mut items: Vec<(Seg, bool, u64)> = Vec::new();
    for (seg, damage) in segments.iter().zip(damages) {
        let mut rng = Rng(damage.seed | 1);
        let mut copies = pieces(seg, damage.pieces, &mut rng);
        if damage.duplicate {
            copies.push(seg.clone());
        }
        let lost = damage.drop.then(|| rng.below(copies.len()));
        for (i, copy) in copies.into_iter().enumerate() {
            items.push((copy, lost == Some(i), rng.next()));
        }
    }
    // Runs: per connection, consecutive items whose significant segments share a sender.
    // A RST is a run of its own: nothing is moved across it.
    let mut runs: Vec<Vec<usize>> = Vec::new();
    // Per connection: its current run, and the sender of its significant segments (`None`
    // for a RST).
    let mut current: BTreeMap<Tuple, (usize, Option<Option<SocketAddr>>)> = BTreeMap::new();
    for (i, (seg, _, _)) in items.iter().enumerate() {
        let (run, sender) = current.entry(seg.tuple()).or_insert_with(|| {
            runs.push(Vec::new());
            (runs.len() - 1, None)
        });
        if seg.significant() {
            let this = (!seg.flags.rst).then_some(seg.src);
            if sender.is_some_and(|s| s != this) || seg.flags.rst {
                runs.push(Vec::new());
                *run = runs.len() - 1;
            }
            *sender = Some(this);
        }
        runs[*run].push(i);
    }
    // Within each run, sort by rank plus a random delay below `window`, and put the items
    // back into the run's positions.
    let mut order: Vec<usize> = (0..items.len()).collect();
    for slots in &runs {
        let mut moved: Vec<(usize, usize)> = slots.iter().copied().enumerate().collect();
        moved.sort_by_key(|&(rank, i)| rank + (items[i].2 % window as u64) as usize);
        for (slot, (_, item)) in slots.iter().zip(moved) {
            order[*slot] = item;
        }
    }
    order
        .into_iter()
        .filter(|&i| !items[i].1)
        .map(|i| items[i].0.clone())
        .collect()
}

/// `seg` cut into `n` pieces at random places (fewer when the payload is shorter); FIN
/// goes with the last piece, SYN with the first.
fn pieces(seg: &Seg, n: usize, rng: &mut Rng) -> Vec<Seg> {
    let len = seg.payload.len();
    if len < 2 {
        return vec![seg.clone()];
    }
    let mut cuts: Vec<usize> = (1..n).map(|_| 1 + rng.below(len - 1)).collect();
    cuts.retain(|&c| c < len);
    cuts.push(0);
    cuts.push(len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .enumerate()
        .map(|(i, w)| Seg {
            seq: if i == 0 {
                seg.seq
            } else {
                seg.data_seq().wrapping_add(w[0] as u32)
            },
            flags: TcpFlags {
                syn: seg.flags.syn && i == 0,
                fin: seg.flags.fin && w[1] == len,
                ..seg.flags
            },
            payload: seg.payload[w[0]..w[1]].to_vec(),
            ..seg.clone()
        })
        .collect()
}

/// Each connection's [`Status`], from what survived in `damaged` against `original`.
fn status(original: &[Seg], damaged: &[Seg]) -> BTreeMap<Tuple, Status> {
    let mut out = BTreeMap::new();
    for tuple in original.iter().map(Seg::tuple) {
        if out.contains_key(&tuple) {
            continue;
        }
        let before: Vec<&Seg> = original.iter().filter(|s| s.tuple() == tuple).collect();
        let mut after: Vec<&Seg> = damaged.iter().filter(|s| s.tuple() == tuple).collect();
        // Reassembly forgets a connection at its RST.
        if let Some(rst) = after.iter().position(|s| s.flags.rst) {
            after.truncate(rst + 1);
        }
        let (mut lost, mut detectable) = (false, false);
        for sender in [tuple.0, tuple.1] {
            let Some(first) = before
                .iter()
                .find(|s| s.flags.syn && s.src == sender)
                .map(|s| s.data_seq())
            else {
                panic!("the capture has every SYN");
            };
            let offset = |seq: u32| i64::from(seq.wrapping_sub(first) as i32);
            // What this side sent: payload bytes, and the FIN's sequence number.
            let sent = |s: &&&Seg| s.src == sender && (!s.payload.is_empty() || s.flags.fin);
            let span = |s: &Seg| {
                let at = offset(s.data_seq());
                at..at + s.payload.len() as i64 + i64::from(s.flags.fin)
            };
            let end = before
                .iter()
                .filter(sent)
                .map(|s| span(s).end)
                .max()
                .unwrap_or(0);
            let mut covered = vec![false; usize::try_from(end).unwrap()];
            for s in after.iter().filter(sent) {
                let range = span(s);
                covered[range.start as usize..range.end as usize].fill(true);
            }
            let rst = |segs: &[&Seg]| segs.iter().any(|s| s.src == sender && s.flags.rst);
            // Where reassembly starts this side: its SYN, else the first segment with
            // payload or FIN, or the other side's first acknowledgment before it if earlier.
            let (mut acked, mut start) = (None, None);
            for s in &after {
                if start.is_some() {
                    break;
                }
                if s.src != sender && s.flags.ack {
                    acked.get_or_insert(offset(s.ack));
                } else if s.src == sender && s.flags.syn {
                    start = Some(0);
                } else if sent(&s) {
                    let at = offset(s.data_seq());
                    start = Some(acked.filter(|&ack| ack < at).unwrap_or(at));
                }
            }
            let start = start.unwrap_or(0);
            let known_start = after
                .iter()
                .filter(sent)
                .all(|s| start <= offset(s.data_seq()));
            lost |= covered.contains(&false) || rst(&before) && !rst(&after) || !known_start;
            // A hole after the start is seen when something shows the stream went beyond
            // it: a later segment of this side (an ACK or RST too), or the other side's
            // acknowledgment. A lost tail nothing shows leaves no trace.
            let hole = (start..end).find(|&at| !covered[at as usize]);
            if let Some(hole) = hole.filter(|_| known_start) {
                detectable |= after.iter().any(|s| {
                    if s.src == sender {
                        !s.flags.syn && offset(s.data_seq()) + s.payload.len() as i64 > hole
                    } else {
                        s.flags.ack && offset(s.ack) > hole
                    }
                });
            }
        }
        out.insert(
            tuple,
            if lost {
                Status::Lost { detectable }
            } else {
                Status::Whole
            },
        );
    }
    out
}

/// Nothing in `damaged` contradicts `undamaged`: each value is the same or not shown, each
/// side's handshake messages are among its undamaged ones in the same order (a gap holds
/// back the bytes after it until the connection ends, so the two sides' messages may
/// interleave differently), and an alert named is the real one from the real side.
///
/// The outcome may be another, though: the conversation is not told where a stream is
/// blind, and judges from what it saw. It may say "completed" when both Finished were seen
/// and the alert that followed was lost, or a hang-up or a reset when the answer before
/// it was lost. That is a fair reading of what the capture shows: `mtls trace` prints
/// the gaps under the verdict, and a loss nothing shows is as if it never happened.
fn consistent(damaged: &Summary, undamaged: &Summary) -> Result<(), String> {
    fn same_or_none<T: PartialEq + std::fmt::Debug>(
        what: &str,
        a: &Option<T>,
        b: &Option<T>,
    ) -> Result<(), String> {
        match a {
            Some(_) if a != b => Err(format!("{what} {a:?}, undamaged {b:?}")),
            _ => Ok(()),
        }
    }
    let (d, u) = (damaged, undamaged);
    same_or_none("sni", &d.sni, &u.sni)?;
    same_or_none("alpn", &d.alpn, &u.alpn)?;
    same_or_none("version", &d.version, &u.version)?;
    same_or_none("suite", &d.suite, &u.suite)?;
    same_or_none("group", &d.group, &u.group)?;
    same_or_none("resumed", &d.resumed, &u.resumed)?;
    same_or_none(
        "server certificate",
        &d.server_certificate,
        &u.server_certificate,
    )?;
    same_or_none("ja3", &d.ja3_full, &u.ja3_full)?;
    same_or_none("ja3s", &d.ja3s_full, &u.ja3s_full)?;
    same_or_none("ja4", &d.ja4, &u.ja4)?;
    if !d.alpn_offered.is_empty() && d.alpn_offered != u.alpn_offered {
        return Err(format!("alpn offered {:?}", d.alpn_offered));
    }
    if d.certificate_request != CertificateRequest::Unknown
        && d.certificate_request != u.certificate_request
    {
        return Err(format!("certificate request {:?}", d.certificate_request));
    }
    if d.client_certificate != ClientCertificate::Unknown
        && d.client_certificate != u.client_certificate
    {
        return Err(format!("client certificate {:?}", d.client_certificate));
    }
    for side in [Direction::ClientToServer, Direction::ServerToClient] {
        let mut undamaged = u.messages.iter().filter(|m| m.direction == side);
        let mut seen = d.messages.iter().filter(|m| m.direction == side);
        if !seen.all(|m| undamaged.any(|n| n == m)) {
            return Err(format!(
                "{side:?} handshake messages not in the undamaged capture"
            ));
        }
    }
    match (&d.outcome, &u.outcome) {
        (
            Outcome::Failed {
                alert: Some(alert),
                by,
                ..
            },
            Outcome::Failed {
                alert: Some(was),
                by: was_by,
                ..
            },
        ) if alert == was && by == was_by => Ok(()),
        (Outcome::Failed { alert: Some(_), .. }, _) => Err(format!("outcome {:?}", d.outcome)),
        _ => Ok(()),
    }
}

/// `mtls trace` without -V on `segments`: each connection's summary and gap count, by its
/// endpoints (several if one 4-tuple made several flows).
fn trace(segments: &[Seg], keylog: &Arc<KeyLog>) -> BTreeMap<Tuple, Vec<Seen>> {
    struct Flow {
        tuple: Tuple,
        dissector: Dissector,
        conversation: Conversation,
        gaps: usize,
    }
    let mut reassembler = Reassembler::new();
    let mut flows: BTreeMap<FlowId, Flow> = BTreeMap::new();
    let mut out: BTreeMap<Tuple, Vec<Seen>> = BTreeMap::new();
    let mut events = Vec::new();
    for seg in segments {
        let segment = Segment {
            src: seg.src,
            dst: seg.dst,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            payload: &seg.payload,
        };
        // The events borrow `segments`, which outlive them.
        reassembler.feed(seg.ts, &segment, &mut events);
    }
    reassembler.finish(&mut events);
    for event in events {
        match event {
            Event::Opened {
                flow,
                client,
                server,
                ..
            } => {
                let tuple = if client <= server {
                    (client, server)
                } else {
                    (server, client)
                };
                flows.insert(
                    flow,
                    Flow {
                        tuple,
                        dissector: Dissector::new(Arc::clone(keylog)).with_detail(Detail::Summary),
                        conversation: Conversation::new(),
                        gaps: 0,
                    },
                );
            }
            Event::Data {
                flow, dir, bytes, ..
            } => {
                let f = flows.get_mut(&flow).unwrap();
                for event in f.dissector.feed(direction(dir), &bytes) {
                    f.conversation.observe_owned(event);
                }
            }
            Event::Gap {
                flow,
                dir,
                at,
                missing,
            } => {
                let f = flows.get_mut(&flow).unwrap();
                f.gaps += 1;
                let _ = f.dissector.gap(direction(dir), at, missing);
                f.conversation.tcp_gap(direction(dir), at, missing);
            }
            Event::Fin { flow, dir, .. } => {
                let f = flows.get_mut(&flow).unwrap();
                f.conversation.tcp_fin(direction(dir));
            }
            Event::Closed {
                flow,
                how,
                first_fin,
                ..
            } => {
                let mut f = flows.remove(&flow).unwrap();
                f.conversation.tcp_closed(match (how, first_fin) {
                    (Close::Reset { by }, _) => Ending::Reset { by: direction(by) },
                    (Close::Fin, Some(by)) => Ending::Fin { by: direction(by) },
                    _ => Ending::EndOfCapture,
                });
                out.entry(f.tuple).or_default().push(Seen {
                    summary: f.conversation.summary(),
                    gaps: f.gaps,
                });
            }
            _ => {}
        }
    }
    out
}

fn direction(way: Way) -> Direction {
    match way {
        Way::ClientToServer => Direction::ClientToServer,
        Way::ServerToClient => Direction::ServerToClient,
    }
}

/// A tiny deterministic generator: proptest picks the seed, this spends it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

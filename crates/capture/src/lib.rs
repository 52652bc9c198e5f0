//! `mtls-capture`: packet captures in, one pair of TCP byte streams per connection out.
//!
//! `mtls trace` explains a failed mutual-TLS handshake from a capture someone already took
//! (tcpdump, Wireshark, a Kubernetes sidecar). The TLS dissector (`mtls-inspect`) wants each
//! connection's two byte streams in order; a capture holds link-layer frames, possibly out of
//! order, retransmitted or lost. This crate closes that distance, and nothing more: it opens
//! no file and no socket (the reader takes any [`std::io::Read`]), so tests and fuzzers drive
//! every layer with bytes.
//!
//! ```text
//!  impl Read (file, stdin; gzip detected by its 1f 8b magic)
//!        │
//!        ▼
//!  CaptureReader::next ── pcap (µs/ns, both byte orders)
//!        │                 pcapng (SHB/IDB/EPB/SPB/PB, if_tsresol, DSB "TLSK")
//!        ▼
//!  Block::Packet { ts_nanos, link, data }      Block::KeyLog(String)
//!        │  (data lent from the reader's window)  ──▶ mtls-inspect KeyLog
//!        │
//!        ▼
//!  packet::decode ── Ethernet (+802.1Q/802.1ad), SLL, SLL2, null/loop, raw
//!        │           └─ IPv4 (options; fragments skipped) / IPv6 (extension headers)
//!        ▼              └─ TCP (options skipped)
//!  Decoded::Tcp(Segment { src, dst, seq, ack, flags, payload })
//!        │
//!        ▼
//!  Reassembler::feed ── per 4-tuple, per direction: ISN from SYN (or first segment),
//!        │              wrap-safe offsets, out-of-order buffer (bounded), first copy wins
//!        ▼
//!  Event = Opened | Data { dir, bytes } | Gap { at, missing } | Fin { dir }
//!        | Closed { how (Fin, Reset, EndOfCapture, Evicted, Reused), first_fin }
//!        │  (in-order bytes lent from the packet, no copy)
//!        │
//!        ▼
//!  mtls-inspect Dissector::feed(direction, bytes)
//! ```
//!
//! # Using it
//!
//! ```
//! use mtls_capture::{Block, CaptureReader, Decoded, Reassembler, decode};
//!
//! # fn run(file: impl std::io::Read) -> Result<(), mtls_capture::CaptureError> {
//! let mut reader = CaptureReader::new(file)?;
//! let mut reassembler = Reassembler::new();
//! while let Some(block) = reader.next()? {
//!     match block {
//!         Block::Packet(packet) => {
//!             if let Ok(Decoded::Tcp(segment)) = decode(packet.link, &packet.data) {
//!                 // Events borrow the packet: handle them before the next one.
//!                 let mut events = Vec::new();
//!                 reassembler.feed(packet.ts_nanos, &segment, &mut events);
//!                 for event in events { /* Data events go to the dissector */ }
//!             }
//!         }
//!         Block::KeyLog(text) => { /* hand to mtls_inspect::KeyLog::parse */ }
//!         _ => {}
//!     }
//! }
//! let mut events = Vec::new();
//! reassembler.finish(&mut events);
//! # Ok(()) }
//! # let empty_pcap = [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
//! #                   0xff, 0xff, 0, 0, 1, 0, 0, 0];
//! # run(&empty_pcap[..]).expect("an empty capture reads");
//! ```
//!
//! # What is lost, and how it shows
//!
//! Bytes the capture never saw cannot be invented: they surface as [`Event::Gap`] with the
//! stream offset and length, and the bytes after a gap are still delivered, so the caller
//! knows exactly where its view of a stream is blind. A loss shows wherever a later segment
//! or the other side's acknowledgment reaches past it, so a lost first flight (with its
//! SYN-ACK) or a lost last one (alert and FIN) is a gap too. Reassembly never delivers a
//! byte at a wrong offset. Where a TLS record starts after a gap is unknown, so a caller
//! that dissects should stop dissecting that direction at its first gap. Memory is bounded
//! by the connections open at once: each direction buffers at most
//! [`Limits::max_buffered`] bytes out of order, and at most [`Limits::max_flows`]
//! connections are tracked (the least recently active one is closed with
//! [`Close::Evicted`]).
//!
//! # Robustness
//!
//! Every byte comes from a file someone handed us: nothing here panics on it, lengths above
//! 256 MiB are errors before anything is allocated, and a truncated file ends with an
//! error naming the byte offset where it stops. Property tests check reassembly on
//! synthetic streams and on a real capture (`tests/data`, six mTLS handshakes with
//! `mtls serve`) cut, reordered, duplicated and thinned: every connection still fully shown
//! sums up as before, every other one reports a gap or sums up the same, and none shows a
//! value the capture does not. `crates/capture/fuzz` has cargo-fuzz targets: `reader`
//! (any bytes as a capture, plain and gzip-compressed, which must read alike), `reassembly`
//! (any segments between four endpoints, checking that each stream's events follow on
//! and that a flow's events come between its `Opened` and `Closed`) and `trace` (any
//! packets through reader, reassembly and `mtls-inspect`, as `mtls trace` runs them):
//!
//! ```text
//! cargo install cargo-fuzz
//! cd crates/capture && RUSTC_BOOTSTRAP=1 cargo fuzz run reassembly -- -max_total_time=180
//! ```
//!
//! (`scripts/fuzz reassembly 180` does the same, seeding the corpus from the real capture
//! with `fuzz/seed-corpus.sh` first.) The fuzz crate is its own workspace, so the main build
//! never sees libfuzzer.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod packet;
pub mod reader;
pub mod reassembly;

pub use packet::{Decoded, PacketError, Segment, Skipped, TcpFlags, decode};
pub use reader::{Block, CaptureError, CaptureReader, LinkType, Packet};
pub use reassembly::{ClientRule, Close, Direction, Event, FlowId, Limits, Reassembler};

//! `mtls-inspect`: a sans-I/O TLS dissector with key-log decryption.
//!
//! When mutual TLS fails, the answer is in the handshake: which CAs the server asked for
//! in its CertificateRequest, which certificate the client sent (or that it sent none), and
//! which alert ended it. In TLS 1.3 all of that is encrypted, so this crate also decrypts,
//! with the NSS key log (`SSLKEYLOGFILE`) the endpoint wrote. It takes `&[u8]` and never
//! opens a socket or a file, so `mtls get --trace` (bytes it recorded from its own
//! connection) and `mtls trace` (bytes from a capture) share it, and fuzzers can drive it.
//!
//! ```text
//!  bytes seen, per direction
//!        │
//!        ▼
//!  Dissector::feed ── record::parse_record    frame records, keep partial ones
//!        │
//!        ├── decrypt (aws-lc-rs)              TLS 1.3: *_HANDSHAKE_TRAFFIC_SECRET after
//!        │                                    ServerHello, *_TRAFFIC_SECRET_0 after Finished,
//!        │                                    KeyUpdate; TLS 1.2: CLIENT_RANDOM after CCS
//!        │
//!        ├── handshake::parse_handshake       reassemble messages across records,
//!        │                                    decode every field
//!        ▼
//!  Vec<Event { direction, record: RecordInfo, item: Item }>
//!        │      Item = Handshake | ChangeCipherSpec | Alert | ApplicationData
//!        │           | Encrypted | Malformed
//!        ▼
//!  Display, framed by `render` (the text of get --trace and trace -V), or serde (--json)
//!        │
//!        ▼
//!  Conversation::observe + tcp_closed         per connection: what was negotiated, which
//!        │                                    certificates went each way, and why it failed
//!        ▼
//!  Summary (Display: one line for `mtls trace`; serde: JSON Lines), with the hellos'
//!  JA3, JA3S and JA4 from `fingerprint` (JA4 only of the JA4+ family: see its licence note)
//! ```
//!
//! # Using it
//!
//! ```
//! use mtls_inspect::{Direction, Dissector, KeyLog};
//!
//! let keylog = KeyLog::parse("# no secrets today\n")?;
//! let mut dissector = Dissector::new(keylog);
//! // An alert record, as a server sends when the client brought no certificate.
//! let events = dissector.feed(Direction::ServerToClient, &[21, 3, 3, 0, 2, 2, 116]);
//! assert_eq!(
//!     events[0].to_string(),
//!     "← alert record TLS 1.2 (0x0303), 2 bytes: fatal certificate_required (116)"
//! );
//! # Ok::<(), mtls_inspect::KeyLogError>(())
//! ```
//!
//! Feed each direction's bytes in the order they were seen; the key log should be complete
//! before feeding (see [`Dissector::set_keylog`] for what happens when it is not).
//!
//! # What decrypts
//!
//! TLS 1.3 with TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 and
//! TLS_CHACHA20_POLY1305_SHA256, including KeyUpdate; TLS 1.2 AEAD suites (AES-GCM and
//! ChaCha20-Poly1305, with ECDHE, DHE or RSA key exchange). CBC suites and 0-RTT early data
//! show as [`Item::Encrypted`].
//!
//! # Robustness
//!
//! Every input comes from the network, so nothing here panics or indexes out of bounds on
//! it: the parsers return [`ParseError::Incomplete`] (wait for more bytes) distinctly from
//! [`ParseError::Malformed`], and the [`Dissector`] turns the latter into
//! [`Item::Malformed`] events. Property tests check this on random and truncated input, and
//! `crates/inspect/fuzz` has cargo-fuzz targets (`record`, `handshake`, `dissector`):
//!
//! ```text
//! cargo install cargo-fuzz
//! cd crates/inspect && RUSTC_BOOTSTRAP=1 cargo fuzz run dissector -- -max_total_time=60
//! ```
//!
//! The fuzz crate is its own workspace, so the main build never sees libfuzzer.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conversation;
pub mod fingerprint;
pub mod handshake;
pub mod keylog;
pub mod record;
pub mod render;

mod decrypt;
mod dissector;
mod names;

pub use conversation::{
    Alert, Certificate, CertificateRequest, ClientCertificate, Close, Conversation, Message,
    Outcome, Summary,
};
pub use dissector::{Direction, Dissector, Event, Item, RecordInfo};
pub use fingerprint::{Ja3, ja3, ja3s, ja4};
pub use handshake::{Detail, Field, HandshakeContext, HandshakeMessage, parse_handshake};
pub use keylog::{KeyLog, KeyLogError};
pub use record::{ParseError, Record, parse_record};
pub use render::Framed;

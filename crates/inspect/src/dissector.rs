//! The per-connection dissector: frames records in each direction, decrypts them when the
//! key log has the secrets, reassembles handshake messages and follows the key schedule.
//!
//! It is a state machine over bytes, not over sockets, so `mtls get --trace` (bytes it
//! recorded itself) and `mtls trace` (bytes from a capture) drive it the same way.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::decrypt::{DecryptError, RecordKey, Suite};
use crate::handshake::{self, Detail, Field, HandshakeContext, HandshakeMessage, Meta};
use crate::keylog::{KeyLog, Secrets};
use crate::names;
use crate::record::{self, ParseError, Record};

/// Which way bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the client to the server (`→` in the trace).
    ClientToServer,
    /// From the server to the client (`←` in the trace).
    ServerToClient,
}

/// Dissects one TCP connection, both directions.
///
/// Feed bytes in the order they were seen on the wire (the order matters across directions:
/// the client's encrypted records can only be read after the server's ServerHello).
#[derive(Debug)]
pub struct Dissector {
    /// Shared: `mtls trace` gives every connection the capture's one key log.
    keylog: Arc<KeyLog>,
    client: Side,
    server: Side,
    client_random: Option<[u8; 32]>,
    server_random: Option<[u8; 32]>,
    ctx: HandshakeContext,
}

/// Something a fed chunk of bytes completed: one handshake message, alert, or record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Which way it went.
    pub direction: Direction,
    /// The record it came in (for a message spanning records, the last one).
    pub record: RecordInfo,
    /// What it is.
    pub item: Item,
}

/// The record an item came in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordInfo {
    /// Content type name: "handshake", "application_data", "alert", "change_cipher_spec".
    /// For a decrypted TLS 1.3 record, the inner (real) content type.
    pub content_type: Cow<'static, str>,
    /// Legacy record version from the header, e.g. 0x0303.
    pub version: u16,
    /// Record length from the header (ciphertext length when encrypted).
    pub length: u16,
    /// Whether the record was decrypted with key-log secrets.
    pub decrypted: bool,
}

/// A decoded item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    /// A handshake message.
    Handshake(HandshakeMessage),
    /// A ChangeCipherSpec (in TLS 1.3 only for middlebox compatibility, and skipped).
    ChangeCipherSpec,
    /// An alert.
    Alert {
        /// "warning" or "fatal".
        level: String,
        /// The RFC name, e.g. "certificate_required", "close_notify".
        description: String,
        /// The numeric code, e.g. 116.
        code: u8,
    },
    /// Decrypted (or, oddly, plaintext) application data.
    ApplicationData {
        /// Plaintext length in bytes.
        length: usize,
    },
    /// A record that could not be decrypted: the key log has no secret for it, or it uses a
    /// cipher we do not decrypt (CBC suites, 0-RTT early data).
    Encrypted {
        /// Ciphertext length in bytes.
        length: usize,
    },
    /// Bytes that do not parse, or a record that failed to decrypt with the logged secret.
    Malformed {
        /// What went wrong.
        reason: String,
    },
}

impl Dissector {
    /// A dissector that decrypts with the secrets in `keylog` (pass [`KeyLog::empty`] to
    /// see only the plaintext part of handshakes).
    pub fn new(keylog: impl Into<Arc<KeyLog>>) -> Dissector {
        Dissector {
            keylog: keylog.into(),
            client: Side::default(),
            server: Side::default(),
            client_random: None,
            server_random: None,
            ctx: HandshakeContext::default(),
        }
    }

    /// Renders handshake messages at `detail` ([`Detail::Full`] unless asked).
    pub fn with_detail(mut self, detail: Detail) -> Dissector {
        self.ctx.detail = detail;
        self
    }

    /// Replaces the key log.
    ///
    /// Records already reported stay reported (as [`Item::Encrypted`] if their secret was
    /// missing); they are not decrypted again. Keys are looked up when a record needs them,
    /// and sequence numbers are counted with or without keys, so secrets that arrive in the
    /// middle of an epoch decrypt the rest of it. TLS 1.3 key changes are only seen in
    /// decrypted handshake messages (Finished, KeyUpdate), though, so a TLS 1.3 key log that
    /// arrives after the encrypted handshake cannot help. The simple and reliable use is to
    /// give the complete key log before feeding anything, as `mtls get --trace` does (it
    /// records the connection first and dissects afterwards).
    pub fn set_keylog(&mut self, keylog: impl Into<Arc<KeyLog>>) {
        self.keylog = keylog.into();
        for side in [&mut self.client, &mut self.server] {
            if let Protection::Encrypted { key, .. } = &mut side.protection {
                *key = KeyState::NotYet;
            }
        }
    }

    /// The TLS version the ServerHello selected, once seen (0x0304 for TLS 1.3).
    pub fn version(&self) -> Option<u16> {
        self.ctx.version
    }

    /// The cipher suite the ServerHello selected, once seen.
    pub fn cipher_suite(&self) -> Option<u16> {
        self.ctx.cipher_suite
    }

    /// Feeds the next bytes seen in one direction; returns what they completed. Records and
    /// handshake messages may span calls: partial data is kept per direction.
    pub fn feed(&mut self, direction: Direction, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        self.feed_into(direction, bytes, &mut events);
        events
    }

    /// The capture lost `missing` bytes of `direction` at stream offset `at`. Where the next
    /// record starts after them is unknown, and bytes parsed from a wrong offset would be
    /// explained with confidence, so the rest of that direction is not dissected; the one
    /// event returned says so (as [`Item::Malformed`]).
    pub fn gap(&mut self, direction: Direction, at: u64, missing: u64) -> Option<Event> {
        let side = self.side(direction);
        if side.desynced {
            return None;
        }
        side.desynced = true;
        side.pending.clear();
        side.handshake.clear();
        Some(Event {
            direction,
            record: RecordInfo {
                content_type: Cow::Borrowed(""),
                version: 0,
                length: 0,
                decrypted: false,
            },
            item: Item::Malformed {
                reason: format!(
                    "{missing} byte(s) missing from the capture at stream offset {at}; the rest \
                     of this direction is not dissected"
                ),
            },
        })
    }

    /// [`Dissector::feed`] appending to `events`, so a caller reading many connections can
    /// keep one vector for all of them.
    pub fn feed_into(&mut self, direction: Direction, bytes: &[u8], events: &mut Vec<Event>) {
        if self.side(direction).desynced {
            return;
        }
        // Records are parsed where they lie: from `bytes` itself when nothing is pending
        // (nearly always), so only an incomplete record's start is ever copied.
        let mut pending = std::mem::take(&mut self.side(direction).pending);
        let joined = !pending.is_empty();
        if joined {
            pending.extend_from_slice(bytes);
        }
        let input: &[u8] = if joined { &pending } else { bytes };
        let mut offset = 0;
        loop {
            let rest = input.get(offset..).unwrap_or_default();
            match record::parse_record(rest) {
                Ok((record, used)) => {
                    offset += used;
                    self.on_record(direction, &record, events);
                }
                Err(ParseError::Incomplete { .. }) => break,
                Err(ParseError::Malformed(reason)) => {
                    let info = RecordInfo {
                        content_type: rest
                            .first()
                            .map_or(Cow::Borrowed(""), |&t| names::content_type(t)),
                        version: 0,
                        length: 0,
                        decrypted: false,
                    };
                    let reason = format!("{reason}; the rest of this direction is not dissected");
                    events.push(Event {
                        direction,
                        record: info,
                        item: Item::Malformed { reason },
                    });
                    let side = self.side(direction);
                    side.desynced = true;
                    side.handshake.clear();
                    return;
                }
            }
        }
        if joined {
            pending.drain(..offset.min(pending.len()));
        } else {
            pending.extend_from_slice(bytes.get(offset..).unwrap_or_default());
        }
        self.side(direction).pending = pending;
    }

    fn side(&mut self, direction: Direction) -> &mut Side {
        match direction {
            Direction::ClientToServer => &mut self.client,
            Direction::ServerToClient => &mut self.server,
        }
    }

    fn tls13(&self) -> bool {
        self.ctx.version == Some(TLS13)
    }

    fn on_record(&mut self, direction: Direction, record: &Record<'_>, events: &mut Vec<Event>) {
        let length = u16::try_from(record.fragment.len()).unwrap_or(u16::MAX);
        let mut info = RecordInfo {
            content_type: names::content_type(record.content_type),
            version: record.version,
            length,
            decrypted: false,
        };
        let push = |events: &mut Vec<Event>, info: &RecordInfo, item: Item| {
            events.push(Event {
                direction,
                record: info.clone(),
                item,
            });
        };
        // TLS 1.3 protects only application_data records; a CCS or a plaintext alert can
        // still appear in the clear. TLS 1.2 protects everything after ChangeCipherSpec.
        let protected = match self.side(direction).protection {
            Protection::Plaintext => false,
            Protection::Encrypted {
                epoch: Epoch::Tls12,
                ..
            } => true,
            Protection::Encrypted { .. } => record.content_type == APPLICATION_DATA,
        };
        let (content_type, plaintext) = if protected {
            match self.decrypt(direction, record) {
                Decrypted::Plain(content_type, plaintext) => {
                    info.content_type = names::content_type(content_type);
                    info.decrypted = true;
                    (content_type, plaintext)
                }
                Decrypted::NoKey => {
                    let item = Item::Encrypted {
                        length: record.fragment.len(),
                    };
                    return push(events, &info, item);
                }
                Decrypted::Failed(reason) => {
                    return push(events, &info, Item::Malformed { reason });
                }
            }
        } else {
            (record.content_type, record.fragment.to_vec())
        };
        match content_type {
            CHANGE_CIPHER_SPEC => {
                if plaintext != [1] {
                    let reason = format!("ChangeCipherSpec body {}", hex::encode(&plaintext));
                    return push(events, &info, Item::Malformed { reason });
                }
                push(events, &info, Item::ChangeCipherSpec);
                // TLS 1.3 middlebox-compatibility CCS changes nothing.
                if !self.tls13() {
                    self.side(direction).protection = Protection::Encrypted {
                        epoch: Epoch::Tls12,
                        seq: 0,
                        key: KeyState::NotYet,
                    };
                }
            }
            ALERT => {
                let (alerts, rest) = plaintext.as_chunks::<2>();
                for &[level, code] in alerts {
                    let item = Item::Alert {
                        level: names::alert_level(level),
                        description: names::alert_description(code),
                        code,
                    };
                    push(events, &info, item);
                }
                if alerts.is_empty() || !rest.is_empty() {
                    let reason = format!("alert record of {} bytes", plaintext.len());
                    push(events, &info, Item::Malformed { reason });
                }
            }
            HANDSHAKE => self.on_handshake_bytes(direction, &info, &plaintext, events),
            APPLICATION_DATA if info.decrypted => {
                push(
                    events,
                    &info,
                    Item::ApplicationData {
                        length: plaintext.len(),
                    },
                );
            }
            // Application data is never sent in the clear; before we track keys (0-RTT data,
            // or a capture that starts mid-connection) it is ciphertext we cannot place.
            APPLICATION_DATA => push(
                events,
                &info,
                Item::Encrypted {
                    length: plaintext.len(),
                },
            ),
            other => {
                let reason = format!(
                    "{} record of {} bytes is not dissected",
                    names::content_type(other),
                    plaintext.len()
                );
                push(events, &info, Item::Malformed { reason });
            }
        }
    }

    fn on_handshake_bytes(
        &mut self,
        direction: Direction,
        info: &RecordInfo,
        bytes: &[u8],
        events: &mut Vec<Event>,
    ) {
        let mut buffer = std::mem::take(&mut self.side(direction).handshake);
        buffer.extend_from_slice(bytes);
        let mut offset = 0;
        while offset < buffer.len() {
            let rest = buffer.get(offset..).unwrap_or_default();
            let parsed = match handshake::parse_framed(rest, &self.ctx) {
                Ok(parsed) => parsed,
                Err(_) => break, // incomplete: wait for the next record
            };
            offset += parsed.consumed;
            let item = match parsed.error {
                None => Item::Handshake(parsed.message),
                Some(reason) => Item::Malformed {
                    reason: format!("{}: {reason}", parsed.message.kind),
                },
            };
            events.push(Event {
                direction,
                record: info.clone(),
                item,
            });
            self.on_message(direction, &parsed.meta);
        }
        buffer.drain(..offset.min(buffer.len()));
        self.side(direction).handshake = buffer;
    }

    /// Follows the handshake: randoms, the negotiated version and suite, and the TLS 1.3
    /// key changes (ServerHello, Finished, KeyUpdate).
    fn on_message(&mut self, direction: Direction, meta: &Meta) {
        match (direction, meta.msg_type) {
            (Direction::ClientToServer, handshake::CLIENT_HELLO) => {
                // A second ClientHello (after HelloRetryRequest) repeats the random.
                self.client_random = self.client_random.or(meta.random);
            }
            (Direction::ServerToClient, handshake::SERVER_HELLO) if meta.hello_retry => {
                // Only TLS 1.3 retries; knowing it keeps the CCS that may follow harmless.
                self.ctx.version = meta.selected_version;
                self.ctx.cipher_suite = meta.cipher_suite;
            }
            (Direction::ServerToClient, handshake::SERVER_HELLO) => {
                self.server_random = meta.random;
                self.ctx.version = meta.selected_version;
                self.ctx.cipher_suite = meta.cipher_suite;
                if self.tls13() {
                    for side in [&mut self.client, &mut self.server] {
                        side.protection = Protection::tls13(0, Epoch::Tls13Handshake);
                    }
                }
            }
            (_, handshake::FINISHED) if self.tls13() => {
                self.side(direction).protection = Protection::tls13(0, Epoch::Tls13Application(0));
            }
            (_, handshake::KEY_UPDATE) if self.tls13() => {
                let side = self.side(direction);
                if let Protection::Encrypted {
                    epoch: Epoch::Tls13Application(generation),
                    ..
                } = side.protection
                {
                    side.protection =
                        Protection::tls13(0, Epoch::Tls13Application(generation.saturating_add(1)));
                }
            }
            _ => {}
        }
    }

    fn decrypt(&mut self, direction: Direction, record: &Record<'_>) -> Decrypted {
        let derived = self.derive_key(direction);
        let side = self.side(direction);
        let Protection::Encrypted { epoch, seq, key } = &mut side.protection else {
            return Decrypted::NoKey;
        };
        let this_seq = *seq;
        *seq = seq.saturating_add(1);
        if let KeyState::NotYet = key {
            *key = match derived {
                Some(k) => KeyState::Ready(Box::new(k)),
                None => KeyState::Missing,
            };
        }
        let KeyState::Ready(key) = key else {
            return Decrypted::NoKey;
        };
        match key.decrypt(this_seq, record.header, record.fragment) {
            Ok((content_type, plaintext)) => Decrypted::Plain(content_type, plaintext),
            Err(error) => {
                let what = match error {
                    DecryptError::TooShort => "record too short for its cipher",
                    DecryptError::Authentication => {
                        "authentication failed: wrong secret in the key log, or records missing"
                    }
                    DecryptError::NoContentType => "inner plaintext has no content type",
                };
                Decrypted::Failed(format!(
                    "cannot decrypt ({}): {what}",
                    epoch.describe(direction)
                ))
            }
        }
    }

    /// The read key for `direction`'s current epoch, if the key log has what it needs.
    /// Only derived while the side has no key yet (first record of an epoch, or after
    /// `set_keylog`).
    fn derive_key(&self, direction: Direction) -> Option<RecordKey> {
        let side = match direction {
            Direction::ClientToServer => &self.client,
            Direction::ServerToClient => &self.server,
        };
        let Protection::Encrypted {
            epoch,
            key: KeyState::NotYet,
            ..
        } = side.protection
        else {
            return None;
        };
        let secrets: &Secrets = self.keylog.secrets(self.client_random.as_ref()?)?;
        let suite_id = self.ctx.cipher_suite?;
        let client = direction == Direction::ClientToServer;
        match epoch {
            Epoch::Tls12 => {
                let suite = Suite::tls12(suite_id)?;
                let master = secrets.master_secret.as_deref()?;
                let client_random = self.client_random.as_ref()?;
                let server_random = self.server_random.as_ref()?;
                let (client_key, server_key) =
                    suite.tls12_keys(master, client_random, server_random)?;
                Some(if client { client_key } else { server_key })
            }
            Epoch::Tls13Handshake => {
                let suite = Suite::tls13(suite_id)?;
                let secret = if client {
                    secrets.client_handshake_traffic.as_deref()?
                } else {
                    secrets.server_handshake_traffic.as_deref()?
                };
                suite.tls13_key(secret)
            }
            Epoch::Tls13Application(generation) => {
                let suite = Suite::tls13(suite_id)?;
                let mut secret = if client {
                    secrets.client_traffic_0.clone()?
                } else {
                    secrets.server_traffic_0.clone()?
                };
                for _ in 0..generation {
                    secret = suite.next_traffic_secret(&secret)?;
                }
                suite.tls13_key(&secret)
            }
        }
    }
}

impl Item {
    /// The handshake message, if this is one.
    pub fn handshake(&self) -> Option<&HandshakeMessage> {
        match self {
            Item::Handshake(message) => Some(message),
            _ => None,
        }
    }
}

/// The `--trace` text: a record line, then for handshake messages the message and its
/// fields, indented. No trailing newline.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::ClientToServer => '→',
            Direction::ServerToClient => '←',
        };
        let record = &self.record;
        if record.version == 0 {
            // Framing failed: there is no record to describe.
            if let Item::Malformed { reason } = &self.item {
                return write!(f, "{arrow} malformed: {reason}");
            }
        }
        write!(f, "{arrow} {} record", record.content_type)?;
        if record.decrypted {
            write!(f, ", decrypted")?;
        } else {
            let length = usize::from(record.length);
            write!(
                f,
                " {}, {}",
                names::version(record.version),
                plural_bytes(length)
            )?;
        }
        match &self.item {
            Item::Handshake(message) => {
                write!(f, "\n  {} ({})", message.kind, plural_bytes(message.length))?;
                for field in &message.fields {
                    write_field(f, field, 2)?;
                }
                Ok(())
            }
            Item::ChangeCipherSpec => write!(f, ": ChangeCipherSpec"),
            Item::Alert {
                level,
                description,
                code,
            } => {
                write!(f, ": {level} {description} ({code})")
            }
            Item::ApplicationData { length } => {
                write!(f, ": {} of application data", plural_bytes(*length))
            }
            Item::Encrypted { length } => {
                write!(
                    f,
                    ": encrypted, {} (no secret for it in the key log)",
                    plural_bytes(*length)
                )
            }
            Item::Malformed { reason } => write!(f, ": malformed: {reason}"),
        }
    }
}

fn plural_bytes(n: usize) -> String {
    match n {
        1 => "1 byte".to_owned(),
        n => format!("{n} bytes"),
    }
}

fn write_field(f: &mut fmt::Formatter<'_>, field: &Field, depth: usize) -> fmt::Result {
    let indent = "  ".repeat(depth);
    if field.value.is_empty() {
        write!(f, "\n{indent}{}", field.name)?;
    } else {
        write!(f, "\n{indent}{}: {}", field.name, field.value)?;
    }
    for child in &field.children {
        write_field(f, child, depth + 1)?;
    }
    Ok(())
}

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const TLS13: u16 = 0x0304;

/// One direction's state.
#[derive(Debug, Default)]
struct Side {
    /// Bytes not yet framed into a record.
    pending: Vec<u8>,
    /// Handshake bytes not yet a whole message.
    handshake: Vec<u8>,
    protection: Protection,
    /// Framing failed: the stream is not TLS or we lost our place, so stop.
    desynced: bool,
}

#[derive(Debug, Default)]
enum Protection {
    #[default]
    Plaintext,
    /// Records are protected with `epoch`'s keys; `seq` counts records of the epoch whether
    /// or not we can decrypt them.
    Encrypted {
        epoch: Epoch,
        seq: u64,
        key: KeyState,
    },
}

#[derive(Debug)]
enum KeyState {
    /// Not looked up yet (new epoch, or a new key log).
    NotYet,
    /// The key log lacks a secret, or the suite is not one we decrypt.
    Missing,
    Ready(Box<RecordKey>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epoch {
    /// After ChangeCipherSpec, keys from the master secret.
    Tls12,
    /// After ServerHello, keys from the handshake traffic secrets.
    Tls13Handshake,
    /// After each side's Finished; the number counts KeyUpdates.
    Tls13Application(u64),
}

impl Protection {
    fn tls13(seq: u64, epoch: Epoch) -> Protection {
        Protection::Encrypted {
            epoch,
            seq,
            key: KeyState::NotYet,
        }
    }
}

impl Epoch {
    fn describe(self, direction: Direction) -> String {
        let who = match direction {
            Direction::ClientToServer => "CLIENT",
            Direction::ServerToClient => "SERVER",
        };
        match self {
            Epoch::Tls12 => "TLS 1.2 keys from CLIENT_RANDOM".to_owned(),
            Epoch::Tls13Handshake => format!("{who}_HANDSHAKE_TRAFFIC_SECRET"),
            Epoch::Tls13Application(0) => format!("{who}_TRAFFIC_SECRET_0"),
            Epoch::Tls13Application(n) => format!("{who}_TRAFFIC_SECRET_0 after {n} KeyUpdates"),
        }
    }
}

enum Decrypted {
    Plain(u8, Vec<u8>),
    NoKey,
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_peer_is_reported_once() {
        let mut dissector = Dissector::new(KeyLog::empty());
        let events = dissector.feed(Direction::ServerToClient, b"HTTP/1.1 400 Bad Request\r\n");
        assert_eq!(events.len(), 1);
        let text = events[0].to_string();
        assert!(
            text.starts_with("← malformed: not TLS: the bytes are plain text"),
            "{text}"
        );
        assert!(
            dissector
                .feed(Direction::ServerToClient, b"more")
                .is_empty()
        );
        // The other direction is unaffected.
        let alert = dissector.feed(Direction::ClientToServer, &[21, 3, 3, 0, 2, 1, 0]);
        assert_eq!(
            alert[0].to_string(),
            "→ alert record TLS 1.2 (0x0303), 2 bytes: warning close_notify (0)"
        );
    }

    #[test]
    fn records_split_across_feeds() {
        let mut dissector = Dissector::new(KeyLog::empty());
        let bytes = [21, 3, 3, 0, 4, 2, 116, 2, 48, 20, 3, 3, 0, 1, 1];
        assert!(
            dissector
                .feed(Direction::ServerToClient, &bytes[..6])
                .is_empty()
        );
        let events = dissector.feed(Direction::ServerToClient, &bytes[6..]);
        let items: Vec<&Item> = events.iter().map(|e| &e.item).collect();
        assert!(matches!(items[0], Item::Alert { code: 116, .. }));
        assert!(matches!(items[1], Item::Alert { code: 48, description, .. }
                if description == "unknown_ca"));
        assert_eq!(items[2], &Item::ChangeCipherSpec);
        // After a TLS 1.2 ChangeCipherSpec the records are ciphertext.
        let events = dissector.feed(Direction::ServerToClient, &[22, 3, 3, 0, 3, 9, 9, 9]);
        assert_eq!(events[0].item, Item::Encrypted { length: 3 });
        assert_eq!(
            events[0].to_string(),
            "← handshake record TLS 1.2 (0x0303), 3 bytes: encrypted, 3 bytes (no secret for it \
             in the key log)"
        );
    }
}

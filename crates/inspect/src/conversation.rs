//! One TLS connection summed up: what was negotiated, which certificates went each way, and,
//! when the handshake failed, one sentence that says why.
//!
//! A [`Conversation`] is fed the [`Event`]s a [`Dissector`](crate::Dissector) produced for
//! both directions, in wire order, and then how TCP ended ([`Close`]); it never sees bytes
//! or sockets. The verdict is worded like the gateway's refusal log ("the server refused the
//! client certificate CN=alice (issued by CN=Other CA) with alert unknown_ca: ..."), because
//! `mtls trace` prints it next to the same people's logs.
//!
//! It reads the rendered [`Field`](crate::Field)s of the handshake messages, the same ones
//! the trace prints, so the summary and the trace cannot disagree. What the capture does not
//! show (TLS 1.3 handshakes without a key log, a capture that starts late) is said in
//! [`Summary::what_could_not_be_seen`], and a verdict built on record sizes alone says
//! "probably".

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::dissector::{Direction, Event, Item, RecordInfo};
use crate::fingerprint;
use crate::handshake::HandshakeMessage;
use crate::names;

/// One TLS connection, fed the events of a [`Dissector`](crate::Dissector).
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    client_hello: Option<HandshakeMessage>,
    server_hello: Option<HandshakeMessage>,
    encrypted_extensions: Option<HandshakeMessage>,
    server_key_exchange: Option<HandshakeMessage>,
    certificate_request: Option<HandshakeMessage>,
    server_certificate: Option<HandshakeMessage>,
    client_certificate: Option<HandshakeMessage>,
    /// TLS 1.2: the server's first item after ServerHello (Certificate in a full handshake,
    /// NewSessionTicket or ChangeCipherSpec when it resumes).
    after_server_hello: Option<String>,
    server_hello_done: bool,
    client: SideState,
    server: SideState,
    /// The alert (or, in TLS 1.2, encrypted alert record) that ended the handshake.
    failure: Option<SeenAlert>,
    /// The last handshake step, worded for "after ..." and "no answer to ...".
    last: Option<(Direction, Cow<'static, str>)>,
    /// Records we could not decrypt, after ServerHello, in order: (direction, length).
    opaque: Vec<(Direction, u16)>,
    malformed: Vec<String>,
    close: Option<Close>,
    events: usize,
    messages: Vec<Message>,
    /// The side whose bytes the capture lost before the handshake was seen to end: where
    /// in its stream, and how many.
    gap: Option<(Direction, u64, u64)>,
    /// The capture lost the client's first bytes (this many), where its ClientHello is.
    lost_client_hello: Option<u64>,
    /// The version the ServerHello selected, read once when it arrives (it is asked for
    /// at every event).
    negotiated: Option<u16>,
}

/// How the TCP connection ended, as the capture shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Close {
    /// A FIN, from the side that sent it.
    Fin {
        /// The side that closed.
        by: Direction,
    },
    /// A RST, from the side that sent it.
    Reset {
        /// The side that reset.
        by: Direction,
    },
    /// Nothing more was seen for this long while the connection stayed open.
    Stalled {
        /// Seconds without a packet.
        after_secs: u64,
    },
    /// The capture ended with the connection still open.
    EndOfCapture,
}

/// What one connection negotiated and how it ended; `Display` gives the one-line form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The server name the client asked for (server_name extension).
    pub sni: Option<String>,
    /// ALPN protocols the client offered, in its order.
    pub alpn_offered: Vec<String>,
    /// The ALPN protocol the server chose (in TLS 1.3 only visible with a key log).
    pub alpn: Option<String>,
    /// The negotiated version, e.g. "TLS 1.3".
    pub version: Option<String>,
    /// The negotiated cipher suite, e.g. "TLS_AES_128_GCM_SHA256".
    pub suite: Option<String>,
    /// The key exchange group, e.g. "x25519" (TLS 1.3 key_share, TLS 1.2 ServerKeyExchange).
    pub group: Option<String>,
    /// Whether the session was resumed; `None` until the server's answer shows it.
    pub resumed: Option<bool>,
    /// Whether the server asked for a client certificate, and from which CAs.
    pub certificate_request: CertificateRequest,
    /// The certificate the client sent.
    pub client_certificate: ClientCertificate,
    /// The server's certificate (the first of its chain), when visible.
    pub server_certificate: Option<Certificate>,
    /// JA3 of the client's (first) ClientHello, the MD5 hex (tshark's
    /// `tls.handshake.ja3`); see [`fingerprint`](crate::fingerprint).
    pub ja3: Option<String>,
    /// The JA3 string that was hashed (tshark's `tls.handshake.ja3_full`).
    pub ja3_full: Option<String>,
    /// JA3S of the server's ServerHello, the MD5 hex (tshark's `tls.handshake.ja3s`).
    pub ja3s: Option<String>,
    /// The JA3S string that was hashed (tshark's `tls.handshake.ja3s_full`).
    pub ja3s_full: Option<String>,
    /// JA4 of the client's (first) ClientHello, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`.
    pub ja4: Option<String>,
    /// How the handshake ended.
    pub outcome: Outcome,
    /// Parts of the connection the capture does not show, each a sentence.
    pub what_could_not_be_seen: Vec<String>,
    /// Every handshake message seen (decrypted or in the clear), in wire order, up to the
    /// alert that ended the handshake (at most 256): what tshark lists as
    /// `tls.handshake.type`.
    pub messages: Vec<Message>,
}

/// A handshake message seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Which way it went.
    pub direction: Direction,
    /// Its name, e.g. "ClientHello", "CertificateRequest".
    pub kind: String,
}

/// The names that identify a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// Subject, e.g. "O=mtls, CN=alice".
    pub subject: String,
    /// Issuer, e.g. "CN=mtls CA".
    pub issuer: String,
    /// Serial number, upper-case hex without leading zeros, e.g. "0A1B".
    pub serial: String,
}

/// The server's CertificateRequest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CertificateRequest {
    /// The server did not ask (its flight was seen without one).
    NotSent,
    /// The server asked.
    Sent {
        /// The CA names it accepts; empty means any.
        authorities: Vec<String>,
    },
    /// Not visible: encrypted without a key log, or the handshake ended before.
    Unknown,
}

/// The client's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientCertificate {
    /// The client sent none: an empty Certificate message, or none because none was asked.
    None,
    /// The client sent this one (the first of its chain).
    Sent(Certificate),
    /// Not visible: encrypted without a key log, or the handshake ended before.
    Unknown,
}

/// How the handshake ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Both sides finished the handshake.
    Completed,
    /// One side ended it.
    Failed {
        /// One sentence saying why.
        verdict: String,
        /// The alert that ended it, when one was seen.
        alert: Option<Alert>,
        /// The side that ended it (or, when it stalled, the side that did not answer).
        by: Direction,
    },
    /// The capture does not show the end of the handshake.
    Incomplete {
        /// One sentence saying how far it got.
        verdict: String,
    },
}

/// A TLS alert by name and code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// The RFC name, e.g. "unknown_ca".
    pub name: String,
    /// The code, e.g. 48.
    pub code: u8,
}

impl Conversation {
    /// A conversation that has seen nothing yet.
    pub fn new() -> Conversation {
        Conversation::default()
    }

    /// Takes the next event, of either direction, in the order the dissector produced them.
    pub fn observe(&mut self, event: &Event) {
        self.take(event.direction, &event.record, Cow::Borrowed(&event.item));
    }

    /// [`Conversation::observe`] for an event that is not needed afterwards: the handshake
    /// messages the summary keeps are moved, not copied.
    pub fn observe_owned(&mut self, event: Event) {
        self.take(event.direction, &event.record, Cow::Owned(event.item));
    }

    fn take(&mut self, direction: Direction, record: &RecordInfo, item: Cow<'_, Item>) {
        self.events += 1;
        if self.failure.is_some() {
            // The handshake is over; what follows an alert does not change the verdict.
            return;
        }
        let item = match item {
            Cow::Owned(Item::Handshake(message)) => {
                return self.on_message(direction, Cow::Owned(message));
            }
            item => item,
        };
        match &*item {
            Item::Handshake(message) => self.on_message(direction, Cow::Borrowed(message)),
            Item::ChangeCipherSpec => {
                self.side(direction).ccs = true;
                if direction == Direction::ServerToClient && self.after_server_hello.is_none() {
                    self.after_server_hello = Some("ChangeCipherSpec".to_owned());
                }
            }
            Item::Alert {
                level,
                description,
                code,
            } => {
                let fatal = level == "fatal" || self.tls13();
                // An alert sent after the other side hung up may only answer the hang-up
                // (OpenSSL says decode_error to a server that closed on it); one that names
                // a reason (unknown_ca, certificate_required, ...) is the verdict whenever
                // it came: a TLS 1.3 server judges the client's certificate after the
                // client's Finished, often after the client's close_notify and FIN.
                let answers_fin = self.side(other(direction)).fin
                    && matches!(
                        description.as_str(),
                        "decode_error" | "unexpected_message" | "internal_error"
                    );
                if fatal
                    && !answers_fin
                    && description != "close_notify"
                    && description != "user_canceled"
                {
                    self.failure = Some(SeenAlert {
                        direction,
                        alert: Some(Alert {
                            name: description.clone(),
                            code: *code,
                        }),
                    });
                }
            }
            Item::ApplicationData { .. } => self.side(direction).application_data = true,
            Item::Encrypted { length } => {
                let length = u16::try_from(*length).unwrap_or(u16::MAX);
                self.on_opaque(direction, &record.content_type, length);
            }
            Item::Malformed { reason } => {
                let who = who(direction);
                self.malformed
                    .push(format!("a record from the {who}: {reason}"));
            }
        }
    }

    /// One side sent its FIN, at this point among the events: it sends nothing more. An
    /// alert the other side sends after it answers the hang-up and is not the verdict
    /// (OpenSSL says decode_error to a server that closed on it).
    pub fn tcp_fin(&mut self, direction: Direction) {
        self.side(direction).fin = true;
    }

    /// The capture lost bytes of `direction` here (the dissector stops that direction at a
    /// gap, [`Dissector::gap`](crate::Dissector::gap)). Lost before the handshake was seen to
    /// end, they may have held the answer: the outcome is then incomplete rather than a
    /// guess, unless an alert already said how it ended.
    pub fn tcp_gap(&mut self, direction: Direction, at: u64, missing: u64) {
        if self.client_hello.is_none() && direction == Direction::ClientToServer && at == 0 {
            self.lost_client_hello = Some(missing);
        }
        if self.gap.is_none() && !self.handshake_done() {
            self.gap = Some((direction, at, missing));
        }
    }

    /// Records how TCP ended; call it after the last event.
    pub fn tcp_closed(&mut self, how: Close) {
        self.close = Some(how);
    }

    /// What was negotiated and how it ended, as far as the events show.
    pub fn summary(&self) -> Summary {
        let server_hello = self.server_hello.as_ref();
        let client_hello = self.client_hello.as_ref();
        let alpn_message = if self.tls13() {
            self.encrypted_extensions.as_ref()
        } else {
            server_hello
        };
        let group = if self.tls13() {
            server_hello.and_then(|m| value(m, "extension key_share"))
        } else {
            self.server_key_exchange
                .as_ref()
                .and_then(|m| value(m, "named_curve"))
        };
        let ja3 = client_hello.and_then(|m| fingerprint::ja3(&m.hello_body));
        let ja3s = server_hello.and_then(|m| fingerprint::ja3s(&m.hello_body));
        Summary {
            sni: client_hello.and_then(|m| value(m, "extension server_name")),
            alpn_offered: client_hello
                .and_then(|m| value(m, "extension application_layer_protocol_negotiation"))
                .map(|list| list.split(", ").map(str::to_owned).collect())
                .unwrap_or_default(),
            alpn: alpn_message
                .and_then(|m| value(m, "extension application_layer_protocol_negotiation")),
            version: self.version().map(version_name),
            suite: server_hello
                .and_then(|m| value(m, "cipher_suite"))
                .map(|s| without_code(&s).to_owned()),
            group: group.map(|g| without_code(&g).to_owned()),
            resumed: self.resumed(),
            certificate_request: self.certificate_request(),
            client_certificate: self.client_certificate(),
            server_certificate: self.server_certificate.as_ref().and_then(certificate),
            ja3: ja3.as_ref().map(|f| f.hash.clone()),
            ja3_full: ja3.map(|f| f.full),
            ja3s: ja3s.as_ref().map(|f| f.hash.clone()),
            ja3s_full: ja3s.map(|f| f.full),
            ja4: client_hello.and_then(|m| fingerprint::ja4(&m.hello_body)),
            outcome: self.outcome(),
            what_could_not_be_seen: self.unseen(),
            messages: self.messages.clone(),
        }
    }

    fn on_message(&mut self, direction: Direction, message: Cow<'_, HandshakeMessage>) {
        let name = message.kind.clone();
        let kind = name.as_str();
        let from_server = direction == Direction::ServerToClient;
        if from_server
            && self.server_hello.is_some()
            && self.after_server_hello.is_none()
            && kind != "ServerHello"
        {
            self.after_server_hello = Some(kind.to_owned());
        }
        let slot = match (direction, kind) {
            (Direction::ClientToServer, "ClientHello") => &mut self.client_hello,
            (Direction::ServerToClient, "ServerHello") => &mut self.server_hello,
            (Direction::ServerToClient, "EncryptedExtensions") => &mut self.encrypted_extensions,
            (Direction::ServerToClient, "ServerKeyExchange") => &mut self.server_key_exchange,
            (Direction::ServerToClient, "CertificateRequest") => &mut self.certificate_request,
            (Direction::ServerToClient, "Certificate") => &mut self.server_certificate,
            (Direction::ClientToServer, "Certificate") => &mut self.client_certificate,
            (Direction::ServerToClient, "ServerHelloDone") => {
                self.server_hello_done = true;
                &mut None
            }
            (_, "Finished") => {
                self.side(direction).finished = true;
                &mut None
            }
            _ => &mut None,
        };
        // The first one counts: a second ClientHello (after HelloRetryRequest) says the same.
        if slot.is_none() {
            if from_server && kind == "ServerHello" {
                self.negotiated = value(&message, "extension supported_versions")
                    .or_else(|| value(&message, "legacy_version"))
                    .and_then(|v| code(&v));
            }
            *slot = Some(message.into_owned());
        }
        self.last = Some((direction, step(direction, kind)));
        if self.messages.len() < MAX_KEPT {
            self.messages.push(Message {
                direction,
                kind: name,
            });
        }
    }

    fn on_opaque(&mut self, direction: Direction, content_type: &str, length: u16) {
        if self.server_hello.is_none() {
            return;
        }
        if self.opaque.len() < MAX_KEPT {
            self.opaque.push((direction, length));
        }
        let tls13 = self.tls13();
        let done = self.handshake_done();
        let answers_fin = self.side(other(direction)).fin;
        let side = self.side(direction);
        match content_type {
            // TLS 1.2: the first encrypted handshake record after ChangeCipherSpec is Finished.
            "handshake" if !tls13 && side.ccs => {
                side.finished = true;
                self.last = Some((direction, step(direction, "Finished")));
            }
            // TLS 1.2 encrypts alerts after ChangeCipherSpec; one before the handshake is
            // done is what ended it, whatever it says.
            "alert" if !tls13 && !done && !answers_fin => {
                self.failure = Some(SeenAlert {
                    direction,
                    alert: None,
                });
            }
            _ if tls13 && !side.finished => {
                side.encrypted_handshake = true;
                // Every encrypted record says the same: no allocation for it.
                let what = match direction {
                    Direction::ClientToServer => "the client's encrypted handshake messages",
                    Direction::ServerToClient => "the server's encrypted handshake messages",
                };
                self.last = Some((direction, Cow::Borrowed(what)));
            }
            _ => {}
        }
    }

    fn side_state(&self, direction: Direction) -> &SideState {
        match direction {
            Direction::ClientToServer => &self.client,
            Direction::ServerToClient => &self.server,
        }
    }

    fn side(&mut self, direction: Direction) -> &mut SideState {
        match direction {
            Direction::ClientToServer => &mut self.client,
            Direction::ServerToClient => &mut self.server,
        }
    }

    /// The version the ServerHello selected.
    fn version(&self) -> Option<u16> {
        self.negotiated
    }

    fn tls13(&self) -> bool {
        self.version() == Some(TLS13)
    }

    /// Whether the events show a finished handshake. In TLS 1.3 the server finishes first,
    /// so the client's Finished ends it; without a key log see [`Self::opaque_verdict`].
    fn handshake_done(&self) -> bool {
        if self.tls13() {
            self.client.finished
        } else {
            self.client.finished && self.server.finished
        }
    }

    fn resumed(&self) -> Option<bool> {
        let hello = self.server_hello.as_ref()?;
        if self.tls13() {
            return Some(hello.find("extension pre_shared_key").is_some());
        }
        let next = self.after_server_hello.as_deref()?;
        Some(matches!(next, "ChangeCipherSpec" | "NewSessionTicket"))
    }

    fn certificate_request(&self) -> CertificateRequest {
        if let Some(request) = &self.certificate_request {
            let authorities = request
                .find_all("distinguished_name")
                .iter()
                .map(|f| f.value.clone())
                .collect();
            return CertificateRequest::Sent { authorities };
        }
        // The request comes before the server's Finished (1.3) or ServerHelloDone (1.2).
        let flight_seen = self.server.finished || self.server_hello_done;
        if flight_seen || self.resumed() == Some(true) {
            CertificateRequest::NotSent
        } else {
            CertificateRequest::Unknown
        }
    }

    fn client_certificate(&self) -> ClientCertificate {
        match &self.client_certificate {
            Some(message) => {
                certificate(message).map_or(ClientCertificate::None, ClientCertificate::Sent)
            }
            // The client's Certificate would have come before its Finished.
            None if self.client.finished => ClientCertificate::None,
            None => ClientCertificate::Unknown,
        }
    }

    fn outcome(&self) -> Outcome {
        let Some(hello) = &self.client_hello else {
            let verdict = match self.lost_client_hello {
                Some(missing) => format!(
                    "the capture misses the client's first {missing} byte(s), where its \
                     ClientHello is, so the handshake cannot be followed"
                ),
                None if self.events == 0 => "no TLS records were seen".to_owned(),
                None => "the capture starts after the ClientHello, so the handshake cannot be \
                         followed"
                    .to_owned(),
            };
            return Outcome::Incomplete { verdict };
        };
        if let Some(failure) = &self.failure {
            return self.alert_verdict(hello, failure);
        }
        if self.handshake_done() {
            return self.after_finished();
        }
        if let Some((direction, at, missing)) = self.gap {
            return Outcome::Incomplete {
                verdict: format!(
                    "the capture misses {missing} byte(s) from the {} at stream offset {at}, \
                     before the handshake finished",
                    who(direction),
                ),
            };
        }
        if self.tls13()
            && self.client.encrypted_handshake
            && let Some(outcome) = self.opaque_verdict()
        {
            return outcome;
        }
        // TLS 1.3 without the secrets: the server's only record after its ServerHello is
        // alert-sized, where its encrypted flight (certificate and all) should be.
        if self.tls13()
            && !self.client.encrypted_handshake
            && self
                .opaque
                .iter()
                .all(|(d, _)| *d == Direction::ServerToClient)
            && self.opaque.as_slice() == [(Direction::ServerToClient, ENCRYPTED_ALERT_LENGTH)]
        {
            return Outcome::Failed {
                verdict: "the server answered the ClientHello with its ServerHello and one \
                          encrypted record the size of an alert, no certificate: probably it \
                          refused something the ClientHello asked (an ALPN protocol, the \
                          server name); give --keylog to see the alert"
                    .to_owned(),
                alert: None,
                by: Direction::ServerToClient,
            };
        }
        self.close_verdict()
    }

    /// The handshake ended with an alert.
    fn alert_verdict(&self, hello: &HandshakeMessage, failure: &SeenAlert) -> Outcome {
        let by = failure.direction;
        let alert = failure.alert.clone();
        let with_alert = match &alert {
            Some(alert) => format!("with alert {}", alert.name),
            None => "with an encrypted alert".to_owned(),
        };
        let name = alert.as_ref().map_or("", |a| a.name.as_str());
        let verdict = match by {
            // A TLS 1.3 server refuses an ALPN or a name after its ServerHello, encrypted:
            // still a refusal of what the ClientHello asked.
            Direction::ServerToClient
                if self.server_hello.is_none()
                    || matches!(name, "no_application_protocol" | "unrecognized_name") =>
            {
                client_hello_refusal(hello, name, &with_alert)
            }
            Direction::ServerToClient => {
                self.certificate_refusal(&with_alert).unwrap_or_else(|| {
                    format!(
                        "the server ended the handshake {with_alert}{}",
                        self.after()
                    )
                })
            }
            Direction::ClientToServer => {
                let server_cert = self.server_certificate.as_ref().and_then(certificate);
                match server_cert {
                    Some(cert) if !self.client.finished && is_certificate_alert(name) => format!(
                        "the client rejected the server's certificate {} (issued by {}) {}",
                        cert.subject, cert.issuer, with_alert
                    ),
                    _ => format!(
                        "the client ended the handshake {with_alert}{}",
                        self.after()
                    ),
                }
            }
        };
        Outcome::Failed { verdict, alert, by }
    }

    /// When the server asked for a certificate and the client answered, the refusal in
    /// terms of that certificate; `how` is "with alert unknown_ca", "with a TCP reset", ...
    fn certificate_refusal(&self, how: &str) -> Option<String> {
        let CertificateRequest::Sent { authorities } = self.certificate_request() else {
            return None;
        };
        let Some(cert) = certificate(self.client_certificate.as_ref()?) else {
            // Without an alert, how it hung up is part of the answer (Java servers do so),
            // in `mtls get`'s words.
            let ended = match how {
                RESET => "; it then reset the connection",
                CLOSED => "; it then closed the connection without a TLS alert",
                _ => "",
            };
            return Some(format!("{}{ended}", asked_and_none(&authorities)));
        };
        let mut verdict = format!(
            "the server refused the client certificate {} (issued by {}) {how}",
            cert.subject, cert.issuer
        );
        if !authorities.is_empty() && !authorities.contains(&cert.issuer) {
            verdict.push_str(": the server accepts ");
            verdict.push_str(&authorities.join(" or "));
        }
        Some(verdict)
    }

    /// Finished was seen both ways (TLS 1.3: the client's). A TLS 1.3 server checks the
    /// client certificate only now, so a reset straight after it is a refusal without alert.
    fn after_finished(&self) -> Outcome {
        let server_answered = self.server.application_data
            || self
                .last
                .as_ref()
                .is_some_and(|(d, _)| *d == Direction::ServerToClient);
        match self.close {
            Some(Close::Reset {
                by: Direction::ServerToClient,
            }) if self.tls13() && !server_answered => Outcome::Failed {
                verdict: self.certificate_refusal(RESET).unwrap_or_else(|| {
                    "TCP reset by the server right after the client's Finished, without an alert"
                        .to_owned()
                }),
                alert: None,
                by: Direction::ServerToClient,
            },
            _ => Outcome::Completed,
        }
    }

    /// TLS 1.3 without the handshake secrets: all we have is the sizes of the records after
    /// the client's encrypted flight. An alert is 19 bytes encrypted (2 bytes, the content
    /// type, a 16-byte AEAD tag); NewSessionTicket and data are bigger.
    fn opaque_verdict(&self) -> Option<Outcome> {
        let first_client = self
            .opaque
            .iter()
            .position(|(d, _)| *d == Direction::ClientToServer)?;
        let after = self.opaque.get(first_client..).unwrap_or_default();
        let answers: Vec<u16> = after
            .iter()
            .filter(|(d, _)| *d == Direction::ServerToClient)
            .map(|&(_, length)| length)
            .collect();
        // One alert-sized record and nothing else answered the client's flight: a server
        // that accepted would have sent session tickets or data. It may also be the
        // server's own close_notify answering a client that closed at once, which the sizes
        // cannot tell apart: hence "probably".
        match answers.as_slice() {
            [] => None,
            [ENCRYPTED_ALERT_LENGTH] => Some(Outcome::Failed {
                verdict: "the server answered the client's certificate and Finished with one \
                          encrypted record the size of an alert and nothing else: probably it \
                          refused the client certificate (or its absence)"
                    .to_owned(),
                alert: None,
                by: Direction::ServerToClient,
            }),
            _ => Some(Outcome::Completed),
        }
    }

    /// No alert and no Finished: how TCP ended says the rest.
    fn close_verdict(&self) -> Outcome {
        let (last_by, last) = match &self.last {
            Some((direction, what)) => (*direction, what.to_string()),
            None => (Direction::ClientToServer, "ClientHello".to_owned()),
        };
        let failed = |verdict: String, by: Direction| Outcome::Failed {
            verdict,
            alert: None,
            by,
        };
        // A reset from a side that had already sent its FIN is its kernel answering bytes
        // that came after (the client's alert to the close): the side closed.
        let close = match self.close {
            Some(Close::Reset { by }) if self.side_state(by).fin => Some(Close::Fin { by }),
            other => other,
        };
        // A server that drops the connection after the client's certificate (or its empty
        // Certificate) refused it, alert or not.
        let how = match close {
            Some(Close::Reset { .. }) => RESET,
            _ => CLOSED,
        };
        let server_closed = matches!(
            close,
            Some(Close::Reset { by } | Close::Fin { by }) if by == Direction::ServerToClient
        );
        if server_closed && let Some(verdict) = self.certificate_refusal(how) {
            return failed(verdict, Direction::ServerToClient);
        }
        match close {
            Some(Close::Reset { by }) => {
                failed(format!("TCP reset by the {} after {last}", who(by)), by)
            }
            Some(Close::Fin { by }) => failed(
                format!(
                    "the {} closed the connection after {last}, without an alert",
                    who(by)
                ),
                by,
            ),
            Some(Close::Stalled { after_secs }) => failed(
                format!("the handshake stalled: no answer to {last} for {after_secs} s"),
                other(last_by),
            ),
            Some(Close::EndOfCapture) | None => Outcome::Incomplete {
                verdict: format!("the capture ends after {last}, before the handshake finished"),
            },
        }
    }

    /// " after <the last step>", or nothing when no step was seen.
    fn after(&self) -> String {
        self.last
            .as_ref()
            .map_or_else(String::new, |(_, what)| format!(" after {what}"))
    }

    fn unseen(&self) -> Vec<String> {
        let mut unseen = Vec::new();
        if self.client_hello.is_none() && self.events > 0 {
            unseen.push("the ClientHello is not in the capture".to_owned());
        }
        if self.tls13() && (self.server.encrypted_handshake || self.client.encrypted_handshake) {
            unseen.push(
                "the client certificate and the server's CertificateRequest are encrypted in \
                 TLS 1.3; give --keylog to see them"
                    .to_owned(),
            );
        }
        if self.failure.as_ref().is_some_and(|f| f.alert.is_none()) {
            unseen.push("the alert is encrypted; give --keylog to read it".to_owned());
        }
        unseen.extend(self.malformed.iter().cloned());
        unseen
    }
}

/// `sni=api.local alpn=h2 TLSv1.3 TLS_AES_128_GCM_SHA256 x25519 full client-cert=CN=alice
/// (CN=Acme CA, 0A1B) server-cert=CN=api (CN=Acme CA, 01) ok`, or `... FAILED: <verdict>`.
/// The endpoints are the caller's to print.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sni={}", self.sni.as_deref().unwrap_or("-"))?;
        match (&self.alpn, self.alpn_offered.is_empty()) {
            (Some(alpn), _) => write!(f, " alpn={alpn}")?,
            (None, false) => write!(f, " alpn={}?", self.alpn_offered.join(","))?,
            (None, true) => {}
        }
        if let Some(version) = &self.version {
            write!(f, " {}", version.replace("TLS ", "TLSv"))?;
        }
        for part in [&self.suite, &self.group].into_iter().flatten() {
            write!(f, " {part}")?;
        }
        match self.resumed {
            Some(true) => write!(f, " resumed")?,
            Some(false) => write!(f, " full")?,
            None => {}
        }
        match (&self.client_certificate, &self.certificate_request) {
            (ClientCertificate::Sent(cert), _) => write!(f, " client-cert={cert}")?,
            // A resumed session carries the identity its first handshake checked (and a
            // TLS 1.3 server resuming with a PSK must not ask for a certificate again).
            (ClientCertificate::None | ClientCertificate::Unknown, _)
                if self.resumed == Some(true) =>
            {
                write!(f, " client-cert=resumed")?;
            }
            (ClientCertificate::None, CertificateRequest::NotSent) => {
                write!(f, " client-cert=not-requested")?;
            }
            (ClientCertificate::None, _) => write!(f, " client-cert=none")?,
            (ClientCertificate::Unknown, _) => write!(f, " client-cert=?")?,
        }
        if let Some(cert) = &self.server_certificate {
            write!(f, " server-cert={cert}")?;
        }
        for (name, fingerprint) in [("ja3", &self.ja3), ("ja3s", &self.ja3s), ("ja4", &self.ja4)] {
            if let Some(fingerprint) = fingerprint {
                write!(f, " {name}={fingerprint}")?;
            }
        }
        match &self.outcome {
            Outcome::Completed => write!(f, " ok"),
            Outcome::Failed { verdict, .. } => write!(f, " FAILED: {verdict}"),
            Outcome::Incomplete { verdict } => write!(f, " INCOMPLETE: {verdict}"),
        }
    }
}

/// `CN=alice (CN=Acme CA, 0A1B)`: subject, then issuer and serial.
impl fmt::Display for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.subject, self.issuer, self.serial)
    }
}

const TLS13: u16 = 0x0304;
const ENCRYPTED_ALERT_LENGTH: u16 = 19;

/// How many handshake messages and encrypted record sizes a connection keeps: a handshake
/// has a dozen, and a peer that sends millions must not grow memory with them.
const MAX_KEPT: usize = 256;

/// How a server ended a handshake without an alert, as [`Conversation::certificate_refusal`]
/// words it.
const RESET: &str = "with a TCP reset";
const CLOSED: &str = "by closing the connection";

#[derive(Debug, Clone, Copy, Default)]
struct SideState {
    /// Its FIN was seen ([`Conversation::tcp_fin`]).
    fin: bool,
    ccs: bool,
    finished: bool,
    application_data: bool,
    /// TLS 1.3: handshake records we could not decrypt.
    encrypted_handshake: bool,
}

#[derive(Debug, Clone)]
struct SeenAlert {
    direction: Direction,
    /// `None` for a TLS 1.2 alert record we could not decrypt.
    alert: Option<Alert>,
}

/// Why the server refused a ClientHello, from what the client offered.
fn client_hello_refusal(hello: &HandshakeMessage, alert: &str, with_alert: &str) -> String {
    let refused = format!("the server refused the ClientHello {with_alert}");
    if let Some(versions) = old_versions_only(hello) {
        return format!("{refused}: the client offered only {versions}");
    }
    let suites: Vec<String> = value(hello, "cipher_suites")
        .map(|list| {
            list.split(", ")
                .map(|s| without_code(s).to_owned())
                .filter(|s| !s.starts_with("Reserved (GREASE)") && !s.ends_with("_SCSV"))
                .collect()
        })
        .unwrap_or_default();
    let no_common_suite = matches!(alert, "handshake_failure" | "insufficient_security");
    if no_common_suite && !suites.is_empty() {
        if suites.iter().all(|s| s.contains("_CBC_")) {
            return "no cipher suite in common: the client offered only CBC suites".to_owned();
        }
        if suites.iter().all(|s| s.starts_with("TLS_RSA_")) {
            return "no cipher suite in common: the client offered only RSA key exchange \
                    (no forward secrecy)"
                .to_owned();
        }
    }
    // The groups are read from the hello's bytes here, on a refusal only: the brief
    // rendering of every ClientHello leaves them out.
    if no_common_suite
        && let Some(only) = without_modern_groups(&fingerprint::supported_groups(&hello.hello_body))
    {
        return format!("no key-exchange group in common: the client offered only {only}");
    }
    match alert {
        "unrecognized_name" => match value(hello, "extension server_name") {
            Some(sni) => format!("{refused}: it does not serve the name {sni}"),
            None => format!("{refused}: the client sent no server name"),
        },
        "no_application_protocol" => {
            match value(hello, "extension application_layer_protocol_negotiation") {
                Some(alpn) => format!("{refused}: it speaks none of the ALPN protocols {alpn}"),
                None => refused,
            }
        }
        _ => refused,
    }
}

/// The client's groups, when none of them is one every modern server speaks (x25519,
/// P-256, P-384, P-521, x448, or a hybrid with ML-KEM): e.g. only finite-field groups.
fn without_modern_groups(groups: &[u16]) -> Option<String> {
    let modern = |g: &u16| matches!(g, 23..=25 | 29 | 30 | 0x11eb..=0x11ed | 0x0200..=0x0202);
    (!groups.is_empty() && !groups.iter().any(modern)).then(|| {
        let names: Vec<String> = groups
            .iter()
            .map(|&g| without_code(&names::group(g)).to_owned())
            .collect();
        names.join(", ")
    })
}

/// "TLS 1.0/1.1" when the client offered nothing newer than TLS 1.1.
fn old_versions_only(hello: &HandshakeMessage) -> Option<String> {
    let mut versions: Vec<u16> = match value(hello, "extension supported_versions") {
        Some(list) => list.split(", ").filter_map(code).collect(),
        None => {
            let legacy = value(hello, "legacy_version").and_then(|v| code(&v))?;
            // A legacy_version of TLS 1.1 means "up to 1.1"; SSL 3.0 is long disabled.
            (legacy.min(0x0301)..=legacy).collect()
        }
    };
    versions.retain(|&v| (0x0300..=0x0304).contains(&v));
    versions.sort_unstable();
    if versions.is_empty() || versions.iter().any(|&v| v >= 0x0303) {
        return None;
    }
    // "TLS 1.0/1.1", "SSL 3.0 and TLS 1.0".
    let tls: Vec<String> = versions
        .iter()
        .filter(|&&v| v >= 0x0301)
        .map(|&v| format!("1.{}", v - 0x0301))
        .collect();
    let tls = (!tls.is_empty()).then(|| format!("TLS {}", tls.join("/")));
    let ssl = versions.contains(&0x0300).then(|| "SSL 3.0".to_owned());
    Some(
        [ssl, tls]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" and "),
    )
}

fn asked_and_none(authorities: &[String]) -> String {
    if authorities.is_empty() {
        "the server asked for a client certificate and the client sent none".to_owned()
    } else {
        format!(
            "the server asked for a client certificate (accepting {}) and the client sent none",
            authorities.join(" or ")
        )
    }
}

fn is_certificate_alert(name: &str) -> bool {
    matches!(
        name,
        "bad_certificate"
            | "unsupported_certificate"
            | "certificate_revoked"
            | "certificate_expired"
            | "certificate_unknown"
            | "unknown_ca"
            | "bad_certificate_status_response"
    )
}

/// The first certificate of a Certificate message, `None` when the list is empty.
fn certificate(message: &HandshakeMessage) -> Option<Certificate> {
    let leaf = message.find("certificate")?;
    let field = |name: &str| leaf.find(name).map(|f| f.value.clone());
    let Some(subject) = field("subject") else {
        let error = field("error").unwrap_or_default();
        return Some(Certificate {
            subject: format!("(unreadable certificate: {error})"),
            issuer: String::new(),
            serial: String::new(),
        });
    };
    Some(Certificate {
        subject,
        issuer: field("issuer").unwrap_or_default(),
        serial: serial_hex(&field("serial").unwrap_or_default()),
    })
}

/// `00:0a:1b` (x509-parser's form) as `0A1B` (the form `mtls pki` prints).
fn serial_hex(colons: &str) -> String {
    let hex = colons.replace(':', "").to_uppercase();
    let trimmed = hex.trim_start_matches("00");
    if trimmed.is_empty() && !hex.is_empty() {
        "00".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The value of the first field called `name`.
fn value(message: &HandshakeMessage, name: &str) -> Option<String> {
    message.find(name).map(|f| f.value.clone())
}

/// The code point at the end of a rendered value: `TLS 1.2 (0x0303)` gives 0x0303.
fn code(rendered: &str) -> Option<u16> {
    let hex = rendered.trim_end().strip_suffix(')')?.rsplit_once("(0x")?.1;
    u16::from_str_radix(hex, 16).ok()
}

/// `TLS_AES_128_GCM_SHA256 (0x1301)` without the code; for a key share, also without the
/// key length that follows.
fn without_code(rendered: &str) -> &str {
    let name = rendered.split(", key_exchange").next().unwrap_or(rendered);
    match name.rsplit_once(" (0x") {
        Some((name, _)) => name,
        None => name,
    }
}

fn version_name(version: u16) -> String {
    match version {
        0x0300 => "SSL 3.0".to_owned(),
        0x0301..=0x0304 => format!("TLS 1.{}", version - 0x0301),
        other => format!("0x{other:04x}"),
    }
}

/// How a step reads in a sentence: messages only one side sends by their name, the rest
/// with their sender.
fn step(direction: Direction, kind: &str) -> Cow<'static, str> {
    match kind {
        "Certificate" | "CertificateVerify" | "Finished" | "KeyUpdate" => {
            Cow::Owned(format!("the {}'s {kind}", who(direction)))
        }
        _ => Cow::Owned(kind.to_owned()),
    }
}

fn who(direction: Direction) -> &'static str {
    match direction {
        Direction::ClientToServer => "client",
        Direction::ServerToClient => "server",
    }
}

fn other(direction: Direction) -> Direction {
    match direction {
        Direction::ClientToServer => Direction::ServerToClient,
        Direction::ServerToClient => Direction::ClientToServer,
    }
}

#[cfg(test)]
mod tests {
    use x509_parser::pem::parse_x509_pem;
    use x509_parser::prelude::{FromDer, X509Certificate};

    use super::*;
    use crate::{Dissector, KeyLog};

    const C: Direction = Direction::ClientToServer;
    const S: Direction = Direction::ServerToClient;
    const ECDHE_ECDSA_AES128_GCM: u16 = 0xc02b;

    fn der(pem: &str) -> Vec<u8> {
        let (_, pem) = parse_x509_pem(pem.as_bytes()).expect("PEM");
        pem.contents
    }

    fn server_pem() -> Vec<u8> {
        der(include_str!("../tests/fixtures/certs/server.pem"))
    }

    fn mallory_pem() -> Vec<u8> {
        der(include_str!("../tests/fixtures/certs/mallory.pem"))
    }

    /// The DER subject of the fixture CA, as a CertificateRequest lists it.
    fn ca_name() -> Vec<u8> {
        let ca = der(include_str!("../tests/fixtures/certs/ca.pem"));
        let (_, cert) = X509Certificate::from_der(&ca).expect("CA");
        cert.subject().as_raw().to_vec()
    }

    fn len16(data: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(data.len())
            .expect("short")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(data);
        out
    }

    fn len24(data: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(data.len()).expect("short").to_be_bytes()[1..].to_vec();
        out.extend_from_slice(data);
        out
    }

    fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![content_type, 3, 3];
        out.extend_from_slice(&len16(body));
        out
    }

    fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let mut message = vec![msg_type];
        message.extend_from_slice(&len24(body));
        record(22, &message)
    }

    fn ext(ext_type: u16, data: &[u8]) -> Vec<u8> {
        let mut out = ext_type.to_be_bytes().to_vec();
        out.extend_from_slice(&len16(data));
        out
    }

    fn client_hello(legacy_version: u16, suites: &[u16], extensions: &[Vec<u8>]) -> Vec<u8> {
        let mut body = legacy_version.to_be_bytes().to_vec();
        body.extend_from_slice(&[0x11; 32]);
        body.push(0); // session id
        let suites: Vec<u8> = suites.iter().flat_map(|s| s.to_be_bytes()).collect();
        body.extend_from_slice(&len16(&suites));
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&len16(&extensions.concat()));
        handshake(1, &body)
    }

    fn sni(host: &str) -> Vec<u8> {
        let mut entry = vec![0];
        entry.extend_from_slice(&len16(host.as_bytes()));
        ext(0, &len16(&entry))
    }

    fn alpn(protocols: &[&str]) -> Vec<u8> {
        let list: Vec<u8> = protocols
            .iter()
            .flat_map(|p| {
                let mut out = vec![u8::try_from(p.len()).expect("short")];
                out.extend_from_slice(p.as_bytes());
                out
            })
            .collect();
        ext(16, &len16(&list))
    }

    /// A modern TLS 1.2/1.3 ClientHello for api.local offering h2.
    fn modern_client_hello() -> Vec<u8> {
        client_hello(
            0x0303,
            &[0x1301, ECDHE_ECDSA_AES128_GCM],
            &[
                sni("api.local"),
                alpn(&["h2", "http/1.1"]),
                ext(43, &[4, 3, 4, 3, 3]),
            ],
        )
    }

    fn server_hello_12(suite: u16, extensions: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x22; 32]);
        body.push(0);
        body.extend_from_slice(&suite.to_be_bytes());
        body.push(0);
        body.extend_from_slice(&len16(&extensions.concat()));
        handshake(2, &body)
    }

    fn certificate_12(chain: &[Vec<u8>]) -> Vec<u8> {
        let list: Vec<u8> = chain.iter().flat_map(|c| len24(c)).collect();
        handshake(11, &len24(&list))
    }

    fn certificate_request_12(authorities: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![1, 64]; // ecdsa_sign
        body.extend_from_slice(&len16(&[4, 3]));
        let names: Vec<u8> = authorities.iter().flat_map(|n| len16(n)).collect();
        body.extend_from_slice(&len16(&names));
        handshake(13, &body)
    }

    fn alert(code: u8) -> Vec<u8> {
        record(21, &[2, code])
    }

    /// The client's second flight in TLS 1.2: key exchange, ChangeCipherSpec, and Finished
    /// (ciphertext: there is no key log in these tests).
    fn client_key_exchange_and_finished() -> Vec<u8> {
        let mut public_key = vec![32];
        public_key.extend_from_slice(&[0x33; 32]);
        let mut out = handshake(16, &public_key);
        out.extend_from_slice(&record(20, &[1]));
        out.extend_from_slice(&record(22, &[0x44; 40]));
        out
    }

    fn summarise(reads: &[(Direction, Vec<u8>)], close: Close) -> Summary {
        let mut dissector = Dissector::new(KeyLog::empty());
        let mut conversation = Conversation::new();
        for (direction, bytes) in reads {
            for event in dissector.feed(*direction, bytes) {
                conversation.observe(&event);
            }
        }
        conversation.tcp_closed(close);
        conversation.summary()
    }

    fn failure(summary: &Summary) -> (String, Option<String>, Direction) {
        match &summary.outcome {
            Outcome::Failed { verdict, alert, by } => {
                (verdict.clone(), alert.as_ref().map(|a| a.name.clone()), *by)
            }
            other => panic!("not a failure: {other:?}"),
        }
    }

    fn server_closed() -> Close {
        Close::Fin { by: S }
    }

    /// The server's TLS 1.2 flight up to ServerHelloDone, asking for a certificate from the
    /// fixture CA when `ask` says so.
    fn server_flight_12(ask: bool) -> Vec<u8> {
        let mut out = server_hello_12(ECDHE_ECDSA_AES128_GCM, &[alpn(&["h2"])]);
        out.extend_from_slice(&certificate_12(&[server_pem()]));
        if ask {
            out.extend_from_slice(&certificate_request_12(&[ca_name()]));
        }
        out.extend_from_slice(&handshake(14, &[]));
        out
    }

    #[test]
    fn only_cbc_suites() {
        let hello = client_hello(0x0303, &[0x002f, 0xc013, 0x00ff], &[sni("api.local")]);
        let summary = summarise(&[(C, hello), (S, alert(40))], server_closed());
        let (verdict, alert, by) = failure(&summary);
        assert_eq!(summary.ja3_full.as_deref(), Some("771,47-49171-255,0,,"));
        assert_eq!(summary.ja3s, None);
        assert_eq!(
            verdict,
            "no cipher suite in common: the client offered only CBC suites"
        );
        assert_eq!(alert.as_deref(), Some("handshake_failure"));
        assert_eq!(by, S);
        assert_eq!(
            summary.to_string(),
            "sni=api.local client-cert=? ja3=2ece17da461124ae46e214074f396c77 \
             ja4=t12d030100_e28c07be9f6b_000000000000 FAILED: no cipher suite in common: the \
             client offered only CBC suites"
        );
    }

    #[test]
    fn only_old_versions() {
        let hello = client_hello(0x0302, &[ECDHE_ECDSA_AES128_GCM], &[]);
        let summary = summarise(&[(C, hello), (S, alert(70))], server_closed());
        assert_eq!(
            failure(&summary).0,
            "the server refused the ClientHello with alert protocol_version: the client \
             offered only TLS 1.0/1.1"
        );
        // supported_versions, when present, is what counts.
        let hello = client_hello(0x0303, &[0x1301], &[ext(43, &[4, 3, 2, 3, 1])]);
        let summary = summarise(&[(C, hello), (S, alert(70))], server_closed());
        assert!(failure(&summary).0.ends_with("only TLS 1.0/1.1"));
    }

    #[test]
    fn client_hello_refused_for_another_reason() {
        let summary = summarise(
            &[(C, modern_client_hello()), (S, alert(40))],
            server_closed(),
        );
        assert_eq!(
            failure(&summary).0,
            "the server refused the ClientHello with alert handshake_failure"
        );
        assert_eq!(summary.alpn_offered, ["h2", "http/1.1"]);
        assert_eq!(summary.alpn, None);
    }

    #[test]
    fn reset_after_client_hello() {
        let summary = summarise(&[(C, modern_client_hello())], Close::Reset { by: S });
        assert_eq!(
            failure(&summary),
            (
                "TCP reset by the server after ClientHello".to_owned(),
                None,
                S
            )
        );
    }

    #[test]
    fn stalled_after_client_hello() {
        let summary = summarise(
            &[(C, modern_client_hello())],
            Close::Stalled { after_secs: 10 },
        );
        assert_eq!(
            failure(&summary),
            (
                "the handshake stalled: no answer to ClientHello for 10 s".to_owned(),
                None,
                S
            )
        );
        let summary = summarise(&[(C, modern_client_hello())], Close::EndOfCapture);
        assert_eq!(
            summary.outcome,
            Outcome::Incomplete {
                verdict: "the capture ends after ClientHello, before the handshake finished"
                    .to_owned()
            }
        );
    }

    #[test]
    fn client_rejected_the_server_certificate() {
        let reads = [
            (C, modern_client_hello()),
            (S, server_flight_12(false)),
            (C, alert(42)),
        ];
        let summary = summarise(&reads, Close::Fin { by: C });
        let (verdict, alert, by) = failure(&summary);
        assert_eq!(
            verdict,
            "the client rejected the server's certificate O=mtls, CN=localhost (issued by \
             CN=mtls CA) with alert bad_certificate"
        );
        assert_eq!(alert.as_deref(), Some("bad_certificate"));
        assert_eq!(by, C);
        assert_eq!(summary.certificate_request, CertificateRequest::NotSent);
        assert_eq!(summary.alpn.as_deref(), Some("h2"));
        assert_eq!(summary.resumed, Some(false));
    }

    #[test]
    fn tls12_client_certificate_refused() {
        let mut client = certificate_12(&[mallory_pem()]);
        client.extend_from_slice(&client_key_exchange_and_finished());
        let reads = [
            (C, modern_client_hello()),
            (S, server_flight_12(true)),
            (C, client),
            (S, alert(48)),
        ];
        let summary = summarise(&reads, server_closed());
        assert_eq!(
            failure(&summary),
            (
                "the server refused the client certificate CN=mallory (issued by CN=other CA) \
                 with alert unknown_ca: the server accepts CN=mtls CA"
                    .to_owned(),
                Some("unknown_ca".to_owned()),
                S
            )
        );
        let line = summary.to_string();
        assert!(
            line.starts_with(
                "sni=api.local alpn=h2 TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 full \
                 client-cert=CN=mallory (CN=other CA, "
            ),
            "{line}"
        );
    }

    /// No alert: the server resets the connection after the client's empty Certificate.
    #[test]
    fn no_client_certificate_then_reset() {
        let mut client = certificate_12(&[]);
        client.extend_from_slice(&client_key_exchange_and_finished());
        let reads = [
            (C, modern_client_hello()),
            (S, server_flight_12(true)),
            (C, client),
        ];
        let summary = summarise(&reads, Close::Reset { by: S });
        assert_eq!(
            failure(&summary),
            (
                "the server asked for a client certificate (accepting CN=mtls CA) and the \
                 client sent none; it then reset the connection"
                    .to_owned(),
                None,
                S
            )
        );
        assert_eq!(summary.client_certificate, ClientCertificate::None);
    }

    #[test]
    fn helpers() {
        assert_eq!(code("TLS 1.2 (0x0303)"), Some(0x0303));
        assert_eq!(code("h2"), None);
        assert_eq!(
            without_code("x25519 (0x001d), key_exchange 32 bytes"),
            "x25519"
        );
        assert_eq!(
            without_code("Reserved (GREASE) (0x2a2a)"),
            "Reserved (GREASE)"
        );
        assert_eq!(serial_hex("00:0a:1b"), "0A1B");
        assert_eq!(serial_hex("00"), "00");
    }
}

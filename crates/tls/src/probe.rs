//! `mtls get`'s side of TLS: one client connection that reports everything its handshake
//! showed, for a person debugging mutual TLS.
//!
//! The gateway's [`crate::client::TlsClient`] needs only a verdict; `mtls get -v` shows the
//! whole handshake (seed 001's packet walk, in words): protocol, suite, key-exchange group,
//! ALPN, resumption, the server's chain and how it verified, whether the server asked for a
//! client certificate and which CAs it named, and which certificate we sent. Its failures
//! are sentences for the person at the terminal, naming the flag that fixes them.
//!
//! ```text
//!   ProbeSettings (--ca, --cert/--key or a p12's DER, --insecure, ALPN, --keylog)
//!        ──► ProbeClient::build ──► connect(io, name) ──► (ClientStream, ProbeInfo)
//!                                                      or ProbeError: one sentence
//! ```
//!
//! It shares the verifier, the certificate watcher and the error classification with
//! [`crate::client`] (one implementation, in the server's words rather than the
//! upstream's). The secrets of every handshake are kept as NSS key-log lines, in memory for
//! `--trace` (the dissector decrypts TLS 1.3 handshake messages with them) and appended to
//! the `--keylog` file when one is given.
//!
//! `mtls bench` connects through the same verifier and identity, built by
//! [`ProbeClient::for_load`] with a [`SessionReuse`] policy and no key log, and handshakes
//! with [`ProbeClient::connect_quick`], which keeps no per-connection report: thousands of
//! handshakes a second must not each parse the server's chain for a summary nobody reads.
//! It notes only what the server asked of our certificate, because a refusal of it must
//! read the same from `bench` as from `get`: both are put in words by one function,
//! `diagnose`, from what the handshake showed (a `CertificateExchange`).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::{
    ClientSessionStore, ResolvesClientCert, Resumption, Tls12ClientSessionValue,
    Tls13ClientSessionValue,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, HandshakeKind, NamedGroup, ProtocolVersion};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use mtls_pki::Password;

use crate::ciphers;
use crate::client::{
    Audience, CertificateSent, ChainVerifier, ClientStream, DangerAcceptAnyServerCertificate,
    Detail, Failure, KeyProblem, Notes, WatchClientCert, certified_key, classify, note, observe,
    read_roots, server_name,
};
use crate::server::{KeyPasswords, TlsError, read_certificates, read_key};

/// What `mtls get` connects with. Paths are read by [`ProbeClient::build`].
#[derive(Debug, Clone, Default)]
pub struct ProbeSettings {
    /// CA files the server's certificate must chain to (`--ca`). Required unless
    /// `insecure`; with `insecure` they are still checked, and the verdict reported.
    pub ca: Vec<PathBuf>,
    /// Our client certificate and key, sent when the server asks for one.
    pub identity: Option<ClientIdentity>,
    /// Accept any server certificate (`--insecure`). The caller warns the user.
    pub insecure: bool,
    /// ALPN protocols offered, in preference order (`h2`, `http/1.1`).
    pub alpn: Vec<Vec<u8>>,
    /// Append the secrets of every handshake to this file, NSS key-log format
    /// (`--keylog`, `SSLKEYLOGFILE`).
    pub keylog: Option<PathBuf>,
}

/// Our certificate and private key.
#[derive(Clone)]
pub enum ClientIdentity {
    /// PEM (or DER) files: the chain, leaf first, and its key (`--cert`, `--key`).
    Files {
        /// The certificate chain file.
        certificate: PathBuf,
        /// The private key file, plain or encrypted.
        key: PathBuf,
        /// Passwords to try on an encrypted key, in order (`--key-password-file`,
        /// `--key-password-env`).
        key_passwords: Vec<Password>,
    },
    /// Already decoded, e.g. from a PKCS#12 file (`--p12`).
    Der {
        /// The chain, leaf first, DER.
        chain: Vec<Vec<u8>>,
        /// The private key, PKCS#8 DER.
        key_pkcs8: Vec<u8>,
        /// Where it came from, for error messages.
        source: PathBuf,
    },
}

/// A built client: one rustls configuration, so connections made with it (redirects)
/// share a session cache and may resume. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProbeClient {
    config: Arc<ClientConfig>,
    ours: Option<CertificateName>,
    keylog: Arc<CaptureKeyLog>,
}

/// A certificate named for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateName {
    /// Subject DN.
    pub subject: String,
    /// Serial, upper-case hex.
    pub serial: String,
}

/// What a load generator's connections do with TLS sessions ([`ProbeClient::for_load`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionReuse {
    /// Like any client: rustls' in-memory cache, so a reconnection may resume.
    Default,
    /// Never: `Resumption::disabled()`, no session IDs or tickets kept or offered, so every
    /// handshake is a full one.
    Disabled,
    /// Every connection resumes if it can: one store shared by all connections, keeping up
    /// to `tickets` TLS 1.3 tickets per server (each used once, as RFC 8446 asks) and the
    /// latest TLS 1.2 session. rustls' own cache keeps 8 tickets per server, too few for
    /// hundreds of connections opening at once.
    Shared {
        /// TLS 1.3 tickets kept per server name; the oldest go first.
        tickets: usize,
    },
}

/// What [`ProbeClient::connect_quick`] settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickHandshake {
    /// Whether a session was resumed.
    pub resumed: bool,
    /// Which of the offered ALPN protocols ([`ProbeSettings::alpn`]) the server chose, by
    /// position; `None` when it chose none.
    pub alpn: Option<usize>,
    /// What the server asked of our certificate, for [`ProbeClient::quick_stream_error`].
    certificate: CertificateExchange,
}

/// What a handshake showed of the client certificate: whether the server asked for one,
/// naming which CAs, and whether we sent ours. Every diagnosis of a failed connection, in
/// the handshake or after it, for `mtls get` and `mtls bench` alike, starts from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct CertificateExchange {
    /// The CA names of the CertificateRequest (`None`: no request was seen).
    requested: Option<Vec<String>>,
    sent: CertificateSent,
}

/// Everything one handshake showed.
#[derive(Debug, Clone)]
pub struct ProbeInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// The cipher suite, OpenSSL's name.
    pub cipher: &'static str,
    /// The key-exchange group (`X25519MLKEM768`, `X25519`, `secp256r1`, ...); `None` when
    /// none was used (a TLS 1.2 resumption).
    pub key_exchange_group: Option<String>,
    /// The ALPN protocol agreed.
    pub alpn: Option<String>,
    /// Whether a session was resumed.
    pub resumed: bool,
    /// The server's certificate chain as it sent it, DER, leaf first.
    pub peer_chain: Vec<Vec<u8>>,
    /// How the server's certificate was checked.
    pub verification: Verification,
    /// `Some` when the server asked for a client certificate, with the names of the CAs it
    /// said it accepts (empty: it named none).
    pub certificate_requested: Option<Vec<String>>,
    /// The certificate we sent, if we sent one.
    pub sent_certificate: Option<CertificateName>,
    /// This handshake's secrets, NSS key-log lines.
    pub key_log_lines: Vec<String>,
}

/// How the server's certificate was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// It chains to a CA given with `--ca` and is valid for the name asked for.
    Verified {
        /// The subject of that CA, when it could be told.
        anchor: Option<String>,
        /// The name matched its subject CN (it has no subjectAltName).
        by_common_name: bool,
    },
    /// The session was resumed: the certificate is the one an earlier handshake of this
    /// client checked (or, with `--insecure`, accepted), and was not sent again.
    Resumed,
    /// `--insecure`: not enforced.
    Skipped {
        /// What checking against `--ca` found: `None` without `--ca`, else `Ok(())` or
        /// the sentence it would have failed with.
        against_ca: Option<Result<(), String>>,
    },
}

/// Why a TLS connection failed: one sentence saying why and what to do.
/// [`ProbeError::check`] is a short stable name for `--json`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The host is neither a DNS name nor an IP address.
    #[error("{name:?} is not a DNS name or an IP address, so the server cannot be verified as it")]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// The server's certificate did not verify.
    #[error("{reason}")]
    Certificate {
        /// `name_mismatch`, `unknown_issuer`, `expired`, ...
        check: &'static str,
        /// One sentence about the certificate, what is wrong and what to do.
        reason: String,
    },
    /// The server wants a client certificate and we had none.
    #[error(
        "the server requires a client certificate and none was given (pass --cert and --key, \
         or --p12); {}",
        accepts(.accepted.as_deref())
    )]
    CertificateRequired {
        /// The alert it sent (`certificate_required`, `handshake_failure`, ...).
        alert: String,
        /// The CA names of its CertificateRequest, if one was seen.
        accepted: Option<Vec<String>>,
    },
    /// The server refused the certificate we sent.
    #[error(
        "the server refused our certificate with alert {alert} ({}; {})",
        sent_words(.sent.as_ref()),
        accepts(.accepted.as_deref())
    )]
    RefusedOurCertificate {
        /// The alert (`unknown_ca`, `certificate_expired`, `bad_certificate`, ...).
        alert: String,
        /// Our certificate.
        sent: Option<CertificateName>,
        /// The CA names of its CertificateRequest, if one was seen.
        accepted: Option<Vec<String>>,
    },
    /// The server asked for a client certificate, we had none to send, and it closed (or
    /// reset) the connection before answering, without an alert: some servers, Java's
    /// among them, end it so rather than with `certificate_required`.
    #[error(
        "the server asked for a client certificate ({}) and we sent none; it then {} (pass \
         --cert and --key, or --p12)",
        accepts(.accepted.as_deref()),
        // A reset can destroy an alert sent before it: whether there was one is not known.
        if *.reset { "reset the connection" } else { "closed the connection without a TLS alert" }
    )]
    ClosedAfterNoCertificate {
        /// The CA names of its CertificateRequest.
        accepted: Option<Vec<String>>,
        /// A reset rather than a close.
        reset: bool,
    },
    /// The server ended the handshake with an alert not about our certificate.
    #[error("the server ended the TLS handshake with alert {alert}{}", alert_hint(.alert))]
    Alert {
        /// The alert's name.
        alert: String,
    },
    /// Any other TLS failure (a bad signature, a malformed message, ...).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The socket failed or the server went away.
    #[error("{}", io_words(.0))]
    Io(io::Error),
}

impl ProbeClient {
    /// Read every file the settings name and build the client, ready to send a
    /// ClientHello at once (see `ciphers::seed_random`). Errors name the flag and the file.
    pub fn build(settings: &ProbeSettings) -> Result<ProbeClient, TlsError> {
        let keylog = CaptureKeyLog::open(settings.keylog.as_ref())?;
        ProbeClient::configure(settings, Resumption::default(), Some(keylog))
    }

    /// A client for a load generator: the same verification and identity as
    /// [`ProbeClient::build`], sessions as `sessions` says, and no key log (`settings.keylog`
    /// is ignored: the lines of every handshake would pile up in memory). Connect with
    /// [`ProbeClient::connect_quick`].
    pub fn for_load(
        settings: &ProbeSettings,
        sessions: SessionReuse,
    ) -> Result<ProbeClient, TlsError> {
        let resumption = match sessions {
            SessionReuse::Default => Resumption::default(),
            SessionReuse::Disabled => Resumption::disabled(),
            SessionReuse::Shared { tickets } => {
                Resumption::store(Arc::new(SharedSessions::new(tickets.max(1))))
            }
        };
        ProbeClient::configure(settings, resumption, None)
    }

    fn configure(
        settings: &ProbeSettings,
        resumption: Resumption,
        keylog: Option<CaptureKeyLog>,
    ) -> Result<ProbeClient, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        crate::ciphers::seed_random(&provider);
        let check = if settings.ca.is_empty() {
            None
        } else {
            let roots = read_roots("--ca", &settings.ca)?;
            Some(Arc::new(ChainVerifier::new(
                roots,
                &provider,
                Audience::Server,
                true,
            )?))
        };
        let verifier: Arc<dyn ServerCertVerifier> = match (settings.insecure, check) {
            (false, Some(verifier)) => verifier,
            (false, None) => {
                return Err(TlsError::Setting {
                    key: "--ca",
                    message: "pass --ca FILE, the CA that issued the server's certificate \
                              (there is no system root store), or --insecure"
                        .into(),
                });
            }
            (true, check) => Arc::new(DangerAcceptAnyServerCertificate {
                algorithms: provider.signature_verification_algorithms,
                check,
            }),
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Setting {
                key: "protocols",
                message: format!("no usable protocol version: {e}"),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier);

        let (mut config, ours) = match &settings.identity {
            None => (builder.with_no_client_auth(), None),
            Some(identity) => {
                let certified = load_identity(identity, &provider)?;
                let ours = certified.end_entity_cert().ok().map(|leaf| {
                    let (subject, _, serial) = crate::identity::names(leaf.as_ref());
                    CertificateName { subject, serial }
                });
                let resolver = Arc::new(SingleCertAndKey::from(certified));
                (builder.with_client_cert_resolver(resolver), ours)
            }
        };
        let inner: Arc<dyn ResolvesClientCert> = config.client_auth_cert_resolver.clone();
        config.client_auth_cert_resolver = Arc::new(WatchClientCert { inner });
        config.alpn_protocols = settings.alpn.clone();
        config.resumption = resumption;
        // Only a report's client keeps secrets; otherwise rustls' default logs nothing.
        let capture = keylog.is_some();
        let keylog = Arc::new(keylog.unwrap_or_else(CaptureKeyLog::none));
        if capture {
            config.key_log = keylog.clone();
        }
        Ok(ProbeClient {
            config: Arc::new(config),
            ours,
            keylog,
        })
    }

    /// Run the TLS handshake on `io`, an open connection to the server, verifying it as
    /// `name` (a DNS name, sent in SNI, or an IP address; `[::1]` as in a URL is accepted).
    pub async fn connect<IO: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: IO,
        name: &str,
    ) -> Result<(ClientStream<IO>, ProbeInfo), ProbeError> {
        let server_name = server_name(name).ok_or_else(|| ProbeError::InvalidName {
            name: name.to_owned(),
        })?;
        let handshake = TlsConnector::from(self.config.clone()).connect(server_name, io);
        let (result, notes) = observe(Detail::Full, handshake).await;
        match result {
            Ok(stream) => {
                let info = self.info(stream.get_ref().1, notes);
                Ok((stream, info))
            }
            Err(error) => {
                let exchange = CertificateExchange {
                    requested: notes.acceptable_cas,
                    sent: notes.sent,
                };
                Err(self.diagnose(error, notes.explanation, &exchange, false))
            }
        }
    }

    /// The handshake of [`ProbeClient::connect`] without its report, for a load generator:
    /// nothing is noted per connection but what the server asked of our certificate (no
    /// chain summary, no key log), so a refusal of the server's certificate is in rustls'
    /// words rather than explained, while a refusal of ours is explained as `connect` does.
    pub async fn connect_quick<IO: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: IO,
        name: &str,
    ) -> Result<(ClientStream<IO>, QuickHandshake), ProbeError> {
        let server_name = server_name(name).ok_or_else(|| ProbeError::InvalidName {
            name: name.to_owned(),
        })?;
        let handshake = TlsConnector::from(self.config.clone()).connect(server_name, io);
        let (result, notes) = observe(Detail::CertificateRequest, handshake).await;
        let certificate = CertificateExchange {
            requested: notes.acceptable_cas,
            sent: notes.sent,
        };
        match result {
            Ok(stream) => {
                let conn = stream.get_ref().1;
                let handshake = QuickHandshake {
                    resumed: conn.handshake_kind() == Some(HandshakeKind::Resumed),
                    alpn: conn.alpn_protocol().and_then(|chosen| {
                        self.config.alpn_protocols.iter().position(|p| p == chosen)
                    }),
                    certificate,
                };
                Ok((stream, handshake))
            }
            Err(error) => Err(self.diagnose(error, None, &certificate, false)),
        }
    }

    /// [`ProbeClient::stream_error`] for a stream made by [`ProbeClient::connect_quick`].
    pub fn quick_stream_error(
        &self,
        handshake: &QuickHandshake,
        error: &io::Error,
        answered: bool,
    ) -> Option<ProbeError> {
        self.diagnose_stream(&handshake.certificate, error, answered)
    }

    /// Words for an error from reading or writing a stream after `connect` returned, or
    /// `None` when TLS has nothing to say about it. In TLS 1.3 the server judges our
    /// certificate after our side of the handshake is done, so `certificate_required` or
    /// `unknown_ca` arrives with the first read; a server that asked for a certificate and
    /// got none may also just close the connection. `answered`: whether the server has
    /// answered anything on this connection yet (a close after an answer is no refusal).
    pub fn stream_error(
        &self,
        info: &ProbeInfo,
        error: &io::Error,
        answered: bool,
    ) -> Option<ProbeError> {
        let exchange = CertificateExchange {
            requested: info.certificate_requested.clone(),
            sent: match (&info.certificate_requested, &info.sent_certificate) {
                (None, _) => CertificateSent::NotAsked,
                (Some(_), Some(_)) => CertificateSent::Ours,
                (Some(_), None) => CertificateSent::None,
            },
        };
        self.diagnose_stream(&exchange, error, answered)
    }

    /// Every key-log line captured so far, by every connection of this client (a failed
    /// handshake has no [`ProbeInfo`], but its trace still wants its secrets).
    pub fn key_log_lines(&self) -> Vec<String> {
        self.keylog.lines()
    }

    /// Our certificate, when we have one.
    pub fn certificate(&self) -> Option<&CertificateName> {
        self.ours.as_ref()
    }

    fn info(&self, conn: &rustls::ClientConnection, notes: Notes) -> ProbeInfo {
        let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
        let verification = match (notes.trusted, notes.unchecked) {
            (Some(trusted), _) => Verification::Verified {
                anchor: trusted.anchor,
                by_common_name: trusted.common_name,
            },
            // No verifier ran: the certificate came with the resumed session.
            (None, None) if resumed => Verification::Resumed,
            (None, unchecked) => Verification::Skipped {
                against_ca: unchecked.map(|verdict| verdict.map(|_| ())),
            },
        };
        ProbeInfo {
            protocol: match conn.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "unknown",
            },
            cipher: conn
                .negotiated_cipher_suite()
                .map_or("unknown", ciphers::openssl_name),
            key_exchange_group: conn
                .negotiated_key_exchange_group()
                .map(|group| format!("{:?}", group.name())),
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            resumed,
            peer_chain: conn
                .peer_certificates()
                .unwrap_or_default()
                .iter()
                .map(|c| c.as_ref().to_vec())
                .collect(),
            verification,
            sent_certificate: match notes.sent {
                CertificateSent::Ours => self.ours.clone(),
                _ => None,
            },
            certificate_requested: notes.acceptable_cas,
            key_log_lines: notes.key_log,
        }
    }

    /// An error seen by reference on an established stream, diagnosed; `None` when it is
    /// the socket's alone (the caller has its own words for that).
    fn diagnose_stream(
        &self,
        exchange: &CertificateExchange,
        error: &io::Error,
        answered: bool,
    ) -> Option<ProbeError> {
        let owned = match error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => io::Error::new(error.kind(), tls.clone()),
            None => io::Error::from(error.kind()),
        };
        match self.diagnose(owned, None, exchange, answered) {
            ProbeError::Io(_) => None,
            found => Some(found),
        }
    }

    /// The one diagnosis of a failed connection, during the handshake or after it (`get`
    /// and `bench` both come here): what the error was, given what the handshake showed of
    /// our certificate.
    fn diagnose(
        &self,
        error: io::Error,
        explanation: Option<(&'static str, String)>,
        exchange: &CertificateExchange,
        answered: bool,
    ) -> ProbeError {
        let accepted = exchange.requested.clone();
        match classify(error, explanation, exchange.sent, Audience::Server) {
            Failure::Io(error)
                if exchange.sent == CertificateSent::None
                    && !answered
                    && closed(error.kind()).is_some() =>
            {
                ProbeError::ClosedAfterNoCertificate {
                    accepted,
                    reset: closed(error.kind()) == Some(true),
                }
            }
            Failure::Io(error) => ProbeError::Io(error),
            Failure::Certificate { check, reason } => ProbeError::Certificate { check, reason },
            Failure::RefusedOurCertificate {
                alert,
                sent: CertificateSent::Ours,
            } => ProbeError::RefusedOurCertificate {
                alert,
                sent: self.ours.clone(),
                accepted,
            },
            Failure::RefusedOurCertificate { alert, .. } => {
                ProbeError::CertificateRequired { alert, accepted }
            }
            Failure::Alert(alert) => ProbeError::Alert { alert },
            Failure::Tls(message) => ProbeError::Tls(message),
        }
    }
}

impl ProbeError {
    /// A short stable name of what failed: `name_mismatch`, `unknown_issuer`, `expired`,
    /// `certificate_required`, `refused_our_certificate`, `closed_after_no_certificate`,
    /// `alert`, `tls_error`, `io`, ...
    pub fn check(&self) -> &'static str {
        match self {
            ProbeError::InvalidName { .. } => "invalid_name",
            ProbeError::Certificate { check, .. } => check,
            ProbeError::CertificateRequired { .. } => "certificate_required",
            ProbeError::RefusedOurCertificate { .. } => "refused_our_certificate",
            ProbeError::ClosedAfterNoCertificate { .. } => "closed_after_no_certificate",
            ProbeError::Alert { .. } => "alert",
            ProbeError::Tls(_) => "tls_error",
            ProbeError::Io(_) => "io",
        }
    }

    /// The socket error, when that is what failed.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            ProbeError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Debug for ClientIdentity {
    // Never print key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientIdentity::Files {
                certificate, key, ..
            } => f
                .debug_struct("Files")
                .field("certificate", certificate)
                .field("key", key)
                .finish(),
            ClientIdentity::Der { chain, source, .. } => f
                .debug_struct("Der")
                .field("chain", &format_args!("{} certificate(s)", chain.len()))
                .field("source", source)
                .finish_non_exhaustive(),
        }
    }
}

/// "it accepts certificates issued by: CN=a; CN=b".
fn accepts(accepted: Option<&[String]>) -> String {
    match accepted {
        None => "it did not say which issuers it accepts".into(),
        Some([]) => "it named no CAs in its request, so any issuer it trusts".into(),
        Some(names) => format!("it accepts certificates issued by: {}", names.join("; ")),
    }
}

fn sent_words(sent: Option<&CertificateName>) -> String {
    match sent {
        Some(name) => format!("we sent {}, serial {}", name.subject, name.serial),
        None => "we sent our certificate".into(),
    }
}

/// What an alert that is not about our certificate usually means.
fn alert_hint(alert: &str) -> &'static str {
    match alert {
        "protocol_version" => " (no TLS version in common: we offer TLS 1.2 and 1.3)",
        "handshake_failure" | "insufficient_security" => {
            " (no cipher suite, group or signature scheme in common?)"
        }
        "no_application_protocol" => {
            " (it speaks none of the protocols we offered with ALPN; try --http1.1 or --http2)"
        }
        "unrecognized_name" => " (it does not serve this host name; check the URL or --resolve)",
        _ => "",
    }
}

/// Whether an error kind is the peer ending the connection: `Some(true)` for a reset,
/// `Some(false)` for a close.
fn closed(kind: io::ErrorKind) -> Option<bool> {
    match kind {
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => Some(true),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => Some(false),
        _ => None,
    }
}

fn io_words(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::UnexpectedEof => "the server closed the connection during the TLS \
                                         handshake (is it speaking TLS on this port?)"
            .into(),
        io::ErrorKind::ConnectionReset => {
            "the server reset the connection during the TLS handshake".into()
        }
        _ => format!(
            "the connection failed during the TLS handshake: {}",
            crate::cause::describe(error)
        ),
    }
}

/// Our identity, checked: the key must belong to the leaf.
fn load_identity(
    identity: &ClientIdentity,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<rustls::sign::CertifiedKey, TlsError> {
    let (chain, key, key_setting, key_path, cert_path) = match identity {
        ClientIdentity::Files {
            certificate,
            key,
            key_passwords,
        } => (
            read_certificates("--cert", certificate)?,
            read_key(
                "--key",
                key,
                KeyPasswords {
                    passwords: key_passwords,
                    file: None,
                    how: "--key-password-file FILE or --key-password-env VAR",
                },
            )?,
            "--key",
            key.clone(),
            certificate.clone(),
        ),
        ClientIdentity::Der {
            chain,
            key_pkcs8,
            source,
        } => {
            if chain.is_empty() {
                return Err(TlsError::File {
                    key: "--p12",
                    path: source.clone(),
                    message: "it holds a key but no certificate for it".into(),
                });
            }
            (
                chain
                    .iter()
                    .map(|der| CertificateDer::from(der.clone()))
                    .collect(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.clone())),
                "--p12",
                source.clone(),
                source.clone(),
            )
        }
    };
    certified_key(chain, key, provider).map_err(|problem| TlsError::File {
        key: key_setting,
        path: key_path,
        message: match problem {
            KeyProblem::Unsupported(e) => format!("unsupported private key: {e}"),
            KeyProblem::Mismatch => format!(
                "this key does not belong to the certificate in {}",
                cert_path.display()
            ),
        },
    })
}

/// rustls' key log, kept in memory (and noted per connection) and appended to a file.
#[derive(Debug)]
struct CaptureKeyLog {
    file: Option<(PathBuf, Mutex<File>)>,
    lines: Mutex<Vec<String>>,
}

impl CaptureKeyLog {
    /// Nothing to write, and (not installed in a config) nothing kept.
    fn none() -> CaptureKeyLog {
        CaptureKeyLog {
            file: None,
            lines: Mutex::new(Vec::new()),
        }
    }

    fn open(path: Option<&PathBuf>) -> Result<CaptureKeyLog, TlsError> {
        let file = match path {
            None => None,
            Some(path) => {
                let file = File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| TlsError::File {
                        key: "--keylog",
                        path: path.clone(),
                        message: format!("cannot open for appending: {e}"),
                    })?;
                Some((path.clone(), Mutex::new(file)))
            }
        };
        Ok(CaptureKeyLog {
            file,
            lines: Mutex::new(Vec::new()),
        })
    }

    fn lines(&self) -> Vec<String> {
        // A poisoned lock only means a thread panicked while pushing a line; the lines
        // are still whole strings.
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl rustls::KeyLog for CaptureKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let mut line = crate::keylog::key_log_line(label, client_random, secret);
        if let Some((path, file)) = &self.file {
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(e) = file.write_all(line.as_bytes()) {
                tracing::warn!("cannot append to the key log {}: {e}", path.display());
            }
        }
        line.pop(); // The newline: the lines kept are reported one per line.
        note(|notes| notes.key_log.push(line.clone()));
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(line);
    }
}

/// The session store of [`SessionReuse::Shared`]: what rustls' `ClientSessionMemoryCache`
/// keeps, with room for as many TLS 1.3 tickets as there are connections. One lock per
/// handshake, which is nothing beside the handshake's own work.
struct SharedSessions {
    tickets: usize,
    servers: Mutex<HashMap<ServerName<'static>, ServerSessions>>,
}

#[derive(Default)]
struct ServerSessions {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: VecDeque<Tls13ClientSessionValue>,
}

impl SharedSessions {
    fn new(tickets: usize) -> SharedSessions {
        SharedSessions {
            tickets,
            servers: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, name: &ServerName<'_>, f: impl FnOnce(&mut ServerSessions) -> T) -> T {
        // Poisoned only if a thread panicked while holding it; the map is still whole.
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        let name = name.to_owned();
        f(servers.entry(name).or_default())
    }
}

impl fmt::Debug for SharedSessions {
    // Never print session secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSessions")
            .field("tickets", &self.tickets)
            .finish_non_exhaustive()
    }
}

impl ClientSessionStore for SharedSessions {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.with(&server_name, |s| s.kx_hint = Some(group));
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.with(server_name, |s| s.kx_hint)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.with(&server_name, |s| s.tls12 = Some(value));
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.with(server_name, |s| s.tls12.clone())
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.with(server_name, |s| s.tls12 = None);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        let cap = self.tickets;
        self.with(&server_name, |s| {
            if s.tls13.len() >= cap {
                s.tls13.pop_front();
            }
            s.tls13.push_back(value);
        });
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        // The newest first: the oldest are the likeliest to have expired.
        self.with(server_name, |s| s.tls13.pop_back())
    }
}

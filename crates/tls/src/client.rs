//! Client side: TLS to the upstreams of the reverse proxy, nginx's `proxy_ssl_*`.
//!
//! Seed 001's gateway talks to its backends with `proxy_ssl_certificate`,
//! `proxy_ssl_trusted_certificate`, `proxy_ssl_verify on` and `proxy_ssl_session_reuse on`:
//! the backend proves who it is with a certificate from a CA we name, we prove who we are
//! with ours, and repeated connections resume a session instead of a full handshake. One
//! [`TlsClient`] is built per upstream block and shared by every connection to it, because
//! its one rustls `ClientConfig` holds the session cache:
//!
//! ```text
//!   TCP (the gateway's connector) ──► TlsClient::connect(io, name)
//!        ──► (ClientStream, UpstreamHandshake)
//!         or UpstreamTlsError: one sentence naming what failed (and which certificate)
//! ```
//!
//! Verification is `mtls-verify`'s, the one verifier of every side, with:
//!
//! - `common_name_fallback` (the proxy's setting, default on; always on for `mtls get`,
//!   like curl): a certificate without any subjectAltName is matched against its subject
//!   CN, as OpenSSL (and so nginx) does; with SANs present the CN is never used (RFC 6125);
//! - a failure leaves a sentence about the certificate (subject, serial, issuer, the names
//!   it has), in the audience's words, in the connection's notes, for `connect` to return:
//!   see `observe` for why the notes sit in a task-local of the handshake rather than in a
//!   verifier of each connection's own, as the server side does.
//!
//! In TLS 1.3 the upstream judges our client certificate after our side of the handshake
//! is done, so its refusal arrives with the first read, not from `connect`:
//! [`TlsClient::stream_error`] gives such errors the same words.
//!
//! `mtls get` ([`crate::probe`]) connects through the same verifier, certificate watcher and
//! error classification; only the words differ (an `Audience`: "upstream certificate ...
//! not in trusted_ca" for the gateway's log, "the server's certificate ... not in --ca" for
//! a person at a terminal).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    AlertDescription, ClientConfig, DigitallySignedStruct, HandshakeKind, InconsistentKeys,
    ProtocolVersion, SignatureScheme,
};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use mtls_verify::{Check, PeerName, Policy, Purpose, Verifier};

use crate::ciphers;
use crate::server::{
    KeyPasswords, TlsError, alert_name, read_certificates, read_key, read_key_passwords,
};

/// Everything needed to build the TLS client for one upstream block; paths are read by
/// [`TlsClient::build`].
#[derive(Debug, Clone)]
pub struct ClientTlsSettings {
    /// Our client certificate chain (PEM, leaf first), presented to the upstream when it
    /// asks (nginx's `proxy_ssl_certificate`). Set with `key`, or neither.
    pub certificate: Option<PathBuf>,
    /// The private key of `certificate` (nginx's `proxy_ssl_certificate_key`).
    pub key: Option<PathBuf>,
    /// Passwords for an encrypted `key`, one per line, tried in order (nginx's
    /// `proxy_ssl_password_file`).
    pub key_password_file: Option<PathBuf>,
    /// CA files that may sign the upstream's certificate (nginx's
    /// `proxy_ssl_trusted_certificate`); required when `verify` is on.
    pub trusted_ca: Vec<PathBuf>,
    /// Verify the upstream's chain and name (nginx's `proxy_ssl_verify`).
    pub verify: bool,
    /// `TLSv1.2` / `TLSv1.3` (nginx's `proxy_ssl_protocols`).
    pub protocols: Vec<String>,
    /// An OpenSSL cipher string, or `None` for rustls' defaults (`proxy_ssl_ciphers`).
    pub ciphers: Option<String>,
    /// Resume sessions across connections (nginx's `proxy_ssl_session_reuse`).
    pub session_reuse: bool,
    /// Send the name in SNI when it is a DNS name (nginx's `proxy_ssl_server_name`).
    pub sni: bool,
    /// ALPN protocols offered, in preference order (e.g. `http/1.1`).
    pub alpn: Vec<Vec<u8>>,
    /// Match the upstream's name against the subject CN of a certificate without any
    /// subjectAltName, as nginx (OpenSSL) does; RFC 6125 and browsers do not.
    pub common_name_fallback: bool,
}

/// A built TLS client for one upstream block. Cheap to clone: connections made through
/// clones share one configuration and so one session cache.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    /// Our certificate's subject and serial, for refusal sentences; `None` without one.
    ours: Option<String>,
}

/// The TLS stream to an upstream after a handshake.
pub type ClientStream<IO> = tokio_rustls::client::TlsStream<IO>;

/// What the handshake with an upstream settled, for the access log and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamHandshake {
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// OpenSSL name of the suite (nginx's `$ssl_cipher`).
    pub cipher: &'static str,
    /// Whether a session was resumed.
    pub resumed: bool,
    /// The ALPN protocol agreed.
    pub alpn: Option<Vec<u8>>,
}

/// Why a TLS connection to an upstream failed. The message is one sentence naming what
/// failed; [`UpstreamTlsError::check`] is a short stable name for metrics and logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamTlsError {
    /// The name to verify is neither a DNS name nor an IP address.
    #[error(
        "{name:?} is not a DNS name or an IP address, so the upstream cannot be verified as it"
    )]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// The upstream's certificate did not verify.
    #[error("{reason}")]
    Certificate {
        /// The failed check (`name_mismatch`, `unknown_issuer`, `expired`, ...).
        check: &'static str,
        /// One sentence about the certificate and what is wrong with it.
        reason: String,
    },
    /// The upstream ended the handshake with an alert about our client certificate.
    #[error("{}", refused_sentence(.alert, .sent.as_deref()))]
    RefusedOurCertificate {
        /// The alert it sent (`unknown_ca`, `certificate_required`, ...).
        alert: String,
        /// Our certificate's subject and serial, or `None` when we sent no certificate.
        sent: Option<String>,
    },
    /// Any other TLS failure: an alert, no common protocol or suite, a bad signature.
    #[error("TLS error with the upstream: {0}")]
    Tls(String),
    /// The socket failed or the upstream went away.
    #[error("connection to the upstream failed: {}", crate::cause::describe(.0))]
    Io(io::Error),
}

impl TlsClient {
    /// Read every file the settings name and build the client. Errors name the setting
    /// and the file, so `mtls check` can point at the config line.
    pub fn build(settings: &ClientTlsSettings) -> Result<TlsClient, TlsError> {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        if let Some(spec) = &settings.ciphers {
            provider.cipher_suites =
                ciphers::parse_cipher_string(spec).map_err(|e| TlsError::Setting {
                    key: "ciphers",
                    message: e.to_string(),
                })?;
        }
        let versions =
            ciphers::parse_protocols(&settings.protocols).map_err(|e| TlsError::Setting {
                key: "protocols",
                message: e.to_string(),
            })?;
        let provider = Arc::new(provider);

        let verifier: Arc<dyn ServerCertVerifier> = if settings.verify {
            if settings.trusted_ca.is_empty() {
                return Err(TlsError::Setting {
                    key: "trusted_ca",
                    message: "verifying the upstream needs trusted_ca, the CA file(s) that sign \
                              its certificate (there is no system root store); or set verify = \
                              false"
                        .into(),
                });
            }
            let roots = read_roots("trusted_ca", &settings.trusted_ca)?;
            Arc::new(ChainVerifier::new(
                roots,
                &provider,
                Audience::Upstream,
                settings.common_name_fallback,
            )?)
        } else {
            tracing::warn!(
                "upstream certificates are NOT verified (verify = false): any server on the \
                 path can pose as the upstream and read the proxied traffic"
            );
            Arc::new(DangerAcceptAnyServerCertificate {
                algorithms: provider.signature_verification_algorithms,
                check: None,
            })
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| TlsError::Setting {
                key: "ciphers",
                message: format!("no cipher suite is usable with the chosen protocols: {e}"),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier);

        let (mut config, ours) = match (&settings.certificate, &settings.key) {
            (Some(certificate), Some(key)) => {
                let certified = read_identity(
                    certificate,
                    key,
                    settings.key_password_file.as_deref(),
                    &provider,
                )?;
                let ours = certified.end_entity_cert().ok().map(|leaf| {
                    let (subject, _, serial) = crate::identity::names(leaf.as_ref());
                    format!("{subject} (serial {serial})")
                });
                let resolver = Arc::new(SingleCertAndKey::from(certified));
                (builder.with_client_cert_resolver(resolver), ours)
            }
            (None, None) => (builder.with_no_client_auth(), None),
            (Some(_), None) => {
                return Err(TlsError::Setting {
                    key: "key",
                    message: "certificate is set but key is not; set both or neither".into(),
                });
            }
            (None, Some(_)) => {
                return Err(TlsError::Setting {
                    key: "certificate",
                    message: "key is set but certificate is not; set both or neither".into(),
                });
            }
        };
        config.client_auth_cert_resolver = Arc::new(WatchClientCert {
            inner: config.client_auth_cert_resolver.clone(),
        });
        config.enable_sni = settings.sni;
        config.alpn_protocols = settings.alpn.clone();
        // The default is an in-memory cache keyed by server name, shared by every
        // connection made with this config: that is what makes reuse work.
        config.resumption = if settings.session_reuse {
            Resumption::default()
        } else {
            Resumption::disabled()
        };
        Ok(TlsClient {
            config: Arc::new(config),
            ours,
        })
    }

    /// Run the TLS handshake on `io`, an open connection to the upstream.
    ///
    /// `name`: the name to verify (a DNS name or an IP literal, e.g. from proxy_pass or
    /// proxy_tls.server_name). SNI is sent only for DNS names and only if settings.sni
    /// (rustls never sends SNI for IP addresses — that is what nginx does too).
    pub async fn connect<IO: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: IO,
        name: &str,
    ) -> Result<(ClientStream<IO>, UpstreamHandshake), UpstreamTlsError> {
        let server_name = server_name(name).ok_or_else(|| UpstreamTlsError::InvalidName {
            name: name.to_owned(),
        })?;
        let handshake = TlsConnector::from(self.config.clone()).connect(server_name, io);
        // Whether the upstream asked for our certificate is per connection, and rustls
        // tells only the config's certificate resolver, which must stay the same object
        // for sessions to resume: see `observe`.
        let (result, notes) = observe(Detail::Full, handshake).await;
        let stream = match result {
            Ok(stream) => stream,
            Err(error) => return Err(self.classify(error, notes.explanation, notes.sent)),
        };
        let (_, conn) = stream.get_ref();
        let handshake = UpstreamHandshake {
            protocol: match conn.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "unknown",
            },
            cipher: conn
                .negotiated_cipher_suite()
                .map_or("unknown", ciphers::openssl_name),
            resumed: conn.handshake_kind() == Some(HandshakeKind::Resumed),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        };
        Ok((stream, handshake))
    }

    /// Words for an error from reading or writing a [`ClientStream`] after `connect`
    /// returned. In TLS 1.3 the upstream checks our certificate after our side of the
    /// handshake is done, so its refusal (`certificate_required`, `unknown_ca`, ...) comes
    /// with the first read; this names it like `connect` would.
    pub fn stream_error(&self, error: io::Error) -> UpstreamTlsError {
        let sent = if self.ours.is_some() {
            CertificateSent::Ours
        } else {
            CertificateSent::None
        };
        self.classify(error, None, sent)
    }

    /// Like [`TlsClient::stream_error`], for an error seen by reference (hyper hands its
    /// errors out as a chain of sources): `None` unless it carries a TLS error.
    pub fn describe_stream_error(&self, error: &io::Error) -> Option<UpstreamTlsError> {
        let tls = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())?
            .clone();
        Some(self.stream_error(io::Error::new(error.kind(), tls)))
    }

    fn classify(
        &self,
        error: io::Error,
        explanation: Option<(&'static str, String)>,
        sent: CertificateSent,
    ) -> UpstreamTlsError {
        match classify(error, explanation, sent, Audience::Upstream) {
            Failure::Io(error) => UpstreamTlsError::Io(error),
            Failure::Certificate { check, reason } => {
                UpstreamTlsError::Certificate { check, reason }
            }
            Failure::RefusedOurCertificate { alert, sent } => {
                UpstreamTlsError::RefusedOurCertificate {
                    alert,
                    sent: match sent {
                        CertificateSent::Ours => self.ours.clone(),
                        _ => None,
                    },
                }
            }
            Failure::Alert(alert) => UpstreamTlsError::Tls(format!("it sent alert {alert}")),
            Failure::Tls(other) => UpstreamTlsError::Tls(other),
        }
    }
}

impl UpstreamTlsError {
    /// Whether the socket timed out (a retry on another connection may succeed).
    pub fn is_timeout(&self) -> bool {
        matches!(self, UpstreamTlsError::Io(e) if e.kind() == io::ErrorKind::TimedOut)
    }

    /// A short stable name of what failed, for metrics and the log's `check=` field:
    /// `name_mismatch`, `unknown_issuer`, `expired`, `not_yet_valid`, `wrong_purpose`,
    /// `refused_our_certificate`, `invalid_name`, `tls_error`, `io`, ...
    pub fn check(&self) -> &'static str {
        match self {
            UpstreamTlsError::InvalidName { .. } => "invalid_name",
            UpstreamTlsError::Certificate { check, .. } => check,
            UpstreamTlsError::RefusedOurCertificate { .. } => "refused_our_certificate",
            UpstreamTlsError::Tls(_) => "tls_error",
            UpstreamTlsError::Io(_) => "io",
        }
    }
}

fn refused_sentence(alert: &str, sent: Option<&str>) -> String {
    match sent {
        Some(ours) => {
            format!("the upstream refused our client certificate {ours} with alert {alert}")
        }
        None => format!(
            "the upstream refused our client certificate with alert {alert} (we sent none: \
             set proxy_tls.certificate and key)"
        ),
    }
}

/// Whose certificate a sentence is about, and so which words it uses: the gateway's
/// upstream (named by config keys such as `trusted_ca`) or the server `mtls get` talks to
/// (named by flags such as `--ca`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// An upstream of the reverse proxy: sentences for the operator's log.
    Upstream,
    /// The server of `mtls get`: sentences for the person who typed the command.
    Server,
}

/// What we did when the peer asked for a client certificate, as far as we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum CertificateSent {
    /// No CertificateRequest was seen (yet).
    #[default]
    NotAsked,
    /// It asked and we sent ours.
    Ours,
    /// It asked and we had none to send.
    None,
}

/// How much [`observe`] notes about a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Detail {
    /// Everything: the verifier's verdict and sentences, the key log (`mtls get`, the
    /// gateway's upstreams).
    #[default]
    Full,
    /// Only what the server asked of our certificate and what we sent (`mtls bench`: its
    /// handshakes stay cheap, yet a refusal is explained like `mtls get` explains it).
    CertificateRequest,
}

/// What the handshake's callbacks noticed about one connection (see [`observe`]).
#[derive(Debug, Default)]
pub(crate) struct Notes {
    /// What is noted beyond the certificate request.
    detail: Detail,
    /// Whether a certificate was asked for and sent.
    pub(crate) sent: CertificateSent,
    /// The CA names of the CertificateRequest, when one arrived (possibly empty).
    pub(crate) acceptable_cas: Option<Vec<String>>,
    /// The verifier's sentence when it refused the peer's certificate.
    pub(crate) explanation: Option<(&'static str, String)>,
    /// How the peer's certificate verified, when it did.
    pub(crate) trusted: Option<Trusted>,
    /// With verification off: what the CAs given would have said (`None`: nothing to
    /// check against).
    pub(crate) unchecked: Option<Result<Trusted, String>>,
    /// NSS key-log lines for this connection's secrets.
    pub(crate) key_log: Vec<String>,
}

/// A successful verification, for a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trusted {
    /// The subject of the trust anchor the chain ended at, when it could be told.
    pub(crate) anchor: Option<String>,
    /// The name matched the subject CN of a certificate without subjectAltName.
    pub(crate) common_name: bool,
}

tokio::task_local! {
    /// The notes of the connection whose handshake [`observe`] is driving.
    static NOTES: RefCell<Notes>;
}

/// Drive `handshake`, collecting what rustls' callbacks (verifier, certificate resolver, key
/// log) noticed about this connection.
///
/// Those callbacks get no per-connection context. The server side gives each handshake a
/// copy of the config with a verifier of its own; the client cannot: rustls resumes a
/// client session only on a config whose `verifier` and `client_auth_cert_resolver` are
/// the very `Arc`s the session was made with (`Weak::ptr_eq` in its
/// `ClientSessionCommon::compatible_config`, rustls 0.23), so per-connection wrappers
/// would end session reuse. The callbacks therefore stay the shared objects, and find this
/// connection's notes in a tokio task-local scoped to the handshake future: set whenever
/// that future is polled, for its whole life, and nowhere else. The callbacks run inside
/// `process_new_packets` on the connection this future owns, so only within its polls;
/// nothing depends on how much of the handshake one poll does, and no thread-local is left
/// holding anything between polls.
pub(crate) async fn observe<F: Future>(detail: Detail, handshake: F) -> (F::Output, Notes) {
    let notes = Notes {
        detail,
        ..Notes::default()
    };
    NOTES
        .scope(RefCell::new(notes), async {
            let output = handshake.await;
            let notes = NOTES.with(|notes| std::mem::take(&mut *notes.borrow_mut()));
            (output, notes)
        })
        .await
}

/// Add to the notes of the connection being driven by [`observe`] with [`Detail::Full`],
/// if any (elsewhere `record` is not even run, so what it computes costs nothing).
pub(crate) fn note(record: impl FnOnce(&mut Notes)) {
    let _ = NOTES.try_with(|notes| {
        if let Ok(mut notes) = notes.try_borrow_mut()
            && notes.detail == Detail::Full
        {
            record(&mut notes);
        }
    });
}

/// Note what a CertificateRequest showed, at any [`Detail`] (outside [`observe`], nothing).
fn note_certificate_request(record: impl FnOnce(&mut Notes)) {
    let _ = NOTES.try_with(|notes| {
        if let Ok(mut notes) = notes.try_borrow_mut() {
            record(&mut notes);
        }
    });
}

/// A failed TLS connection, classified, before it is put in an audience's words.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Not a TLS error: the socket failed.
    Io(io::Error),
    /// The peer's certificate was refused by our verifier.
    Certificate { check: &'static str, reason: String },
    /// The peer's alert is its verdict on our client certificate (or on our lack of one).
    RefusedOurCertificate {
        alert: String,
        sent: CertificateSent,
    },
    /// Any other alert, by name.
    Alert(String),
    /// Any other TLS error, in rustls' words.
    Tls(String),
}

/// Classify an error from the handshake or from a stream after it.
pub(crate) fn classify(
    error: io::Error,
    explanation: Option<(&'static str, String)>,
    sent: CertificateSent,
    audience: Audience,
) -> Failure {
    let tls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match tls {
        None => Failure::Io(error),
        Some(rustls::Error::InvalidCertificate(cert)) => {
            let (check, reason) = explanation.unwrap_or_else(|| {
                let error = rustls::Error::InvalidCertificate(cert.clone());
                let reason = match audience {
                    Audience::Upstream => format!("upstream certificate refused: {error}"),
                    Audience::Server => format!("the server's certificate was refused: {error}"),
                };
                (certificate_check(&cert), reason)
            });
            Failure::Certificate { check, reason }
        }
        Some(rustls::Error::AlertReceived(alert)) if about_our_certificate(alert, sent) => {
            Failure::RefusedOurCertificate {
                alert: alert_name(alert),
                sent,
            }
        }
        Some(rustls::Error::AlertReceived(alert)) => Failure::Alert(alert_name(alert)),
        Some(other) => Failure::Tls(other.to_string()),
    }
}

/// Whether an alert from the peer is its verdict on our client certificate.
fn about_our_certificate(alert: AlertDescription, sent: CertificateSent) -> bool {
    use AlertDescription as A;
    match alert {
        A::CertificateRequired => true,
        A::BadCertificate
        | A::UnsupportedCertificate
        | A::UnknownCA
        | A::CertificateUnknown
        | A::CertificateExpired
        | A::CertificateRevoked
        | A::AccessDenied
        | A::HandshakeFailure => sent != CertificateSent::NotAsked,
        _ => false,
    }
}

/// The config's certificate resolver, noting whether the peer asked for a certificate,
/// which CAs it named, and whether we had one to send (see [`observe`]). rustls calls it
/// exactly when a CertificateRequest arrives.
#[derive(Debug)]
pub(crate) struct WatchClientCert {
    pub(crate) inner: Arc<dyn ResolvesClientCert>,
}

impl ResolvesClientCert for WatchClientCert {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let chosen = self.inner.resolve(root_hint_subjects, sigschemes);
        note_certificate_request(|notes| {
            notes.sent = if chosen.is_some() {
                CertificateSent::Ours
            } else {
                CertificateSent::None
            };
            notes.acceptable_cas = Some(root_hint_subjects.iter().map(|dn| dn_text(dn)).collect());
        });
        chosen
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// A DER distinguished name from a CertificateRequest as `CN=..., O=...`; a peer can send
/// anything, so what does not parse is shown as hex.
fn dn_text(der: &[u8]) -> String {
    match X509Name::from_der(der) {
        Ok((_, name)) => name.to_string(),
        Err(_) => format!("(unparsable name {})", hex::encode(der)),
    }
}

/// `name` as rustls wants it; `[::1]` (as in a URL) is accepted for an IPv6 address.
pub(crate) fn server_name(name: &str) -> Option<ServerName<'static>> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_owned()).ok()
}

/// Our certificate and key, checked to belong together.
fn read_identity(
    certificate: &Path,
    key: &Path,
    key_password_file: Option<&Path>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates("certificate", certificate)?;
    let passwords = read_key_passwords(key_password_file)?;
    let passwords = KeyPasswords {
        passwords: &passwords,
        file: key_password_file,
        how: "key_password_file",
    };
    let bad_key = |message: String| TlsError::File {
        key: "key",
        path: key.to_owned(),
        message,
    };
    certified_key(chain, read_key("key", key, passwords)?, provider).map_err(|e| match e {
        KeyProblem::Unsupported(e) => bad_key(format!("unsupported private key: {e}")),
        KeyProblem::Mismatch => bad_key(format!(
            "this key does not belong to the certificate in {}",
            certificate.display()
        )),
    })
}

/// Why a key cannot be used with a certificate chain.
#[derive(Debug)]
pub(crate) enum KeyProblem {
    /// The provider cannot sign with it.
    Unsupported(rustls::Error),
    /// It is not the leaf's key.
    Mismatch,
}

/// `chain` (leaf first) with its `key`, checked to belong together.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, KeyProblem> {
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(KeyProblem::Unsupported)?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        // Unknown: the key type cannot tell its public key; rustls accepts that too.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(_) => Err(KeyProblem::Mismatch),
    }
}

/// Every certificate in the CA files named by setting `key`.
pub(crate) fn read_roots(
    key: &'static str,
    paths: &[PathBuf],
) -> Result<Vec<(PathBuf, CertificateDer<'static>)>, TlsError> {
    let mut roots = Vec::new();
    for path in paths {
        for cert in read_certificates(key, path)? {
            roots.push((path.clone(), cert));
        }
    }
    Ok(roots)
}

/// The one verifier (`mtls-verify`) for a server's certificate, with the words for the
/// audience and a note of what verified.
#[derive(Debug)]
pub(crate) struct ChainVerifier {
    verifier: Verifier,
    /// The trust anchors' subjects, for "not in --ca (which has ...)".
    root_subjects: Vec<String>,
    algorithms: WebPkiSupportedAlgorithms,
    audience: Audience,
}

impl ChainVerifier {
    /// A verifier trusting `roots` (file, certificate); the file names a bad one. With
    /// `cn_fallback`, a certificate without any subjectAltName is matched on its subject
    /// CN, as nginx (OpenSSL) does.
    pub(crate) fn new(
        roots: Vec<(PathBuf, CertificateDer<'static>)>,
        provider: &Arc<CryptoProvider>,
        audience: Audience,
        cn_fallback: bool,
    ) -> Result<ChainVerifier, TlsError> {
        let setting = match audience {
            Audience::Upstream => "trusted_ca",
            Audience::Server => "--ca",
        };
        let now = OffsetDateTime::now_utc();
        let mut anchors = Vec::new();
        for (path, cert) in roots {
            mtls_verify::anchor_problem(cert.as_ref(), now).map_err(|message| TlsError::File {
                key: setting,
                path: path.clone(),
                message,
            })?;
            anchors.push(cert);
        }
        let root_subjects = anchors
            .iter()
            .map(|c| crate::identity::names(c.as_ref()).0)
            .collect();
        let policy = Policy {
            cn_fallback,
            ..Policy::new(anchors, Some(Purpose::Server))
        };
        let verifier = Verifier::new(policy).map_err(|e| TlsError::Setting {
            key: setting,
            message: e.sentence,
        })?;
        Ok(ChainVerifier {
            verifier,
            root_subjects,
            algorithms: provider.signature_verification_algorithms,
            audience,
        })
    }

    /// Verify the chain for `server_name`: what verified, or the refusal.
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<Trusted, Box<mtls_verify::Failure>> {
        let name = match server_name {
            ServerName::DnsName(dns) => PeerName::Dns(dns.as_ref().to_ascii_lowercase()),
            ServerName::IpAddress(ip) => PeerName::Ip(std::net::IpAddr::from(*ip)),
            other => {
                return Err(Box::new(mtls_verify::Failure {
                    check: Check::NameMismatch,
                    about: None,
                    sentence: format!("cannot verify a certificate for the name {other:?}"),
                    chain: Vec::new(),
                }));
            }
        };
        let at = at(now);
        let verified = self
            .verifier
            .verify(end_entity.as_ref(), intermediates, Some(&name), at)?;
        // A DNS name that matched a certificate without subjectAltName matched its CN.
        let common_name = matches!(name, PeerName::Dns(_))
            && X509Certificate::from_der(end_entity.as_ref())
                .is_ok_and(|(_, c)| matches!(c.subject_alternative_name(), Ok(None)));
        Ok(Trusted {
            anchor: verified.chain.last().map(|l| l.subject.clone()),
            common_name,
        })
    }

    /// The refusal in the audience's words, with its stable check name.
    fn explain(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
        failure: &mtls_verify::Failure,
    ) -> (&'static str, String) {
        let check = failure.check.name();
        if failure.check == Check::NameMismatch {
            let name = server_name.to_str();
            return (
                check,
                name_mismatch(end_entity.as_ref(), &name, self.audience),
            );
        }
        let (subject, _, serial) = crate::identity::names(end_entity.as_ref());
        let leaf = Leaf {
            subject: &subject,
            serial: &serial,
        };
        let trusted = self.root_subjects.join(", ");
        let sentence = match self.audience {
            Audience::Upstream => upstream_sentence(&leaf, failure, &trusted),
            Audience::Server => server_sentence(&leaf, failure, &trusted, at(now)),
        };
        (check, sentence)
    }
}

fn at(now: UnixTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(now.as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.check(end_entity, intermediates, server_name, now) {
            Ok(trusted) => {
                note(|notes| notes.trusted = Some(trusted));
                Ok(ServerCertVerified::assertion())
            }
            Err(failure) => {
                note(|notes| {
                    notes.explanation = Some(self.explain(end_entity, server_name, now, &failure));
                });
                Err(crate::verifier::to_rustls_error(&failure))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Verification off (the gateway's `verify = false`, `mtls get --insecure`): accepts any
/// server certificate, from anyone, for any name. The handshake signatures are still
/// checked, which proves only that the peer holds the key of the certificate it sent — not
/// who it is. Whoever builds one warns.
///
/// With `check`, the chain is verified anyway and the verdict noted (never enforced), so
/// a summary can say what verification would have found.
#[derive(Debug)]
pub(crate) struct DangerAcceptAnyServerCertificate {
    pub(crate) algorithms: WebPkiSupportedAlgorithms,
    pub(crate) check: Option<Arc<ChainVerifier>>,
}

impl ServerCertVerifier for DangerAcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(verifier) = &self.check {
            note(|notes| {
                let verdict = verifier
                    .check(end_entity, intermediates, server_name, now)
                    .map_err(|failure| verifier.explain(end_entity, server_name, now, &failure).1);
                notes.unchecked = Some(verdict);
            });
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Which names a certificate has, for a name mismatch:
/// - upstream: "upstream certificate has no name backend.internal; it has [DNS:a, ...]";
/// - server: "name mismatch: asked for api.local, the certificate has [DNS:a, ...]".
fn name_mismatch(der: &[u8], name: &str, audience: Audience) -> String {
    let lead = match audience {
        Audience::Upstream => format!("upstream certificate has no name {name}; it has"),
        Audience::Server => format!("name mismatch: asked for {name}, the certificate has"),
    };
    let advice = match audience {
        Audience::Upstream => "",
        Audience::Server => {
            "; ask for a name it has (--resolve NAME:PORT:ADDR reaches an address by that name)"
        }
    };
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return match audience {
            Audience::Upstream => {
                format!("upstream certificate has no name {name}; it does not parse")
            }
            Audience::Server => {
                format!("name mismatch: asked for {name}, the certificate does not parse")
            }
        };
    };
    let sans = mtls_pki::show::subject_alt_names(&cert);
    if !sans.is_empty() {
        return format!("{lead} [{}]{advice}", sans.join(", "));
    }
    let cns: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(|cn| format!("CN={}", mtls_pki::dn::escape_value(cn)))
        .collect();
    let why = if name.parse::<std::net::IpAddr>().is_ok() {
        "no subjectAltName, and an IP address is matched only against IP SANs"
    } else {
        "no subjectAltName, so its CN was compared"
    };
    format!("{lead} [{}] ({why}){advice}", cns.join(", "))
}

/// The stable check name for a rustls certificate error, when the verifier's own verdict
/// was not noted.
fn certificate_check(error: &rustls::CertificateError) -> &'static str {
    use rustls::CertificateError as C;
    match error {
        C::NotValidForName | C::NotValidForNameContext { .. } => "name_mismatch",
        C::UnknownIssuer => "unknown_issuer",
        C::BadSignature => "bad_signature",
        C::Expired | C::ExpiredContext { .. } => "expired",
        C::NotValidYet | C::NotValidYetContext { .. } => "not_yet_valid",
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => "wrong_purpose",
        C::Revoked => "revoked",
        C::BadEncoding => "malformed",
        _ => "invalid_certificate",
    }
}

/// The refused certificate, for sentences.
struct Leaf<'a> {
    subject: &'a str,
    serial: &'a str,
}

/// The verifier's verdict, turned to be about the upstream (for the gateway's log).
fn upstream_sentence(leaf: &Leaf<'_>, failure: &mtls_verify::Failure, trusted: &str) -> String {
    let who = format!(
        "upstream certificate {} (serial {})",
        leaf.subject, leaf.serial
    );
    let about = failure.about.as_ref();
    match (failure.check, about) {
        (Check::UnknownIssuer, Some(link)) if link.position == 0 => format!(
            "{who} was issued by {}, which is not in trusted_ca [{trusted}]",
            link.issuer
        ),
        (Check::UnknownIssuer, Some(link)) => format!(
            "{who} chains up to {}, issued by {}, which is not in trusted_ca (it has {trusted})",
            link.subject, link.issuer
        ),
        (Check::BadSignature, Some(link)) if link.position == 0 => format!(
            "{who} names {} as its issuer, but that CA in trusted_ca did not sign it (another \
             CA with the same name did)",
            link.issuer
        ),
        (Check::Expired | Check::NotYetValid | Check::Revoked, Some(link))
            if link.position == 0 =>
        {
            format!("upstream certificate {}", failure.sentence)
        }
        _ => format!("{who} is not acceptable: {}", failure.sentence),
    }
}

/// The verifier's verdict, turned to be about the server `mtls get` asked, with what to do.
fn server_sentence(
    leaf: &Leaf<'_>,
    failure: &mtls_verify::Failure,
    trusted: &str,
    at: OffsetDateTime,
) -> String {
    let (subject, serial) = (leaf.subject, leaf.serial);
    let Some(link) = failure.about.as_ref() else {
        return format!(
            "the server's certificate {subject} (serial {serial}) is not acceptable: {}",
            failure.sentence
        );
    };
    let when = |t: OffsetDateTime| (mtls_pki::db::human_time(t), mtls_pki::show::relative(t, at));
    match failure.check {
        Check::UnknownIssuer => {
            let chain = if link.position == 0 {
                format!("the server's certificate is {subject}, serial {serial}")
            } else {
                format!(
                    "it issued {}, which issued {subject}, serial {serial}",
                    link.subject
                )
            };
            format!(
                "unknown issuer: the server's chain ends at {}, not in --ca (which has \
                 {trusted}); pass that CA's certificate with --ca ({chain})",
                link.issuer
            )
        }
        Check::BadSignature => format!(
            "unknown issuer: {} names {} as its issuer, but the CA of that name in --ca did not \
             sign it (another CA with the same name did); pass the right CA with --ca",
            link.subject, link.issuer
        ),
        Check::Expired if link.position == 0 => {
            let (date, ago) = when(link.not_after);
            format!(
                "the server's certificate expired {ago} ({subject}, serial {serial}, valid until \
                 {date}); the server must renew it (or this machine's clock is wrong)"
            )
        }
        Check::Expired => {
            let (date, ago) = when(link.not_after);
            format!(
                "the server's chain has an expired certificate: {} expired {ago} (on {date}); \
                 the server must renew it (or this machine's clock is wrong)",
                link.subject
            )
        }
        Check::NotYetValid => {
            let (date, when) = when(link.not_before);
            format!(
                "the server's certificate {} is not valid yet: it starts {when} ({date}); check \
                 this machine's clock and the server's",
                link.subject
            )
        }
        Check::WrongPurpose if link.position == 0 => format!(
            "the server's certificate {subject} (serial {serial}) is not for TLS servers: {}; \
             the server needs a serverAuth certificate",
            failure.sentence
        ),
        _ => format!(
            "the server's certificate {subject} (serial {serial}) is not acceptable: {}",
            failure.sentence
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use mtls_pki::{Ca, InitOptions, KeyType};
    use mtls_test_support::{TestCa, forge};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;

    use super::*;
    use crate::server::{ClientHello, HandshakeInfo, ServerTlsSettings, TlsServer};
    use crate::verifier::VerifyClient;

    /// What the upstream saw of one connection.
    struct Seen {
        sni: Option<String>,
        result: Result<HandshakeInfo, String>,
    }

    /// A real TLS server (the crate's own) on 127.0.0.1 that echoes what it reads.
    struct Upstream {
        addr: SocketAddr,
        seen: mpsc::UnboundedReceiver<Seen>,
    }

    impl Upstream {
        async fn start(settings: ServerTlsSettings) -> Upstream {
            let server = Arc::new(TlsServer::build(&settings).expect("building the upstream"));
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("local address");
            let (tx, seen) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (server, tx) = (server.clone(), tx.clone());
                    tokio::spawn(async move {
                        let hello = match ClientHello::read(tcp).await {
                            Ok(hello) => hello,
                            Err(e) => {
                                let result = Err(e.to_string());
                                let _ = tx.send(Seen { sni: None, result });
                                return;
                            }
                        };
                        let sni = hello.server_name().map(str::to_owned);
                        match hello.complete(&server).await {
                            Ok((mut stream, info)) => {
                                let _ = tx.send(Seen {
                                    sni,
                                    result: Ok(info),
                                });
                                let mut buf = [0u8; 1024];
                                while let Ok(n) = stream.read(&mut buf).await {
                                    if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                            Err(e) => {
                                let result = Err(e.to_string());
                                let _ = tx.send(Seen { sni, result });
                            }
                        }
                    });
                }
            });
            Upstream { addr, seen }
        }

        async fn next(&mut self) -> Seen {
            tokio::time::timeout(Duration::from_secs(5), self.seen.recv())
                .await
                .expect("the upstream saw a connection")
                .expect("the upstream is running")
        }
    }

    fn server_settings(certificate: &Path, key: &Path) -> ServerTlsSettings {
        ServerTlsSettings {
            certificate: certificate.to_owned(),
            key: key.to_owned(),
            key_password_file: None,
            client_ca: Vec::new(),
            trusted_ca: Vec::new(),
            verify_client: VerifyClient::Off,
            crl: Vec::new(),
            verify_depth: 2,
            protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
            ciphers: None,
            prefer_server_ciphers: false,
            session_cache: Some(100),
            session_timeout: Duration::from_secs(300),
            session_tickets: true,
            session_ticket_keys: Vec::new(),
            alpn: vec![b"http/1.1".to_vec()],
            keylog: None,
        }
    }

    /// An upstream with a certificate from `ca` for `sans`.
    async fn upstream(ca: &mut TestCa, sans: &[&str]) -> Upstream {
        let issued = ca.server("upstream", sans);
        let key = issued.key.expect("the CA made the key");
        Upstream::start(server_settings(&issued.chain, &key)).await
    }

    fn client_settings(ca: &TestCa) -> ClientTlsSettings {
        ClientTlsSettings {
            certificate: None,
            key: None,
            key_password_file: None,
            trusted_ca: vec![ca.ca.layout().ca_cert()],
            verify: true,
            protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
            ciphers: None,
            session_reuse: true,
            sni: true,
            alpn: vec![b"http/1.1".to_vec()],
            common_name_fallback: true,
        }
    }

    async fn connect(
        client: &TlsClient,
        upstream: &Upstream,
        name: &str,
    ) -> Result<(ClientStream<TcpStream>, UpstreamHandshake), UpstreamTlsError> {
        let tcp = TcpStream::connect(upstream.addr).await.expect("connect");
        client.connect(tcp, name).await
    }

    /// A round trip of application data (which also takes in TLS 1.3 session tickets).
    async fn ping(stream: &mut ClientStream<TcpStream>) -> io::Result<()> {
        stream.write_all(b"ping").await?;
        let mut back = [0u8; 4];
        stream.read_exact(&mut back).await?;
        assert_eq!(&back, b"ping");
        Ok(())
    }

    /// A CA whose name differs from TestCa's.
    fn other_ca(common_name: &str) -> TestCa {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let ca = Ca::init(
            &tmp.path().join("pki"),
            &InitOptions {
                common_name: common_name.into(),
                key_type: KeyType::P256,
                days: 30,
                intermediate: false,
                force: false,
            },
        )
        .expect("creating another CA");
        TestCa { tmp, ca }
    }

    /// Write a forged certificate and key; returns their paths.
    fn write_pair(dir: &Path, (cert, key): (String, String)) -> (PathBuf, PathBuf) {
        let (cert_path, key_path) = (dir.join("forged.crt"), dir.join("forged.key"));
        std::fs::write(&cert_path, cert).expect("writing a certificate");
        std::fs::write(&key_path, key).expect("writing a key");
        (cert_path, key_path)
    }

    fn expect_err<T>(result: Result<T, UpstreamTlsError>) -> UpstreamTlsError {
        match result {
            Ok(_) => panic!("the handshake should have failed"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn san_match_verifies_and_sends_sni() {
        let mut ca = TestCa::new();
        let mut up = upstream(&mut ca, &["backend.test"]).await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        let (mut stream, hs) = connect(&client, &up, "backend.test").await.expect("ok");
        ping(&mut stream).await.expect("echo");
        assert_eq!(hs.protocol, "TLSv1.3");
        assert!(!hs.resumed);
        assert_eq!(hs.alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(up.next().await.sni.as_deref(), Some("backend.test"));
    }

    #[tokio::test]
    async fn wildcard_san_matches_one_label() {
        let mut ca = TestCa::new();
        let up = upstream(&mut ca, &["*.example.test"]).await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        connect(&client, &up, "api.example.test").await.expect("ok");
        let err = expect_err(connect(&client, &up, "a.b.example.test").await);
        assert_eq!(err.check(), "name_mismatch", "{err}");
    }

    #[tokio::test]
    async fn name_mismatch_names_what_the_certificate_has() {
        let mut ca = TestCa::new();
        let up = upstream(&mut ca, &["a.example.test", "b.example.test"]).await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        let err = expect_err(connect(&client, &up, "backend.internal").await);
        assert_eq!(err.check(), "name_mismatch");
        assert_eq!(
            err.to_string(),
            "upstream certificate has no name backend.internal; it has \
             [DNS:a.example.test, DNS:b.example.test]"
        );
    }

    #[tokio::test]
    async fn certificate_without_san_matches_its_common_name() {
        let ca = TestCa::new();
        let layout = ca.ca.layout();
        let dir = tempfile::tempdir().expect("tmp");
        let (cert, key) = write_pair(
            dir.path(),
            forge::server_cn_only(&layout.ca_cert(), &layout.ca_key(), "legacy.test"),
        );
        let up = Upstream::start(server_settings(&cert, &key)).await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        connect(&client, &up, "Legacy.TEST")
            .await
            .expect("CN matches");

        let err = expect_err(connect(&client, &up, "other.test").await);
        assert_eq!(err.check(), "name_mismatch");
        let text = err.to_string();
        assert!(text.contains("has no name other.test"), "{text}");
        assert!(text.contains("[CN=legacy.test]"), "{text}");
        // Never for an IP address.
        let err = expect_err(connect(&client, &up, "127.0.0.1").await);
        assert_eq!(err.check(), "name_mismatch", "{err}");
    }

    #[tokio::test]
    async fn wildcard_common_name_matches() {
        let ca = TestCa::new();
        let layout = ca.ca.layout();
        let dir = tempfile::tempdir().expect("tmp");
        let (cert, key) = write_pair(
            dir.path(),
            forge::server_cn_only(&layout.ca_cert(), &layout.ca_key(), "*.legacy.test"),
        );
        let up = Upstream::start(server_settings(&cert, &key)).await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        connect(&client, &up, "api.legacy.test")
            .await
            .expect("CN wildcard");
        let err = expect_err(connect(&client, &up, "legacy.test").await);
        assert_eq!(err.check(), "name_mismatch", "{err}");
    }

    #[tokio::test]
    async fn common_name_is_not_a_way_around_the_chain() {
        let ca = TestCa::new();
        let stranger = TestCa::new();
        let layout = stranger.ca.layout();
        let dir = tempfile::tempdir().expect("tmp");
        let (cert, key) = write_pair(
            dir.path(),
            forge::server_cn_only(&layout.ca_cert(), &layout.ca_key(), "legacy.test"),
        );
        let up = Upstream::start(server_settings(&cert, &key)).await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        let err = expect_err(connect(&client, &up, "legacy.test").await);
        // Both test CAs are called "mtls Test CA": the stranger's certificate names ours as
        // its issuer, and our CA did not sign it.
        assert_eq!(err.check(), "bad_signature", "{err}");
    }

    #[tokio::test]
    async fn untrusted_upstream_names_its_issuer() {
        let ca = TestCa::new();
        let mut other = other_ca("Other CA");
        let up = upstream(&mut other, &["backend.test"]).await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        let err = expect_err(connect(&client, &up, "backend.test").await);
        assert_eq!(err.check(), "unknown_issuer");
        let text = err.to_string();
        assert!(
            text.starts_with("upstream certificate CN=upstream (serial "),
            "{text}"
        );
        assert!(
            text.contains("was issued by CN=Other CA, which is not in trusted_ca"),
            "{text}"
        );

        // Same CA name, different key: say so rather than "not trusted".
        let mut twin = TestCa::new();
        let up = upstream(&mut twin, &["backend.test"]).await;
        let err = expect_err(connect(&client, &up, "backend.test").await);
        assert_eq!(err.check(), "bad_signature");
        assert!(err.to_string().contains("did not sign it"), "{err}");
    }

    #[tokio::test]
    async fn expired_upstream_says_when() {
        let ca = TestCa::new();
        let layout = ca.ca.layout();
        let dir = tempfile::tempdir().expect("tmp");
        let (cert, key) = write_pair(
            dir.path(),
            forge::expired_client(&layout.ca_cert(), &layout.ca_key(), "old.test"),
        );
        let up = Upstream::start(server_settings(&cert, &key)).await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        let err = expect_err(connect(&client, &up, "old.test").await);
        assert_eq!(err.check(), "expired", "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with("upstream certificate CN=old.test (serial "),
            "{text}"
        );
        assert!(
            text.contains("expired on") && text.contains("ago)"),
            "{text}"
        );
    }

    /// A server with `verify_client = on` trusting `client_ca`, speaking `protocol`.
    async fn demanding_upstream(ca: &mut TestCa, client_ca: PathBuf, protocol: &str) -> Upstream {
        let issued = ca.server("upstream", &["backend.test"]);
        let key = issued.key.expect("key");
        let mut settings = server_settings(&issued.chain, &key);
        settings.verify_client = VerifyClient::On;
        settings.client_ca = vec![client_ca];
        settings.protocols = vec![protocol.into()];
        Upstream::start(settings).await
    }

    #[tokio::test]
    async fn refusal_when_we_send_no_certificate_tls12() {
        let mut ca = TestCa::new();
        let ca_cert = ca.ca.layout().ca_cert();
        let mut up = demanding_upstream(&mut ca, ca_cert, "TLSv1.2").await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        let err = expect_err(connect(&client, &up, "backend.test").await);
        assert_eq!(err.check(), "refused_our_certificate", "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with("the upstream refused our client certificate with alert "),
            "{text}"
        );
        assert!(
            text.ends_with("(we sent none: set proxy_tls.certificate and key)"),
            "{text}"
        );
        assert!(up.next().await.result.is_err());
    }

    #[tokio::test]
    async fn refusal_when_we_send_no_certificate_tls13_arrives_on_read() {
        let mut ca = TestCa::new();
        let ca_cert = ca.ca.layout().ca_cert();
        let up = demanding_upstream(&mut ca, ca_cert, "TLSv1.3").await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        let (mut stream, _) = connect(&client, &up, "backend.test")
            .await
            .expect("our side");
        let io_error = ping(&mut stream).await.expect_err("the upstream refuses");
        let err = client.stream_error(io_error);
        assert_eq!(
            err.to_string(),
            "the upstream refused our client certificate with alert certificate_required \
             (we sent none: set proxy_tls.certificate and key)"
        );
    }

    #[tokio::test]
    async fn our_client_certificate_is_presented() {
        let mut ca = TestCa::new();
        let ca_cert = ca.ca.layout().ca_cert();
        let mut up = demanding_upstream(&mut ca, ca_cert, "TLSv1.3").await;
        let ours = ca.client("gateway");
        let mut settings = client_settings(&ca);
        settings.certificate = Some(ours.chain.clone());
        settings.key = ours.key.clone();
        let client = TlsClient::build(&settings).expect("client");
        let (mut stream, _) = connect(&client, &up, "backend.test").await.expect("ok");
        ping(&mut stream).await.expect("echo");
        let info = up.next().await.result.expect("accepted");
        let peer = info.peer.expect("the upstream saw our certificate");
        assert_eq!(peer.subject, "CN=gateway");
    }

    #[tokio::test]
    async fn refusal_of_our_certificate_names_it() {
        let mut ca = TestCa::new();
        let other = other_ca("Other CA");
        let mut up = demanding_upstream(&mut ca, other.ca.layout().ca_cert(), "TLSv1.2").await;
        let ours = ca.client("gateway");
        let mut settings = client_settings(&ca);
        settings.certificate = Some(ours.chain.clone());
        settings.key = ours.key.clone();
        let client = TlsClient::build(&settings).expect("client");
        let err = expect_err(connect(&client, &up, "backend.test").await);
        assert_eq!(err.check(), "refused_our_certificate", "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with("the upstream refused our client certificate CN=gateway (serial "),
            "{text}"
        );
        assert!(text.ends_with("with alert unknown_ca"), "{text}");
        assert!(up.next().await.result.is_err());
    }

    async fn resumes(protocol: &str, session_reuse: bool) -> bool {
        let mut ca = TestCa::new();
        let up = upstream(&mut ca, &["backend.test"]).await;
        let mut settings = client_settings(&ca);
        settings.protocols = vec![protocol.into()];
        settings.session_reuse = session_reuse;
        let client = TlsClient::build(&settings).expect("client");
        let (mut first, hs) = connect(&client, &up, "backend.test").await.expect("first");
        assert_eq!(hs.protocol, protocol);
        assert!(!hs.resumed);
        ping(&mut first).await.expect("echo");
        drop(first);
        // A clone shares the session cache.
        let (_, hs) = connect(&client.clone(), &up, "backend.test")
            .await
            .expect("second");
        hs.resumed
    }

    #[tokio::test]
    async fn sessions_resume_across_connections() {
        assert!(resumes("TLSv1.3", true).await, "TLS 1.3");
        assert!(resumes("TLSv1.2", true).await, "TLS 1.2");
        assert!(!resumes("TLSv1.3", false).await, "reuse off, 1.3");
        assert!(!resumes("TLSv1.2", false).await, "reuse off, 1.2");
    }

    /// Why `observe` lends notes instead of giving each connection a verifier of its own:
    /// rustls resumes a client session only with the very verifier `Arc` that made it. If
    /// this starts failing, rustls has dropped that rule and per-connection verifiers
    /// become possible.
    #[tokio::test]
    async fn a_verifier_of_each_connections_own_would_end_resumption() {
        #[derive(Debug)]
        struct Own(Arc<dyn ServerCertVerifier>);
        impl ServerCertVerifier for Own {
            fn verify_server_cert(
                &self,
                end_entity: &CertificateDer<'_>,
                intermediates: &[CertificateDer<'_>],
                server_name: &ServerName<'_>,
                ocsp: &[u8],
                now: UnixTime,
            ) -> Result<ServerCertVerified, rustls::Error> {
                self.0
                    .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            }
            fn verify_tls12_signature(
                &self,
                message: &[u8],
                cert: &CertificateDer<'_>,
                dss: &DigitallySignedStruct,
            ) -> Result<HandshakeSignatureValid, rustls::Error> {
                self.0.verify_tls12_signature(message, cert, dss)
            }
            fn verify_tls13_signature(
                &self,
                message: &[u8],
                cert: &CertificateDer<'_>,
                dss: &DigitallySignedStruct,
            ) -> Result<HandshakeSignatureValid, rustls::Error> {
                self.0.verify_tls13_signature(message, cert, dss)
            }
            fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
                self.0.supported_verify_schemes()
            }
        }

        let mut ca = TestCa::new();
        let up = upstream(&mut ca, &["backend.test"]).await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        let roots = read_roots("trusted_ca", &[ca.ca.layout().ca_cert()]).expect("roots");
        let provider = client.config.crypto_provider().clone();
        let shared: Arc<dyn ServerCertVerifier> = Arc::new(
            ChainVerifier::new(roots, &provider, Audience::Upstream, true).expect("verifier"),
        );
        // Two connections in a row, each on a copy of the config sharing its session store.
        let twice = |verifier: &dyn Fn() -> Arc<dyn ServerCertVerifier>| {
            let configs = [(); 2].map(|_| {
                let mut config = (*client.config).clone();
                config.dangerous().set_certificate_verifier(verifier());
                TlsClient {
                    config: Arc::new(config),
                    ours: None,
                }
            });
            let up = &up;
            async move {
                let (mut first, _) = connect(&configs[0], up, "backend.test").await.expect("1");
                ping(&mut first).await.expect("echo");
                drop(first);
                let (_, second) = connect(&configs[1], up, "backend.test").await.expect("2");
                second.resumed
            }
        };
        let own = twice(&|| Arc::new(Own(shared.clone()))).await;
        assert!(!own, "a verifier of each connection's own never resumes");
        let one: Arc<dyn ServerCertVerifier> = Arc::new(Own(shared.clone()));
        assert!(twice(&|| one.clone()).await, "the same verifier resumes");
    }

    #[tokio::test]
    async fn sni_only_for_dns_names_and_only_when_enabled() {
        let mut ca = TestCa::new();
        let mut up = upstream(&mut ca, &["backend.test", "127.0.0.1"]).await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        connect(&client, &up, "127.0.0.1").await.expect("IP SAN");
        assert_eq!(up.next().await.sni, None);
        connect(&client, &up, "backend.test")
            .await
            .expect("DNS SAN");
        assert_eq!(up.next().await.sni.as_deref(), Some("backend.test"));

        let mut settings = client_settings(&ca);
        settings.sni = false;
        let quiet = TlsClient::build(&settings).expect("client");
        connect(&quiet, &up, "backend.test")
            .await
            .expect("still verified");
        assert_eq!(up.next().await.sni, None);
    }

    #[tokio::test]
    async fn verify_off_accepts_any_upstream() {
        let ca = TestCa::new();
        let mut other = other_ca("Other CA");
        let up = upstream(&mut other, &["backend.test"]).await;
        let mut settings = client_settings(&ca);
        settings.verify = false;
        settings.trusted_ca.clear();
        let client = TlsClient::build(&settings).expect("client");
        let (mut stream, _) = connect(&client, &up, "whatever.test").await.expect("ok");
        ping(&mut stream).await.expect("echo");
    }

    #[tokio::test]
    async fn a_bad_name_is_refused_before_connecting() {
        let mut ca = TestCa::new();
        let up = upstream(&mut ca, &["backend.test"]).await;
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        let err = expect_err(connect(&client, &up, "not a name").await);
        assert_eq!(err.check(), "invalid_name");
        connect(&client, &up, "[::1]")
            .await
            .map(|_| ())
            .expect_err("no such SAN, but the name parses");
    }

    #[test]
    fn alerts_are_about_our_certificate_only_when_it_was_asked_for() {
        let ca = TestCa::new();
        let client = TlsClient::build(&client_settings(&ca)).expect("client");
        let alert = |a| io::Error::new(io::ErrorKind::InvalidData, rustls::Error::AlertReceived(a));
        let before_asked = client.classify(
            alert(AlertDescription::HandshakeFailure),
            None,
            CertificateSent::NotAsked,
        );
        assert_eq!(
            before_asked.to_string(),
            "TLS error with the upstream: it sent alert handshake_failure"
        );
        let after_none = client.classify(
            alert(AlertDescription::HandshakeFailure),
            None,
            CertificateSent::None,
        );
        assert_eq!(after_none.check(), "refused_our_certificate");
        let timeout = client.stream_error(io::ErrorKind::TimedOut.into());
        assert!(timeout.is_timeout());
        assert_eq!(timeout.check(), "io");
    }

    #[test]
    fn settings_errors_name_the_key() {
        let mut ca = TestCa::new();
        let mut settings = client_settings(&ca);
        settings.trusted_ca.clear();
        let err = TlsClient::build(&settings).expect_err("no trusted_ca");
        assert!(
            matches!(
                err,
                TlsError::Setting {
                    key: "trusted_ca",
                    ..
                }
            ),
            "{err}"
        );

        let ours = ca.client("gateway");
        let stranger = ca.client("stranger");
        let mut settings = client_settings(&ca);
        settings.certificate = Some(ours.chain.clone());
        settings.key = stranger.key.clone();
        let err = TlsClient::build(&settings).expect_err("wrong key");
        assert!(matches!(err, TlsError::File { key: "key", .. }), "{err}");
        assert!(
            err.to_string()
                .contains("does not belong to the certificate")
        );

        settings.key = None;
        let err = TlsClient::build(&settings).expect_err("certificate without key");
        assert!(matches!(err, TlsError::Setting { key: "key", .. }), "{err}");

        let mut settings = client_settings(&ca);
        settings.protocols = vec!["TLSv1".into()];
        let err = TlsClient::build(&settings).expect_err("TLS 1.0");
        assert!(
            matches!(
                err,
                TlsError::Setting {
                    key: "protocols",
                    ..
                }
            ),
            "{err}"
        );
    }

    // `mtls get`'s ProbeClient goes through the same verifier and watcher: its own words.

    use crate::probe::{ClientIdentity, ProbeClient, ProbeError, ProbeInfo, ProbeSettings};

    fn probe_settings(ca: &TestCa) -> ProbeSettings {
        ProbeSettings {
            ca: vec![ca.ca.layout().ca_cert()],
            alpn: vec![b"http/1.1".to_vec()],
            ..ProbeSettings::default()
        }
    }

    async fn probe(
        client: &ProbeClient,
        upstream: &Upstream,
        name: &str,
    ) -> Result<(ClientStream<TcpStream>, ProbeInfo), ProbeError> {
        let tcp = TcpStream::connect(upstream.addr).await.expect("connect");
        client.connect(tcp, name).await
    }

    fn probe_err<T>(result: Result<T, ProbeError>) -> ProbeError {
        match result {
            Ok(_) => panic!("the handshake should have failed"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn probe_reports_the_whole_handshake() {
        let mut ca = TestCa::new();
        let ca_cert = ca.ca.layout().ca_cert();
        let up = demanding_upstream(&mut ca, ca_cert, "TLSv1.3").await;
        let ours = ca.client("alice");
        let mut settings = probe_settings(&ca);
        settings.identity = Some(ClientIdentity::Files {
            certificate: ours.chain.clone(),
            key: ours.key.clone().expect("key"),
            key_passwords: Vec::new(),
        });
        let client = ProbeClient::build(&settings).expect("client");
        let (mut stream, info) = probe(&client, &up, "backend.test").await.expect("ok");
        ping(&mut stream).await.expect("echo");
        assert_eq!(info.protocol, "TLSv1.3");
        assert_eq!(info.alpn.as_deref(), Some("http/1.1"));
        assert!(info.key_exchange_group.is_some());
        assert!(!info.resumed);
        assert_eq!(
            info.certificate_requested,
            Some(vec!["CN=mtls Test CA".to_owned()])
        );
        assert_eq!(
            info.sent_certificate.map(|c| c.subject).as_deref(),
            Some("CN=alice")
        );
        assert_eq!(
            info.verification,
            crate::probe::Verification::Verified {
                anchor: Some("CN=mtls Test CA".into()),
                by_common_name: false
            }
        );
        assert_eq!(info.peer_chain.len(), 1);
        let labels: Vec<&str> = info
            .key_log_lines
            .iter()
            .filter_map(|l| l.split(' ').next())
            .collect();
        for label in [
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0",
            "SERVER_TRAFFIC_SECRET_0",
        ] {
            assert!(labels.contains(&label), "{label}: {labels:?}");
        }
        assert_eq!(client.key_log_lines(), info.key_log_lines);
    }

    #[tokio::test]
    async fn probe_without_certificate_names_the_cas_the_server_accepts() {
        let expected = "the server requires a client certificate and none was given (pass \
                        --cert and --key, or --p12); it accepts certificates issued by: CN=mtls \
                        Test CA";

        // TLS 1.2: during the handshake.
        let mut ca = TestCa::new();
        let ca_cert = ca.ca.layout().ca_cert();
        let up = demanding_upstream(&mut ca, ca_cert, "TLSv1.2").await;
        let client = ProbeClient::build(&probe_settings(&ca)).expect("client");
        let err = probe_err(probe(&client, &up, "backend.test").await);
        assert_eq!(err.check(), "certificate_required");
        assert_eq!(err.to_string(), expected);

        // TLS 1.3: with the first read, put in the same words by `stream_error`.
        let mut ca = TestCa::new();
        let ca_cert = ca.ca.layout().ca_cert();
        let up = demanding_upstream(&mut ca, ca_cert, "TLSv1.3").await;
        let client = ProbeClient::build(&probe_settings(&ca)).expect("client");
        let (mut stream, info) = probe(&client, &up, "backend.test").await.expect("our side");
        assert_eq!(info.sent_certificate, None);
        let io_error = ping(&mut stream).await.expect_err("refused");
        let err = client
            .stream_error(&info, &io_error, false)
            .expect("a TLS error");
        assert_eq!(err.to_string(), expected);
    }

    /// `mtls bench`'s quick handshakes note what the server asked of our certificate, so
    /// their refusals read exactly as `mtls get`'s (which sees the whole handshake).
    #[tokio::test]
    async fn quick_handshakes_explain_a_refusal_in_the_same_words() {
        let expected = "the server requires a client certificate and none was given (pass \
                        --cert and --key, or --p12); it accepts certificates issued by: CN=mtls \
                        Test CA";
        for version in ["TLSv1.2", "TLSv1.3"] {
            let mut ca = TestCa::new();
            let ca_cert = ca.ca.layout().ca_cert();
            let up = demanding_upstream(&mut ca, ca_cert, version).await;
            let client = ProbeClient::for_load(&probe_settings(&ca), crate::SessionReuse::Default)
                .expect("client");
            let tcp = TcpStream::connect(up.addr).await.expect("connect");
            let err = match client.connect_quick(tcp, "backend.test").await {
                Err(err) => err,
                Ok((mut stream, handshake)) => {
                    let io_error = ping(&mut stream).await.expect_err("refused");
                    client
                        .quick_stream_error(&handshake, &io_error, false)
                        .expect("a TLS error")
                }
            };
            assert_eq!(err.to_string(), expected, "{version}");
        }
    }

    /// The notes of one connection never reach another: many handshakes at once on a
    /// multi-thread runtime, through one shared client, half of them to a server of an
    /// unknown CA, each get the verdict on their own server.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_connections_each_get_their_own_notes() {
        let mut ca = TestCa::new();
        let good = Arc::new(upstream(&mut ca, &["good.test"]).await);
        let mut other = other_ca("Other CA");
        let stranger = Arc::new(upstream(&mut other, &["backend.test"]).await);
        let client = Arc::new(ProbeClient::build(&probe_settings(&ca)).expect("client"));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (client, good, stranger) = (client.clone(), good.clone(), stranger.clone());
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    probe(&client, &good, "good.test").await.is_ok()
                } else {
                    let err = probe_err(probe(&client, &stranger, "backend.test").await);
                    err.check() == "unknown_issuer" && err.to_string().contains("CN=Other CA")
                }
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            assert!(
                task.await.expect("task"),
                "connection {i} got another's verdict"
            );
        }
    }

    #[tokio::test]
    async fn probe_refusals_are_in_the_servers_words() {
        let mut ca = TestCa::new();
        let up = upstream(&mut ca, &["a.example.test", "b.example.test"]).await;
        let client = ProbeClient::build(&probe_settings(&ca)).expect("client");
        let err = probe_err(probe(&client, &up, "api.local").await);
        assert_eq!(err.check(), "name_mismatch");
        assert!(
            err.to_string().starts_with(
                "name mismatch: asked for api.local, the certificate has [DNS:a.example.test, \
                 DNS:b.example.test]"
            ),
            "{err}"
        );

        let mut other = other_ca("Other CA");
        let stranger = upstream(&mut other, &["backend.test"]).await;
        let err = probe_err(probe(&client, &stranger, "backend.test").await);
        assert_eq!(err.check(), "unknown_issuer");
        assert!(
            err.to_string().starts_with(
                "unknown issuer: the server's chain ends at CN=Other CA, not in --ca (which has \
                 CN=mtls Test CA)"
            ),
            "{err}"
        );

        let layout = ca.ca.layout();
        let dir = tempfile::tempdir().expect("tmp");
        let (cert, key) = write_pair(
            dir.path(),
            forge::expired_server(&layout.ca_cert(), &layout.ca_key(), &["old.test"], 3),
        );
        let old = Upstream::start(server_settings(&cert, &key)).await;
        let err = probe_err(probe(&client, &old, "old.test").await);
        assert_eq!(err.check(), "expired");
        assert!(
            err.to_string()
                .starts_with("the server's certificate expired 3 days ago (CN=old.test, serial "),
            "{err}"
        );

        // --insecure: accepted, with what --ca would have said.
        let mut settings = probe_settings(&ca);
        settings.insecure = true;
        let insecure = ProbeClient::build(&settings).expect("client");
        let (_, info) = probe(&insecure, &stranger, "backend.test")
            .await
            .expect("accepted");
        match info.verification {
            crate::probe::Verification::Skipped {
                against_ca: Some(Err(reason)),
            } => assert!(reason.starts_with("unknown issuer:"), "{reason}"),
            other => panic!("{other:?}"),
        }
        settings.ca.clear();
        assert!(
            ProbeClient::build(&settings).is_ok(),
            "--insecure needs no --ca"
        );
        settings.insecure = false;
        assert!(ProbeClient::build(&settings).is_err(), "--ca is required");
    }
}

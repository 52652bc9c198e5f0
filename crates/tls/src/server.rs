//! Server side: one [`TlsServer`] per `[server.tls]` block, and the two-step accept that
//! lets the gateway pick the block by SNI before the handshake goes on.
//!
//! ```text
//!   TCP ──► ClientHello::read (LazyConfigAcceptor) ──► server_name() ──► gateway picks a block
//!                                                                           │
//!          (TlsStream, HandshakeInfo) ◄── ClientHello::complete(&TlsServer) ◄┘
//!          or HandshakeError naming why (and the client certificate's Refusal)
//! ```
//!
//! Each block has its own certificate, client-CA policy, suites and protocols, because that
//! is what nginx users expect from `server { ssl_... }` blocks; the choice has to be made
//! from the ClientHello, which is why there is a rustls `ServerConfig` per block rather than
//! one for all with a resolver choosing the certificate. Session state (cache and ticket
//! keys) belongs to the block, so a session made under one client-CA policy is never
//! resumed under another. Each handshake runs on its own copy of the block's config, whose
//! verifier keeps that handshake's [`Refusal`] (see [`crate::verifier`]).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{Acceptor, NoServerSessionStorage, ProducesTickets, StoresServerSessions};
use rustls::sign::CertifiedKey;
use rustls::{ConfigBuilder, HandshakeKind, ProtocolVersion, ServerConfig, WantsVerifier};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use zeroize::Zeroizing;

use mtls_pki::Password;

use crate::certificate::CertResolver;
use crate::ciphers;
pub use crate::error::TlsError;
use crate::identity::PeerCert;
use crate::keylog::KeyLogFile;
use crate::tickets::{self, FileTicketer, TicketKeyError, TicketKeyMaterial};
use crate::verifier::{ClientVerifier, HandshakeVerifier, Refusal, VerifyClient, VerifyStatus};

/// Everything needed to build one TLS server block; paths are read by [`TlsServer::build`].
#[derive(Debug, Clone)]
pub struct ServerTlsSettings {
    /// Certificate chain file, leaf first (PEM, or one DER certificate).
    pub certificate: PathBuf,
    /// Private key file (PEM PKCS#8, SEC1 or PKCS#1, or DER), plain or encrypted.
    pub key: PathBuf,
    /// Passwords for an encrypted `key`, one per line, tried in order (nginx's
    /// `ssl_password_file`).
    pub key_password_file: Option<PathBuf>,
    /// CA files trusted for client certificates and advertised in the CertificateRequest.
    pub client_ca: Vec<PathBuf>,
    /// CA files trusted for client certificates but not advertised.
    pub trusted_ca: Vec<PathBuf>,
    /// nginx's `ssl_verify_client`.
    pub verify_client: VerifyClient,
    /// CRL files (PEM with one or more CRLs, or one DER CRL).
    pub crl: Vec<PathBuf>,
    /// nginx's `ssl_verify_depth`: 1 = leaf signed directly by a trusted CA.
    pub verify_depth: u32,
    /// `TLSv1.2` / `TLSv1.3`.
    pub protocols: Vec<String>,
    /// An OpenSSL cipher string, or `None` for `ciphers::DEFAULT_CIPHERS`.
    pub ciphers: Option<String>,
    /// Choose the suite in our order rather than the client's, except for a client that
    /// lists ChaCha20 first (see `ciphers`).
    pub prefer_server_ciphers: bool,
    /// Server-side session cache capacity in sessions; `None` disables it.
    pub session_cache: Option<usize>,
    /// How long a session (cached or in a ticket) may be resumed.
    pub session_timeout: Duration,
    /// Issue stateless session tickets.
    pub session_tickets: bool,
    /// Files of 80 bytes whose keys seal tickets (the first) and open them (all), shared
    /// by every instance given the same files (`tickets`); empty: rustls's own keys,
    /// made at start and rotated every six hours.
    pub session_ticket_keys: Vec<PathBuf>,
    /// ALPN protocols offered, in preference order (e.g. `h2`, `http/1.1`).
    pub alpn: Vec<Vec<u8>>,
    /// A file the TLS secrets of every connection are appended to, in the NSS key log
    /// format, for debugging with a capture ([`KeyLogFile`]); `None`: no key log.
    pub keylog: Option<PathBuf>,
}

/// A built TLS server block: its rustls configuration, client-certificate policy and
/// certificate.
#[derive(Debug)]
pub struct TlsServer {
    /// The block's configuration; each handshake runs on a copy of it with its own
    /// verifier (see [`TlsServer::for_handshake`]).
    template: ServerConfig,
    /// The builder `template` came from, with the provider and protocol versions already
    /// checked: rustls' verifier field can only be set through a builder.
    builder: ConfigBuilder<ServerConfig, WantsVerifier>,
    verifier: Arc<ClientVerifier>,
    certificate: Arc<CertResolver>,
    /// The ticket keys when they come from files (`session_ticket_key`), to rotate them.
    ticket_keys: Option<Arc<FileTicketer>>,
    /// The session settings, to tell whether a rebuilt block can keep this one's sessions.
    sessions: SessionShape,
    /// The key log, also in `template.key_log`; kept here to hand on to the next build.
    keylog: Option<Arc<KeyLogFile>>,
}

/// What decides whether sessions made by one build of a block resume on the next.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionShape {
    cache: Option<usize>,
    timeout: Duration,
    tickets: bool,
    keys_from_files: bool,
}

impl TlsServer {
    /// Read every file the settings name and build the block. Errors name the setting and
    /// the file, so `mtls check` can point at the config line.
    pub fn build(settings: &ServerTlsSettings) -> Result<TlsServer, TlsError> {
        TlsServer::build_after(settings, None)
    }

    /// Like [`TlsServer::build`], for a reload: when `previous` (the block this one
    /// replaces) has the same session settings, the new block shares its session cache and
    /// ticket keys, so sessions made before the reload resume after it. Keys from files are
    /// re-read: a rotated file takes effect for both.
    pub fn build_after(
        settings: &ServerTlsSettings,
        previous: Option<&TlsServer>,
    ) -> Result<TlsServer, TlsError> {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        // Seeded now, at load, not by the first client's handshake (tens of ms of CPU
        // jitter entropy in AWS-LC): see `ciphers::seed_random`.
        crate::ciphers::seed_random(&provider);
        provider.cipher_suites =
            ciphers::server_suites(settings.ciphers.as_deref()).map_err(|e| TlsError::Setting {
                key: "ciphers",
                message: e.to_string(),
            })?;
        let versions =
            ciphers::parse_protocols(&settings.protocols).map_err(|e| TlsError::Setting {
                key: "protocols",
                message: e.to_string(),
            })?;
        let provider = Arc::new(provider);

        let (certified, leaf) = load_certificate(
            &provider,
            &settings.certificate,
            &settings.key,
            settings.key_password_file.as_deref(),
        )?;
        let certificate = Arc::new(CertResolver::new(certified, leaf));

        let client_ca = read_many("client_ca", &settings.client_ca)?;
        let trusted_ca = read_many("trusted_ca", &settings.trusted_ca)?;
        if settings.verify_client != VerifyClient::Off
            && client_ca.is_empty()
            && trusted_ca.is_empty()
        {
            return Err(TlsError::Setting {
                key: "verify_client",
                message: "verifying client certificates needs client_ca or trusted_ca".into(),
            });
        }
        let mut crls = Vec::new();
        for path in &settings.crl {
            crls.extend(read_crls(path)?);
        }
        // Read together once every file is known to hold CRLs: the parse of a large CRL
        // is the cost of a reload.
        let crls =
            mtls_verify::crl::Crls::load(&crls).map_err(|(_, message)| TlsError::Setting {
                key: "crl",
                message,
            })?;
        let verifier = Arc::new(
            ClientVerifier::new(
                settings.verify_client,
                &client_ca,
                &trusted_ca,
                crls,
                settings.verify_depth,
                provider.signature_verification_algorithms,
            )
            .map_err(|(key, message)| TlsError::Setting { key, message })?,
        );

        let builder = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| TlsError::Setting {
                key: "ciphers",
                message: format!("no cipher suite is usable with the chosen protocols: {e}"),
            })?;
        let mut config = builder
            .clone()
            .with_client_cert_verifier(Arc::new(HandshakeVerifier::new(verifier.clone())))
            .with_cert_resolver(certificate.clone());
        config.ignore_client_order = settings.prefer_server_ciphers;
        config.alpn_protocols = settings.alpn.clone();
        config.session_storage = match settings.session_cache {
            Some(capacity) if capacity > 0 => {
                Arc::new(TimedSessionCache::new(capacity, settings.session_timeout))
            }
            _ => Arc::new(NoServerSessionStorage {}),
        };
        let mut ticket_keys = None;
        if settings.session_tickets {
            let inner: Arc<dyn ProducesTickets> = if settings.session_ticket_keys.is_empty() {
                rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| TlsError::Setting {
                    key: "session_tickets",
                    message: format!("cannot make ticket keys: {e}"),
                })?
            } else {
                let keys = read_ticket_keys(&settings.session_ticket_keys)?;
                let ticketer = Arc::new(FileTicketer::new(keys));
                ticket_keys = Some(ticketer.clone());
                ticketer
            };
            config.ticketer = Arc::new(TimedTicketer {
                inner,
                lifetime: settings.session_timeout,
            });
        } else if settings.session_cache.unwrap_or(0) == 0 {
            config.send_tls13_tickets = 0;
        }
        let sessions = SessionShape {
            cache: settings.session_cache,
            timeout: settings.session_timeout,
            tickets: settings.session_tickets,
            keys_from_files: !settings.session_ticket_keys.is_empty(),
        };
        if let Some(previous) = previous.filter(|p| p.sessions == sessions) {
            config.session_storage = previous.template.session_storage.clone();
            config.ticketer = previous.template.ticketer.clone();
            if let (Some(kept), Some(fresh)) = (&previous.ticket_keys, &ticket_keys) {
                kept.replace(fresh.current_keys());
                ticket_keys = Some(kept.clone());
            }
        }
        // Opened last, so a config that fails for another reason creates no file. A rebuild
        // naming the same file keeps the open one.
        let keylog = match &settings.keylog {
            None => None,
            Some(path) => match previous.and_then(|p| p.keylog.as_ref()) {
                Some(kept) if kept.path() == path => Some(kept.clone()),
                _ => Some(Arc::new(KeyLogFile::open(path)?)),
            },
        };
        if let Some(keylog) = &keylog {
            config.key_log = keylog.clone();
        }
        Ok(TlsServer {
            template: config,
            builder,
            verifier,
            certificate,
            ticket_keys,
            sessions,
            keylog,
        })
    }

    /// Seal and open tickets with the keys in these files from now on (a reload), when
    /// the block's keys come from files. On error the current keys stay.
    pub fn replace_ticket_keys(&self, files: &[PathBuf]) -> Result<(), TlsError> {
        if let Some(ticketer) = &self.ticket_keys {
            ticketer.replace(read_ticket_keys(files)?);
        }
        Ok(())
    }

    /// Whether this block's CRLs now list the client certificate `leaf` (DER), which
    /// verified earlier: the refusal to log, or `None`. For connections open across a
    /// reload that brought a new CRL.
    pub fn revoked(&self, leaf: &[u8], intermediates: &[Vec<u8>]) -> Option<Refusal> {
        self.verifier.revoked(leaf, intermediates)
    }

    /// The client-certificate policy.
    pub fn verify_client(&self) -> VerifyClient {
        self.verifier.mode()
    }

    /// The server's own certificate (for logs and the quickstart banner).
    pub fn certificate(&self) -> Arc<PeerCert> {
        self.certificate.leaf()
    }

    /// Serve the certificate and key in these files from the next handshake on (a reload);
    /// sessions and ticket keys are kept. On error the current certificate stays.
    pub fn replace_certificate(
        &self,
        certificate: &Path,
        key: &Path,
        key_password_file: Option<&Path>,
    ) -> Result<(), TlsError> {
        let (certified, leaf) = load_certificate(
            self.template.crypto_provider(),
            certificate,
            key,
            key_password_file,
        )?;
        self.certificate.replace(certified, leaf);
        Ok(())
    }

    /// The block's configuration for one handshake, with a verifier of its own that keeps
    /// this handshake's refusal.
    ///
    /// It is the template with another verifier: rustls keeps that field private, so the
    /// copy is made through the builder and every public field is taken from the template.
    /// The `Arc`s among them (session cache, ticket keys, certificate resolver, key log) are
    /// shared, so a session made on one connection resumes on another: the rustls server
    /// keeps no tie between a session and the `ServerConfig` that made it (it checks suite,
    /// SNI and extended master secret only). Allocations: the copy, the verifier, the ALPN
    /// list, and rustls' default session cache, made by the builder and dropped at once.
    fn for_handshake(&self, chacha_first: bool) -> (Arc<ServerConfig>, Arc<HandshakeVerifier>) {
        let verifier = Arc::new(HandshakeVerifier::new(self.verifier.clone()));
        let t = &self.template;
        let mut config = self
            .builder
            .clone()
            .with_client_cert_verifier(verifier.clone())
            .with_cert_resolver(t.cert_resolver.clone());
        config.ignore_client_order = t.ignore_client_order && !chacha_first;
        config.max_fragment_size = t.max_fragment_size;
        config.session_storage = t.session_storage.clone();
        config.ticketer = t.ticketer.clone();
        config.alpn_protocols.clone_from(&t.alpn_protocols);
        config.key_log = t.key_log.clone();
        config.enable_secret_extraction = t.enable_secret_extraction;
        config.max_early_data_size = t.max_early_data_size;
        config.send_half_rtt_data = t.send_half_rtt_data;
        config.send_tls13_tickets = t.send_tls13_tickets;
        config.max_tls13_tickets = t.max_tls13_tickets;
        config.require_ems = t.require_ems;
        config.time_provider = t.time_provider.clone();
        config.cert_compressors.clone_from(&t.cert_compressors);
        config.cert_compression_cache = t.cert_compression_cache.clone();
        config.cert_decompressors.clone_from(&t.cert_decompressors);
        (Arc::new(config), verifier)
    }
}

/// A certificate chain and its key, checked to belong together, with the leaf's names.
fn load_certificate(
    provider: &CryptoProvider,
    certificate: &Path,
    key: &Path,
    key_password_file: Option<&Path>,
) -> Result<(CertifiedKey, PeerCert), TlsError> {
    let chain = read_certificates("certificate", certificate)?;
    let passwords = read_key_passwords(key_password_file)?;
    let passwords = KeyPasswords {
        passwords: &passwords,
        file: key_password_file,
        how: "key_password_file",
    };
    let signer = provider
        .key_provider
        .load_private_key(read_key("key", key, passwords)?)
        .map_err(|e| TlsError::File {
            key: "key",
            path: key.to_owned(),
            message: format!("unsupported private key: {e}"),
        })?;
    let leaf = PeerCert::from_der(chain[0].as_ref());
    let certified = CertifiedKey::new(chain, signer);
    if certified.keys_match().is_err() {
        return Err(TlsError::File {
            key: "key",
            path: key.to_owned(),
            message: format!(
                "this key does not belong to the certificate in {}",
                certificate.display()
            ),
        });
    }
    Ok((certified, leaf))
}

/// A connection whose ClientHello has arrived, waiting for the gateway to pick a block.
pub struct ClientHello<IO> {
    start: tokio_rustls::StartHandshake<IO>,
    server_name: Option<String>,
    chacha_first: bool,
}

impl<IO> std::fmt::Debug for ClientHello<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHello")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> ClientHello<IO> {
    /// Read bytes until a whole ClientHello has arrived. A peer that sends something else
    /// gets an error here (and nothing else is disturbed).
    pub async fn read(io: IO) -> Result<ClientHello<IO>, HandshakeError> {
        let start = LazyConfigAcceptor::new(Acceptor::default(), io)
            .await
            .map_err(|e| HandshakeError::from_io(e, None))?;
        let server_name = start.client_hello().server_name().map(str::to_owned);
        let chacha_first = ciphers::client_prefers_chacha(start.client_hello().cipher_suites());
        Ok(ClientHello {
            start,
            server_name,
            chacha_first,
        })
    }

    /// The SNI name the client asked for, if any.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// Finish the handshake with `server`'s certificate and policy.
    pub async fn complete(
        self,
        server: &TlsServer,
    ) -> Result<(TlsStream<IO>, HandshakeInfo), HandshakeError> {
        let server_name = self.server_name;
        // With prefer_server_ciphers, a client whose first suite is ChaCha20 (no AES
        // hardware) keeps its own order (OpenSSL's PRIORITIZE_CHACHA).
        let (config, verifier) = server.for_handshake(self.chacha_first);
        let stream = match self.start.into_stream(config).into_fallible().await {
            Ok(stream) => stream,
            Err((e, io)) => {
                let refusal = verifier.refusal();
                linger(io).await;
                return Err(HandshakeError::from_io(e, refusal));
            }
        };
        let (_, conn) = stream.get_ref();
        let chain = conn.peer_certificates();
        let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
        // rustls restores a resumed session's client chain without asking the verifier: a
        // client revoked since its full handshake would come back for as long as its
        // session lives. The handshake is over, so no alert can be sent; close_notify.
        let intermediates: Vec<Vec<u8>> = chain
            .map(|c| c.iter().skip(1).map(|c| c.as_ref().to_vec()).collect())
            .unwrap_or_default();
        if resumed
            && let Some(refusal) = chain
                .and_then(|c| c.first())
                .and_then(|leaf| server.verifier.revoked(leaf.as_ref(), &intermediates))
        {
            // Shut down through TLS: close_notify, then FIN, then drain what the client sends.
            linger(stream).await;
            return Err(HandshakeError::ResumedRevoked(refusal));
        }
        let verify = server.verifier.status(chain);
        let peer = chain
            .and_then(|c| c.first())
            .map(|leaf| Arc::new(PeerCert::from_der(leaf.as_ref())));
        let info = HandshakeInfo {
            protocol: match conn.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "unknown",
            },
            cipher: conn
                .negotiated_cipher_suite()
                .map_or("unknown", ciphers::openssl_name),
            resumed,
            server_name,
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            peer,
            intermediates: Arc::new(intermediates),
            verify,
        };
        Ok((stream, info))
    }
}

/// Close a refused connection so the peer can read our alert. In TLS 1.3 a client
/// considers the handshake done before the server has checked its certificate, and sends
/// its request at once; closing a socket with unread data makes the kernel send a reset,
/// which can destroy the alert before the client reads it ("connection reset" instead of
/// "certificate required"). So, like nginx's lingering close: send FIN, then read and
/// discard what the client still sends, for a bounded time.
async fn linger<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let drain = async {
        let _ = io.shutdown().await;
        let mut sink = [0u8; 4096];
        let mut total = 0usize;
        while total < 256 * 1024 {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// What the handshake settled, for routing, access rules and the access log.
#[derive(Debug, Clone)]
pub struct HandshakeInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// OpenSSL name of the suite (nginx's `$ssl_cipher`).
    pub cipher: &'static str,
    /// Whether a session was resumed.
    pub resumed: bool,
    /// The SNI name the client sent.
    pub server_name: Option<String>,
    /// The ALPN protocol agreed.
    pub alpn: Option<Vec<u8>>,
    /// The client certificate, if one was presented.
    pub peer: Option<Arc<PeerCert>>,
    /// The certificates the client sent after its own (DER), for checks made later (a
    /// reload's CRLs against the clients already connected).
    pub intermediates: Arc<Vec<Vec<u8>>>,
    /// nginx's `$ssl_client_verify`.
    pub verify: VerifyStatus,
}

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The client certificate was refused; the peer got `alert` (name and number).
    #[error("client certificate refused ({check}): {reason}; subject {subject}, issuer {issuer}, serial {serial}; sent alert {alert}", check = .refusal.check, reason = .refusal.reason, subject = .refusal.subject, issuer = .refusal.issuer, serial = .refusal.serial)]
    CertificateRefused {
        /// What failed and for which certificate.
        refusal: Refusal,
        /// The alert sent.
        alert: String,
    },
    /// A resumed session's client certificate is revoked now (by a CRL loaded since its
    /// full handshake). The handshake had ended, so no alert: the connection is closed.
    #[error("client certificate refused ({check}) on resumption: {reason}; subject {subject}, issuer {issuer}, serial {serial}; the session was resumed and the handshake had ended, so the connection was closed with close_notify", check = .0.check, reason = .0.reason, subject = .0.subject, issuer = .0.issuer, serial = .0.serial)]
    ResumedRevoked(Refusal),
    /// The server requires a certificate and the client sent none.
    #[error("client sent no certificate, and verify_client = on requires one; sent alert {alert}")]
    NoCertificate {
        /// The alert sent, name and number: `certificate_required (116)`, in TLS 1.2 as in
        /// TLS 1.3 (rustls' choice).
        alert: String,
    },
    /// The client speaks only a protocol version older than TLS 1.2.
    #[error(
        "the client offered only TLS 1.0 or 1.1 (its hello has no signature_algorithms, which \
         TLS 1.2 added); mtls accepts TLS 1.2 and 1.3 only; sent alert handshake_failure (40)"
    )]
    OldProtocol,
    /// The client ended the handshake with an alert (often: it refused our certificate);
    /// name and number.
    #[error("client sent alert {0}")]
    PeerAlert(String),
    /// Any other TLS failure: garbage, no common suite or protocol, bad signatures.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The socket failed or the client went away.
    #[error("connection error: {}", crate::cause::describe(.0))]
    Io(std::io::Error),
}

impl HandshakeError {
    /// A short stable name for metrics and the log's `check=` field.
    pub fn check(&self) -> &'static str {
        match self {
            HandshakeError::CertificateRefused { refusal, .. } => refusal.check,
            HandshakeError::ResumedRevoked(refusal) => refusal.check,
            HandshakeError::NoCertificate { .. } => "no_certificate",
            HandshakeError::OldProtocol => "protocol_version",
            HandshakeError::PeerAlert(_) => "peer_alert",
            HandshakeError::Tls(_) => "tls_error",
            HandshakeError::Io(_) => "io",
        }
    }

    fn from_io(error: std::io::Error, refusal: Option<Refusal>) -> HandshakeError {
        let tls = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned();
        // The alert is rustls' choice (`send_fatal_alert` in its `server/tls12.rs` and
        // `server/tls13.rs`, 0.23), and it does not depend on the version: a missing
        // certificate is `certificate_required` in TLS 1.2 too, although RFC 5246 has no such
        // alert (OpenSSL names it either way). `tests/handshakes.rs` holds these words to
        // what a client receives, in both versions.
        match (tls, refusal) {
            (Some(rustls::Error::InvalidCertificate(cert)), Some(refusal)) => {
                HandshakeError::CertificateRefused {
                    refusal,
                    // rustls' `send_cert_verify_error_alert`.
                    alert: alert_words(rustls::AlertDescription::from(cert)),
                }
            }
            (Some(rustls::Error::NoCertificatesPresented), _) => HandshakeError::NoCertificate {
                alert: alert_words(rustls::AlertDescription::CertificateRequired),
            },
            (
                Some(rustls::Error::PeerIncompatible(
                    rustls::PeerIncompatible::SignatureAlgorithmsExtensionRequired,
                )),
                _,
            ) => HandshakeError::OldProtocol,
            (Some(rustls::Error::AlertReceived(alert)), _) => {
                HandshakeError::PeerAlert(alert_words(alert))
            }
            (Some(other), _) => HandshakeError::Tls(other.to_string()),
            (None, _) => HandshakeError::Io(error),
        }
    }
}

/// An alert as the log shows it, name and number, the number being what `openssl s_client`
/// reports ("SSL alert number 116"): `certificate_required (116)`.
pub fn alert_words(alert: rustls::AlertDescription) -> String {
    format!("{} ({})", alert_name(alert), u8::from(alert))
}

/// An alert's name as the RFCs and OpenSSL spell it (`unknown_ca`, `certificate_expired`).
pub fn alert_name(alert: rustls::AlertDescription) -> String {
    let debug = format!("{alert:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    let chars: Vec<char> = debug.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev_lower = chars[i - 1].is_ascii_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev_lower || (next_lower && chars[i - 1].is_ascii_uppercase()) {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// nginx's `ssl_session_cache` with `ssl_session_timeout`: a bounded store whose entries
/// expire. rustls' own memory cache has no notion of age.
#[derive(Debug)]
struct TimedSessionCache {
    inner: Mutex<CacheInner>,
    capacity: usize,
    timeout: Duration,
}

#[derive(Debug, Default)]
struct CacheInner {
    entries: HashMap<Vec<u8>, (Instant, Vec<u8>)>,
    order: VecDeque<Vec<u8>>,
}

impl TimedSessionCache {
    fn new(capacity: usize, timeout: Duration) -> TimedSessionCache {
        TimedSessionCache {
            inner: Mutex::new(CacheInner::default()),
            capacity,
            timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding this lock cannot leave the map inconsistent in a way that
        // matters for a cache, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StoresServerSessions for TimedSessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut inner = self.lock();
        while inner.entries.len() >= self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.entries.remove(&old);
                }
                None => break,
            }
        }
        if inner
            .entries
            .insert(key.clone(), (Instant::now(), value))
            .is_none()
        {
            inner.order.push_back(key);
        }
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let inner = self.lock();
        let (at, value) = inner.entries.get(key)?;
        (at.elapsed() < self.timeout).then(|| value.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut inner = self.lock();
        let (at, value) = inner.entries.remove(key)?;
        (at.elapsed() < self.timeout).then_some(value)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// Tickets that honour `session_timeout`: the issue time is sealed inside the ticket and
/// checked on the way back, and the advertised lifetime is the timeout.
#[derive(Debug)]
struct TimedTicketer {
    inner: Arc<dyn ProducesTickets>,
    lifetime: Duration,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ProducesTickets for TimedTicketer {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }

    fn lifetime(&self) -> u32 {
        u32::try_from(self.lifetime.as_secs()).unwrap_or(u32::MAX)
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut sealed = Vec::with_capacity(8 + plain.len());
        sealed.extend_from_slice(&unix_now().to_be_bytes());
        sealed.extend_from_slice(plain);
        self.inner.encrypt(&sealed)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let plain = self.inner.decrypt(cipher)?;
        let (issued, rest) = plain.split_first_chunk::<8>()?;
        let age = unix_now().saturating_sub(u64::from_be_bytes(*issued));
        (age < self.lifetime.as_secs()).then(|| rest.to_vec())
    }
}

fn read_ticket_keys(files: &[PathBuf]) -> Result<Vec<Arc<TicketKeyMaterial>>, TlsError> {
    tickets::read_keys(files).map_err(|e| {
        let path = match &e {
            TicketKeyError::Read { path, .. }
            | TicketKeyError::Length { path, .. }
            | TicketKeyError::Duplicate { second: path, .. } => path.clone(),
            TicketKeyError::Empty => PathBuf::new(),
        };
        let message = match e {
            TicketKeyError::Read { error, .. } => format!("cannot read: {error}"),
            TicketKeyError::Length { len, .. } => format!(
                "a session ticket key file holds exactly 80 random bytes (found {len}); make \
                 one with `openssl rand 80 > FILE`"
            ),
            other => other.to_string(),
        };
        TlsError::File {
            key: "session_ticket_key",
            path,
            message,
        }
    })
}

fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        key,
        path: path.to_owned(),
        message: format!("cannot read: {e}"),
    })
}

pub(crate) fn read_certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read_file(key, path)?;
    let certs = mtls_pki::pem::certificates(&data, &path.display().to_string()).map_err(|e| {
        TlsError::File {
            key,
            path: path.to_owned(),
            message: e.to_string(),
        }
    })?;
    if certs.is_empty() {
        return Err(TlsError::File {
            key,
            path: path.to_owned(),
            message: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

fn read_many(
    key: &'static str,
    paths: &[PathBuf],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut out = Vec::new();
    for path in paths {
        out.extend(read_certificates(key, path)?);
    }
    Ok(out)
}

/// The passwords for an encrypted key and where they came from, for [`read_key`]'s errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyPasswords<'a> {
    pub(crate) passwords: &'a [Password],
    /// The `key_password_file` that gave them, blamed when none opens the key; `None`
    /// blames the key's own setting.
    pub(crate) file: Option<&'a Path>,
    /// How to give a password, for the error about an encrypted key given none.
    pub(crate) how: &'static str,
}

/// The private key in `path`, named by the setting `key`, decrypted if it is encrypted.
pub(crate) fn read_key(
    key: &'static str,
    path: &Path,
    passwords: KeyPasswords<'_>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = Zeroizing::new(read_file(key, path)?);
    let what = path.display().to_string();
    mtls_pki::key::private_key_with(&data, &what, passwords.passwords).map_err(|e| {
        match (e, passwords.file) {
            (e @ mtls_pki::Error::KeyPassword { .. }, Some(file)) => TlsError::File {
                key: "key_password_file",
                path: file.to_owned(),
                message: e.to_string(),
            },
            (e, _) => TlsError::File {
                key,
                path: path.to_owned(),
                message: e.with_password_hint(passwords.how).to_string(),
            },
        }
    })
}

/// The passwords in a `key_password_file`, one per line (nginx's `ssl_password_file`).
pub(crate) fn read_key_passwords(file: Option<&Path>) -> Result<Vec<Password>, TlsError> {
    let Some(file) = file else {
        return Ok(Vec::new());
    };
    let data = Zeroizing::new(read_file("key_password_file", file)?);
    let passwords = Password::lines(&data);
    if passwords.is_empty() {
        return Err(TlsError::File {
            key: "key_password_file",
            path: file.to_owned(),
            message: "holds no password (one per line)".into(),
        });
    }
    Ok(passwords)
}

/// The DER CRLs of one `crl` file (PEM with X509 CRL sections, or one DER CRL); each
/// must at least have a CRL's envelope, so a wrong file is named here.
fn read_crls(path: &Path) -> Result<Vec<Vec<u8>>, TlsError> {
    let data = read_file("crl", path)?;
    let bad = |message: String| TlsError::File {
        key: "crl",
        path: path.to_owned(),
        message,
    };
    let ders = if mtls_pki::pem::is_pem(&data) {
        let sections = mtls_pki::pem::sections(&data, &path.display().to_string())
            .map_err(|e| bad(e.to_string()))?;
        let mut ders = Vec::new();
        for section in sections {
            if section.label != "X509 CRL" {
                return Err(bad(format!(
                    "expected X509 CRL sections, found {}",
                    section.label
                )));
            }
            ders.push(section.der);
        }
        ders
    } else {
        vec![data]
    };
    for der in &ders {
        mtls_verify::crl::check_envelope(der).map_err(bad)?;
    }
    Ok(ders)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS 1.3 block serving `certificate` with `key`, asking nothing of clients.
    fn minimal(certificate: PathBuf, key: PathBuf) -> ServerTlsSettings {
        ServerTlsSettings {
            certificate,
            key,
            key_password_file: None,
            client_ca: Vec::new(),
            trusted_ca: Vec::new(),
            verify_client: VerifyClient::Off,
            crl: Vec::new(),
            verify_depth: 1,
            protocols: vec!["TLSv1.3".into()],
            ciphers: None,
            prefer_server_ciphers: true,
            session_cache: None,
            session_timeout: Duration::from_secs(60),
            session_tickets: false,
            session_ticket_keys: Vec::new(),
            alpn: Vec::new(),
            keylog: None,
        }
    }

    /// A handshake's configuration is the block's with another verifier. Every public field
    /// is compared through `Debug`, so a field a newer rustls adds, set on the template and
    /// not copied, fails here; the state that must be one object is checked to be shared.
    #[test]
    fn a_handshake_runs_on_the_block_config_with_its_own_verifier() {
        let mut ca = mtls_test_support::TestCa::new();
        let issued = ca.server("localhost", &["localhost"]);
        let settings = ServerTlsSettings {
            certificate: issued.chain,
            key: issued.key.expect("the CA made the key"),
            key_password_file: None,
            client_ca: vec![ca.ca.layout().ca_cert()],
            trusted_ca: Vec::new(),
            verify_client: VerifyClient::Optional,
            crl: Vec::new(),
            verify_depth: 1,
            protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
            ciphers: Some("ECDHE-ECDSA-AES256-GCM-SHA384:TLS_AES_256_GCM_SHA384".into()),
            prefer_server_ciphers: true,
            session_cache: Some(10),
            session_timeout: Duration::from_secs(60),
            session_tickets: true,
            session_ticket_keys: Vec::new(),
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            keylog: Some(ca.dir().join("keys.log")),
        };
        let server = TlsServer::build(&settings).expect("server");
        let (config, verifier) = server.for_handshake(false);
        let template = &server.template;
        assert_eq!(format!("{template:?}"), format!("{config:?}"));
        assert!(Arc::ptr_eq(
            &template.session_storage,
            &config.session_storage
        ));
        assert!(Arc::ptr_eq(&template.ticketer, &config.ticketer));
        assert!(Arc::ptr_eq(&template.cert_resolver, &config.cert_resolver));
        assert!(Arc::ptr_eq(&template.key_log, &config.key_log));
        assert!(format!("{:?}", config.key_log).contains("keys.log"));
        assert!(verifier.refusal().is_none());
        let (other, _) = server.for_handshake(false);
        assert!(!Arc::ptr_eq(&config, &other));
    }

    /// A rebuild (a reload) that names the same key log keeps the open file; another
    /// file is opened, and no `keylog` logs nothing.
    #[test]
    fn a_rebuild_keeps_the_key_log_only_when_it_names_the_same_file() {
        let mut ca = mtls_test_support::TestCa::new();
        let issued = ca.server("localhost", &["localhost"]);
        let mut settings = ServerTlsSettings {
            keylog: Some(ca.dir().join("a.log")),
            ..minimal(issued.chain, issued.key.expect("the CA made the key"))
        };
        let first = TlsServer::build(&settings).expect("server");
        let same = TlsServer::build_after(&settings, Some(&first)).expect("server");
        assert!(Arc::ptr_eq(&first.template.key_log, &same.template.key_log));
        settings.keylog = Some(ca.dir().join("b.log"));
        let other = TlsServer::build_after(&settings, Some(&same)).expect("server");
        assert!(!Arc::ptr_eq(
            &same.template.key_log,
            &other.template.key_log
        ));
        assert!(format!("{:?}", other.template.key_log).contains("b.log"));
        settings.keylog = None;
        let none = TlsServer::build_after(&settings, Some(&other)).expect("server");
        assert_eq!(format!("{:?}", none.template.key_log), "NoKeyLog");
    }

    /// An encrypted key opens with the second line of its password file, as nginx's
    /// `ssl_password_file`; each failure names the setting to fix.
    #[test]
    fn an_encrypted_key_is_read_with_its_password_file() {
        let mut ca = mtls_test_support::TestCa::new();
        let issued = ca.server("localhost", &["localhost"]);
        let plain = issued.key.expect("the CA made the key");
        let der = mtls_pki::key::private_key(&std::fs::read(&plain).expect("key"), "k")
            .expect("plain key");
        let encrypted = ca.dir().join("enc.key");
        let pem = mtls_pki::encrypted::encrypt_pkcs8(der.secret_der(), &Password::new("right"))
            .expect("encrypts");
        std::fs::write(&encrypted, pem).expect("write");
        let passwords = ca.dir().join("pass.txt");
        let build = |file: Option<&Path>, text: &str| {
            std::fs::write(&passwords, text).expect("write");
            let settings = ServerTlsSettings {
                key_password_file: file.map(Path::to_owned),
                ..minimal(issued.chain.clone(), encrypted.clone())
            };
            TlsServer::build(&settings)
        };
        let server = build(Some(&passwords), "wrong\nright\n").expect("second line opens it");
        assert_eq!(server.certificate().subject, "CN=localhost");

        let err = build(None, "").expect_err("no password");
        let TlsError::File { key, message, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(*key, "key");
        assert!(
            message.ends_with("enc.key is encrypted: give its password with key_password_file"),
            "{message}"
        );

        let err = build(Some(&passwords), "wrong\nalso wrong\n").expect_err("wrong");
        let TlsError::File { key, path, message } = &err else {
            panic!("{err}")
        };
        assert_eq!((*key, path), ("key_password_file", &passwords));
        assert!(message.starts_with("wrong password for "), "{message}");
        assert!(
            message.ends_with("enc.key (tried 2 passwords)"),
            "{message}"
        );

        let err = build(Some(&passwords), "\n").expect_err("empty");
        assert!(err.to_string().contains("holds no password"), "{err}");
    }

    #[test]
    fn alert_names_follow_the_rfc_spelling() {
        use rustls::AlertDescription as A;
        assert_eq!(alert_name(A::UnknownCA), "unknown_ca");
        assert_eq!(alert_name(A::CertificateExpired), "certificate_expired");
        assert_eq!(alert_name(A::CertificateRequired), "certificate_required");
        assert_eq!(alert_name(A::BadCertificate), "bad_certificate");
        assert_eq!(alert_name(A::HandshakeFailure), "handshake_failure");
        assert_eq!(
            alert_words(A::CertificateRequired),
            "certificate_required (116)"
        );
    }

    #[test]
    fn cache_forgets_after_the_timeout_and_at_capacity() {
        let cache = TimedSessionCache::new(2, Duration::from_millis(50));
        assert!(cache.put(b"a".to_vec(), b"1".to_vec()));
        assert!(cache.put(b"b".to_vec(), b"2".to_vec()));
        assert!(cache.put(b"c".to_vec(), b"3".to_vec()));
        assert_eq!(cache.get(b"a"), None, "oldest evicted at capacity");
        assert_eq!(cache.get(b"c"), Some(b"3".to_vec()));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(b"c"), None, "expired");
    }

    #[test]
    fn tickets_carry_their_age() {
        let ticketer = TimedTicketer {
            inner: rustls::crypto::aws_lc_rs::Ticketer::new().expect("ticketer"),
            lifetime: Duration::from_secs(300),
        };
        let sealed = ticketer.encrypt(b"session").expect("encrypt");
        assert_eq!(ticketer.decrypt(&sealed), Some(b"session".to_vec()));
        assert_eq!(ticketer.lifetime(), 300);
        let expired = TimedTicketer {
            inner: ticketer.inner.clone(),
            lifetime: Duration::from_secs(0),
        };
        assert_eq!(expired.decrypt(&sealed), None);
    }
}

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
//! Verification is rustls' `WebPkiServerVerifier` with two additions:
//!
//! - a certificate without any subjectAltName is matched against its subject CN, as
//!   OpenSSL (and so nginx) does and webpki does not; with SANs present the CN is never
//!   used (RFC 6125), and the fallback is taken only when the chain itself verified;
//! - a failure leaves a sentence about the certificate (subject, serial, issuer, the names
//!   it has) for `connect` to return, by the same thread-local route as the server side's
//!   refusals: see [`crate::verifier::take_refusal`] for why that is sound.
//!
//! In TLS 1.3 the upstream judges our client certificate after our side of the handshake
//! is done, so its refusal arrives with the first read, not from `connect`:
//! [`TlsClient::stream_error`] gives such errors the same words.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ResolvesClientCert, Resumption, WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor,
};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, HandshakeKind,
    InconsistentKeys, ProtocolVersion, RootCertStore, SignatureScheme,
};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use x509_parser::prelude::{FromDer, X509Certificate};

use mtls_pki::verify::{Purpose, VerifyError, VerifyOptions};

use crate::ciphers;
use crate::server::{TlsError, alert_name, read_certificates, read_key};

/// Everything needed to build the TLS client for one upstream block; paths are read by
/// [`TlsClient::build`].
#[derive(Debug, Clone)]
pub struct ClientTlsSettings {
    /// Our client certificate chain (PEM, leaf first), presented to the upstream when it
    /// asks (nginx's `proxy_ssl_certificate`). Set with `key`, or neither.
    pub certificate: Option<PathBuf>,
    /// The private key of `certificate` (nginx's `proxy_ssl_certificate_key`).
    pub key: Option<PathBuf>,
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
    #[error("connection to the upstream failed: {0}")]
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
            Arc::new(UpstreamVerifier::new(&settings.trusted_ca, &provider)?)
        } else {
            tracing::warn!(
                "upstream certificates are NOT verified (verify = false): any server on the \
                 path can pose as the upstream and read the proxied traffic"
            );
            Arc::new(DangerAcceptAnyUpstreamCertificate {
                algorithms: provider.signature_verification_algorithms,
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
                let certified = read_identity(certificate, key, &provider)?;
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
        let server_name = server_name(name)?;
        let mut handshake = TlsConnector::from(self.config.clone()).connect(server_name, io);
        // Whether the upstream asked for our certificate is per connection, and rustls
        // tells only the config's certificate resolver, which must stay the same object
        // for sessions to resume. So the resolver reports through a thread-local that is
        // scoped to each poll of this handshake (it runs inside the poll, like the
        // verifier: see `verifier::take_refusal`).
        let mut sent = CertificateSent::NotAsked;
        let result = std::future::poll_fn(|cx| {
            CERTIFICATE_SENT.set(sent);
            clear_explanation();
            let poll = Pin::new(&mut handshake).poll(cx);
            sent = CERTIFICATE_SENT.get();
            poll
        })
        .await;
        let stream = match result {
            Ok(stream) => stream,
            Err(error) => {
                // Set during the poll that returned the error, if the verifier refused.
                let explanation = take_explanation();
                return Err(self.classify(error, explanation, sent));
            }
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
        let tls = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned();
        match tls {
            None => UpstreamTlsError::Io(error),
            Some(rustls::Error::InvalidCertificate(cert)) => {
                let (check, reason) = explanation.unwrap_or_else(|| {
                    (
                        certificate_check(&cert),
                        format!(
                            "upstream certificate refused: {}",
                            rustls::Error::InvalidCertificate(cert.clone())
                        ),
                    )
                });
                UpstreamTlsError::Certificate { check, reason }
            }
            Some(rustls::Error::AlertReceived(alert)) if about_our_certificate(alert, sent) => {
                UpstreamTlsError::RefusedOurCertificate {
                    alert: alert_name(alert),
                    sent: match sent {
                        CertificateSent::Ours => self.ours.clone(),
                        _ => None,
                    },
                }
            }
            Some(rustls::Error::AlertReceived(alert)) => {
                UpstreamTlsError::Tls(format!("it sent alert {}", alert_name(alert)))
            }
            Some(other) => UpstreamTlsError::Tls(other.to_string()),
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

/// What we did when the upstream asked for a client certificate, as far as we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertificateSent {
    NotAsked,
    Ours,
    None,
}

/// Whether an alert from the upstream is its verdict on our client certificate.
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

thread_local! {
    /// What the resolver did during the current poll of a `connect` on this thread.
    static CERTIFICATE_SENT: Cell<CertificateSent> = const { Cell::new(CertificateSent::NotAsked) };
}

/// The config's certificate resolver, reporting whether the upstream asked for a
/// certificate and whether we had one to send (see `connect`).
#[derive(Debug)]
struct WatchClientCert {
    inner: Arc<dyn ResolvesClientCert>,
}

impl ResolvesClientCert for WatchClientCert {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let chosen = self.inner.resolve(root_hint_subjects, sigschemes);
        CERTIFICATE_SENT.set(if chosen.is_some() {
            CertificateSent::Ours
        } else {
            CertificateSent::None
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

/// `name` as rustls wants it; `[::1]` (as in a URL) is accepted for an IPv6 address.
fn server_name(name: &str) -> Result<ServerName<'static>, UpstreamTlsError> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_owned()).map_err(|_| UpstreamTlsError::InvalidName {
        name: name.to_owned(),
    })
}

/// Our certificate and key, checked to belong together.
fn read_identity(
    certificate: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates("certificate", certificate)?;
    let signer = provider
        .key_provider
        .load_private_key(read_key(key)?)
        .map_err(|e| TlsError::File {
            key: "key",
            path: key.to_owned(),
            message: format!("unsupported private key: {e}"),
        })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        // Unknown: the key type cannot tell its public key; rustls accepts that too.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(_) => Err(TlsError::File {
            key: "key",
            path: key.to_owned(),
            message: format!(
                "this key does not belong to the certificate in {}",
                certificate.display()
            ),
        }),
    }
}

thread_local! {
    static LAST_EXPLANATION: RefCell<Option<(&'static str, String)>> =
        const { RefCell::new(None) };
}

fn clear_explanation() {
    LAST_EXPLANATION.with(|slot| *slot.borrow_mut() = None);
}

fn take_explanation() -> Option<(&'static str, String)> {
    LAST_EXPLANATION.with(|slot| slot.borrow_mut().take())
}

fn record_explanation(check: &'static str, reason: String) {
    LAST_EXPLANATION.with(|slot| *slot.borrow_mut() = Some((check, reason)));
}

/// `verify = true`: rustls' verifier, plus the CN fallback and explanations.
#[derive(Debug)]
struct UpstreamVerifier {
    inner: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    /// The same CAs as DER, for [`mtls_pki::verify`]'s explanations.
    root_certs: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl UpstreamVerifier {
    fn new(
        trusted_ca: &[PathBuf],
        provider: &Arc<CryptoProvider>,
    ) -> Result<UpstreamVerifier, TlsError> {
        if trusted_ca.is_empty() {
            return Err(TlsError::Setting {
                key: "trusted_ca",
                message: "verifying the upstream needs trusted_ca, the CA file(s) that sign its \
                          certificate (there is no system root store); or set verify = false"
                    .into(),
            });
        }
        let mut roots = RootCertStore::empty();
        let mut root_certs = Vec::new();
        for path in trusted_ca {
            for cert in read_certificates("trusted_ca", path)? {
                roots.add(cert.clone()).map_err(|e| TlsError::File {
                    key: "trusted_ca",
                    path: path.clone(),
                    message: format!("a certificate is not usable as a trust anchor: {e}"),
                })?;
                root_certs.push(cert);
            }
        }
        let roots = Arc::new(roots);
        let inner = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Setting {
                key: "verify",
                message: format!("cannot build the upstream verifier: {e}"),
            })?;
        Ok(UpstreamVerifier {
            inner,
            roots,
            root_certs,
            algorithms: provider.signature_verification_algorithms,
        })
    }

    /// nginx/OpenSSL compatibility: a certificate without any subjectAltName extension is
    /// matched against its subject CN (`*.` matching one label). Only called when rustls'
    /// sole complaint was the name (it checks the name last); the chain is checked again
    /// here anyway so that accepting never depends on that order.
    fn common_name_matches(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        // OpenSSL never matches an IP address against the CN either.
        let ServerName::DnsName(dns) = server_name else {
            return false;
        };
        let Ok((_, cert)) = X509Certificate::from_der(end_entity.as_ref()) else {
            return false;
        };
        // RFC 6125: with any subjectAltName present (even one without DNS names), the CN
        // is never used. A malformed extension counts as present.
        if !matches!(cert.subject_alternative_name(), Ok(None)) {
            return false;
        }
        let matched = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .any(|cn| mtls_pki::verify::dns_matches(cn, dns.as_ref()));
        if !matched {
            return false;
        }
        let Ok(parsed) = ParsedCertificate::try_from(end_entity) else {
            return false;
        };
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )
        .is_ok()
    }

    /// One sentence about the certificate and why it was refused, with the stable check
    /// name taken from rustls' error (which decided).
    fn explain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
        error: &rustls::Error,
    ) -> (&'static str, String) {
        let check = match error {
            rustls::Error::InvalidCertificate(cert) => certificate_check(cert),
            _ => "invalid_certificate",
        };
        let name = server_name.to_str();
        if check == "name_mismatch" {
            return (check, name_mismatch(end_entity.as_ref(), &name));
        }
        let (subject, _, serial) = crate::identity::names(end_entity.as_ref());
        let who = format!("upstream certificate {subject} (serial {serial})");
        let at = OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let options = VerifyOptions {
            roots: self.root_certs.clone(),
            untrusted: intermediates
                .iter()
                .map(|c| c.clone().into_owned())
                .collect(),
            crls: Vec::new(),
            purpose: Some(Purpose::Server),
            name: Some(name.into_owned()),
            at,
            // webpki's own limit is far beyond any real chain; this only bounds the search.
            max_depth: 8,
        };
        let reason = match mtls_pki::verify::verify(end_entity.as_ref(), &options) {
            Err(words) if same_kind(&words, error) => sentence(&who, &subject, &words),
            _ => format!("{who} was refused: {error}"),
        };
        (check, reason)
    }
}

impl ServerCertVerifier for UpstreamVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let error = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(error) => error,
        };
        let name_only = matches!(
            error,
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        );
        if name_only && self.common_name_matches(end_entity, intermediates, server_name, now) {
            return Ok(ServerCertVerified::assertion());
        }
        let (check, reason) = self.explain(end_entity, intermediates, server_name, now, &error);
        record_explanation(check, reason);
        Err(error)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `verify = false`: accepts any upstream certificate, from anyone, for any name. The
/// handshake signatures are still checked, which proves only that the peer holds the key
/// of the certificate it sent — not who it is. `build` warns when it makes one.
#[derive(Debug)]
struct DangerAcceptAnyUpstreamCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for DangerAcceptAnyUpstreamCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
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

/// "upstream certificate has no name backend.internal; it has [DNS:a.example, ...]".
fn name_mismatch(der: &[u8], name: &str) -> String {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return format!("upstream certificate has no name {name}; it does not parse");
    };
    let sans = mtls_pki::show::subject_alt_names(&cert);
    if !sans.is_empty() {
        return format!(
            "upstream certificate has no name {name}; it has [{}]",
            sans.join(", ")
        );
    }
    let cns: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(|cn| format!("CN={cn}"))
        .collect();
    let why = if name.parse::<std::net::IpAddr>().is_ok() {
        "no subjectAltName, and an IP address is matched only against IP SANs"
    } else {
        "no subjectAltName, so its CN was compared"
    };
    format!(
        "upstream certificate has no name {name}; it has [{}] ({why})",
        cns.join(", ")
    )
}

/// The stable check name for rustls' certificate error.
fn certificate_check(error: &CertificateError) -> &'static str {
    use CertificateError as C;
    match error {
        C::NotValidForName | C::NotValidForNameContext { .. } => "name_mismatch",
        C::UnknownIssuer | C::BadSignature => "unknown_issuer",
        C::Expired | C::ExpiredContext { .. } => "expired",
        C::NotValidYet | C::NotValidYetContext { .. } => "not_yet_valid",
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => "wrong_purpose",
        C::Revoked => "revoked",
        C::BadEncoding => "malformed",
        _ => "invalid_certificate",
    }
}

/// Whether `mtls-pki`'s explanation is about the failure rustls found.
fn same_kind(words: &VerifyError, error: &rustls::Error) -> bool {
    use CertificateError as C;
    use VerifyError as V;
    let rustls::Error::InvalidCertificate(cert) = error else {
        return false;
    };
    matches!(
        (words, cert),
        (
            V::UnknownIssuer { .. } | V::BadSignature { .. },
            C::UnknownIssuer | C::BadSignature
        ) | (V::Expired { .. }, C::Expired | C::ExpiredContext { .. })
            | (
                V::NotYetValid { .. },
                C::NotValidYet | C::NotValidYetContext { .. }
            )
            | (
                V::WrongPurpose { .. },
                C::InvalidPurpose | C::InvalidPurposeContext { .. }
            )
            | (V::Revoked(_), C::Revoked)
            | (V::Malformed { .. }, C::BadEncoding)
            | (V::NotCa { .. }, C::Other(_))
    )
}

/// `mtls-pki`'s words, turned to be about the upstream.
fn sentence(who: &str, leaf_subject: &str, words: &VerifyError) -> String {
    match words {
        VerifyError::UnknownIssuer {
            subject,
            issuer,
            trusted,
        } if subject == leaf_subject => {
            format!("{who} was issued by {issuer}, which is not in trusted_ca [{trusted}]")
        }
        VerifyError::UnknownIssuer {
            subject,
            issuer,
            trusted,
        } => format!(
            "{who} chains up to {subject}, issued by {issuer}, which is not in trusted_ca \
             (it has {trusted})"
        ),
        VerifyError::BadSignature { subject, issuer } if subject == leaf_subject => format!(
            "{who} names {issuer} as its issuer, but that CA in trusted_ca did not sign it \
             (another CA with the same name did)"
        ),
        VerifyError::Expired { subject, .. } | VerifyError::NotYetValid { subject, .. }
            if subject == leaf_subject =>
        {
            format!("upstream {words}")
        }
        VerifyError::Revoked(details) if details.subject == leaf_subject => {
            format!("upstream {words}")
        }
        other => format!("{who} is not acceptable: {other}"),
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
            alpn: vec![b"http/1.1".to_vec()],
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
            trusted_ca: vec![ca.ca.layout().ca_cert()],
            verify: true,
            protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
            ciphers: None,
            session_reuse: true,
            sni: true,
            alpn: vec![b"http/1.1".to_vec()],
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
        assert_eq!(err.check(), "unknown_issuer", "{err}");
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
        assert_eq!(err.check(), "unknown_issuer");
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
}

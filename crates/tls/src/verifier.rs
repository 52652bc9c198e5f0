//! The client-certificate verifier: nginx's `ssl_verify_client`, `ssl_client_certificate`,
//! `ssl_trusted_certificate`, `ssl_crl` and `ssl_verify_depth`, with reasons.
//!
//! Path building, signatures, validity, extended key usage and CRLs are checked by webpki —
//! the same code rustls' own verifier runs — so the fast path is the audited one. We add
//! what nginx users rely on and rustls does not offer:
//!
//! - two CA lists: `client_ca` is trusted *and* advertised in the CertificateRequest;
//!   `trusted_ca` is trusted but never advertised (nginx's `ssl_trusted_certificate`);
//! - `verify_depth` with OpenSSL's meaning (depth 1 = a leaf signed directly by a trusted CA),
//!   enforced during path building so a shorter path is still found;
//! - `optional_no_ca`: the handshake succeeds whatever the certificate, and the gateway
//!   reports `FAILED:reason` to the application (see [`ClientVerifier::status`]);
//! - CRLs checked for the whole chain and failing closed: a CA in the chain without a CRL
//!   makes the status unknown, which is a refusal (OpenSSL's `X509_V_FLAG_CRL_CHECK_ALL`).
//!
//! When a certificate is refused, the right TLS alert goes to the peer (rustls maps our
//! `CertificateError` to certificate_expired, certificate_revoked, unknown_ca, ...), and a
//! [`Refusal`] naming the failed check, the subject, issuer and serial is kept for the
//! accept loop to log.
//!
//! rustls calls a verifier with no connection context, and its error must be one of
//! rustls' own for the peer to get the right alert, so the refusal cannot travel back in
//! the error. Instead every handshake gets its own `HandshakeVerifier`: a small wrapper
//! around the block's shared [`ClientVerifier`] (the policy, built once) that keeps the
//! refusal of that one handshake:
//!
//! ```text
//!   block:      Arc<ClientVerifier> ───────────────┐ (shared: CAs, CRLs, depth)
//!   handshake:  ServerConfig copy ─► HandshakeVerifier { policy, refusal } ─► complete()
//! ```

use std::cell::RefCell;

use crate::identity::PeerCert;
use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage, OwnedCertRevocationList};

use mtls_pki::verify::{Purpose, VerifyOptions};

use crate::revocation::{Crls, RevocationFailure};

/// nginx's `ssl_verify_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyClient {
    /// A certificate is required and must verify.
    On,
    /// A certificate is asked for; none is fine, a bad one is refused.
    Optional,
    /// A certificate is asked for; any outcome completes the handshake and is reported.
    OptionalNoCa,
    /// No certificate is asked for.
    Off,
}

/// What the application learns about the client certificate (nginx's `$ssl_client_verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyStatus {
    /// A certificate was presented and verified.
    Success,
    /// A certificate was presented and did not verify (only with `optional_no_ca`).
    Failed(String),
    /// No certificate was presented (or none was asked for).
    None,
}

impl fmt::Display for VerifyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyStatus::Success => f.write_str("SUCCESS"),
            VerifyStatus::Failed(reason) => write!(f, "FAILED:{reason}"),
            VerifyStatus::None => f.write_str("NONE"),
        }
    }
}

/// Why a client certificate was refused, for the operator's log and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A short stable name of the failed check (`unknown_issuer`, `expired`, `revoked`,
    /// `chain_too_deep`, `crl_missing`, ...).
    pub check: &'static str,
    /// One sentence a person can act on.
    pub reason: String,
    /// The client certificate's subject DN.
    pub subject: String,
    /// Its issuer DN.
    pub issuer: String,
    /// Its serial, upper-case hex.
    pub serial: String,
}

/// The client-certificate policy of one TLS server block, shared by all its handshakes
/// (each through its own `HandshakeVerifier`).
#[derive(Debug)]
pub struct ClientVerifier {
    mode: VerifyClient,
    anchors: Vec<TrustAnchor<'static>>,
    /// The same CAs as DER, for [`mtls_pki::verify`]'s explanations.
    anchor_certs: Vec<CertificateDer<'static>>,
    hints: Vec<DistinguishedName>,
    crls: Crls,
    depth: u32,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientVerifier {
    /// A verifier trusting `client_ca` (advertised) and `trusted_ca` (not advertised).
    pub(crate) fn new(
        mode: VerifyClient,
        client_ca: &[CertificateDer<'static>],
        trusted_ca: &[CertificateDer<'static>],
        crls: Vec<(Vec<u8>, OwnedCertRevocationList)>,
        depth: u32,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Result<ClientVerifier, (&'static str, String)> {
        let mut anchors = Vec::new();
        let mut anchor_certs: Vec<CertificateDer<'static>> = Vec::new();
        let mut hints: Vec<DistinguishedName> = Vec::new();
        for (advertised, cert) in client_ca
            .iter()
            .map(|c| (true, c))
            .chain(trusted_ca.iter().map(|c| (false, c)))
        {
            let anchor = webpki::anchor_from_trusted_cert(cert)
                .map_err(|e| {
                    let key = if advertised {
                        "client_ca"
                    } else {
                        "trusted_ca"
                    };
                    (
                        key,
                        format!("a CA certificate is not usable as a trust anchor: {e}"),
                    )
                })?
                .to_owned();
            if advertised {
                let name = DistinguishedName::in_sequence(anchor.subject.as_ref());
                // The same CA in two files must be advertised once (nginx-tests checks this).
                if !hints.iter().any(|h| h.as_ref() == name.as_ref()) {
                    hints.push(name);
                }
            }
            if !anchor_certs.iter().any(|c| c.as_ref() == cert.as_ref()) {
                anchor_certs.push(cert.clone());
                anchors.push(anchor);
            }
        }
        let crls = Crls::load(crls, &anchor_certs).map_err(|e| ("crl", e))?;
        Ok(ClientVerifier {
            mode,
            anchors,
            anchor_certs,
            hints,
            crls,
            depth,
            algorithms,
        })
    }

    /// The `verify_client` mode.
    pub fn mode(&self) -> VerifyClient {
        self.mode
    }

    /// What to tell the application about a completed handshake's client chain. With
    /// `optional_no_ca` the handshake accepted anything, so the chain is checked again here
    /// (that mode is rare; the other modes only complete with a verified chain).
    pub fn status(&self, chain: Option<&[CertificateDer<'static>]>) -> VerifyStatus {
        let Some((leaf, intermediates)) = chain.and_then(|c| c.split_first()) else {
            return VerifyStatus::None;
        };
        if self.mode != VerifyClient::OptionalNoCa {
            return VerifyStatus::Success;
        }
        match self.check(leaf, intermediates, UnixTime::now()) {
            Ok(()) => VerifyStatus::Success,
            Err(failure) => VerifyStatus::Failed(failure.1.reason),
        }
    }

    /// Whether the CRLs now list `leaf` (a certificate that verified before: a resumed
    /// session's, a connection's open across a reload), as the refusal to log.
    pub(crate) fn revoked(&self, leaf: &[u8], intermediates: &[Vec<u8>]) -> Option<Refusal> {
        let failure = self.crls.revoked_leaf(leaf, intermediates)?;
        let peer = PeerCert::from_der(leaf);
        Some(Refusal {
            check: failure.check,
            reason: failure.reason,
            subject: peer.subject,
            issuer: peer.issuer,
            serial: peer.serial,
        })
    }

    fn check(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), Box<(rustls::Error, Refusal)>> {
        let result = self.webpki_check(leaf, intermediates, now);
        result.map_err(|(e, revocation)| {
            let refusal = self.explain(leaf, intermediates, now, &e, revocation);
            Box::new((to_rustls_error(e), refusal))
        })
    }

    /// webpki builds and verifies the path; `verify_path` adds OpenSSL's depth rule and our
    /// CRL check (see `revocation` for why not webpki's). A revocation failure comes back
    /// with its sentence.
    fn webpki_check(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), (webpki::Error, Option<Box<RevocationFailure>>)> {
        let cert = EndEntityCert::try_from(leaf).map_err(|e| (e, None))?;
        let depth = self.depth as usize;
        let revocation: RefCell<Option<RevocationFailure>> = RefCell::new(None);
        let path_check = |path: &webpki::VerifiedPath<'_>| {
            // OpenSSL's depth counts the leaf as 0: depth N allows N-1 intermediates.
            if path.intermediate_certificates().count() + 1 > depth {
                return Err(webpki::Error::MaximumPathDepthExceeded);
            }
            if self.crls.is_empty() {
                return Ok(());
            }
            self.crls.check_path(path, now).map_err(|failure| {
                let error = failure.error.clone();
                *revocation.borrow_mut() = Some(failure);
                error
            })
        };
        cert.verify_for_usage(
            self.algorithms.all,
            &self.anchors,
            intermediates,
            now,
            KeyUsage::client_auth(),
            None,
            Some(&path_check),
        )
        .map(|_| ())
        .map_err(|e| {
            let failure = revocation
                .into_inner()
                .filter(|f| std::mem::discriminant(&f.error) == std::mem::discriminant(&e))
                .map(Box::new);
            (e, failure)
        })
    }

    /// Turn webpki's terse error into a sentence: ask `mtls-pki`'s verifier (which words
    /// every failure for people), falling back on webpki's own error where they disagree.
    fn explain(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        error: &webpki::Error,
        revocation: Option<Box<RevocationFailure>>,
    ) -> Refusal {
        let (subject, issuer, serial) = crate::identity::names(leaf.as_ref());
        if let Some(failure) = revocation.map(|f| *f) {
            return Refusal {
                check: failure.check,
                reason: failure.reason,
                subject,
                issuer,
                serial,
            };
        }
        let at = OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let options = VerifyOptions {
            roots: self.anchor_certs.clone(),
            untrusted: intermediates
                .iter()
                .map(|c| c.clone().into_owned())
                .collect(),
            // Revocation was explained above; a CRL is never parsed again per failure.
            crls: Vec::new(),
            purpose: Some(Purpose::Client),
            name: None,
            at,
            max_depth: (self.depth as usize).saturating_sub(1),
        };
        let (check, reason) = match mtls_pki::verify::verify(leaf.as_ref(), &options) {
            Err(e) if same_kind(&e, error) => (e.check(), e.to_string()),
            _ => webpki_words(error, self.depth),
        };
        Refusal {
            check,
            reason,
            subject,
            issuer,
            serial,
        }
    }
}

/// One handshake's verifier: the block's policy, and a slot for this handshake's refusal
/// (see the module documentation for why it is per handshake).
#[derive(Debug)]
pub(crate) struct HandshakeVerifier {
    policy: Arc<ClientVerifier>,
    refusal: OnceLock<Refusal>,
}

impl HandshakeVerifier {
    /// A verifier for one handshake under `policy`.
    pub(crate) fn new(policy: Arc<ClientVerifier>) -> HandshakeVerifier {
        HandshakeVerifier {
            policy,
            refusal: OnceLock::new(),
        }
    }

    /// Why this handshake's client certificate was refused, if it was.
    pub(crate) fn refusal(&self) -> Option<Refusal> {
        self.refusal.get().cloned()
    }
}

impl ClientCertVerifier for HandshakeVerifier {
    fn offer_client_auth(&self) -> bool {
        self.policy.mode != VerifyClient::Off
    }

    fn client_auth_mandatory(&self) -> bool {
        self.policy.mode == VerifyClient::On
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.policy.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.policy.check(end_entity, intermediates, now) {
            Ok(()) => Ok(ClientCertVerified::assertion()),
            // Reported to the application as FAILED:reason by `status`.
            Err(_) if self.policy.mode == VerifyClient::OptionalNoCa => {
                Ok(ClientCertVerified::assertion())
            }
            Err(failure) => {
                let (error, refusal) = *failure;
                // rustls verifies a client certificate at most once per handshake, so
                // the slot is empty here.
                let _ = self.refusal.set(refusal);
                Err(error)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.policy.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.policy.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.policy.algorithms.supported_schemes()
    }
}

/// Whether the explanation from `mtls-pki` is about the same failure webpki found.
#[allow(deprecated)] // webpki still returns the old EKU variant in some paths
fn same_kind(words: &mtls_pki::verify::VerifyError, error: &webpki::Error) -> bool {
    use mtls_pki::verify::VerifyError as V;
    use webpki::Error as W;
    matches!(
        (words, error),
        (V::Expired { .. }, W::CertExpired { .. })
            | (V::NotYetValid { .. }, W::CertNotValidYet { .. })
            | (V::Revoked(_), W::CertRevoked)
            | (
                V::UnknownIssuer { .. } | V::BadSignature { .. },
                W::UnknownIssuer | W::InvalidSignatureForPublicKey
            )
            | (V::WrongPurpose { .. }, W::RequiredEkuNotFound)
            | (V::WrongPurpose { .. }, W::RequiredEkuNotFoundContext(_))
            | (V::ChainTooDeep { .. }, W::MaximumPathDepthExceeded)
            | (V::NoCrl { .. }, W::UnknownRevocationStatus)
            | (V::CrlExpired { .. }, W::CrlExpired { .. })
            | (V::Malformed { .. }, W::BadDer | W::BadDerTime)
            | (V::NotCa { .. }, W::CaUsedAsEndEntity | W::EndEntityUsedAsCa)
    )
}

/// Words for the failures `mtls-pki` could not explain the same way.
#[allow(deprecated)] // webpki still returns the old EKU variant in some paths
fn webpki_words(error: &webpki::Error, depth: u32) -> (&'static str, String) {
    use webpki::Error as W;
    match error {
        W::MaximumPathDepthExceeded => (
            "chain_too_deep",
            format!(
                "chain too deep: verify_depth {depth} allows {} intermediate certificate(s) between the client certificate and a trusted CA",
                depth.saturating_sub(1)
            ),
        ),
        W::UnknownRevocationStatus => (
            "crl_missing",
            "revocation status unknown: a CA in the chain has no CRL among the configured ones (fail closed; add its CRL to `crl`)".to_owned(),
        ),
        W::CertRevoked => ("revoked", "a certificate in the chain is revoked".to_owned()),
        W::CrlExpired { .. } => (
            "crl_expired",
            "a CRL for this chain has expired; publish a fresh one (mtls pki crl)".to_owned(),
        ),
        W::UnknownIssuer => (
            "unknown_issuer",
            "unknown issuer: no trusted CA issued this certificate".to_owned(),
        ),
        W::CertExpired { .. } => ("expired", "the certificate has expired".to_owned()),
        W::CertNotValidYet { .. } => ("not_yet_valid", "the certificate is not valid yet".to_owned()),
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => (
            "wrong_purpose",
            "wrong purpose: the certificate is not valid for TLS client authentication".to_owned(),
        ),
        W::CaUsedAsEndEntity => (
            "ca_as_leaf",
            "a CA certificate was presented as the client certificate".to_owned(),
        ),
        other => ("invalid", format!("certificate rejected: {other}")),
    }
}

/// rustls' own mapping from webpki errors (private in rustls), so that each failure gets
/// the alert rustls would send.
#[allow(deprecated)] // webpki still returns the old EKU variant in some paths
fn to_rustls_error(error: webpki::Error) -> rustls::Error {
    use webpki::Error as W;
    let cert = match error {
        W::BadDer | W::BadDerTime | W::TrailingData(_) => CertificateError::BadEncoding,
        W::CertNotValidYet { time, not_before } => {
            CertificateError::NotValidYetContext { time, not_before }
        }
        W::CertExpired { time, not_after } => CertificateError::ExpiredContext { time, not_after },
        W::InvalidCertValidity => CertificateError::Expired,
        W::UnknownIssuer | W::MaximumPathDepthExceeded => CertificateError::UnknownIssuer,
        W::CertRevoked => CertificateError::Revoked,
        W::UnknownRevocationStatus => CertificateError::UnknownRevocationStatus,
        W::CrlExpired { time, next_update } => {
            CertificateError::ExpiredRevocationListContext { time, next_update }
        }
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => {
            CertificateError::InvalidPurpose
        }
        other => CertificateError::Other(rustls::OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(cert)
}

//! The client-certificate verifier: nginx's `ssl_verify_client`, `ssl_client_certificate`,
//! `ssl_trusted_certificate`, `ssl_crl` and `ssl_verify_depth`, with reasons.
//!
//! Every decision is `mtls-verify`'s, the one verifier that `mtls pki verify`, `mtls get`
//! and the proxy also use, so the refusal's check name and sentence come with the decision
//! and cannot disagree with it. What this module adds is nginx's configuration:
//!
//! - two CA lists: `client_ca` is trusted *and* advertised in the CertificateRequest;
//!   `trusted_ca` is trusted but never advertised (nginx's `ssl_trusted_certificate`);
//! - `verify_depth` with OpenSSL's meaning (depth 1 = a leaf signed directly by a trusted CA),
//!   enforced during path building so a shorter path is still found;
//! - `optional_no_ca`: the handshake succeeds whatever the certificate, and the gateway
//!   reports `FAILED:reason` to the application (see [`ClientVerifier::status`]);
//! - CRLs checked for the whole chain and failing closed: a CA in the chain without a CRL
//!   makes the status unknown, which is a refusal (OpenSSL's `X509_V_FLAG_CRL_CHECK_ALL`);
//!   at load, every trusted CA must have its CRL and no CRL may have expired.
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

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use time::OffsetDateTime;

use mtls_verify::crl::Crls;
use mtls_verify::{Check, CrlScope, Failure, Policy, Purpose, Verifier};

use crate::identity::PeerCert;

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
    verifier: Verifier,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientVerifier {
    /// A verifier trusting `client_ca` (advertised) and `trusted_ca` (not advertised),
    /// checking `crls` (already read, see [`Crls::load`]) for the whole chain. The error is
    /// the setting to blame and a sentence.
    pub(crate) fn new(
        mode: VerifyClient,
        client_ca: &[CertificateDer<'static>],
        trusted_ca: &[CertificateDer<'static>],
        crls: Crls,
        depth: u32,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Result<ClientVerifier, (&'static str, String)> {
        let now = OffsetDateTime::now_utc();
        let mut anchors: Vec<CertificateDer<'static>> = Vec::new();
        let mut hints: Vec<DistinguishedName> = Vec::new();
        for (advertised, cert) in client_ca
            .iter()
            .map(|c| (true, c))
            .chain(trusted_ca.iter().map(|c| (false, c)))
        {
            let key = if advertised {
                "client_ca"
            } else {
                "trusted_ca"
            };
            let subject = mtls_verify::anchor_problem(cert.as_ref(), now).map_err(|e| (key, e))?;
            if advertised {
                let name = DistinguishedName::from(subject);
                // The same CA in two files must be advertised once (nginx-tests checks this).
                if !hints.iter().any(|h| h.as_ref() == name.as_ref()) {
                    hints.push(name);
                }
            }
            if !anchors.iter().any(|c| c.as_ref() == cert.as_ref()) {
                anchors.push(cert.clone());
            }
        }
        if !crls.is_empty() {
            crl_coverage(&crls, &anchors, now).map_err(|e| ("crl", e))?;
        }
        let policy = Policy {
            crl_scope: CrlScope::Chain,
            // OpenSSL's depth counts the leaf as 0: depth N allows N-1 intermediates.
            max_intermediates: Some((depth as usize).saturating_sub(1)),
            ..Policy::new(anchors, Some(Purpose::Client))
        };
        let verifier = Verifier::with_crls(policy, crls).map_err(|e| ("client_ca", e.sentence))?;
        Ok(ClientVerifier {
            mode,
            verifier,
            hints,
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
        let failure = self.verifier.revoked(leaf, intermediates)?;
        let peer = PeerCert::from_der(leaf);
        Some(Refusal {
            check: failure.check.name(),
            reason: failure.sentence,
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
        let at = OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        match self.verifier.check(leaf.as_ref(), intermediates, None, at) {
            Ok(()) => Ok(()),
            Err(failure) => {
                let (subject, issuer, serial) = crate::identity::names(leaf.as_ref());
                let error = to_rustls_error(&failure);
                let refusal = Refusal {
                    check: failure.check.name(),
                    reason: failure.sentence,
                    subject,
                    issuer,
                    serial,
                };
                Err(Box::new((error, refusal)))
            }
        }
    }
}

/// With CRLs set, revocation fails closed: a trusted CA without its CRL would have every
/// client certificate it issued refused (crl_missing), and an expired CRL every client
/// under it (crl_expired). Both are refused here, at load, where the old configuration
/// can keep serving.
fn crl_coverage(
    crls: &Crls,
    anchors: &[CertificateDer<'static>],
    now: OffsetDateTime,
) -> Result<(), String> {
    for ca in anchors {
        if !crls.covers(ca.as_ref(), now.unix_timestamp())? {
            let subject = PeerCert::from_der(ca.as_ref()).subject;
            let held: Vec<&str> = crls.issuers().collect();
            return Err(format!(
                "no CRL from {subject} (the crl files hold CRLs from: {}); with crl set, \
                 revocation fails closed, so every client certificate from {subject} would be \
                 refused (crl_missing): add its CRL",
                held.join("; ")
            ));
        }
    }
    if let Some((issuer, next)) = crls.expired(now.unix_timestamp()).first() {
        let date = OffsetDateTime::from_unix_timestamp(*next)
            .map(mtls_pki::db::human_time)
            .unwrap_or_default();
        return Err(format!(
            "the CRL from {issuer} expired on {date} (its nextUpdate): every client \
             certificate from {issuer} would be refused (crl_expired); publish a fresh one \
             (mtls pki crl)"
        ));
    }
    Ok(())
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

/// The rustls error for a refusal, so that the peer gets the alert rustls would send for
/// it (certificate_expired, certificate_revoked, unknown_ca, ...).
pub(crate) fn to_rustls_error(failure: &Failure) -> rustls::Error {
    let cert = match failure.check {
        Check::Malformed => CertificateError::BadEncoding,
        Check::Expired => CertificateError::Expired,
        Check::NotYetValid => CertificateError::NotValidYet,
        // A certificate that names a trusted CA which did not sign it was issued by a CA
        // we do not know: unknown_ca, not rustls' decrypt_error for BadSignature.
        Check::UnknownIssuer | Check::ChainTooDeep | Check::BadSignature => {
            CertificateError::UnknownIssuer
        }
        Check::Revoked => CertificateError::Revoked,
        Check::CrlMissing => CertificateError::UnknownRevocationStatus,
        Check::CrlExpired => CertificateError::ExpiredRevocationList,
        Check::WrongPurpose => CertificateError::InvalidPurpose,
        Check::NameMismatch => CertificateError::NotValidForName,
        _ => CertificateError::Other(rustls::OtherError(Arc::new(failure.clone()))),
    };
    rustls::Error::InvalidCertificate(cert)
}

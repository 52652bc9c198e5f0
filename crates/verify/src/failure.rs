//! The verdict of a refusal: which check failed, about which certificate, and one sentence.
//!
//! Check names are stable: they are the `check=` of the gateway's refusal log, the label of
//! `mtls_tls_refusals_total{check}`, the `check` of `mtls pki verify --json`, and what
//! `mtls get` prints. Add names, never rename them.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::X509Certificate;

/// A check that can fail. [`Check::name`] is the stable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "&'static str")]
#[non_exhaustive]
pub enum Check {
    /// A certificate or CRL does not parse, or breaks the DER/X.509 structure rules.
    Malformed,
    /// No trusted CA issued the chain.
    UnknownIssuer,
    /// A certificate's signature does not verify with its issuer's key.
    BadSignature,
    /// Past notAfter.
    Expired,
    /// Before notBefore.
    NotYetValid,
    /// An issuer is not a CA (no basicConstraints CA:TRUE).
    NotCa,
    /// A CA certificate was presented as the end-entity certificate.
    CaAsLeaf,
    /// An issuer's pathLenConstraint is exceeded.
    PathLength,
    /// A key usage forbids what the certificate is used for (keyCertSign, cRLSign,
    /// digitalSignature).
    KeyUsage,
    /// Extended key usage does not allow the purpose (TLS server or client).
    WrongPurpose,
    /// The end-entity certificate is not valid for the name asked for.
    NameMismatch,
    /// A name of a certificate is outside its issuers' name constraints.
    NameConstraints,
    /// More intermediates than `verify_depth` allows.
    ChainTooDeep,
    /// An RSA key under 2048 bits, a P-192 or other weak curve, a DSA key.
    WeakKey,
    /// A signature made with SHA-1 or MD5.
    WeakSignature,
    /// A signature algorithm or key type this verifier does not support.
    UnsupportedAlgorithm,
    /// A critical extension this verifier does not understand.
    CriticalExtension,
    /// The same extension twice in one certificate.
    DuplicateExtension,
    /// Critical policy constraints, policy mappings or inhibitAnyPolicy (not supported).
    UnsupportedPolicy,
    /// Listed in a CRL.
    Revoked,
    /// CRLs are checked, and a certificate's issuer has none among the configured ones.
    CrlMissing,
    /// A CRL's nextUpdate has passed.
    CrlExpired,
    /// A CRL's signature does not verify with its issuer's key.
    CrlSignature,
    /// A CRL this verifier cannot use (indirect, delta, unknown critical extension, its
    /// issuer lacks cRLSign).
    CrlUnsupported,
    /// Path building or constraint checking gave up: too many candidates, signatures or
    /// comparisons (a pathological chain).
    TooComplex,
}

impl Check {
    /// The stable name used in logs, metrics and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Check::Malformed => "malformed",
            Check::UnknownIssuer => "unknown_issuer",
            Check::BadSignature => "bad_signature",
            Check::Expired => "expired",
            Check::NotYetValid => "not_yet_valid",
            Check::NotCa => "not_ca",
            Check::CaAsLeaf => "ca_as_leaf",
            Check::PathLength => "path_length",
            Check::KeyUsage => "key_usage",
            Check::WrongPurpose => "wrong_purpose",
            Check::NameMismatch => "name_mismatch",
            Check::NameConstraints => "name_constraints",
            Check::ChainTooDeep => "chain_too_deep",
            Check::WeakKey => "weak_key",
            Check::WeakSignature => "weak_signature",
            Check::UnsupportedAlgorithm => "unsupported_algorithm",
            Check::CriticalExtension => "critical_extension",
            Check::DuplicateExtension => "duplicate_extension",
            Check::UnsupportedPolicy => "unsupported_policy",
            Check::Revoked => "revoked",
            Check::CrlMissing => "crl_missing",
            Check::CrlExpired => "crl_expired",
            Check::CrlSignature => "crl_signature",
            Check::CrlUnsupported => "crl_unsupported",
            Check::TooComplex => "too_complex",
        }
    }
}

impl From<Check> for &'static str {
    fn from(check: Check) -> &'static str {
        check.name()
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One certificate of a chain, as people and JSON see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// 0 for the end-entity certificate, counting up towards the trust anchor.
    pub position: usize,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial, upper-case hex.
    pub serial: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whether this certificate is one of the trust anchors.
    pub trusted: bool,
}

impl Link {
    pub(crate) fn of(cert: &X509Certificate<'_>, position: usize, trusted: bool) -> Link {
        Link {
            position,
            subject: mtls_pki::dn::display(cert.subject()),
            issuer: mtls_pki::dn::display(cert.issuer()),
            serial: serial_hex(cert.raw_serial()),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            trusted,
        }
    }

    /// "the client certificate", "intermediate #1", "the trust anchor".
    pub fn role(&self) -> String {
        match (self.position, self.trusted) {
            (_, true) => "trusted CA".to_owned(),
            (0, false) => "end-entity certificate".to_owned(),
            (n, false) => format!("intermediate #{n}"),
        }
    }
}

/// Why a certificate was refused: the decision and its explanation in one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The check that failed.
    pub check: Check,
    /// The certificate the failure is about, when it is about one.
    pub about: Option<Link>,
    /// One sentence a person can act on.
    pub sentence: String,
    /// The chain that was being validated when the check failed (end entity first),
    /// possibly partial. Empty when no chain was built.
    pub chain: Vec<Link>,
}

impl Failure {
    /// A failure with `sentence`, whose control characters (which a peer can put in a
    /// certificate's names and a CRL file in its bytes) are escaped, so that printing it
    /// to a terminal or a log cannot move the cursor or forge a line.
    pub(crate) fn new(check: Check, sentence: impl Into<String>) -> Failure {
        let sentence = sentence.into();
        let sentence = if sentence.chars().any(needs_escape) {
            sentence
                .chars()
                .map(|c| {
                    if needs_escape(c) {
                        c.escape_unicode().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        } else {
            sentence
        };
        Failure {
            check,
            about: None,
            sentence,
            chain: Vec::new(),
        }
    }

    pub(crate) fn about(mut self, link: Link) -> Failure {
        self.about = Some(link);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sentence)
    }
}

impl std::error::Error for Failure {}

pub(crate) use mtls_pki::names::serial_hex;

/// Control characters and the Unicode bidirectional overrides, which reorder what a
/// terminal shows.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_a_peer_are_escaped() {
        let failure = Failure::new(
            Check::NameMismatch,
            "asked for a, the certificate has [DNS:\u{b}\u{1}x\nforged line, \u{202e}txt.exe]",
        );
        assert!(
            !failure.sentence.chars().any(needs_escape),
            "{}",
            failure.sentence
        );
        assert!(failure.sentence.contains("\\u{b}\\u{1}x\\u{a}forged line"));
        assert!(failure.sentence.contains("\\u{202e}txt.exe"));
    }
}

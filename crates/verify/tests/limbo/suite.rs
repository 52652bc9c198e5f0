//! x509-limbo's testcases and what each one asks of a [`Verifier`].
//!
//! Shared by two test crates: `crates/verify/tests/limbo.rs` (the library, every case) and
//! the top-level `tests/conformance.rs` (`mtls pki verify`, a sample), so both read a case
//! the same way. Neither decompresses here: the crates have different dependencies.
//!
//! A case is either expressed as a [`Run`] (a [`Policy`] and the arguments of
//! [`Verifier::verify`]) or refused by [`Case::run`] with the reason it cannot be, so no case
//! is ever skipped silently.

// Each of the two crates uses its own part of this module.
#![allow(dead_code)]

use std::net::IpAddr;

use mtls_verify::budget::Limits;
use mtls_verify::{CrlScope, PeerName, Policy, Purpose, Verifier};
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `limbo.json`: the fields we read (the rest, e.g. `version`, is ignored).
#[derive(Debug, Deserialize)]
pub struct Suite {
    pub testcases: Vec<Case>,
}

/// One testcase, as in limbo's `models.py`.
#[derive(Debug, Deserialize)]
pub struct Case {
    pub id: String,
    #[serde(default)]
    pub features: Vec<String>,
    pub validation_kind: Kind,
    pub trusted_certs: Vec<String>,
    pub untrusted_intermediates: Vec<String>,
    pub peer_certificate: String,
    pub validation_time: Option<String>,
    pub signature_algorithms: Vec<String>,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub expected_result: Expected,
    pub expected_peer_name: Option<Name>,
    pub expected_peer_names: Vec<Name>,
    pub max_chain_depth: Option<usize>,
    #[serde(default)]
    pub crls: Vec<String>,
    /// Cases that expect the opposite on the same input (RFC 5280 against the web PKI).
    #[serde(default)]
    pub conflicts_with: Vec<String>,
}

/// Which side validates: SERVER means a client checking a server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    Server,
    Client,
}

/// What limbo expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Expected {
    Success,
    Failure,
}

/// A peer name: `kind` is DNS, IP or RFC822.
#[derive(Debug, Clone, Deserialize)]
pub struct Name {
    pub kind: String,
    pub value: String,
}

/// A case as our inputs: DER everywhere, the policy's choices made.
#[derive(Debug, Clone)]
pub struct Run {
    pub anchors: Vec<Vec<u8>>,
    pub leaf: Vec<u8>,
    pub intermediates: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
    pub purpose: Purpose,
    /// Every name must match; none means no name check.
    pub names: Vec<PeerName>,
    /// `None`: verify now (limbo's certificates without a time are valid 1970..2970).
    pub at: Option<OffsetDateTime>,
    pub max_intermediates: Option<usize>,
}

/// The outcome of one verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// The stable check name and the sentence.
    Refused {
        check: String,
        sentence: String,
    },
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        matches!(self, Verdict::Accepted)
    }

    /// `OK`, or `check: sentence`.
    pub fn describe(&self) -> String {
        match self {
            Verdict::Accepted => "OK".to_owned(),
            Verdict::Refused { check, sentence } => format!("{check}: {sentence}"),
        }
    }
}

impl Case {
    /// The inputs and policy this case asks for, or why our API cannot express it.
    pub fn run(&self) -> Result<Run, String> {
        if !self.signature_algorithms.is_empty() {
            return Err(format!(
                "signature_algorithms constraint ({}): Policy has no algorithm list",
                self.signature_algorithms.join(", ")
            ));
        }
        if !self.key_usage.is_empty() {
            return Err(format!(
                "key_usage constraint ({}): Policy has no key-usage requirement",
                self.key_usage.join(", ")
            ));
        }
        let purpose = match self.extended_key_usage.as_slice() {
            [] => match self.validation_kind {
                Kind::Server => Purpose::Server,
                Kind::Client => Purpose::Client,
            },
            [one] if one == "serverAuth" => Purpose::Server,
            [one] if one == "clientAuth" => Purpose::Client,
            other => {
                return Err(format!(
                    "extended_key_usage ({}): Policy has one purpose, serverAuth or clientAuth",
                    other.join(", ")
                ));
            }
        };
        let mut names = Vec::new();
        for name in self
            .expected_peer_name
            .iter()
            .chain(&self.expected_peer_names)
        {
            names.push(peer_name(name)?);
        }
        let at = match &self.validation_time {
            None => None,
            Some(t) => Some(
                OffsetDateTime::parse(t, &Rfc3339)
                    .map_err(|e| format!("validation_time {t:?} does not parse: {e}"))?,
            ),
        };
        Ok(Run {
            anchors: ders(&self.trusted_certs)?,
            leaf: der(&self.peer_certificate)?,
            intermediates: ders(&self.untrusted_intermediates)?,
            crls: ders(&self.crls)?,
            purpose,
            names,
            at,
            // limbo's max_chain_depth counts intermediates, as OpenSSL's verify depth and
            // pyca's max_chain_depth do (a chain root -> ICA -> leaf has depth 1).
            max_intermediates: self.max_chain_depth,
        })
    }
}

impl Run {
    /// The policy of this case. CRLs are checked for the whole chain and a missing one
    /// refuses, as limbo's OpenSSL harness (`X509_V_FLAG_CRL_CHECK_ALL`) and rustls-webpki
    /// harness (`RevocationCheckDepth::Chain`, `UnknownStatusPolicy::Deny`) do.
    pub fn policy(&self) -> Policy {
        Policy {
            anchors: self
                .anchors
                .iter()
                .map(|der| CertificateDer::from(der.clone()))
                .collect(),
            crls: self.crls.clone(),
            crl_scope: CrlScope::Chain,
            purpose: Some(self.purpose),
            max_intermediates: self.max_intermediates,
            cn_fallback: false,
            limits: Limits::default(),
        }
    }

    /// Verify with `policy` (normally [`Run::policy`]): a verifier that cannot be built is a
    /// refusal too, and with several names each must verify.
    pub fn verify_with(&self, policy: Policy, now: OffsetDateTime) -> Verdict {
        let verifier = match Verifier::new(policy) {
            Ok(v) => v,
            Err(failure) => {
                return Verdict::Refused {
                    check: failure.check.name().to_owned(),
                    sentence: failure.sentence,
                };
            }
        };
        let at = self.at.unwrap_or(now);
        let names: Vec<Option<&PeerName>> = if self.names.is_empty() {
            vec![None]
        } else {
            self.names.iter().map(Some).collect()
        };
        for name in names {
            if let Err(failure) = verifier.verify(&self.leaf, &self.intermediates, name, at) {
                return Verdict::Refused {
                    check: failure.check.name().to_owned(),
                    sentence: failure.sentence,
                };
            }
        }
        Verdict::Accepted
    }

    /// [`Run::verify_with`] the case's own policy.
    pub fn verify(&self, now: OffsetDateTime) -> Verdict {
        self.verify_with(self.policy(), now)
    }
}

fn peer_name(name: &Name) -> Result<PeerName, String> {
    match name.kind.as_str() {
        // Parsed as a command line would parse `--name`, but always as a DNS name.
        "DNS" => Ok(match name.value.parse::<PeerName>() {
            Ok(dns @ PeerName::Dns(_)) => dns,
            _ => PeerName::Dns(name.value.clone()),
        }),
        "IP" => name
            .value
            .parse::<IpAddr>()
            .map(PeerName::Ip)
            .map_err(|e| format!("IP peer name {:?} does not parse: {e}", name.value)),
        "RFC822" => Ok(PeerName::Email(name.value.clone())),
        other => Err(format!("peer name kind {other}: not DNS, IP or RFC822")),
    }
}

/// The DER of one PEM certificate or CRL. limbo's PEM is always well formed; a certificate
/// that does not parse as X.509 is still passed on (that is the point of some cases).
fn der(pem: &str) -> Result<Vec<u8>, String> {
    let mut sections = mtls_pki::pem::sections(pem.as_bytes(), "limbo PEM")
        .map_err(|e| format!("PEM does not decode: {e}"))?;
    match sections.len() {
        1 => Ok(sections.remove(0).der),
        n => Err(format!("{n} PEM sections where one was expected")),
    }
}

fn ders(pems: &[String]) -> Result<Vec<Vec<u8>>, String> {
    pems.iter().map(|p| der(p)).collect()
}

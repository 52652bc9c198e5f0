//! `mtls pki verify`: is this certificate good, and if not, exactly why?
//!
//! `openssl verify` answers "error 20 at 0 depth lookup: unable to get local issuer
//! certificate"; we answer with the certificate, the date, the names involved and what to
//! do. The checks run in a fixed order, and the first failure is reported:
//!
//! 1. build the chain from the leaf to a trusted CA (unknown issuer, bad signature, loops,
//!    chain too deep);
//! 2. validity period of every certificate in the chain (expired, not yet valid);
//! 3. every issuer may issue: CA:TRUE, keyCertSign, pathLenConstraint;
//! 4. purpose (extended key usage) of the leaf and of the intermediates;
//! 5. host name or IP address of the leaf;
//! 6. revocation against the given CRLs (like `openssl verify -crl_check`: the leaf's
//!    issuer must have published one; intermediates are checked when a CRL from their
//!    issuer is present).
//!
//! The gateway's client verifier is rustls-webpki; this module is the explaining
//! counterpart that the CLI and, later, refusal diagnostics use. `VerifyError::check` gives
//! a short stable name for metrics.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use rustls_pki_types::CertificateDer;
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::db::{Reason, human_time};
use crate::dn;
use crate::show::{relative, subject_alt_names};

/// What the certificate must be good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// TLS server authentication (id-kp-serverAuth).
    Server,
    /// TLS client authentication (id-kp-clientAuth).
    Client,
}

impl FromStr for Purpose {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "server" => Ok(Purpose::Server),
            "client" => Ok(Purpose::Client),
            _ => Err(format!("unknown purpose {s:?}; expected server or client")),
        }
    }
}

/// Inputs to [`verify`].
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Trust anchors.
    pub roots: Vec<CertificateDer<'static>>,
    /// Intermediates that may be used to build the chain but are not trusted themselves.
    pub untrusted: Vec<CertificateDer<'static>>,
    /// DER CRLs. When non-empty, the leaf's issuer must have one here.
    pub crls: Vec<Vec<u8>>,
    /// Required extended key usage.
    pub purpose: Option<Purpose>,
    /// Host name or IP address the leaf must be valid for.
    pub name: Option<String>,
    /// The time to verify at.
    pub at: OffsetDateTime,
    /// Most intermediates allowed between the leaf and the trust anchor.
    pub max_depth: usize,
}

/// One certificate of a verified chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainLink {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial, upper-case hex.
    pub serial: String,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Leaf first, trust anchor last.
    pub chain: Vec<ChainLink>,
    /// How many CRLs were consulted.
    pub checked_crls: usize,
}

/// Why a certificate is not valid. Each message is one sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A certificate or CRL could not be parsed.
    #[error("{what} does not parse: {detail}")]
    Malformed {
        /// Which input.
        what: String,
        /// The parser's complaint.
        detail: String,
    },
    /// No trusted CA issued the last certificate of the chain.
    #[error(
        "unknown issuer: the chain ends at {subject} (issued by {issuer}), which is not among the trusted CAs [{trusted}]"
    )]
    UnknownIssuer {
        /// The last certificate reached.
        subject: String,
        /// The issuer it names.
        issuer: String,
        /// Trusted CA subjects, comma-separated.
        trusted: String,
    },
    /// A certificate with the issuer's name exists, but its key did not sign this one.
    #[error(
        "signature of {subject} does not verify with the key of {issuer} (it was not signed by this CA)"
    )]
    BadSignature {
        /// The certificate whose signature failed.
        subject: String,
        /// The would-be issuer.
        issuer: String,
    },
    /// Past notAfter.
    #[error("certificate {subject} (serial {serial}) expired on {date} ({ago})")]
    Expired {
        /// Subject DN.
        subject: String,
        /// Serial hex.
        serial: String,
        /// notAfter, human form.
        date: String,
        /// "3 days ago".
        ago: String,
    },
    /// Before notBefore.
    #[error("certificate {subject} (serial {serial}) is not valid until {date} ({when})")]
    NotYetValid {
        /// Subject DN.
        subject: String,
        /// Serial hex.
        serial: String,
        /// notBefore, human form.
        date: String,
        /// "in 2 days".
        when: String,
    },
    /// An issuer in the chain is not allowed to issue certificates.
    #[error("{subject} cannot sign certificates: {why}")]
    NotCa {
        /// The issuer's subject.
        subject: String,
        /// Which constraint it breaks.
        why: String,
    },
    /// Extended key usage does not allow the requested purpose.
    #[error(
        "wrong purpose: asked for a {wanted} certificate, {subject} has extended key usage [{has}]"
    )]
    WrongPurpose {
        /// The certificate.
        subject: String,
        /// "server" or "client".
        wanted: &'static str,
        /// Its EKUs.
        has: String,
    },
    /// The leaf is not valid for the name asked for.
    #[error("name mismatch: asked for {asked}, the certificate has [{has}]")]
    NameMismatch {
        /// The name asked for.
        asked: String,
        /// The names it has.
        has: String,
    },
    /// More intermediates than allowed.
    #[error("chain too deep: {found} intermediate certificates, more than the allowed {allowed}")]
    ChainTooDeep {
        /// Intermediates found.
        found: usize,
        /// The limit.
        allowed: usize,
    },
    /// Listed in a CRL.
    #[error("{0}")]
    Revoked(Box<RevokedDetails>),
    /// A CRL's nextUpdate has passed.
    #[error("the CRL from {issuer} expired on {date}; publish a fresh one (mtls pki crl)")]
    CrlExpired {
        /// The CRL's issuer.
        issuer: String,
        /// nextUpdate, human form.
        date: String,
    },
    /// A CRL's signature does not verify with its issuer's key.
    #[error("the CRL from {issuer} has a bad signature: it was altered or signed by another key")]
    CrlSignature {
        /// The CRL's issuer.
        issuer: String,
    },
    /// CRLs were given, but none from the leaf's issuer.
    #[error("no CRL from {issuer} was given, so the revocation of {subject} cannot be checked")]
    NoCrl {
        /// The certificate.
        subject: String,
        /// Its issuer.
        issuer: String,
    },
}

/// Which certificate a CRL revoked, when, why, and which CRL said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedDetails {
    /// Subject DN.
    pub subject: String,
    /// Serial hex.
    pub serial: String,
    /// Revocation date, human form.
    pub date: String,
    /// Reason name.
    pub reason: String,
    /// The CRL's issuer.
    pub crl_issuer: String,
    /// The CRL number, if the CRL has one.
    pub crl_number: Option<String>,
}

impl fmt::Display for RevokedDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certificate {} (serial {}) was revoked on {} for reason {} (CRL of {}",
            self.subject, self.serial, self.date, self.reason, self.crl_issuer
        )?;
        if let Some(n) = &self.crl_number {
            write!(f, ", number {n}")?;
        }
        f.write_str(")")
    }
}

impl VerifyError {
    /// A short, stable name for the failed check (for metrics and JSON).
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::Malformed { .. } => "malformed",
            VerifyError::UnknownIssuer { .. } => "unknown_issuer",
            VerifyError::BadSignature { .. } => "bad_signature",
            VerifyError::Expired { .. } => "expired",
            VerifyError::NotYetValid { .. } => "not_yet_valid",
            VerifyError::NotCa { .. } => "not_ca",
            VerifyError::WrongPurpose { .. } => "wrong_purpose",
            VerifyError::NameMismatch { .. } => "name_mismatch",
            VerifyError::ChainTooDeep { .. } => "chain_too_deep",
            VerifyError::Revoked(_) => "revoked",
            VerifyError::CrlExpired { .. } => "crl_expired",
            VerifyError::CrlSignature { .. } => "crl_signature",
            VerifyError::NoCrl { .. } => "no_crl",
        }
    }
}

/// Verify `leaf` (DER) against `options`.
pub fn verify(leaf: &[u8], options: &VerifyOptions) -> Result<Verified, VerifyError> {
    let leaf = parse(leaf, "the certificate")?;
    let roots = parse_all(&options.roots, "trusted CA")?;
    let untrusted = parse_all(&options.untrusted, "untrusted certificate")?;

    let chain = build_chain(leaf, &roots, &untrusted, options.max_depth)?;
    for cert in &chain {
        check_validity(cert, options.at)?;
    }
    check_issuers(&chain)?;
    if let Some(purpose) = options.purpose {
        check_purpose(&chain, purpose)?;
    }
    if let Some(name) = &options.name {
        check_name(&chain[0], name)?;
    }
    let checked_crls = check_revocation(&chain, &options.crls, options.at)?;
    Ok(Verified {
        chain: chain
            .iter()
            .map(|c| ChainLink {
                subject: dn::display(c.subject()),
                issuer: dn::display(c.issuer()),
                serial: serial(c),
                not_after: c.validity().not_after.to_datetime(),
            })
            .collect(),
        checked_crls,
    })
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.chain.iter().map(|l| l.subject.as_str()).collect();
        write!(f, "OK: {}", names.join(" <- "))?;
        if self.checked_crls > 0 {
            write!(f, " (not revoked: {} CRL(s) checked)", self.checked_crls)?;
        }
        Ok(())
    }
}

fn parse<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>, VerifyError> {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => Ok(cert),
        Err(e) => Err(VerifyError::Malformed {
            what: what.to_owned(),
            detail: e.to_string(),
        }),
    }
}

fn parse_all<'a>(
    ders: &'a [CertificateDer<'static>],
    what: &str,
) -> Result<Vec<X509Certificate<'a>>, VerifyError> {
    ders.iter()
        .enumerate()
        .map(|(i, d)| parse(d, &format!("{what} #{}", i + 1)))
        .collect()
}

fn build_chain<'a>(
    leaf: X509Certificate<'a>,
    roots: &[X509Certificate<'a>],
    untrusted: &[X509Certificate<'a>],
    max_depth: usize,
) -> Result<Vec<X509Certificate<'a>>, VerifyError> {
    let mut chain = vec![leaf];
    loop {
        let current = &chain[chain.len() - 1];
        if roots.iter().any(|r| r.as_raw() == current.as_raw()) {
            return Ok(chain);
        }
        let named: Vec<(&X509Certificate<'a>, bool)> = roots
            .iter()
            .map(|c| (c, true))
            .chain(untrusted.iter().map(|c| (c, false)))
            .filter(|(c, _)| {
                same_name(c, current) && !chain.iter().any(|x| x.as_raw() == c.as_raw())
            })
            .collect();
        if named.is_empty() {
            let trusted: Vec<String> = roots.iter().map(|r| dn::display(r.subject())).collect();
            return Err(VerifyError::UnknownIssuer {
                subject: dn::display(current.subject()),
                issuer: dn::display(current.issuer()),
                trusted: trusted.join(", "),
            });
        }
        let Some((issuer, trusted)) = named
            .iter()
            .find(|(c, _)| current.verify_signature(Some(c.public_key())).is_ok())
        else {
            return Err(VerifyError::BadSignature {
                subject: dn::display(current.subject()),
                issuer: dn::display(current.issuer()),
            });
        };
        let intermediates = chain.len() - 1 + usize::from(!trusted);
        if intermediates > max_depth {
            return Err(VerifyError::ChainTooDeep {
                found: intermediates,
                allowed: max_depth,
            });
        }
        chain.push((*issuer).clone());
        if *trusted {
            return Ok(chain);
        }
    }
}

/// The issuer name of `child` equals the subject of `candidate`: byte for byte, or as text
/// when one side used another string type for the same name.
fn same_name(candidate: &X509Certificate<'_>, child: &X509Certificate<'_>) -> bool {
    candidate.subject().as_raw() == child.issuer().as_raw()
        || dn::display(candidate.subject()) == dn::display(child.issuer())
}

fn check_validity(cert: &X509Certificate<'_>, at: OffsetDateTime) -> Result<(), VerifyError> {
    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    if at < not_before {
        return Err(VerifyError::NotYetValid {
            subject: dn::display(cert.subject()),
            serial: serial(cert),
            date: human_time(not_before),
            when: relative(not_before, at),
        });
    }
    if at > not_after {
        return Err(VerifyError::Expired {
            subject: dn::display(cert.subject()),
            serial: serial(cert),
            date: human_time(not_after),
            ago: relative(not_after, at),
        });
    }
    Ok(())
}

fn check_issuers(chain: &[X509Certificate<'_>]) -> Result<(), VerifyError> {
    for (depth, issuer) in chain.iter().enumerate().skip(1) {
        let not_ca = |why: String| VerifyError::NotCa {
            subject: dn::display(issuer.subject()),
            why,
        };
        let constraints = issuer
            .basic_constraints()
            .map_err(|e| not_ca(format!("its basicConstraints do not parse ({e})")))?;
        match constraints {
            Some(bc) if bc.value.ca => {
                // Intermediates below this issuer, not counting the leaf.
                let below = depth - 1;
                if let Some(limit) = bc.value.path_len_constraint
                    && below > limit as usize
                {
                    return Err(not_ca(format!(
                        "its pathLenConstraint is {limit}, but {below} intermediate CA(s) sit below it"
                    )));
                }
            }
            // X.509 v1 roots have no extensions at all; they can only be trust anchors.
            None if issuer.version().0 == 0 && depth == chain.len() - 1 => {}
            _ => {
                return Err(not_ca(
                    "it is not a CA (basicConstraints CA:TRUE is missing)".into(),
                ));
            }
        }
        if let Ok(Some(ku)) = issuer.key_usage()
            && !ku.value.key_cert_sign()
        {
            return Err(not_ca("its key usage lacks keyCertSign".into()));
        }
    }
    Ok(())
}

fn check_purpose(chain: &[X509Certificate<'_>], purpose: Purpose) -> Result<(), VerifyError> {
    // The trust anchor's EKU is not checked, as in webpki and OpenSSL's default.
    let last = chain.len().saturating_sub(1).max(1);
    for (i, cert) in chain[..last].iter().enumerate() {
        let Ok(Some(eku)) = cert.extended_key_usage() else {
            continue; // No EKU: good for any purpose.
        };
        let eku = &eku.value;
        // anyExtendedKeyUsage alone does not make a TLS leaf: OpenSSL's sslserver and
        // sslclient purposes and webpki refuse it. On an intermediate it passes.
        let ok = (eku.any && i > 0)
            || match purpose {
                Purpose::Server => eku.server_auth,
                Purpose::Client => eku.client_auth,
            };
        if !ok {
            let has = crate::show::describe_certificate(cert.as_raw(), OffsetDateTime::now_utc())
                .map(|i| i.extended_key_usage.join(", "))
                .unwrap_or_default();
            return Err(VerifyError::WrongPurpose {
                subject: dn::display(cert.subject()),
                wanted: match purpose {
                    Purpose::Server => "server",
                    Purpose::Client => "client",
                },
                has,
            });
        }
    }
    Ok(())
}

fn check_name(leaf: &X509Certificate<'_>, asked: &str) -> Result<(), VerifyError> {
    let asked_ip = asked
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let sans = match leaf.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.clone(),
        _ => Vec::new(),
    };
    let matched = if sans.is_empty() {
        // No SANs at all: fall back to the common name, as OpenSSL and most tools still
        // do for old certificates (webpki does not; the gateway will say so).
        asked_ip.is_none()
            && leaf
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .any(|cn| dns_matches(cn, asked))
    } else {
        sans.iter().any(|name| match (name, asked_ip) {
            (GeneralName::IPAddress(bytes), Some(ip)) => match ip {
                IpAddr::V4(v4) => *bytes == v4.octets(),
                IpAddr::V6(v6) => *bytes == v6.octets(),
            },
            (GeneralName::DNSName(pattern), None) => dns_matches(pattern, asked),
            _ => false,
        })
    };
    if matched {
        return Ok(());
    }
    let mut has = subject_alt_names(leaf);
    if has.is_empty() {
        has = leaf
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(|cn| format!("CN={}", dn::escape_value(cn)))
            .collect();
    }
    Err(VerifyError::NameMismatch {
        asked: asked.to_owned(),
        has: has.join(", "),
    })
}

/// RFC 6125 matching: case-insensitive, a wildcard only as the whole leftmost label and
/// only for exactly one label (`*.example.com` matches `a.example.com`, not
/// `example.com` or `a.b.example.com`).
pub fn dns_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => match name.split_once('.') {
            Some((first, rest)) => {
                !first.is_empty() && first != "*" && rest == suffix && suffix.contains('.')
            }
            None => false,
        },
        None => pattern == name,
    }
}

fn check_revocation(
    chain: &[X509Certificate<'_>],
    crls: &[Vec<u8>],
    at: OffsetDateTime,
) -> Result<usize, VerifyError> {
    if crls.is_empty() {
        return Ok(0);
    }
    let parsed = crls
        .iter()
        .enumerate()
        .map(|(i, der)| {
            CertificateRevocationList::from_der(der)
                .map(|(_, crl)| crl)
                .map_err(|e| VerifyError::Malformed {
                    what: format!("CRL #{}", i + 1),
                    detail: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut checked = 0;
    // Every certificate but the trust anchor, whose status no CRL in its own chain decides.
    for (i, cert) in chain.iter().enumerate().take(chain.len().saturating_sub(1)) {
        let issuer = &chain[i + 1];
        let relevant: Vec<&CertificateRevocationList<'_>> = parsed
            .iter()
            .filter(|crl| {
                crl.issuer().as_raw() == cert.issuer().as_raw()
                    || dn::display(crl.issuer()) == dn::display(cert.issuer())
            })
            .collect();
        if relevant.is_empty() {
            if i == 0 {
                return Err(VerifyError::NoCrl {
                    subject: dn::display(cert.subject()),
                    issuer: dn::display(cert.issuer()),
                });
            }
            continue;
        }
        for crl in relevant {
            let crl_issuer = dn::display(crl.issuer());
            crl.verify_signature(issuer.public_key())
                .map_err(|_| VerifyError::CrlSignature {
                    issuer: crl_issuer.clone(),
                })?;
            if let Some(next) = crl.next_update()
                && next.to_datetime() < at
            {
                return Err(VerifyError::CrlExpired {
                    issuer: crl_issuer,
                    date: human_time(next.to_datetime()),
                });
            }
            checked += 1;
            let wanted = trim_zeros(cert.raw_serial());
            if let Some(entry) = crl
                .iter_revoked_certificates()
                .find(|r| trim_zeros(r.raw_serial()) == wanted)
            {
                let revoked_at = entry.revocation_date.to_datetime();
                if revoked_at > at {
                    continue; // Revoked after the moment we verify at.
                }
                let reason = entry
                    .reason_code()
                    .map(|(_, code)| {
                        Reason::from_code(code.0)
                            .map_or_else(|| code.0.to_string(), |r| r.to_string())
                    })
                    .unwrap_or_else(|| "unspecified".into());
                return Err(VerifyError::Revoked(Box::new(RevokedDetails {
                    subject: dn::display(cert.subject()),
                    serial: serial(cert),
                    date: human_time(revoked_at),
                    reason,
                    crl_issuer,
                    crl_number: crl.crl_number().map(ToString::to_string),
                })));
            }
        }
    }
    Ok(checked)
}

/// How much a [`Finding`] matters: an error stops `mtls check` and `mtls serve`; a warning
/// is printed and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Every client will refuse the certificate.
    Error,
    /// Some clients will refuse it, or all will soon.
    Warning,
}

/// One thing wrong with a certificate for the job it is configured for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// A short stable name, as in [`VerifyError::check`].
    pub check: &'static str,
    /// One sentence: the certificate, what is wrong, what clients will do.
    pub message: String,
}

/// A server certificate is about to be warned of when it has fewer days left than this.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// What clients will think of `leaf` as the certificate of a server called `names`
/// (`server_name` values: `api.example.com` or `*.example.com`), at `at`: refused for
/// the wrong extended key usage (anyExtendedKeyUsage alone included), a keyUsage without
/// any TLS server usage (OpenSSL's rule), basicConstraints CA:TRUE (rustls's rule) or
/// outside its validity (errors), expiring within
/// [`EXPIRY_WARNING_DAYS`], without subjectAltName, or not naming a server name (warnings).
/// The chain is not validated here: the server does not hold the clients' trust anchors.
pub fn server_fitness(leaf: &[u8], names: &[String], at: OffsetDateTime) -> Vec<Finding> {
    let Ok(cert) = parse(leaf, "server certificate") else {
        return Vec::new(); // Loading the certificate has already said why.
    };
    let mut findings = Vec::new();
    let mut refuse = |error: VerifyError, then: &str| {
        findings.push(Finding {
            severity: Severity::Error,
            check: error.check(),
            message: format!("{error}: {then}"),
        });
    };
    if let Err(e) = check_purpose(std::slice::from_ref(&cert), Purpose::Server) {
        refuse(
            e,
            "TLS clients refuse it as a server's certificate; make one with `mtls pki issue \
             server` or `mtls pki sign --profile server`",
        );
    }
    if let Err(e) = check_validity(&cert, at) {
        refuse(e, "every client refuses it");
    }
    let subject = dn::display(cert.subject());
    let described = crate::show::describe_certificate(leaf, at).ok();
    if let Ok(Some(usage)) = cert.key_usage() {
        let usage = usage.value;
        // OpenSSL's sslserver purpose: any one of the three TLS key usages will do. webpki
        // does not look at keyUsage, so only OpenSSL clients refuse; that is most of them.
        if !(usage.digital_signature() || usage.key_encipherment() || usage.key_agreement()) {
            findings.push(Finding {
                severity: Severity::Error,
                check: "wrong_key_usage",
                message: format!(
                    "wrong key usage: certificate {subject} has key usage [{}], without \
                     digitalSignature, keyEncipherment or keyAgreement: OpenSSL clients \
                     (curl) refuse it as a server's certificate (\"unsuitable certificate \
                     purpose\"); make one with `mtls pki issue server` or `mtls pki sign \
                     --profile server`",
                    described
                        .as_ref()
                        .map(|i| i.key_usage.join(", "))
                        .unwrap_or_default()
                ),
            });
        }
    }
    if let Ok(Some(constraints)) = cert.basic_constraints()
        && constraints.value.ca
    {
        findings.push(Finding {
            severity: Severity::Error,
            check: "ca_as_leaf",
            message: format!(
                "CA certificate as the server's: certificate {subject} has basicConstraints \
                 CA:TRUE; rustls clients (mtls get, and every program built on rustls) refuse \
                 a CA certificate as an end entity (CaUsedAsEndEntity); serve a leaf \
                 certificate made with `mtls pki issue server`"
            ),
        });
    }
    let not_after = cert.validity().not_after.to_datetime();
    let left = not_after - at;
    if left.is_positive() && left.whole_days() < EXPIRY_WARNING_DAYS {
        findings.push(Finding {
            severity: Severity::Warning,
            check: "expires_soon",
            message: format!(
                "certificate {subject} (serial {}) expires {} ({}): renew it",
                serial(&cert),
                relative(not_after, at),
                human_time(not_after)
            ),
        });
    }
    let sans = subject_alt_names(&cert);
    if sans.is_empty() {
        findings.push(Finding {
            severity: Severity::Warning,
            check: "no_subject_alt_name",
            message: format!(
                "certificate {subject} has no subjectAltName: browsers, Go, Java and rustls \
                 ignore the CN, so they refuse it for every name"
            ),
        });
    }
    for name in names {
        let covered = match name.strip_prefix("*.") {
            // A wildcard server_name is covered by the same wildcard, not by one host.
            Some(_) => sans.iter().any(|san| {
                san.strip_prefix("DNS:")
                    .is_some_and(|d| d.eq_ignore_ascii_case(name))
            }),
            None => check_name(&cert, name).is_ok(),
        };
        if !covered && !sans.is_empty() {
            findings.push(Finding {
                severity: Severity::Warning,
                check: "name_mismatch",
                message: format!(
                    "server_name {name} is not among the names of certificate {subject} \
                     ({}): clients that connect as {name} refuse it",
                    sans.join(", ")
                ),
            });
        }
    }
    findings
}

fn trim_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn serial(cert: &X509Certificate<'_>) -> String {
    crate::names::serial_hex(cert.raw_serial())
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair};

    use super::*;
    use crate::Profile;
    use crate::ca::RevokeTarget;
    use crate::testing::Fixture;

    impl Fixture {
        fn options(&self) -> VerifyOptions {
            VerifyOptions {
                roots: vec![self.ca.root().clone()],
                untrusted: self.ca.intermediates().to_vec(),
                crls: vec![],
                purpose: None,
                name: None,
                at: OffsetDateTime::now_utc(),
                max_depth: 8,
            }
        }
    }

    fn err(leaf: &[u8], options: &VerifyOptions) -> VerifyError {
        verify(leaf, options).unwrap_err()
    }

    #[test]
    fn valid_chains_with_and_without_an_intermediate() {
        for intermediate in [false, true] {
            let mut f = Fixture::new("Root", intermediate);
            let chain = f.issue("api", Profile::Server, &["api.local", "10.0.0.5"]);
            let mut o = f.options();
            o.purpose = Some(Purpose::Server);
            o.name = Some("API.local".into());
            o.crls = vec![f.crl()];
            let ok = verify(&chain[0], &o).unwrap();
            assert_eq!(ok.chain.len(), 2 + usize::from(intermediate));
            assert_eq!(ok.chain.last().unwrap().subject, "CN=Root");
            assert_eq!(ok.checked_crls, 1);
            o.name = Some("10.0.0.5".into());
            assert!(verify(&chain[0], &o).is_ok());
        }
    }

    #[test]
    fn time_checks_name_the_certificate_and_the_date() {
        let mut f = Fixture::new("Root", false);
        let chain = f.issue("alice", Profile::Client, &[]);
        let mut o = f.options();
        o.at = OffsetDateTime::now_utc() + time::Duration::days(13);
        let e = err(&chain[0], &o);
        assert_eq!(e.check(), "expired");
        let text = e.to_string();
        assert!(
            text.starts_with("certificate CN=alice (serial ")
                && text.contains("expired on")
                && text.contains("days ago"),
            "{text}"
        );
        o.at = OffsetDateTime::now_utc() - time::Duration::days(3);
        let text = err(&chain[0], &o).to_string();
        assert!(
            text.contains("is not valid until") && text.contains("(in "),
            "{text}"
        );
    }

    #[test]
    fn unknown_issuer_and_bad_signature_are_told_apart() {
        let mut f = Fixture::new("Root", false);
        let other = Fixture::new("Other Root", false);
        let twin = Fixture::new("Root", false); // same name, different key
        let chain = f.issue("alice", Profile::Client, &[]);
        let mut o = other.options();
        let text = err(&chain[0], &o).to_string();
        assert_eq!(
            text,
            "unknown issuer: the chain ends at CN=alice (issued by CN=Root), which is not among the trusted CAs [CN=Other Root]"
        );
        o.roots = vec![twin.ca.root().clone()];
        let e = err(&chain[0], &o);
        assert_eq!(e.check(), "bad_signature", "{e}");
        // Without the intermediate the chain cannot be built.
        let mut g = Fixture::new("Root2", true);
        let chain = g.issue("bob", Profile::Client, &[]);
        let mut o = g.options();
        o.untrusted.clear();
        let text = err(&chain[0], &o).to_string();
        assert!(text.contains("issued by CN=Root2 Intermediate"), "{text}");
        o.untrusted = g.ca.intermediates().to_vec();
        o.max_depth = 0;
        let text = err(&chain[0], &o).to_string();
        assert_eq!(
            text,
            "chain too deep: 1 intermediate certificates, more than the allowed 0"
        );
    }

    #[test]
    fn purpose_and_name() {
        let mut f = Fixture::new("Root", false);
        let server = f.issue("web", Profile::Server, &["*.example.com"]);
        let mut o = f.options();
        o.purpose = Some(Purpose::Client);
        let text = err(&server[0], &o).to_string();
        assert_eq!(
            text,
            "wrong purpose: asked for a client certificate, CN=web has extended key usage [serverAuth]"
        );
        o.purpose = Some(Purpose::Server);
        for (name, ok) in [
            ("a.example.com", true),
            ("A.EXAMPLE.COM", true),
            ("example.com", false),
            ("a.b.example.com", false),
            ("10.0.0.1", false),
        ] {
            o.name = Some(name.into());
            assert_eq!(verify(&server[0], &o).is_ok(), ok, "{name}");
        }
        o.name = Some("api.local".into());
        assert_eq!(
            err(&server[0], &o).to_string(),
            "name mismatch: asked for api.local, the certificate has [DNS:*.example.com]"
        );
        assert!(
            !dns_matches("*.com", "example.com"),
            "no wildcard over a public suffix-ish single label"
        );
    }

    #[test]
    fn revocation_needs_a_fresh_signed_crl_from_the_issuer() {
        let mut f = Fixture::new("Root", true);
        let alice = f.issue("alice", Profile::Client, &[]);
        let bob = f.issue("bob", Profile::Client, &[]);
        f.ca.revoke(
            &RevokeTarget::Name("alice".into()),
            crate::Reason::KeyCompromise,
        )
        .unwrap();
        let mut o = f.options();
        o.crls = vec![f.crl()];
        let e = err(&alice[0], &o);
        let text = e.to_string();
        assert_eq!(e.check(), "revoked");
        assert!(
            text.contains("CN=alice")
                && text.contains("was revoked on")
                && text.contains("for reason keyCompromise")
                && text.contains("CRL of CN=Root Intermediate, number 2"),
            "{text}"
        );
        assert!(verify(&bob[0], &o).is_ok());
        // Before the revocation, alice was fine.
        o.at = OffsetDateTime::now_utc() - time::Duration::minutes(2);
        assert!(verify(&alice[0], &o).is_ok());

        o.at = OffsetDateTime::now_utc() + time::Duration::days(8);
        assert_eq!(err(&bob[0], &o).check(), "crl_expired");

        o.at = OffsetDateTime::now_utc();
        let other = Fixture::new("Other", false);
        o.crls = vec![other.crl()];
        assert_eq!(
            err(&bob[0], &o).to_string(),
            "no CRL from CN=Root Intermediate was given, so the revocation of CN=bob cannot be checked"
        );

        // A CRL under the right name but signed by another key.
        let twin = Fixture::new("Root", true);
        o.crls = vec![twin.crl()];
        assert_eq!(err(&bob[0], &o).check(), "crl_signature");
    }

    #[test]
    fn a_leaf_cannot_act_as_a_ca() {
        let f = Fixture::new("Root", false);
        // A "CA" without basicConstraints CA:TRUE, then a certificate it signed.
        let fake_key = KeyPair::generate().unwrap();
        let mut fake = CertificateParams::default();
        fake.distinguished_name.push(DnType::CommonName, "Sneaky");
        fake.is_ca = IsCa::ExplicitNoCa;
        let root_issuer = Issuer::from_ca_cert_der(
            f.ca.root(),
            KeyPair::from_pem(&std::fs::read_to_string(f.ca.layout().ca_key()).unwrap()).unwrap(),
        )
        .unwrap();
        let fake_cert = fake.signed_by(&fake_key, &root_issuer).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::default();
        leaf.distinguished_name.push(DnType::CommonName, "victim");
        let leaf_cert = leaf
            .signed_by(&leaf_key, &Issuer::new(fake, &fake_key))
            .unwrap();
        let mut o = f.options();
        o.untrusted = vec![fake_cert.der().clone()];
        let text = err(leaf_cert.der(), &o).to_string();
        assert_eq!(
            text,
            "CN=Sneaky cannot sign certificates: it is not a CA (basicConstraints CA:TRUE is missing)"
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        let f = Fixture::new("Root", false);
        let mut o = f.options();
        for input in [&b""[..], b"\x30", b"\x30\x82\xff\xff", b"garbage"] {
            assert_eq!(err(input, &o).check(), "malformed");
        }
        o.crls = vec![b"\x30\x03\x02\x01\x01".to_vec()];
        let root = f.ca.root().clone();
        assert_eq!(err(&root, &o).check(), "malformed");
    }

    #[test]
    fn server_fitness_names_what_clients_will_refuse() {
        let mut f = Fixture::new("Fit CA", false);
        let now = OffsetDateTime::now_utc();
        let checks = |leaf: &[u8], names: &[&str], at| -> Vec<(Severity, &'static str)> {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            server_fitness(leaf, &names, at)
                .into_iter()
                .map(|f| (f.severity, f.check))
                .collect()
        };
        let good = f.issue("api", Profile::Server, &["api.local", "*.apps.local"]);
        let names = ["api.local", "x.apps.local", "*.apps.local"];
        // Ten days of life: under the 30 that earn a warning; every name covered.
        assert_eq!(
            checks(good[0].as_ref(), &names, now),
            vec![(Severity::Warning, "expires_soon")]
        );
        // Seen from 60 days before: nothing to say, except names it lacks (one host, one
        // wildcard that a single host name would not cover).
        let early = now - time::Duration::days(60);
        let not_yet = checks(good[0].as_ref(), &names, early);
        assert_eq!(not_yet, vec![(Severity::Error, "not_yet_valid")]);
        assert_eq!(
            checks(good[0].as_ref(), &["other.local", "*.web.local"], now)[1..],
            [
                (Severity::Warning, "name_mismatch"),
                (Severity::Warning, "name_mismatch"),
            ]
        );
        let expired_at = now + time::Duration::days(11);
        let found = server_fitness(good[0].as_ref(), &[], expired_at);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].severity, found[0].check),
            (Severity::Error, "expired")
        );
        assert!(
            found[0].message.contains("every client refuses it"),
            "{found:?}"
        );

        let client = f.issue("alice", Profile::Client, &["alice.local"]);
        let found = server_fitness(client[0].as_ref(), &["alice.local".into()], now);
        assert_eq!(found.len(), 2, "wrong purpose, expires soon: {found:?}");
        assert_eq!(
            (found[0].severity, found[0].check),
            (Severity::Error, "wrong_purpose")
        );
        assert!(
            found[0].message.contains("mtls pki issue server"),
            "{found:?}"
        );
        assert!(server_fitness(b"garbage", &[], now).is_empty());
    }
}

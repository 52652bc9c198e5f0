//! Revocation by CRL, for every certificate of a path, checked once per CRL where webpki
//! would check per handshake.
//!
//! webpki checks a CRL's signature every time it consults the CRL (rustls/webpki#81). For a
//! CRL of a million revoked serials (about 40 MB) that is a SHA-256 over 40 MB in every
//! handshake, and any client could make us do it by presenting a certificate. Here:
//!
//! - a CRL's signature is verified once per issuer key, on first use, then remembered
//!   (its issuer must be allowed to sign CRLs: cRLSign, when it has a keyUsage);
//! - a serial is looked up in webpki's parsed CRL (an ordered map: O(log n)); webpki's
//!   parser also refuses what we do not support: indirect CRLs, delta CRLs, reasons
//!   partitioning and unknown critical extensions, each with its own sentence;
//! - nextUpdate in the past refuses (the CRL can no longer vouch for anything);
//! - a CRL is read through its envelope for its issuer and dates, never through a
//!   structure per revoked serial (`Envelope`): a million serials cost their bytes.
//!
//! The seam for OCSP: `Crls::check` answers "consulted and not revoked", "nothing
//! consulted" or a refusal; an OCSP responder answers the same three.
//!
//! Not checked: issuing distribution point scope against the certificate's CRL
//! distribution points (a CRL from the right issuer is used for all its certificates).

use std::sync::Mutex;

use webpki::CertRevocationList;
use x509_parser::der_parser::asn1_rs::{Any, BitString, Tag};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::time::ASN1Time;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo, X509Name};

use crate::budget::Budget;
use crate::cert::Cert;
use crate::failure::Check;
use crate::signature;

/// The CRLs of one policy.
#[derive(Debug, Default)]
pub struct Crls {
    crls: Vec<Crl>,
}

#[derive(Debug)]
struct Crl {
    der: Vec<u8>,
    list: CertRevocationList<'static>,
    /// The issuer, in our DN text form, for messages.
    issuer: String,
    /// The issuer name's DER, to find the CRL for a certificate.
    issuer_raw: Vec<u8>,
    /// `thisUpdate` and `nextUpdate`, seconds since the epoch.
    this_update: i64,
    next_update: Option<i64>,
    /// Keys (SPKI DER) this CRL's signature was checked against, and the verdict: a
    /// signature is checked once per key, and two CAs may share a name (key rollover).
    checked: Mutex<Vec<(Vec<u8>, bool)>>,
}

impl Crls {
    /// Read DER CRLs. An error is the check (`malformed`, `crl_unsupported`) and a
    /// sentence naming the CRL and what is wrong with it.
    pub fn load(ders: &[Vec<u8>]) -> Result<Crls, (Check, String)> {
        let mut crls = Vec::with_capacity(ders.len());
        for (i, der) in ders.iter().enumerate() {
            let envelope = Envelope::read(der)
                .map_err(|e| (Check::Malformed, format!("CRL #{}: {e}", i + 1)))?;
            let issuer = mtls_pki::dn::display(&envelope.issuer);
            let borrowed = webpki::BorrowedCertRevocationList::from_der(der).map_err(|e| {
                (
                    kind(&e),
                    format!("the CRL from {issuer} {}", unsupported(&e)),
                )
            })?;
            // A serial with a superfluous leading byte is not DER, and would never equal the
            // certificate's: the CRL would fail open for it. Refused, like openssl does.
            for entry in &borrowed {
                let entry = entry.map_err(|e| {
                    (
                        kind(&e),
                        format!("the CRL from {issuer} {}", unsupported(&e)),
                    )
                })?;
                if let Some(why) = serial_problem(entry.serial_number) {
                    return Err((
                        Check::Malformed,
                        format!(
                            "the CRL from {issuer} lists a serial number that {why} (not DER): \
                             it could never match a certificate; the CA must publish a correct CRL"
                        ),
                    ));
                }
            }
            let owned = borrowed.to_owned().map_err(|e| {
                (
                    kind(&e),
                    format!("the CRL from {issuer} {}", unsupported(&e)),
                )
            })?;
            crls.push(Crl {
                issuer,
                issuer_raw: envelope.issuer.as_raw().to_vec(),
                this_update: envelope.this_update.timestamp(),
                next_update: envelope.next_update.map(|t| t.timestamp()),
                der: der.clone(),
                list: CertRevocationList::Owned(owned),
                checked: Mutex::new(Vec::new()),
            });
        }
        Ok(Crls { crls })
    }

    /// Whether no CRL was given.
    pub fn is_empty(&self) -> bool {
        self.crls.is_empty()
    }

    /// How many CRLs there are.
    pub fn len(&self) -> usize {
        self.crls.len()
    }

    /// The issuers (DN text) of the CRLs.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.crls.iter().map(|c| c.issuer.as_str())
    }

    /// The issuer and nextUpdate (Unix seconds) of every CRL whose nextUpdate is before
    /// `now` (Unix seconds) and that no newer CRL from the same issuer replaces.
    pub fn expired(&self, now: i64) -> Vec<(&str, i64)> {
        self.crls
            .iter()
            .filter(|c| {
                !self
                    .crls
                    .iter()
                    .any(|o| o.issuer_raw == c.issuer_raw && o.this_update > c.this_update)
            })
            .filter_map(|c| {
                c.next_update
                    .filter(|n| *n < now)
                    .map(|n| (c.issuer.as_str(), n))
            })
            .collect()
    }

    /// Whether a CRL from the CA `ca` (DER) is present and signed by its key: `Err` with a
    /// sentence if the CRLs with its name are all signed by another key, if the CA may not
    /// sign CRLs (a keyUsage without cRLSign), or if its newest CRL is not valid at `now`
    /// (Unix seconds).
    pub fn covers(&self, ca: &[u8], now: i64) -> Result<bool, String> {
        let Ok(cert) = Cert::parse(ca, true) else {
            return Ok(false);
        };
        let named: Vec<&Crl> = self.named(cert.x509.subject().as_raw());
        if named.is_empty() {
            return Ok(false);
        }
        let issuer = &named[0].issuer;
        if let Some(ku) = cert.key_usage
            && !ku.crl_sign()
        {
            return Err(format!(
                "the CA {issuer} may not sign CRLs (its keyUsage lacks cRLSign), so its CRL \
                 cannot be trusted and every client certificate from it would be refused"
            ));
        }
        let Some(crl) = newest(&named, cert.x509.public_key().raw) else {
            return Err(format!(
                "the CRL from {issuer} has a bad signature: it was not signed by the key of \
                 the CA {issuer}"
            ));
        };
        if now < crl.this_update {
            return Err(format!(
                "the CRL from {issuer} is not valid until {} (its thisUpdate is in the \
                 future: a clock set wrong here or at the CA); every client certificate from \
                 {issuer} would be refused",
                human(crl.this_update)
            ));
        }
        Ok(true)
    }

    /// The CRLs whose issuer is `name` (DER).
    fn named(&self, name: &[u8]) -> Vec<&Crl> {
        self.crls
            .iter()
            .filter(|c| c.issuer_raw.as_slice() == name)
            .collect()
    }

    /// The revocation status of `cert`, issued by `issuer`, at `at`: `Ok(true)` when a CRL
    /// was consulted and does not list it, `Ok(false)` when there is no CRL from its issuer
    /// and none is `required`; otherwise the failed check and a sentence.
    pub(crate) fn check(
        &self,
        cert: &Cert<'_>,
        issuer: &Cert<'_>,
        at: time::OffsetDateTime,
        required: bool,
        budget: &mut Budget,
    ) -> Result<bool, (Check, String)> {
        let who = || describe(&cert.x509);
        let named = self.named(cert.x509.issuer().as_raw());
        if named.is_empty() {
            if !required {
                return Ok(false);
            }
            return Err((
                Check::CrlMissing,
                format!(
                    "revocation status unknown: no CRL from {} (the issuer of {}) among the configured ones (fail closed; add its CRL)",
                    mtls_pki::dn::display(cert.x509.issuer()),
                    who()
                ),
            ));
        }
        if let Some(ku) = issuer.key_usage
            && !ku.crl_sign()
        {
            return Err((
                Check::CrlUnsupported,
                format!(
                    "the CRL from {} cannot be trusted: its issuer's keyUsage lacks cRLSign",
                    named[0].issuer
                ),
            ));
        }
        let spki = issuer.x509.public_key().raw;
        // Each CRL's signature by this key is checked once (and charged once).
        for crl in &named {
            if crl.verdict(spki).is_none() {
                budget.signature().map_err(|e| {
                    (
                        Check::TooComplex,
                        e.sentence(&crate::budget::Limits::default()),
                    )
                })?;
            }
        }
        // Of the CRLs its issuer signed, the newest speaks (a CA's old CRL left in the
        // files must not hide a newer revocation).
        let Some(crl) = newest(&named, spki) else {
            return Err((
                Check::CrlSignature,
                format!(
                    "the CRL from {} has a bad signature: it was altered or signed by another key",
                    named[0].issuer
                ),
            ));
        };
        let now = at.unix_timestamp();
        if let Some(next) = crl.next_update
            && now > next
        {
            return Err((
                Check::CrlExpired,
                format!(
                    "the CRL from {} expired on {} (its nextUpdate); publish a fresh one (mtls pki crl)",
                    crl.issuer,
                    human(next)
                ),
            ));
        }
        if now < crl.this_update {
            return Err((
                Check::CrlExpired,
                format!(
                    "the CRL from {} is not valid until {} (its thisUpdate is in the future)",
                    crl.issuer,
                    human(crl.this_update)
                ),
            ));
        }
        match crl.list.find_serial(cert.x509.raw_serial()) {
            Ok(None) => Ok(true),
            Ok(Some(revoked)) if revoked.revocation_date.as_secs() as i64 > now => Ok(true),
            Ok(Some(revoked)) => Err(crl.revoked(&who(), &revoked)),
            Err(e) => Err((
                Check::CrlUnsupported,
                format!("the CRL from {} {}", crl.issuer, unsupported(&e)),
            )),
        }
    }

    /// Whether the CRL from `cert`'s issuer lists it, looked at only once its signature
    /// by `issuer` is checked (for a certificate that verified earlier).
    pub(crate) fn revoked_only(
        &self,
        cert: &Cert<'_>,
        issuer: &Cert<'_>,
    ) -> Option<(Check, String)> {
        let named = self.named(cert.x509.issuer().as_raw());
        let crl = newest(&named, issuer.x509.public_key().raw)?;
        let revoked = crl.list.find_serial(cert.x509.raw_serial()).ok()??;
        Some(crl.revoked(&describe(&cert.x509), &revoked))
    }
}

/// The newest (latest thisUpdate) of `crls` signed by the key `spki`.
fn newest<'c>(crls: &[&'c Crl], spki: &[u8]) -> Option<&'c Crl> {
    crls.iter()
        .copied()
        .filter(|c| c.signed_by(spki))
        .max_by_key(|c| c.this_update)
}

/// Why a DER INTEGER's content is not minimal (or not positive), if it is not.
fn serial_problem(serial: &[u8]) -> Option<&'static str> {
    match serial {
        [] => Some("is empty"),
        [0x00, next, ..] if next & 0x80 == 0 => Some("has a superfluous leading zero byte"),
        [0xff, next, ..] if next & 0x80 != 0 => Some("has a superfluous leading 0xFF byte"),
        _ => None,
    }
}

/// The check a CRL parse error belongs to.
fn kind(e: &webpki::Error) -> Check {
    use webpki::Error as W;
    match e {
        W::UnsupportedIndirectCrl
        | W::UnsupportedDeltaCrl
        | W::UnsupportedRevocationReasonsPartitioning
        | W::UnsupportedCrlIssuingDistributionPoint
        | W::UnsupportedCriticalExtension
        | W::UnsupportedCrlVersion => Check::CrlUnsupported,
        _ => Check::Malformed,
    }
}

impl Crl {
    fn revoked(&self, who: &str, revoked: &webpki::BorrowedRevokedCert<'_>) -> (Check, String) {
        (
            Check::Revoked,
            format!(
                "certificate {who} was revoked on {}{} (CRL of {})",
                human(revoked.revocation_date.as_secs() as i64),
                revoked
                    .reason_code
                    .map(|r| format!(" for reason {}", reason_name(r)))
                    .unwrap_or_default(),
                self.issuer
            ),
        )
    }

    /// Whether this CRL's signature verifies with `spki` (DER). Costs a hash of the whole
    /// CRL, so each key's verdict is remembered (a few keys at most: a CA and its
    /// predecessors with the same name).
    fn signed_by(&self, spki: &[u8]) -> bool {
        if let Some(verdict) = self.verdict(spki) {
            return verdict;
        }
        let verdict = signature::spki(spki)
            .is_some_and(|key| Envelope::read(&self.der).is_ok_and(|e| e.signed_by(&key)));
        if let Ok(mut checked) = self.checked.lock() {
            if checked.len() >= 8 {
                checked.remove(0);
            }
            checked.push((spki.to_vec(), verdict));
        }
        verdict
    }

    /// The remembered verdict of this CRL's signature by `spki`, if it was checked.
    fn verdict(&self, spki: &[u8]) -> Option<bool> {
        let checked = self.checked.lock().ok()?;
        checked.iter().find(|(k, _)| k == spki).map(|(_, v)| *v)
    }
}

/// What webpki's refusal of a CRL means, as the tail of "the CRL from X ...".
fn unsupported(e: &webpki::Error) -> String {
    use webpki::Error as W;
    match e {
        W::UnsupportedIndirectCrl => "is an indirect CRL (it lists certificates of other issuers), which is not supported: give each CA's own CRL".into(),
        W::UnsupportedDeltaCrl => "is a delta CRL, which is not supported: give the full CRL".into(),
        W::UnsupportedRevocationReasonsPartitioning => "covers only some revocation reasons, which is not supported".into(),
        W::UnsupportedCrlIssuingDistributionPoint => "has an issuing distribution point that limits its scope (onlyContainsUserCerts, onlyContainsCACerts, onlySomeReasons or a distribution point name), which is not supported: publish a full CRL without one".into(),
        W::UnsupportedCriticalExtension => "has a critical extension this verifier does not understand".into(),
        W::UnsupportedCrlVersion => "is not a version 2 CRL".into(),
        other => format!("does not parse ({other:?})"),
    }
}

/// What a CRL says about itself, read without parsing its entries: the signed bytes, the
/// signature, the issuer and the dates. x509-parser's whole-CRL parse builds a structure
/// per revoked serial, which for a million serials peaked at about 800 MB just to check
/// one signature; this reads a few hundred bytes. (The serials are webpki's to look up.)
struct Envelope<'a> {
    /// `tbsCertList`, the bytes the signature covers.
    tbs: &'a [u8],
    algorithm: AlgorithmIdentifier<'a>,
    signature: BitString<'a>,
    issuer: X509Name<'a>,
    this_update: ASN1Time,
    next_update: Option<ASN1Time>,
}

impl<'a> Envelope<'a> {
    fn read(der: &'a [u8]) -> Result<Envelope<'a>, String> {
        let bad = |what: &str| format!("not a CRL: {what}");
        // CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
        let (_, list) = Any::from_der(der).map_err(|e| bad(&e.to_string()))?;
        if list.tag() != Tag::Sequence {
            return Err(bad("not a SEQUENCE"));
        }
        let body = list.data;
        let (rest, tbs) = Any::from_der(body).map_err(|e| bad(&e.to_string()))?;
        let signed = &body[..body.len() - rest.len()];
        let (rest, algorithm) =
            AlgorithmIdentifier::from_der(rest).map_err(|e| bad(&e.to_string()))?;
        let (_, signature) = BitString::from_der(rest).map_err(|e| bad(&e.to_string()))?;
        // TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL, signature, issuer,
        //                            thisUpdate, nextUpdate OPTIONAL, ... }
        let mut fields = tbs.data;
        if let Ok((after, version)) = Any::from_der(fields)
            && version.tag() == Tag::Integer
        {
            fields = after;
        }
        let (fields, _) = Any::from_der(fields).map_err(|e| bad(&e.to_string()))?;
        let (fields, issuer) = X509Name::from_der(fields).map_err(|e| bad(&e.to_string()))?;
        let (fields, this_update) = ASN1Time::from_der(fields).map_err(|e| bad(&e.to_string()))?;
        let next_update = ASN1Time::from_der(fields).ok().map(|(_, t)| t);
        Ok(Envelope {
            tbs: signed,
            algorithm,
            signature,
            issuer,
            this_update,
            next_update,
        })
    }

    fn signed_by(&self, key: &SubjectPublicKeyInfo<'_>) -> bool {
        signature::verify(key, &self.algorithm, &self.signature.data, self.tbs).is_ok()
    }
}

/// Whether `der` has a CRL's envelope (issuer, dates, signature), read without its
/// entries: the cheap test that a file holds CRLs at all.
pub fn check_envelope(der: &[u8]) -> Result<(), String> {
    Envelope::read(der).map(|_| ())
}

/// What an operator watches of a CRL: its issuer, nextUpdate (Unix seconds) and how
/// many certificates it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSummary {
    /// The issuer, in our DN text form.
    pub issuer: String,
    /// nextUpdate, seconds since the epoch.
    pub next_update: Option<u64>,
    /// Revoked certificates listed.
    pub entries: usize,
}

/// Summarise a DER CRL by walking it, never building a structure per entry (a CRL of a
/// million serials costs no more memory than its bytes; see `Envelope`).
pub fn summarize(der: &[u8]) -> Option<CrlSummary> {
    let envelope = Envelope::read(der).ok()?;
    let list = webpki::BorrowedCertRevocationList::from_der(der).ok()?;
    Some(CrlSummary {
        issuer: mtls_pki::dn::display(&envelope.issuer),
        next_update: envelope
            .next_update
            .and_then(|t| u64::try_from(t.timestamp()).ok()),
        entries: (&list).into_iter().count(),
    })
}

fn describe(cert: &X509Certificate<'_>) -> String {
    format!(
        "{} (serial {})",
        mtls_pki::dn::display(cert.subject()),
        crate::failure::serial_hex(cert.raw_serial())
    )
}

fn human(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(mtls_pki::db::human_time)
        .unwrap_or_else(|_| format!("{secs} (unix time)"))
}

fn reason_name(reason: webpki::RevocationReason) -> &'static str {
    use webpki::RevocationReason as R;
    match reason {
        R::Unspecified => "unspecified",
        R::KeyCompromise => "keyCompromise",
        R::CaCompromise => "cACompromise",
        R::AffiliationChanged => "affiliationChanged",
        R::Superseded => "superseded",
        R::CessationOfOperation => "cessationOfOperation",
        R::CertificateHold => "certificateHold",
        R::RemoveFromCrl => "removeFromCRL",
        R::PrivilegeWithdrawn => "privilegeWithdrawn",
        R::AaCompromise => "aACompromise",
    }
}

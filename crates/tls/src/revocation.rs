//! CRL checks for client chains, done once per CRL where webpki would do them per
//! handshake.
//!
//! webpki checks a CRL's signature every time it consults the CRL (rustls/webpki#81). For a
//! CRL of a million revoked serials (about 40 MB) that is a SHA-256 over 40 MB in every
//! handshake — and any client could make us do it by presenting a certificate. So the
//! gateway asks webpki to build and verify the path without revocation, and checks
//! revocation here, in webpki's `verify_path` callback (which sees each verified candidate
//! path and may reject it, letting path building try another):
//!
//! - a CRL's signature is verified once per issuer key: at load time against the configured
//!   CAs, or on first use against the intermediate that issued it, then remembered;
//! - a serial is looked up in webpki's parsed CRL (an ordered map: O(log n));
//! - every certificate of the chain needs a CRL from its issuer, else the status is unknown
//!   and the chain is refused (fail closed, OpenSSL's `X509_V_FLAG_CRL_CHECK_ALL`, which
//!   is what nginx's `ssl_crl` does); an expired CRL refuses too.
//!
//! Not checked (as in webpki's default use): issuing distribution points and delta CRLs.

use std::sync::OnceLock;

use rustls::pki_types::{TrustAnchor, UnixTime};
use webpki::{CertRevocationList, OwnedCertRevocationList};
use x509_parser::asn1_rs::{Any, BitString, Tag};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::time::ASN1Time;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo, X509Name};

/// The CRLs of one TLS server block.
#[derive(Debug, Default)]
pub(crate) struct Crls {
    crls: Vec<Crl>,
}

#[derive(Debug)]
struct Crl {
    der: Vec<u8>,
    list: CertRevocationList<'static>,
    /// The issuer, for messages.
    issuer: String,
    /// `nextUpdate`, seconds since the epoch.
    next_update: Option<u64>,
    /// The SPKI (DER) whose signature over this CRL has been checked.
    verified_by: OnceLock<Vec<u8>>,
}

/// Why a chain failed the revocation check: webpki's error (for the alert) and a sentence.
#[derive(Debug)]
pub(crate) struct RevocationFailure {
    pub(crate) error: webpki::Error,
    pub(crate) check: &'static str,
    pub(crate) reason: String,
}

impl Crls {
    /// Read the CRLs (DER) and check the signatures of those issued by one of `cas`.
    pub(crate) fn load(
        ders: Vec<(Vec<u8>, OwnedCertRevocationList)>,
        cas: &[rustls::pki_types::CertificateDer<'static>],
    ) -> Result<Crls, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut crls = Vec::with_capacity(ders.len());
        for (der, owned) in ders {
            let parsed = Envelope::read(&der)?;
            let issuer = mtls_pki::dn::display(&parsed.issuer);
            let next_update = parsed
                .next_update
                .and_then(|t| u64::try_from(t.timestamp()).ok());
            let verified_by = OnceLock::new();
            for ca in cas {
                let Ok((_, cert)) = X509Certificate::from_der(ca.as_ref()) else {
                    continue;
                };
                if cert.subject().as_raw() != parsed.issuer.as_raw() {
                    continue;
                }
                if parsed.signed_by(cert.public_key()) {
                    let _ = verified_by.set(cert.public_key().raw.to_vec());
                    break;
                }
                return Err(format!(
                    "the CRL from {issuer} has a bad signature: it was not signed by the key of \
                     the CA {issuer} in client_ca/trusted_ca"
                ));
            }
            drop(parsed);
            if let Some(next) = next_update
                && next < now
            {
                return Err(format!(
                    "the CRL from {issuer} expired on {} (its nextUpdate): every client \
                     certificate from {issuer} would be refused (crl_expired); publish a fresh \
                     one (mtls pki crl)",
                    human(next)
                ));
            }
            crls.push(Crl {
                der,
                list: CertRevocationList::Owned(owned),
                issuer,
                next_update,
                verified_by,
            });
        }
        // Fail closed means a CA without its CRL has every client refused (crl_missing):
        // a CRL file swapped for another CA's would stop everyone, so it is refused here,
        // at load, where the old configuration can keep serving.
        if !crls.is_empty() {
            for ca in cas {
                let Ok((_, cert)) = X509Certificate::from_der(ca.as_ref()) else {
                    continue;
                };
                let covered = crls
                    .iter()
                    .any(|c| c.verified_by.get().map(Vec::as_slice) == Some(cert.public_key().raw));
                if !covered {
                    let subject = mtls_pki::dn::display(cert.subject());
                    let held: Vec<&str> = crls.iter().map(|c| c.issuer.as_str()).collect();
                    return Err(format!(
                        "no CRL from {subject} (the crl files hold CRLs from: {}); with crl \
                         set, revocation fails closed, so every client certificate from \
                         {subject} would be refused (crl_missing): add its CRL",
                        held.join("; ")
                    ));
                }
            }
        }
        Ok(Crls { crls })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.crls.is_empty()
    }

    /// Check every certificate of a verified path against its issuer's CRL.
    pub(crate) fn check_path(
        &self,
        path: &webpki::VerifiedPath<'_>,
        now: UnixTime,
    ) -> Result<(), RevocationFailure> {
        let leaf: &webpki::Cert<'_> = path.end_entity();
        let intermediates: Vec<&webpki::Cert<'_>> = path.intermediate_certificates().collect();
        // Leaf first; each certificate's issuer is the next one, the last one's the anchor.
        let mut chain = Vec::with_capacity(intermediates.len() + 1);
        chain.push(leaf);
        chain.extend(intermediates.iter().copied());
        for (i, cert) in chain.iter().enumerate() {
            let issuer = match chain.get(i + 1) {
                Some(next) => Issuer::Cert(next),
                None => Issuer::Anchor(path.anchor()),
            };
            self.check_one(cert, &issuer, now)?;
        }
        Ok(())
    }

    /// Whether the CRLs list `leaf` (DER) as revoked: the sentence if they do. For
    /// certificates that verified earlier (a resumed session, a connection open across a
    /// reload), so only the CRL from the leaf's issuer is looked at, and only once its
    /// signature has been checked; expiry and missing CRLs were the full handshake's job.
    ///
    /// `intermediates` are the certificates the client sent after its leaf, which its full
    /// handshake verified: a CRL from an intermediate CA has its signature checked on
    /// first use, and after a reload that may be now, with the intermediate from here.
    pub(crate) fn revoked_leaf(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
    ) -> Option<RevocationFailure> {
        let (_, cert) = X509Certificate::from_der(leaf).ok()?;
        let issuer = name_value(cert.issuer().as_raw())?;
        let crl = self.crls.iter().find(|c| c.list.issuer() == issuer)?;
        if crl.verified_by.get().is_none() {
            let signer = intermediates.iter().find_map(|der| {
                let (_, ca) = X509Certificate::from_der(der).ok()?;
                (ca.subject().as_raw() == cert.issuer().as_raw())
                    .then(|| ca.public_key().raw.to_vec())
            })?;
            if !crl.signed_by(&signer) {
                return None;
            }
            let _ = crl.verified_by.set(signer);
        }
        let revoked = crl.list.find_serial(cert.raw_serial()).ok()??;
        Some(crl.revoked(leaf, &revoked))
    }

    fn check_one(
        &self,
        cert: &webpki::Cert<'_>,
        issuer: &Issuer<'_, '_>,
        now: UnixTime,
    ) -> Result<(), RevocationFailure> {
        let who = || describe(cert.der().as_ref());
        let Some(crl) = self.crls.iter().find(|c| c.list.issuer() == cert.issuer()) else {
            return Err(RevocationFailure {
                error: webpki::Error::UnknownRevocationStatus,
                check: "crl_missing",
                reason: format!(
                    "revocation status unknown: no CRL from the issuer of {} among the \
                     configured ones (fail closed; add its CRL to `crl`)",
                    who()
                ),
            });
        };
        if let Some(next_update) = crl.next_update
            && now.as_secs() > next_update
        {
            return Err(RevocationFailure {
                error: webpki::Error::CrlExpired {
                    time: now,
                    next_update: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                        next_update,
                    )),
                },
                check: "crl_expired",
                reason: format!(
                    "the CRL from {} expired (nextUpdate {}); publish a fresh one (mtls pki crl)",
                    crl.issuer,
                    human(next_update)
                ),
            });
        }
        let spki = issuer.spki();
        if crl.verified_by.get().map(Vec::as_slice) != Some(spki.as_slice()) {
            if !crl.signed_by(&spki) {
                return Err(RevocationFailure {
                    error: webpki::Error::InvalidCrlSignatureForPublicKey,
                    check: "crl_signature",
                    reason: format!(
                        "the CRL from {} has a bad signature: it was altered or signed by \
                         another key",
                        crl.issuer
                    ),
                });
            }
            let _ = crl.verified_by.set(spki);
        }
        match crl.list.find_serial(cert.serial()) {
            Ok(None) => Ok(()),
            Ok(Some(revoked)) => Err(crl.revoked(cert.der().as_ref(), &revoked)),
            Err(e) => Err(RevocationFailure {
                reason: format!("the CRL from {} cannot be read: {e}", crl.issuer),
                error: e,
                check: "crl_malformed",
            }),
        }
    }
}

impl Crl {
    /// The refusal of `cert` (DER), which this CRL lists as `revoked`.
    fn revoked(&self, cert: &[u8], revoked: &webpki::BorrowedRevokedCert<'_>) -> RevocationFailure {
        RevocationFailure {
            error: webpki::Error::CertRevoked,
            check: "revoked",
            reason: format!(
                "certificate {} was revoked on {}{} (CRL of {})",
                describe(cert),
                human(revoked.revocation_date.as_secs()),
                revoked
                    .reason_code
                    .map(|r| format!(" for reason {}", reason_name(r)))
                    .unwrap_or_default(),
                self.issuer
            ),
        }
    }

    /// Check this CRL's signature with `spki` (DER). Costs a hash of the whole CRL, which
    /// is why the result is remembered.
    fn signed_by(&self, spki: &[u8]) -> bool {
        let Ok((_, key)) = SubjectPublicKeyInfo::from_der(spki) else {
            return false;
        };
        Envelope::read(&self.der).is_ok_and(|parsed| parsed.signed_by(&key))
    }
}

/// What a CRL says about itself, read without parsing its entries: the signed bytes, the
/// signature, the issuer and nextUpdate. x509-parser's whole-CRL parse builds a structure
/// per revoked serial, which for a million serials peaked at about 800 MB just to check
/// one signature; this reads a few hundred bytes. (The serials themselves are webpki's to
/// look up.)
struct Envelope<'a> {
    /// `tbsCertList`, the bytes the signature covers.
    tbs: &'a [u8],
    algorithm: AlgorithmIdentifier<'a>,
    signature: BitString<'a>,
    issuer: X509Name<'a>,
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
        let (fields, _this_update) = ASN1Time::from_der(fields).map_err(|e| bad(&e.to_string()))?;
        let next_update = ASN1Time::from_der(fields).ok().map(|(_, t)| t);
        Ok(Envelope {
            tbs: signed,
            algorithm,
            signature,
            issuer,
            next_update,
        })
    }

    fn signed_by(&self, key: &SubjectPublicKeyInfo<'_>) -> bool {
        x509_parser::verify::verify_signature(key, &self.algorithm, &self.signature, self.tbs)
            .is_ok()
    }
}

enum Issuer<'a, 'p> {
    Cert(&'a webpki::Cert<'p>),
    Anchor(&'a TrustAnchor<'p>),
}

impl Issuer<'_, '_> {
    fn spki(&self) -> Vec<u8> {
        match self {
            Issuer::Cert(cert) => cert.subject_public_key_info().as_ref().to_vec(),
            Issuer::Anchor(anchor) => webpki::spki_for_anchor(anchor).as_ref().to_vec(),
        }
    }
}

/// `CN=alice (serial 0A1B...)`.
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
/// million serials costs no more memory than its bytes; see [`Envelope`]).
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

/// The value of a DER Name (what webpki compares): the bytes after its SEQUENCE header.
fn name_value(raw: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = raw.split_first()?;
    let (&first, rest) = rest.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let skip = if first < 0x80 {
        0
    } else {
        usize::from(first & 0x7f)
    };
    rest.get(skip..)
}

fn describe(der: &[u8]) -> String {
    let (subject, _, serial) = crate::identity::names(der);
    format!("{subject} (serial {serial})")
}

fn human(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| format!("{secs} (unix time)"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use mtls_test_support::{TestCa, forge};

    fn crl_der(ca: &TestCa, serials: &[Vec<u8>]) -> Vec<u8> {
        let pem = forge::crl_pem(&ca.dir().join("ca.crt"), &ca.dir().join("ca.key"), serials);
        mtls_pki::pem::sections(pem.as_bytes(), "test CRL")
            .expect("a PEM CRL")
            .remove(0)
            .der
    }

    fn ca_key(ca: &TestCa) -> Vec<u8> {
        let pem = std::fs::read(ca.dir().join("ca.crt")).expect("ca.crt");
        let der = mtls_pki::pem::certificates(&pem, "ca.crt").expect("a certificate");
        let (_, cert) = X509Certificate::from_der(der[0].as_ref()).expect("parses");
        cert.public_key().raw.to_vec()
    }

    #[test]
    fn the_envelope_is_read_without_the_entries() {
        let ca = TestCa::new();
        let other = TestCa::new();
        let serials: Vec<Vec<u8>> = (1u32..=500).map(|n| n.to_be_bytes().to_vec()).collect();
        let der = crl_der(&ca, &serials);
        let envelope = Envelope::read(&der).expect("reads");
        assert_eq!(envelope.issuer.to_string(), "CN=mtls Test CA");
        let next = envelope.next_update.expect("nextUpdate").timestamp();
        let week = 7 * 24 * 3600;
        let now = i64::try_from(UnixTime::now().as_secs()).unwrap_or(i64::MAX);
        assert!((next - now - week).abs() < 600, "{next} vs {now}");
        let (ours, theirs) = (ca_key(&ca), ca_key(&other));
        let (_, key) = SubjectPublicKeyInfo::from_der(&ours).expect("spki");
        assert!(envelope.signed_by(&key));
        let (_, wrong) = SubjectPublicKeyInfo::from_der(&theirs).expect("spki");
        assert!(!envelope.signed_by(&wrong));
    }

    #[test]
    fn an_altered_or_broken_crl_is_refused() {
        let ca = TestCa::new();
        let mut der = crl_der(&ca, &[vec![7]]);
        let spki = ca_key(&ca);
        let (_, key) = SubjectPublicKeyInfo::from_der(&spki).expect("spki");
        // One byte of the signed part changed: the signature no longer holds.
        let last_signed = der.len() / 2;
        der[last_signed] ^= 0x01;
        if let Ok(envelope) = Envelope::read(&der) {
            assert!(!envelope.signed_by(&key));
        }
        for garbage in [
            &b""[..],
            b"\x30",
            b"\x30\x03\x02\x01\x00",
            b"not a crl at all",
        ] {
            assert!(Envelope::read(garbage).is_err(), "{garbage:?}");
        }
        let truncated = crl_der(&ca, &[]);
        assert!(Envelope::read(&truncated[..truncated.len() - 10]).is_err());
    }
}

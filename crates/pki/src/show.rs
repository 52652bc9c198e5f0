//! `mtls pki show`: what is in this file? Certificates, chains, CSRs, CRLs, keys, PKCS#12
//! bundles, Java keystores and PKCS#7 bundles, PEM or DER, described for people (like
//! `openssl x509 -text`, minus the ASN.1 noise, plus "expires in 364 days") or as JSON.
//!
//! Private key material is never printed: a key is described by its algorithm, size and
//! the SHA-256 of its public half, which is what you compare with a certificate.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{
    DistributionPointName, FromDer, GeneralName, ParsedExtension, X509Certificate,
    X509CertificationRequest,
};
use x509_parser::public_key::PublicKey;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::db::{Reason, human_time};
use crate::encrypted::{EncryptedKey, Password};
use crate::error::{Error, Result};
use crate::{jks, names, p12, pem, pkcs7};

/// One thing found in a file.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Object {
    /// An X.509 certificate.
    Certificate(Box<CertInfo>),
    /// A PKCS#10 certificate signing request.
    Csr(CsrInfo),
    /// A certificate revocation list.
    Crl(CrlInfo),
    /// A private key (described, never printed).
    PrivateKey(KeyInfo),
    /// An encrypted private key read without a password: how it is encrypted.
    EncryptedKey(EncryptedKeyInfo),
    /// A PKCS#12 bundle.
    Pkcs12(P12Info),
    /// A Java keystore (JKS).
    Keystore(KeystoreInfo),
    /// A PKCS#7 certificate bundle (.p7b).
    Pkcs7(Pkcs7Info),
}

/// A certificate, described.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial, upper-case hex.
    pub serial: String,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// "expires in 364 days", "expired 3 days ago", "not valid for 2 more days".
    pub validity: String,
    /// Whole days until notAfter (negative once expired).
    pub days_left: i64,
    /// SANs in openssl's spelling.
    pub subject_alt_names: Vec<String>,
    /// "ECDSA P-256", "RSA 2048", "Ed25519".
    pub key: String,
    /// Signature algorithm, openssl's name.
    pub signature_algorithm: String,
    /// basicConstraints CA flag.
    pub is_ca: bool,
    /// pathLenConstraint, if any.
    pub path_len: Option<u32>,
    /// Key usage bits, openssl's names.
    pub key_usage: Vec<String>,
    /// Extended key usages, openssl's short names.
    pub extended_key_usage: Vec<String>,
    /// subjectKeyIdentifier, colon hex.
    pub subject_key_id: Option<String>,
    /// authorityKeyIdentifier, colon hex.
    pub authority_key_id: Option<String>,
    /// CRL distribution point URLs.
    pub crl_distribution_points: Vec<String>,
    /// OCSP responder URLs.
    pub ocsp_urls: Vec<String>,
    /// SHA-256 of the DER, colon hex.
    pub fingerprint_sha256: String,
    /// SHA-1 of the DER, colon hex (what Windows and keytool show).
    pub fingerprint_sha1: String,
    /// Subject equals issuer.
    pub self_signed: bool,
}

/// A CSR, described.
#[derive(Debug, Clone, Serialize)]
pub struct CsrInfo {
    /// Requested subject.
    pub subject: String,
    /// Requested SANs.
    pub subject_alt_names: Vec<String>,
    /// Key algorithm.
    pub key: String,
    /// Whether the self-signature verifies.
    pub signature_valid: bool,
}

/// A CRL, described.
#[derive(Debug, Clone, Serialize)]
pub struct CrlInfo {
    /// Issuer DN.
    pub issuer: String,
    /// thisUpdate.
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    /// nextUpdate, if set.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_update: Option<OffsetDateTime>,
    /// "next update in 6 days" / "stale since 2 days ago".
    pub freshness: String,
    /// CRL number, decimal.
    pub crl_number: Option<String>,
    /// Revoked serials.
    pub revoked: Vec<RevokedInfo>,
}

/// One revoked serial in a CRL.
#[derive(Debug, Clone, Serialize)]
pub struct RevokedInfo {
    /// Serial, upper-case hex.
    pub serial: String,
    /// Revocation date.
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    /// Reason, if given.
    pub reason: Option<String>,
}

/// A private key, described without its secret.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// "ECDSA P-256", "RSA 2048", "Ed25519".
    pub algorithm: String,
    /// SHA-256 of the public key (SubjectPublicKeyInfo DER), colon hex.
    pub public_key_sha256: String,
    /// How the file had it encrypted, when it was (see [`EncryptedKey::describe`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
}

/// An encrypted private key, described without decrypting it.
#[derive(Debug, Clone, Serialize)]
pub struct EncryptedKeyInfo {
    /// How it is encrypted, e.g. "PKCS#8 (PBES2, AES-256-CBC, PBKDF2-SHA256, 2048
    /// iterations)".
    pub encryption: String,
    /// Whether mtls can decrypt it, given its password.
    pub readable: bool,
}

/// A PKCS#12 bundle, described.
#[derive(Debug, Clone, Serialize)]
pub struct P12Info {
    /// Friendly name of the key entry.
    pub alias: Option<String>,
    /// Whether it holds a private key.
    pub has_key: bool,
    /// The key, described.
    pub key: Option<KeyInfo>,
    /// Certificates: the key's chain (leaf first), then any others.
    pub certificates: Vec<CertInfo>,
}

/// A Java keystore, described: every entry, with keys only when the password opened them.
#[derive(Debug, Clone, Serialize)]
pub struct KeystoreInfo {
    /// The store type, "JKS".
    pub format: &'static str,
    /// Whether the password proved the contents unaltered.
    pub integrity: jks::Integrity,
    /// The entries, in file order.
    pub entries: Vec<KeystoreEntryInfo>,
}

/// One keystore entry, described.
#[derive(Debug, Clone, Serialize)]
pub struct KeystoreEntryInfo {
    /// Its alias.
    pub alias: String,
    /// `private_key` or `trusted_certificate` (keytool's PrivateKeyEntry, trustedCertEntry).
    pub entry_type: &'static str,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    /// The key, when the password opened it.
    pub key: Option<KeyInfo>,
    /// Why a key entry's key is not described (no password, a password of its own).
    pub key_note: Option<String>,
    /// A key's chain (leaf first), or the one trusted certificate.
    pub certificates: Vec<CertInfo>,
}

/// A PKCS#7 certificate bundle, described.
#[derive(Debug, Clone, Serialize)]
pub struct Pkcs7Info {
    /// The certificates, in file order.
    pub certificates: Vec<CertInfo>,
    /// The CRLs, if any.
    pub crls: Vec<CrlInfo>,
}

/// Describe everything in `data`. `password` opens PKCS#12 files, keystores and encrypted keys; an
/// encrypted key without it is described by how it is encrypted.
pub fn describe(data: &[u8], what: &str, password: Option<&str>) -> Result<Vec<Object>> {
    describe_at(data, what, password, OffsetDateTime::now_utc())
}

/// [`describe`] as of `now` (for deterministic output).
pub fn describe_at(
    data: &[u8],
    what: &str,
    password: Option<&str>,
    now: OffsetDateTime,
) -> Result<Vec<Object>> {
    if pem::is_pem(data) {
        let sections = pem::sections(data, what)?;
        return sections
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let file = what;
                let what = format!("{what} (section {}, {})", i + 1, s.label);
                match s.label.as_str() {
                    "CERTIFICATE" => {
                        describe_certificate(&s.der, now).map(|c| Object::Certificate(Box::new(c)))
                    }
                    "CERTIFICATE REQUEST" => describe_csr(&s.der, &what).map(Object::Csr),
                    "X509 CRL" => describe_crl(&s.der, &what, now).map(Object::Crl),
                    "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {
                        let text = pem::encode(&s.label, &s.der);
                        describe_key(text.as_bytes(), &what).map(Object::PrivateKey)
                    }
                    other if other.starts_with("ENCRYPTED ") => {
                        // A wrong password names the file, as every other key reader does.
                        describe_encrypted(&EncryptedKey::from_section(&s, &what)?, file, password)
                    }
                    label if pkcs7::is_pem_label(label) => {
                        describe_pkcs7(&s.der, &what, now).map(Object::Pkcs7)
                    }
                    other => Err(Error::malformed(
                        what,
                        format!("unsupported PEM section {other}"),
                    )),
                }
            })
            .collect();
    }
    // Binary: the keystores by their magic numbers, then each DER kind in turn, most
    // common first.
    if jks::looks_like_jks(data) || jks::looks_like_jceks(data) {
        return Ok(vec![Object::Keystore(describe_jks(
            data, what, password, now,
        )?)]);
    }
    if X509Certificate::from_der(data).is_ok_and(|(rest, _)| rest.is_empty()) {
        return Ok(vec![Object::Certificate(Box::new(describe_certificate(
            data, now,
        )?))]);
    }
    if X509CertificationRequest::from_der(data).is_ok_and(|(rest, _)| rest.is_empty()) {
        return Ok(vec![Object::Csr(describe_csr(data, what)?)]);
    }
    if CertificateRevocationList::from_der(data).is_ok_and(|(rest, _)| rest.is_empty()) {
        return Ok(vec![Object::Crl(describe_crl(data, what, now)?)]);
    }
    if p12::looks_like_pkcs12(data) {
        let Some(password) = password else {
            return Err(Error::InvalidInput(format!(
                "{what} is a PKCS#12 file: pass --password-env VAR or --password-file FILE to open it"
            )));
        };
        return Ok(vec![Object::Pkcs12(describe_p12(
            data, what, password, now,
        )?)]);
    }
    if pkcs7::looks_like_pkcs7(data) {
        return Ok(vec![Object::Pkcs7(describe_pkcs7(data, what, now)?)]);
    }
    if let Some(key) = EncryptedKey::find(data, what)? {
        return Ok(vec![describe_encrypted(&key, what, password)?]);
    }
    if let Ok(info) = describe_key(data, what) {
        return Ok(vec![Object::PrivateKey(info)]);
    }
    Err(Error::malformed(
        what,
        "not a certificate, CSR, CRL, private key, PKCS#12, JKS or PKCS#7 file (PEM or DER)",
    ))
}

/// Describe one DER certificate as of `now`.
pub fn describe_certificate(der: &[u8], now: OffsetDateTime) -> Result<CertInfo> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| Error::malformed("certificate", e))?;
    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    let mut info = CertInfo {
        subject: crate::dn::display(cert.subject()),
        issuer: crate::dn::display(cert.issuer()),
        serial: names::serial_hex(cert.raw_serial()),
        not_before,
        not_after,
        validity: validity_words(not_before, not_after, now),
        days_left: (not_after - now).whole_days(),
        subject_alt_names: subject_alt_names(&cert),
        key: key_description(cert.public_key()),
        signature_algorithm: oid_name(&cert.signature_algorithm.algorithm),
        is_ca: false,
        path_len: None,
        key_usage: Vec::new(),
        extended_key_usage: Vec::new(),
        subject_key_id: None,
        authority_key_id: None,
        crl_distribution_points: Vec::new(),
        ocsp_urls: Vec::new(),
        fingerprint_sha256: colon_hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref(),
        ),
        fingerprint_sha1: colon_hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref(),
        ),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => {
                info.is_ca = bc.ca;
                info.path_len = bc.path_len_constraint;
            }
            ParsedExtension::KeyUsage(ku) => {
                const NAMES: [&str; 9] = [
                    "digitalSignature",
                    "nonRepudiation",
                    "keyEncipherment",
                    "dataEncipherment",
                    "keyAgreement",
                    "keyCertSign",
                    "cRLSign",
                    "encipherOnly",
                    "decipherOnly",
                ];
                info.key_usage = NAMES
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| ku.flags & (1 << bit) != 0)
                    .map(|(_, n)| (*n).to_owned())
                    .collect();
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let flags = [
                    (eku.any, "anyExtendedKeyUsage"),
                    (eku.server_auth, "serverAuth"),
                    (eku.client_auth, "clientAuth"),
                    (eku.code_signing, "codeSigning"),
                    (eku.email_protection, "emailProtection"),
                    (eku.time_stamping, "timeStamping"),
                    (eku.ocsp_signing, "OCSPSigning"),
                ];
                info.extended_key_usage = flags
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| (*n).to_owned())
                    .chain(eku.other.iter().map(|o| o.to_id_string()))
                    .collect();
            }
            ParsedExtension::SubjectKeyIdentifier(id) => {
                info.subject_key_id = Some(colon_hex(id.0))
            }
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                info.authority_key_id = aki.key_identifier.as_ref().map(|id| colon_hex(id.0));
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        info.crl_distribution_points
                            .extend(names.iter().map(url_or_name));
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                info.ocsp_urls = aia
                    .iter()
                    .filter(|d| {
                        d.access_method
                            == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP
                    })
                    .map(|d| url_or_name(&d.access_location))
                    .collect();
            }
            _ => {}
        }
    }
    Ok(info)
}

fn describe_csr(der: &[u8], what: &str) -> Result<CsrInfo> {
    let (_, csr) =
        X509CertificationRequest::from_der(der).map_err(|e| Error::malformed(what, e))?;
    let mut sans = Vec::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            sans.extend(san.general_names.iter().map(general_name));
        }
    }
    Ok(CsrInfo {
        subject: crate::dn::display(&csr.certification_request_info.subject),
        subject_alt_names: sans,
        key: key_description(&csr.certification_request_info.subject_pki),
        signature_valid: csr.verify_signature().is_ok(),
    })
}

fn describe_crl(der: &[u8], what: &str, now: OffsetDateTime) -> Result<CrlInfo> {
    let (_, crl) =
        CertificateRevocationList::from_der(der).map_err(|e| Error::malformed(what, e))?;
    let next_update = crl.next_update().map(|t| t.to_datetime());
    let freshness = match next_update {
        Some(next) if next >= now => format!("next update {}", relative(next, now)),
        Some(next) => format!("stale: its next update was due {}", relative(next, now)),
        None => "no next update".into(),
    };
    let revoked = crl
        .iter_revoked_certificates()
        .map(|r| RevokedInfo {
            serial: names::serial_hex(r.raw_serial()),
            revoked_at: r.revocation_date.to_datetime(),
            reason: r.reason_code().map(|(_, code)| {
                Reason::from_code(code.0).map_or_else(|| code.0.to_string(), |r| r.to_string())
            }),
        })
        .collect();
    Ok(CrlInfo {
        issuer: crate::dn::display(crl.issuer()),
        this_update: crl.last_update().to_datetime(),
        next_update,
        freshness,
        crl_number: crl.crl_number().map(|n| n.to_string()),
        revoked,
    })
}

fn describe_key(data: &[u8], what: &str) -> Result<KeyInfo> {
    describe_key_pair(&crate::key::load(data, what)?)
}

/// An encrypted key: described in full with the password, by its encryption without.
fn describe_encrypted(key: &EncryptedKey, what: &str, password: Option<&str>) -> Result<Object> {
    let Some(password) = password else {
        return Ok(Object::EncryptedKey(EncryptedKeyInfo {
            encryption: key.describe(),
            readable: key.is_supported(),
        }));
    };
    let der = key.decrypt(&[Password::new(password)], what)?;
    let mut info = describe_key_pair(&crate::key::from_der(&der, what)?)?;
    info.encryption = Some(key.describe());
    Ok(Object::PrivateKey(info))
}

fn describe_key_pair(key: &rcgen::KeyPair) -> Result<KeyInfo> {
    let spki = crate::key::public_key_info(key);
    let algorithm = match SubjectPublicKeyInfo::from_der(&spki) {
        Ok((_, parsed)) => key_description(&parsed),
        Err(_) => crate::key::describe(key).to_owned(),
    };
    Ok(KeyInfo {
        algorithm,
        public_key_sha256: colon_hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki).as_ref(),
        ),
        encryption: None,
    })
}

fn describe_p12(data: &[u8], what: &str, password: &str, now: OffsetDateTime) -> Result<P12Info> {
    let contents = p12::import(data, password, what)?;
    let key = match &contents.key_pkcs8 {
        Some(k) => Some(describe_key(k, what)?),
        None => None,
    };
    let certificates = contents
        .chain
        .iter()
        .chain(&contents.other_certs)
        .map(|c| describe_certificate(c, now))
        .collect::<Result<_>>()?;
    Ok(P12Info {
        alias: contents.alias,
        has_key: key.is_some(),
        key,
        certificates,
    })
}

fn describe_jks(
    data: &[u8],
    what: &str,
    password: Option<&str>,
    now: OffsetDateTime,
) -> Result<KeystoreInfo> {
    let store = jks::read(data, password, what)?;
    let entries = store
        .entries
        .iter()
        .map(|entry| {
            let (key, key_note) = match (entry.is_key(), password) {
                (false, _) => (None, None),
                (true, None) => (
                    None,
                    Some("encrypted: the keystore password opens it".into()),
                ),
                (true, Some(password)) => {
                    match entry
                        .key(password, what)
                        .and_then(|k| describe_key(&k, what))
                    {
                        Ok(info) => (Some(info), None),
                        Err(Error::KeyEntryPassword { .. }) => (
                            None,
                            Some("protected by a password other than the keystore's".into()),
                        ),
                        Err(e) => (None, Some(format!("not readable: {e}"))),
                    }
                }
            };
            Ok(KeystoreEntryInfo {
                alias: entry.alias.clone(),
                entry_type: if entry.is_key() {
                    "private_key"
                } else {
                    "trusted_certificate"
                },
                created: entry.created,
                key,
                key_note,
                certificates: entry
                    .certificates
                    .iter()
                    .map(|c| describe_certificate(c, now))
                    .collect::<Result<_>>()?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(KeystoreInfo {
        format: "JKS",
        integrity: store.integrity,
        entries,
    })
}

fn describe_pkcs7(der: &[u8], what: &str, now: OffsetDateTime) -> Result<Pkcs7Info> {
    let bundle = pkcs7::parse(der, what)?;
    Ok(Pkcs7Info {
        certificates: bundle
            .certificates
            .iter()
            .map(|c| describe_certificate(c, now))
            .collect::<Result<_>>()?,
        crls: bundle
            .crls
            .iter()
            .map(|c| describe_crl(c, what, now))
            .collect::<Result<_>>()?,
    })
}

/// The subject alternative names of a certificate, as openssl prints them (`DNS:x`, `IP:y`).
pub fn subject_alt_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value.general_names.iter().map(general_name).collect()
}

/// One general name in openssl's spelling.
pub fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::IPAddress(b) => match b.len() {
            4 => <[u8; 4]>::try_from(*b)
                .map(|a| format!("IP:{}", std::net::IpAddr::from(a)))
                .unwrap_or_else(|_| "IP:?".into()),
            16 => <[u8; 16]>::try_from(*b)
                .map(|a| format!("IP:{}", std::net::IpAddr::from(a)))
                .unwrap_or_else(|_| "IP:?".into()),
            _ => format!("IP:{}", hex::encode(b)),
        },
        GeneralName::DirectoryName(n) => format!("DirName:{n}"),
        other => format!("{other:?}"),
    }
}

/// "ECDSA P-256", "RSA 2048", "Ed25519" for a public key.
pub fn key_description(spki: &SubjectPublicKeyInfo<'_>) -> String {
    use x509_parser::oid_registry as oids;
    let alg = &spki.algorithm.algorithm;
    if *alg == oids::OID_SIG_ED25519 {
        return "Ed25519".into();
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c == oids::OID_EC_P256 => "ECDSA P-256".into(),
                Some(c) if c == oids::OID_NIST_EC_P384 => "ECDSA P-384".into(),
                Some(c) if c == oids::OID_NIST_EC_P521 => "ECDSA P-521".into(),
                Some(c) => format!("EC {}", c.to_id_string()),
                None => "EC".into(),
            }
        }
        _ => oid_name(alg),
    }
}

/// "expires in 364 days" and friends.
pub fn validity_words(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
) -> String {
    if now < not_before {
        format!("not valid yet: starts {}", relative(not_before, now))
    } else if now > not_after {
        format!("expired {}", relative(not_after, now))
    } else {
        format!("expires {}", relative(not_after, now))
    }
}

/// "in 3 days", "2 hours ago", "in 45 minutes".
pub fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = t - now;
    let (future, d) = if d.is_negative() {
        (false, -d)
    } else {
        (true, d)
    };
    let amount = if d.whole_days() >= 2 {
        format!("{} days", d.whole_days())
    } else if d.whole_hours() >= 2 {
        format!("{} hours", d.whole_hours())
    } else {
        format!("{} minutes", d.whole_minutes())
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

fn url_or_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::URI(u) => (*u).to_owned(),
        other => general_name(other),
    }
}

fn oid_name(oid: &x509_parser::oid_registry::Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_owned)
        .unwrap_or_else(|_| oid.to_id_string())
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Certificate(c) => write!(f, "Certificate\n{c}"),
            Object::Csr(c) => {
                writeln!(f, "Certificate signing request")?;
                writeln!(f, "  Subject:      {}", c.subject)?;
                if !c.subject_alt_names.is_empty() {
                    writeln!(f, "  SANs:         {}", c.subject_alt_names.join(", "))?;
                }
                writeln!(f, "  Key:          {}", c.key)?;
                let sig = if c.signature_valid {
                    "valid"
                } else {
                    "INVALID (altered or forged)"
                };
                writeln!(f, "  Signature:    {sig}")
            }
            Object::Crl(c) => write!(f, "Certificate revocation list\n{c}"),
            Object::PrivateKey(k) => {
                writeln!(f, "Private key")?;
                writeln!(f, "  Algorithm:    {}", k.algorithm)?;
                if let Some(encryption) = &k.encryption {
                    writeln!(f, "  Encrypted:    {encryption}")?;
                }
                writeln!(f, "  Public SHA-256: {}", k.public_key_sha256)
            }
            Object::EncryptedKey(k) => {
                writeln!(f, "Encrypted private key")?;
                writeln!(f, "  Encrypted:    {}", k.encryption)?;
                if k.readable {
                    writeln!(
                        f,
                        "  Give --password-file FILE or --password-env VAR to read it."
                    )?;
                }
                Ok(())
            }
            Object::Pkcs12(p) => {
                writeln!(f, "PKCS#12 bundle")?;
                writeln!(f, "  Alias:        {}", p.alias.as_deref().unwrap_or("-"))?;
                match &p.key {
                    Some(k) => writeln!(
                        f,
                        "  Private key:  {} (public SHA-256 {})",
                        k.algorithm, k.public_key_sha256
                    )?,
                    None => writeln!(f, "  Private key:  none")?,
                }
                for (i, c) in p.certificates.iter().enumerate() {
                    write!(f, "  Certificate #{}\n{}", i + 1, indent(&c.to_string()))?;
                }
                Ok(())
            }
            Object::Keystore(k) => {
                let count = k.entries.len();
                let plural = if count == 1 { "entry" } else { "entries" };
                writeln!(f, "Java keystore ({}), {count} {plural}", k.format)?;
                match k.integrity {
                    jks::Integrity::Verified => {
                        writeln!(f, "  Integrity:    verified with the password")?
                    }
                    jks::Integrity::NotChecked => writeln!(
                        f,
                        "  Integrity:    NOT checked: without the password the certificates \
                         below could have been altered (pass --password-env VAR or \
                         --password-file FILE to check them and to see the keys)"
                    )?,
                }
                for e in &k.entries {
                    let kind = if e.entry_type == "private_key" {
                        "private key"
                    } else {
                        "trusted certificate"
                    };
                    let created = e
                        .created
                        .map(|t| format!(", created {}", human_time(t)))
                        .unwrap_or_default();
                    writeln!(f, "  Entry {:?}: {kind}{created}", e.alias)?;
                    match (&e.key, &e.key_note) {
                        (Some(key), _) => writeln!(
                            f,
                            "    Private key:  {} (public SHA-256 {})",
                            key.algorithm, key.public_key_sha256
                        )?,
                        (None, Some(note)) => writeln!(f, "    Private key:  {note}")?,
                        (None, None) => {}
                    }
                    for (i, c) in e.certificates.iter().enumerate() {
                        write!(
                            f,
                            "    Certificate #{}\n{}",
                            i + 1,
                            indent(&indent(&c.to_string()))
                        )?;
                    }
                }
                Ok(())
            }
            Object::Pkcs7(p) => {
                writeln!(
                    f,
                    "PKCS#7 bundle: {} certificates, {} CRLs",
                    p.certificates.len(),
                    p.crls.len()
                )?;
                for (i, c) in p.certificates.iter().enumerate() {
                    write!(f, "  Certificate #{}\n{}", i + 1, indent(&c.to_string()))?;
                }
                for (i, c) in p.crls.iter().enumerate() {
                    write!(f, "  CRL #{}\n{}", i + 1, indent(&c.to_string()))?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for CrlInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  Issuer:       {}", self.issuer)?;
        if let Some(n) = &self.crl_number {
            writeln!(f, "  CRL number:   {n}")?;
        }
        writeln!(f, "  Updated:      {}", human_time(self.this_update))?;
        writeln!(
            f,
            "  Next update:  {} ({})",
            self.next_update
                .map(human_time)
                .unwrap_or_else(|| "-".into()),
            self.freshness
        )?;
        writeln!(f, "  Revoked:      {}", self.revoked.len())?;
        for r in &self.revoked {
            writeln!(
                f,
                "    {}  {}  {}",
                r.serial,
                human_time(r.revoked_at),
                r.reason.as_deref().unwrap_or("-")
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for CertInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  Subject:      {}", self.subject)?;
        writeln!(
            f,
            "  Issuer:       {}{}",
            self.issuer,
            if self.self_signed {
                " (self-signed)"
            } else {
                ""
            }
        )?;
        writeln!(f, "  Serial:       {}", self.serial)?;
        writeln!(
            f,
            "  Valid:        {} to {} ({})",
            human_time(self.not_before),
            human_time(self.not_after),
            self.validity
        )?;
        if !self.subject_alt_names.is_empty() {
            writeln!(f, "  SANs:         {}", self.subject_alt_names.join(", "))?;
        }
        writeln!(f, "  Key:          {}", self.key)?;
        writeln!(f, "  Signature:    {}", self.signature_algorithm)?;
        let ca = match (self.is_ca, self.path_len) {
            (true, Some(n)) => format!("yes, path length {n}"),
            (true, None) => "yes".into(),
            (false, _) => "no".into(),
        };
        writeln!(f, "  CA:           {ca}")?;
        if !self.key_usage.is_empty() {
            writeln!(f, "  Key usage:    {}", self.key_usage.join(", "))?;
        }
        if !self.extended_key_usage.is_empty() {
            writeln!(f, "  Ext. usage:   {}", self.extended_key_usage.join(", "))?;
        }
        if let Some(ski) = &self.subject_key_id {
            writeln!(f, "  SKI:          {ski}")?;
        }
        if let Some(aki) = &self.authority_key_id {
            writeln!(f, "  AKI:          {aki}")?;
        }
        if !self.crl_distribution_points.is_empty() {
            writeln!(
                f,
                "  CRL:          {}",
                self.crl_distribution_points.join(", ")
            )?;
        }
        if !self.ocsp_urls.is_empty() {
            writeln!(f, "  OCSP:         {}", self.ocsp_urls.join(", "))?;
        }
        writeln!(f, "  SHA-256:      {}", self.fingerprint_sha256)?;
        writeln!(f, "  SHA-1:        {}", self.fingerprint_sha1)
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{LeafOptions, RevokeTarget};
    use crate::testing::Fixture;
    use crate::{Profile, Reason};

    fn ca() -> Fixture {
        Fixture::new("Show CA", false)
    }

    fn issue(f: &mut Fixture, name: &str, profile: Profile, sans: &[&str]) {
        let leaf = LeafOptions {
            profile,
            days: Some(5),
            not_before: None,
            not_after: None,
            crl_urls: vec!["http://crl.example/ca.crl".into()],
            ocsp_url: Some("http://ocsp.example".into()),
        };
        f.issue_with(name, sans, leaf);
    }

    #[test]
    fn a_certificate_in_full() {
        let mut f = ca();
        issue(&mut f, "api", Profile::Server, &["api.local", "10.0.0.5"]);
        let pem_text = std::fs::read(f.ca.layout().cert("api")).unwrap();
        let objects = describe(&pem_text, "api.crt", None).unwrap();
        let [Object::Certificate(c)] = &objects[..] else {
            panic!("{objects:?}")
        };
        assert_eq!(c.subject, "CN=api");
        assert_eq!(c.issuer, "CN=Show CA");
        assert_eq!(c.subject_alt_names, ["DNS:api.local", "IP:10.0.0.5"]);
        assert_eq!(c.extended_key_usage, ["serverAuth"]);
        assert_eq!(c.key_usage, ["digitalSignature"]);
        assert_eq!(c.key, "ECDSA P-256");
        assert_eq!(c.signature_algorithm, "ecdsa-with-SHA256");
        assert!(!c.is_ca && !c.self_signed);
        assert_eq!(c.crl_distribution_points, ["http://crl.example/ca.crl"]);
        assert_eq!(c.ocsp_urls, ["http://ocsp.example"]);
        assert_eq!(c.fingerprint_sha256.len(), 32 * 3 - 1);
        assert!(c.validity.starts_with("expires in"), "{}", c.validity);
        let text = objects[0].to_string();
        assert!(
            text.contains("SANs:         DNS:api.local, IP:10.0.0.5"),
            "{text}"
        );

        let root = std::fs::read(f.ca.layout().ca_cert()).unwrap();
        let [Object::Certificate(r)] = &describe(&root, "ca.crt", None).unwrap()[..] else {
            panic!()
        };
        assert!(r.is_ca && r.self_signed);
        assert_eq!(r.key_usage, ["digitalSignature", "keyCertSign", "cRLSign"]);
    }

    #[test]
    fn der_and_bundles_and_crls() {
        let mut f = ca();
        issue(&mut f, "alice", Profile::Client, &[]);
        let der = f.ca.root().to_vec();
        assert!(matches!(
            &describe(&der, "ca.der", None).unwrap()[..],
            [Object::Certificate(_)]
        ));

        let mut bundle = std::fs::read(f.ca.layout().cert("alice")).unwrap();
        bundle.extend(std::fs::read(f.ca.layout().key("alice")).unwrap());
        let objects = describe(&bundle, "bundle.pem", None).unwrap();
        assert!(matches!(
            &objects[..],
            [Object::Certificate(_), Object::PrivateKey(_)]
        ));
        let key_text = format!(
            "{}{}",
            objects[1],
            serde_json::to_string(&objects[1]).unwrap()
        );
        let secret = std::fs::read_to_string(f.ca.layout().key("alice")).unwrap();
        let body = secret.lines().nth(1).unwrap();
        assert!(
            !key_text.contains(body),
            "private key material leaked: {key_text}"
        );

        let (entry, _) =
            f.ca.revoke(&RevokeTarget::Name("alice".into()), Reason::Superseded)
                .unwrap();
        let crl = std::fs::read(f.ca.layout().crl()).unwrap();
        let [Object::Crl(c)] = &describe(&crl, "crl.pem", None).unwrap()[..] else {
            panic!()
        };
        assert_eq!(c.revoked.len(), 1);
        assert_eq!(c.revoked[0].serial, entry.serial);
        assert_eq!(c.revoked[0].reason.as_deref(), Some("superseded"));
        assert!(c.freshness.starts_with("next update in"), "{}", c.freshness);
    }

    #[test]
    fn p12_needs_a_password_and_garbage_is_named() {
        let mut f = ca();
        issue(&mut f, "bob", Profile::Client, &[]);
        let (chain, key) = f.ca.credentials("bob").unwrap();
        let options = p12::Pkcs12Options {
            legacy: false,
            alias: "bob".into(),
        };
        let credentials = crate::credentials::Credentials::new(&key, "k", chain, "c").unwrap();
        let bundle = p12::export(&credentials, "pw", &options).unwrap();
        let err = describe(&bundle, "bob.p12", None).unwrap_err().to_string();
        assert!(err.contains("--password-env"), "{err}");
        let [Object::Pkcs12(p)] = &describe(&bundle, "bob.p12", Some("pw")).unwrap()[..] else {
            panic!()
        };
        assert!(p.has_key);
        assert_eq!(p.certificates[0].subject, "CN=bob");
        let err = describe(b"\x00\x01garbage", "g.bin", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("g.bin") && err.contains("not a certificate"),
            "{err}"
        );
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = time::macros::datetime!(2026-11-22 12:00 UTC);
        assert_eq!(
            relative(now + time::Duration::days(364), now),
            "in 364 days"
        );
        assert_eq!(relative(now - time::Duration::days(3), now), "3 days ago");
        assert_eq!(relative(now + time::Duration::hours(5), now), "in 5 hours");
    }
}

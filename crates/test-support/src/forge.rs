//! Certificates and CRLs that `mtls pki` deliberately will not make — an already expired
//! client certificate, a CRL from the root that revokes an intermediate — signed with a
//! test CA's real key, so the gateway's refusals can be tested against real artefacts.

use std::path::Path;

use rcgen::{
    CertificateParams, CertificateRevocationListParams, DistinguishedName, ExtendedKeyUsagePurpose,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The rcgen types `client_with_subject` takes, for tests that do not depend on rcgen.
pub use rcgen::{
    DnType, DnValue,
    string::{BmpString, Ia5String, PrintableString, TeletexString, UniversalString},
};

fn issuer(cert: &Path, key: &Path) -> Issuer<'static, KeyPair> {
    let key = KeyPair::from_pem(&std::fs::read_to_string(key).expect("reading the CA key"))
        .expect("parsing the CA key");
    Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(cert).expect("reading the CA certificate"),
        key,
    )
    .expect("using the CA certificate as issuer")
}

/// The serial number (big-endian bytes) of the first certificate in a PEM file.
pub fn serial_of(cert: &Path) -> Vec<u8> {
    let data = std::fs::read(cert).expect("reading a certificate");
    let der = mtls_pki::pem::certificates(&data, "certificate").expect("a certificate")[0].clone();
    let (_, parsed) = X509Certificate::from_der(der.as_ref()).expect("parsing a certificate");
    parsed.raw_serial().to_vec()
}

/// A CRL signed by the CA in `cert`/`key` that revokes `serials` (empty: an empty CRL).
pub fn crl_pem(cert: &Path, key: &Path, serials: &[Vec<u8>]) -> String {
    crl_pem_at(
        cert,
        key,
        serials,
        OffsetDateTime::now_utc() - Duration::minutes(5),
    )
}

/// [`crl_pem`] with its thisUpdate at `this_update` (nextUpdate a week after now).
pub fn crl_pem_at(
    cert: &Path,
    key: &Path,
    serials: &[Vec<u8>],
    this_update: OffsetDateTime,
) -> String {
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update,
        next_update: now + Duration::days(7),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(s),
                revocation_time: now - Duration::minutes(1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(&issuer(cert, key))
        .expect("signing a CRL")
        .pem()
        .expect("encoding a CRL")
}

/// A client certificate for `cn`, signed by the CA in `cert`/`key`, that expired a day ago.
/// Returns (certificate PEM, key PEM).
pub fn expired_client(cert: &Path, key: &Path, cn: &str) -> (String, String) {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.not_before = now - Duration::days(30);
    params.not_after = now - Duration::days(1);
    params.serial_number = Some(SerialNumber::from(0x5eed_u64));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().expect("generating a key");
    let signed = params
        .signed_by(&leaf_key, &issuer(cert, key))
        .expect("signing the expired certificate");
    (signed.pem(), leaf_key.serialize_pem())
}

/// A server certificate for `cn` without any subjectAltName extension (what old CAs and
/// `openssl req` without `-addext` make), signed by the CA in `cert`/`key`: only its
/// subject CN names the server. Returns (certificate PEM, key PEM).
pub fn server_cn_only(cert: &Path, key: &Path, cn: &str) -> (String, String) {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(1);
    params.serial_number = Some(SerialNumber::from(0xc0ff_ee01_u64));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().expect("generating a key");
    let signed = params
        .signed_by(&leaf_key, &issuer(cert, key))
        .expect("signing the CN-only certificate");
    (signed.pem(), leaf_key.serialize_pem())
}

/// A server certificate for `sans` (DNS names or IP addresses; the first is also the CN),
/// signed by the CA in `cert`/`key`, that expired `days_ago` days ago. Returns (certificate
/// PEM, key PEM).
pub fn expired_server(cert: &Path, key: &Path, sans: &[&str], days_ago: i64) -> (String, String) {
    let now = OffsetDateTime::now_utc();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .expect("valid subject alternative names");
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        sans.first().copied().unwrap_or("expired.test"),
    );
    params.distinguished_name = dn;
    params.not_before = now - Duration::days(days_ago + 30);
    params.not_after = now - Duration::days(days_ago);
    params.serial_number = Some(SerialNumber::from(0xdead_5e4e_u64));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().expect("generating a key");
    let signed = params
        .signed_by(&leaf_key, &issuer(cert, key))
        .expect("signing the expired server certificate");
    (signed.pem(), leaf_key.serialize_pem())
}

/// A client certificate whose subject is exactly `subject` (one attribute per RDN, in this
/// order, with the string types given), signed by the CA in `cert`/`key`: the odd subjects
/// (`,` `+` `"` `\` in values, control characters, leading `#`, unknown OIDs) that
/// `mtls pki` refuses to make, for the identity and DN-printing tests. Returns
/// (certificate PEM, key PEM).
pub fn client_with_subject(
    cert: &Path,
    key: &Path,
    subject: &[(DnType, DnValue)],
) -> (String, String) {
    let params = odd_subject_params(subject);
    let leaf_key = KeyPair::generate().expect("generating a key");
    let signed = params
        .signed_by(&leaf_key, &issuer(cert, key))
        .expect("signing the odd-subject certificate");
    (signed.pem(), leaf_key.serialize_pem())
}

/// A self-signed client certificate whose subject is exactly `subject`, as a stranger
/// would present: the gateway refuses it and logs its subject. Returns (certificate PEM,
/// key PEM).
pub fn self_signed_with_subject(subject: &[(DnType, DnValue)]) -> (String, String) {
    let params = odd_subject_params(subject);
    let leaf_key = KeyPair::generate().expect("generating a key");
    let signed = params
        .self_signed(&leaf_key)
        .expect("self-signing the odd-subject certificate");
    (signed.pem(), leaf_key.serialize_pem())
}

fn odd_subject_params(subject: &[(DnType, DnValue)]) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for (ty, value) in subject {
        dn.push(ty.clone(), value.clone());
    }
    params.distinguished_name = dn;
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(1);
    params.serial_number = Some(SerialNumber::from(0x0dd5_0b1e_u64));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params
}

/// What is wrong (or not) with a forged client chain (see [`client_chain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// Nothing: the chain verifies.
    None,
    /// The leaf expired yesterday.
    Expired,
    /// The leaf becomes valid tomorrow.
    NotYetValid,
    /// The leaf is for serverAuth only.
    ServerOnly,
    /// The leaf is a CA certificate (basicConstraints CA:TRUE).
    CaLeaf,
    /// The intermediate is not a CA (no basicConstraints).
    IntermediateNotCa,
    /// The intermediate's keyUsage lacks keyCertSign.
    IntermediateNoCertSign,
    /// The root's pathLenConstraint is 0, and there is an intermediate below it.
    PathLength,
    /// The intermediate is for serverAuth only (extended key usage through the chain).
    IntermediateServerOnly,
    /// The leaf is signed by another CA with the root's name.
    Impostor,
    /// The leaf's keyUsage is dataEncipherment only (no TLS usage).
    LeafKeyUsage,
    /// The root constrains names to `.example.test`; the leaf's email SAN is outside.
    NameConstraints,
}

impl Defect {
    /// Every defect.
    pub const ALL: [Defect; 12] = [
        Defect::None,
        Defect::Expired,
        Defect::NotYetValid,
        Defect::ServerOnly,
        Defect::CaLeaf,
        Defect::IntermediateNotCa,
        Defect::IntermediateNoCertSign,
        Defect::PathLength,
        Defect::IntermediateServerOnly,
        Defect::Impostor,
        Defect::LeafKeyUsage,
        Defect::NameConstraints,
    ];
}

/// A forged root and a client chain below it (leaf PEM + intermediate PEM, leaf key PEM),
/// with `defect` and `intermediate` chosen by the caller: a root per call, so the caller
/// trusts `root` (PEM) for exactly this chain.
#[derive(Debug, Clone)]
pub struct ForgedChain {
    /// The root CA certificate (PEM), to trust.
    pub root: String,
    /// Leaf then intermediates (PEM).
    pub chain: String,
    /// The leaf's key (PEM).
    pub key: String,
}

/// Forge a client chain: root (`CN=Forge Root`) → optional intermediate → leaf
/// (`CN=forged`, email SAN `forged@example.test` unless the defect says otherwise).
pub fn client_chain(defect: Defect, intermediate: bool) -> ForgedChain {
    use rcgen::{BasicConstraints, GeneralSubtree, IsCa, NameConstraints, SanType};
    let now = OffsetDateTime::now_utc();
    let name = |cn: &str| {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn
    };
    let ca_params = |cn: &str, path_len: Option<u8>| {
        let mut p = CertificateParams::default();
        p.distinguished_name = name(cn);
        p.is_ca = IsCa::Ca(match path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = now - Duration::days(1);
        p.not_after = now + Duration::days(30);
        p.use_authority_key_identifier_extension = true;
        p
    };
    let root_key = KeyPair::generate().expect("a key");
    let mut root_params = ca_params("Forge Root", (defect == Defect::PathLength).then_some(0));
    if defect == Defect::NameConstraints {
        root_params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::Rfc822Name("example.test".into())],
            excluded_subtrees: Vec::new(),
        });
    }
    let root = root_params.self_signed(&root_key).expect("root");
    let root_issuer = Issuer::new(root_params, root_key);

    let mut intermediate_pem = String::new();
    let ica_key = KeyPair::generate().expect("a key");
    let ica_issuer = if intermediate || defect == Defect::PathLength {
        let mut p = ca_params("Forge Intermediate", None);
        match defect {
            Defect::IntermediateNotCa => p.is_ca = IsCa::NoCa,
            Defect::IntermediateNoCertSign => {
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature]
            }
            Defect::IntermediateServerOnly => {
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
            _ => {}
        }
        let cert = p.signed_by(&ica_key, &root_issuer).expect("intermediate");
        intermediate_pem = cert.pem();
        Some(Issuer::new(p, ica_key))
    } else {
        None
    };

    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = name("forged");
    leaf.subject_alt_names = vec![SanType::Rfc822Name(
        if defect == Defect::NameConstraints {
            "forged@elsewhere.test"
        } else {
            "forged@example.test"
        }
        .try_into()
        .expect("an email"),
    )];
    leaf.not_before = now - Duration::days(1);
    leaf.not_after = now + Duration::days(7);
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf.use_authority_key_identifier_extension = true;
    match defect {
        Defect::Expired => {
            leaf.not_before = now - Duration::days(10);
            leaf.not_after = now - Duration::days(1);
        }
        Defect::NotYetValid => {
            leaf.not_before = now + Duration::days(1);
        }
        Defect::ServerOnly => leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth],
        Defect::CaLeaf => {
            leaf.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            leaf.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyCertSign,
            ];
        }
        Defect::LeafKeyUsage => leaf.key_usages = vec![KeyUsagePurpose::DataEncipherment],
        _ => {}
    }
    let leaf_key = KeyPair::generate().expect("a key");
    let leaf_cert = if defect == Defect::Impostor {
        let impostor_key = KeyPair::generate().expect("a key");
        let impostor = Issuer::new(ca_params("Forge Root", None), impostor_key);
        leaf.signed_by(&leaf_key, &impostor)
    } else {
        match &ica_issuer {
            Some(ica) => leaf.signed_by(&leaf_key, ica),
            None => leaf.signed_by(&leaf_key, &root_issuer),
        }
    }
    .expect("leaf");
    ForgedChain {
        root: root.pem(),
        chain: format!("{}{intermediate_pem}", leaf_cert.pem()),
        key: leaf_key.serialize_pem(),
    }
}

/// A self-signed CA certificate (`CN=Expired CA`) that expired a day ago. Returns
/// (certificate PEM, key PEM).
pub fn expired_ca() -> (String, String) {
    use rcgen::{BasicConstraints, IsCa};
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Expired CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::days(30);
    params.not_after = now - Duration::days(1);
    let key = KeyPair::generate().expect("generating a key");
    let cert = params.self_signed(&key).expect("self-signing");
    (cert.pem(), key.serialize_pem())
}

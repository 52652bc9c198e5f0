//! Signatures and keys: which are accepted, which are weak, and the check itself.
//!
//! Accepted, as the CA/Browser Forum baseline requirements and webpki accept them:
//! RSA PKCS#1 v1.5 and RSA-PSS with SHA-256/384/512 and keys of 2048 to 8192 bits, ECDSA
//! on P-256, P-384 and P-521 with SHA-256/384/512, and Ed25519. Refused with a sentence
//! that says which: SHA-1 and MD5 signatures ([`Check::WeakSignature`]); RSA keys under
//! 2048 bits, DSA keys and curves such as P-192 ([`Check::WeakKey`]); anything else
//! ([`Check::UnsupportedAlgorithm`]). The verification is aws-lc-rs, the same code rustls
//! and webpki run.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::der_parser::asn1_rs::Any;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_NIST_HASH_SHA256, OID_NIST_HASH_SHA384, OID_NIST_HASH_SHA512, OID_PKCS1_MD5WITHRSAENC,
    OID_PKCS1_RSAENCRYPTION, OID_PKCS1_RSASSAPSS, OID_PKCS1_SHA1WITHRSA, OID_PKCS1_SHA256WITHRSA,
    OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA256,
    OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512, OID_SIG_ED25519, Oid,
};
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo};
use x509_parser::public_key::PublicKey;
use x509_parser::signature_algorithm::SignatureAlgorithm;
use x509_parser::x509::AlgorithmIdentifier;

use crate::Check;

/// The smallest RSA modulus accepted, in bits.
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// A key type and size, for sentences ("RSA 1024", "EC P-192").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa(usize),
    P256,
    P384,
    P521,
    Ed25519,
}

/// Whether a certificate's key is acceptable: the error is the check and the sentence's
/// tail ("an RSA key of 1024 bits (at least 2048 are required)").
pub(crate) fn key_kind(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyKind, (Check, String)> {
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err((Check::Malformed, "an RSA key that does not parse".into()));
        };
        let bits = rsa.key_size();
        if bits < MIN_RSA_BITS {
            return Err((
                Check::WeakKey,
                format!("an RSA key of {bits} bits (at least {MIN_RSA_BITS} are required)"),
            ));
        }
        if bits > 8192 {
            return Err((
                Check::UnsupportedAlgorithm,
                format!("an RSA key of {bits} bits (at most 8192 are supported)"),
            ));
        }
        return Ok(KeyKind::Rsa(bits));
    }
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => Ok(KeyKind::P256),
            Some(c) if c == OID_NIST_EC_P384 => Ok(KeyKind::P384),
            Some(c) if c == OID_NIST_EC_P521 => Ok(KeyKind::P521),
            Some(c) => Err((
                Check::WeakKey,
                format!(
                    "an EC key on the curve {} (only P-256, P-384 and P-521 are accepted)",
                    curve_name(&c)
                ),
            )),
            None => Err((
                Check::UnsupportedAlgorithm,
                "an EC key without a named curve (explicit curve parameters are not accepted)"
                    .into(),
            )),
        };
    }
    if *algorithm == OID_SIG_ED25519 {
        return Ok(KeyKind::Ed25519);
    }
    if algorithm.to_id_string() == "1.2.840.10040.4.1" {
        return Err((
            Check::WeakKey,
            "a DSA key (DSA is not accepted; use ECDSA P-256 or RSA 2048+)".into(),
        ));
    }
    Err((
        Check::UnsupportedAlgorithm,
        format!("a key of type {} (not supported)", algorithm.to_id_string()),
    ))
}

fn curve_name(oid: &Oid<'_>) -> String {
    match oid.to_id_string().as_str() {
        "1.2.840.10045.3.1.1" => "P-192".to_owned(),
        "1.3.132.0.33" => "P-224".to_owned(),
        "1.3.132.0.10" => "secp256k1".to_owned(),
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1".to_owned(),
        other => other.to_owned(),
    }
}

/// Verify `signature` over `signed` by the key `spki` with `algorithm`. The error is the
/// failed check and a sentence tail.
pub(crate) fn verify(
    spki: &SubjectPublicKeyInfo<'_>,
    algorithm: &AlgorithmIdentifier<'_>,
    signature: &[u8],
    signed: &[u8],
) -> Result<(), (Check, String)> {
    let kind = key_kind(spki)?;
    let scheme = scheme(algorithm, kind)?;
    UnparsedPublicKey::new(scheme, spki.subject_public_key.data.as_ref())
        .verify(signed, signature)
        .map_err(|_| {
            (
                Check::BadSignature,
                "the signature does not verify with the issuer's key".into(),
            )
        })
}

/// The aws-lc-rs algorithm for a signature algorithm made with a key of `kind`.
fn scheme(
    algorithm: &AlgorithmIdentifier<'_>,
    kind: KeyKind,
) -> Result<&'static dyn VerificationAlgorithm, (Check, String)> {
    let oid = &algorithm.algorithm;
    let weak = |name: &str| {
        Err((
            Check::WeakSignature,
            format!(
                "a signature made with {name}, which is no longer accepted (sign with SHA-256)"
            ),
        ))
    };
    let mismatch = || {
        Err((
            Check::BadSignature,
            format!(
                "the signature algorithm {} does not fit the issuer's {kind:?} key",
                algorithm_name(oid)
            ),
        ))
    };
    let rsa = matches!(kind, KeyKind::Rsa(_));
    if *oid == OID_PKCS1_SHA256WITHRSA
        || *oid == OID_PKCS1_SHA384WITHRSA
        || *oid == OID_PKCS1_SHA512WITHRSA
    {
        if !rsa {
            return mismatch();
        }
        // RFC 4055: the parameters are NULL (absent is tolerated, as OpenSSL does).
        if !null_or_absent(algorithm.parameters.as_ref()) {
            return Err((
                Check::Malformed,
                "an RSA signature algorithm with parameters other than NULL".into(),
            ));
        }
        return Ok(if *oid == OID_PKCS1_SHA256WITHRSA {
            &sig::RSA_PKCS1_2048_8192_SHA256
        } else if *oid == OID_PKCS1_SHA384WITHRSA {
            &sig::RSA_PKCS1_2048_8192_SHA384
        } else {
            &sig::RSA_PKCS1_2048_8192_SHA512
        });
    }
    if *oid == OID_PKCS1_RSASSAPSS {
        if !rsa {
            return mismatch();
        }
        return pss(algorithm);
    }
    let ecdsa = [
        (&OID_SIG_ECDSA_WITH_SHA256, 256),
        (&OID_SIG_ECDSA_WITH_SHA384, 384),
        (&OID_SIG_ECDSA_WITH_SHA512, 512),
    ];
    if let Some((_, hash)) = ecdsa.iter().find(|(o, _)| *o == oid) {
        // RFC 5758: the parameters are absent.
        if algorithm.parameters.is_some() {
            return Err((
                Check::Malformed,
                "an ECDSA signature algorithm with parameters (they must be absent)".into(),
            ));
        }
        let scheme: &'static dyn VerificationAlgorithm = match (kind, hash) {
            (KeyKind::P256, 256) => &sig::ECDSA_P256_SHA256_ASN1,
            (KeyKind::P256, 384) => &sig::ECDSA_P256_SHA384_ASN1,
            (KeyKind::P256, _) => &sig::ECDSA_P256_SHA512_ASN1,
            (KeyKind::P384, 256) => &sig::ECDSA_P384_SHA256_ASN1,
            (KeyKind::P384, 384) => &sig::ECDSA_P384_SHA384_ASN1,
            (KeyKind::P384, _) => &sig::ECDSA_P384_SHA512_ASN1,
            (KeyKind::P521, 256) => &sig::ECDSA_P521_SHA256_ASN1,
            (KeyKind::P521, 384) => &sig::ECDSA_P521_SHA384_ASN1,
            (KeyKind::P521, _) => &sig::ECDSA_P521_SHA512_ASN1,
            _ => return mismatch(),
        };
        return Ok(scheme);
    }
    if *oid == OID_SIG_ED25519 {
        if kind != KeyKind::Ed25519 {
            return mismatch();
        }
        if algorithm.parameters.is_some() {
            return Err((
                Check::Malformed,
                "an Ed25519 signature algorithm with parameters (they must be absent)".into(),
            ));
        }
        return Ok(&sig::ED25519);
    }
    // The weak ones last: what a verification meets first costs no string.
    if *oid == OID_PKCS1_SHA1WITHRSA || oid.to_id_string() == "1.2.840.10045.4.1" {
        return weak("SHA-1");
    }
    if *oid == OID_PKCS1_MD5WITHRSAENC || oid.to_id_string() == "1.2.840.113549.1.1.2" {
        return weak("MD5");
    }
    Err((
        Check::UnsupportedAlgorithm,
        format!(
            "a signature algorithm that is not supported ({})",
            algorithm_name(oid)
        ),
    ))
}

/// RSA-PSS: only the parameter sets TLS uses (RFC 8446 and webpki): SHA-256/384/512 with
/// MGF1 of the same hash and a salt of the hash's length.
fn pss(
    algorithm: &AlgorithmIdentifier<'_>,
) -> Result<&'static dyn VerificationAlgorithm, (Check, String)> {
    let unsupported = |why: &str| {
        Err((
            Check::UnsupportedAlgorithm,
            format!(
                "an RSA-PSS signature with {why} (only SHA-256/384/512 with MGF1 of the same hash and a salt of the hash length are accepted)"
            ),
        ))
    };
    let Ok(SignatureAlgorithm::RSASSA_PSS(params)) = SignatureAlgorithm::try_from(algorithm) else {
        return unsupported("parameters that do not parse");
    };
    let hash = params.hash_algorithm_oid();
    let (scheme, salt): (&'static dyn VerificationAlgorithm, u32) = if *hash == OID_NIST_HASH_SHA256
    {
        (&sig::RSA_PSS_2048_8192_SHA256, 32)
    } else if *hash == OID_NIST_HASH_SHA384 {
        (&sig::RSA_PSS_2048_8192_SHA384, 48)
    } else if *hash == OID_NIST_HASH_SHA512 {
        (&sig::RSA_PSS_2048_8192_SHA512, 64)
    } else if hash.to_id_string() == "1.3.14.3.2.26" {
        return Err((
            Check::WeakSignature,
            "an RSA-PSS signature made with SHA-1, which is no longer accepted (sign with SHA-256)"
                .into(),
        ));
    } else {
        return unsupported("an unsupported hash");
    };
    match params.mask_gen_algorithm() {
        Ok(mgf) if mgf.mgf.to_id_string() == "1.2.840.113549.1.1.8" && mgf.hash == *hash => {}
        _ => return unsupported("a mask generation function other than MGF1 with the same hash"),
    }
    if params.salt_length() != salt || params.trailer_field() != 1 {
        return unsupported("a salt length other than the hash length");
    }
    Ok(scheme)
}

fn null_or_absent(parameters: Option<&Any<'_>>) -> bool {
    parameters
        .is_none_or(|p| p.tag() == x509_parser::der_parser::asn1_rs::Tag::Null && p.data.is_empty())
}

/// A signature algorithm's name for sentences.
pub(crate) fn algorithm_name(oid: &Oid<'_>) -> String {
    let name = match oid.to_id_string().as_str() {
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-SHA256",
        other => return other.to_owned(),
    };
    name.to_owned()
}

/// Parse a DER SubjectPublicKeyInfo (for keys kept as bytes, such as a CRL issuer's).
pub(crate) fn spki(der: &[u8]) -> Option<SubjectPublicKeyInfo<'_>> {
    SubjectPublicKeyInfo::from_der(der).ok().map(|(_, k)| k)
}

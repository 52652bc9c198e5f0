//! Key generation and loading.
//!
//! ECDSA P-256 is the default everywhere: small, fast to handshake with, and accepted by
//! every TLS stack we test against (OpenSSL, Java, Python, browsers). RSA stays available
//! for peers that still insist on it.

use std::fmt;
use std::str::FromStr;

use rcgen::{KeyPair, PublicKeyData as _, RsaKeySize, SignatureAlgorithm};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::encrypted::EncryptedKey;
use crate::encrypted::Password;
use crate::error::{Error, Result};
use crate::pem;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

/// The kinds of key `mtls pki` generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// ECDSA on NIST P-256 with SHA-256 (the default).
    #[default]
    P256,
    /// ECDSA on NIST P-384 with SHA-384.
    P384,
    /// Ed25519.
    Ed25519,
    /// RSA 2048-bit, PKCS#1 v1.5 SHA-256 signatures.
    Rsa2048,
    /// RSA 3072-bit.
    Rsa3072,
    /// RSA 4096-bit.
    Rsa4096,
}

impl KeyType {
    /// Every key type, in the order `--help` lists them.
    pub const ALL: [KeyType; 6] = [
        KeyType::P256,
        KeyType::P384,
        KeyType::Ed25519,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::P256 => "p256",
            KeyType::P384 => "p384",
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
        }
    }

    /// True for RSA keys (which also get the keyEncipherment key usage).
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// Generate a fresh key pair of this type.
    pub fn generate(self) -> Result<KeyPair> {
        let rsa = |size| KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size);
        match self {
            KeyType::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyType::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
            KeyType::Rsa2048 => rsa(RsaKeySize::_2048),
            KeyType::Rsa3072 => rsa(RsaKeySize::_3072),
            KeyType::Rsa4096 => rsa(RsaKeySize::_4096),
        }
        .map_err(Error::generate("key pair"))
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for KeyType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = KeyType::ALL.iter().map(|k| k.name()).collect();
                Error::InvalidInput(format!(
                    "unknown key type {s:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// The one private key in `data` (PKCS#8, SEC1 or PKCS#1; PEM or DER). An encrypted key
/// is [`Error::KeyEncrypted`]: see [`private_key_with`].
pub fn private_key(data: &[u8], what: &str) -> Result<PrivateKeyDer<'static>> {
    private_key_with(data, what, &[])
}

/// [`private_key`], decrypting an encrypted key (either form, see [`crate::encrypted`])
/// with the first of `passwords` that opens it. Passwords are ignored for a plain key.
pub fn private_key_with(
    data: &[u8],
    what: &str,
    passwords: &[Password],
) -> Result<PrivateKeyDer<'static>> {
    if let Some(key) = EncryptedKey::find(data, what)? {
        return key.decrypt(passwords, what);
    }
    if pem::is_pem(data) {
        PrivateKeyDer::from_pem_slice(data).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                Error::malformed(what, "no PRIVATE KEY section in the PEM")
            }
            e => Error::malformed(what, pem::describe_pem_error(&e)),
        })
    } else {
        PrivateKeyDer::try_from(data.to_vec())
            .map_err(|e| Error::malformed(what, format!("not a DER private key: {e}")))
    }
}

/// Load a private key from PEM or DER (PKCS#8, SEC1 or PKCS#1). An encrypted key is
/// [`Error::KeyEncrypted`]; see [`load_with`].
pub fn load(data: &[u8], what: &str) -> Result<KeyPair> {
    load_with(data, what, &[])
}

/// [`load`], decrypting an encrypted key with the first of `passwords` that opens it.
pub fn load_with(data: &[u8], what: &str, passwords: &[Password]) -> Result<KeyPair> {
    let der = private_key_with(data, what, passwords)?;
    from_der(&der, what)
}

/// A key pair from a decoded private key.
pub fn from_der(der: &PrivateKeyDer<'_>, what: &str) -> Result<KeyPair> {
    KeyPair::try_from(der).map_err(|e| Error::malformed(what, format!("unusable private key: {e}")))
}

/// `key` as PEM to write to a file: PKCS#8 encrypted with `password` (see
/// [`crate::encrypted::encrypt_pkcs8`]), or plain PKCS#8 without one.
pub fn to_pem(key: &KeyPair, password: Option<&Password>) -> Result<Zeroizing<String>> {
    Ok(Zeroizing::new(match password {
        Some(password) => crate::encrypted::encrypt_pkcs8(&key.serialize_der(), password)?,
        None => key.serialize_pem(),
    }))
}

/// A human name for the algorithm of a loaded key, e.g. "ECDSA P-256".
pub fn describe(key: &KeyPair) -> &'static str {
    describe_algorithm(key.algorithm())
}

/// A human name for an rcgen signature algorithm.
pub fn describe_algorithm(alg: &SignatureAlgorithm) -> &'static str {
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        "ECDSA P-256"
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        "ECDSA P-384"
    } else if alg == &rcgen::PKCS_ED25519 {
        "Ed25519"
    } else if alg == &rcgen::PKCS_RSA_SHA256
        || alg == &rcgen::PKCS_RSA_SHA384
        || alg == &rcgen::PKCS_RSA_SHA512
    {
        "RSA"
    } else {
        "other"
    }
}

/// The DER SubjectPublicKeyInfo of a key, to compare with a certificate's.
pub fn public_key_info(key: &KeyPair) -> Vec<u8> {
    key.subject_public_key_info()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_generates_and_reloads() {
        for kt in [
            KeyType::P256,
            KeyType::P384,
            KeyType::Ed25519,
            KeyType::Rsa2048,
        ] {
            let key = kt.generate().unwrap();
            let reloaded = load(key.serialize_pem().as_bytes(), "k").unwrap();
            assert_eq!(public_key_info(&key), public_key_info(&reloaded), "{kt}");
        }
    }

    #[test]
    fn key_type_names_parse() {
        assert_eq!("P256".parse::<KeyType>().unwrap(), KeyType::P256);
        let err = "dsa".parse::<KeyType>().unwrap_err().to_string();
        assert!(err.contains("p256") && err.contains("rsa4096"), "{err}");
    }

    #[test]
    fn encrypted_keys_are_named() {
        let pem =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = load(pem, "enc.key").unwrap_err().to_string();
        assert!(err.contains("encrypted"), "{err}");
    }
}

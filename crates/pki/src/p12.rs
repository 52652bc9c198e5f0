//! PKCS#12 (.p12 / .pfx): the one file Java, Tomcat, Windows and browsers take for a
//! client identity (seed 003's .pfx -> .jks step).
//!
//! By default the bundle uses PBES2 with AES-256-CBC and an HMAC-SHA256 MAC, which
//! OpenSSL 3, Java 11+ keytool and current browsers read. `legacy` switches to
//! 3DES + HMAC-SHA1 for Java 8 and older Windows, which cannot read PBES2.

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12ImportPolicy,
    PrivateKey, PrivateKeyChain,
};
use rustls_pki_types::CertificateDer;

use crate::credentials::Credentials;
use crate::error::{Error, Result};

/// Key-derivation and MAC iterations. OpenSSL 3 uses 2048; Java's default is 10000. A
/// .p12 travels by e-mail and USB sticks, so we take the slower, stronger figure.
const ITERATIONS: u32 = 10_000;

/// How to write a PKCS#12 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs12Options {
    /// 3DES + SHA-1 instead of AES-256 + SHA-256.
    pub legacy: bool,
    /// The friendly name (keytool's alias).
    pub alias: String,
}

/// What a PKCS#12 file held.
#[derive(Debug, Clone)]
pub struct Pkcs12Contents {
    /// The friendly name of the key entry, if there was one.
    pub alias: Option<String>,
    /// The private key, PKCS#8 DER.
    pub key_pkcs8: Option<Vec<u8>>,
    /// The key's certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Certificates not linked to the key (trusted CA entries).
    pub other_certs: Vec<CertificateDer<'static>>,
}

/// Bundle a key with its chain (leaf first, as [`Credentials`] holds it).
pub fn export(
    credentials: &Credentials,
    password: &str,
    options: &Pkcs12Options,
) -> Result<Vec<u8>> {
    let private_key =
        PrivateKey::from_der(&credentials.pkcs8()).map_err(|e| Error::Pkcs12(e.to_string()))?;
    let certs = credentials
        .chain()
        .iter()
        .map(|c| Certificate::from_der(c).map_err(|e| Error::Pkcs12(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    // The local key ID links the key bag to its certificate bag; the SHA-1 of the leaf is
    // what OpenSSL and keytool use.
    let local_key_id = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        credentials.leaf(),
    )
    .as_ref()
    .to_vec();
    let mut store = KeyStore::new();
    store.add_entry(
        &options.alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, private_key, certs)),
    );
    let (encryption, mac) = if options.legacy {
        (
            EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
            MacAlgorithm::HmacSha1,
        )
    } else {
        (
            EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
            MacAlgorithm::HmacSha256,
        )
    };
    store
        .writer(password)
        .encryption_algorithm(encryption)
        .encryption_iterations(ITERATIONS)
        .mac_algorithm(mac)
        .mac_iterations(ITERATIONS)
        .write()
        .map_err(|e| Error::Pkcs12(format!("writing: {e}")))
}

/// Open a PKCS#12 file. A wrong password is [`Error::WrongPassword`]; anything that is
/// not a PKCS#12 file is [`Error::Malformed`].
pub fn import(data: &[u8], password: &str, what: &str) -> Result<Pkcs12Contents> {
    let store =
        KeyStore::from_pkcs12(data, password, Pkcs12ImportPolicy::Relaxed).map_err(|e| {
            match e {
                // A wrong password on an unauthenticated file shows up as bad padding.
                p12_keystore::error::Error::MacError(_)
                | p12_keystore::error::Error::UnpadError => Error::WrongPassword {
                    what: what.to_owned(),
                    check: "the PKCS#12 integrity check",
                },
                e => Error::malformed(what, format!("not a readable PKCS#12 file: {e}")),
            }
        })?;
    let mut contents = Pkcs12Contents {
        alias: None,
        key_pkcs8: None,
        chain: Vec::new(),
        other_certs: Vec::new(),
    };
    for (alias, entry) in store.entries() {
        match entry {
            KeyStoreEntry::PrivateKeyChain(chain) if contents.key_pkcs8.is_none() => {
                contents.alias = Some(alias.clone());
                contents.key_pkcs8 = Some(chain.key().as_der().to_vec());
                contents.chain = chain
                    .certs()
                    .iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec()))
                    .collect();
            }
            KeyStoreEntry::Certificate(cert) => contents
                .other_certs
                .push(CertificateDer::from(cert.as_der().to_vec())),
            _ => {}
        }
    }
    Ok(contents)
}

/// True when `data` looks like a PKCS#12 PFX (a DER SEQUENCE starting with version 3).
pub fn looks_like_pkcs12(data: &[u8]) -> bool {
    // SEQUENCE (long or short length), then INTEGER 3.
    let body = match data {
        [0x30, len, rest @ ..] if *len < 0x80 => rest,
        [0x30, len, rest @ ..] => rest.get(usize::from(len & 0x7f)..).unwrap_or(&[]),
        _ => return false,
    };
    body.starts_with(&[0x02, 0x01, 0x03])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Profile;
    use crate::testing::Fixture;

    fn issued_alice(intermediate: bool) -> (Fixture, Credentials, Vec<u8>) {
        let mut f = Fixture::new("P12 CA", intermediate);
        f.issue("alice", Profile::Client, &[]);
        let (chain, key) = f.ca.credentials("alice").unwrap();
        let credentials = Credentials::new(&key, "alice.key", chain, "alice.pem").unwrap();
        (f, credentials, key)
    }

    #[test]
    fn round_trips_default_and_legacy() {
        let (_tmp, chain, key) = issued_alice(true);
        for legacy in [false, true] {
            let options = Pkcs12Options {
                legacy,
                alias: "alice".into(),
            };
            let p12 = export(&chain, "s3cret", &options).unwrap();
            assert!(looks_like_pkcs12(&p12));
            let back = import(&p12, "s3cret", "alice.p12").unwrap();
            assert_eq!(back.alias.as_deref(), Some("alice"));
            assert_eq!(back.chain, chain.chain(), "legacy={legacy}");
            let original = crate::key::load(&key, "k").unwrap();
            assert_eq!(back.key_pkcs8.unwrap(), original.serialize_der());
        }
    }

    #[test]
    fn wrong_password_and_garbage_are_told_apart() {
        let (_tmp, chain, _) = issued_alice(false);
        let options = Pkcs12Options {
            legacy: false,
            alias: "alice".into(),
        };
        let p12 = export(&chain, "right", &options).unwrap();
        let err = import(&p12, "wrong", "alice.p12").unwrap_err();
        assert!(matches!(err, Error::WrongPassword { .. }), "{err}");
        let err = import(&p12[..p12.len() / 2], "right", "alice.p12").unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
        let err = import(b"garbage", "right", "g.p12").unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }
}

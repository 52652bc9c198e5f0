//! Java KeyStore (JKS) files, read and written: what Tomcat, Kafka, Elasticsearch and
//! every Java 8 application configured before 2018 expect as `keystore.jks`.
//!
//! No maintained crate reads JKS, and the format is small, so it is written out here from
//! `sun.security.provider.JavaKeyStore` and `KeyProtector`:
//!
//! ```text
//!   u32 0xFEEDFEED   u32 version (2; 1 lacks the certificate type strings)   u32 count
//!   count x entry:
//!     u32 tag   UTF alias   u64 creation time (ms since 1970)
//!     tag 1, private key:  u32 len, EncryptedPrivateKeyInfo   u32 n, n x certificate
//!     tag 2, trusted cert: certificate
//!     certificate: UTF "X.509" (version 2 only), u32 len, DER
//!   20 bytes: SHA-1(password as UTF-16BE || "Mighty Aphrodite" || everything above)
//! ```
//!
//! UTF is Java's `writeUTF`: a u16 byte count, then modified UTF-8. A key is protected
//! with Sun's proprietary scheme (OID 1.3.6.1.4.1.42.2.17.1.1): a keystream of chained
//! SHA-1 digests of the password and a random 20-byte salt is XORed over the PKCS#8 key,
//! followed by SHA-1(password || key) as a check. That scheme and the store's SHA-1
//! digest are weak, which is why Java moved to PKCS#12; we write JKS only because some
//! deployments still insist on it, and read it to get keys out.
//!
//! Certificates in a JKS are not encrypted, so the file can be listed without the
//! password; [`Integrity::NotChecked`] says so. Keys need it: keytool gives a key the
//! store's password unless told otherwise, and a key with its own password is reported as
//! [`Error::KeyEntryPassword`]. JCEKS (Sun's other format, magic 0xCECECECE) is recognised and
//! refused with the keytool command that converts it.

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::asn1_rs::Tag;

use crate::credentials::Credentials;
use crate::der;
use crate::error::{Error, Result};

/// The first four bytes of a JKS file.
pub const MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];
/// The first four bytes of a JCEKS file, which we recognise but do not read.
pub const JCEKS_MAGIC: [u8; 4] = [0xCE, 0xCE, 0xCE, 0xCE];

const VERSION: u32 = 2;
const TAG_PRIVATE_KEY: u32 = 1;
const TAG_TRUSTED_CERT: u32 = 2;
const CERT_TYPE: &str = "X.509";
/// Mixed into the store digest after the password (Sun's choice, kept for compatibility).
const WHITENER: &[u8] = b"Mighty Aphrodite";
const DIGEST_LEN: usize = 20;
/// The content bytes of OID 1.3.6.1.4.1.42.2.17.1.1, Sun's JKS key protector.
const KEY_PROTECTOR_OID: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x2A, 0x02, 0x11, 0x01, 0x01];

/// A JKS file, read.
#[derive(Debug, Clone)]
pub struct Keystore {
    /// Whether the store digest was checked against a password.
    pub integrity: Integrity,
    /// The entries, in file order.
    pub entries: Vec<Entry>,
}

/// Whether a keystore's contents were proven unaltered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrity {
    /// The password was given and the store digest matches it.
    Verified,
    /// No password was given: the certificates could have been altered or added.
    NotChecked,
}

/// One keystore entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The alias (keytool stores them in lower case).
    pub alias: String,
    /// When the entry was made, if the time is representable.
    pub created: Option<OffsetDateTime>,
    /// A key entry's certificate chain, leaf first; a trusted entry's one certificate.
    pub certificates: Vec<CertificateDer<'static>>,
    /// A key entry's EncryptedPrivateKeyInfo; `None` for a trusted certificate.
    protected_key: Option<Vec<u8>>,
}

/// How to write a JKS file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JksOptions {
    /// The key entry's alias (stored in lower case, as keytool does).
    pub alias: String,
    /// CA certificates to add as trusted certificate entries, with their aliases, so the
    /// one file can serve Java as keystore and truststore.
    pub trusted: Vec<(String, CertificateDer<'static>)>,
}

impl Entry {
    /// True for a private key entry (keytool's `PrivateKeyEntry`).
    pub fn is_key(&self) -> bool {
        self.protected_key.is_some()
    }

    /// Decrypt a key entry's private key with `password`; PKCS#8 DER. `what` names the
    /// keystore in errors.
    pub fn key(&self, password: &str, what: &str) -> Result<Vec<u8>> {
        let protected = self.protected_key.as_deref().ok_or_else(|| {
            Error::InvalidInput(format!(
                "the entry {:?} in {what} is a trusted certificate, not a key",
                self.alias
            ))
        })?;
        let what_key = format!("{what} (key entry {:?})", self.alias);
        match recover(protected, password, &what_key)? {
            Some(key) => Ok(key),
            None => Err(Error::KeyEntryPassword {
                what: what.to_owned(),
                alias: self.alias.clone(),
            }),
        }
    }
}

impl Keystore {
    /// The key entry called `alias` (any case), or the only key entry when `alias` is
    /// `None`. The errors list the aliases there are.
    pub fn key_entry(&self, alias: Option<&str>, what: &str) -> Result<&Entry> {
        let describe = |entries: &mut dyn Iterator<Item = &Entry>| {
            entries
                .map(|e| {
                    let kind = if e.is_key() {
                        "key"
                    } else {
                        "trusted certificate"
                    };
                    format!("{:?} ({kind})", e.alias)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(alias) = alias {
            let wanted = normal_alias(alias);
            let entry = self
                .entries
                .iter()
                .find(|e| normal_alias(&e.alias) == wanted)
                .ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "{what} has no entry {alias:?}; its entries: {}",
                        describe(&mut self.entries.iter())
                    ))
                })?;
            if !entry.is_key() {
                return Err(Error::InvalidInput(format!(
                    "the entry {alias:?} in {what} is a trusted certificate, not a key"
                )));
            }
            return Ok(entry);
        }
        let keys: Vec<&Entry> = self.entries.iter().filter(|e| e.is_key()).collect();
        match keys[..] {
            [one] => Ok(one),
            [] if self.entries.is_empty() => {
                Err(Error::InvalidInput(format!("{what} is an empty keystore")))
            }
            [] => Err(Error::InvalidInput(format!(
                "{what} holds no private key, only {}",
                describe(&mut self.entries.iter())
            ))),
            _ => Err(Error::InvalidInput(format!(
                "{what} holds {} keys: {}; pick one with --alias",
                keys.len(),
                describe(&mut keys.into_iter())
            ))),
        }
    }
}

/// True when `data` starts like a JKS file.
pub fn looks_like_jks(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// True when `data` starts like a JCEKS file.
pub fn looks_like_jceks(data: &[u8]) -> bool {
    data.starts_with(&JCEKS_MAGIC)
}

/// An alias as JKS stores it: lower case (Java's `toLowerCase(Locale.ENGLISH)`).
pub fn normal_alias(alias: &str) -> String {
    alias.to_lowercase()
}

/// Read a JKS file. With a password the store digest is checked first (a mismatch is
/// [`Error::WrongPassword`]); without one the certificates are still read, and
/// [`Keystore::integrity`] says they were not checked.
pub fn read(data: &[u8], password: Option<&str>, what: &str) -> Result<Keystore> {
    if looks_like_jceks(data) {
        return Err(Error::Unsupported(format!(
            "{what} is a JCEKS keystore, which mtls does not read; convert it with keytool \
             -importkeystore -srckeystore {what} -srcstoretype JCEKS -destkeystore OUT.p12 \
             -deststoretype PKCS12"
        )));
    }
    if !looks_like_jks(data) {
        return Err(Error::malformed(
            what,
            "not a JKS keystore (no 0xFEEDFEED magic)",
        ));
    }
    let mut r = Reader {
        data,
        pos: MAGIC.len(),
        what,
    };
    let version = r.u32("the version")?;
    if version != 1 && version != 2 {
        return Err(Error::malformed(
            what,
            format!("JKS version {version}; only 1 and 2 exist"),
        ));
    }
    let count = r.u32("the entry count")?;
    let mut entries = Vec::new();
    for n in 1..=count {
        let context = |field: &str| format!("entry {n}'s {field}");
        let tag = r.u32(&context("tag"))?;
        let alias = r.utf(&context("alias"))?;
        let millis = r.u64(&context("date"))?;
        let created = i128::from(millis)
            .checked_mul(1_000_000)
            .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok());
        let (certificates, protected_key) = match tag {
            TAG_PRIVATE_KEY => {
                let len = r.u32(&context("key length"))?;
                let key = r.take(len, &context("key"))?.to_vec();
                let chain_len = r.u32(&context("chain length"))?;
                let mut chain = Vec::new();
                for i in 1..=chain_len {
                    chain.push(r.certificate(version, &context(&format!("certificate #{i}")))?);
                }
                (chain, Some(key))
            }
            TAG_TRUSTED_CERT => (vec![r.certificate(version, &context("certificate"))?], None),
            other => {
                return Err(Error::malformed(
                    what,
                    format!(
                        "entry {n} has tag {other}; JKS has only private keys (1) and trusted \
                         certificates (2)"
                    ),
                ));
            }
        };
        entries.push(Entry {
            alias,
            created,
            certificates,
            protected_key,
        });
    }
    let body = &data[..r.pos];
    let digest = r.take(DIGEST_LEN as u32, "the integrity digest")?;
    if r.pos != data.len() {
        return Err(Error::malformed(
            what,
            format!("{} bytes after the integrity digest", data.len() - r.pos),
        ));
    }
    let integrity = match password {
        Some(password) => {
            if store_digest(password, body) != digest {
                return Err(Error::WrongPassword {
                    what: what.to_owned(),
                    check: "the keystore's integrity check",
                });
            }
            Integrity::Verified
        }
        None => Integrity::NotChecked,
    };
    Ok(Keystore { integrity, entries })
}

/// Write `credentials` as a JKS key entry protected by `password` (the store's password
/// too, as keytool does), plus any trusted certificates of `options`.
pub fn export(credentials: &Credentials, password: &str, options: &JksOptions) -> Result<Vec<u8>> {
    let alias = normal_alias(&options.alias);
    let mut seen = vec![alias.clone()];
    for (trusted, _) in &options.trusted {
        let trusted = normal_alias(trusted);
        if seen.contains(&trusted) {
            return Err(Error::InvalidInput(format!(
                "the alias {trusted:?} is used twice (JKS aliases ignore case)"
            )));
        }
        seen.push(trusted);
    }
    let mut entries = vec![WriteEntry {
        alias,
        key: Some(protect(&credentials.pkcs8(), password)),
        certificates: credentials.chain().to_vec(),
    }];
    entries.extend(options.trusted.iter().map(|(alias, cert)| WriteEntry {
        alias: normal_alias(alias),
        key: None,
        certificates: vec![cert.clone()],
    }));
    write(&entries, password, OffsetDateTime::now_utc())
}

/// An entry to write: `key` is a protected key (EncryptedPrivateKeyInfo) or `None` for a
/// trusted certificate.
struct WriteEntry {
    alias: String,
    key: Option<Vec<u8>>,
    certificates: Vec<CertificateDer<'static>>,
}

fn write(entries: &[WriteEntry], password: &str, created: OffsetDateTime) -> Result<Vec<u8>> {
    let count = |n: usize, what: &str| {
        u32::try_from(n).map_err(|_| Error::InvalidInput(format!("too many {what} for JKS")))
    };
    let millis = u64::try_from(created.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let mut out = MAGIC.to_vec();
    out.extend(VERSION.to_be_bytes());
    out.extend(count(entries.len(), "entries")?.to_be_bytes());
    for entry in entries {
        let tag = if entry.key.is_some() {
            TAG_PRIVATE_KEY
        } else {
            TAG_TRUSTED_CERT
        };
        out.extend(tag.to_be_bytes());
        write_utf(&mut out, &entry.alias)?;
        out.extend(millis.to_be_bytes());
        if let Some(key) = &entry.key {
            out.extend(count(key.len(), "key bytes")?.to_be_bytes());
            out.extend(key);
            out.extend(count(entry.certificates.len(), "certificates")?.to_be_bytes());
        }
        for cert in &entry.certificates {
            write_utf(&mut out, CERT_TYPE)?;
            out.extend(count(cert.len(), "certificate bytes")?.to_be_bytes());
            out.extend(cert.as_ref());
        }
    }
    let digest = store_digest(password, &out);
    out.extend(digest);
    Ok(out)
}

/// SHA-1(password as UTF-16BE || "Mighty Aphrodite" || body).
fn store_digest(password: &str, body: &[u8]) -> Vec<u8> {
    sha1(&[&utf16be(password), WHITENER, body])
}

/// Sun's key protector: salt || key XOR keystream || SHA-1(password || key), wrapped in an
/// EncryptedPrivateKeyInfo.
fn protect(pkcs8: &[u8], password: &str) -> Vec<u8> {
    let password = utf16be(password);
    let mut salt = [0u8; DIGEST_LEN];
    // Only fails without any OS entropy source, like names::random_password.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut salt).expect("the system random number generator failed");
    let mut protected = salt.to_vec();
    protected.extend(keystream_xor(&password, &salt, pkcs8));
    protected.extend(sha1(&[&password, pkcs8]));
    // EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING }, with the
    // NULL parameters Java writes.
    let algorithm = der::tlv(
        0x30,
        &[der::tlv(0x06, KEY_PROTECTOR_OID), der::tlv(0x05, &[])].concat(),
    );
    der::tlv(0x30, &[algorithm, der::tlv(0x04, &protected)].concat())
}

/// The PKCS#8 key inside a protected key, or `None` when `password` is not its password.
fn recover(protected: &[u8], password: &str, what: &str) -> Result<Option<Vec<u8>>> {
    let mut input = protected;
    let info = der::expect(&mut input, Tag::Sequence, false, what)?;
    if !input.is_empty() {
        return Err(Error::malformed(what, "trailing bytes after the key"));
    }
    let mut fields = info.any.data;
    let algorithm = der::expect(&mut fields, Tag::Sequence, false, what)?;
    let mut algorithm_fields = algorithm.any.data;
    let oid = der::expect(&mut algorithm_fields, Tag::Oid, false, what)?;
    if oid.any.data != KEY_PROTECTOR_OID {
        return Err(Error::Unsupported(format!(
            "{what} is protected with an algorithm other than JKS's own; convert the keystore \
             to PKCS#12 with keytool -importkeystore"
        )));
    }
    let data = der::expect(&mut fields, Tag::OctetString, false, what)?
        .any
        .data;
    if data.len() < 2 * DIGEST_LEN {
        return Err(Error::malformed(what, "the protected key is too short"));
    }
    let (salt, rest) = data.split_at(DIGEST_LEN);
    let (encrypted, check) = rest.split_at(rest.len() - DIGEST_LEN);
    let password = utf16be(password);
    let key = keystream_xor(&password, salt, encrypted);
    Ok((sha1(&[&password, &key]) == check).then_some(key))
}

/// XOR `input` with SHA-1(password || previous digest), the first "previous" being `salt`.
fn keystream_xor(password: &[u8], salt: &[u8], input: &[u8]) -> Vec<u8> {
    let mut digest = salt.to_vec();
    let mut out = Vec::with_capacity(input.len());
    for chunk in input.chunks(DIGEST_LEN) {
        digest = sha1(&[password, &digest]);
        out.extend(chunk.iter().zip(&digest).map(|(a, b)| a ^ b));
    }
    out
}

fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
    for part in parts {
        context.update(part);
    }
    context.finish().as_ref().to_vec()
}

/// A Java `char[]` password as bytes: UTF-16 code units, big-endian.
fn utf16be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Java's `DataOutput.writeUTF`: u16 length, then modified UTF-8 (NUL as two bytes,
/// characters beyond the BMP as two three-byte surrogates).
fn write_utf(out: &mut Vec<u8>, text: &str) -> Result<()> {
    let mut bytes = Vec::new();
    for unit in text.encode_utf16() {
        // The casts keep the low bits that each byte of the encoding carries.
        match unit {
            0x0001..=0x007F => bytes.push(unit as u8),
            0x0000 | 0x0080..=0x07FF => {
                bytes.push(0xC0 | (unit >> 6) as u8);
                bytes.push(0x80 | (unit & 0x3F) as u8);
            }
            _ => {
                bytes.push(0xE0 | (unit >> 12) as u8);
                bytes.push(0x80 | ((unit >> 6) & 0x3F) as u8);
                bytes.push(0x80 | (unit & 0x3F) as u8);
            }
        }
    }
    let len = u16::try_from(bytes.len())
        .map_err(|_| Error::InvalidInput(format!("{text:?} is too long for a JKS alias")))?;
    out.extend(len.to_be_bytes());
    out.extend(bytes);
    Ok(())
}

/// A cursor over the file that names what it was reading when the bytes ran out.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: u32, field: &str) -> Result<&'a [u8]> {
        let available = self.data.len() - self.pos;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > available {
            return Err(Error::malformed(
                self.what,
                format!(
                    "truncated keystore: {field} needs {len} bytes at offset {}, {available} left",
                    self.pos
                ),
            ));
        }
        let bytes = &self.data[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    fn u32(&mut self, field: &str) -> Result<u32> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, field: &str) -> Result<u64> {
        let b = self.take(8, field)?;
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(b);
        Ok(u64::from_be_bytes(bytes))
    }

    /// Java's `readUTF`.
    fn utf(&mut self, field: &str) -> Result<String> {
        let len = self.take(2, field)?;
        let len = u16::from_be_bytes([len[0], len[1]]);
        let bytes = self.take(u32::from(len), field)?;
        let bad = || Error::malformed(self.what, format!("{field} is not modified UTF-8"));
        let mut units = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let continuation = |at: usize| match bytes.get(at) {
                Some(&c) if c & 0xC0 == 0x80 => Ok(u16::from(c & 0x3F)),
                _ => Err(bad()),
            };
            let (unit, width) = match b {
                0x00..=0x7F => (u16::from(b), 1),
                0xC0..=0xDF => ((u16::from(b & 0x1F) << 6) | continuation(i + 1)?, 2),
                0xE0..=0xEF => (
                    (u16::from(b & 0x0F) << 12)
                        | (continuation(i + 1)? << 6)
                        | continuation(i + 2)?,
                    3,
                ),
                _ => return Err(bad()),
            };
            units.push(unit);
            i += width;
        }
        // A lone surrogate is legal in a Java string; it becomes U+FFFD here.
        Ok(String::from_utf16_lossy(&units))
    }

    fn certificate(&mut self, version: u32, field: &str) -> Result<CertificateDer<'static>> {
        if version == 2 {
            let kind = self.utf(field)?;
            if kind != CERT_TYPE {
                return Err(Error::malformed(
                    self.what,
                    format!("{field} is of type {kind:?}, not X.509"),
                ));
            }
        }
        let len = self.u32(field)?;
        let der = self.take(len, field)?;
        match x509_parser::parse_x509_certificate(der) {
            Ok(([], _)) => Ok(CertificateDer::from(der.to_vec())),
            Ok(_) => Err(Error::malformed(
                self.what,
                format!("{field} has trailing bytes"),
            )),
            Err(e) => Err(Error::malformed(
                self.what,
                format!("{field} does not parse: {e}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::Fixture;
    use crate::{KeyType, Profile};

    fn alice() -> (Fixture, Credentials) {
        let mut f = Fixture::new("JKS CA", true);
        f.issue("alice", Profile::Client, &[]);
        let (mut chain, key) = f.ca.credentials("alice").unwrap();
        chain.push(f.ca.root().clone());
        let credentials = Credentials::new(&key, "alice.key", chain, "alice.pem").unwrap();
        (f, credentials)
    }

    fn options(f: &Fixture) -> JksOptions {
        JksOptions {
            alias: "Alice".into(),
            trusted: vec![("ca".into(), f.ca.root().clone())],
        }
    }

    #[test]
    fn round_trip_with_and_without_the_password() {
        let (f, credentials) = alice();
        let store = export(&credentials, "changeit", &options(&f)).unwrap();
        assert!(looks_like_jks(&store));

        let read_back = read(&store, Some("changeit"), "a.jks").unwrap();
        assert_eq!(read_back.integrity, Integrity::Verified);
        let [key_entry, ca] = &read_back.entries[..] else {
            panic!("{:?}", read_back.entries)
        };
        assert_eq!(
            key_entry.alias, "alice",
            "stored in lower case, as keytool does"
        );
        assert_eq!(key_entry.certificates, credentials.chain());
        assert_eq!(
            key_entry.key("changeit", "a.jks").unwrap(),
            credentials.pkcs8()
        );
        let age = OffsetDateTime::now_utc() - key_entry.created.unwrap();
        assert!(age.whole_minutes() < 5, "{age}");
        assert!(!ca.is_key());
        assert_eq!(ca.certificates, [f.ca.root().clone()]);
        let err = ca.key("changeit", "a.jks").unwrap_err().to_string();
        assert!(err.contains("trusted certificate"), "{err}");

        let picked = read_back.key_entry(None, "a.jks").unwrap();
        assert_eq!(picked.alias, "alice");
        assert_eq!(
            read_back.key_entry(Some("ALICE"), "a.jks").unwrap().alias,
            "alice"
        );
        let err = read_back
            .key_entry(Some("ca"), "a.jks")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a key"), "{err}");

        // Without the password: the same certificates, integrity not checked.
        let unchecked = read(&store, None, "a.jks").unwrap();
        assert_eq!(unchecked.integrity, Integrity::NotChecked);
        assert_eq!(unchecked.entries[0].certificates, credentials.chain());
    }

    #[test]
    fn a_wrong_password_is_one_clear_sentence() {
        let (f, credentials) = alice();
        let store = export(&credentials, "changeit", &options(&f)).unwrap();
        let err = read(&store, Some("changeme"), "server.jks").unwrap_err();
        assert_eq!(
            err.to_string(),
            "wrong password for server.jks (the keystore's integrity check failed)"
        );
        // One altered byte in a certificate: the digest no longer matches either.
        let mut altered = store.clone();
        let at = altered.len() - DIGEST_LEN - 30;
        altered[at] ^= 1;
        assert!(matches!(
            read(&altered, Some("changeit"), "x"),
            Err(Error::WrongPassword { .. }) | Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn a_key_with_its_own_password_is_named() {
        let (_f, credentials) = alice();
        let entries = [WriteEntry {
            alias: "web".into(),
            key: Some(protect(&credentials.pkcs8(), "key-pass")),
            certificates: credentials.chain().to_vec(),
        }];
        let store = write(&entries, "store-pass", OffsetDateTime::now_utc()).unwrap();
        let read_back = read(&store, Some("store-pass"), "web.jks").unwrap();
        let err = read_back.entries[0]
            .key("store-pass", "web.jks")
            .unwrap_err();
        assert!(matches!(err, Error::KeyEntryPassword { .. }), "{err}");
        assert!(err.to_string().contains("keytool -keypasswd"), "{err}");
        assert_eq!(
            read_back.entries[0].key("key-pass", "web.jks").unwrap(),
            credentials.pkcs8()
        );
    }

    #[test]
    fn the_key_protector_is_sun_s() {
        // Every byte of a key longer than one digest is recovered, and the layout is salt,
        // then the XORed key, then the check digest.
        let key = KeyType::Rsa2048.generate().unwrap().serialize_der();
        let protected = protect(&key, "pässwörd");
        assert_eq!(recover(&protected, "pässwörd", "k").unwrap().unwrap(), key);
        assert_eq!(recover(&protected, "password", "k").unwrap(), None);
        let mut fields = &protected[..];
        let info = der::expect(&mut fields, Tag::Sequence, false, "k").unwrap();
        let mut inner = info.any.data;
        der::expect(&mut inner, Tag::Sequence, false, "k").unwrap();
        let data = der::expect(&mut inner, Tag::OctetString, false, "k")
            .unwrap()
            .any
            .data;
        assert_eq!(data.len(), DIGEST_LEN + key.len() + DIGEST_LEN);
        let password = utf16be("pässwörd");
        assert_eq!(&data[data.len() - DIGEST_LEN..], sha1(&[&password, &key]));
        let first = sha1(&[&password, &data[..DIGEST_LEN]]);
        assert_eq!(data[DIGEST_LEN] ^ first[0], key[0]);
    }

    #[test]
    fn java_strings_round_trip() {
        for text in ["alice", "", "nul\0inside", "é", "日本", "emoji 🦀"] {
            let mut out = Vec::new();
            write_utf(&mut out, text).unwrap();
            let mut r = Reader {
                data: &out,
                pos: 0,
                what: "t",
            };
            assert_eq!(r.utf("alias").unwrap(), text);
            assert_eq!(r.pos, out.len());
        }
        // NUL is two bytes, and a crab is two three-byte surrogates, as Java writes them.
        let mut out = Vec::new();
        write_utf(&mut out, "\0🦀").unwrap();
        assert_eq!(out, [0, 8, 0xC0, 0x80, 0xED, 0xA0, 0xBE, 0xED, 0xB6, 0x80]);
    }

    #[test]
    fn jceks_truncation_and_trailing_bytes_are_refused() {
        let err = read(&[0xCE, 0xCE, 0xCE, 0xCE, 0, 0, 0, 2], None, "old.jceks").unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("-srcstoretype JCEKS"), "{err}");
        let (f, credentials) = alice();
        let store = export(&credentials, "changeit", &options(&f)).unwrap();
        for cut in [0, 4, 11, 40, store.len() / 2, store.len() - 1] {
            let err = read(&store[..cut], Some("changeit"), "cut.jks").unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{cut}: {err}");
        }
        let err = read(&store[..store.len() - 1], None, "cut.jks").unwrap_err();
        assert!(err.to_string().contains("truncated keystore"), "{err}");
        let mut longer = store.clone();
        longer.push(0);
        let err = read(&longer, None, "long.jks").unwrap_err();
        assert!(
            err.to_string().contains("after the integrity digest"),
            "{err}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn garbage_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
            let data = [&MAGIC[..], &tail].concat();
            if let Ok(store) = read(&data, None, "g") {
                for entry in &store.entries {
                    let _ = entry.key("pw", "g");
                }
            }
            let _ = read(&data, Some("pw"), "g");
            let _ = recover(&tail, "pw", "g");
        }

        #[test]
        fn flipped_bytes_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
            let mut data = sample().clone();
            for (at, value) in flips {
                let len = data.len();
                data[at % len] = value;
            }
            if let Ok(store) = read(&data, None, "f") {
                for entry in &store.entries {
                    let _ = entry.key("changeit", "f");
                }
            }
        }
    }

    /// One store for the property tests (making a CA per case would dominate their time).
    fn sample() -> &'static Vec<u8> {
        static SAMPLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        SAMPLE.get_or_init(|| {
            let (f, credentials) = alice();
            export(&credentials, "changeit", &options(&f)).unwrap()
        })
    }
}

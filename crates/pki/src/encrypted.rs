//! Encrypted private keys: both forms OpenSSL writes are read with a password, and
//! PKCS#8 PBES2 is written on request.
//!
//! Keys that sit on disks others back up are often kept encrypted, and the servers they
//! come from read them as they are (nginx's `ssl_password_file`). So every place mtls reads
//! a key takes passwords too, instead of asking for a decrypted copy beside the encrypted
//! one, which would defeat the point.
//!
//! ```text
//!   -----BEGIN ENCRYPTED PRIVATE KEY-----    PKCS#8 EncryptedPrivateKeyInfo, PBES2:
//!     (openssl genpkey -aes256,              PBKDF2 (HMAC-SHA1/224/256/384/512) or scrypt,
//!      openssl pkcs8 -topk8 -v2 ...)         then AES-128/192/256-CBC, DES-EDE3-CBC or AES-GCM
//!
//!   -----BEGIN RSA PRIVATE KEY-----          the "traditional" form: the PEM body is the
//!   Proc-Type: 4,ENCRYPTED                   PKCS#1 / SEC1 DER, CBC-encrypted with a key from
//!   DEK-Info: AES-128-CBC,<IV in hex>        EVP_BytesToKey(MD5, one round, salt = IV[..8])
//!     (openssl rsa|ec -aes128 -traditional)
//! ```
//!
//! A wrong password shows as bad CBC padding or, by chance (about 1 in 256), as good padding
//! around bytes that are not a key's DER: both read "wrong password". Several passwords are
//! tried in order, like the lines of nginx's `ssl_password_file`. Passwords, derived keys
//! and decrypted keys are zeroed when dropped.
//!
//! We write PKCS#8 only, PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC: OpenSSL 1.0 and later,
//! Java, Go and rustls all read it, and the traditional form's single round of MD5 makes
//! guessing its passwords cheap. PBKDF2 runs in aws-lc (fast in debug builds too, where the
//! pure-Rust one takes seconds at our iteration count); the ciphers are RustCrypto's, since
//! aws-lc-rs has 3DES only behind a feature that rebuilds aws-lc.

use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit,
};
use md5::{Digest as _, Md5};
use pkcs5::der::asn1::{AnyRef, OctetStringRef};
use pkcs5::der::{Decode as _, Encode as _, Reader as _, SliceReader};
use pkcs5::pbes2::{self, Kdf, Pbkdf2Prf};
use pkcs5::{AlgorithmIdentifierRef, ObjectIdentifier};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::pem::{self, Section};

/// PBKDF2-HMAC-SHA256 iterations for the keys we write. OpenSSL 3 writes 2048 and Java
/// 10 000; OWASP asks 600 000 of password storage. A key file is decrypted once per process
/// start (`mtls serve`, `get`, `bench`), never per connection, and once copied off a
/// machine its password is all that protects it, so we take OWASP's figure: about a
/// quarter of a second here, and as long for every guess an attacker makes.
pub const ITERATIONS: u32 = 600_000;

/// The most PBKDF2 iterations a file may ask for: a file could otherwise make every start
/// take hours. Ten times OWASP's figure still opens in a few seconds.
const MAX_ITERATIONS: u32 = 10_000_000;

/// The most memory a file's scrypt parameters may ask for (OpenSSL's `-scrypt` default
/// takes 16 MiB).
const MAX_SCRYPT_MEMORY: u64 = 256 << 20;

/// A password for an encrypted key: zeroed when dropped, never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// A password from its bytes (UTF-8 as typed, for openssl compatibility).
    pub fn new(secret: impl Into<Vec<u8>>) -> Password {
        Password(Zeroizing::new(secret.into()))
    }

    /// One password per line, as nginx reads `ssl_password_file`: a `\r` before the `\n`
    /// is dropped, and so are empty lines.
    pub fn lines(text: &[u8]) -> Vec<Password> {
        text.split(|b| *b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.is_empty())
            .map(|line| Password::new(line.to_vec()))
            .collect()
    }

    /// The passwords in `path`, one per line (see [`Password::lines`]). A file without any
    /// is an error: an encrypted key would otherwise fail with a misleading "wrong password".
    pub fn read_file(path: &Path) -> Result<Vec<Password>> {
        // A pipe is welcome here (`<(pass show ca)`); 64 KiB holds many passwords.
        let text = Zeroizing::new(crate::fs::read_small(path, 64 * 1024)?);
        let passwords = Password::lines(&text);
        if passwords.is_empty() {
            return Err(Error::InvalidInput(format!(
                "{} holds no password (one per line)",
                path.display()
            )));
        }
        Ok(passwords)
    }

    /// The password in environment variable `var` (its bytes as they are: no line ending
    /// is taken off).
    pub fn from_env(var: &str) -> Result<Password> {
        let value = std::env::var_os(var).ok_or_else(|| {
            Error::InvalidInput(format!("the environment variable {var} is not set"))
        })?;
        Ok(Password::new(value.into_encoded_bytes()))
    }

    /// The password's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// An encrypted private key as found in a file, not yet decrypted.
#[derive(Debug, Clone)]
pub struct EncryptedKey {
    form: Form,
    data: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Form {
    /// PKCS#8 `EncryptedPrivateKeyInfo`.
    Pkcs8(Pkcs8Scheme),
    /// `Proc-Type: 4,ENCRYPTED`: once decrypted, the data is DER of the label's type.
    Traditional {
        label: String,
        cipher: Result<(Cipher, Vec<u8>), String>,
    },
}

#[derive(Debug, Clone)]
enum Pkcs8Scheme {
    /// PBKDF2 with a PRF aws-lc has, then a CBC cipher: decrypted here.
    Pbkdf2 {
        prf: Prf,
        salt: Vec<u8>,
        iterations: NonZeroU32,
        cipher: Cipher,
        iv: Vec<u8>,
    },
    /// What the pkcs5 crate decrypts: scrypt, HMAC-SHA224, AES-GCM.
    Pkcs5(pbes2::Parameters),
    /// Recognised, but not something we decrypt: its name.
    Unsupported(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prf {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// The block ciphers both forms use, all in CBC mode with PKCS#7 padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
}

impl EncryptedKey {
    /// The first encrypted private key in `data` (PEM with an `ENCRYPTED ...` section, or a
    /// DER `EncryptedPrivateKeyInfo`); `None` when it holds none. `what` names the input.
    pub fn find(data: &[u8], what: &str) -> Result<Option<EncryptedKey>> {
        if pem::is_pem(data) {
            let Ok(sections) = pem::sections(data, what) else {
                // The caller's own reading reports what is wrong with the PEM.
                return Ok(None);
            };
            return sections
                .iter()
                .find(|s| s.label.starts_with("ENCRYPTED "))
                .map(|s| EncryptedKey::from_section(s, what))
                .transpose();
        }
        Ok(pkcs8_info(data).map(|(algorithm, encrypted)| EncryptedKey {
            form: Form::Pkcs8(Pkcs8Scheme::parse(&algorithm)),
            data: encrypted.to_vec(),
        }))
    }

    /// The key in one PEM section labelled `ENCRYPTED ...` by [`pem::sections`].
    pub fn from_section(section: &Section, what: &str) -> Result<EncryptedKey> {
        if section.label == "ENCRYPTED PRIVATE KEY" {
            let (algorithm, encrypted) = pkcs8_info(&section.der).ok_or_else(|| {
                Error::malformed(what, "an encrypted PKCS#8 key whose DER does not parse")
            })?;
            return Ok(EncryptedKey {
                form: Form::Pkcs8(Pkcs8Scheme::parse(&algorithm)),
                data: encrypted.to_vec(),
            });
        }
        let label = section
            .label
            .strip_prefix("ENCRYPTED ")
            .unwrap_or(&section.label)
            .to_owned();
        let dek_info = section
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("DEK-Info"))
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| {
                Error::malformed(
                    what,
                    "Proc-Type says ENCRYPTED but there is no DEK-Info line",
                )
            })?;
        Ok(EncryptedKey {
            form: Form::Traditional {
                label,
                cipher: dek_info_cipher(dek_info),
            },
            data: section.der.clone(),
        })
    }

    /// How it is encrypted, e.g. "PKCS#8 (PBES2, AES-256-CBC, PBKDF2-SHA256, 2048
    /// iterations)".
    pub fn describe(&self) -> String {
        match &self.form {
            Form::Pkcs8(scheme) => format!("PKCS#8 ({})", scheme.describe()),
            Form::Traditional { cipher, .. } => match cipher {
                Ok((cipher, _)) => format!(
                    "traditional OpenSSL PEM ({}, MD5 key derivation)",
                    cipher.name()
                ),
                Err(name) => format!("traditional OpenSSL PEM ({name}, which mtls cannot read)"),
            },
        }
    }

    /// Decrypt with the first of `passwords` that opens it. `what` names the file.
    pub fn decrypt(&self, passwords: &[Password], what: &str) -> Result<PrivateKeyDer<'static>> {
        self.check_supported(what)?;
        if passwords.is_empty() {
            return Err(Error::KeyEncrypted {
                what: what.to_owned(),
                how: String::new(),
            });
        }
        for password in passwords {
            if let Some(der) = self.decrypt_one(password, what)? {
                return self.key_der(&der, what);
            }
        }
        Err(Error::KeyPassword {
            what: what.to_owned(),
            tried: passwords.len(),
        })
    }

    /// Whether mtls can decrypt it (given the password): PBES1, PKCS#12 PBE and exotic
    /// ciphers are only described.
    pub fn is_supported(&self) -> bool {
        self.unsupported().is_none()
    }

    fn unsupported(&self) -> Option<&str> {
        match &self.form {
            Form::Pkcs8(Pkcs8Scheme::Unsupported(name)) => Some(name),
            Form::Traditional {
                cipher: Err(name), ..
            } => Some(name),
            _ => None,
        }
    }

    fn check_supported(&self, what: &str) -> Result<()> {
        let Some(why) = self.unsupported() else {
            return Ok(());
        };
        Err(Error::malformed(
            what,
            format!(
                "the key is encrypted with {why}, which mtls cannot decrypt; re-encrypt it: \
                 openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out NEW.key"
            ),
        ))
    }

    /// The decrypted DER when `password` opens the key, `None` when it does not.
    fn decrypt_one(&self, password: &Password, what: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let password = password.as_bytes();
        let plain = match &self.form {
            Form::Pkcs8(Pkcs8Scheme::Pbkdf2 {
                prf,
                salt,
                iterations,
                cipher,
                iv,
            }) => {
                let key = pbkdf2(*prf, *iterations, salt, password, cipher.key_len());
                cipher.decrypt(&key, iv, &self.data)
            }
            Form::Pkcs8(Pkcs8Scheme::Pkcs5(parameters)) => {
                match parameters.decrypt(password, &self.data) {
                    Ok(plain) => Some(Zeroizing::new(plain)),
                    Err(pkcs5::Error::DecryptFailed) => None,
                    Err(e) => return Err(Error::malformed(what, e)),
                }
            }
            Form::Traditional {
                cipher: Ok((cipher, iv)),
                ..
            } => {
                let salt = iv.get(..8).unwrap_or(iv);
                let key = bytes_to_key(password, salt, cipher.key_len());
                cipher.decrypt(&key, iv, &self.data)
            }
            // check_supported returned before.
            Form::Pkcs8(Pkcs8Scheme::Unsupported(_)) | Form::Traditional { cipher: Err(_), .. } => {
                None
            }
        };
        Ok(plain.filter(|der| looks_like_key(der)))
    }

    fn key_der(&self, der: &[u8], what: &str) -> Result<PrivateKeyDer<'static>> {
        let der = der.to_vec();
        Ok(match &self.form {
            Form::Pkcs8(_) => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
            Form::Traditional { label, .. } => match label.as_str() {
                "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
                "EC PRIVATE KEY" => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
                "PRIVATE KEY" => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
                other => {
                    return Err(Error::malformed(
                        what,
                        format!("an encrypted {other}, which is no key type mtls uses"),
                    ));
                }
            },
        })
    }
}

/// `pkcs8_der` (a PKCS#8 PrivateKeyInfo) encrypted with `password` as PEM
/// `ENCRYPTED PRIVATE KEY`: PBES2, PBKDF2-HMAC-SHA256 with [`ITERATIONS`] and a 16-byte
/// random salt, AES-256-CBC with a random IV.
pub fn encrypt_pkcs8(pkcs8_der: &[u8], password: &Password) -> Result<String> {
    if password.as_bytes().is_empty() {
        return Err(Error::InvalidInput(
            "an empty password does not protect a key; give a real one".into(),
        ));
    }
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    // aws-lc's system RNG only fails if the OS has no entropy source at all.
    #[allow(clippy::expect_used)]
    {
        aws_lc_rs::rand::fill(&mut salt).expect("the system random number generator failed");
        aws_lc_rs::rand::fill(&mut iv).expect("the system random number generator failed");
    }
    let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    let cipher = Cipher::Aes256;
    let key = pbkdf2(
        Prf::Sha256,
        iterations,
        &salt,
        password.as_bytes(),
        cipher.key_len(),
    );
    let encrypted = cipher.encrypt(&key, &iv, pkcs8_der);
    let parameters = pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(ITERATIONS, &salt, iv)
        .map_err(|e| Error::InvalidInput(format!("PBES2 parameters: {e}")))?;
    let algorithm = pkcs5::EncryptionScheme::Pbes2(parameters)
        .to_der()
        .map_err(|e| Error::InvalidInput(format!("encoding PBES2 parameters: {e}")))?;
    let info = crate::der::tlv(
        0x30,
        &[algorithm, crate::der::tlv(0x04, &encrypted)].concat(),
    );
    Ok(pem::encode("ENCRYPTED PRIVATE KEY", &info))
}

impl Pkcs8Scheme {
    fn parse(algorithm: &AlgorithmIdentifierRef<'_>) -> Pkcs8Scheme {
        if algorithm.oid != pbes2::PBES2_OID {
            return Pkcs8Scheme::Unsupported(pbe_name(algorithm.oid));
        }
        let Some((kdf, encryption)) = algorithm.parameters.and_then(pbes2_parts) else {
            return Pkcs8Scheme::Unsupported("PBES2 with parameters that do not parse".into());
        };
        let kdf = match Kdf::try_from(kdf) {
            Ok(kdf) => kdf,
            Err(_) => {
                return Pkcs8Scheme::Unsupported(format!("PBES2 with key derivation {}", kdf.oid));
            }
        };
        if let Some(why) = too_costly(&kdf) {
            return Pkcs8Scheme::Unsupported(why);
        }
        let cipher = Cipher::from_oid(encryption.oid).and_then(|cipher| {
            let iv = encryption
                .parameters?
                .decode_as::<&OctetStringRef>()
                .ok()?
                .as_bytes();
            (iv.len() == cipher.block_len()).then(|| (cipher, iv.to_vec()))
        });
        if let (Kdf::Pbkdf2(params), Some((cipher, iv))) = (&kdf, &cipher) {
            let prf = match params.prf {
                Pbkdf2Prf::HmacWithSha1 => Some(Prf::Sha1),
                Pbkdf2Prf::HmacWithSha256 => Some(Prf::Sha256),
                Pbkdf2Prf::HmacWithSha384 => Some(Prf::Sha384),
                Pbkdf2Prf::HmacWithSha512 => Some(Prf::Sha512),
                _ => None,
            };
            let length_ok = params
                .key_length
                .is_none_or(|n| usize::from(n) == cipher.key_len());
            if let (Some(prf), Some(iterations), true) =
                (prf, NonZeroU32::new(params.iteration_count), length_ok)
            {
                return Pkcs8Scheme::Pbkdf2 {
                    prf,
                    salt: params.salt.as_bytes().to_vec(),
                    iterations,
                    cipher: *cipher,
                    iv: iv.clone(),
                };
            }
        }
        match pbes2::EncryptionScheme::try_from(encryption) {
            Ok(encryption) => Pkcs8Scheme::Pkcs5(pbes2::Parameters { kdf, encryption }),
            Err(_) => Pkcs8Scheme::Unsupported(format!("PBES2 with cipher {}", encryption.oid)),
        }
    }

    fn describe(&self) -> String {
        match self {
            Pkcs8Scheme::Pbkdf2 {
                prf,
                iterations,
                cipher,
                ..
            } => format!(
                "PBES2, {}, PBKDF2-{}, {iterations} iteration{}",
                cipher.name(),
                prf.name(),
                if iterations.get() == 1 { "" } else { "s" }
            ),
            Pkcs8Scheme::Pkcs5(parameters) => {
                let cipher = match parameters.encryption {
                    pbes2::EncryptionScheme::Aes128Cbc { .. } => "AES-128-CBC",
                    pbes2::EncryptionScheme::Aes192Cbc { .. } => "AES-192-CBC",
                    pbes2::EncryptionScheme::Aes256Cbc { .. } => "AES-256-CBC",
                    pbes2::EncryptionScheme::Aes128Gcm { .. } => "AES-128-GCM",
                    pbes2::EncryptionScheme::Aes256Gcm { .. } => "AES-256-GCM",
                    _ => "a cipher",
                };
                let kdf = match &parameters.kdf {
                    Kdf::Pbkdf2(p) => format!(
                        "PBKDF2-{}, {} iterations",
                        match p.prf {
                            Pbkdf2Prf::HmacWithSha1 => "SHA1",
                            Pbkdf2Prf::HmacWithSha224 => "SHA224",
                            Pbkdf2Prf::HmacWithSha256 => "SHA256",
                            Pbkdf2Prf::HmacWithSha384 => "SHA384",
                            Pbkdf2Prf::HmacWithSha512 => "SHA512",
                            _ => "HMAC",
                        },
                        p.iteration_count
                    ),
                    Kdf::Scrypt(s) => format!(
                        "scrypt N={} r={} p={}",
                        s.cost_parameter, s.block_size, s.parallelization
                    ),
                    _ => "another key derivation".into(),
                };
                format!("PBES2, {cipher}, {kdf}")
            }
            Pkcs8Scheme::Unsupported(name) => format!("{name}, which mtls cannot read"),
        }
    }
}

impl Prf {
    fn name(self) -> &'static str {
        match self {
            Prf::Sha1 => "SHA1",
            Prf::Sha256 => "SHA256",
            Prf::Sha384 => "SHA384",
            Prf::Sha512 => "SHA512",
        }
    }

    fn algorithm(self) -> aws_lc_rs::pbkdf2::Algorithm {
        use aws_lc_rs::pbkdf2;
        match self {
            Prf::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            Prf::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Prf::Sha384 => pbkdf2::PBKDF2_HMAC_SHA384,
            Prf::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }
}

impl Cipher {
    fn from_oid(oid: ObjectIdentifier) -> Option<Cipher> {
        const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
        match oid {
            pbes2::AES_128_CBC_OID => Some(Cipher::Aes128),
            pbes2::AES_192_CBC_OID => Some(Cipher::Aes192),
            pbes2::AES_256_CBC_OID => Some(Cipher::Aes256),
            DES_EDE3_CBC => Some(Cipher::DesEde3),
            _ => None,
        }
    }

    /// The name OpenSSL uses, in DEK-Info lines too.
    fn name(self) -> &'static str {
        match self {
            Cipher::Aes128 => "AES-128-CBC",
            Cipher::Aes192 => "AES-192-CBC",
            Cipher::Aes256 => "AES-256-CBC",
            Cipher::DesEde3 => "DES-EDE3-CBC",
        }
    }

    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128 => 16,
            Cipher::Aes192 | Cipher::DesEde3 => 24,
            Cipher::Aes256 => 32,
        }
    }

    fn block_len(self) -> usize {
        match self {
            Cipher::DesEde3 => 8,
            _ => 16,
        }
    }

    /// `None` when the padding is wrong: a wrong password.
    fn decrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        match self {
            Cipher::Aes128 => cbc_decrypt::<aes::Aes128>(key, iv, data),
            Cipher::Aes192 => cbc_decrypt::<aes::Aes192>(key, iv, data),
            Cipher::Aes256 => cbc_decrypt::<aes::Aes256>(key, iv, data),
            Cipher::DesEde3 => cbc_decrypt::<des::TdesEde3>(key, iv, data),
        }
    }

    fn encrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Cipher::Aes128 => cbc_encrypt::<aes::Aes128>(key, iv, data),
            Cipher::Aes192 => cbc_encrypt::<aes::Aes192>(key, iv, data),
            Cipher::Aes256 => cbc_encrypt::<aes::Aes256>(key, iv, data),
            Cipher::DesEde3 => cbc_encrypt::<des::TdesEde3>(key, iv, data),
        }
    }
}

fn cbc_decrypt<C: BlockCipherDecrypt + KeyInit>(
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let decryptor = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
    decryptor
        .decrypt_padded_vec::<Pkcs7>(data)
        .ok()
        .map(Zeroizing::new)
}

fn cbc_encrypt<C: BlockCipherEncrypt + KeyInit>(key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
    match cbc::Encryptor::<C>::new_from_slices(key, iv) {
        Ok(encryptor) => encryptor.encrypt_padded_vec::<Pkcs7>(data),
        // Key and IV lengths come from `Cipher` itself, so they always fit.
        Err(_) => Vec::new(),
    }
}

fn pbkdf2(
    prf: Prf,
    iterations: NonZeroU32,
    salt: &[u8],
    password: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(vec![0u8; len]);
    // Panics only if aws-lc fails internally; the output (at most 32 bytes) is far below
    // PBKDF2's limit and the iteration count is capped by `too_costly`.
    aws_lc_rs::pbkdf2::derive(prf.algorithm(), iterations, salt, password, &mut key);
    key
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one round, as the traditional form uses:
/// D1 = MD5(password || salt), Dn = MD5(Dn-1 || password || salt), concatenated.
fn bytes_to_key(password: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + 16));
    let mut previous: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    while out.len() < len {
        let mut md5 = Md5::new();
        md5.update(&*previous);
        md5.update(password);
        md5.update(salt);
        let digest = md5.finalize();
        out.extend_from_slice(&digest);
        previous = Zeroizing::new(digest.to_vec());
    }
    out.truncate(len);
    out
}

/// `DEK-Info: AES-128-CBC,<IV hex>` as a cipher and IV, or the name of what we cannot use.
fn dek_info_cipher(value: &str) -> std::result::Result<(Cipher, Vec<u8>), String> {
    let (name, iv) = value.split_once(',').unwrap_or((value, ""));
    let name = name.trim();
    let cipher = [
        Cipher::Aes128,
        Cipher::Aes192,
        Cipher::Aes256,
        Cipher::DesEde3,
    ]
    .into_iter()
    .find(|c| c.name().eq_ignore_ascii_case(name))
    .ok_or_else(|| format!("cipher {name}"))?;
    let iv = hex::decode(iv.trim()).map_err(|_| format!("{name} with an IV that is not hex"))?;
    if iv.len() != cipher.block_len() {
        return Err(format!("{name} with a {}-byte IV", iv.len()));
    }
    Ok((cipher, iv))
}

/// A DER `EncryptedPrivateKeyInfo`: its algorithm and encrypted bytes, if `der` is one.
fn pkcs8_info(der: &[u8]) -> Option<(AlgorithmIdentifierRef<'_>, &[u8])> {
    let mut reader = SliceReader::new(der).ok()?;
    let parts = reader
        .sequence(|r| {
            let algorithm = AlgorithmIdentifierRef::decode(r)?;
            let data = <&OctetStringRef>::decode(r)?;
            Ok::<_, pkcs5::der::Error>((algorithm, data.as_bytes()))
        })
        .ok()?;
    reader.finish().ok()?;
    Some(parts)
}

/// PBES2-params: the key derivation and the encryption scheme.
fn pbes2_parts(
    parameters: AnyRef<'_>,
) -> Option<(AlgorithmIdentifierRef<'_>, AlgorithmIdentifierRef<'_>)> {
    parameters
        .sequence(|r| {
            let kdf = AlgorithmIdentifierRef::decode(r)?;
            let encryption = AlgorithmIdentifierRef::decode(r)?;
            Ok::<_, pkcs5::der::Error>((kdf, encryption))
        })
        .ok()
}

/// Why a file's key derivation costs more than we spend, if it does.
fn too_costly(kdf: &Kdf) -> Option<String> {
    match kdf {
        Kdf::Pbkdf2(p) if p.iteration_count > MAX_ITERATIONS => Some(format!(
            "PBKDF2 with {} iterations (more than {MAX_ITERATIONS})",
            p.iteration_count
        )),
        Kdf::Scrypt(s) => {
            let memory = 128u64
                .saturating_mul(u64::from(s.block_size))
                .saturating_mul(s.cost_parameter);
            (memory > MAX_SCRYPT_MEMORY || s.parallelization > 16).then(|| {
                format!(
                    "scrypt N={} r={} p={} (more than {} MiB or p > 16)",
                    s.cost_parameter,
                    s.block_size,
                    s.parallelization,
                    MAX_SCRYPT_MEMORY >> 20
                )
            })
        }
        _ => None,
    }
}

/// Names for the PKCS#8 encryption schemes older tools wrote, which we do not decrypt.
fn pbe_name(oid: ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.113549.1.5.3" => "PBES1 pbeWithMD5AndDES-CBC",
        "1.2.840.113549.1.5.6" => "PBES1 pbeWithMD5AndRC2-CBC",
        "1.2.840.113549.1.5.10" => "PBES1 pbeWithSHA1AndDES-CBC",
        "1.2.840.113549.1.5.11" => "PBES1 pbeWithSHA1AndRC2-CBC",
        "1.2.840.113549.1.12.1.3" => "PKCS#12 pbeWithSHAAnd3-KeyTripleDES-CBC",
        "1.2.840.113549.1.12.1.6" => "PKCS#12 pbeWithSHAAnd40BitRC2-CBC",
        other => return format!("encryption scheme {other}"),
    };
    name.to_owned()
}

/// Whether decrypted bytes are a key's DER: a SEQUENCE that fills them exactly and starts
/// with the version INTEGER (PKCS#8, PKCS#1 and SEC1 all do). Catches the wrong passwords
/// that happen to leave valid padding.
fn looks_like_key(der: &[u8]) -> bool {
    let Some((&0x30, rest)) = der.split_first() else {
        return false;
    };
    let Some((&first, rest)) = rest.split_first() else {
        return false;
    };
    let (len, body) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return false;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    len == body.len() && body.first() == Some(&0x02)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec_pkcs8() -> Vec<u8> {
        crate::KeyType::P256
            .generate()
            .expect("a key")
            .serialize_der()
    }

    #[test]
    fn what_we_write_we_read_and_a_wrong_password_is_named() {
        let der = ec_pkcs8();
        let pem = encrypt_pkcs8(&der, &Password::new("right")).expect("encrypts");
        assert!(
            pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
            "{pem}"
        );
        let key = EncryptedKey::find(pem.as_bytes(), "k.key")
            .expect("parses")
            .expect("an encrypted key");
        assert_eq!(
            key.describe(),
            format!("PKCS#8 (PBES2, AES-256-CBC, PBKDF2-SHA256, {ITERATIONS} iterations)")
        );
        let passwords = [Password::new("wrong"), Password::new("right")];
        let plain = key
            .decrypt(&passwords, "k.key")
            .expect("the second opens it");
        assert_eq!(plain.secret_der(), der.as_slice());
        let err = key
            .decrypt(&[Password::new("nope")], "k.key")
            .expect_err("wrong password");
        assert_eq!(err.to_string(), "wrong password for k.key");
        let err = key.decrypt(&passwords[..1], "k.key").expect_err("wrong");
        assert!(matches!(err, Error::KeyPassword { tried: 1, .. }), "{err}");
        let err = key.decrypt(&[], "k.key").expect_err("no password");
        assert_eq!(err.to_string(), "k.key is encrypted: give its password");
        assert!(encrypt_pkcs8(&der, &Password::new("")).is_err());
    }

    #[test]
    fn bytes_to_key_is_openssls() {
        // The first block is MD5(password || salt); the integration tests check the whole
        // against keys openssl made.
        let key = bytes_to_key(b"secret", &[0, 1, 2, 3, 4, 5, 6, 7], 16);
        let mut md5 = Md5::new();
        md5.update(b"secret");
        md5.update([0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(key.as_slice(), md5.finalize().as_slice());
        // 32 bytes: the second block chains on the first.
        let long = bytes_to_key(b"secret", &[0; 8], 32);
        let mut md5 = Md5::new();
        md5.update(&long[..16]);
        md5.update(b"secret");
        md5.update([0; 8]);
        assert_eq!(&long[16..], md5.finalize().as_slice());
    }

    #[test]
    fn password_lines_are_read_as_nginx_does() {
        let lines = Password::lines(b"first\r\n\nsecond\nthird");
        let got: Vec<&[u8]> = lines.iter().map(Password::as_bytes).collect();
        assert_eq!(got, [&b"first"[..], b"second", b"third"]);
        assert!(Password::lines(b"\n\r\n").is_empty());
        assert_eq!(format!("{:?}", lines[0]), "Password(..)");
    }

    #[test]
    fn hostile_headers_and_parameters_are_errors() {
        for dek in [
            "AES-128-CBC,00",
            "AES-128-CBC,zz",
            "DES-CBC,0011223344556677",
            "",
        ] {
            assert!(dek_info_cipher(dek).is_err(), "{dek}");
        }
        assert!(!looks_like_key(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]));
        assert!(!looks_like_key(&[0x30]));
        assert!(looks_like_key(&[0x30, 0x03, 0x02, 0x01, 0x00]));
        assert!(pkcs8_info(b"\x30\x00").is_none());
    }
}

//! The one error type of the PKI crate.
//!
//! Every variant says what went wrong in words an operator can act on, and names the file
//! or the certificate involved. Variants are `#[non_exhaustive]` so that new checks can be
//! added without breaking callers.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in `mtls-pki`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we were doing: "reading", "writing", "creating directory", ...
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },

    /// A file that is not read at all: not a regular file, or too large.
    #[error("{path} {why}")]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why, as the end of a sentence that starts with the path.
        why: String,
    },

    /// A file or a value did not parse: bad PEM, truncated DER, not a certificate.
    #[error("{what}: {detail}")]
    Malformed {
        /// What we were parsing, e.g. "certificate in pki/ca.crt".
        what: String,
        /// Why it failed.
        detail: String,
    },

    /// A value given by the user is not acceptable (a SAN, a name, a number of days).
    #[error("{0}")]
    InvalidInput(String),

    /// `init` found a CA already in place.
    #[error(
        "a CA already exists in {0} (use --force to replace it: the old one moves to {0}/replaced-TIMESTAMP and its certificates stop verifying)"
    )]
    CaExists(PathBuf),

    /// A command that needs a CA found none.
    #[error("no CA in {0}: run `mtls pki init` first (or pass --dir)")]
    NoCa(PathBuf),

    /// A private key does not belong to the certificate it is paired with.
    #[error("the key {key} does not match the certificate {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },

    /// A certificate signing request's self-signature does not verify.
    #[error("the CSR {0} has a bad signature: it was altered or not signed by the key it holds")]
    CsrSignature(String),

    /// A name or serial is not in the CA database.
    #[error("no certificate named {0} in the CA database")]
    UnknownName(String),

    /// A serial is not in the CA database.
    #[error("no certificate with serial {0} in the CA database")]
    UnknownSerial(String),

    /// A name is already used by a valid certificate.
    #[error("a valid certificate named {0} already exists (revoke it first, or pick another name)")]
    NameTaken(String),

    /// The certificate is already revoked.
    #[error("certificate {name} (serial {serial}) is already revoked")]
    AlreadyRevoked {
        /// Its name.
        name: String,
        /// Its serial, hex.
        serial: String,
    },

    /// The CA database has a line we cannot read.
    #[error("{path}:{line}: {message}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },

    /// A PKCS#12 file or a keystore could not be opened with the given password.
    #[error("wrong password for {what} ({check} failed)")]
    WrongPassword {
        /// The file.
        what: String,
        /// The check that failed: "the PKCS#12 integrity check", "the keystore's integrity
        /// check".
        check: &'static str,
    },

    /// A keystore opened with its password, but one of its keys has a password of its own.
    #[error(
        "the key entry {alias:?} in {what} has a password other than the keystore's (set it to the store password with keytool -keypasswd -alias {alias:?} -keystore {what})"
    )]
    KeyEntryPassword {
        /// The keystore.
        what: String,
        /// The entry's alias.
        alias: String,
    },

    /// A file in a format we recognise but do not read; the text says how to convert it.
    #[error("{0}")]
    Unsupported(String),

    /// A private key is encrypted and no password was given for it.
    #[error("{what} is encrypted: give its password{how}")]
    KeyEncrypted {
        /// The key file.
        what: String,
        /// How the caller takes passwords, e.g. " with --key-password-file FILE"; empty
        /// until [`Error::with_password_hint`] sets it.
        how: String,
    },

    /// None of the passwords given opens an encrypted private key.
    #[error("wrong password for {what}{}", tried_words(*.tried))]
    KeyPassword {
        /// The key file.
        what: String,
        /// How many passwords were tried.
        tried: usize,
    },

    /// Building or reading a PKCS#12 file failed for another reason.
    #[error("PKCS#12 {0}")]
    Pkcs12(String),

    /// A CSR's subject holds a value that makes it read like another subject.
    #[error(
        "{what} asks for a subject whose {attribute} is {value:?}, and its {character:?} can make the name read like another one (sign it anyway with --allow-odd-subject)"
    )]
    OddSubject {
        /// The CSR file.
        what: String,
        /// The attribute's short name (`O`, `CN`, ...).
        attribute: String,
        /// Its value.
        value: String,
        /// The odd character.
        character: char,
    },

    /// The certificate generator refused the parameters.
    #[error("generating {what}: {source}")]
    Generate {
        /// What we were generating.
        what: &'static str,
        /// rcgen's error.
        source: rcgen::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn malformed(what: impl Into<String>, detail: impl ToString) -> Self {
        Error::Malformed {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// Say how to give a password when this is [`Error::KeyEncrypted`] (each caller has
    /// its own flag or setting); other errors are returned as they are.
    pub fn with_password_hint(self, how: &str) -> Self {
        match self {
            Error::KeyEncrypted { what, .. } => Error::KeyEncrypted {
                what,
                how: format!(" with {how}"),
            },
            other => other,
        }
    }

    pub(crate) fn generate(what: &'static str) -> impl FnOnce(rcgen::Error) -> Self {
        move |source| Error::Generate { what, source }
    }
}

fn tried_words(tried: usize) -> String {
    if tried > 1 {
        format!(" (tried {tried} passwords)")
    } else {
        String::new()
    }
}

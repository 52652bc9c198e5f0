//! Session tickets sealed with keys from files (`session_ticket_key`, nginx's
//! `ssl_session_ticket_key`), so that several gateways behind one load balancer resume
//! each other's sessions, and a restart or reload does not end every session.
//!
//! rustls's own `Ticketer` makes its keys itself and cannot be given any, so this is a
//! `ProducesTickets` of our own. A key file holds 80 bytes, like nginx's (a file format
//! only: the tickets are not nginx's): 16 bytes name the key, the other 64 are secret.
//! The AES-256-GCM key is HKDF-SHA256 of the 64 secret bytes, salted with the name, so
//! no byte of the file is used as a key directly.
//!
//! ```text
//!   ticket = name (16) ‖ nonce (12, random) ‖ AES-256-GCM(plaintext, aad = name) ‖ tag (16)
//! ```
//!
//! The first key seals; every key opens (the one whose name the ticket carries), so keys
//! rotate by putting a new file first and keeping the previous one second for one
//! ticket lifetime. [`FileTicketer::replace`] swaps the keys in place: configurations that
//! hold the ticketer see the new keys at their next ticket.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

/// The size of a key file.
pub const KEY_FILE_LEN: usize = 80;
const NAME_LEN: usize = 16;
const TAG_LEN: usize = 16;

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TicketKeyError {
    /// The file cannot be read.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's words.
        error: std::io::Error,
    },
    /// Not 80 bytes.
    #[error(
        "{}: a session ticket key file holds exactly 80 random bytes (found {len}); make one \
         with `openssl rand 80 > {}`",
        path.display(),
        path.display()
    )]
    Length {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// Two files hold keys with the same name: one could not open its tickets.
    #[error("{} and {} hold the same key name", first.display(), second.display())]
    Duplicate {
        /// The first file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// No file given.
    #[error("no session ticket key file given")]
    Empty,
}

struct TicketKey {
    name: [u8; NAME_LEN],
    aead: LessSafeKey,
    path: PathBuf,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKey")
            .field("name", &hex::encode(self.name))
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Read and check every key file, in order; the first seals.
pub fn read_keys(paths: &[PathBuf]) -> Result<Vec<Arc<TicketKeyMaterial>>, TicketKeyError> {
    if paths.is_empty() {
        return Err(TicketKeyError::Empty);
    }
    let mut keys: Vec<Arc<TicketKeyMaterial>> = Vec::with_capacity(paths.len());
    for path in paths {
        let key = Arc::new(TicketKeyMaterial::read(path)?);
        if let Some(twin) = keys.iter().find(|k| k.0.name == key.0.name) {
            return Err(TicketKeyError::Duplicate {
                first: twin.0.path.clone(),
                second: path.clone(),
            });
        }
        keys.push(key);
    }
    Ok(keys)
}

/// One key, read from its file and ready to seal and open.
#[derive(Debug)]
pub struct TicketKeyMaterial(TicketKey);

impl TicketKeyMaterial {
    /// Read the 80-byte file at `path`.
    pub fn read(path: &Path) -> Result<TicketKeyMaterial, TicketKeyError> {
        let bytes = std::fs::read(path).map_err(|error| TicketKeyError::Read {
            path: path.to_owned(),
            error,
        })?;
        TicketKeyMaterial::from_bytes(&bytes, path)
    }

    fn from_bytes(bytes: &[u8], path: &Path) -> Result<TicketKeyMaterial, TicketKeyError> {
        let Ok(bytes) = <&[u8; KEY_FILE_LEN]>::try_from(bytes) else {
            return Err(TicketKeyError::Length {
                path: path.to_owned(),
                len: bytes.len(),
            });
        };
        let (name, secret) = bytes.split_at(NAME_LEN);
        let mut name_bytes = [0u8; NAME_LEN];
        name_bytes.copy_from_slice(name);
        let prk = Salt::new(HKDF_SHA256, name).extract(secret);
        let okm = prk
            .expand(&[b"mtls session ticket key"], &AES_256_GCM)
            // Only fails for an output longer than 255 hash lengths; 32 bytes is not.
            .map_err(|_| TicketKeyError::Length {
                path: path.to_owned(),
                len: bytes.len(),
            })?;
        let aead = LessSafeKey::new(UnboundKey::from(okm));
        Ok(TicketKeyMaterial(TicketKey {
            name: name_bytes,
            aead,
            path: path.to_owned(),
        }))
    }

    /// The key's name (its first 16 bytes), hex, for logs.
    pub fn name(&self) -> String {
        hex::encode(self.0.name)
    }
}

/// Tickets sealed and opened with keys from files; see the module documentation.
#[derive(Debug)]
pub struct FileTicketer {
    keys: RwLock<Vec<Arc<TicketKeyMaterial>>>,
    random: SystemRandom,
}

impl FileTicketer {
    /// A ticketer with `keys` (from [`read_keys`], never empty).
    pub fn new(keys: Vec<Arc<TicketKeyMaterial>>) -> FileTicketer {
        FileTicketer {
            keys: RwLock::new(keys),
            random: SystemRandom::new(),
        }
    }

    /// From the next ticket on, seal with `keys[0]` and open with any of `keys`.
    pub fn replace(&self, keys: Vec<Arc<TicketKeyMaterial>>) {
        if keys.is_empty() {
            return;
        }
        match self.keys.write() {
            Ok(mut current) => *current = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    /// The keys in use, the sealing one first.
    pub fn current_keys(&self) -> Vec<Arc<TicketKeyMaterial>> {
        self.keys()
    }

    fn keys(&self) -> Vec<Arc<TicketKeyMaterial>> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ProducesTickets for FileTicketer {
    fn enabled(&self) -> bool {
        true
    }

    /// The lifetime is set by the wrapper that enforces `session_timeout`.
    fn lifetime(&self) -> u32 {
        0
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let keys = self.keys();
        let key = &keys.first()?.0;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let mut ticket = Vec::with_capacity(NAME_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        ticket.extend_from_slice(&key.name);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(plain);
        let mut sealed = ticket.split_off(NAME_LEN + NONCE_LEN);
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&key.name),
                &mut sealed,
            )
            .ok()?;
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let (name, rest) = cipher.split_first_chunk::<NAME_LEN>()?;
        let (nonce, sealed) = rest.split_first_chunk::<NONCE_LEN>()?;
        if sealed.len() < TAG_LEN {
            return None;
        }
        let keys = self.keys();
        let key = &keys.iter().find(|k| &k.0.name == name)?.0;
        let mut buffer = sealed.to_vec();
        let plain = key
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(name),
                &mut buffer,
            )
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fill: u8, name: u8) -> Arc<TicketKeyMaterial> {
        let mut bytes = [fill; KEY_FILE_LEN];
        bytes[..NAME_LEN].fill(name);
        Arc::new(TicketKeyMaterial::from_bytes(&bytes, Path::new("k")).expect("key"))
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens() {
        let (old, new) = (key(1, 1), key(2, 2));
        let before = FileTicketer::new(vec![old.clone()]);
        let ticket = before.encrypt(b"session state").expect("sealed");
        assert_eq!(&ticket[..NAME_LEN], &[1u8; NAME_LEN]);
        assert!(!ticket.windows(13).any(|w| w == b"session state"));

        // Another instance with the same files opens it.
        let twin = FileTicketer::new(vec![old.clone()]);
        assert_eq!(
            twin.decrypt(&ticket).as_deref(),
            Some(&b"session state"[..])
        );

        // Rotation: the new key seals, the old still opens what it sealed.
        before.replace(vec![new.clone(), old.clone()]);
        assert_eq!(
            before.decrypt(&ticket).as_deref(),
            Some(&b"session state"[..])
        );
        let fresh = before.encrypt(b"x").expect("sealed");
        assert_eq!(&fresh[..NAME_LEN], &[2u8; NAME_LEN]);
        // Once the old key is gone, its tickets are refused: a full handshake follows.
        before.replace(vec![new]);
        assert_eq!(before.decrypt(&ticket), None);
    }

    #[test]
    fn altered_or_short_tickets_open_to_nothing() {
        let ticketer = FileTicketer::new(vec![key(7, 7)]);
        let ticket = ticketer.encrypt(b"abc").expect("sealed");
        for i in 0..ticket.len() {
            let mut bent = ticket.clone();
            bent[i] ^= 0x80;
            assert_eq!(ticketer.decrypt(&bent), None, "byte {i}");
        }
        for len in 0..ticket.len() {
            assert_eq!(ticketer.decrypt(&ticket[..len]), None, "{len} bytes");
        }
        // Same secret, other name: another key.
        let other = FileTicketer::new(vec![key(7, 8)]);
        assert_eq!(other.decrypt(&ticket), None);
    }

    #[test]
    fn key_files_must_be_80_bytes_with_distinct_names() {
        let dir = tempfile::tempdir().expect("dir");
        let short = dir.path().join("short.key");
        std::fs::write(&short, [0u8; 48]).expect("write");
        let err = read_keys(std::slice::from_ref(&short))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exactly 80") && err.contains("found 48"),
            "{err}"
        );
        let a = dir.path().join("a.key");
        let b = dir.path().join("b.key");
        std::fs::write(&a, [5u8; 80]).expect("write");
        std::fs::write(&b, [5u8; 80]).expect("write");
        let err = read_keys(&[a.clone(), b]).unwrap_err().to_string();
        assert!(err.contains("same key name"), "{err}");
        assert_eq!(read_keys(&[a]).expect("keys").len(), 1);
        assert!(matches!(read_keys(&[]), Err(TicketKeyError::Empty)));
        let missing = read_keys(&[dir.path().join("none.key")]).unwrap_err();
        assert!(matches!(missing, TicketKeyError::Read { .. }));
    }
}

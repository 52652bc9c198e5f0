//! TLS key logs in the NSS format (`SSLKEYLOGFILE`): one line per secret,
//! `LABEL CLIENT_RANDOM_HEX SECRET_HEX`, which Wireshark, tshark and `mtls trace --keylog`
//! read to decrypt a capture.
//!
//! ```text
//!   rustls ──► KeyLog::log(label, client_random, secret) ──► key_log_line ──► one write(2)
//!                                                           (KeyLogFile, O_APPEND, 0600)
//! ```
//!
//! The server's file ([`KeyLogFile`], `keylog` in `[server.tls]`) holds the secrets of
//! every connection, so it is made readable by its owner only, and an existing file that
//! others may read is refused rather than written to: as ssh refuses a private key that
//! others may read, because widening was someone's mistake and narrowing it silently would
//! hide that the secrets already leaked.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::TlsError;

/// A key log file that rustls appends to, shared by every handshake of a server block.
#[derive(Debug)]
pub struct KeyLogFile {
    path: PathBuf,
    /// One line is one `write` under this lock: lines of concurrent handshakes never
    /// interleave, and `O_APPEND` keeps them whole beside another writer of the file.
    file: Mutex<File>,
}

/// One key log line, newline included: `LABEL CLIENT_RANDOM_HEX SECRET_HEX\n`.
pub fn key_log_line(label: &str, client_random: &[u8], secret: &[u8]) -> String {
    format!(
        "{label} {} {}\n",
        hex::encode(client_random),
        hex::encode(secret)
    )
}

impl KeyLogFile {
    /// Open `path` for appending, creating it with mode 0600. An existing file whose
    /// mode lets the group or others in is refused (its mode is never changed); errors
    /// name the setting `keylog`.
    pub fn open(path: &Path) -> Result<KeyLogFile, TlsError> {
        let error = |message: String| TlsError::File {
            key: "keylog",
            path: path.to_path_buf(),
            message,
        };
        let mut options = File::options();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options
            .open(path)
            .map_err(|e| error(format!("cannot open for appending: {e}")))?;
        // The mode of the file opened, not of the path looked up before: no race with a
        // rename in between.
        let meta = file
            .metadata()
            .map_err(|e| error(format!("cannot read its mode: {e}")))?;
        if !meta.is_file() {
            return Err(error("not a regular file".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(error(format!(
                    "has mode {mode:04o}: others may read the TLS secrets it holds; \
                     chmod 600 it or remove it"
                )));
            }
        }
        Ok(KeyLogFile {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl rustls::KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = key_log_line(label, client_random, secret);
        // A poisoned lock only means a thread panicked around a write; the file is fine.
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!("cannot append to the key log {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use rustls::KeyLog as _;

    use super::*;

    #[test]
    fn lines_are_appended_in_the_nss_format_to_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.log");
        let log = KeyLogFile::open(&path).unwrap();
        log.log("CLIENT_TRAFFIC_SECRET_0", &[0xab; 32], &[0x01, 0xff]);
        drop(log);
        let again = KeyLogFile::open(&path).unwrap();
        again.log("SERVER_TRAFFIC_SECRET_0", &[0; 32], &[0x10]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "CLIENT_TRAFFIC_SECRET_0 {} 01ff\nSERVER_TRAFFIC_SECRET_0 {} 10\n",
                "ab".repeat(32),
                "00".repeat(32)
            )
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_may_read_is_refused_and_left_as_it_is() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.log");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = KeyLogFile::open(&path).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "keylog: {}: has mode 0644: others may read the TLS secrets it holds; chmod \
                 600 it or remove it",
                path.display()
            )
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(KeyLogFile::open(&path).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(KeyLogFile::open(&path).is_ok());
    }
}

//! The error of building TLS configurations: the setting (and file) to blame, so that
//! `mtls check` can point at the config line. Its own module so that every part that
//! reads files (server blocks, clients, the key log) can name it without importing the
//! others.

use std::path::PathBuf;

/// A setting that could not be turned into a working TLS server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file named by a setting cannot be used.
    #[error("{key}: {}: {message}", path.display())]
    File {
        /// The setting (`certificate`, `key`, `client_ca`, `trusted_ca`, `crl`, `keylog`).
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A setting's value cannot be honoured.
    #[error("{key}: {message}")]
    Setting {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

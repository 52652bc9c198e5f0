//! The flags `mtls get` and `mtls bench` share: whom to trust, and who we are. One
//! struct, flattened into both, so the two commands read a certificate, an encrypted key
//! or a .p12 the same way and say so in the same words.

use std::path::PathBuf;

use clap::Args;
use mtls_client::GetFlags;

/// `--ca`, `--cert`/`--key` (and an encrypted key's password), or `--p12`.
#[derive(Debug, Args)]
pub(crate) struct IdentityArgs {
    /// CA certificate(s) the server's certificate must chain to (repeatable).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Vec<PathBuf>,
    /// Our client certificate chain (PEM, leaf first), sent when the server asks.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// The private key of --cert (PEM or DER; plain or encrypted).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// Passwords for an encrypted --key, one per line, tried in order.
    #[arg(
        long,
        value_name = "FILE",
        requires = "key",
        conflicts_with = "key_password_env"
    )]
    pub(crate) key_password_file: Option<PathBuf>,
    /// The environment variable that holds the password of an encrypted --key.
    #[arg(long, value_name = "VAR", requires = "key")]
    pub(crate) key_password_env: Option<String>,
    /// Our certificate and key from a PKCS#12 file instead of --cert/--key.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cert", "key"])]
    pub(crate) p12: Option<PathBuf>,
    /// The environment variable that holds the --p12 password.
    #[arg(long, value_name = "VAR", requires = "p12")]
    pub(crate) password_env: Option<String>,
}

impl IdentityArgs {
    /// The request flags for `url` with this identity; the caller fills in the rest.
    pub(crate) fn flags(self, url: String) -> GetFlags {
        GetFlags {
            url,
            ca: self.ca,
            cert: self.cert,
            key: self.key,
            key_password_file: self.key_password_file,
            key_password_env: self.key_password_env,
            p12: self.p12,
            password_env: self.password_env,
            ..GetFlags::default()
        }
    }
}

//! What `mtls check` finds in a config that loads: files that are there and parse, but
//! that clients will refuse or that should never be served.
//!
//! Loading answers "can the gateway start?"; these answer "will it work, and is it safe?".
//! A server certificate only for clientAuth, or already expired, loads fine and then every
//! handshake fails at the client, far from the config line that caused it: those are
//! errors with the line. A certificate that expires within 30 days, or that does not name
//! a `server_name`, a static root that holds a private key, client CAs given to a server
//! that never asks for a client certificate, and a `keylog` are warnings: the gateway
//! starts and logs them, `mtls check` prints them.

use std::path::{Path, PathBuf};

use mtls_verify::fitness::{Severity, server_fitness};
use time::OffsetDateTime;

use crate::config::{Config, ConfigError, Server, ServerName, TlsSettings, VerifyClient};

/// Errors and warnings about one value of the config.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<ConfigError>,
}

/// The `[server.tls]` certificate (its leaf, DER) against the block's `server_name`s.
pub(crate) fn server_certificate(
    config: &Config,
    server: &Server,
    tls: &TlsSettings,
    leaf: &[u8],
    findings: &mut Findings,
) {
    let names: Vec<String> = server
        .server_names
        .iter()
        .map(|name| match name {
            ServerName::Exact(name) => name.clone(),
            ServerName::Wildcard(suffix) => format!("*{suffix}"),
        })
        .collect();
    for finding in server_fitness(leaf, &names, OffsetDateTime::now_utc()) {
        let error = ConfigError::new(
            config.source.clone(),
            Some(tls.certificate.at),
            "certificate",
            format!("{}: {}", tls.certificate.value.display(), finding.message),
        );
        match finding.severity {
            Severity::Error => findings.errors.push(error),
            Severity::Warning => findings.warnings.push(error),
        }
    }
}

/// `client_ca`, `trusted_ca` or `crl` in a `[server.tls]` whose `verify_client` is off:
/// the settings say "check client certificates" and the server never asks for one, so
/// every client passes as anonymous. A warning at the first of those keys.
pub(crate) fn client_verification(config: &Config, tls: &TlsSettings, findings: &mut Findings) {
    if tls.verify_client != VerifyClient::Off {
        return;
    }
    let set = [
        ("client_ca", &tls.client_ca),
        ("trusted_ca", &tls.trusted_ca),
        ("crl", &tls.crl),
    ]
    .into_iter()
    .find_map(|(key, files)| files.first().map(|first| (key, first.at)));
    if let Some((key, at)) = set {
        findings.warnings.push(ConfigError::new(
            config.source.clone(),
            Some(at),
            key,
            format!(
                "{key} is set but verify_client is off (the default): client certificates \
                 are not requested; set verify_client = \"on\" or \"optional\""
            ),
        ));
    }
}

/// `keylog`: the block works, and every connection to it can be decrypted by whoever
/// reads the file. Said at every start and by every `mtls check`, so it is not forgotten.
pub(crate) fn keylog(config: &Config, server: &Server, tls: &TlsSettings, findings: &mut Findings) {
    let Some(file) = &tls.keylog else {
        return;
    };
    let addresses = server
        .listen
        .iter()
        .map(|l| l.addr.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let names = server
        .server_names
        .iter()
        .map(|name| match name {
            ServerName::Exact(name) => name.clone(),
            ServerName::Wildcard(suffix) => format!("*{suffix}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let target = if names.is_empty() {
        addresses
    } else {
        format!("{names} on {addresses}")
    };
    findings.warnings.push(ConfigError::new(
        config.source.clone(),
        Some(file.at),
        "keylog",
        format!(
            "TLS secrets of every connection to {target} are written to {}: anyone who can \
             read it can decrypt the traffic; remove `keylog` when done",
            file.value.display()
        ),
    ));
}

/// A CRL whose issuer is none of the configured CAs (`client_ca`, `trusted_ca`): it may
/// belong to an intermediate CA that clients present, so it is a warning, not an error;
/// but a CRL file swapped for another PKI's reads the same way. (A configured CA without
/// its CRL, and an expired CRL, refuse to load: the gateway fails closed.)
pub(crate) fn crl_issuers(config: &Config, tls: &TlsSettings, findings: &mut Findings) {
    if tls.crl.is_empty() {
        return;
    }
    let mut subjects = Vec::new();
    for file in tls.client_ca.iter().chain(&tls.trusted_ca) {
        let Ok(data) = mtls_pki::fs::read(&file.value) else {
            continue; // Loading has said why.
        };
        for cert in mtls_pki::pem::certificates(&data, "ca").unwrap_or_default() {
            subjects.push(mtls_tls::identity::PeerCert::from_der(cert.as_ref()).subject);
        }
    }
    for file in &tls.crl {
        let Ok(data) = mtls_pki::fs::read(&file.value) else {
            continue;
        };
        let ders = match mtls_pki::pem::sections(&data, "crl") {
            Ok(sections) if mtls_pki::pem::is_pem(&data) => {
                sections.into_iter().map(|s| s.der).collect()
            }
            _ => vec![data],
        };
        for der in ders {
            let Some(summary) = mtls_verify::crl::summarize(&der) else {
                continue;
            };
            if !subjects.contains(&summary.issuer) {
                findings.warnings.push(ConfigError::new(
                    config.source.clone(),
                    Some(file.at),
                    "crl",
                    format!(
                        "{}: the CRL from {} is from none of the configured CAs ({}); it is \
                         used only for client chains through an intermediate CA of that name",
                        file.value.display(),
                        summary.issuer,
                        subjects.join("; ")
                    ),
                ));
            }
        }
    }
}

/// The most entries looked at under one root: a check must not read a whole disk.
const MAX_ENTRIES: usize = 10_000;
/// Only this much of a file is read to look for a PEM private key header.
const HEAD_BYTES: u64 = 4096;

/// Names that mark a key store or key file wherever they appear in a file name, so that
/// copies (`ca.key.bak`, `server.key.orig`, `site.p12.old`) are caught like the originals.
const KEY_NAME_PARTS: [&str; 5] = [".key", ".p12", ".pfx", ".jks", ".keystore"];

/// The first private key found under `root`, if any: a file whose name holds `.key`, `.p12`,
/// `.pfx`, `.jks` or `.keystore` anywhere (backups keep the original name and add a
/// suffix), a `private/` directory (an mtls or easy-rsa CA directory), or a regular file of
/// any name whose first [`HEAD_BYTES`] hold a PEM `PRIVATE KEY` header (PKCS#8, encrypted
/// PKCS#8, RSA, EC, OpenSSH). The content is checked whatever the extension: a key copied
/// to `notes.md` or `key.old` is served as readily as `ca.key`. Symbolic links to
/// directories are not followed; at most [`MAX_ENTRIES`] entries are looked at.
pub(crate) fn private_key_under(root: &Path) -> Option<PathBuf> {
    let mut pending = vec![root.to_path_buf()];
    let mut seen = 0;
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                return None;
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
            if kind.is_dir() {
                if name == "private" {
                    return Some(path);
                }
                pending.push(path);
                continue;
            }
            if KEY_NAME_PARTS.iter().any(|part| name.contains(part)) {
                return Some(path);
            }
            if holds_pem_key(&path) {
                return Some(path);
            }
        }
    }
    None
}

/// Whether the head of the regular file at `path` (a symbolic link is followed: the file
/// server follows it too) holds a PEM private key header. Anything else (a FIFO, a device)
/// is not opened: opening a FIFO would block the check.
fn holds_pem_key(path: &Path) -> bool {
    use std::io::Read as _;
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        _ => return false,
    }
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = Vec::new();
    if file.take(HEAD_BYTES).read_to_end(&mut head).is_err() {
        return false;
    }
    // "PRIVATE KEY-----" ends every private key header: "-----BEGIN PRIVATE KEY-----",
    // "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY".
    head.windows(b"PRIVATE KEY-----".len())
        .any(|w| w == b"PRIVATE KEY-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_name_by_directory_and_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("public/css")).unwrap();
        std::fs::write(root.join("public/index.html"), "<p>hi</p>").unwrap();
        std::fs::write(root.join("public/ca.crt"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        assert_eq!(private_key_under(root), None);

        std::fs::write(
            root.join("public/css/bundle.pem"),
            "x\n-----BEGIN EC PRIVATE KEY-----\n",
        )
        .unwrap();
        assert_eq!(
            private_key_under(root),
            Some(root.join("public/css/bundle.pem"))
        );
        std::fs::remove_file(root.join("public/css/bundle.pem")).unwrap();

        std::fs::write(
            root.join("notes.md"),
            "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        assert_eq!(private_key_under(root), Some(root.join("notes.md")));
        std::fs::remove_file(root.join("notes.md")).unwrap();

        std::fs::write(root.join("ca.key.bak"), "anything").unwrap();
        assert_eq!(private_key_under(root), Some(root.join("ca.key.bak")));
        std::fs::remove_file(root.join("ca.key.bak")).unwrap();

        std::fs::write(root.join("ca.key"), "anything").unwrap();
        assert_eq!(private_key_under(root), Some(root.join("ca.key")));
        std::fs::remove_file(root.join("ca.key")).unwrap();

        std::fs::create_dir(root.join("private")).unwrap();
        assert_eq!(private_key_under(root), Some(root.join("private")));
        assert_eq!(private_key_under(&root.join("missing")), None);
    }
}

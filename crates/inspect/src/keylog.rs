//! NSS key-log files (`SSLKEYLOGFILE`), the format browsers, curl, OpenSSL and rustls write.
//!
//! Each line is `LABEL <client_random hex> <secret hex>`; the client random (32 bytes, from
//! the ClientHello) ties a secret to one connection. This is the only way a passive observer
//! can decrypt TLS 1.3 or forward-secret TLS 1.2, and it is what Wireshark reads, so a log
//! that works there works here. Lines we have no use for (comments, blank lines, labels such
//! as `CLIENT_TRAFFIC_SECRET_N` or the ECH ones) are skipped rather than rejected, because
//! writers add labels over time.

use std::collections::HashMap;
use std::fmt;

/// Secrets from an NSS key log, looked up by client random.
///
/// Its `Debug` shows how many connections it has secrets for, never the secrets.
#[derive(Clone, Default)]
pub struct KeyLog {
    connections: HashMap<[u8; 32], Secrets>,
}

/// A key-log line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLogError {
    /// The line has a known label but is not `LABEL <client_random hex> <secret hex>`.
    #[error("key log line {line}: {reason}")]
    Line {
        /// 1-based line number (1 for lines given to [`KeyLog::push_line`]).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// The secrets of one connection; each is optional because writers log them as they go.
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    /// TLS 1.2 (and earlier) master secret, label `CLIENT_RANDOM`.
    pub(crate) master_secret: Option<Vec<u8>>,
    pub(crate) client_early_traffic: Option<Vec<u8>>,
    pub(crate) client_handshake_traffic: Option<Vec<u8>>,
    pub(crate) server_handshake_traffic: Option<Vec<u8>>,
    pub(crate) client_traffic_0: Option<Vec<u8>>,
    pub(crate) server_traffic_0: Option<Vec<u8>>,
    pub(crate) exporter: Option<Vec<u8>>,
    pub(crate) early_exporter: Option<Vec<u8>>,
}

impl KeyLog {
    /// Parses a whole key log. The error names the first bad line.
    pub fn parse(text: &str) -> Result<KeyLog, KeyLogError> {
        let mut log = KeyLog::empty();
        for (index, line) in text.lines().enumerate() {
            log.push_numbered(index + 1, line)?;
        }
        Ok(log)
    }

    /// A key log with no secrets: everything after the hellos shows as encrypted.
    pub fn empty() -> KeyLog {
        KeyLog::default()
    }

    /// Adds one line, e.g. as a TLS library's key-log callback produces it.
    pub fn push_line(&mut self, line: &str) -> Result<(), KeyLogError> {
        self.push_numbered(1, line)
    }

    /// Adds every secret of `other`, which wins where both have one.
    pub fn extend(&mut self, other: KeyLog) {
        for (random, secrets) in other.connections {
            let entry = self.connections.entry(random).or_default();
            let Secrets {
                master_secret,
                client_early_traffic,
                client_handshake_traffic,
                server_handshake_traffic,
                client_traffic_0,
                server_traffic_0,
                exporter,
                early_exporter,
            } = secrets;
            let merge = |old: &mut Option<Vec<u8>>, new: Option<Vec<u8>>| {
                if new.is_some() {
                    *old = new;
                }
            };
            merge(&mut entry.master_secret, master_secret);
            merge(&mut entry.client_early_traffic, client_early_traffic);
            merge(
                &mut entry.client_handshake_traffic,
                client_handshake_traffic,
            );
            merge(
                &mut entry.server_handshake_traffic,
                server_handshake_traffic,
            );
            merge(&mut entry.client_traffic_0, client_traffic_0);
            merge(&mut entry.server_traffic_0, server_traffic_0);
            merge(&mut entry.exporter, exporter);
            merge(&mut entry.early_exporter, early_exporter);
        }
    }

    /// How many connections (client randoms) the log has secrets for.
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    /// Whether the log has no secrets at all.
    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    /// Whether the log has any secret for the connection with this client random.
    pub fn contains(&self, client_random: &[u8; 32]) -> bool {
        self.connections.contains_key(client_random)
    }

    pub(crate) fn secrets(&self, client_random: &[u8; 32]) -> Option<&Secrets> {
        self.connections.get(client_random)
    }

    fn push_numbered(&mut self, number: usize, line: &str) -> Result<(), KeyLogError> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let mut words = line.split_ascii_whitespace();
        let label = words.next().unwrap_or_default();
        let slot: fn(&mut Secrets) -> &mut Option<Vec<u8>> = match label {
            "CLIENT_RANDOM" => |s| &mut s.master_secret,
            "CLIENT_EARLY_TRAFFIC_SECRET" => |s| &mut s.client_early_traffic,
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => |s| &mut s.client_handshake_traffic,
            "SERVER_HANDSHAKE_TRAFFIC_SECRET" => |s| &mut s.server_handshake_traffic,
            "CLIENT_TRAFFIC_SECRET_0" => |s| &mut s.client_traffic_0,
            "SERVER_TRAFFIC_SECRET_0" => |s| &mut s.server_traffic_0,
            "EXPORTER_SECRET" => |s| &mut s.exporter,
            "EARLY_EXPORTER_SECRET" => |s| &mut s.early_exporter,
            _ => return Ok(()),
        };
        let error = |reason: String| KeyLogError::Line {
            line: number,
            reason,
        };
        let (Some(random_hex), Some(secret_hex), None) = (words.next(), words.next(), words.next())
        else {
            return Err(error(format!(
                "expected `{label} <client_random> <secret>`"
            )));
        };
        let random =
            hex::decode(random_hex).map_err(|e| error(format!("client random is not hex: {e}")))?;
        let random: [u8; 32] = random.try_into().map_err(|bytes: Vec<u8>| {
            error(format!(
                "client random has {} bytes, expected 32",
                bytes.len()
            ))
        })?;
        let secret =
            hex::decode(secret_hex).map_err(|e| error(format!("secret is not hex: {e}")))?;
        // 48 bytes for a master secret or a SHA-384 traffic secret; anything else is a typo.
        if secret.is_empty() || secret.len() > 64 {
            return Err(error(format!(
                "secret has {} bytes, expected 32 to 48",
                secret.len()
            )));
        }
        *slot(self.connections.entry(random).or_default()) = Some(secret);
        Ok(())
    }
}

impl fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLog")
            .field("connections", &self.connections.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANDOM: &str = "3aaefb20d1c6b23127aab959b1728010d8b331bf10f0e7d45bd3d49674cf6710";

    #[test]
    fn reads_labels_and_skips_the_rest() {
        let secret = "ab".repeat(48);
        let text = format!(
            "# comment\n\nCLIENT_RANDOM {RANDOM} {secret}\r\nCLIENT_TRAFFIC_SECRET_N {RANDOM} zz\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {RANDOM} {}\n",
            "cd".repeat(32)
        );
        let log = KeyLog::parse(&text).expect("valid log");
        assert_eq!(log.len(), 1);
        let random: [u8; 32] = hex::decode(RANDOM).expect("hex").try_into().expect("32");
        let secrets = log.secrets(&random).expect("connection");
        assert_eq!(secrets.master_secret.as_deref().map(<[u8]>::len), Some(48));
        assert_eq!(
            secrets.server_handshake_traffic.as_deref().map(<[u8]>::len),
            Some(32)
        );
        assert!(secrets.client_handshake_traffic.is_none());
        assert_eq!(format!("{log:?}"), "KeyLog { connections: 1 }");
    }

    #[test]
    fn errors_name_the_line() {
        let text = format!("# ok\nCLIENT_RANDOM {RANDOM}\n");
        let err = KeyLog::parse(&text).expect_err("missing secret");
        assert!(matches!(err, KeyLogError::Line { line: 2, .. }), "{err}");
        let err = KeyLog::parse("CLIENT_RANDOM abcd 00").expect_err("short random");
        assert_eq!(
            err.to_string(),
            "key log line 1: client random has 2 bytes, expected 32"
        );
        let err = KeyLog::parse(&format!("EXPORTER_SECRET {RANDOM} xyz")).expect_err("bad hex");
        assert!(err.to_string().contains("secret is not hex"), "{err}");
    }
}

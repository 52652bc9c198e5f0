//! The CA database: one line per issued certificate, in a text file a person can read
//! and `grep`, like easy-rsa's and `openssl ca`'s `index.txt`.
//!
//! ```text
//! # status  not_after             revoked                           serial  profile  name   subject
//! V         2027-12-24T10:00:00Z  -                                 5A3F..  server   api    CN=api
//! R         2027-12-24T10:00:00Z  2026-11-22T15:04:05Z,keyCompromise 7B21..  client   alice  CN=alice
//! ```
//! Fields are separated by one tab. Status is `V` (valid) or `R` (revoked); expiry is
//! computed from `not_after`, never stored, so the file does not go stale.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, Result};

const HEADER: &str =
    "# mtls CA database: status\tnot_after\trevoked[,reason]\tserial\tprofile\tname\tsubject\n";

/// What a certificate was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A TLS server: serverAuth, SANs required.
    Server,
    /// A TLS client: clientAuth.
    Client,
    /// An intermediate CA.
    Ca,
}

impl Profile {
    /// The word used on the command line and in the database.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Server => "server",
            Profile::Client => "client",
            Profile::Ca => "ca",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Profile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "server" => Ok(Profile::Server),
            "client" => Ok(Profile::Client),
            "ca" => Ok(Profile::Ca),
            _ => Err(Error::InvalidInput(format!(
                "unknown profile {s:?}; expected server or client"
            ))),
        }
    }
}

/// Why a certificate was revoked (RFC 5280 CRLReason), with openssl's spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Reason {
    /// unspecified
    #[serde(rename = "unspecified")]
    Unspecified,
    /// keyCompromise
    #[serde(rename = "keyCompromise")]
    KeyCompromise,
    /// CACompromise
    #[serde(rename = "CACompromise")]
    CaCompromise,
    /// affiliationChanged
    #[serde(rename = "affiliationChanged")]
    AffiliationChanged,
    /// superseded
    #[serde(rename = "superseded")]
    Superseded,
    /// cessationOfOperation
    #[serde(rename = "cessationOfOperation")]
    CessationOfOperation,
    /// certificateHold
    #[serde(rename = "certificateHold")]
    CertificateHold,
    /// privilegeWithdrawn
    #[serde(rename = "privilegeWithdrawn")]
    PrivilegeWithdrawn,
}

impl Reason {
    /// Every reason, for `--help` and error messages.
    pub const ALL: [Reason; 8] = [
        Reason::Unspecified,
        Reason::KeyCompromise,
        Reason::CaCompromise,
        Reason::AffiliationChanged,
        Reason::Superseded,
        Reason::CessationOfOperation,
        Reason::CertificateHold,
        Reason::PrivilegeWithdrawn,
    ];

    /// openssl's name for the reason.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "keyCompromise",
            Reason::CaCompromise => "CACompromise",
            Reason::AffiliationChanged => "affiliationChanged",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessationOfOperation",
            Reason::CertificateHold => "certificateHold",
            Reason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    /// The rcgen form, for writing CRLs.
    pub fn to_rcgen(self) -> rcgen::RevocationReason {
        use rcgen::RevocationReason as R;
        match self {
            Reason::Unspecified => R::Unspecified,
            Reason::KeyCompromise => R::KeyCompromise,
            Reason::CaCompromise => R::CaCompromise,
            Reason::AffiliationChanged => R::AffiliationChanged,
            Reason::Superseded => R::Superseded,
            Reason::CessationOfOperation => R::CessationOfOperation,
            Reason::CertificateHold => R::CertificateHold,
            Reason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        }
    }

    /// From the numeric RFC 5280 code found in a CRL.
    pub fn from_code(code: u8) -> Option<Reason> {
        Some(match code {
            0 => Reason::Unspecified,
            1 => Reason::KeyCompromise,
            2 => Reason::CaCompromise,
            3 => Reason::AffiliationChanged,
            4 => Reason::Superseded,
            5 => Reason::CessationOfOperation,
            6 => Reason::CertificateHold,
            9 => Reason::PrivilegeWithdrawn,
            _ => return None,
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Reason {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Reason::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = Reason::ALL.iter().map(|r| r.name()).collect();
                Error::InvalidInput(format!(
                    "unknown revocation reason {s:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// A revocation: when and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why.
    pub reason: Reason,
}

/// One issued certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Serial number, upper-case hex.
    pub serial: String,
    /// The user's short name for it (file names derive from it).
    pub name: String,
    /// What it was issued for.
    pub profile: Profile,
    /// The subject DN, as openssl prints it.
    pub subject: String,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Set once revoked.
    pub revoked: Option<Revocation>,
}

/// The status of an entry at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In force.
    Valid,
    /// Past its not-after date.
    Expired,
    /// Revoked.
    Revoked,
}

impl Entry {
    /// The status at `now`.
    pub fn status(&self, now: OffsetDateTime) -> Status {
        if self.revoked.is_some() {
            Status::Revoked
        } else if self.not_after < now {
            Status::Expired
        } else {
            Status::Valid
        }
    }
}

/// The whole database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Database {
    /// Entries in issue order.
    pub entries: Vec<Entry>,
}

impl Database {
    /// Parse the text form; `path` is used in error messages only.
    pub fn parse(text: &str, path: &Path) -> Result<Database> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| Error::Database {
                path: path.to_path_buf(),
                line: i + 1,
                message,
            };
            let fields: Vec<&str> = line.split('\t').collect();
            let [status, not_after, revoked, serial, profile, name, subject] = fields[..] else {
                return Err(err(format!(
                    "expected 7 tab-separated fields, found {}",
                    fields.len()
                )));
            };
            let time = |s: &str| {
                OffsetDateTime::parse(s, &Rfc3339).map_err(|e| err(format!("bad time {s:?}: {e}")))
            };
            let revoked = match (status, revoked) {
                ("V", "-") => None,
                ("R", r) => {
                    let (at, reason) = r.split_once(',').unwrap_or((r, "unspecified"));
                    Some(Revocation {
                        at: time(at)?,
                        reason: reason.parse().map_err(|e: Error| err(e.to_string()))?,
                    })
                }
                ("V", _) => return Err(err("a valid (V) entry has a revocation time".into())),
                (s, _) => return Err(err(format!("unknown status {s:?}; expected V or R"))),
            };
            entries.push(Entry {
                serial: crate::names::parse_serial(serial).map_err(|e| err(e.to_string()))?,
                name: name.to_owned(),
                profile: profile.parse().map_err(|e: Error| err(e.to_string()))?,
                subject: subject.to_owned(),
                not_after: time(not_after)?,
                revoked,
            });
        }
        Ok(Database { entries })
    }

    /// The text form.
    pub fn render(&self) -> String {
        let mut out = String::from(HEADER);
        for e in &self.entries {
            let (status, revoked) = match &e.revoked {
                None => ("V", "-".to_owned()),
                Some(r) => ("R", format!("{},{}", rfc3339(r.at), r.reason)),
            };
            out.push_str(&format!(
                "{status}\t{}\t{revoked}\t{}\t{}\t{}\t{}\n",
                rfc3339(e.not_after),
                e.serial,
                e.profile,
                e.name,
                e.subject.replace(['\t', '\n'], " ")
            ));
        }
        out
    }

    /// The newest entry with this name that is not revoked, else the newest with this name.
    pub fn find_name(&self, name: &str) -> Option<&Entry> {
        let mut named = self.entries.iter().rev().filter(|e| e.name == name);
        let newest = named.clone().next();
        named.find(|e| e.revoked.is_none()).or(newest)
    }

    /// The entry with this serial (normalised hex).
    pub fn find_serial(&self, serial: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.serial == serial)
    }
}

/// RFC 3339 in UTC, seconds precision: how every time in our files is written.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// A time for people: `2026-11-22 14:51:56 UTC`.
pub fn human_time(t: OffsetDateTime) -> String {
    rfc3339(t).replace('T', " ").replace('Z', " UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(serial: &str, name: &str, revoked: Option<Revocation>) -> Entry {
        Entry {
            serial: serial.into(),
            name: name.into(),
            profile: Profile::Client,
            subject: format!("CN={name}"),
            not_after: time::macros::datetime!(2030-01-01 0:00 UTC),
            revoked,
        }
    }

    #[test]
    fn round_trips() {
        let db = Database {
            entries: vec![
                entry("0A", "alice", None),
                entry(
                    "0B",
                    "bob",
                    Some(Revocation {
                        at: time::macros::datetime!(2026-11-22 15:04:05 UTC),
                        reason: Reason::KeyCompromise,
                    }),
                ),
            ],
        };
        let text = db.render();
        assert!(text.contains("R\t2030-01-01T00:00:00Z\t2026-11-22T15:04:05Z,keyCompromise\t0B"));
        assert_eq!(Database::parse(&text, Path::new("index.txt")).unwrap(), db);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let text =
            format!("{HEADER}V\t2030-01-01T00:00:00Z\t-\t0A\tclient\talice\tCN=alice\n\nV\tnope\n");
        let err = Database::parse(&text, Path::new("pki/index.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("pki/index.txt:4:"), "{err}");
    }

    #[test]
    fn find_name_prefers_the_valid_one() {
        let revoked = Some(Revocation {
            at: time::macros::datetime!(2026-01-01 0:00 UTC),
            reason: Reason::Superseded,
        });
        let db = Database {
            entries: vec![entry("01", "a", None), entry("02", "a", revoked)],
        };
        assert_eq!(db.find_name("a").unwrap().serial, "01");
    }
}

//! Names that go into certificates and onto disk: subject alternative names, distinguished
//! names, serial numbers, and the short NAME a user gives a certificate.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use rcgen::{DistinguishedName, DnType, SanType, SerialNumber};
use serde::Serialize;

use crate::error::{Error, Result};

/// A subject alternative name as the user writes it: `dns:api.local`, `ip:10.0.0.5`,
/// `email:alice@example.com`, `uri:spiffe://example/alice`, or a bare host or address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum San {
    /// A DNS name, possibly a leftmost wildcard (`*.example.com`).
    Dns(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// An RFC 822 e-mail address.
    Email(String),
    /// A URI, e.g. a SPIFFE ID.
    Uri(String),
}

impl San {
    /// The rcgen form.
    pub fn to_rcgen(&self) -> Result<SanType> {
        let ia5 = |s: &str| {
            s.to_owned()
                .try_into()
                .map_err(|_| Error::InvalidInput(format!("SAN {self} is not ASCII")))
        };
        Ok(match self {
            San::Dns(d) => SanType::DnsName(ia5(d)?),
            San::Ip(ip) => SanType::IpAddress(*ip),
            San::Email(e) => SanType::Rfc822Name(ia5(e)?),
            San::Uri(u) => SanType::URI(ia5(u)?),
        })
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(d) => write!(f, "DNS:{d}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
            San::Email(e) => write!(f, "email:{e}"),
            San::Uri(u) => write!(f, "URI:{u}"),
        }
    }
}

impl FromStr for San {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidInput(format!("invalid --san {s:?}: {why}"));
        let (kind, value) = match s.split_once(':') {
            Some((k, v))
                if ["dns", "ip", "email", "uri"].contains(&k.to_ascii_lowercase().as_str()) =>
            {
                (k.to_ascii_lowercase(), v)
            }
            // A bare value: an IP address (v6 has colons too) or a host name.
            _ => match s.parse::<IpAddr>() {
                Ok(ip) => return Ok(San::Ip(ip)),
                Err(_) => ("dns".to_owned(), s),
            },
        };
        match kind.as_str() {
            "ip" => value
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map(San::Ip)
                .map_err(|_| bad("not an IPv4 or IPv6 address")),
            "email" => {
                let (local, domain) = value.split_once('@').ok_or_else(|| bad("no @"))?;
                if local.is_empty() || !is_dns_name(domain, false) {
                    return Err(bad("not an e-mail address"));
                }
                Ok(San::Email(value.to_owned()))
            }
            "uri" => {
                let scheme_ok = value.split_once(':').is_some_and(|(scheme, rest)| {
                    !scheme.is_empty()
                        && !rest.is_empty()
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                });
                if !scheme_ok || !value.is_ascii() || value.contains(char::is_whitespace) {
                    return Err(bad("not an absolute URI (scheme:rest)"));
                }
                Ok(San::Uri(value.to_owned()))
            }
            _ => {
                let lower = value.to_ascii_lowercase();
                if !is_dns_name(&lower, true) {
                    return Err(bad(
                        "not a DNS name (letters, digits, '-' in dot-separated labels; '*.' only as the first label)",
                    ));
                }
                Ok(San::Dns(lower))
            }
        }
    }
}

/// True for a syntactically valid DNS name; `*.` is allowed as the first label when
/// `wildcard` is set.
pub fn is_dns_name(name: &str, wildcard: bool) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let body = match name.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        _ => name,
    };
    !body.is_empty()
        && body.len() <= 253
        && body.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Check a certificate's short NAME: it becomes a file name, so no slashes, no dot files.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid name {name:?}: use letters, digits and . _ - @ + (it becomes a file name)"
        )))
    }
}

/// Subject fields a user may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// commonName.
    pub common_name: String,
    /// organizationName, if any.
    pub organization: Option<String>,
    /// organizationalUnitName, if any.
    pub organizational_unit: Option<String>,
}

impl Subject {
    /// A subject with only a common name.
    pub fn cn(common_name: impl Into<String>) -> Self {
        Subject {
            common_name: common_name.into(),
            ..Subject::default()
        }
    }

    /// The rcgen distinguished name (O, OU, CN order, as openssl prints them).
    pub fn to_rcgen(&self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        if let Some(o) = &self.organization {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        if let Some(ou) = &self.organizational_unit {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        dn.push(DnType::CommonName, self.common_name.as_str());
        dn
    }
}

/// A fresh random positive 128-bit serial number (RFC 5280 allows up to 20 octets; CAB
/// Forum wants at least 64 bits of entropy).
pub fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // aws-lc's system RNG only fails if the OS has no entropy source at all.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator failed");
    // Positive (top bit clear) and always 16 octets long (first byte non-zero).
    bytes[0] = (bytes[0] & 0x7f).max(1);
    SerialNumber::from_slice(&bytes)
}

/// A random password for a PKCS#12 file nobody gave a password for: 24 characters from an
/// alphabet without look-alikes (no 0/O, 1/l/I), about 139 bits.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut bytes = [0u8; 24];
    // See random_serial: only fails without any OS entropy source.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator failed");
    // 256 % 56 != 0 leaves a tiny bias; irrelevant at 24 characters.
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Serial bytes as upper-case hex without separators, as openssl's index.txt writes them.
pub fn serial_hex(bytes: &[u8]) -> String {
    let trimmed = match bytes.iter().position(|&b| b != 0) {
        Some(i) => &bytes[i..],
        None => &bytes[bytes.len().saturating_sub(1)..],
    };
    hex::encode_upper(trimmed)
}

/// Normalise a serial typed by a user: `3F:2A:..`, `0x3f2a..`, lower case.
pub fn parse_serial(s: &str) -> Result<String> {
    let cleaned: String = s
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    let bytes = hex::decode(if cleaned.len() % 2 == 1 {
        format!("0{cleaned}")
    } else {
        cleaned
    })
    .map_err(|_| Error::InvalidInput(format!("invalid serial {s:?}: expected hex digits")))?;
    if bytes.is_empty() {
        return Err(Error::InvalidInput("empty serial".into()));
    }
    Ok(serial_hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_parse_in_all_forms() {
        assert_eq!(
            "api.local".parse::<San>().unwrap(),
            San::Dns("api.local".into())
        );
        assert_eq!(
            "10.0.0.5".parse::<San>().unwrap(),
            San::Ip("10.0.0.5".parse().unwrap())
        );
        assert_eq!(
            "::1".parse::<San>().unwrap(),
            San::Ip("::1".parse().unwrap())
        );
        assert_eq!(
            "ip:[::1]".parse::<San>().unwrap(),
            San::Ip("::1".parse().unwrap())
        );
        assert_eq!(
            "DNS:*.Example.com".parse::<San>().unwrap(),
            San::Dns("*.example.com".into())
        );
        assert_eq!(
            "email:alice@example.com".parse::<San>().unwrap(),
            San::Email("alice@example.com".into())
        );
        assert_eq!(
            "uri:spiffe://example.org/alice".parse::<San>().unwrap(),
            San::Uri("spiffe://example.org/alice".into())
        );
        for bad in [
            "ip:300.1.1.1",
            "email:nobody",
            "a..b",
            "*.*.x",
            "uri:no scheme",
            "x y",
        ] {
            assert!(bad.parse::<San>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn names_that_are_paths_are_refused() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("api.example.com").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "-rf", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serials_are_positive_and_sixteen_octets() {
        for _ in 0..100 {
            let s = random_serial().to_bytes();
            assert_eq!(s.len(), 16);
            assert!(s[0] > 0 && s[0] < 0x80);
        }
        assert_eq!(parse_serial("0a:ff").unwrap(), "0AFF");
        assert_eq!(parse_serial("0x00abc").unwrap(), "0ABC");
        assert!(parse_serial("xyz").is_err());
    }
}

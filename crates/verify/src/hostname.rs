//! Is the end-entity certificate valid for the name the peer was asked for? (RFC 6125)
//!
//! The name a client dialled, or a policy asks of a client, is checked against the
//! subjectAltName of the end-entity certificate only, each form against its own kind:
//!
//! ```text
//!   PeerName::Dns    ──▶ dNSName SANs: whole-label, case-insensitive, as A-labels; a
//!                        wildcard only as the whole left-most label of a name with at least
//!                        two labels after it (`*.example.com`), matching exactly one label
//!   PeerName::Ip     ──▶ iPAddress SANs, 4 or 16 bytes (never a DNS SAN, never the CN)
//!   PeerName::Email  ──▶ rfc822Name SANs: local part exact, domain case-insensitive
//!   cn_fallback      ──▶ only without any subjectAltName extension: a DNS name against each
//!                        subject CN that is a host name (nginx and OpenSSL do this; RFC 6125,
//!                        browsers and webpki do not; the caller's policy decides)
//! ```
//!
//! Why these rules: they are what the CA/Browser Forum requires of certificates and what
//! browsers and rustls-webpki accept (x509-limbo's `webpki::san` cases), so a certificate
//! that works in a browser works here and a partial wildcard (`f*.example.com`), a wildcard
//! below the left-most label, `*` or `*.com` never do. Names are compared as A-labels: there
//! is no IDNA crate in the build, so a non-ASCII name is refused with a request for its
//! `xn--` form rather than converted. A SAN ending in a dot never matches (webpki's rule);
//! the name asked for may end in one.
//!
//! A CN is used as a host name only when it is one (`cn_is_host_name`: `backend` and
//! `www.example.com` are, `Alice Smith` and `10.0.0.1` are not). Name constraints (`names`)
//! check every such CN of an end entity without a subjectAltName extension as a DNS name,
//! so the fallback cannot escape a CA's DNS constraints.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

/// The name a peer must prove: what the client dialled, or what a policy asks of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerName {
    /// A DNS name, as an A-label (ASCII) name without a trailing dot.
    Dns(String),
    /// An IP address (matched only against IP address SANs).
    Ip(IpAddr),
    /// An email address (matched against rfc822Name SANs).
    Email(String),
}

impl FromStr for PeerName {
    type Err = String;

    /// An IP address (IPv6 with or without brackets), an email address (it has an `@`), or
    /// else a DNS host name: ASCII letters, digits, hyphens and dots, at most one trailing
    /// dot, which is dropped.
    fn from_str(s: &str) -> Result<PeerName, String> {
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(PeerName::Ip(ip));
        }
        if s.contains('@') {
            return match s.split_once('@') {
                Some((local, domain))
                    if !local.is_empty()
                        && !domain.contains('@')
                        && host_name_problem(domain, Strictness::Reference).is_none() =>
                {
                    Ok(PeerName::Email(s.to_owned()))
                }
                _ => Err(format!(
                    "{s:?} is not an email address (one @, a local part, a host name after it)"
                )),
            };
        }
        let host = s.strip_suffix('.').unwrap_or(s);
        if !host.is_ascii() {
            return Err(format!(
                "{s:?} is not an ASCII host name: give its A-label (xn--) form, as `idn2` prints it"
            ));
        }
        match host_name_problem(host, Strictness::Reference) {
            None => Ok(PeerName::Dns(host.to_ascii_lowercase())),
            Some(problem) => Err(format!("{s:?} is not a host name: {problem}")),
        }
    }
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerName::Dns(name) | PeerName::Email(name) => f.write_str(name),
            PeerName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Whether `leaf` is valid for `name`; the error is the sentence. With `cn_fallback`, a
/// certificate without any subjectAltName extension is matched on its subject CN (DNS names
/// only), as nginx and OpenSSL do.
pub(crate) fn check(
    leaf: &X509Certificate<'_>,
    name: &PeerName,
    cn_fallback: bool,
) -> Result<(), String> {
    let sans = match leaf.subject_alternative_name() {
        Ok(san) => san.map(|san| &san.value.general_names),
        Err(_) => {
            return Err(format!(
                "name mismatch: asked for {name}, and the certificate's subjectAltName extension does not parse"
            ));
        }
    };
    let matched = match (sans, name) {
        (Some(sans), _) => sans.iter().any(|san| san_matches(san, name)),
        (None, PeerName::Dns(host)) if cn_fallback => common_names(leaf)
            .iter()
            .any(|cn| cn_is_host_name(cn) && dns_matches(cn, host)),
        (None, _) => false,
    };
    if matched {
        return Ok(());
    }
    Err(match sans {
        Some(sans) if sans.is_empty() => {
            format!("name mismatch: asked for {name}, the certificate has an empty subjectAltName")
        }
        Some(_) => format!(
            "name mismatch: asked for {name}, the certificate has [{}]",
            capped(&mtls_pki::show::subject_alt_names(leaf))
        ),
        None => {
            let cns: Vec<String> = common_names(leaf)
                .iter()
                .map(|cn| format!("CN={}", mtls_pki::dn::escape_value(cn)))
                .collect();
            let has = if cns.is_empty() {
                "no subject CN".to_owned()
            } else {
                format!("[{}]", capped(&cns))
            };
            let note = if !cn_fallback && !cns.is_empty() && matches!(name, PeerName::Dns(_)) {
                " (the CN is used only with common_name_fallback)"
            } else {
                ""
            };
            format!(
                "name mismatch: asked for {name}, the certificate has {has} and no subjectAltName{note}"
            )
        }
    })
}

/// RFC 6125 matching of one DNS pattern (a dNSName SAN, or a CN with `cn_fallback`) against
/// one name asked for. The name may end with one dot; the pattern may not. A wildcard is
/// only the whole left-most label, stands for exactly one label, and needs at least two
/// labels after it. Both must be ASCII host names (letters, digits, hyphens); comparison is
/// case-insensitive.
pub fn dns_matches(pattern: &str, name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if host_name_problem(name, Strictness::Reference).is_some() {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host_name_problem(suffix, Strictness::Reference).is_none()
                && suffix.contains('.')
                && name
                    .split_once('.')
                    .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(suffix))
        }
        None => {
            host_name_problem(pattern, Strictness::Reference).is_none()
                && pattern.eq_ignore_ascii_case(name)
        }
    }
}

/// Whether a subject CN is taken for a host name: a valid DNS name or wildcard pattern
/// whose last label is not all digits (so `backend` is, `My Server` and `10.0.0.1` are
/// not). The CN fallback matches only these; name constraints check them as DNS names.
pub(crate) fn cn_is_host_name(cn: &str) -> bool {
    let host = cn.strip_prefix("*.").unwrap_or(cn);
    host_name_problem(host, Strictness::Presented).is_none()
        && host
            .rsplit('.')
            .next()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

/// How strict [`host_name_problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// A name asked for: letters, digits and hyphens (RFC 1123), last label not all digits.
    Reference,
    /// A name in a certificate or a constraint: underscores allowed too, as webpki does for
    /// compatibility (`_service.example.com` exists in private PKIs).
    Presented,
}

/// Why `host` is not a host name (no trailing dot, no wildcard), or `None` when it is one.
pub(crate) fn host_name_problem(host: &str, strictness: Strictness) -> Option<&'static str> {
    if host.is_empty() {
        return Some("it is empty");
    }
    if host.len() > 253 {
        return Some("it is longer than 253 characters");
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Some("it has an empty label");
        }
        if label.len() > 63 {
            return Some("a label is longer than 63 characters");
        }
        let allowed = |b: u8| {
            b.is_ascii_alphanumeric()
                || b == b'-'
                || (b == b'_' && strictness == Strictness::Presented)
        };
        if !label.bytes().all(allowed) {
            return Some(match strictness {
                Strictness::Reference => "a label may hold only letters, digits and hyphens",
                Strictness::Presented => {
                    "a label may hold only letters, digits, hyphens and underscores"
                }
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("a label starts or ends with a hyphen");
        }
    }
    if strictness == Strictness::Reference
        && host
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some("its last label is all digits (an IP address that does not parse?)");
    }
    None
}

fn san_matches(san: &GeneralName<'_>, name: &PeerName) -> bool {
    match (san, name) {
        (GeneralName::DNSName(pattern), PeerName::Dns(host)) => dns_matches(pattern, host),
        (GeneralName::IPAddress(bytes), PeerName::Ip(ip)) => match ip {
            IpAddr::V4(v4) => *bytes == v4.octets().as_slice(),
            IpAddr::V6(v6) => *bytes == v6.octets().as_slice(),
        },
        (GeneralName::RFC822Name(presented), PeerName::Email(wanted)) => {
            email_matches(presented, wanted)
        }
        _ => false,
    }
}

/// Local parts are case-sensitive (RFC 5321 2.4), domains are not.
fn email_matches(presented: &str, wanted: &str) -> bool {
    match (presented.rsplit_once('@'), wanted.rsplit_once('@')) {
        (Some((p_local, p_domain)), Some((w_local, w_domain))) => {
            p_local == w_local && p_domain.eq_ignore_ascii_case(w_domain)
        }
        _ => false,
    }
}

/// The subject CNs that read as text.
fn common_names(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject()
        .iter_common_name()
        .filter_map(|attr| attribute_text(attr.attr_value()))
        .collect()
}

/// A string attribute value as text: the ASCII and UTF-8 types, BMPString (UTF-16),
/// UniversalString (UTF-32) and TeletexString (read as Latin-1, as OpenSSL does). `None` for
/// other types or undecodable bytes.
pub(crate) fn attribute_text(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Option<String> {
    use x509_parser::der_parser::asn1_rs::{Class, Tag};
    if value.header.class() != Class::Universal || !value.header.is_primitive() {
        return None;
    }
    let data = value.data;
    match value.header.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::VisibleString
        | Tag::NumericString => std::str::from_utf8(data).ok().map(str::to_owned),
        Tag::TeletexString => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

/// At most ten entries, then how many more: a certificate with thousands of names must not
/// make a log line of thousands of names.
fn capped(items: &[String]) -> String {
    const SHOWN: usize = 10;
    if items.len() <= SHOWN {
        return items.join(", ");
    }
    format!(
        "{} and {} more",
        items[..SHOWN].join(", "),
        items.len() - SHOWN
    )
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use rcgen::{CertificateParams, DnType, KeyPair, SanType};
    use x509_parser::prelude::FromDer;

    use super::*;

    /// A self-signed certificate with these SANs (`None`: no SAN extension) and CN.
    fn cert(sans: Option<Vec<SanType>>, cn: Option<&str>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans.unwrap_or_default();
        let key = KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.try_into().expect("ia5"))
    }

    fn email(name: &str) -> SanType {
        SanType::Rfc822Name(name.try_into().expect("ia5"))
    }

    fn verdict(der: &[u8], name: &str, cn_fallback: bool) -> Result<(), String> {
        let (_, x509) = X509Certificate::from_der(der).expect("parse");
        check(&x509, &name.parse().expect("peer name"), cn_fallback)
    }

    #[test]
    fn exact_and_case_insensitive() {
        let der = cert(Some(vec![dns("Example.COM")]), None);
        assert!(verdict(&der, "example.com", false).is_ok());
        assert!(verdict(&der, "EXAMPLE.com.", false).is_ok());
        assert!(verdict(&der, "example2.com", false).is_err());
        assert!(verdict(&der, "abc.example.com", false).is_err());
    }

    #[test]
    fn wildcard_rules() {
        assert!(dns_matches("*.example.com", "foo.example.com"));
        assert!(dns_matches("*.EXAMPLE.com", "Foo.example.COM."));
        assert!(dns_matches("*.example.com", "xn--bcher-kva.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("*.example.com", "foo.bar.example.com"));
        assert!(!dns_matches("f*.example.com", "foo.example.com"));
        assert!(!dns_matches("*oo.example.com", "foo.example.com"));
        assert!(!dns_matches("ba*.example.com", "baz.example.com"));
        assert!(!dns_matches("foo.*.example.com", "foo.bar.example.com"));
        assert!(!dns_matches(
            "xn--*-1b3c148a.example.com",
            "xn--bliss-1b3c148a.example.com"
        ));
        assert!(!dns_matches("*", "example.com"));
        assert!(!dns_matches("*", "com"));
        assert!(!dns_matches("*.com", "example.com"));
        assert!(!dns_matches("*.*.example.com", "a.b.example.com"));
        // The name asked for is never a pattern.
        assert!(!dns_matches("*.example.com", "*.example.com"));
    }

    #[test]
    fn trailing_dots() {
        assert!(dns_matches("example.com", "example.com."));
        assert!(!dns_matches("example.com.", "example.com"));
        assert!(!dns_matches("example.com.", "example.com."));
        assert!(!dns_matches("example.com", "example.com.."));
        assert!(!dns_matches("*.example.com.", "a.example.com"));
    }

    #[test]
    fn non_ldh_names_never_match() {
        assert!(!dns_matches("foo_bar.example.com", "foo_bar.example.com"));
        assert!(!dns_matches("8.8.8.8", "8.8.8.8"));
        assert!(!dns_matches("-a.example.com", "-a.example.com"));
        assert!(!dns_matches("😜.example.com", "😜.example.com"));
    }

    #[test]
    fn ip_matches_only_ip_sans() {
        let der = cert(
            Some(vec![
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))),
                dns("8.8.8.8"),
                SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ]),
            Some("10.0.0.1"),
        );
        assert!(verdict(&der, "127.0.0.1", false).is_ok());
        assert!(verdict(&der, "[::1]", false).is_ok());
        assert!(verdict(&der, "::1", false).is_ok());
        assert!(verdict(&der, "8.8.8.8", false).is_err());
        // An IPv4 SAN is not the IPv4-mapped IPv6 address.
        assert!(verdict(&der, "::ffff:127.0.0.1", false).is_err());
        // Never the CN, even with the fallback.
        let no_san = cert(None, Some("10.0.0.1"));
        assert!(verdict(&no_san, "10.0.0.1", true).is_err());
    }

    #[test]
    fn ip_does_not_match_dns_san() {
        let der = cert(Some(vec![dns("127.0.0.1")]), None);
        assert!(verdict(&der, "127.0.0.1", false).is_err());
    }

    #[test]
    fn email_local_part_is_case_sensitive() {
        let der = cert(Some(vec![email("Alice@Example.com")]), None);
        assert!(verdict(&der, "Alice@example.COM", false).is_ok());
        assert!(verdict(&der, "alice@example.com", false).is_err());
        // An email name never matches a DNS SAN or the other way round.
        let der = cert(Some(vec![dns("example.com")]), None);
        assert!(verdict(&der, "alice@example.com", false).is_err());
    }

    #[test]
    fn cn_fallback_only_without_san_extension() {
        let no_san = cert(None, Some("example.com"));
        assert!(verdict(&no_san, "example.com", true).is_ok());
        assert!(verdict(&no_san, "EXAMPLE.com.", true).is_ok());
        let refused = verdict(&no_san, "example.com", false).expect_err("no fallback");
        assert_eq!(
            refused,
            "name mismatch: asked for example.com, the certificate has [CN=example.com] and no subjectAltName (the CN is used only with common_name_fallback)"
        );
        // With a SAN extension, even one without DNS names, the CN is never used.
        let with_san = cert(Some(vec![email("a@example.com")]), Some("example.com"));
        assert!(verdict(&with_san, "example.com", true).is_err());
        // A wildcard CN follows the SAN wildcard rules.
        let wild = cert(None, Some("*.example.com"));
        assert!(verdict(&wild, "a.example.com", true).is_ok());
        assert!(verdict(&wild, "a.b.example.com", true).is_err());
        // A single-label host name, as in a compose file.
        let single = cert(None, Some("backend"));
        assert!(verdict(&single, "backend", true).is_ok());
        let person = cert(None, Some("Alice Smith"));
        assert!(verdict(&person, "alice", true).is_err());
    }

    #[test]
    fn sentences() {
        let der = cert(
            Some(vec![
                dns("a.example.com"),
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))),
            ]),
            Some("ignored"),
        );
        assert_eq!(
            verdict(&der, "b.example.com", false).expect_err("mismatch"),
            "name mismatch: asked for b.example.com, the certificate has [DNS:a.example.com, IP:1.2.3.4]"
        );
        let none = cert(None, None);
        assert_eq!(
            verdict(&none, "10.0.0.1", true).expect_err("mismatch"),
            "name mismatch: asked for 10.0.0.1, the certificate has no subject CN and no subjectAltName"
        );
        let many: Vec<SanType> = (0..25).map(|i| dns(&format!("h{i}.example.com"))).collect();
        let der = cert(Some(many), None);
        let sentence = verdict(&der, "x.example.com", false).expect_err("mismatch");
        assert!(
            sentence.ends_with("DNS:h9.example.com and 15 more]"),
            "{sentence}"
        );
    }

    #[test]
    fn peer_name_parsing() {
        assert_eq!(
            "Example.COM.".parse::<PeerName>(),
            Ok(PeerName::Dns("example.com".into()))
        );
        assert_eq!(
            "[::1]".parse::<PeerName>(),
            Ok(PeerName::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)))
        );
        assert_eq!(
            "alice@example.com".parse::<PeerName>(),
            Ok(PeerName::Email("alice@example.com".into()))
        );
        assert!("xn--bcher-kva.example".parse::<PeerName>().is_ok());
        let unicode = "bücher.example".parse::<PeerName>().expect_err("non-ASCII");
        assert!(unicode.contains("xn--"), "{unicode}");
        for bad in [
            "",
            ".",
            "a..b",
            "example.com..",
            "foo_bar.example.com",
            "*.example.com",
            "-a.example.com",
            "a b.example",
            "1.2.3.4.5",
            "a@b@example.com",
            "@example.com",
            "alice@exa mple.com",
        ] {
            assert!(bad.parse::<PeerName>().is_err(), "{bad:?} parsed");
        }
        assert!(
            format!("a{}.com", "b".repeat(63))
                .parse::<PeerName>()
                .is_err()
        );
    }

    #[test]
    fn cn_host_name_heuristic() {
        assert!(cn_is_host_name("example.com"));
        assert!(cn_is_host_name("*.example.com"));
        assert!(cn_is_host_name("_svc.example.com"));
        assert!(cn_is_host_name("backend"));
        assert!(!cn_is_host_name("Alice Smith"));
        assert!(!cn_is_host_name("10.0.0.1"));
        assert!(!cn_is_host_name("*.com.")); // trailing dot
    }
}

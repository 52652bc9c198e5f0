//! Is the end-entity certificate valid for the name the peer was asked for? (RFC 6125)
//!
//! STUB: being written (helper). The signatures below are the contract with `path`.

use std::net::IpAddr;
use std::str::FromStr;

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

    fn from_str(s: &str) -> Result<PeerName, String> {
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(PeerName::Ip(ip));
        }
        if s.contains('@') {
            return Ok(PeerName::Email(s.to_owned()));
        }
        Ok(PeerName::Dns(s.trim_end_matches('.').to_ascii_lowercase()))
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
    let _ = (leaf, name, cn_fallback);
    Err("host name checking is not written yet".to_owned())
}

/// RFC 6125 matching of one DNS pattern against one name.
pub fn dns_matches(pattern: &str, name: &str) -> bool {
    mtls_pki::verify::dns_matches(pattern, name)
}

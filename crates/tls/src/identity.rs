//! Who the peer is, as read from its certificate: what access rules match on, what the
//! access log prints, and (issue 4) what identity headers carry to upstreams.
//!
//! Parsed once per connection that presented a certificate, after the handshake, so the
//! request path only reads fields.

use aws_lc_rs::digest;
use mtls_pki::dn;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The fields of a client certificate that the gateway uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerCert {
    /// Subject DN in our text form, e.g. `CN=alice, O=Acme`: certificate order, `, `
    /// between RDNs, values escaped per RFC 4514 (`mtls_pki::dn::display`). What identity
    /// headers, XFCC, allow-rule refusals and the access log carry.
    pub subject: String,
    /// Issuer DN, in the same form as `subject`.
    pub issuer: String,
    /// Subject DN exactly as nginx's `$ssl_client_s_dn` prints it (OpenSSL's RFC 2253
    /// form: last RDN first, `,` without a space, `mtls_pki::dn::openssl_rfc2253`).
    pub subject_rfc2253: String,
    /// Issuer DN as nginx's `$ssl_client_i_dn` prints it.
    pub issuer_rfc2253: String,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// SHA-256 of the DER certificate, lower-case hex without separators.
    pub fingerprint: String,
    /// Every commonName in the subject.
    pub common_names: Vec<String>,
    /// Every organizationalUnit in the subject.
    pub organizational_units: Vec<String>,
    /// dNSName SANs.
    pub san_dns: Vec<String>,
    /// uniformResourceIdentifier SANs (SPIFFE IDs live here).
    pub san_uri: Vec<String>,
    /// rfc822Name SANs.
    pub san_email: Vec<String>,
    /// The DER certificate itself (for `X-Client-Cert`).
    pub der: Vec<u8>,
}

impl PeerCert {
    /// Read a DER certificate. A certificate that verified always parses; for one that
    /// did not (`optional_no_ca`), whatever parses is kept.
    pub fn from_der(der: &[u8]) -> PeerCert {
        let fingerprint = hex::encode(digest::digest(&digest::SHA256, der));
        let mut peer = PeerCert {
            fingerprint,
            der: der.to_vec(),
            ..PeerCert::default()
        };
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return peer;
        };
        peer.subject = dn::display(cert.subject());
        peer.issuer = dn::display(cert.issuer());
        peer.subject_rfc2253 = dn::openssl_rfc2253(cert.subject()).unwrap_or_default();
        peer.issuer_rfc2253 = dn::openssl_rfc2253(cert.issuer()).unwrap_or_default();
        peer.serial = mtls_pki::names::serial_hex(cert.raw_serial());
        peer.common_names = cert
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok().map(str::to_owned))
            .collect();
        peer.organizational_units = cert
            .subject()
            .iter_organizational_unit()
            .filter_map(|a| a.as_str().ok().map(str::to_owned))
            .collect();
        if let Ok(Some(sans)) = cert.subject_alternative_name() {
            for name in &sans.value.general_names {
                match name {
                    GeneralName::DNSName(d) => peer.san_dns.push((*d).to_owned()),
                    GeneralName::URI(u) => peer.san_uri.push((*u).to_owned()),
                    GeneralName::RFC822Name(e) => peer.san_email.push((*e).to_owned()),
                    _ => {}
                }
            }
        }
        peer
    }
}

/// Subject, issuer (escaped, so a peer's name cannot break a log line) and serial of a DER
/// certificate, for refusal messages; placeholders when it does not parse (a peer can send
/// anything).
pub(crate) fn names(der: &[u8]) -> (String, String, String) {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => (
            dn::display(cert.subject()),
            dn::display(cert.issuer()),
            mtls_pki::names::serial_hex(cert.raw_serial()),
        ),
        Err(_) => (
            "(unparsable certificate)".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
        ),
    }
}

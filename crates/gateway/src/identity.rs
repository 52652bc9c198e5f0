//! The client-identity values a proxied request carries (`X-Client-*`, Envoy's
//! `X-Forwarded-Client-Cert`, `X-Forwarded-For`, `Forwarded`), made once per connection:
//! none of them can change while it lasts, and escaping the certificate as PEM costs more
//! than the rest of a request's headers together.

use std::net::SocketAddr;

use http::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use mtls_tls::{HandshakeInfo, VerifyStatus};

/// A connection's identity headers, ready to copy into each proxied request (a
/// `HeaderValue` clone shares its bytes). Escaping the certificate as PEM costs more than
/// the rest of the request's headers together, so it is done once per connection.
#[derive(Debug)]
pub(crate) struct IdentityValues {
    pub(crate) verify: HeaderValue,
    pub(crate) subject: Option<HeaderValue>,
    pub(crate) issuer: Option<HeaderValue>,
    pub(crate) serial: Option<HeaderValue>,
    pub(crate) fingerprint: Option<HeaderValue>,
    /// nginx's `$ssl_client_escaped_cert`.
    pub(crate) cert: Option<HeaderValue>,
    /// Envoy's `X-Forwarded-Client-Cert`, for a verified certificate only.
    pub(crate) xfcc: Option<HeaderValue>,
    /// The client's address, as X-Forwarded-For appends it.
    pub(crate) client_ip: HeaderValue,
    /// `for=ADDR;proto=SCHEME`, this hop's element of `Forwarded` (RFC 7239).
    pub(crate) forwarded: String,
}

impl IdentityValues {
    pub(crate) fn of(remote: SocketAddr, tls: Option<&HandshakeInfo>) -> IdentityValues {
        let verify = tls.map_or(VerifyStatus::None, |t| t.verify.clone());
        let peer = tls.and_then(|t| t.peer.as_deref());
        let value = |text: &str| HeaderValue::from_bytes(text.as_bytes()).ok();
        let xfcc = peer
            .filter(|_| verify == VerifyStatus::Success)
            .and_then(|peer| {
                // Envoy's format: key=value pairs, `;` separated, quoted where needed.
                let mut xfcc = format!(
                    "Hash={};Subject=\"{}\"",
                    peer.fingerprint,
                    peer.subject.replace('"', "\\\"")
                );
                for uri in &peer.san_uri {
                    xfcc.push_str(&format!(";URI={uri}"));
                }
                for dns in &peer.san_dns {
                    xfcc.push_str(&format!(";DNS={dns}"));
                }
                value(&xfcc)
            });
        IdentityValues {
            verify: value(&verify.to_string()).unwrap_or(HeaderValue::from_static("FAILED")),
            subject: peer.and_then(|p| value(&p.subject)),
            issuer: peer.and_then(|p| value(&p.issuer)),
            serial: peer.and_then(|p| value(&p.serial)),
            fingerprint: peer.and_then(|p| value(&p.fingerprint)),
            cert: peer.and_then(|p| {
                let pem = mtls_pki::pem::encode("CERTIFICATE", &p.der);
                value(&utf8_percent_encode(&pem, URI_COMPONENT).to_string())
            }),
            xfcc,
            client_ip: value(&remote.ip().to_string())
                .unwrap_or(HeaderValue::from_static("unknown")),
            forwarded: {
                let node = match remote {
                    SocketAddr::V4(v4) => v4.ip().to_string(),
                    SocketAddr::V6(v6) => format!("\"[{}]\"", v6.ip()),
                };
                let proto = if tls.is_some() { "https" } else { "http" };
                format!("for={node};proto={proto}")
            },
        }
    }
}

/// What nginx's `$ssl_client_escaped_cert` escapes: everything but unreserved characters.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

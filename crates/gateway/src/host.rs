//! The host a request names, validated before it picks a virtual host or reaches a page,
//! a redirect or an upstream.
//!
//! RFC 9112 section 3.2: an HTTP/1.1 request without Host, with two Host lines, or with an
//! invalid Host is answered 400. Beyond the letter of it, a Host that is not a plain name
//! or address is refused too, because every use of it downstream is a place it can do
//! harm: a `\` or `"` breaks the quoted `host=` of `Forwarded`, `<` lands in the HTML of a
//! redirect page, `@` or `/` in a `Location` built from `$host` points elsewhere, and two
//! Host lines let the router and an upstream each read a different one.
//!
//! Accepted: a reg-name of letters, digits, `-`, `.`, `_` and `~` (no empty label, at most
//! 255 bytes, a trailing dot allowed), or an IPv6 literal in brackets, each with an optional
//! port of 1 to 5 digits up to 65535.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv6Addr;

use http::{Request, Version, header};

/// Why a request's host was refused; every case is a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostError {
    /// An HTTP/1.1 request with no Host (and no absolute URI).
    Missing,
    /// More than one Host line.
    Repeated,
    /// A Host that is not `name[:port]` or `[v6][:port]`.
    Invalid,
    /// HTTP/2's `:authority` and a Host header that name different hosts.
    Conflicting,
}

impl HostError {
    /// A stable name for logs and metrics.
    pub(crate) fn check(self) -> &'static str {
        match self {
            HostError::Missing => "host_missing",
            HostError::Repeated => "host_repeated",
            HostError::Invalid => "host_invalid",
            HostError::Conflicting => "host_conflicting",
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostError::Missing => "An HTTP/1.1 request needs a Host header.",
            HostError::Repeated => "The request has more than one Host header.",
            HostError::Invalid => {
                "The Host header is not a host name or IP address with an optional port."
            }
            HostError::Conflicting => "The Host header and :authority name different hosts.",
        })
    }
}

/// The host the request names, without port or brackets, lower-cased: `:authority` or an
/// absolute URI's host, else the Host header; `None` when an HTTP/1.0 or HTTP/2 request
/// names none (the listener's default server answers it).
pub(crate) fn request_host<B>(request: &Request<B>) -> Result<Option<Cow<'_, str>>, HostError> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err(HostError::Repeated);
    }
    let from_header = match header {
        Some(value) => {
            let text = value.to_str().map_err(|_| HostError::Invalid)?;
            Some(parse(text)?.0)
        }
        None => None,
    };
    let from_uri = match request.uri().authority() {
        // userinfo (`user@host`) has no place in a request target (RFC 9110 4.2.4).
        Some(authority) if authority.as_str().contains('@') => return Err(HostError::Invalid),
        Some(authority) => Some(parse(authority.as_str())?.0),
        None => None,
    };
    let host = match (from_uri, from_header) {
        (Some(uri), Some(header)) if request.version() == Version::HTTP_2 => {
            if !uri.eq_ignore_ascii_case(header) {
                return Err(HostError::Conflicting);
            }
            uri
        }
        // HTTP/1.1 with an absolute URI: the URI's host wins (RFC 9112 3.2.2).
        (Some(uri), _) => uri,
        (None, Some(header)) => header,
        (None, None) if request.version() == Version::HTTP_11 => return Err(HostError::Missing),
        (None, None) => return Ok(None),
    };
    // Borrowed unless it needs lower-casing: no allocation for the usual request.
    Ok(Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }))
}

/// Split `host[:port]` or `[v6][:port]`, checking both parts; the host comes back without
/// brackets.
fn parse(value: &str) -> Result<(&str, Option<u16>), HostError> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(HostError::Invalid)?;
        v6.parse::<Ipv6Addr>().map_err(|_| HostError::Invalid)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(HostError::Invalid)?),
        };
        (v6, port)
    } else {
        let (host, port) = match value.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        };
        if !is_reg_name(host) {
            return Err(HostError::Invalid);
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(digits) => Some(parse_port(digits).ok_or(HostError::Invalid)?),
    };
    Ok((host, port))
}

fn is_reg_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && host.len() <= 255
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~'))
        })
}

fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(version: Version, uri: &str, hosts: &[&str]) -> Result<Option<String>, HostError> {
        let mut builder = Request::builder().version(version).uri(uri);
        for host in hosts {
            builder = builder.header(header::HOST, *host);
        }
        let request = builder.body(()).expect("request");
        request_host(&request).map(|h| h.map(Cow::into_owned))
    }

    #[test]
    fn names_and_addresses_with_ports() {
        for (value, host, port) in [
            ("localhost", "localhost", None),
            ("api.example.com:8443", "api.example.com", Some(8443)),
            ("127.0.0.1", "127.0.0.1", None),
            ("[::1]", "::1", None),
            ("[::1]:443", "::1", Some(443)),
            ("a_b~c-d.", "a_b~c-d.", None),
            ("x:65535", "x", Some(65535)),
        ] {
            assert_eq!(parse(value), Ok((host, port)), "{value}");
        }
    }

    #[test]
    fn anything_else_is_invalid() {
        for value in [
            "", ".", "a..b", ".a", "a b", "a\\b", "a\"b", "<x>", "a/b", "a@b", "a:", "a:8x",
            "a:99999", "a:123456", "a:1:2", "[::1", "[::1]x", "[zz]", "[::1]:", "é.test", "a%41",
            "a,b",
        ] {
            assert_eq!(parse(value), Err(HostError::Invalid), "{value:?}");
        }
        assert_eq!(parse(&"a".repeat(256)), Err(HostError::Invalid));
    }

    #[test]
    fn which_host_a_request_names() {
        use HostError::*;
        let h11 = Version::HTTP_11;
        assert_eq!(
            host_of(h11, "/", &["Example.COM:8443"]),
            Ok(Some("example.com".into()))
        );
        assert_eq!(host_of(h11, "/", &[]), Err(Missing));
        assert_eq!(host_of(Version::HTTP_10, "/", &[]), Ok(None));
        assert_eq!(host_of(h11, "/", &["a", "b"]), Err(Repeated));
        assert_eq!(host_of(h11, "/", &["a", "a"]), Err(Repeated));
        assert_eq!(host_of(h11, "/", &["a\\b"]), Err(Invalid));
        // An absolute URI wins over Host in HTTP/1.1, but Host must still be valid.
        assert_eq!(host_of(h11, "https://b/x", &["a"]), Ok(Some("b".into())));
        assert_eq!(host_of(h11, "https://b/x", &["a b"]), Err(Invalid));
        assert_eq!(host_of(h11, "https://u@b/x", &["b"]), Err(Invalid));
        let h2 = Version::HTTP_2;
        assert_eq!(host_of(h2, "https://b/x", &["B"]), Ok(Some("b".into())));
        assert_eq!(host_of(h2, "https://b/x", &["a"]), Err(Conflicting));
        assert_eq!(host_of(h2, "https://b/x", &[]), Ok(Some("b".into())));
    }
}

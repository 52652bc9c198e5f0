//! `proxy_pass`, `[server.location.proxy_tls]` and `[[upstream]]`: nginx's `proxy_*`
//! directives and `upstream` blocks.
//!
//! The checks here are the ones that would otherwise surface as a 502 at the first request:
//! an `https` upstream with nothing to verify it against, a certificate without its key, a
//! `proxy_pass` naming a group that does not exist.

use std::time::Duration;

use toml::Spanned;

use super::super::raw::{RawHeaderNames, RawLocation, RawProxyTls, RawUpstream, Value};
use super::super::{
    DEFAULT_UPSTREAM_KEEPALIVE, HeaderNames, HostPort, IdentityHeaders, Position, Proxy, ProxyTls,
    ProxyUpstream, Upstream,
};
use super::{Cx, DEFAULT_PROTOCOLS, syntax};

/// nginx's `proxy_connect_timeout`, `proxy_read_timeout`, `proxy_send_timeout` defaults.
const DEFAULT_PROXY_TIMEOUT: Duration = Duration::from_secs(60);
/// nginx's `max_fails`/`fail_timeout` default.
const DEFAULT_FAIL_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_HEADER_SIZE: usize = 64 * 1024;
/// hyper will not take less.
const MIN_MAX_HEADER_SIZE: u64 = 8 * 1024;

impl Cx<'_> {
    /// Every `[[upstream]]`; remembers their names for `proxy_pass`.
    pub(super) fn upstreams(&mut self, raw: &[Spanned<RawUpstream>]) -> Vec<Upstream> {
        let mut out: Vec<Upstream> = Vec::new();
        for table in raw {
            let at = self.at(table.span());
            let r = table.get_ref();
            let errors_before = self.errors.len();
            let name = match &r.name {
                None => {
                    self.error(at, "name", "required: the name proxy_pass refers to");
                    None
                }
                Some(v) => self.string("name", v).and_then(|n| {
                    let ok = !n.value.is_empty()
                        && n.value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                    if !ok {
                        self.error(n.at, "name", "expected letters, digits, '-', '_' or '.'");
                        None
                    } else if let Some(first) = out.iter().find(|u| u.name == n.value) {
                        let why = format!(
                            "{:?} is already the upstream at line {}",
                            n.value, first.at.line
                        );
                        self.error(n.at, "name", why);
                        None
                    } else {
                        Some(n.value)
                    }
                }),
            };
            let mut servers = Vec::new();
            match &r.servers {
                None => self.error(at, "servers", "required: a list of \"host:port\""),
                Some(v) => {
                    let items = self.strings("servers", v);
                    if items.is_empty() {
                        self.error_at(v, "servers", "empty; at least one \"host:port\"");
                    }
                    for item in items {
                        match host_port(&item.value, None) {
                            Ok(hp) => servers.push(hp),
                            Err(why) => self.error(item.at, "servers", why),
                        }
                    }
                }
            }
            let fail_timeout = r
                .fail_timeout
                .as_ref()
                .map_or(Some(DEFAULT_FAIL_TIMEOUT), |v| {
                    self.duration("fail_timeout", v)
                });
            let keepalive_timeout = r
                .keepalive_timeout
                .as_ref()
                .map_or(Some(DEFAULT_UPSTREAM_KEEPALIVE), |v| {
                    self.duration("keepalive_timeout", v)
                });
            let tls = r.tls.as_ref().map(|t| self.proxy_tls(t));
            if let Some(name) = &name {
                self.upstreams.push((name.clone(), r.tls.is_some()));
            }
            if self.errors.len() > errors_before {
                continue;
            }
            if let (Some(name), Some(fail_timeout), Some(keepalive_timeout)) =
                (name, fail_timeout, keepalive_timeout)
            {
                out.push(Upstream {
                    at,
                    name,
                    servers,
                    fail_timeout,
                    keepalive_timeout,
                    tls: tls.flatten(),
                });
            }
        }
        out
    }

    /// `proxy_pass` with the location's other proxy keys.
    pub(super) fn proxy(&mut self, v: &Spanned<Value>, r: &RawLocation) -> Option<Proxy> {
        let errors_before = self.errors.len();
        let target = self.string("proxy_pass", v)?;
        let parsed = self.proxy_target(&target.value);
        let (upstream, https, uri) = match parsed {
            Ok(t) => t,
            Err(why) => {
                self.error(target.at, "proxy_pass", why);
                return None;
            }
        };
        let tls = r.proxy_tls.as_ref().and_then(|t| {
            if !https {
                let why = "the upstream is plain http://; proxy_tls needs https:// (or a group \
                           with [upstream.tls])";
                self.error(self.at(t.span()), "proxy_tls", why);
                None
            } else {
                self.proxy_tls(t)
            }
        });
        if https && r.proxy_tls.is_none() && !self.group_has_tls(&upstream) {
            let why = "an https upstream needs [server.location.proxy_tls] with trusted_ca to \
                       verify it against (or verify = false, which trusts anyone)";
            self.error(target.at, "proxy_pass", why);
        }
        let timeout = |cx: &mut Cx<'_>, key: &str, v: &Option<Spanned<Value>>| {
            v.as_ref()
                .map_or(Some(DEFAULT_PROXY_TIMEOUT), |v| cx.duration(key, v))
        };
        let connect_timeout = timeout(self, "connect_timeout", &r.connect_timeout);
        let read_timeout = timeout(self, "read_timeout", &r.read_timeout);
        let send_timeout = timeout(self, "send_timeout", &r.send_timeout);
        let max_header_size = match &r.max_header_size {
            None => Some(DEFAULT_MAX_HEADER_SIZE),
            Some(v) => self.size("max_header_size", v),
        };
        let enabled = r
            .identity_headers
            .as_ref()
            .map_or(Some(true), |v| self.boolean("identity_headers", v));
        let xfcc = r
            .xfcc
            .as_ref()
            .map_or(Some(false), |v| self.boolean("xfcc", v));
        let forward_raw_path = r
            .forward_raw_path
            .as_ref()
            .map_or(Some(false), |v| self.boolean("forward_raw_path", v));
        let names = r
            .header_names
            .as_ref()
            .map_or_else(HeaderNames::default, |n| self.header_names(n));
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Proxy {
            at: target.at,
            upstream,
            https,
            uri,
            tls,
            connect_timeout: connect_timeout?,
            read_timeout: read_timeout?,
            send_timeout: send_timeout?,
            max_header_size: max_header_size?,
            identity: IdentityHeaders {
                enabled: enabled?,
                xfcc: xfcc?,
                names,
            },
            forward_raw_path: forward_raw_path?,
        })
    }

    /// Proxy keys without `proxy_pass` mean something was forgotten.
    pub(super) fn no_proxy_keys(&mut self, r: &RawLocation) {
        let keys: [(&str, Option<Position>); 9] = [
            ("proxy_tls", r.proxy_tls.as_ref().map(|t| self.at(t.span()))),
            (
                "header_names",
                r.header_names.as_ref().map(|t| self.at(t.span())),
            ),
            (
                "connect_timeout",
                r.connect_timeout.as_ref().map(|v| self.at(v.span())),
            ),
            (
                "read_timeout",
                r.read_timeout.as_ref().map(|v| self.at(v.span())),
            ),
            (
                "send_timeout",
                r.send_timeout.as_ref().map(|v| self.at(v.span())),
            ),
            (
                "max_header_size",
                r.max_header_size.as_ref().map(|v| self.at(v.span())),
            ),
            (
                "identity_headers",
                r.identity_headers.as_ref().map(|v| self.at(v.span())),
            ),
            ("xfcc", r.xfcc.as_ref().map(|v| self.at(v.span()))),
            (
                "forward_raw_path",
                r.forward_raw_path.as_ref().map(|v| self.at(v.span())),
            ),
        ];
        for (key, at) in keys {
            if let Some(at) = at {
                self.error(at, key, "only means something with proxy_pass");
            }
        }
    }

    fn group_has_tls(&self, upstream: &ProxyUpstream) -> bool {
        match upstream {
            ProxyUpstream::Group(name) => self.upstreams.iter().any(|(n, tls)| n == name && *tls),
            ProxyUpstream::Address(_) => false,
        }
    }

    /// `"https://host:port/uri"`, `"http://group"`, or a bare group name.
    fn proxy_target(&self, text: &str) -> Result<(ProxyUpstream, bool, Option<String>), String> {
        let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (Some(true), rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (Some(false), rest)
        } else {
            (None, text)
        };
        let (authority, uri) = match rest.find('/') {
            Some(slash) => (&rest[..slash], Some(rest[slash..].to_owned())),
            None => (rest, None),
        };
        if let Some((_, tls)) = self.upstreams.iter().find(|(n, _)| n == authority) {
            let https = match https {
                // A bare name: the group says whether it is TLS.
                None => *tls,
                Some(https) if https != *tls => {
                    return Err(format!(
                        "{text:?}: the upstream {authority:?} {} [upstream.tls], so use {}://",
                        if *tls { "has" } else { "has no" },
                        if *tls { "https" } else { "http" }
                    ));
                }
                Some(https) => https,
            };
            return Ok((ProxyUpstream::Group(authority.to_owned()), https, uri));
        }
        let Some(https) = https else {
            let known: Vec<&str> = self.upstreams.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "{text:?}: expected https://HOST:PORT, http://HOST:PORT or the name of an \
                 [[upstream]] (known: [{}])",
                known.join(", ")
            ));
        };
        let default_port = if https { 443 } else { 80 };
        let address =
            host_port(authority, Some(default_port)).map_err(|why| format!("{text:?}: {why}"))?;
        Ok((ProxyUpstream::Address(address), https, uri))
    }

    /// `[server.location.proxy_tls]` / `[upstream.tls]`; `None` when it has errors.
    pub(super) fn proxy_tls(&mut self, raw: &Spanned<RawProxyTls>) -> Option<ProxyTls> {
        let errors_before = self.errors.len();
        let at = self.at(raw.span());
        let r = raw.get_ref();
        let certificate = r
            .certificate
            .as_ref()
            .and_then(|v| self.string("certificate", v))
            .and_then(|s| self.path("certificate", s));
        let key = r
            .key
            .as_ref()
            .and_then(|v| self.string("key", v))
            .and_then(|s| self.path("key", s));
        match (&r.certificate, &r.key) {
            (Some(v), None) => self.error_at(v, "certificate", "needs key as well"),
            (None, Some(v)) => self.error_at(v, "key", "needs certificate as well"),
            _ => {}
        }
        let key_password_file = r
            .key_password_file
            .as_ref()
            .and_then(|v| self.string("key_password_file", v))
            .and_then(|s| self.path("key_password_file", s));
        if let (Some(v), None) = (&r.key_password_file, &r.key) {
            self.error_at(
                v,
                "key_password_file",
                "is the password of key, which is not set",
            );
        }
        let trusted_ca = self.paths("trusted_ca", &r.trusted_ca);
        let verify = r
            .verify
            .as_ref()
            .map_or(Some(true), |v| self.boolean("verify", v));
        if verify == Some(true) && r.trusted_ca.is_none() {
            let why = "verify = true (the default) needs trusted_ca: the CA certificates the \
                       upstream's certificate must chain to";
            self.error(at, "trusted_ca", why);
        }
        let server_name = r
            .server_name
            .as_ref()
            .and_then(|v| self.string("server_name", v))
            .and_then(|s| {
                let name = s.value.trim_end_matches('.').to_ascii_lowercase();
                let ip = name.parse::<std::net::IpAddr>().is_ok();
                if ip || mtls_pki::names::is_dns_name(&name, false) {
                    Some(name)
                } else {
                    self.error(s.at, "server_name", item_error_name(&s.value));
                    None
                }
            });
        let sni = r
            .sni
            .as_ref()
            .map_or(Some(true), |v| self.boolean("sni", v));
        let session_reuse = r
            .session_reuse
            .as_ref()
            .map_or(Some(true), |v| self.boolean("session_reuse", v));
        let common_name_fallback = r
            .common_name_fallback
            .as_ref()
            .map_or(Some(true), |v| self.boolean("common_name_fallback", v));
        let protocols = match &r.protocols {
            None => DEFAULT_PROTOCOLS.map(str::to_owned).to_vec(),
            Some(v) => self.protocols(v),
        };
        let ciphers = r.ciphers.as_ref().and_then(|v| self.string("ciphers", v));
        if let Some(c) = &ciphers
            && let Err(e) = mtls_tls::ciphers::parse_cipher_string(&c.value)
        {
            self.error(c.at, "ciphers", e.to_string());
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(ProxyTls {
            at,
            certificate,
            key,
            key_password_file,
            trusted_ca,
            verify: verify?,
            server_name,
            sni: sni?,
            session_reuse: session_reuse?,
            common_name_fallback: common_name_fallback?,
            protocols,
            ciphers,
        })
    }

    fn header_names(&mut self, raw: &Spanned<RawHeaderNames>) -> HeaderNames {
        let r = raw.get_ref();
        let mut names = HeaderNames::default();
        let fields: [(&str, &Option<Spanned<Value>>, &mut String); 6] = [
            ("header_names.verify", &r.verify, &mut names.verify),
            ("header_names.subject", &r.subject, &mut names.subject),
            ("header_names.issuer", &r.issuer, &mut names.issuer),
            ("header_names.serial", &r.serial, &mut names.serial),
            (
                "header_names.fingerprint",
                &r.fingerprint,
                &mut names.fingerprint,
            ),
            ("header_names.cert", &r.cert, &mut names.cert),
        ];
        for (key, v, slot) in fields {
            let Some(v) = v else { continue };
            let Some(s) = self.string(key, v) else {
                continue;
            };
            if http::HeaderName::from_bytes(s.value.as_bytes()).is_ok() {
                *slot = s.value;
            } else {
                self.error(
                    s.at,
                    key,
                    format!("{:?} is not a valid header name", s.value),
                );
            }
        }
        names
    }

    pub(super) fn duration(&mut self, key: &str, v: &Spanned<Value>) -> Option<Duration> {
        let parsed = match v.get_ref() {
            Value::Integer(n) => u64::try_from(*n)
                .map(Duration::from_secs)
                .map_err(|_| format!("{n}: expected a time such as \"30s\"")),
            Value::String(s) => syntax::duration(s),
            other => Err(format!(
                "expected a time such as \"30s\", found {}",
                other.kind()
            )),
        };
        match parsed {
            Ok(d) if d.is_zero() => {
                self.error_at(v, key, "must be more than 0");
                None
            }
            Ok(d) => Some(d),
            Err(why) => {
                self.error_at(v, key, why);
                None
            }
        }
    }

    fn size(&mut self, key: &str, v: &Spanned<Value>) -> Option<usize> {
        let parsed = match v.get_ref() {
            Value::Integer(n) => u64::try_from(*n).map_err(|_| format!("{n} is negative")),
            Value::String(s) => syntax::size(s),
            other => Err(format!(
                "expected a size such as \"64k\", found {}",
                other.kind()
            )),
        };
        match parsed {
            Ok(n) if n < MIN_MAX_HEADER_SIZE => {
                self.error_at(v, key, format!("{n} is less than the minimum 8k"));
                None
            }
            Ok(n) => usize::try_from(n).ok(),
            Err(why) => {
                self.error_at(v, key, why);
                None
            }
        }
    }
}

fn item_error_name(name: &str) -> String {
    format!("{name:?} is not a host name or an IP address")
}

/// `host:port`, `[v6]:port`, or `host` with a default port.
fn host_port(text: &str, default_port: Option<u16>) -> Result<HostPort, String> {
    let bad = || {
        format!("{text:?}: expected HOST:PORT (a DNS name or an IP address, [brackets] for IPv6)")
    };
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, rest) = v6.split_once(']').ok_or_else(bad)?;
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return Err(bad()),
            None => (text, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad())?,
        None => default_port.ok_or_else(|| format!("{text:?}: a port is required"))?,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip = host.parse::<std::net::IpAddr>().is_ok();
    if host.is_empty() || port == 0 || !(ip || mtls_pki::names::is_dns_name(&host, false)) {
        return Err(bad());
    }
    Ok(HostPort { host, port })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Action, Config, ProxyUpstream};

    const SERVER: &str = "[[server]]\nlisten = 8443\n[[server.location]]\npath = \"/\"\n";

    fn errors(text: &str) -> String {
        match Config::parse(text, Path::new("t.toml")) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    fn proxy(text: &str) -> crate::config::Proxy {
        let config =
            Config::parse(text, Path::new("/etc/mtls/t.toml")).unwrap_or_else(|e| panic!("{e}"));
        match &config.servers[0].locations[0].action {
            Action::Proxy(p) => (**p).clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_address_with_tls_settings() {
        let p = proxy(&format!(
            "{SERVER}proxy_pass = \"https://[::1]:8080/api/\"\nconnect_timeout = \"2s\"\n\
             [server.location.proxy_tls]\ncertificate = \"gw.crt\"\nkey = \"gw.key\"\n\
             key_password_file = \"gw.pass\"\ntrusted_ca = \"ca.crt\"\nserver_name = \"Backend.Internal\"\nsni = false\n"
        ));
        assert_eq!(
            p.upstream,
            ProxyUpstream::Address(crate::config::HostPort {
                host: "::1".into(),
                port: 8080
            })
        );
        assert!(p.https);
        assert_eq!(p.uri.as_deref(), Some("/api/"));
        assert_eq!(p.connect_timeout, std::time::Duration::from_secs(2));
        let tls = p.tls.expect("proxy_tls");
        assert_eq!(tls.server_name.as_deref(), Some("backend.internal"));
        assert!(!tls.sni && tls.verify && tls.session_reuse);
        assert_eq!(tls.key.expect("key").value, Path::new("/etc/mtls/gw.key"));
        assert_eq!(
            tls.key_password_file.expect("key_password_file").value,
            Path::new("/etc/mtls/gw.pass")
        );
        assert!(p.identity.enabled && !p.identity.xfcc);
        assert_eq!(p.identity.names.subject, "X-Client-Subject");
    }

    #[test]
    fn a_key_password_file_needs_a_key() {
        let e = errors(&format!(
            "{SERVER}proxy_pass = \"https://b:8443\"\n[server.location.proxy_tls]\n\
             trusted_ca = \"ca.crt\"\nkey_password_file = \"gw.pass\"\n"
        ));
        assert_eq!(
            e,
            "t.toml:8:21: key_password_file: is the password of key, which is not set"
        );
    }

    #[test]
    fn a_group_by_name_or_url() {
        let text = "[[upstream]]\nname = \"backends\"\nservers = [\"10.0.0.2:8080\", \"b.internal:8443\"]\n\
                    [upstream.tls]\ntrusted_ca = \"ca.crt\"\n";
        for target in ["backends", "https://backends"] {
            let p = proxy(&format!("{text}{SERVER}proxy_pass = \"{target}\"\n"));
            assert_eq!(p.upstream, ProxyUpstream::Group("backends".into()));
            assert!(p.https, "the group has [upstream.tls]");
        }
        let e = errors(&format!("{text}{SERVER}proxy_pass = \"http://backends\"\n"));
        assert!(e.contains("has [upstream.tls], so use https://"), "{e}");
    }

    #[test]
    fn mistakes_are_reported_at_their_key() {
        let e = errors(&format!("{SERVER}proxy_pass = \"https://b:8443\"\n"));
        assert!(
            e.starts_with("t.toml:5:14: proxy_pass: an https upstream needs"),
            "{e}"
        );
        let e = errors(&format!("{SERVER}proxy_pass = \"nowhere\"\n"));
        assert!(
            e.contains("proxy_pass: \"nowhere\": expected https://HOST:PORT"),
            "{e}"
        );
        let e = errors(&format!(
            "{SERVER}proxy_pass = \"https://b:8443\"\n[server.location.proxy_tls]\n\
             certificate = \"c.pem\"\ntrusted_ca = \"ca.crt\"\n"
        ));
        assert!(e.contains("certificate: needs key as well"), "{e}");
        let e = errors(&format!(
            "{SERVER}proxy_pass = \"https://b:8443\"\n[server.location.proxy_tls]\nverify = true\n"
        ));
        assert!(
            e.contains("trusted_ca: verify = true (the default) needs trusted_ca"),
            "{e}"
        );
        let e = errors(&format!(
            "{SERVER}proxy_pass = \"http://b:80\"\n[server.location.proxy_tls]\nverify = false\n"
        ));
        assert!(
            e.contains("proxy_tls: the upstream is plain http://"),
            "{e}"
        );
        let e = errors(&format!("{SERVER}return = 204\nread_timeout = \"5s\"\n"));
        assert!(
            e.contains("read_timeout: only means something with proxy_pass"),
            "{e}"
        );
        let e = errors(&format!(
            "{SERVER}proxy_pass = \"http://b:80\"\n[server.location.header_names]\nsubject = \"bad name\"\n"
        ));
        assert!(
            e.contains("header_names.subject: \"bad name\" is not a valid header name"),
            "{e}"
        );
        let e = errors(&format!("{SERVER}proxy_pass = \"http://b:99999\"\n"));
        assert!(e.contains("expected HOST:PORT"), "{e}");
        let e = errors(&format!(
            "{SERVER}root = \"/srv\"\nproxy_pass = \"http://b:80\"\n"
        ));
        assert!(e.contains("a location has one action"), "{e}");
        let e = errors(
            "[[upstream]]\nservers = []\n[[server]]\nlisten = 1\n[[server.location]]\npath = \"/\"\nreturn = 204\n",
        );
        assert!(
            e.contains("name: required") && e.contains("servers: empty"),
            "{e}"
        );
    }
}

//! Raw TOML into validated settings, collecting every error on the way.
//!
//! Each step records its errors in [`Cx`] and carries on with what it could make of the
//! rest, so one run reports everything. A table whose own keys had errors is left out of
//! the checks that span tables (a location's `client_auth` against its server's
//! `verify_client`, listen addresses across servers), so one mistake is not reported twice.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mtls_tls::ciphers;
use toml::Spanned;

mod proxy;

use super::raw::{RawAllow, RawConfig, RawLocation, RawServer, RawTls, Value};
use super::syntax;
use super::{
    AccessLog, Action, AllowField, AllowRule, ClientAuth, Config, ConfigError, ConfigErrors,
    DEFAULT_MAX_REQUEST_HEAD, Listen, Location, Position, Server, SessionCache, Sourced, Timeouts,
    TlsSettings, VerifyClient,
};

/// nginx's `ssl_verify_depth` default.
const DEFAULT_VERIFY_DEPTH: u32 = 1;
/// nginx's common `ssl_session_cache shared:SSL:5m`: about 4000 sessions per megabyte.
const DEFAULT_SESSION_CACHE: SessionCache = SessionCache::Sessions(20_000);
/// nginx's `ssl_session_timeout` default.
const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const DEFAULT_PROTOCOLS: [&str; 2] = ["TLSv1.2", "TLSv1.3"];
const DEFAULT_INDEX: &str = "index.html";
const MAX_VERIFY_DEPTH: i64 = 100;

/// Parse and validate a whole file.
pub(super) fn config(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let mut cx = Cx::new(text, file);
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => return Err(cx.toml_error(&e).into()),
    };
    let config = cx.config(raw);
    if cx.errors.is_empty() {
        Ok(config)
    } else {
        // Sorting is stable: errors at one place keep the order they were found in.
        cx.errors.sort_by_key(|e| e.at);
        Err(ConfigErrors(cx.errors))
    }
}

/// The conversion's context: where we are reading from and what went wrong so far.
struct Cx<'a> {
    text: &'a str,
    file: &'a Path,
    /// Relative paths in the config are relative to this (the config's directory).
    base: &'a Path,
    /// Byte offset where each line starts, for spans to positions.
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
    /// `[[upstream]]` names, and whether each speaks TLS, for `proxy_pass` to refer to.
    upstreams: Vec<(String, bool)>,
}

/// A server as converted, with what the cross-server checks need.
struct Built {
    server: Server,
    /// The position of each of `server.listen`.
    listen_at: Vec<Position>,
    /// Whether it has `[server.tls]` (even one with errors).
    tls: bool,
}

/// What a location's `client_auth` and `allow` are checked against.
#[derive(Clone, Copy)]
enum ClientCerts {
    Plain,
    Tls(VerifyClient),
    /// `[server.tls]` had errors of its own: no check.
    Unknown,
}

impl<'a> Cx<'a> {
    fn new(text: &'a str, file: &'a Path) -> Cx<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Cx {
            text,
            file,
            base: file.parent().unwrap_or(Path::new("")),
            line_starts,
            errors: Vec::new(),
            upstreams: Vec::new(),
        }
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let access_log = match &raw.access_log {
            Some(v) => self.access_log(v),
            None => AccessLog::Stdout,
        };
        let workers = raw.workers.as_ref().and_then(|v| self.workers(v));
        let metrics = raw.metrics.as_ref().and_then(|v| self.metrics(v));
        let max_connections = raw
            .max_connections
            .as_ref()
            .and_then(|v| self.integer("max_connections", v, 1, i64::from(u32::MAX)))
            .and_then(|n| usize::try_from(n).ok());
        let worker_rlimit_nofile = raw
            .worker_rlimit_nofile
            .as_ref()
            .and_then(|v| self.integer("worker_rlimit_nofile", v, 64, i64::from(u32::MAX)))
            .and_then(|n| u64::try_from(n).ok());
        let pid = match &raw.pid {
            Some(v) => self
                .string("pid", v)
                .and_then(|s| self.path("pid", s))
                .map(|p| p.value),
            // nginx's default is fixed at build time; beside the config, named after it, is
            // what finds the running gateway of *this* config (`mtls serve -s reload -c
            // FILE`), even with several configs in one directory.
            None => Some(self.default_pid()),
        };
        let upstreams = self.upstreams(raw.upstream.as_deref().unwrap_or_default());
        let ssl_handshake_timeout = raw
            .ssl_handshake_timeout
            .as_ref()
            .and_then(|v| self.duration("ssl_handshake_timeout", v))
            .unwrap_or(Duration::from_secs(60));
        let timeouts = self.timeouts(
            Timeouts::default(),
            [
                &raw.client_header_timeout,
                &raw.client_body_timeout,
                &raw.send_timeout,
                &raw.keepalive_timeout,
            ],
        );
        let mut built = Vec::new();
        match raw.server {
            Some(servers) if !servers.is_empty() => {
                for server in &servers {
                    built.push(self.server(server, timeouts));
                }
            }
            _ => self.errors.push(ConfigError::new(
                self.file,
                None,
                "server",
                "no [[server]] table; at least one is required",
            )),
        }
        self.check_listen_addresses(&built);
        Config {
            source: self.file.to_path_buf(),
            servers: built.into_iter().map(|b| b.server).collect(),
            access_log,
            workers,
            metrics,
            upstreams,
            max_connections,
            worker_rlimit_nofile,
            ssl_handshake_timeout,
            timeouts,
            pid: pid.unwrap_or_else(|| self.default_pid()),
        }
    }

    /// `client_header_timeout`, `client_body_timeout`, `send_timeout`, `keepalive_timeout`
    /// (in that order) over `defaults`.
    fn timeouts(&mut self, defaults: Timeouts, keys: [&Option<Spanned<Value>>; 4]) -> Timeouts {
        let [header, body, send, keepalive] = keys;
        let mut one = |key: &str, v: &Option<Spanned<Value>>, default: Duration| {
            v.as_ref()
                .and_then(|v| self.duration(key, v))
                .unwrap_or(default)
        };
        Timeouts {
            client_header: one("client_header_timeout", header, defaults.client_header),
            client_body: one("client_body_timeout", body, defaults.client_body),
            send: one("send_timeout", send, defaults.send),
            keepalive: one("keepalive_timeout", keepalive, defaults.keepalive),
        }
    }

    fn metrics(&mut self, v: &Spanned<Value>) -> Option<SocketAddr> {
        let s = self.string("metrics", v)?;
        match syntax::listen(&s.value) {
            Ok(listen) if !listen.default_server => Some(listen.addr),
            Ok(_) => {
                self.error(s.at, "metrics", "default_server means nothing here");
                None
            }
            Err(why) => {
                self.error(s.at, "metrics", why);
                None
            }
        }
    }

    fn access_log(&mut self, v: &Spanned<Value>) -> AccessLog {
        let Some(s) = self.string("access_log", v) else {
            return AccessLog::Stdout;
        };
        match s.value.as_str() {
            "stdout" => AccessLog::Stdout,
            "off" => AccessLog::Off,
            "" | "stderr" => {
                let why = format!("{:?}: expected \"stdout\", \"off\" or a file path", s.value);
                self.error(s.at, "access_log", why);
                AccessLog::Stdout
            }
            path => AccessLog::File(self.resolve(path)),
        }
    }

    fn workers(&mut self, v: &Spanned<Value>) -> Option<usize> {
        match v.get_ref() {
            Value::String(s) if s == "auto" => None,
            Value::Integer(n) => match usize::try_from(*n) {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    self.error_at(
                        v,
                        "workers",
                        format!("{n}: must be at least 1 (or \"auto\")"),
                    );
                    None
                }
            },
            other => {
                let why = format!("expected a number or \"auto\", found {}", other.kind());
                self.error_at(v, "workers", why);
                None
            }
        }
    }

    fn server(&mut self, raw: &Spanned<RawServer>, defaults: Timeouts) -> Built {
        let at = self.at(raw.span());
        let r = raw.get_ref();
        let timeouts = self.timeouts(
            defaults,
            [
                &r.client_header_timeout,
                &r.client_body_timeout,
                &r.send_timeout,
                &r.keepalive_timeout,
            ],
        );

        let (mut listen, mut listen_at) = (Vec::new(), Vec::new());
        match &r.listen {
            None => self.error(
                at,
                "listen",
                "required: at least one address such as \"0.0.0.0:8443\"",
            ),
            Some(v) => {
                for (item, item_at) in self.listen(v) {
                    if listen.iter().any(|l: &Listen| l.addr == item.addr) {
                        self.error(item_at, "listen", format!("{} is listed twice", item.addr));
                    } else {
                        listen.push(item);
                        listen_at.push(item_at);
                    }
                }
            }
        }

        let mut server_names = Vec::new();
        if let Some(v) = &r.server_name {
            for name in self.strings("server_name", v) {
                match syntax::server_name(&name.value) {
                    Ok(names) => server_names.extend(names),
                    Err(why) => self.error(name.at, "server_name", item_error(&name.value, &why)),
                }
            }
        }

        let client_max_body_size = r
            .client_max_body_size
            .as_ref()
            .and_then(|v| self.bytes("client_max_body_size", v));
        let max_request_head = r
            .large_client_header_buffers
            .as_ref()
            .and_then(|v| self.header_buffers(v))
            .unwrap_or(DEFAULT_MAX_REQUEST_HEAD);
        let underscores_in_headers = r
            .underscores_in_headers
            .as_ref()
            .map_or(Some(false), |v| self.boolean("underscores_in_headers", v))
            .unwrap_or(false);

        let tls = r.tls.as_ref().map(|t| self.tls(t));
        let certs = match &tls {
            None => ClientCerts::Plain,
            Some(Some(t)) => ClientCerts::Tls(t.verify_client),
            Some(None) => ClientCerts::Unknown,
        };

        let mut locations: Vec<Location> = Vec::new();
        for raw_location in r.location.iter().flatten() {
            let Some((location, path_at)) = self.location(raw_location, certs) else {
                continue;
            };
            if let Some(first) = locations.iter().find(|l| l.path == location.path) {
                let why = format!(
                    "\"{}\" is already the path of the location at line {}",
                    location.path, first.at.line
                );
                self.error(path_at, "path", why);
                continue;
            }
            locations.push(location);
        }

        Built {
            server: Server {
                at,
                listen,
                server_names,
                underscores_in_headers,
                client_max_body_size,
                max_request_head,
                timeouts,
                tls: tls.flatten(),
                locations,
            },
            listen_at,
            tls: r.tls.is_some(),
        }
    }

    /// `listen`: a string, a port number, or a list of those.
    fn listen(&mut self, v: &Spanned<Value>) -> Vec<(Listen, Position)> {
        let items: Vec<&Spanned<Value>> = match v.get_ref() {
            Value::Array(items) if items.is_empty() => {
                self.error_at(v, "listen", "empty list; at least one address is required");
                return Vec::new();
            }
            Value::Array(items) => items.iter().collect(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for item in items {
            let at = self.at(item.span());
            let parsed = match item.get_ref() {
                Value::String(s) => syntax::listen(s).map_err(|why| item_error(s, &why)),
                Value::Integer(port) => syntax::listen_port(*port),
                other => Err(format!(
                    "expected an address such as \"0.0.0.0:8443\" or a port, found {}",
                    other.kind()
                )),
            };
            match parsed {
                Ok(listen) => out.push((listen, at)),
                Err(why) => self.error(at, "listen", why),
            }
        }
        out
    }

    /// `[server.tls]`; `None` when it has errors.
    fn tls(&mut self, raw: &Spanned<RawTls>) -> Option<TlsSettings> {
        let errors_before = self.errors.len();
        let at = self.at(raw.span());
        let r = raw.get_ref();

        let certificate =
            self.required_path(at, "certificate", &r.certificate, "the certificate chain");
        let key = self.required_path(at, "key", &r.key, "the private key");
        let key_password_file = r
            .key_password_file
            .as_ref()
            .and_then(|v| self.string("key_password_file", v))
            .and_then(|s| self.path("key_password_file", s));
        let client_ca = self.paths("client_ca", &r.client_ca);
        let trusted_ca = self.paths("trusted_ca", &r.trusted_ca);
        let crl = self.paths("crl", &r.crl);

        let verify_client = r.verify_client.as_ref().and_then(|v| {
            self.choice(
                "verify_client",
                v,
                &[
                    ("on", VerifyClient::On),
                    ("optional", VerifyClient::Optional),
                    ("optional_no_ca", VerifyClient::OptionalNoCa),
                    ("off", VerifyClient::Off),
                ],
            )
        });
        if let (Some(verify), Some(v)) = (verify_client, &r.verify_client)
            && verify != VerifyClient::Off
            && r.client_ca.is_none()
            && r.trusted_ca.is_none()
        {
            let why = format!(
                "\"{verify}\" needs client_ca or trusted_ca: the CA certificates that client \
                 certificates are verified against"
            );
            self.error_at(v, "verify_client", why);
        }

        let verify_depth = r
            .verify_depth
            .as_ref()
            .map_or(Some(DEFAULT_VERIFY_DEPTH), |v| {
                self.integer("verify_depth", v, 0, MAX_VERIFY_DEPTH)
                    .and_then(|n| u32::try_from(n).ok())
            });

        let protocols = match &r.protocols {
            None => DEFAULT_PROTOCOLS.map(str::to_owned).to_vec(),
            Some(v) => self.protocols(v),
        };

        let ciphers = r.ciphers.as_ref().and_then(|v| self.string("ciphers", v));
        if let Some(c) = &ciphers
            && let Err(e) = ciphers::parse_cipher_string(&c.value)
        {
            self.error(c.at, "ciphers", e.to_string());
        }

        let prefer_server_ciphers = r
            .prefer_server_ciphers
            .as_ref()
            .map_or(Some(true), |v| self.boolean("prefer_server_ciphers", v));
        let session_tickets = r
            .session_tickets
            .as_ref()
            .map_or(Some(true), |v| self.boolean("session_tickets", v));

        let session_ticket_key = self.paths("session_ticket_key", &r.session_ticket_key);
        let keylog = r
            .keylog
            .as_ref()
            .and_then(|v| self.string("keylog", v))
            .and_then(|s| self.path("keylog", s));
        if let (Some(false), Some(v)) = (session_tickets, &r.session_ticket_key) {
            self.error_at(
                v,
                "session_ticket_key",
                "session_tickets = false issues no tickets: remove one of the two",
            );
        }

        let session_cache = match &r.session_cache {
            None => Some(DEFAULT_SESSION_CACHE),
            Some(v) => self.string("session_cache", v).and_then(|s| {
                syntax::session_cache(&s.value)
                    .map_err(|why| self.error(s.at, "session_cache", why))
                    .ok()
            }),
        };

        let session_timeout = match &r.session_timeout {
            None => Some(DEFAULT_SESSION_TIMEOUT),
            Some(v) => self.session_timeout(v),
        };

        if self.errors.len() > errors_before {
            return None;
        }
        Some(TlsSettings {
            at,
            certificate: certificate?,
            key: key?,
            key_password_file,
            client_ca,
            trusted_ca,
            verify_client: verify_client.unwrap_or_default(),
            crl,
            verify_depth: verify_depth?,
            protocols,
            ciphers,
            prefer_server_ciphers: prefer_server_ciphers?,
            session_cache: session_cache?,
            session_timeout: session_timeout?,
            session_tickets: session_tickets?,
            session_ticket_key,
            keylog,
        })
    }

    /// `protocols`: a list, or nginx's space-separated string.
    fn protocols(&mut self, v: &Spanned<Value>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let items = self.strings("protocols", v);
        let mut any = false;
        for item in items {
            for name in item.value.split_whitespace() {
                any = true;
                if let Err(e) = ciphers::parse_protocols(&[name]) {
                    self.error(item.at, "protocols", e.to_string());
                } else if !out.iter().any(|p| p == name) {
                    out.push(name.to_owned());
                }
            }
        }
        if !any {
            self.error_at(
                v,
                "protocols",
                "empty; expected \"TLSv1.2\" and/or \"TLSv1.3\"",
            );
        }
        out
    }

    fn session_timeout(&mut self, v: &Spanned<Value>) -> Option<Duration> {
        let timeout = match v.get_ref() {
            Value::Integer(n) => u64::try_from(*n)
                .map(Duration::from_secs)
                .map_err(|_| format!("{n}: expected a time such as \"5m\" or a number of seconds")),
            Value::String(s) => syntax::duration(s),
            other => Err(format!(
                "expected a time such as \"5m\", found {}",
                other.kind()
            )),
        };
        match timeout {
            Ok(t) if t.is_zero() => {
                self.error_at(v, "session_timeout", "must be more than 0");
                None
            }
            Ok(t) => Some(t),
            Err(why) => {
                self.error_at(v, "session_timeout", why);
                None
            }
        }
    }

    /// One `[[server.location]]` and where its `path` is; `None` when it has errors.
    fn location(
        &mut self,
        raw: &Spanned<RawLocation>,
        certs: ClientCerts,
    ) -> Option<(Location, Position)> {
        let errors_before = self.errors.len();
        let at = self.at(raw.span());
        let r = raw.get_ref();

        let path = match &r.path {
            None => {
                self.error(at, "path", "required: \"/prefix/\" or \"= /exact\"");
                None
            }
            Some(v) => self
                .string("path", v)
                .and_then(|s| match syntax::path_match(&s.value) {
                    Ok(path) => Some((path, s.at)),
                    Err(why) => {
                        self.error(s.at, "path", why);
                        None
                    }
                }),
        };

        let root = r
            .root
            .as_ref()
            .and_then(|v| self.string("root", v))
            .and_then(|s| self.path("root", s));
        let mut index = vec![DEFAULT_INDEX.to_owned()];
        if let Some(v) = &r.index {
            index.clear();
            for name in self.strings("index", v) {
                if name.value.is_empty() {
                    self.error(name.at, "index", "empty file name");
                } else {
                    index.push(name.value);
                }
            }
            if r.root.is_none() {
                self.error_at(
                    v,
                    "index",
                    "names files under root, and this location has no root",
                );
            }
        }
        let ret = r.ret.as_ref().and_then(|v| self.return_action(v));

        let proxy = r.proxy_pass.as_ref().and_then(|v| self.proxy(v, r));
        if r.proxy_pass.is_none() {
            self.no_proxy_keys(r);
        }

        let actions = [
            ("root", r.root.as_ref()),
            ("return", r.ret.as_ref()),
            ("proxy_pass", r.proxy_pass.as_ref()),
        ];
        let given: Vec<_> = actions.iter().filter(|(_, v)| v.is_some()).collect();
        let action = match given.as_slice() {
            [] => {
                self.error(at, "location", "no action: set root, return or proxy_pass");
                None
            }
            [_, (second, Some(v)), ..] => {
                let why = "a location has one action: root, return or proxy_pass";
                self.error_at(v, second, why);
                None
            }
            _ if r.root.is_some() => root.map(|root| Action::Static {
                root: root.value,
                index,
            }),
            _ if r.ret.is_some() => ret.map(|(status, target)| Action::Return { status, target }),
            _ => proxy.map(|p| Action::Proxy(Box::new(p))),
        };

        let mut client_auth = ClientAuth::Inherit;
        if let Some(v) = &r.client_auth {
            let choices = [
                ("required", ClientAuth::Required),
                ("inherit", ClientAuth::Inherit),
            ];
            client_auth = self.choice("client_auth", v, &choices).unwrap_or_default();
            if client_auth == ClientAuth::Required {
                self.needs_verified_clients(self.at(v.span()), "client_auth", certs);
            }
        }

        let allow = match &r.allow {
            Some(a) => {
                let rules = self.allow(a);
                self.needs_verified_clients(self.at(a.span()), "allow", certs);
                rules
            }
            None => Vec::new(),
        };

        let client_max_body_size = r
            .client_max_body_size
            .as_ref()
            .and_then(|v| self.bytes("client_max_body_size", v));

        if self.errors.len() > errors_before {
            return None;
        }
        let (path, path_at) = path?;
        let location = Location {
            at,
            path,
            action: action?,
            client_auth,
            allow,
            client_max_body_size,
        };
        Some((location, path_at))
    }

    /// `return`: nginx's `"CODE [URL or text]"` or a URL, or a bare status number.
    fn return_action(&mut self, v: &Spanned<Value>) -> Option<(u16, Option<String>)> {
        let parsed = match v.get_ref() {
            Value::String(s) => syntax::return_action(s),
            Value::Integer(n) => syntax::return_status(*n, None),
            other => Err(format!(
                "expected \"CODE [URL or text]\" such as \"301 https://$host$request_uri\", found {}",
                other.kind()
            )),
        };
        parsed.map_err(|why| self.error_at(v, "return", why)).ok()
    }

    /// `allow`: rules for each certificate field.
    fn allow(&mut self, raw: &Spanned<RawAllow>) -> Vec<AllowRule> {
        let r = raw.get_ref();
        let fields = [
            (AllowField::Cn, &r.cn),
            (AllowField::Ou, &r.ou),
            (AllowField::SanDns, &r.san_dns),
            (AllowField::SanUri, &r.san_uri),
            (AllowField::SanEmail, &r.san_email),
            (AllowField::Fingerprint, &r.fingerprint),
        ];
        if fields.iter().all(|(_, v)| v.is_none()) {
            let why = "empty; list patterns under cn, ou, san_dns, san_uri, san_email or \
                       fingerprint, or remove it";
            self.error(self.at(raw.span()), "allow", why);
        }
        let mut rules = Vec::new();
        for (field, v) in fields {
            let Some(v) = v else { continue };
            let key = format!("allow.{}", field.key());
            let patterns = self.strings(&key, v);
            if patterns.is_empty() && matches!(v.get_ref(), Value::Array(_)) {
                self.error_at(v, &key, "empty list; a client cannot match it");
            }
            for p in patterns {
                if p.value.is_empty() {
                    self.error(p.at, &key, "empty pattern");
                    continue;
                }
                if field == AllowField::Fingerprint {
                    let hex = syntax::normalize_fingerprint(&p.value);
                    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        let why = "expected a SHA-256 fingerprint: 64 hex digits, `:` allowed";
                        self.error(p.at, &key, item_error(&p.value, why));
                        continue;
                    }
                }
                rules.push(AllowRule {
                    field,
                    pattern: p.value,
                });
            }
        }
        rules
    }

    /// `client_auth` and `allow` look at a verified client certificate.
    fn needs_verified_clients(&mut self, at: Position, key: &str, certs: ClientCerts) {
        let why = match certs {
            ClientCerts::Unknown | ClientCerts::Tls(VerifyClient::On | VerifyClient::Optional) => {
                return;
            }
            ClientCerts::Plain => "requires [server.tls] with verify_client = \"on\" or \
                                   \"optional\"; this server is plain HTTP"
                .to_owned(),
            // optional_no_ca does not verify the chain, so nothing in the certificate can
            // be believed.
            ClientCerts::Tls(verify) => format!(
                "requires verify_client = \"on\" or \"optional\" in [server.tls], not \"{verify}\""
            ),
        };
        self.error(at, key, why);
    }

    /// Two servers may share an address (name-based virtual hosts), but not disagree on
    /// whether it is TLS, and only one may be its default_server.
    fn check_listen_addresses(&mut self, built: &[Built]) {
        let mut first_user = HashMap::new();
        let mut default_of = HashMap::new();
        for (i, b) in built.iter().enumerate() {
            for (listen, &at) in b.server.listen.iter().zip(&b.listen_at) {
                match first_user.entry(listen.addr) {
                    Entry::Vacant(e) => {
                        e.insert(i);
                    }
                    Entry::Occupied(e) => {
                        let other: &Built = &built[*e.get()];
                        if other.tls != b.tls {
                            let why = format!(
                                "{} is {} in the server at line {}; an address is either TLS \
                                 or plain HTTP",
                                listen.addr,
                                if other.tls { "TLS" } else { "plain HTTP" },
                                other.server.at.line
                            );
                            self.error(at, "listen", why);
                        }
                    }
                }
                if listen.default_server {
                    match default_of.entry(listen.addr) {
                        Entry::Vacant(e) => {
                            e.insert(b.server.at.line);
                        }
                        Entry::Occupied(e) => {
                            let why = format!(
                                "{} default_server: the server at line {} is already the \
                                 default for this address",
                                listen.addr,
                                e.get()
                            );
                            self.error(at, "listen", why);
                        }
                    }
                }
            }
        }
    }

    // Value helpers: each records its own error and returns `None` (or nothing).

    fn string(&mut self, key: &str, v: &Spanned<Value>) -> Option<Sourced<String>> {
        match v.get_ref() {
            Value::String(s) => Some(Sourced {
                value: s.clone(),
                at: self.at(v.span()),
            }),
            other => {
                self.error_at(v, key, format!("expected a string, found {}", other.kind()));
                None
            }
        }
    }

    /// A string or a list of strings (possibly empty), each with its position.
    fn strings(&mut self, key: &str, v: &Spanned<Value>) -> Vec<Sourced<String>> {
        match v.get_ref() {
            Value::String(_) => self.string(key, v).into_iter().collect(),
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    match item.get_ref() {
                        Value::String(s) => out.push(Sourced {
                            value: s.clone(),
                            at: self.at(item.span()),
                        }),
                        other => {
                            let why =
                                format!("expected a string in the list, found {}", other.kind());
                            self.error_at(item, key, why);
                        }
                    }
                }
                out
            }
            other => {
                let why = format!(
                    "expected a string or a list of strings, found {}",
                    other.kind()
                );
                self.error_at(v, key, why);
                Vec::new()
            }
        }
    }

    fn boolean(&mut self, key: &str, v: &Spanned<Value>) -> Option<bool> {
        match v.get_ref() {
            Value::Boolean(b) => Some(*b),
            other => {
                self.error_at(
                    v,
                    key,
                    format!("expected true or false, found {}", other.kind()),
                );
                None
            }
        }
    }

    /// A size in bytes: a number, or nginx's `"512k"`, `"10m"`, `"1g"`.
    fn bytes(&mut self, key: &str, v: &Spanned<Value>) -> Option<u64> {
        let parsed = match v.get_ref() {
            Value::Integer(n) => u64::try_from(*n).map_err(|_| format!("{n} is negative")),
            Value::String(s) => syntax::size(s),
            other => Err(format!(
                "expected a size such as \"1m\", found {}",
                other.kind()
            )),
        };
        match parsed {
            Ok(n) => Some(n),
            Err(why) => {
                self.error_at(v, key, why);
                None
            }
        }
    }

    /// `large_client_header_buffers`: nginx's `"NUMBER SIZE"`, kept as the total.
    fn header_buffers(&mut self, v: &Spanned<Value>) -> Option<usize> {
        let key = "large_client_header_buffers";
        let s = self.string(key, v)?;
        let total = syntax::header_buffers(&s.value);
        match total {
            Ok(total) => Some(total),
            Err(why) => {
                self.error(s.at, key, why);
                None
            }
        }
    }

    fn integer(&mut self, key: &str, v: &Spanned<Value>, min: i64, max: i64) -> Option<i64> {
        match v.get_ref() {
            Value::Integer(n) if (min..=max).contains(n) => Some(*n),
            Value::Integer(n) => {
                self.error_at(v, key, format!("{n} is not in {min}..={max}"));
                None
            }
            other => {
                self.error_at(v, key, format!("expected a number, found {}", other.kind()));
                None
            }
        }
    }

    /// One of a few words.
    fn choice<T: Copy>(
        &mut self,
        key: &str,
        v: &Spanned<Value>,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let s = self.string(key, v)?;
        if let Some((_, value)) = choices.iter().find(|(word, _)| *word == s.value) {
            return Some(*value);
        }
        let words: Vec<String> = choices.iter().map(|(w, _)| format!("\"{w}\"")).collect();
        let why = format!("{:?}: expected one of {}", s.value, words.join(", "));
        self.error(s.at, key, why);
        None
    }

    fn required_path(
        &mut self,
        table_at: Position,
        key: &str,
        v: &Option<Spanned<Value>>,
        what: &str,
    ) -> Option<Sourced<PathBuf>> {
        match v {
            None => {
                self.error(
                    table_at,
                    key,
                    format!("required in [server.tls]: {what} (PEM file)"),
                );
                None
            }
            Some(v) => self.string(key, v).and_then(|s| self.path(key, s)),
        }
    }

    /// A file or a non-empty list of files.
    fn paths(&mut self, key: &str, v: &Option<Spanned<Value>>) -> Vec<Sourced<PathBuf>> {
        let Some(v) = v else { return Vec::new() };
        if matches!(v.get_ref(), Value::Array(items) if items.is_empty()) {
            self.error_at(
                v,
                key,
                "empty list; name at least one file or remove the key",
            );
            return Vec::new();
        }
        let items = self.strings(key, v);
        items
            .into_iter()
            .filter_map(|s| self.path(key, s))
            .collect()
    }

    fn path(&mut self, key: &str, s: Sourced<String>) -> Option<Sourced<PathBuf>> {
        if s.value.is_empty() {
            self.error(s.at, key, "empty path");
            return None;
        }
        Some(Sourced {
            value: self.resolve(&s.value),
            at: s.at,
        })
    }

    /// `NAME.pid` beside `NAME.toml`: `mtls.pid` for `mtls.toml`.
    fn default_pid(&self) -> PathBuf {
        let stem = self
            .file
            .file_stem()
            .map_or_else(|| "mtls".into(), |s| s.to_string_lossy().into_owned());
        self.base.join(format!("{stem}.pid"))
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }

    // Positions and errors.

    fn at(&self, span: Range<usize>) -> Position {
        self.position(span.start)
    }

    fn position(&self, offset: usize) -> Position {
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset.saturating_sub(start), |s| s.chars().count())
            + 1;
        Position { line, col }
    }

    fn error(&mut self, at: Position, key: &str, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(self.file, Some(at), key, message));
    }

    fn error_at(&mut self, v: &Spanned<Value>, key: &str, message: impl Into<String>) {
        self.error(self.at(v.span()), key, message);
    }

    /// A syntax error, an unknown key or a table of the wrong type, from toml.
    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map(|s| s.start);
        // toml's messages can run over several lines; ours are one line each.
        let message = e.message().trim().replace('\n', "; ");
        let (key, message) = match message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
        {
            Some((key, expected)) => (key.to_owned(), format!("unknown key{expected}")),
            None => (
                offset.map_or(String::new(), |o| self.key_before(o)),
                message,
            ),
        };
        ConfigError::new(self.file, offset.map(|o| self.position(o)), key, message)
    }

    /// The `key` of `key = value` when `offset` is in the value, else "".
    fn key_before(&self, offset: usize) -> String {
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let Some((key, _)) = self.text.get(start..offset).and_then(|s| s.split_once('=')) else {
            return String::new();
        };
        let key = key.trim();
        let bare = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if bare { key.to_owned() } else { String::new() }
    }
}

/// An error about one item of a list names the item.
fn item_error(item: &str, why: &str) -> String {
    if why.contains(&format!("{item:?}")) {
        why.to_owned()
    } else {
        format!("{item:?}: {why}")
    }
}

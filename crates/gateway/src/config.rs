//! The TOML config of `mtls serve`, parsed into validated types.
//!
//! The file uses nginx's vocabulary (`listen`, `server_name`, `verify_client`, `root`,
//! `return`...) so an nginx config translates line by line. It is read in two steps, as
//! ripgrep does with its flags: the TOML deserializes into raw structs (`raw`: serde with
//! `deny_unknown_fields`, every value wrapped in `toml::Spanned` so it keeps its position),
//! which then convert into the validated types below. Only the second step knows what a
//! value means, and it keeps going after an error, so one run reports every mistake in the
//! file — like `nginx -t`, one per line as `FILE:LINE:COL: key: what is wrong`. (A TOML
//! syntax error or an unknown key ends the first step, so it is reported alone.)
//!
//! Parsing does no I/O: [`Config::parse`] takes the text, and [`Config::load`] only reads
//! the file first. Files named in the config are not opened here (whoever loads them
//! reports problems with [`ConfigError::new`] at the key's [`Position`]); relative paths are
//! resolved against the config file's directory, so a config works from any current
//! directory.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod build;
mod raw;
mod syntax;

/// A whole config file: the servers and the process-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from, as given (errors found later name it).
    pub source: PathBuf,
    /// The `[[server]]` tables, in file order; never empty.
    pub servers: Vec<Server>,
    /// Top-level `access_log`: `"stdout"` (the default), `"off"` or a file path.
    pub access_log: AccessLog,
    /// Top-level `workers`: how many runtime threads; `None` (or `"auto"`) is one per CPU.
    pub workers: Option<usize>,
    /// Top-level `metrics`: a plain-HTTP address (`"127.0.0.1:9100"`) serving `GET /metrics`
    /// in the OpenMetrics text format; `None` (the default) serves no metrics.
    pub metrics: Option<SocketAddr>,
    /// `[[upstream]]` groups.
    pub upstreams: Vec<Upstream>,
    /// Top-level `max_connections` (nginx's `worker_connections`, for the whole process):
    /// client connections served at once; at the cap the gateway stops accepting until one
    /// closes. `None`: derived from the file-descriptor limit.
    pub max_connections: Option<usize>,
    /// Top-level `worker_rlimit_nofile` (nginx's): the file-descriptor limit to set at
    /// start. `None`: raised to the hard limit.
    pub worker_rlimit_nofile: Option<u64>,
    /// Top-level `ssl_handshake_timeout`: the TLS handshake, from the first byte of the
    /// ClientHello to Finished, must take at most this; default 60 s.
    pub ssl_handshake_timeout: Duration,
    /// The top-level client timeouts: every server's defaults, and the metrics listener's.
    pub timeouts: Timeouts,
    /// Top-level `pid` (nginx's): the file holding the running gateway's process id, which
    /// `mtls serve -s reload` signals; default `mtls.pid` beside the config.
    pub pid: PathBuf,
}

/// nginx's client timeouts. Each is a top-level key (every server's default, and the
/// metrics listener's) and a `[[server]]` key that overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `client_header_timeout`: a request head must arrive whole within this, counted from
    /// its first byte (from the end of the handshake, or the accept, for the first
    /// request); default 60 s. Then the connection is closed.
    pub client_header: Duration,
    /// `client_body_timeout`: the longest wait between two reads of a request body;
    /// default 60 s. Then 408.
    pub client_body: Duration,
    /// `send_timeout`: the longest a response may wait for the client to take any of it;
    /// default 60 s. Then the connection is closed.
    pub send: Duration,
    /// `keepalive_timeout`: a connection with no request in flight is closed after this
    /// (HTTP/2: a GOAWAY when no stream has been open that long); default 75 s.
    pub keepalive: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            client_header: Duration::from_secs(60),
            client_body: Duration::from_secs(60),
            send: Duration::from_secs(60),
            keepalive: Duration::from_secs(75),
        }
    }
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AccessLog {
    /// Standard output (`"stdout"`, the default).
    #[default]
    Stdout,
    /// No access log (`"off"`).
    Off,
    /// Appended to this file (resolved against the config's directory).
    File(PathBuf),
}

/// A place in the config file, both 1-based; columns count characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

/// A value with where it was written, for errors found after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where the value (not its key) starts.
    pub at: Position,
}

/// One `[[server]]`: nginx's `server { }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Where the `[[server]]` header is.
    pub at: Position,
    /// `listen`: at least one address.
    pub listen: Vec<Listen>,
    /// `server_name`: the names this server answers to; empty is a catch-all.
    pub server_names: Vec<ServerName>,
    /// `underscores_in_headers` (nginx's): accept request headers whose names contain `_`.
    /// Default false: they are dropped, because CGI/WSGI servers map `X_Client_Subject` and
    /// `X-Client-Subject` to the same variable.
    pub underscores_in_headers: bool,
    /// `client_max_body_size` (nginx's): the largest request body, for locations that do
    /// not set their own; `None` when not set (1 MB applies), `Some(0)` for no limit.
    pub client_max_body_size: Option<u64>,
    /// `large_client_header_buffers` (nginx's `"4 8k"`): the request head (request line and
    /// headers) may take at most NUMBER x SIZE bytes; beyond it, 431. Default 32 KiB.
    pub max_request_head: usize,
    /// The client timeouts: the server's keys, else the top-level ones.
    pub timeouts: Timeouts,
    /// `[server.tls]`; `None` is plain HTTP.
    pub tls: Option<TlsSettings>,
    /// `[[server.location]]`, in file order.
    pub locations: Vec<Location>,
}

/// One `listen` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listen {
    /// The address to bind; a bare port means `0.0.0.0:PORT`.
    pub addr: SocketAddr,
    /// `default_server`: the server for requests no `server_name` matches on this address.
    pub default_server: bool,
}

/// One `server_name` item, stored in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerName {
    /// The name itself.
    Exact(String),
    /// `*.example.com`, stored as the suffix `.example.com`.
    Wildcard(String),
}

/// `[server.tls]`: the server's certificate and how it treats client certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Where the `[server.tls]` header is.
    pub at: Position,
    /// `certificate`: PEM chain file, leaf first.
    pub certificate: Sourced<PathBuf>,
    /// `key`: the PEM private key of the leaf, plain or encrypted.
    pub key: Sourced<PathBuf>,
    /// `key_password_file`: passwords for an encrypted `key`, one per line, tried in order
    /// (nginx's `ssl_password_file`).
    pub key_password_file: Option<Sourced<PathBuf>>,
    /// `client_ca`: CA certificates trusted for client certificates and named in the
    /// CertificateRequest (nginx's `ssl_client_certificate`).
    pub client_ca: Vec<Sourced<PathBuf>>,
    /// `trusted_ca`: CA certificates trusted for client certificates but not advertised
    /// (nginx's `ssl_trusted_certificate`).
    pub trusted_ca: Vec<Sourced<PathBuf>>,
    /// `verify_client`; default off.
    pub verify_client: VerifyClient,
    /// `crl`: PEM CRL files checked for client certificates.
    pub crl: Vec<Sourced<PathBuf>>,
    /// `verify_depth`: how long a client chain may be, counted as OpenSSL does: 1 = the
    /// trusted CA signed the client certificate itself, 2 = one intermediate between them;
    /// default 1 (nginx's default).
    pub verify_depth: u32,
    /// `protocols`: `"TLSv1.2"` and/or `"TLSv1.3"`, as written, validated and deduplicated;
    /// default both. Turn them into rustls versions with `mtls_tls::ciphers::parse_protocols`.
    pub protocols: Vec<String>,
    /// `ciphers`: an OpenSSL cipher string, already checked with
    /// `mtls_tls::ciphers::parse_cipher_string`; `None` is rustls's defaults.
    pub ciphers: Option<Sourced<String>>,
    /// `prefer_server_ciphers`; default true (nginx: off): our order, AES-128-GCM first,
    /// except for clients that list ChaCha20 first (`mtls_tls::ciphers`).
    pub prefer_server_ciphers: bool,
    /// `session_cache`; default 5m (20 000 sessions).
    pub session_cache: SessionCache,
    /// `session_timeout`; default 5 minutes; never zero.
    pub session_timeout: Duration,
    /// `session_tickets`; default true.
    pub session_tickets: bool,
    /// `session_ticket_key` (nginx's `ssl_session_ticket_key`): files of 80 random bytes;
    /// the first seals tickets, all open them. Empty: keys made at start, per process.
    pub session_ticket_key: Vec<Sourced<PathBuf>>,
    /// `keylog`: a file the TLS secrets of every connection are appended to (NSS key log
    /// format, as `SSLKEYLOGFILE`), to decrypt captures when debugging; mode 0600.
    pub keylog: Option<Sourced<PathBuf>>,
}

/// `verify_client`: whether a client certificate is requested and verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VerifyClient {
    /// `"on"`: required and verified.
    On,
    /// `"optional"`: requested, verified if sent.
    Optional,
    /// `"optional_no_ca"`: requested, not verified against the CAs.
    OptionalNoCa,
    /// `"off"`: not requested (the default).
    #[default]
    Off,
}

/// `session_cache`: the server-side TLS session cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionCache {
    /// `"off"` or `"none"`: no server-side cache.
    Off,
    /// A cache of about this many sessions (nginx's 4000 per megabyte).
    Sessions(usize),
}

/// One `[[server.location]]`: a path and what to do with requests under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Where the `[[server.location]]` header is.
    pub at: Position,
    /// `path`.
    pub path: PathMatch,
    /// `root` (with `index`) or `return`.
    pub action: Action,
    /// `client_auth`.
    pub client_auth: ClientAuth,
    /// `allow`: a client matching any rule may pass; empty means no allow-list.
    pub allow: Vec<AllowRule>,
    /// `client_max_body_size`: overrides the server's; `Some(0)` for no limit.
    pub client_max_body_size: Option<u64>,
}

/// nginx's default `client_max_body_size`.
pub const DEFAULT_CLIENT_MAX_BODY_SIZE: u64 = 1 << 20;

/// nginx's default `large_client_header_buffers 4 8k`, in total.
pub const DEFAULT_MAX_REQUEST_HEAD: usize = 4 * 8 * 1024;

/// `path`: which request paths a location takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathMatch {
    /// `"/img/"`: paths starting with this.
    Prefix(String),
    /// `"= /x"`: this path only.
    Exact(String),
}

/// What a location does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `root` and `index`: serve files.
    Static {
        /// The document root (resolved against the config's directory).
        root: PathBuf,
        /// Index files tried for a directory, in order; default `["index.html"]`.
        index: Vec<String>,
    },
    /// `return`: a fixed response.
    Return {
        /// 100..=599.
        status: u16,
        /// The URL of a redirect (required for 3xx) or the body text; nginx variables
        /// such as `$host` are left as written.
        target: Option<String>,
    },
    /// `proxy_pass`: forward to an upstream.
    Proxy(Box<Proxy>),
}

/// `proxy_pass` and the keys that go with it (nginx's `proxy_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Where `proxy_pass` is.
    pub at: Position,
    /// Where requests go.
    pub upstream: ProxyUpstream,
    /// Whether the upstream speaks TLS (`https://`, or a group with `[upstream.tls]`).
    pub https: bool,
    /// The URI part of `proxy_pass` (`https://b:8443/api/`), which replaces the part of the
    /// request path the location matched, as in nginx; `None` passes the path unchanged.
    pub uri: Option<String>,
    /// `[server.location.proxy_tls]`, else the group's `[upstream.tls]`.
    pub tls: Option<ProxyTls>,
    /// `connect_timeout`: TCP connect and TLS handshake with the upstream; default 60 s.
    pub connect_timeout: Duration,
    /// `read_timeout`: the longest wait for the upstream's response headers and between
    /// two reads of its body; default 60 s.
    pub read_timeout: Duration,
    /// `send_timeout`: the longest wait between two writes of the request body to the
    /// upstream; default 60 s.
    pub send_timeout: Duration,
    /// `max_header_size`: the most bytes of response headers taken from the upstream;
    /// default 64k.
    pub max_header_size: usize,
    /// The client-identity headers sent to the upstream.
    pub identity: IdentityHeaders,
    /// `forward_raw_path`: send the path as the client wrote it (still percent-encoded,
    /// `.` and `//` kept) instead of the normalised one, for upstreams that need the exact
    /// bytes. Only when that raw path, matched as it is, picks this same location; otherwise
    /// the request is refused (400), since the upstream could read it as another location.
    /// Default false.
    pub forward_raw_path: bool,
}

/// How long an idle pooled upstream connection is kept (nginx's upstream
/// `keepalive_timeout`), for groups without the key and for `proxy_pass` to an address.
pub const DEFAULT_UPSTREAM_KEEPALIVE: Duration = Duration::from_secs(60);

/// Where a proxied request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyUpstream {
    /// One address from `proxy_pass = "https://host:port"`.
    Address(HostPort),
    /// An `[[upstream]]` group, by name.
    Group(String),
}

/// A host (DNS name or IP literal, without brackets) and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `[server.location.proxy_tls]` or `[upstream.tls]`: nginx's `proxy_ssl_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTls {
    /// Where the table is.
    pub at: Position,
    /// `certificate`: the gateway's client certificate for the upstream; none = no
    /// client certificate.
    pub certificate: Option<Sourced<PathBuf>>,
    /// `key`: its key (with `certificate`), plain or encrypted.
    pub key: Option<Sourced<PathBuf>>,
    /// `key_password_file`: passwords for an encrypted `key`, one per line, tried in
    /// order (nginx's `proxy_ssl_password_file`).
    pub key_password_file: Option<Sourced<PathBuf>>,
    /// `trusted_ca`: CAs the upstream's certificate must chain to (needed with verify).
    pub trusted_ca: Vec<Sourced<PathBuf>>,
    /// `verify`: check the upstream's chain and name; default true.
    pub verify: bool,
    /// `server_name`: the name to verify and send as SNI; default the proxy_pass host.
    pub server_name: Option<String>,
    /// `sni`: send SNI (never for IP addresses); default true.
    pub sni: bool,
    /// `session_reuse`: resume TLS sessions with the upstream; default true.
    pub session_reuse: bool,
    /// `common_name_fallback`: match the upstream's name against the subject CN of a
    /// certificate without any subjectAltName, as nginx (OpenSSL) does; default true.
    pub common_name_fallback: bool,
    /// `protocols`; default TLSv1.2 and TLSv1.3.
    pub protocols: Vec<String>,
    /// `ciphers`: an OpenSSL cipher string.
    pub ciphers: Option<Sourced<String>>,
}

/// Which client-identity headers go to the upstream, under which names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    /// `identity_headers`: send `X-Client-Verify`, `-Subject`, `-Issuer`, `-Serial`,
    /// `-Fingerprint` and `-Cert`; default true.
    pub enabled: bool,
    /// `xfcc`: also send Envoy's `X-Forwarded-Client-Cert`; default false.
    pub xfcc: bool,
    /// `[server.location.header_names]`: the names used (and always removed from what
    /// the client sent, so they cannot be spoofed).
    pub names: HeaderNames,
}

/// Names of the identity headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames {
    /// nginx's `$ssl_client_verify`; default `X-Client-Verify`.
    pub verify: String,
    /// `$ssl_client_s_dn`; default `X-Client-Subject`.
    pub subject: String,
    /// `$ssl_client_i_dn`; default `X-Client-Issuer`.
    pub issuer: String,
    /// `$ssl_client_serial`; default `X-Client-Serial`.
    pub serial: String,
    /// SHA-256 of the certificate; default `X-Client-Fingerprint`.
    pub fingerprint: String,
    /// `$ssl_client_escaped_cert`; default `X-Client-Cert`.
    pub cert: String,
}

impl Default for HeaderNames {
    fn default() -> HeaderNames {
        HeaderNames {
            verify: "X-Client-Verify".into(),
            subject: "X-Client-Subject".into(),
            issuer: "X-Client-Issuer".into(),
            serial: "X-Client-Serial".into(),
            fingerprint: "X-Client-Fingerprint".into(),
            cert: "X-Client-Cert".into(),
        }
    }
}

/// One `[[upstream]]`: nginx's `upstream NAME { server ...; }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Where the table is.
    pub at: Position,
    /// `name`, used by `proxy_pass`.
    pub name: String,
    /// `servers`, tried round robin.
    pub servers: Vec<HostPort>,
    /// `fail_timeout`: how long a server that failed to connect is skipped; default 10 s.
    pub fail_timeout: Duration,
    /// `keepalive_timeout` (nginx's, in `upstream {}`): an idle pooled connection to one of
    /// the servers is closed after this long; default 60 s.
    pub keepalive_timeout: Duration,
    /// `[upstream.tls]`: the upstream speaks TLS, with these settings.
    pub tls: Option<ProxyTls>,
}

/// `client_auth`: whether a location requires a verified client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientAuth {
    /// As the server's `verify_client` says (the default).
    #[default]
    Inherit,
    /// `"required"`: a verified client certificate, even where `verify_client` is optional.
    Required,
}

/// One `allow` pattern for one certificate field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowRule {
    /// The field it applies to.
    pub field: AllowField,
    /// As written: a glob, or for [`AllowField::Fingerprint`] a SHA-256 in hex.
    pub pattern: String,
}

/// The client-certificate field an [`AllowRule`] looks at (the keys of `allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowField {
    /// `cn`: the subject's common name.
    Cn,
    /// `ou`: the subject's organizational unit.
    Ou,
    /// `san_dns`: a DNS subject alternative name.
    SanDns,
    /// `san_uri`: a URI subject alternative name (SPIFFE IDs, for instance).
    SanUri,
    /// `san_email`: an email subject alternative name.
    SanEmail,
    /// `fingerprint`: the SHA-256 of the certificate.
    Fingerprint,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// Where in it, when known.
    pub at: Option<Position>,
    /// The key concerned (may be empty, for a TOML syntax error with no key).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Every problem found in a config file, in file order; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl Config {
    /// Every `proxy_tls` of a location and every `[upstream.tls]`: the gateway's identity
    /// and trust toward its upstreams.
    pub fn proxy_tls(&self) -> impl Iterator<Item = &ProxyTls> {
        let locations = self
            .servers
            .iter()
            .flat_map(|s| &s.locations)
            .filter_map(|l| match &l.action {
                Action::Proxy(p) => p.tls.as_ref(),
                _ => None,
            });
        locations.chain(self.upstreams.iter().filter_map(|u| u.tls.as_ref()))
    }

    /// Every file the config names that holds keys, certificates or CRLs (not static roots
    /// or logs): what a reload reads again, and what the file watcher watches.
    pub fn tls_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = Vec::new();
        let proxy = |tls: &ProxyTls, files: &mut Vec<PathBuf>| {
            files.extend(tls.certificate.iter().map(|c| c.value.clone()));
            files.extend(tls.key.iter().map(|k| k.value.clone()));
            files.extend(tls.key_password_file.iter().map(|k| k.value.clone()));
            files.extend(tls.trusted_ca.iter().map(|c| c.value.clone()));
        };
        for server in &self.servers {
            if let Some(tls) = &server.tls {
                files.push(tls.certificate.value.clone());
                files.push(tls.key.value.clone());
                files.extend(tls.key_password_file.iter().map(|k| k.value.clone()));
                for list in [
                    &tls.client_ca,
                    &tls.trusted_ca,
                    &tls.crl,
                    &tls.session_ticket_key,
                ] {
                    files.extend(list.iter().map(|p| p.value.clone()));
                }
            }
        }
        for tls in self.proxy_tls() {
            proxy(tls, &mut files);
        }
        files.sort();
        files.dedup();
        files
    }

    /// Read and parse the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, None, "", format!("cannot read: {e}")))?;
        Config::parse(&text, path)
    }

    /// Parse `text`, the contents of the config file at `path` (used in errors and to
    /// resolve relative paths; not read).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        build::config(text, path)
    }
}

impl ServerName {
    /// Whether `host` (without a port) is this name; ASCII case is ignored, as is one
    /// trailing dot. A wildcard needs at least one label before its suffix, like nginx:
    /// `*.example.com` matches `a.example.com` and `a.b.example.com`, not `example.com`.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        match self {
            ServerName::Exact(name) => host.eq_ignore_ascii_case(name),
            ServerName::Wildcard(suffix) => {
                host.len() > suffix.len()
                    && host.is_char_boundary(host.len() - suffix.len())
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerName::Exact(name) => f.write_str(name),
            ServerName::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

impl PathMatch {
    /// Whether the request path (without the query) falls under this location.
    /// Case-sensitive, like nginx on Unix.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Prefix(prefix) => path.starts_with(prefix.as_str()),
            PathMatch::Exact(exact) => path == exact,
        }
    }
}

impl fmt::Display for PathMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathMatch::Prefix(prefix) => f.write_str(prefix),
            PathMatch::Exact(exact) => write!(f, "= {exact}"),
        }
    }
}

impl AllowRule {
    /// Whether a certificate field's value passes this rule. Globs (`*` any run, `?` one
    /// character) ignore case; a fingerprint is compared as hex, ignoring case and `:`.
    pub fn matches(&self, value: &str) -> bool {
        match self.field {
            AllowField::Fingerprint => {
                syntax::normalize_fingerprint(&self.pattern) == syntax::normalize_fingerprint(value)
            }
            _ => {
                let pattern: Vec<char> = self.pattern.to_lowercase().chars().collect();
                let value: Vec<char> = value.to_lowercase().chars().collect();
                syntax::glob(&pattern, &value)
            }
        }
    }
}

impl AllowField {
    /// The key under `allow`.
    pub fn key(self) -> &'static str {
        match self {
            AllowField::Cn => "cn",
            AllowField::Ou => "ou",
            AllowField::SanDns => "san_dns",
            AllowField::SanUri => "san_uri",
            AllowField::SanEmail => "san_email",
            AllowField::Fingerprint => "fingerprint",
        }
    }
}

impl VerifyClient {
    /// The config word: `"on"`, `"optional"`, `"optional_no_ca"` or `"off"`.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyClient::On => "on",
            VerifyClient::Optional => "optional",
            VerifyClient::OptionalNoCa => "optional_no_ca",
            VerifyClient::Off => "off",
        }
    }
}

impl fmt::Display for VerifyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

impl ConfigError {
    /// A problem with `key` in `file`, at `at` when known.
    pub fn new(
        file: impl Into<PathBuf>,
        at: Option<Position>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: file.into(),
            at,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(at) = self.at {
            write!(f, ":{at}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![error])
    }
}

fn lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/etc/mtls/mtls.toml";

    fn parse(text: &str) -> Config {
        match Config::parse(text, Path::new(FILE)) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    /// Every error, as printed.
    fn errors(text: &str) -> Vec<String> {
        match Config::parse(text, Path::new("t.toml")) {
            Ok(config) => panic!("parsed: {config:#?}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    fn one_error(text: &str) -> String {
        let errors = errors(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors[0].clone()
    }

    const TLS: &str =
        "[[server]]\nlisten = \"8443\"\n[server.tls]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\n";

    fn sourced<T>(value: T, line: usize, col: usize) -> Sourced<T> {
        Sourced {
            value,
            at: Position { line, col },
        }
    }

    #[test]
    fn design_example_parses() {
        let config = parse(
            r#"
access_log = "log/access.log"
workers = 4

[[server]]
listen = ["0.0.0.0:8000", "[::]:8000"]
server_name = ["api.example.com", "*.example.com"]

[server.tls]
certificate = "pki/server.crt"      # chain, leaf first
key = "pki/server.key"
client_ca = "pki/ca.crt"
verify_client = "on"                # on | optional | optional_no_ca | off
crl = ["pki/ca.crl"]
verify_depth = 2
protocols = ["TLSv1.2", "TLSv1.3"]
ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
prefer_server_ciphers = true
session_cache = "1m"                # nginx sizing: about 4000 sessions per megabyte
session_timeout = "5m"

[[server.location]]
path = "/"
root = "/var/www/html"
index = ["index.html", "index.htm"]
client_auth = "required"
[server.location.allow]
cn = ["alice", "svc-*"]
ou = "Payments"

[[server.location]]
path = "= /old"
return = "301 https://$host/new"
"#,
        );
        assert_eq!(config.source, Path::new(FILE));
        assert_eq!(
            config.access_log,
            AccessLog::File("/etc/mtls/log/access.log".into())
        );
        assert_eq!(config.workers, Some(4));
        let [server] = config.servers.as_slice() else {
            panic!("{:?}", config.servers)
        };
        assert_eq!(server.at, Position { line: 5, col: 1 });
        assert_eq!(
            server.listen,
            [
                Listen {
                    addr: "0.0.0.0:8000".parse().unwrap(),
                    default_server: false
                },
                Listen {
                    addr: "[::]:8000".parse().unwrap(),
                    default_server: false
                },
            ]
        );
        assert_eq!(
            server.server_names,
            [
                ServerName::Exact("api.example.com".into()),
                ServerName::Wildcard(".example.com".into())
            ]
        );
        let tls = server.tls.as_ref().unwrap();
        let expected = TlsSettings {
            at: Position { line: 9, col: 1 },
            certificate: sourced("/etc/mtls/pki/server.crt".into(), 10, 15),
            key: sourced("/etc/mtls/pki/server.key".into(), 11, 7),
            key_password_file: None,
            client_ca: vec![sourced("/etc/mtls/pki/ca.crt".into(), 12, 13)],
            trusted_ca: vec![],
            verify_client: VerifyClient::On,
            crl: vec![sourced("/etc/mtls/pki/ca.crl".into(), 14, 8)],
            verify_depth: 2,
            protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
            ciphers: Some(sourced(
                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384".into(),
                17,
                11,
            )),
            prefer_server_ciphers: true,
            session_cache: SessionCache::Sessions(4000),
            session_timeout: Duration::from_secs(300),
            session_tickets: true,
            session_ticket_key: Vec::new(),
            keylog: None,
        };
        assert_eq!(*tls, expected);
        assert_eq!(
            server.locations,
            [
                Location {
                    at: Position { line: 22, col: 1 },
                    path: PathMatch::Prefix("/".into()),
                    action: Action::Static {
                        root: "/var/www/html".into(),
                        index: vec!["index.html".into(), "index.htm".into()]
                    },
                    client_auth: ClientAuth::Required,
                    allow: vec![
                        AllowRule {
                            field: AllowField::Cn,
                            pattern: "alice".into()
                        },
                        AllowRule {
                            field: AllowField::Cn,
                            pattern: "svc-*".into()
                        },
                        AllowRule {
                            field: AllowField::Ou,
                            pattern: "Payments".into()
                        },
                    ],
                    client_max_body_size: None,
                },
                Location {
                    at: Position { line: 31, col: 1 },
                    path: PathMatch::Exact("/old".into()),
                    action: Action::Return {
                        status: 301,
                        target: Some("https://$host/new".into())
                    },
                    client_auth: ClientAuth::Inherit,
                    allow: vec![],
                    client_max_body_size: None,
                },
            ]
        );
    }

    #[test]
    fn defaults() {
        let config = parse(&format!(
            "{TLS}[[server.location]]\npath = \"/\"\nroot = \"www\"\n\
             [[server]]\nlisten = 8000\n[[server.location]]\npath = \"/\"\nreturn = 404\n"
        ));
        assert_eq!(config.access_log, AccessLog::Stdout);
        assert_eq!(config.workers, None);
        let tls = config.servers[0].tls.as_ref().unwrap();
        assert_eq!(tls.verify_client, VerifyClient::Off);
        assert_eq!(tls.verify_depth, 1);
        assert_eq!(tls.protocols, ["TLSv1.2", "TLSv1.3"]);
        assert_eq!(tls.ciphers, None);
        assert!(tls.prefer_server_ciphers);
        assert_eq!(tls.session_cache, SessionCache::Sessions(20_000));
        assert_eq!(tls.session_timeout, Duration::from_secs(300));
        assert!(tls.session_tickets);
        assert!(config.servers[0].server_names.is_empty());
        assert_eq!(
            config.servers[0].locations[0].action,
            Action::Static {
                root: "/etc/mtls/www".into(),
                index: vec!["index.html".into()]
            }
        );
        assert_eq!(config.servers[1].tls, None);
        assert_eq!(
            config.servers[1].listen[0].addr,
            "0.0.0.0:8000".parse().unwrap()
        );
        assert_eq!(
            config.servers[1].locations[0].action,
            Action::Return {
                status: 404,
                target: None
            }
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let text =
            format!("access_log = \"a.log\"\n{TLS}client_ca = [\"/abs/ca.pem\", \"../ca.pem\"]\n");
        for (file, dir) in [
            ("conf/mtls.toml", "conf/"),
            ("mtls.toml", ""),
            ("/srv/x/mtls.toml", "/srv/x/"),
        ] {
            let config = Config::parse(&text, Path::new(file)).unwrap();
            let tls = config.servers[0].tls.as_ref().unwrap();
            assert_eq!(tls.certificate.value, PathBuf::from(format!("{dir}c.pem")));
            assert_eq!(tls.client_ca[0].value, Path::new("/abs/ca.pem"));
            assert_eq!(
                tls.client_ca[1].value,
                PathBuf::from(format!("{dir}../ca.pem"))
            );
            assert_eq!(
                config.access_log,
                AccessLog::File(format!("{dir}a.log").into())
            );
        }
    }

    #[test]
    fn load_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mtls.toml");
        std::fs::write(
            &path,
            "access_log = \"off\"\n[[server]]\nlisten = \"8000\"\n",
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.access_log, AccessLog::Off);
        assert_eq!(config.source, path);

        let missing = dir.path().join("missing.toml");
        let err = Config::load(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: cannot read: ", missing.display())),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_errors_at_the_key() {
        assert_eq!(
            one_error(
                "[[server]]\nlisten = \"8000\"\n[[server.location]]\npath = \"/\"\nproxy_passs = \"https://x\"\n"
            ),
            "t.toml:5:1: proxy_passs: unknown key, expected one of `path`, `root`, `index`, \
             `return`, `client_auth`, `allow`, `client_max_body_size`, `proxy_pass`, `proxy_tls`, `connect_timeout`, \
             `read_timeout`, `send_timeout`, `max_header_size`, `identity_headers`, `xfcc`, \
             `header_names`, `forward_raw_path`"
        );
        assert_eq!(
            one_error("wrokers = 2\n"),
            "t.toml:1:1: wrokers: unknown key, expected one of `server`, `access_log`, `workers`, `metrics`, `upstream`, `max_connections`, `worker_rlimit_nofile`, `ssl_handshake_timeout`, `client_header_timeout`, `client_body_timeout`, `send_timeout`, `keepalive_timeout`, `pid`"
        );
        assert!(
            one_error(&format!("{TLS}  verify = true\n"))
                .starts_with("t.toml:6:3: verify: unknown key")
        );
        let inline = "[[server]]\nlisten = \"8000\"\n[[server.location]]\npath = \"/\"\n\
                      root = \"/w\"\nallow = { cn = \"a\", o = \"b\" }\n";
        assert_eq!(
            one_error(inline),
            "t.toml:6:21: o: unknown key, expected one of `cn`, `ou`, `san_dns`, `san_uri`, \
             `san_email`, `fingerprint`"
        );
    }

    #[test]
    fn toml_syntax_errors_have_a_position_and_key() {
        assert_eq!(
            one_error("[[server]]\nlisten = \n"),
            "t.toml:2:10: listen: invalid string; expected `\"`, `'`"
        );
        assert!(
            one_error("[[server]]\nlisten = \"8000\"\ntls = 5\n")
                .starts_with("t.toml:3:7: tls: invalid type")
        );
    }

    #[test]
    fn server_and_listen_errors() {
        assert_eq!(
            one_error("workers = 2\n"),
            "t.toml: server: no [[server]] table; at least one is required"
        );
        assert_eq!(
            one_error("[[server]]\nserver_name = \"a\"\n"),
            "t.toml:1:1: listen: required: at least one address such as \"0.0.0.0:8443\""
        );
        assert_eq!(
            one_error("[[server]]\nlisten = [\"8000\", \"localhost:80\"]\n"),
            "t.toml:2:19: listen: \"localhost:80\" is not an address; expected IP:PORT, \
             [IPv6]:PORT or PORT (host names are not resolved)"
        );
        assert_eq!(
            one_error("[[server]]\nlisten = \"8443 ssl\"\n"),
            "t.toml:2:10: listen: \"8443 ssl\": `ssl` is not a listen parameter here: a server \
             with [server.tls] is TLS"
        );
        assert_eq!(
            one_error("[[server]]\nlisten = [\"8000\", 70000]\n"),
            "t.toml:2:19: listen: port 70000 is out of range 0..=65535"
        );
        assert_eq!(
            one_error("[[server]]\nlisten = \"8000\"\nserver_name = [\"a\", \"\"]\n"),
            "t.toml:3:21: server_name: \"\": empty name; leave server_name out for a catch-all \
             server"
        );
        assert_eq!(
            one_error("workers = 0\n[[server]]\nlisten = \"8000\"\n"),
            "t.toml:1:11: workers: 0: must be at least 1 (or \"auto\")"
        );
        let listens = parse(
            "[[server]]\nlisten = [\"127.0.0.1:8443 default_server\", \"*:80\", \"[::1]:1\"]\n",
        );
        assert_eq!(
            listens.servers[0].listen,
            [
                Listen {
                    addr: "127.0.0.1:8443".parse().unwrap(),
                    default_server: true
                },
                Listen {
                    addr: "0.0.0.0:80".parse().unwrap(),
                    default_server: false
                },
                Listen {
                    addr: "[::1]:1".parse().unwrap(),
                    default_server: false
                },
            ]
        );
    }

    #[test]
    fn listen_conflicts_across_servers() {
        let two_defaults = "[[server]]\nlisten = \"127.0.0.1:8443 default_server\"\n\n\
                            [[server]]\nlisten = [\"8000\", \"127.0.0.1:8443 default_server\"]\n";
        assert_eq!(
            one_error(two_defaults),
            "t.toml:5:19: listen: 127.0.0.1:8443 default_server: the server at line 1 is \
             already the default for this address"
        );
        let mixed = format!("{TLS}[[server]]\nlisten = \"0.0.0.0:8443\"\n");
        assert_eq!(
            one_error(&mixed),
            "t.toml:7:10: listen: 0.0.0.0:8443 is TLS in the server at line 1; an address is \
             either TLS or plain HTTP"
        );
        // Name-based virtual hosts share an address.
        let shared = format!("{TLS}{TLS}");
        assert_eq!(parse(&shared).servers.len(), 2);
    }

    #[test]
    fn location_errors() {
        let head = "[[server]]\nlisten = \"8000\"\n[[server.location]]\n";
        assert_eq!(
            one_error(&format!(
                "{head}path = \"/\"\nroot = \"/w\"\nreturn = 404\n"
            )),
            "t.toml:6:10: return: a location has one action: root, return or proxy_pass"
        );
        assert_eq!(
            one_error(&format!("{head}path = \"/\"\n")),
            "t.toml:3:1: location: no action: set root, return or proxy_pass"
        );
        assert_eq!(
            one_error(&format!(
                "{head}path = \"/\"\nreturn = 404\nindex = \"i.html\"\n"
            )),
            "t.toml:6:9: index: names files under root, and this location has no root"
        );
        assert_eq!(
            one_error(&format!("{head}path = \"/\"\nreturn = \"301\"\n")),
            "t.toml:5:10: return: 301 is a redirect and needs a URL, e.g. \
             \"301 https://$host$request_uri\""
        );
        assert_eq!(
            one_error(&format!("{head}path = \"/\"\nreturn = 600\n")),
            "t.toml:5:10: return: status 600 is not in 100..=599"
        );
        assert_eq!(
            one_error(&format!("{head}path = \"img\"\nroot = \"/w\"\n")),
            "t.toml:4:8: path: \"img\" does not start with /; expected \"/prefix/\" or \
             \"= /exact\""
        );
        assert_eq!(
            one_error(&format!("{head}root = \"/w\"\n")),
            "t.toml:3:1: path: required: \"/prefix/\" or \"= /exact\""
        );
        let duplicate = format!(
            "{head}path = \"/a\"\nroot = \"/w\"\n\n[[server.location]]\npath = \"= /a\"\nreturn = 404\n\n\
             [[server.location]]\npath = \"/a\"\nreturn = 404\n"
        );
        assert_eq!(
            one_error(&duplicate),
            "t.toml:12:8: path: \"/a\" is already the path of the location at line 3"
        );
        let returns = parse(&format!(
            "{head}path = \"/a\"\nreturn = \"200 some text\"\n\
             [[server.location]]\npath = \"/b\"\nreturn = \"https://example.com/\"\n"
        ));
        let actions: Vec<&Action> = returns.servers[0]
            .locations
            .iter()
            .map(|l| &l.action)
            .collect();
        assert_eq!(
            actions,
            [
                &Action::Return {
                    status: 200,
                    target: Some("some text".into())
                },
                &Action::Return {
                    status: 302,
                    target: Some("https://example.com/".into())
                }
            ]
        );
    }

    #[test]
    fn client_auth_and_allow_need_verified_client_certificates() {
        let location = "[[server.location]]\npath = \"/\"\nroot = \"/w\"\n";
        assert_eq!(
            one_error(&format!("{TLS}{location}client_auth = \"required\"\n")),
            "t.toml:9:15: client_auth: requires verify_client = \"on\" or \"optional\" in \
             [server.tls], not \"off\""
        );
        assert_eq!(
            one_error(&format!(
                "{TLS}verify_client = \"optional_no_ca\"\nclient_ca = \"ca.pem\"\n{location}\
                 allow = {{ cn = \"a*\" }}\n"
            )),
            "t.toml:11:9: allow: requires verify_client = \"on\" or \"optional\" in \
             [server.tls], not \"optional_no_ca\""
        );
        assert_eq!(
            one_error(&format!(
                "[[server]]\nlisten = 80\n{location}client_auth = \"required\"\n"
            )),
            "t.toml:6:15: client_auth: requires [server.tls] with verify_client = \"on\" or \
             \"optional\"; this server is plain HTTP"
        );
        let ok = parse(&format!(
            "{TLS}verify_client = \"optional\"\ntrusted_ca = \"ca.pem\"\n{location}\
             client_auth = \"required\"\n[server.location.allow]\nsan_uri = \"spiffe://example.org/*\"\n\
             fingerprint = \"{}\"\n",
            "AB:".repeat(31) + "AB"
        ));
        assert_eq!(ok.servers[0].locations[0].allow.len(), 2);
        assert_eq!(
            one_error(&format!("{TLS}verify_client = \"on\"\n")),
            "t.toml:6:17: verify_client: \"on\" needs client_ca or trusted_ca: the CA \
             certificates that client certificates are verified against"
        );
        assert_eq!(
            errors(&format!(
                "{TLS}verify_client = \"on\"\nclient_ca = \"ca.pem\"\n{location}\
                 allow = {{ fingerprint = \"ab:cd\", cn = [] }}\n"
            )),
            [
                "t.toml:11:25: allow.fingerprint: \"ab:cd\": expected a SHA-256 fingerprint: 64 \
                 hex digits, `:` allowed",
                "t.toml:11:39: allow.cn: empty list; a client cannot match it"
            ]
        );
    }

    #[test]
    fn tls_errors() {
        assert_eq!(
            one_error("[[server]]\nlisten = 1\n[server.tls]\nkey = \"k.pem\"\n"),
            "t.toml:3:1: certificate: required in [server.tls]: the certificate chain (PEM file)"
        );
        // seed 001's ssl_ciphers line: ECDH is not a keyword OpenSSL still has.
        let seed = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE:ECDH:AES:HIGH:!NULL:!aNULL:!MD5:!ADH:!RC4";
        assert_eq!(
            one_error(&format!("{TLS}ciphers = \"{seed}\"\n")),
            "t.toml:6:11: ciphers: unknown cipher name(s): ECDH"
        );
        let cbc = one_error(&format!(
            "{TLS}ciphers = \"ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA\"\n"
        ));
        assert!(
            cbc.starts_with(
                "t.toml:6:11: ciphers: cipher(s) rustls cannot honour: AES128-SHA (CBC mode"
            ),
            "{cbc}"
        );
        assert_eq!(
            one_error(&format!("{TLS}protocols = [\"TLSv1.2\", \"TLSv1.1\"]\n")),
            "t.toml:6:25: protocols: protocol TLSv1.1: not implemented by rustls: it is broken \
             or deprecated (RFC 7568, RFC 8996); use TLSv1.2 and TLSv1.3"
        );
        assert_eq!(
            one_error(&format!("{TLS}session_timeout = \"0s\"\n")),
            "t.toml:6:19: session_timeout: must be more than 0"
        );
        assert_eq!(
            one_error(&format!("{TLS}verify_depth = 101\n")),
            "t.toml:6:16: verify_depth: 101 is not in 0..=100"
        );
        assert_eq!(
            one_error(&format!("{TLS}verify_client = \"yes\"\n")),
            "t.toml:6:17: verify_client: \"yes\": expected one of \"on\", \"optional\", \
             \"optional_no_ca\", \"off\""
        );
        assert_eq!(
            one_error(&format!("{TLS}session_tickets = \"on\"\n")),
            "t.toml:6:19: session_tickets: expected true or false, found a string"
        );
        let parsed = parse(&format!(
            "{TLS}protocols = \"TLSv1.3\"\nsession_cache = \"shared:SSL:10m\"\nsession_timeout = 90\n"
        ));
        let tls = parsed.servers[0].tls.as_ref().unwrap();
        assert_eq!(tls.protocols, ["TLSv1.3"]);
        assert_eq!(tls.session_cache, SessionCache::Sessions(40_000));
        assert_eq!(tls.session_timeout, Duration::from_secs(90));
    }

    #[test]
    fn key_password_file_is_a_path_beside_the_config() {
        let parsed = parse(&format!("{TLS}key_password_file = \"pass.txt\"\n"));
        let tls = parsed.servers[0].tls.as_ref().unwrap();
        assert_eq!(
            tls.key_password_file,
            Some(sourced("/etc/mtls/pass.txt".into(), 6, 21))
        );
        assert_eq!(
            parse(TLS).servers[0]
                .tls
                .as_ref()
                .unwrap()
                .key_password_file,
            None
        );
        assert_eq!(
            one_error(&format!("{TLS}key_password_file = [\"a\"]\n")),
            "t.toml:6:21: key_password_file: expected a string, found a list"
        );
        assert_eq!(
            one_error(&format!("{TLS}key_password_file = \"\"\n")),
            "t.toml:6:21: key_password_file: empty path"
        );
    }

    #[test]
    fn keylog_is_a_path_beside_the_config() {
        let parsed = parse(&format!("{TLS}keylog = \"keys.log\"\n"));
        let tls = parsed.servers[0].tls.as_ref().unwrap();
        assert_eq!(
            tls.keylog,
            Some(sourced("/etc/mtls/keys.log".into(), 6, 10))
        );
        assert_eq!(parse(TLS).servers[0].tls.as_ref().unwrap().keylog, None);
        assert_eq!(
            one_error(&format!("{TLS}keylog = true\n")),
            "t.toml:6:10: keylog: expected a string, found a boolean"
        );
        assert_eq!(
            one_error(&format!("{TLS}keylog = \"\"\n")),
            "t.toml:6:10: keylog: empty path"
        );
        // Written to, not read: a reload must not follow its every line.
        assert!(!parsed.tls_files().contains(&"/etc/mtls/keys.log".into()));
    }

    #[test]
    fn all_errors_of_a_file_are_reported_in_order() {
        let text = "\
access_log = 3
[[server]]
listen = [\"8000\", \"nope\"]
server_name = \"\"
[server.tls]
certificate = \"c.pem\"
verify_client = \"on\"
session_timeout = \"0\"
[[server.location]]
path = \"/\"
client_auth = \"required\"
[[server]]
";
        let printed = Config::parse(text, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            printed,
            "\
t.toml:1:14: access_log: expected a string, found an integer
t.toml:3:19: listen: \"nope\" is not an address; expected IP:PORT, [IPv6]:PORT or PORT (host names are not resolved)
t.toml:4:15: server_name: \"\": empty name; leave server_name out for a catch-all server
t.toml:5:1: key: required in [server.tls]: the private key (PEM file)
t.toml:7:17: verify_client: \"on\" needs client_ca or trusted_ca: the CA certificates that client certificates are verified against
t.toml:8:19: session_timeout: must be more than 0
t.toml:9:1: location: no action: set root, return or proxy_pass
t.toml:12:1: listen: required: at least one address such as \"0.0.0.0:8443\""
        );
    }

    #[test]
    fn server_names_match_like_nginx() {
        let exact = ServerName::Exact("api.example.com".into());
        assert!(exact.matches("api.example.com"));
        assert!(exact.matches("API.Example.COM"));
        assert!(exact.matches("api.example.com."));
        assert!(!exact.matches("x.api.example.com"));
        let wildcard = ServerName::Wildcard(".example.com".into());
        assert!(wildcard.matches("a.example.com"));
        assert!(wildcard.matches("a.b.EXAMPLE.com"));
        assert!(!wildcard.matches("example.com"));
        assert!(!wildcard.matches("badexample.com"));
        assert!(!wildcard.matches(".example.com"));
        assert!(!wildcard.matches("é.com"));

        assert_eq!(
            syntax::server_name("*.Example.com"),
            Ok(vec![wildcard.clone()])
        );
        assert_eq!(
            syntax::server_name(".example.com"),
            Ok(vec![ServerName::Exact("example.com".into()), wildcard])
        );
        for bad in [
            "",
            "*",
            "*.",
            "a.*.com",
            "www.example.*",
            "~^a",
            "a b",
            "a:80",
            "a..b",
        ] {
            assert!(syntax::server_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_matching() {
        let prefix = syntax::path_match("/img/").unwrap();
        assert_eq!(prefix, PathMatch::Prefix("/img/".into()));
        assert!(prefix.matches("/img/a.png"));
        assert!(prefix.matches("/img/"));
        assert!(!prefix.matches("/img"));
        assert!(!prefix.matches("/IMG/a.png"));
        let exact = syntax::path_match("= /x").unwrap();
        assert_eq!(exact, PathMatch::Exact("/x".into()));
        assert_eq!(syntax::path_match("=/x"), Ok(exact.clone()));
        assert!(exact.matches("/x"));
        assert!(!exact.matches("/x/"));
        assert_eq!(
            syntax::path_match("^~ /s/"),
            Ok(PathMatch::Prefix("/s/".into()))
        );
        for bad in ["~ \\.php$", "@named", "", "= x"] {
            assert!(syntax::path_match(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allow_rule_globs() {
        let rule = |field, pattern: &str| AllowRule {
            field,
            pattern: pattern.into(),
        };
        let svc = rule(AllowField::Cn, "svc-*");
        assert!(svc.matches("svc-payments"));
        assert!(svc.matches("SVC-"));
        assert!(!svc.matches("xsvc-a"));
        let q = rule(AllowField::Ou, "team-?");
        assert!(q.matches("Team-A"));
        assert!(!q.matches("team-ab"));
        assert!(!q.matches("team-"));
        let dns = rule(AllowField::SanDns, "*.internal.example.com");
        assert!(dns.matches("a.b.internal.example.com"));
        assert!(!dns.matches("internal.example.com"));
        let many = rule(AllowField::SanUri, "spiffe://*/ns/*/sa/*");
        assert!(many.matches("spiffe://example.org/ns/prod/sa/api"));
        assert!(!many.matches("spiffe://example.org/ns/prod/api"));
        assert!(rule(AllowField::Cn, "*").matches(""));
        assert!(rule(AllowField::Cn, "a**b").matches("axxb"));
        assert!(!rule(AllowField::Cn, "alice").matches("alice2"));
        let fingerprint = rule(AllowField::Fingerprint, "AB:cd:01");
        assert!(fingerprint.matches("abcd01"));
        assert!(fingerprint.matches("AB:CD:01"));
        assert!(!fingerprint.matches("ab:cd:02"));
        // No globbing on fingerprints.
        assert!(!rule(AllowField::Fingerprint, "ab*").matches("abcd"));
    }

    #[test]
    fn durations_like_nginx() {
        let secs = Duration::from_secs;
        for (text, expected) in [
            ("300", secs(300)),
            ("300s", secs(300)),
            ("5m", secs(300)),
            ("1h", secs(3600)),
            ("1h 30m", secs(5400)),
            ("1d", secs(86_400)),
            ("2w", secs(14 * 86_400)),
            ("1M", secs(30 * 86_400)),
            ("1y", secs(365 * 86_400)),
            ("500ms", Duration::from_millis(500)),
            ("0", secs(0)),
        ] {
            assert_eq!(syntax::duration(text), Ok(expected), "{text}");
        }
        for bad in [
            "",
            "m",
            "5x",
            "-5",
            "1.5h",
            "99999999999999999999",
            "999999999999999y",
        ] {
            assert!(syntax::duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_session_caches_like_nginx() {
        assert_eq!(syntax::size("1024"), Ok(1024));
        assert_eq!(syntax::size("512k"), Ok(512 * 1024));
        assert_eq!(syntax::size("10M"), Ok(10 << 20));
        assert_eq!(syntax::size("1g"), Ok(1 << 30));
        for bad in ["", "k", "1t", "1.5m", "-1", "99999999999999999999g"] {
            assert!(syntax::size(bad).is_err(), "{bad}");
        }
        let cache = syntax::session_cache;
        assert_eq!(cache("off"), Ok(SessionCache::Off));
        assert_eq!(cache("none"), Ok(SessionCache::Off));
        assert_eq!(cache("1m"), Ok(SessionCache::Sessions(4000)));
        assert_eq!(cache("512k"), Ok(SessionCache::Sessions(2000)));
        assert_eq!(cache("5m"), Ok(SessionCache::Sessions(20_000)));
        assert_eq!(cache("shared:SSL:10m"), Ok(SessionCache::Sessions(40_000)));
        for bad in ["0", "100", "shared:10m", "builtin", "on"] {
            assert!(cache(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_display_without_position_or_key() {
        let e = ConfigError::new("a.toml", None, "", "cannot read: gone");
        assert_eq!(e.to_string(), "a.toml: cannot read: gone");
        let e = ConfigError::new(
            "a.toml",
            Some(Position { line: 3, col: 15 }),
            "certificate",
            "cannot read file: No such file",
        );
        assert_eq!(
            e.to_string(),
            "a.toml:3:15: certificate: cannot read file: No such file"
        );
        let both = ConfigErrors(vec![e.clone(), e]);
        assert_eq!(both.to_string().lines().count(), 2);
    }
}

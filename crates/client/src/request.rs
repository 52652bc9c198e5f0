//! `mtls get`'s flags, parsed into a [`GetRequest`] before anything connects.
//!
//! The CLI fills [`GetFlags`] with the strings it was given (curl's spelling: `-H "Name:
//! value"`, `--resolve HOST:PORT:ADDR`, `-d @file`); [`GetRequest::try_from`] checks them
//! all and reads the files they name, so a mistake is reported before a socket opens, with
//! the flag it is about. A [`RequestError`] says whether it was bad usage (exit 2) or a file
//! that could not be used (exit 1).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Uri};

use mtls_pki::Password;
use mtls_tls::probe::{ClientIdentity, ProbeSettings};

/// The flags of `mtls get` as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct GetFlags {
    /// The URL (`https://host[:port]/path?query`, or `http://`).
    pub url: String,
    /// `--ca FILE` (repeatable): CAs the server's certificate must chain to.
    pub ca: Vec<PathBuf>,
    /// `--cert FILE`: our certificate chain (PEM, leaf first).
    pub cert: Option<PathBuf>,
    /// `--key FILE`: its private key, plain or encrypted.
    pub key: Option<PathBuf>,
    /// `--key-password-file FILE`: passwords for an encrypted `--key`, one per line, tried
    /// in order.
    pub key_password_file: Option<PathBuf>,
    /// `--key-password-env VAR`: the environment variable holding the `--key` password.
    pub key_password_env: Option<String>,
    /// `--p12 FILE`: our certificate and key in a PKCS#12 file.
    pub p12: Option<PathBuf>,
    /// `--password-env VAR`: the environment variable holding the `--p12` password.
    pub password_env: Option<String>,
    /// `-X METHOD`.
    pub request: Option<String>,
    /// `-H "Name: value"` (repeatable; `"Name:"` removes a default header, `"Name;"` sends
    /// it empty).
    pub headers: Vec<String>,
    /// `-d DATA` or `-d @FILE` (`@-`: standard input).
    pub data: Option<String>,
    /// `-o FILE`.
    pub output: Option<PathBuf>,
    /// `-L`: follow redirects.
    pub location: bool,
    /// `--http1.1`.
    pub http1_1: bool,
    /// `--http2`.
    pub http2: bool,
    /// `--resolve HOST:PORT:ADDR` (repeatable).
    pub resolve: Vec<String>,
    /// `--connect-timeout`: seconds (`2.5`) or with a unit (`500ms`, `2s`, `1m`).
    pub connect_timeout: Option<String>,
    /// `--max-time`: the same syntax.
    pub max_time: Option<String>,
    /// `--insecure`.
    pub insecure: bool,
    /// `--keylog FILE` (or `SSLKEYLOGFILE`).
    pub keylog: Option<PathBuf>,
    /// `--trace`: keep every byte of the connection for the dissector.
    pub trace: bool,
}

/// A checked request, ready to run with [`get()`](crate::get()).
#[derive(Debug, Clone)]
pub struct GetRequest {
    /// Where to go first.
    pub target: Target,
    /// The method.
    pub method: Method,
    /// Headers to set (replacing a default of the same name) or, with `None`, to remove.
    pub headers: Vec<(HeaderName, Option<HeaderValue>)>,
    /// The request body.
    pub body: Option<Bytes>,
    /// Where the body of the response goes (`None`: standard output). Used by the CLI.
    pub output: Option<PathBuf>,
    /// Follow redirects (at most [`MAX_REDIRECTS`]).
    pub follow_redirects: bool,
    /// Which HTTP version to offer.
    pub http: HttpChoice,
    /// Fixed addresses for host and port pairs, instead of DNS.
    pub resolve: Vec<Resolve>,
    /// Limit on DNS + TCP + TLS for each connection.
    pub connect_timeout: Option<Duration>,
    /// Limit on the whole command.
    pub max_time: Option<Duration>,
    /// The TLS side: CAs, our identity, `--insecure`, ALPN, key log.
    pub tls: ProbeSettings,
    /// Keep the connection's bytes for a trace.
    pub trace: bool,
}

/// Redirects followed with `-L`, as curl's default `--max-redirs` is for browsers' sake;
/// ten is plenty for an API.
pub const MAX_REDIRECTS: usize = 10;

/// Which HTTP version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpChoice {
    /// Offer `h2` and `http/1.1` with ALPN; the server chooses.
    Auto,
    /// `--http1.1`: offer only `http/1.1`.
    Http1,
    /// `--http2`: offer only `h2`, and fail if the server does not agree (prior knowledge
    /// over `http://`).
    Http2,
}

/// `https` or `http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// HTTP over TLS.
    Https,
    /// Plain HTTP (only useful before a redirect to https).
    Http,
}

/// A URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name or IP address, without brackets.
    pub host: String,
    /// Port (the scheme's default when the URL has none).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
}

/// One `--resolve HOST:PORT:ADDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    /// The host name, lower case.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The address to connect to instead of asking DNS.
    pub address: IpAddr,
}

/// Why the flags do not make a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A flag's value, or a combination of flags, is wrong (exit 2).
    #[error("{flag}: {message}")]
    Usage {
        /// The flag (`--resolve`, `-H`, ...).
        flag: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A file named by a flag cannot be read or used (exit 1).
    #[error("{flag} {}: {message}", path.display())]
    File {
        /// The flag.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl RequestError {
    /// Whether this is bad usage (exit 2) rather than a failure (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, RequestError::Usage { .. })
    }
}

impl TryFrom<GetFlags> for GetRequest {
    type Error = RequestError;

    fn try_from(flags: GetFlags) -> Result<GetRequest, RequestError> {
        let target = Target::parse(&flags.url).map_err(|message| usage("URL", message))?;
        let http = match (flags.http1_1, flags.http2) {
            (true, true) => {
                return Err(usage(
                    "--http2",
                    "--http1.1 and --http2 cannot both be given".into(),
                ));
            }
            (true, false) => HttpChoice::Http1,
            (false, true) => HttpChoice::Http2,
            (false, false) => HttpChoice::Auto,
        };
        let body = flags.data.as_deref().map(read_data).transpose()?;
        let method = match &flags.request {
            Some(name) => Method::from_bytes(name.as_bytes())
                .map_err(|_| usage("-X", format!("{name:?} is not an HTTP method name")))?,
            None if body.is_some() => Method::POST,
            None => Method::GET,
        };
        let headers = flags
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let resolve = flags
            .resolve
            .iter()
            .map(|r| Resolve::parse(r).map_err(|message| usage("--resolve", message)))
            .collect::<Result<Vec<_>, _>>()?;
        let connect_timeout = flags
            .connect_timeout
            .as_deref()
            .map(|t| parse_duration(t).map_err(|m| usage("--connect-timeout", m)))
            .transpose()?;
        let max_time = flags
            .max_time
            .as_deref()
            .map(|t| parse_duration(t).map_err(|m| usage("--max-time", m)))
            .transpose()?;
        if flags.ca.is_empty() && !flags.insecure && target.scheme == Scheme::Https {
            return Err(usage(
                "--ca",
                "pass --ca FILE, the CA that issued the server's certificate (there is no \
                 system root store), or --insecure to skip verification"
                    .into(),
            ));
        }
        let identity = identity(&flags)?;
        let alpn = match http {
            HttpChoice::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            HttpChoice::Http1 => vec![b"http/1.1".to_vec()],
            HttpChoice::Http2 => vec![b"h2".to_vec()],
        };
        Ok(GetRequest {
            target,
            method,
            headers,
            body,
            output: flags.output,
            follow_redirects: flags.location,
            http,
            resolve,
            connect_timeout,
            max_time,
            tls: ProbeSettings {
                ca: flags.ca,
                identity,
                insecure: flags.insecure,
                alpn,
                keylog: flags.keylog,
            },
            trace: flags.trace,
        })
    }
}

impl Target {
    /// Parse an `https://` or `http://` URL.
    pub fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(s) => {
                return Err(format!(
                    "{url:?}: scheme {s} is not supported (https or http)"
                ));
            }
            None => {
                return Err(format!(
                    "{url:?} is not an absolute URL (https://host/path)"
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{url:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "{url:?}: user names in URLs are not supported; send -H \"Authorization: ...\""
            ));
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let port = match (authority.port_u16(), authority.port()) {
            (Some(port), _) => port,
            (None, Some(bad)) => return Err(format!("{url:?}: {bad} is not a port")),
            (None, None) => match scheme {
                Scheme::Https => 443,
                Scheme::Http => 80,
            },
        };
        let path_and_query = uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let path_and_query = if path_and_query.starts_with('/') {
            path_and_query
        } else {
            format!("/{path_and_query}")
        };
        Ok(Target {
            scheme,
            host,
            port,
            path_and_query,
        })
    }

    /// `host[:port]` as it goes in a Host header or URL (the port only when not the
    /// scheme's default; IPv6 addresses in brackets).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = match self.scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The whole URL.
    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
        };
        format!("{scheme}://{}{}", self.authority(), self.path_and_query)
    }

    /// Where a redirect's `Location` points, relative to this URL.
    pub fn join(&self, location: &str) -> Result<Target, String> {
        let location = location.trim();
        if location.contains("://") {
            return Target::parse(location);
        }
        let scheme = match self.scheme {
            Scheme::Https => "https:",
            Scheme::Http => "http:",
        };
        if location.starts_with("//") {
            return Target::parse(&format!("{scheme}{location}"));
        }
        let path = if location.starts_with('/') {
            location.to_owned()
        } else {
            // Relative to the current path's directory (RFC 3986 merge, without dot
            // segment removal: servers send absolute paths in practice).
            let current = self.path_and_query.split(['?', '#']).next().unwrap_or("/");
            let dir = current.rsplit_once('/').map_or("", |(dir, _)| dir);
            format!("{dir}/{location}")
        };
        let path = path.split('#').next().unwrap_or("/").to_owned();
        Target::parse(&format!("{scheme}//{}{path}", self.authority()))
    }
}

impl Resolve {
    /// Parse `HOST:PORT:ADDR` (`ADDR` may be an IPv6 address, with or without brackets).
    pub fn parse(text: &str) -> Result<Resolve, String> {
        let bad = || format!("{text:?}: expected HOST:PORT:ADDR, e.g. api.local:443:127.0.0.1");
        let (host, rest) = match text.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once(']').ok_or_else(bad)?;
                (host, rest.strip_prefix(':').ok_or_else(bad)?)
            }
            None => text.split_once(':').ok_or_else(bad)?,
        };
        let (port, address) = rest.split_once(':').ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("{text:?}: {port:?} is not a port number"))?;
        let bare = address
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(address);
        let address = bare
            .parse::<IpAddr>()
            .map_err(|_| format!("{text:?}: {address:?} is not an IP address"))?;
        Ok(Resolve {
            host: host.to_ascii_lowercase(),
            port,
            address,
        })
    }

    /// The socket address it maps to.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

fn usage(flag: &'static str, message: String) -> RequestError {
    RequestError::Usage { flag, message }
}

/// `-H "Name: value"`, `-H "Name:"` (remove), `-H "Name;"` (empty value), as curl.
fn parse_header(text: &str) -> Result<(HeaderName, Option<HeaderValue>), RequestError> {
    let bad = |why: &str| usage("-H", format!("{text:?}: {why}"));
    let (name, value) = match text.split_once(':') {
        Some((name, value)) => {
            let value = value.trim();
            let value = if value.is_empty() {
                None
            } else {
                Some(
                    HeaderValue::from_str(value)
                        .map_err(|_| bad("the value has characters a header cannot carry"))?,
                )
            };
            (name, value)
        }
        None => match text.trim_end().strip_suffix(';') {
            Some(name) => (name, Some(HeaderValue::from_static(""))),
            None => return Err(bad("expected \"Name: value\"")),
        },
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| bad("the name is not a valid header name"))?;
    Ok((name, value))
}

/// `-d`: the text itself, or a file's contents with `@FILE` (`@-` reads standard input).
fn read_data(data: &str) -> Result<Bytes, RequestError> {
    let Some(file) = data.strip_prefix('@') else {
        return Ok(Bytes::copy_from_slice(data.as_bytes()));
    };
    let read = if file == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
    } else {
        std::fs::read(file)
    };
    read.map(Bytes::from).map_err(|e| RequestError::File {
        flag: "-d",
        path: PathBuf::from(file),
        message: e.to_string(),
    })
}

/// `--cert`/`--key` or `--p12` with `--password-env`.
fn identity(flags: &GetFlags) -> Result<Option<ClientIdentity>, RequestError> {
    match (&flags.cert, &flags.key, &flags.p12) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(usage(
            "--p12",
            "give either --cert and --key, or --p12, not both".into(),
        )),
        (Some(certificate), Some(key), None) => Ok(Some(ClientIdentity::Files {
            certificate: certificate.clone(),
            key: key.clone(),
            key_passwords: key_passwords(flags)?,
        })),
        (Some(_), None, None) => Err(usage(
            "--cert",
            "--cert needs --key, the certificate's private key".into(),
        )),
        (None, Some(_), None) => Err(usage(
            "--key",
            "--key needs --cert, the certificate it belongs to".into(),
        )),
        (None, None, Some(path)) => {
            let password = match &flags.password_env {
                Some(var) => std::env::var(var).map_err(|_| {
                    usage(
                        "--password-env",
                        format!("the environment variable {var} is not set (or not UTF-8)"),
                    )
                })?,
                // A PKCS#12 file without a password is read with an empty one.
                None => String::new(),
            };
            let data = std::fs::read(path).map_err(|e| RequestError::File {
                flag: "--p12",
                path: path.clone(),
                message: e.to_string(),
            })?;
            let what = path.display().to_string();
            let contents = mtls_pki::p12::import(&data, &password, &what).map_err(|e| {
                let hint = if flags.password_env.is_none() {
                    " (pass --password-env VAR naming the variable that holds the password)"
                } else {
                    ""
                };
                RequestError::File {
                    flag: "--p12",
                    path: path.clone(),
                    message: format!("{e}{hint}"),
                }
            })?;
            let key = contents.key_pkcs8.ok_or_else(|| RequestError::File {
                flag: "--p12",
                path: path.clone(),
                message: "it holds no private key (only certificates)".into(),
            })?;
            Ok(Some(ClientIdentity::Der {
                chain: contents.chain.iter().map(|c| c.as_ref().to_vec()).collect(),
                key_pkcs8: key,
                source: path.clone(),
            }))
        }
        (None, None, None) => {
            if flags.key_password_file.is_some() || flags.key_password_env.is_some() {
                return Err(usage(
                    "--key-password-file",
                    "--key-password-file and --key-password-env are the password of --key, \
                     which is not given"
                        .into(),
                ));
            }
            if flags.password_env.is_some() {
                return Err(usage(
                    "--password-env",
                    "--password-env is the password of --p12, which is not given".into(),
                ));
            }
            Ok(None)
        }
    }
}

/// `--key-password-file` (one password per line, tried in order) or `--key-password-env`.
fn key_passwords(flags: &GetFlags) -> Result<Vec<Password>, RequestError> {
    match (&flags.key_password_file, &flags.key_password_env) {
        (Some(_), Some(_)) => Err(usage(
            "--key-password-env",
            "give --key-password-file or --key-password-env, not both".into(),
        )),
        (Some(file), None) => Password::read_file(file).map_err(|e| RequestError::File {
            flag: "--key-password-file",
            path: file.clone(),
            message: match e {
                mtls_pki::Error::Io { source, .. } => source.to_string(),
                other => other.to_string(),
            },
        }),
        (None, Some(var)) => Password::from_env(var).map(|p| vec![p]).map_err(|_| {
            usage(
                "--key-password-env",
                format!("the environment variable {var} is not set"),
            )
        }),
        (None, None) => Ok(Vec::new()),
    }
}

/// Seconds (`5`, `2.5`) or a number with a unit (`500ms`, `2s`, `1m`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected seconds (5, 2.5) or 500ms, 2s, 1m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s or m)")),
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds < 1e9) {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The headers curl would send, for `get` and `bench` alike: Host, User-Agent, Accept, the
/// body's Content-Type and Content-Length, then each `-H` (the first of a name replaces a
/// default, later ones add to it, `Name:` removes it).
pub(crate) fn request_headers(
    authority: &str,
    user_agent: &'static str,
    body: Option<&Bytes>,
    extra: &[(HeaderName, Option<HeaderValue>)],
) -> http::HeaderMap {
    use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
    let mut headers = http::HeaderMap::new();
    if let Ok(host) = HeaderValue::from_str(authority) {
        headers.insert(HOST, host);
    }
    headers.insert(USER_AGENT, HeaderValue::from_static(user_agent));
    headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    if let Some(body) = body {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let mut replaced: Vec<&HeaderName> = Vec::new();
    for (name, value) in extra {
        match value {
            None => {
                headers.remove(name);
            }
            Some(value) => {
                if !replaced.contains(&name) {
                    headers.remove(name);
                    replaced.push(name);
                }
                headers.append(name.clone(), value.clone());
            }
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(url: &str) -> GetFlags {
        GetFlags {
            url: url.into(),
            ca: vec!["ca.crt".into()],
            ..GetFlags::default()
        }
    }

    fn usage_flag(result: Result<GetRequest, RequestError>) -> &'static str {
        match result {
            Err(RequestError::Usage { flag, .. }) => flag,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn urls_take_apart() {
        let t = Target::parse("https://API.local:8443/a/b?c=d").expect("url");
        assert_eq!(t.host, "api.local");
        assert_eq!(t.port, 8443);
        assert_eq!(t.path_and_query, "/a/b?c=d");
        assert_eq!(t.url(), "https://api.local:8443/a/b?c=d");
        let t = Target::parse("https://[::1]/").expect("v6");
        assert_eq!((t.host.as_str(), t.port), ("::1", 443));
        assert_eq!(t.authority(), "[::1]");
        assert_eq!(Target::parse("http://x").expect("http").path_and_query, "/");
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("/relative").is_err());
        assert!(Target::parse("https://u:p@x/").is_err());
    }

    #[test]
    fn redirects_join() {
        let t = Target::parse("https://a.test:8443/dir/page?q=1").expect("url");
        assert_eq!(
            t.join("/new").expect("abs").url(),
            "https://a.test:8443/new"
        );
        assert_eq!(
            t.join("other?x").expect("rel").url(),
            "https://a.test:8443/dir/other?x"
        );
        assert_eq!(
            t.join("//b.test/x").expect("scheme-relative").url(),
            "https://b.test/x"
        );
        assert_eq!(
            t.join("http://c.test:80/y").expect("full").url(),
            "http://c.test/y"
        );
    }

    #[test]
    fn resolve_entries() {
        let r = Resolve::parse("api.local:443:127.0.0.1").expect("v4");
        assert_eq!(r.socket_addr(), "127.0.0.1:443".parse().expect("addr"));
        let r = Resolve::parse("API.local:8443:[::1]").expect("v6 bracketed");
        assert_eq!(r.host, "api.local");
        assert_eq!(r.socket_addr(), "[::1]:8443".parse().expect("addr"));
        assert!(Resolve::parse("api.local:443:::1").is_ok());
        assert!(Resolve::parse("api.local:443").is_err());
        assert!(Resolve::parse("api.local:x:127.0.0.1").is_err());
        assert!(Resolve::parse("api.local:443:not-an-ip").is_err());
    }

    #[test]
    fn headers_like_curl() {
        let (name, value) = parse_header("X-A:  b c ").expect("set");
        assert_eq!(name.as_str(), "x-a");
        assert_eq!(value.expect("value"), "b c");
        assert_eq!(parse_header("User-Agent:").expect("remove").1, None);
        assert_eq!(
            parse_header("X-Empty;").expect("empty").1,
            Some(HeaderValue::from_static(""))
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2").expect("s"), Duration::from_secs(2));
        assert_eq!(
            parse_duration("0.5").expect("s"),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("250ms").expect("ms"),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("1m").expect("m"), Duration::from_secs(60));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn flag_combinations() {
        let mut f = flags("https://x/");
        f.data = Some("a=b".into());
        let request = GetRequest::try_from(f).expect("ok");
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.body.as_deref(), Some(&b"a=b"[..]));
        assert_eq!(request.tls.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);

        let mut f = flags("https://x/");
        f.http1_1 = true;
        f.http2 = true;
        assert_eq!(usage_flag(GetRequest::try_from(f)), "--http2");

        let mut f = flags("https://x/");
        f.ca.clear();
        assert_eq!(usage_flag(GetRequest::try_from(f)), "--ca");

        let mut f = flags("https://x/");
        f.cert = Some("a.crt".into());
        assert_eq!(usage_flag(GetRequest::try_from(f)), "--cert");

        let mut f = flags("https://x/");
        f.p12 = Some("a.p12".into());
        f.password_env = Some("MTLS_TEST_SURELY_UNSET_VARIABLE".into());
        assert_eq!(usage_flag(GetRequest::try_from(f)), "--password-env");

        let mut f = flags("https://x/");
        f.request = Some("GET BAD".into());
        assert_eq!(usage_flag(GetRequest::try_from(f)), "-X");

        let mut f = flags("https://x/");
        f.data = Some("@/nonexistent/file".into());
        let err = GetRequest::try_from(f).expect_err("no file");
        assert!(!err.is_usage(), "{err}");
    }
}

//! `proxy_pass`: the reverse proxy, with mutual TLS to the upstream.
//!
//! Seed 001's last hop — `proxy_ssl_certificate`, `proxy_ssl_trusted_certificate`,
//! `proxy_ssl_verify on`, `proxy_ssl_session_reuse on`, `proxy_pass https://backend` — and
//! seed 004's "hand the request to the backend". Per location:
//!
//! ```text
//!   request (path normalised by the handler) ─► strip hop-by-hop, spoofable identity and
//!   (unless allowed) underscored headers ─► add X-Forwarded-*,
//!   Forwarded and X-Client-* ─► Balancer picks a server ─► pooled keep-alive connection
//!   (Connector: TCP, then TLS with our client certificate, sessions resumed) ─► response
//!   streamed back; 101 Switching Protocols becomes a byte tunnel (WebSocket)
//! ```
//!
//! Bodies stream both ways; nothing is buffered whole. Failures are the upstream's, and
//! say so: 502 when it refuses, resets or fails verification, 504 when it is too slow, each
//! with one log line naming the upstream and the reason.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Sleep;

use mtls_tls::TlsError;
use mtls_tls::client::{ClientStream, ClientTlsSettings, TlsClient, UpstreamTlsError};

use crate::body::{self, Body, BodyFault, BodyVerdict, Checked};
use crate::config::{HeaderNames, HostPort, IdentityHeaders, PathMatch, Proxy, ProxyTls};
use crate::context::Connection;
use crate::error::Error;
use crate::identity::IdentityValues;
use crate::page::{body_timed_out, body_too_large, error_page};
use crate::path::{NormalPath, encode_path};

mod pool;

use pool::{Lent, Pool, SendError};

/// One location's proxy: its balancer, connection pool and header policy.
#[derive(Debug)]
pub(crate) struct ProxyRoute {
    balancer: Arc<Balancer>,
    pool: Arc<Pool>,
    /// What the route was built from, and a digest of its TLS files' contents: a reload
    /// that changes neither keeps this route's pool of upstream connections.
    origin: (Proxy, Option<ProxyTls>, u64),
    connector: Connector,
    /// The TLS side of the connector, to word errors that surface after the handshake.
    tls: Option<TlsClient>,
    https: bool,
    uri: Option<String>,
    read_timeout: Duration,
    connect_timeout: Duration,
    max_header_size: usize,
    identity: IdentityHeaders,
    /// Every identity header name, default and configured, lower-cased and with `_` read
    /// as `-`: removed from what the client sent.
    spoofable: Vec<HeaderName>,
    /// The server's `underscores_in_headers`: pass on header names with `_`.
    underscores_in_headers: bool,
    /// `forward_raw_path`: the upstream gets the path as the client wrote it.
    forward_raw_path: bool,
    /// The identity header names, parsed once: verify, subject, issuer, serial,
    /// fingerprint, cert.
    header_names: [Option<HeaderName>; 6],
}

/// Round robin over a group's servers, skipping one that failed to connect for
/// `fail_timeout` (nginx's `max_fails=1`).
#[derive(Debug)]
pub(crate) struct Balancer {
    /// For logs: the group's name, or the address.
    pub(crate) name: String,
    servers: Vec<HostPort>,
    next: AtomicUsize,
    /// Milliseconds since `epoch` until which each server is skipped.
    down_until: Vec<AtomicU64>,
    fail_timeout: Duration,
    epoch: Instant,
}

impl Balancer {
    pub(crate) fn new(name: String, servers: Vec<HostPort>, fail_timeout: Duration) -> Balancer {
        let down_until = servers.iter().map(|_| AtomicU64::new(0)).collect();
        Balancer {
            name,
            servers,
            next: AtomicUsize::new(0),
            down_until,
            fail_timeout,
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The next live server; when every server is down, the one whose penalty ends first
    /// (nginx then tries anyway rather than failing without trying).
    fn pick(&self) -> usize {
        let n = self.servers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.down_until[i].load(Ordering::Relaxed) <= now)
            .unwrap_or_else(|| {
                (0..n)
                    .min_by_key(|&i| self.down_until[i].load(Ordering::Relaxed))
                    .unwrap_or(0)
            })
    }

    fn mark_down(&self, index: usize) {
        let until =
            self.now_ms() + u64::try_from(self.fail_timeout.as_millis()).unwrap_or(u64::MAX / 2);
        self.down_until[index].store(until, Ordering::Relaxed);
    }
}

impl ProxyRoute {
    pub(crate) fn build(
        proxy: &Proxy,
        tls: Option<&ProxyTls>,
        balancer: Arc<Balancer>,
        keepalive_timeout: Duration,
        underscores_in_headers: bool,
        previous: Option<&ProxyRoute>,
    ) -> Result<ProxyRoute, TlsError> {
        let origin = (proxy.clone(), tls.cloned(), tls.map_or(0, tls_files_digest));
        let tls_client = match (proxy.https, tls) {
            (true, Some(tls)) => Some(TlsClient::build(&client_settings(tls))?),
            (true, None) => {
                return Err(TlsError::Setting {
                    key: "proxy_tls",
                    message: "an https upstream needs proxy_tls with trusted_ca".into(),
                });
            }
            (false, _) => None,
        };
        let connector = Connector {
            tls: tls_client.clone(),
            tls_name: tls.and_then(|t| t.server_name.clone()),
            connect_timeout: proxy.connect_timeout,
            send_timeout: proxy.send_timeout,
        };
        // A reload that changes nothing about this route or its upstreams keeps the pool:
        // its connections were made to the same servers with the same identity.
        let pool = match previous.filter(|p| {
            p.origin == origin
                && p.balancer.servers == balancer.servers
                && p.pool.keepalive_timeout() == keepalive_timeout
        }) {
            Some(previous) => previous.pool.clone(),
            None => Arc::new(Pool::new(
                balancer.servers.len(),
                proxy.max_header_size,
                keepalive_timeout,
            )),
        };
        let names = &proxy.identity.names;
        let defaults = HeaderNames::default();
        // The default names are stripped even when renamed: an upstream written for them
        // must never read a client's value under them.
        let mut spoofable: Vec<HeaderName> = [names, &defaults]
            .iter()
            .flat_map(|n| {
                [
                    &n.verify,
                    &n.subject,
                    &n.issuer,
                    &n.serial,
                    &n.fingerprint,
                    &n.cert,
                ]
            })
            .chain(std::iter::once(&"X-Forwarded-Client-Cert".to_owned()))
            .filter_map(|n| HeaderName::from_bytes(n.replace('_', "-").as_bytes()).ok())
            .collect();
        spoofable.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        spoofable.dedup();
        let header_names = [
            &names.verify,
            &names.subject,
            &names.issuer,
            &names.serial,
            &names.fingerprint,
            &names.cert,
        ]
        .map(|n| HeaderName::from_bytes(n.as_bytes()).ok());
        Ok(ProxyRoute {
            origin,
            header_names,
            pool,
            connector,
            balancer,
            tls: tls_client,
            https: proxy.https,
            uri: proxy.uri.clone(),
            read_timeout: proxy.read_timeout,
            connect_timeout: proxy.connect_timeout,
            max_header_size: proxy.max_header_size,
            identity: proxy.identity.clone(),
            spoofable,
            underscores_in_headers,
            forward_raw_path: proxy.forward_raw_path,
        })
    }

    /// Close the pooled connections idle longer than the upstream's `keepalive_timeout`.
    pub(crate) fn reap_idle(&self) {
        self.pool.reap();
    }

    /// Whether this location forwards the raw path (the handler then checks that it routes
    /// the same as the normalised one).
    pub(crate) fn forwards_raw_path(&self) -> bool {
        self.forward_raw_path
    }

    /// Forward `request` (which matched `matched`, by `path`) and stream the answer back.
    pub(crate) async fn forward(
        &self,
        conn: &Connection,
        matched: &PathMatch,
        path: ForwardPath<'_>,
        limits: BodyLimits,
        mut request: Request<Incoming>,
    ) -> Response<Body> {
        let upgrade = is_upgrade(&request);
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let (parts, incoming) = request.into_parts();
        let path = self.upstream_path(matched, path, parts.uri.query());
        let headers = self.upstream_headers(conn, &parts, upgrade);
        // A request without a body can be sent again to another server if the first one
        // cannot be reached; one with a body has started streaming and cannot.
        let replayable = incoming.is_end_stream();
        let incoming = incoming.map_err(std::io::Error::other);
        let verdict = Arc::new(BodyVerdict::default());
        let checked = Checked::new(incoming, limits.max, limits.timeout, verdict.clone());
        let mut body = Some(checked.boxed());
        let attempts = if replayable {
            self.balancer.servers.len()
        } else {
            1
        };
        let mut last_error = None;
        let mut headers = Some(headers);
        for attempt in 0..attempts {
            let index = self.balancer.pick();
            let server = &self.balancer.servers[index];
            // Origin form (`/path?query`): the connection already names the server.
            let Ok(uri) = Uri::try_from(path.as_str()) else {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "The request path cannot be forwarded.",
                );
            };
            let mut upstream_request = Request::new(body.take().unwrap_or_else(body::empty));
            *upstream_request.method_mut() = parts.method.clone();
            *upstream_request.uri_mut() = uri;
            *upstream_request.version_mut() = Version::HTTP_11;
            // The last attempt takes the headers; only a retry needs a copy.
            let attempt_headers = if attempt + 1 == attempts {
                headers.take()
            } else {
                headers.clone()
            };
            *upstream_request.headers_mut() = attempt_headers.unwrap_or_default();
            // A request without a body is sent at once: `read_timeout` runs from there to
            // the response head. With a body, the upload may take any time (the client's
            // pace, `client_body_timeout`); then the connect and read timeouts bound the
            // whole exchange together.
            let head_timeout = replayable.then_some(self.read_timeout);
            let wait = self.connect_timeout + self.read_timeout;
            let sent = self.pool.send(
                index,
                server,
                &self.connector,
                upstream_request,
                head_timeout,
            );
            let failure = match tokio::time::timeout(wait, sent).await {
                Ok(Ok((response, lent))) => {
                    return self.respond(conn, response, client_upgrade, lent).await;
                }
                Ok(Err(SendError::Connect(e))) => e.error(),
                Ok(Err(SendError::Http(e))) if e.is_parse_too_large() => Error::upstream(
                    "max_header_size",
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "the response headers exceed {} bytes (max_header_size)",
                        self.max_header_size
                    ),
                ),
                Ok(Err(SendError::Http(e))) => upstream_failure(&e, self.tls.as_ref()),
                Ok(Err(SendError::ReadTimeout)) | Err(_) => Error::upstream(
                    "read_timeout",
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "no response headers within {:?} (read_timeout)",
                        self.read_timeout
                    ),
                ),
            };
            // Not the upstream's fault when the client's body went wrong.
            if let Some(fault) = verdict.fault() {
                let error = fault.error(limits.max, limits.timeout);
                conn.report(&error, None);
                return match fault {
                    BodyFault::TooLarge => {
                        body_too_large(limits.max.unwrap_or_default(), parts.version)
                    }
                    BodyFault::Timeout => {
                        conn.metrics.timed_out("client_body_timeout");
                        body_timed_out(limits.timeout, parts.version)
                    }
                    BodyFault::Client => error_page(error.status, &error.why),
                };
            }
            conn.report(
                &failure,
                Some(&format!("{} ({server})", self.balancer.name)),
            );
            if failure.retry {
                self.balancer.mark_down(index);
            }
            let retry = failure.retry && replayable;
            last_error = Some(failure);
            if !retry {
                break;
            }
        }
        let failure = last_error.unwrap_or_else(|| {
            Error::internal("no_server", "no server to try").with_status(StatusCode::BAD_GATEWAY)
        });
        error_page(
            failure.status,
            &format!(
                "The upstream {} failed: {}",
                self.balancer.name, failure.why
            ),
        )
    }

    async fn respond(
        &self,
        conn: &Connection,
        mut response: Response<Incoming>,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
        lent: Lent,
    ) -> Response<Body> {
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                return error_page(
                    StatusCode::BAD_GATEWAY,
                    "The upstream switched protocols without being asked to.",
                );
            };
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let remote = conn.remote;
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client, upstream)) => {
                        let mut client = TokioIo::new(client);
                        let mut upstream = TokioIo::new(upstream);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                    Err(e) => tracing::debug!("client={remote}: upgrade failed: {e}"),
                }
            });
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, body::empty());
        }
        let (mut parts, incoming) = response.into_parts();
        // RFC 9112 section 6.3: with Transfer-Encoding, Content-Length means nothing, and
        // forwarded beside the de-chunked body it would cut the body short.
        if parts.headers.contains_key(header::TRANSFER_ENCODING) {
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        strip_hop_by_hop(&mut parts.headers);
        let witness = Witness {
            metrics: conn.metrics.clone(),
            client: conn.remote,
            balancer: self.balancer.clone(),
            server: lent.server(),
            sent: 0,
        };
        let body = IdleTimeout::new(incoming, self.read_timeout, lent, witness);
        if self.https && parts.status == StatusCode::BAD_REQUEST && is_small_html(&parts.headers) {
            return self.nginx_refusal(conn, parts, body).await;
        }
        Response::from_parts(parts, body.boxed())
    }

    /// nginx never fails the TLS handshake over a client certificate: it completes it and
    /// answers 400 with one of its own pages. For the client of the gateway that is a
    /// misconfigured gateway, not a bad request, so it becomes a 502 that says so (the page
    /// is small, so reading it whole costs nothing).
    async fn nginx_refusal(
        &self,
        conn: &Connection,
        parts: http::response::Parts,
        body: IdleTimeout,
    ) -> Response<Body> {
        let Ok(collected) = body.collect().await else {
            return error_page(StatusCode::BAD_GATEWAY, "The upstream's answer broke off.");
        };
        let page = collected.to_bytes();
        let text = String::from_utf8_lossy(&page);
        let refusal = NGINX_CERTIFICATE_PAGES
            .iter()
            .find(|marker| text.contains(*marker));
        let Some(marker) = refusal else {
            return Response::from_parts(parts, body::full(page));
        };
        let reason = format!(
            "the upstream refused our client certificate (it answered 400 \"{marker}\", nginx's page for ssl_verify_client failures)"
        );
        let error = Error::upstream("refused_our_certificate", StatusCode::BAD_GATEWAY, &reason);
        conn.report(&error, Some(&self.balancer.name));
        error_page(
            StatusCode::BAD_GATEWAY,
            &format!("The upstream {} failed: {reason}", self.balancer.name),
        )
    }

    /// The upstream's request target. The path is the normalised one, encoded again (or,
    /// with `forward_raw_path`, the client's bytes); with a URI in `proxy_pass`, the part the
    /// location matched is replaced by it, as nginx does. The query goes as it came.
    fn upstream_path(
        &self,
        matched: &PathMatch,
        path: ForwardPath<'_>,
        query: Option<&str>,
    ) -> String {
        let (path, encode) = match path {
            ForwardPath::Normal(path) => (path.as_str(), true),
            ForwardPath::Raw(raw) => (raw, false),
        };
        let rest = match (&self.uri, matched) {
            (None, _) => path,
            (Some(_), PathMatch::Prefix(prefix)) => {
                path.strip_prefix(prefix.as_str()).unwrap_or(path)
            }
            (Some(_), PathMatch::Exact(_)) => "",
        };
        let mut target = String::with_capacity(path.len() + query.map_or(0, str::len) + 16);
        if let Some(replacement) = &self.uri {
            target.push_str(replacement);
        }
        if encode {
            target.push_str(&encode_path(rest));
        } else {
            target.push_str(rest);
        }
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        target
    }

    /// The upstream request's headers: the client's, minus hop-by-hop and spoofable ones
    /// (copied in one pass, not cloned and then pruned), plus Host, the forwarding headers
    /// and the identity headers. What depends only on the connection is made once.
    fn upstream_headers(
        &self,
        conn: &Connection,
        parts: &http::request::Parts,
        upgrade: bool,
    ) -> HeaderMap {
        let source = &parts.headers;
        let listed = connection_listed(source, upgrade);
        let mut headers = HeaderMap::with_capacity(source.len() + 12);
        for (name, value) in source {
            let underscored = name.as_str().contains('_');
            if is_hop_by_hop(name, upgrade)
                || (underscored && !self.underscores_in_headers)
                || self.is_spoofable(name, underscored)
                || listed.contains(name)
            {
                continue;
            }
            headers.append(name.clone(), value.clone());
        }
        // HTTP/2 may split `cookie` into several fields; HTTP/1.1 wants one (RFC 9113 8.2.3).
        if parts.version == Version::HTTP_2
            && let header::Entry::Occupied(mut cookies) = headers.entry(header::COOKIE)
            && cookies.iter().nth(1).is_some()
        {
            let joined = cookies
                .iter()
                .map(HeaderValue::as_bytes)
                .collect::<Vec<_>>()
                .join(&b"; "[..]);
            if let Ok(value) = HeaderValue::from_bytes(&joined) {
                cookies.insert(value);
            }
        }
        if upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        let values = conn
            .identity
            .get_or_init(|| IdentityValues::of(conn.remote, conn.tls.as_ref()));
        let host = source.get(header::HOST).cloned().or_else(|| {
            let authority = parts.uri.authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        });
        match &host {
            Some(host) => {
                headers.insert(header::HOST, host.clone());
                headers.insert(X_FORWARDED_HOST, host.clone());
            }
            // HTTP/1.0 or HTTP/2 without a host: HTTP/1.1 to the upstream needs one, so it
            // gets the upstream's own name, as nginx's `$proxy_host`.
            None => {
                if let Ok(name) = HeaderValue::from_str(&self.balancer.name) {
                    headers.insert(header::HOST, name);
                }
            }
        }
        let forwarded_for = match source.get(X_FORWARDED_FOR).map(HeaderValue::as_bytes) {
            Some(previous) => {
                let mut joined = previous.to_vec();
                joined.extend_from_slice(b", ");
                joined.extend_from_slice(values.client_ip.as_bytes());
                HeaderValue::from_bytes(&joined).unwrap_or_else(|_| values.client_ip.clone())
            }
            None => values.client_ip.clone(),
        };
        headers.insert(X_FORWARDED_FOR, forwarded_for);
        headers.insert(
            X_FORWARDED_PROTO,
            HeaderValue::from_static(if conn.tls.is_some() { "https" } else { "http" }),
        );
        let mut forwarded = String::with_capacity(96);
        if let Some(previous) = source.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
            forwarded.push_str(previous);
            forwarded.push_str(", ");
        }
        forwarded.push_str(&values.forwarded);
        if let Some(host) = host.as_ref().and_then(|h| h.to_str().ok()) {
            // The Host was validated (no quote or backslash can be in it); escape anyway, as
            // RFC 7230's quoted-string wants.
            forwarded.push_str(";host=\"");
            for c in host.chars() {
                if c == '"' || c == '\\' {
                    forwarded.push('\\');
                }
                forwarded.push(c);
            }
            forwarded.push('"');
        }
        if let Ok(value) = HeaderValue::from_str(&forwarded) {
            headers.insert(header::FORWARDED, value);
        }
        if self.identity.enabled || self.identity.xfcc {
            self.identity_headers(values, &mut headers);
        }
        headers
    }

    /// An identity header name, or one that CGI/WSGI would read as one (`X_Client_Verify`
    /// becomes `HTTP_X_CLIENT_VERIFY` too).
    fn is_spoofable(&self, name: &HeaderName, underscored: bool) -> bool {
        if underscored {
            let dashed = name.as_str().replace('_', "-");
            self.spoofable.iter().any(|s| s.as_str() == dashed)
        } else {
            self.spoofable.contains(name)
        }
    }

    fn identity_headers(&self, values: &IdentityValues, headers: &mut HeaderMap) {
        if self.identity.enabled {
            let [verify, subject, issuer, serial, fingerprint, cert] = &self.header_names;
            let fields = [
                (verify, Some(&values.verify)),
                (subject, values.subject.as_ref()),
                (issuer, values.issuer.as_ref()),
                (serial, values.serial.as_ref()),
                (fingerprint, values.fingerprint.as_ref()),
                (cert, values.cert.as_ref()),
            ];
            for (name, value) in fields {
                if let (Some(name), Some(value)) = (name, value) {
                    headers.insert(name.clone(), value.clone());
                }
            }
        }
        if self.identity.xfcc
            && let Some(xfcc) = &values.xfcc
        {
            headers.insert(
                HeaderName::from_static("x-forwarded-client-cert"),
                xfcc.clone(),
            );
        }
    }
}

/// What a proxied request's body is held to: `client_max_body_size` (`None`: no limit)
/// and `client_body_timeout`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    pub(crate) max: Option<u64>,
    pub(crate) timeout: Duration,
}

/// Which path a proxied request carries to the upstream.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ForwardPath<'a> {
    /// The normalised path (the default): encoded again on the way out.
    Normal(&'a NormalPath<'a>),
    /// `forward_raw_path`: the path as the client wrote it, checked by the handler to route
    /// the same.
    Raw(&'a str),
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// RFC 9110 section 7.6.1's hop-by-hop headers (Upgrade too, unless the request upgrades).
fn is_hop_by_hop(name: &HeaderName, keep_upgrade: bool) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "http2-settings"
    ) || (!keep_upgrade && name == header::UPGRADE)
}

/// nginx's pages for `ssl_verify_client` failures (its internal 495 and 496 statuses,
/// sent as 400).
const NGINX_CERTIFICATE_PAGES: [&str; 3] = [
    "The SSL certificate error",
    "No required SSL certificate was sent",
    "The SSL certificate has expired",
];

fn is_small_html(headers: &HeaderMap) -> bool {
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let small = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= 4096);
    html && small
}

/// A request that asks to switch to WebSocket: HTTP/1.1 with `Upgrade: websocket` and
/// `Connection: upgrade`. Only WebSocket: an upgrade to anything else (h2c above all) would
/// let the client speak a protocol of its choosing straight to the upstream, with requests
/// for any path that the gateway never routes or checks. Any other `Upgrade` is dropped.
fn is_upgrade<B>(request: &Request<B>) -> bool {
    let mut upgrades = request.headers().get_all(header::UPGRADE).iter().peekable();
    request.version() == Version::HTTP_11
        && upgrades.peek().is_some()
        && upgrades.all(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .all(|token| token.trim().eq_ignore_ascii_case("websocket"))
            })
        })
        && connection_tokens(request.headers()).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// RFC 9110 section 7.6.1: the headers that describe one connection, not the message
/// (for a response; a request's are left out as it is copied, in `upstream_headers`).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut drop = connection_listed(headers, false);
    drop.extend(
        headers
            .keys()
            .filter(|name| is_hop_by_hop(name, false))
            .cloned(),
    );
    for name in drop {
        headers.remove(name);
    }
}

/// The header names a message's `Connection` header lists: hop-by-hop for that message
/// too (but `upgrade`, when the request upgrades).
fn connection_listed(headers: &HeaderMap, upgrade: bool) -> Vec<HeaderName> {
    if !headers.contains_key(header::CONNECTION) {
        return Vec::new();
    }
    connection_tokens(headers)
        .filter(|t| !(upgrade && t.eq_ignore_ascii_case("upgrade")))
        .filter_map(|t| HeaderName::from_bytes(t.to_ascii_lowercase().as_bytes()).ok())
        .collect()
}

fn client_settings(tls: &ProxyTls) -> ClientTlsSettings {
    ClientTlsSettings {
        certificate: tls.certificate.as_ref().map(|c| c.value.clone()),
        key: tls.key.as_ref().map(|k| k.value.clone()),
        key_password_file: tls.key_password_file.as_ref().map(|f| f.value.clone()),
        trusted_ca: tls.trusted_ca.iter().map(|c| c.value.clone()).collect(),
        verify: tls.verify,
        protocols: tls.protocols.clone(),
        ciphers: tls.ciphers.as_ref().map(|c| c.value.clone()),
        session_reuse: tls.session_reuse,
        sni: tls.sni,
        alpn: vec![b"http/1.1".to_vec()],
        common_name_fallback: tls.common_name_fallback,
    }
}

/// A failed exchange with an upstream, found by type in the error's chain of causes: our
/// connect and `send_timeout` errors, then a TLS error under an io error (in TLS 1.3 the
/// upstream judges our certificate after the handshake, so its refusal arrives as the
/// first read of the response); anything else is the upstream closing on us.
fn upstream_failure(error: &hyper::Error, tls: Option<&TlsClient>) -> Error {
    for cause in mtls_tls::cause::chain(error) {
        if let Some(connect) = cause.downcast_ref::<ConnectError>() {
            return connect.error();
        }
        if let Some(ours) = cause.downcast_ref::<Error>() {
            return ours.clone();
        }
        if let (Some(io), Some(tls)) = (cause.downcast_ref::<std::io::Error>(), tls)
            && let Some(tls_error) = tls.describe_stream_error(io)
        {
            return Error::upstream(
                tls_error.check(),
                StatusCode::BAD_GATEWAY,
                tls_error.to_string(),
            );
        }
    }
    Error::upstream(
        "upstream_closed",
        StatusCode::BAD_GATEWAY,
        mtls_tls::cause::describe(error),
    )
}

/// Why a connection to the upstream could not be made.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("connect to {0} failed: {1}")]
    Connect(String, std::io::Error),
    #[error("no connection to {0} within {1:?} (connect_timeout)")]
    Timeout(String, Duration),
    #[error("{0}")]
    Tls(UpstreamTlsError),
}

impl ConnectError {
    /// Never reached the upstream: another server may be tried.
    fn error(&self) -> Error {
        let (status, check) = match self {
            ConnectError::Timeout(..) => (StatusCode::GATEWAY_TIMEOUT, "connect_timeout"),
            ConnectError::Resolve(..) => (StatusCode::BAD_GATEWAY, "resolve"),
            ConnectError::Connect(..) => (StatusCode::BAD_GATEWAY, "connect"),
            ConnectError::Tls(e) if e.is_timeout() => {
                (StatusCode::GATEWAY_TIMEOUT, "connect_timeout")
            }
            ConnectError::Tls(e) => (StatusCode::BAD_GATEWAY, e.check()),
        };
        Error::upstream(check, status, self.to_string()).retryable()
    }
}

/// Makes upstream connections for the pool: TCP, then TLS when the upstream is https.
#[derive(Debug)]
struct Connector {
    tls: Option<TlsClient>,
    /// `proxy_tls.server_name`; else the host of the server being connected to.
    tls_name: Option<String>,
    connect_timeout: Duration,
    send_timeout: Duration,
}

impl Connector {
    /// TCP to `target` (each address it resolves to, in turn), then TLS when the
    /// upstream is https, all within `connect_timeout`.
    async fn connect(&self, target: &HostPort) -> Result<UpstreamIo, ConnectError> {
        let host = target.host.as_str();
        let port = target.port;
        let connect = async {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| ConnectError::Resolve(target.to_string(), e))?
                .collect();
            let mut last = None;
            let mut tcp = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => {
                        tcp = Some(stream);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            let tcp = tcp.ok_or_else(|| {
                ConnectError::Connect(
                    target.to_string(),
                    last.unwrap_or_else(|| std::io::Error::other("no address")),
                )
            })?;
            let _ = tcp.set_nodelay(true);
            let io = match &self.tls {
                None => Io::Plain(TokioIo::new(tcp)),
                Some(tls) => {
                    let name = self.tls_name.as_deref().unwrap_or(host);
                    let (stream, _) = tls.connect(tcp, name).await.map_err(ConnectError::Tls)?;
                    Io::Tls(Box::new(TokioIo::new(stream)))
                }
            };
            Ok(UpstreamIo {
                io,
                send_timeout: self.send_timeout,
                write_stall: None,
            })
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::Timeout(
                target.to_string(),
                self.connect_timeout,
            )),
        }
    }
}

/// An upstream connection; a write that cannot make progress for `send_timeout` fails
/// (nginx's `proxy_send_timeout`: the upstream stopped reading our request).
#[derive(Debug)]
struct UpstreamIo {
    io: Io,
    send_timeout: Duration,
    write_stall: Option<Pin<Box<Sleep>>>,
}

#[derive(Debug)]
enum Io {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<ClientStream<TcpStream>>>),
}

impl hyper::rt::Read for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Io::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl UpstreamIo {
    /// A write or flush could not go on: fail once that has lasted `send_timeout`. (Both
    /// count: rustls takes our bytes into its own buffer, so a stalled socket can show up
    /// as a flush that never finishes rather than a write.)
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let timeout = self.send_timeout;
        let sleep = self
            .write_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Error::upstream(
                "send_timeout",
                StatusCode::GATEWAY_TIMEOUT,
                format!("the upstream accepted nothing for {timeout:?} (send_timeout)"),
            )
            .into_io())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = match &mut this.io {
            Io::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Io::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        };
        match polled {
            Poll::Pending => this.stalled(cx),
            ready => {
                this.write_stall = None;
                ready
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = match &mut this.io {
            Io::Plain(io) => Pin::new(io).poll_flush(cx),
            Io::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        };
        match polled {
            Poll::Pending => this.stalled(cx),
            ready => {
                this.write_stall = None;
                ready
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Io::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The upstream's response body, failing if the upstream sends nothing for `read_timeout`
/// (nginx's `proxy_read_timeout` is also between two reads, not for the whole body).
///
/// The timer is armed only when the upstream makes us wait. Most small responses arrive
/// with their head, and registering a timer that never fires is not free: a deadline
/// earlier than every other one wakes tokio's driver through its eventfd, one `write`
/// syscall per proxied request (docs/BENCHMARKS.md, proxy).
struct IdleTimeout {
    inner: Incoming,
    /// Who to tell when the body breaks off.
    witness: Witness,
    /// The upstream connection, back to the pool when this body has ended.
    lent: Option<Lent>,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    /// The deadline in `sleep` is stale: a frame arrived since it was set.
    armed: bool,
}

impl IdleTimeout {
    fn new(inner: Incoming, timeout: Duration, lent: Lent, witness: Witness) -> IdleTimeout {
        IdleTimeout {
            inner,
            witness,
            lent: Some(lent),
            timeout,
            sleep: None,
            armed: false,
        }
    }
}

/// What a response body needs to say, once, that its upstream broke off: the client learns
/// it from the aborted response (HTTP/1.1: the connection closes short of the length or the
/// last chunk; HTTP/2: the stream is reset), the operator from this log line and metric.
#[derive(Debug)]
struct Witness {
    metrics: Arc<crate::metrics::Metrics>,
    client: SocketAddr,
    balancer: Arc<Balancer>,
    server: usize,
    /// Body bytes passed on so far.
    sent: u64,
}

impl Witness {
    fn broke_off(&self, check: &'static str, why: &str) {
        self.metrics.upstream_error(check);
        tracing::warn!(
            "upstream error: client={} upstream={} ({}) check={check}: the response broke off \
             after {} body bytes: {why}",
            self.client,
            self.balancer.name,
            self.balancer.servers[self.server],
            self.sent
        );
    }
}

impl Drop for IdleTimeout {
    /// A body read to its end leaves its connection ready for the next request; one
    /// dropped early (the client went away) takes the connection with it.
    fn drop(&mut self) {
        if let Some(lent) = self.lent.take()
            && self.inner.is_end_stream()
        {
            lent.give_back();
        }
    }
}

impl http_body::Body for IdleTimeout {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.armed = false;
            return Poll::Ready(frame.map(|frame| match frame {
                Ok(frame) => {
                    this.witness.sent += frame.data_ref().map_or(0, |d| d.len() as u64);
                    Ok(frame)
                }
                Err(e) => {
                    let why = mtls_tls::cause::describe(&e);
                    this.witness.broke_off("upstream_truncated", &why);
                    Err(
                        Error::upstream("upstream_truncated", StatusCode::BAD_GATEWAY, why)
                            .into_io(),
                    )
                }
            }));
        }
        let deadline = || tokio::time::Instant::now() + this.timeout;
        let sleep = match &mut this.sleep {
            Some(sleep) => {
                if !this.armed {
                    sleep.as_mut().reset(deadline());
                }
                sleep
            }
            None => this
                .sleep
                .insert(Box::pin(tokio::time::sleep_until(deadline()))),
        };
        this.armed = true;
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                let why = format!(
                    "the upstream sent nothing for {:?} (read_timeout)",
                    this.timeout
                );
                this.witness.broke_off("read_timeout", &why);
                Poll::Ready(Some(Err(Error::upstream(
                    "read_timeout",
                    StatusCode::GATEWAY_TIMEOUT,
                    why,
                )
                .into_io())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A digest of the contents of the files `tls` names (certificate, key, its passwords,
/// trusted CAs): equal digests, same identity and trust, so pooled connections stay valid.
fn tls_files_digest(tls: &ProxyTls) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let files = tls
        .certificate
        .iter()
        .chain(&tls.key)
        .chain(&tls.key_password_file)
        .chain(&tls.trusted_ca);
    for file in files {
        std::fs::read(&file.value).ok().hash(&mut hasher);
    }
    hasher.finish()
}

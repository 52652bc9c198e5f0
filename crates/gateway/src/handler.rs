//! One request: validate its Host ([`crate::host`]) and pick the virtual host (SNI, then
//! Host), refuse a Host that would bypass the client-certificate check (421), normalise the
//! path once ([`crate::path`]), pick the location by that path, apply its
//! client-certificate rules, run its action with the same path, and write the access-log
//! line.

use http::{HeaderValue, Method, StatusCode, header};
use hyper::body::Incoming;
use hyper::{Request, Response};

use mtls_tls::VerifyStatus;

use crate::access_log::{Logged, Pending};
use crate::body::{self, Body};
use crate::config::{AllowField, ClientAuth};
use crate::context::Connection;
use crate::error::Error;
use crate::host::request_host;
use crate::page::{body_too_large, error_page, html_escape};
use crate::path::NormalPath;
use crate::proxy::{BodyLimits, ForwardPath};
use crate::site::{Entrance, Misdirected, Route, RouteAction};

/// Answer one request on `conn`, which came in through `entrance`. The response's body
/// writes the access-log line when it ends.
pub(crate) async fn handle(
    entrance: &Entrance,
    conn: &Connection,
    request: Request<Incoming>,
) -> Response<Logged> {
    // With `access_log = "off"` nothing of the request is copied, formatted or timed. The
    // line is pending from here: if this future is dropped (the client left, or a shutdown
    // cut the request) it is written as it drops.
    let mut pending = conn.log.enabled().then(|| {
        Pending::new(
            &conn.log,
            conn.remote.ip(),
            conn.tls.as_ref(),
            &conn.activity,
            &request,
        )
    });
    let head = request.method() == Method::HEAD;
    let mut response = respond(entrance, conn, request).await;
    if head {
        // hyper leaves out the body of an answer to HEAD over HTTP/1.1, not over HTTP/2,
        // where a DATA frame after it is a protocol error. Content-Length stays.
        *response.body_mut() = body::empty();
    }
    let status = response.status();
    conn.metrics.request(status);
    if let Some(pending) = pending.as_mut() {
        pending.answered(status, response.headers());
    }
    response.map(|body| Logged::new(body, pending))
}

/// Route the request: its Host to a virtual host, its path to a location; then answer it
/// with that host and location alone.
async fn respond(
    entrance: &Entrance,
    conn: &Connection,
    request: Request<Incoming>,
) -> Response<Body> {
    let host_name = match request_host(&request) {
        Ok(name) => name,
        Err(e) => {
            return refuse(
                conn,
                Error::client(e.check(), StatusCode::BAD_REQUEST, e.to_string()),
            );
        }
    };
    let vhost = match entrance.host(host_name.as_deref()) {
        Ok(vhost) => vhost,
        Err(Misdirected) => {
            conn.metrics.request_refusal("misdirected");
            return error_page(
                StatusCode::MISDIRECTED_REQUEST,
                &format!(
                    "The TLS connection was made for {} and its client certificate was checked there; \
                     this request is for {}. Open a new connection for that name.",
                    conn.tls
                        .as_ref()
                        .and_then(|t| t.server_name.as_deref())
                        .unwrap_or("(no SNI)"),
                    host_name.as_deref().unwrap_or("(no Host)")
                ),
            );
        }
    };
    // A cheap clone (the URI shares its bytes), so the path can borrow from it while the
    // request itself moves on to the proxy.
    let uri = request.uri().clone();
    let path = match NormalPath::parse(uri.path()) {
        Ok(path) => path,
        Err(e) => return bad_request(conn, e.check(), &e.to_string()),
    };
    // hyper bounds its read buffer near the limit (memory); this is the exact check.
    let head = head_size(&request);
    if head > vhost.max_request_head {
        let why = format!(
            "the request head is {head} bytes, over large_client_header_buffers ({} bytes)",
            vhost.max_request_head
        );
        conn.report(
            &Error::client(
                "large_client_header_buffers",
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                why.clone(),
            ),
            None,
        );
        return error_page(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &why);
    }
    let Some(route) = vhost.route(path.as_str()) else {
        return error_page(StatusCode::NOT_FOUND, "No location matches this path.");
    };
    // Java upstreams route `;parameters` away: the path they would see must pick the
    // same location, or the rules checked here are not the ones that apply there.
    if let Some(stripped) = path.without_parameters()
        && !stripped.is_ok_and(|stripped| vhost.routes_to(stripped.as_str(), route))
    {
        return bad_request(
            conn,
            "ambiguous_path",
            "The request path, read without its ;parameters as Java servers read it, would \
             reach another location.",
        );
    }
    if let Some(refused) = check_client(conn, route, &path) {
        return refused;
    }
    // An announced length is checked here, for every action; a body without one is cut
    // off as it streams (the proxy is the only action that reads bodies).
    if let Some(limit) = route.max_body
        && let Some(length) = content_length(&request)
        && length > limit
    {
        conn.report(
            &Error::client(
                "client_max_body_size",
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Content-Length is {length}, over client_max_body_size ({limit} bytes)"),
            ),
            None,
        );
        let version = request.version();
        body::discard(request.into_body());
        return body_too_large(limit, version);
    }
    match &route.action {
        RouteAction::Static(files) => {
            files
                .serve(request.method(), &path, request.headers())
                .await
        }
        RouteAction::Return { status, target } => answer_return(
            conn,
            &request,
            host_name.as_deref(),
            &path,
            *status,
            target.as_deref(),
        ),
        RouteAction::Proxy(proxy) => {
            let forward = if !proxy.forwards_raw_path() {
                ForwardPath::Normal(&path)
            } else if vhost.routes_to(uri.path(), route) {
                // The raw path, matched as it is, picks this same location: the upstream
                // cannot read it as the location the normalised path avoided.
                ForwardPath::Raw(uri.path())
            } else {
                return bad_request(
                    conn,
                    "ambiguous_path",
                    "The request path, as written, would reach another location than its \
                     normalised form; send it normalised.",
                );
            };
            let limits = BodyLimits {
                max: route.max_body,
                timeout: vhost.timeouts.client_body,
            };
            proxy
                .forward(conn, &route.path, forward, limits, request)
                .await
        }
    }
}

/// The size of the request head as it was sent: request line and header lines (HTTP/2's
/// pseudo-headers count through the URI).
fn head_size(request: &Request<Incoming>) -> usize {
    let uri = request.uri();
    let target = uri.path_and_query().map_or(1, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    let line = request.method().as_str().len() + target + 12;
    request.headers().iter().fold(line, |sum, (name, value)| {
        sum + name.as_str().len() + value.len() + 4
    })
}

fn content_length(request: &Request<Incoming>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A request refused before routing: 400, counted and logged under `check`.
fn bad_request(conn: &Connection, check: &'static str, why: &str) -> Response<Body> {
    refuse(conn, Error::client(check, StatusCode::BAD_REQUEST, why))
}

/// Count and log `error`, and answer with its status and sentence.
fn refuse(conn: &Connection, error: Error) -> Response<Body> {
    conn.report(&error, None);
    error_page(error.status, &error.why)
}

/// Per-location `client_auth = "required"` and `allow` rules: 403 with a body that says
/// what was missing, and a log line naming the certificate.
fn check_client(conn: &Connection, route: &Route, path: &NormalPath) -> Option<Response<Body>> {
    if route.client_auth == ClientAuth::Inherit && route.allow.is_empty() {
        return None;
    }
    let verify = conn
        .tls
        .as_ref()
        .map_or(VerifyStatus::None, |t| t.verify.clone());
    let peer = conn.tls.as_ref().and_then(|t| t.peer.as_deref());
    let (Some(peer), VerifyStatus::Success) = (peer, &verify) else {
        conn.metrics.request_refusal("client_auth_required");
        tracing::warn!(
            "request refused: client={} check=client_auth_required: {path}: 403, a verified \
             client certificate is required (verify result: {verify})",
            conn.remote
        );
        return Some(error_page(
            StatusCode::FORBIDDEN,
            &format!(
                "This location requires a verified client certificate (verify result: {verify})."
            ),
        ));
    };
    if route.allow.is_empty() {
        return None;
    }
    let allowed = route.allow.iter().any(|rule| {
        let values: &[String] = match rule.field {
            // A subject with several CNs has no one name to check (OpenSSL and Go read the
            // last, others the first): a cn rule never matches it.
            AllowField::Cn if peer.common_names.len() > 1 => &[],
            AllowField::Cn => &peer.common_names,
            AllowField::Ou => &peer.organizational_units,
            AllowField::SanDns => &peer.san_dns,
            AllowField::SanUri => &peer.san_uri,
            AllowField::SanEmail => &peer.san_email,
            AllowField::Fingerprint => std::slice::from_ref(&peer.fingerprint),
        };
        values.iter().any(|v| rule.matches(v))
    });
    if allowed {
        return None;
    }
    conn.metrics.request_refusal("allow");
    tracing::warn!(
        "request refused: client={} check=allow: {path}: 403, no allow rule matches the \
         client certificate {} (serial {}, issuer {})",
        conn.remote,
        peer.subject,
        peer.serial,
        peer.issuer
    );
    Some(error_page(
        StatusCode::FORBIDDEN,
        &format!(
            "The client certificate {} (serial {}) is not allowed on this location.",
            peer.subject, peer.serial
        ),
    ))
}

/// nginx's `return code [text|URL]`, with its variables expanded.
fn answer_return(
    conn: &Connection,
    request: &Request<Incoming>,
    host: Option<&str>,
    path: &NormalPath,
    status: u16,
    target: Option<&str>,
) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let expanded = target.map(|t| expand(t, conn, request, host, path));
    let mut response = Response::new(body::empty());
    *response.status_mut() = status;
    match expanded {
        Some(location) if status.is_redirection() => {
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            let location = html_escape(&location);
            let page = format!(
                "<html><head><title>{status}</title></head><body><h1>{status}</h1><a href=\"{location}\">{location}</a></body></html>\n"
            );
            set_body(&mut response, "text/html; charset=utf-8", page);
        }
        Some(text) => set_body(&mut response, "text/plain; charset=utf-8", text),
        None => {}
    }
    response
}

fn set_body(response: &mut Response<Body>, content_type: &'static str, text: String) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    *response.body_mut() = body::full(text);
}

/// Expand nginx variables (`$host`, `$request_uri`, `$ssl_client_s_dn`, ...) in `template`.
/// An unknown `$name` is left as written.
fn expand(
    template: &str,
    conn: &Connection,
    request: &Request<Incoming>,
    host: Option<&str>,
    path: &NormalPath,
) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, consumed) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        match variable(name, conn, request, host, path) {
            Some(value) if !name.is_empty() => out.push_str(&value),
            _ => {
                out.push('$');
                out.push_str(&after[..consumed]);
            }
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

fn variable(
    name: &str,
    conn: &Connection,
    request: &Request<Incoming>,
    host: Option<&str>,
    path: &NormalPath,
) -> Option<String> {
    let tls = conn.tls.as_ref();
    let peer = tls.and_then(|t| t.peer.as_deref());
    let local = conn.local;
    Some(match name {
        "scheme" => if tls.is_some() { "https" } else { "http" }.to_owned(),
        // An IPv6 literal keeps its brackets, as in nginx: `https://$host/` must stay a URL.
        "host" => match host {
            Some(host) if host.contains(':') => format!("[{host}]"),
            Some(host) => host.to_owned(),
            None => match local.ip() {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            },
        },
        "request_uri" => request
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
        // nginx's `$uri` is the decoded, normalised path; `$request_uri` stays as sent.
        "uri" => path.as_str().to_owned(),
        "args" | "query_string" => request.uri().query().unwrap_or("").to_owned(),
        "request_method" => request.method().as_str().to_owned(),
        "remote_addr" => conn.remote.ip().to_string(),
        "server_port" => local.port().to_string(),
        "ssl_protocol" => tls.map_or("", |t| t.protocol).to_owned(),
        "ssl_cipher" => tls.map_or("", |t| t.cipher).to_owned(),
        "ssl_session_reused" => if tls.is_some_and(|t| t.resumed) {
            "r"
        } else {
            "."
        }
        .to_owned(),
        "ssl_server_name" => tls.and_then(|t| t.server_name.clone()).unwrap_or_default(),
        "ssl_client_verify" => tls.map_or("NONE".to_owned(), |t| t.verify.to_string()),
        "ssl_client_s_dn" => peer.map(|p| p.subject_rfc2253.clone()).unwrap_or_default(),
        "ssl_client_i_dn" => peer.map(|p| p.issuer_rfc2253.clone()).unwrap_or_default(),
        "ssl_client_serial" => peer.map(|p| p.serial.clone()).unwrap_or_default(),
        "ssl_client_fingerprint" => peer.map(|p| p.fingerprint.clone()).unwrap_or_default(),
        _ => return None,
    })
}

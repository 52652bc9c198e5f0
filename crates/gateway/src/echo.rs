//! `mtls echo-server`: a built-in upstream that answers every request with JSON describing
//! what it received, for the reverse proxy's tests and demos.
//!
//! ```text
//!   TCP ──► (TLS: ClientHello ─► complete) ──► HTTP/1.1 or HTTP/2 ──► one JSON per request
//!
//!   /status/NNN   the same JSON, with status NNN (200..=599)
//!   /sleep/MS     the same JSON, MS milliseconds later (at most 60 s)
//!   /bytes/N      N bytes where byte i = i % 251, application/octet-stream, 64 KiB chunks
//!   /close        the same JSON with `Connection: close`: the connection ends after it
//!   Upgrade: X    (HTTP/1.1) 101 with the same Upgrade, then every byte is echoed back
//! ```
//!
//! The JSON (`{"method", "path", "query", "authority", "version", "headers", "body_bytes",
//! "body_fnv1a", "tls", "client_certificate", "connection"}`) is what the proxy delivered,
//! so a test can check forwarded headers, the identity the gateway presented upstream and
//! connection reuse. The request body is hashed as it streams in, never buffered whole,
//! so a 100 MB upload costs no memory. The hash is 64-bit FNV-1a, not a cryptographic
//! digest: this crate has no digest dependency, and a test only needs to see that the bytes
//! arrived intact and in order.

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, UPGRADE};
use http::{HeaderValue, StatusCode, Version};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use mtls_tls::{
    ClientHello, HandshakeError, HandshakeInfo, ServerTlsSettings, TlsError, TlsServer,
};

use crate::activity::Mode;
use crate::body::{self, Body};
use crate::config::Timeouts;
use crate::cork::CorkedIo;
use crate::metrics::Metrics;
use crate::runtime::{Handler, Runtime, Serve, Slots, Ticket, serve_http};

/// What the echo server serves: plain HTTP or TLS, with or without client certificates.
#[derive(Debug, Clone)]
pub struct EchoSettings {
    /// The TLS block; `None` serves plain HTTP.
    pub tls: Option<ServerTlsSettings>,
}

/// An echo server whose certificate, key and CAs have been read: build it before saying
/// "listening", so a bad file is reported before anything is served.
#[derive(Debug)]
pub struct EchoServer {
    tls: Option<Arc<TlsServer>>,
}

/// Build `settings` and serve on `listener` until `shutdown` completes; then stop accepting
/// and let requests in flight finish (for a few seconds at most).
pub async fn run(
    settings: EchoSettings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let server = EchoServer::build(&settings)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    server.run(listener, shutdown).await
}

impl EchoSettings {
    /// Plain HTTP (HTTP/1.1, and HTTP/2 with prior knowledge).
    pub fn plain() -> EchoSettings {
        EchoSettings { tls: None }
    }

    /// TLS with `certificate` (chain, leaf first) and `key`, ALPN `h2` and `http/1.1`. With
    /// `client_ca`, client certificates are asked for: required when
    /// `require_client_certificate`, else optional (no certificate is reported as `NONE`, a
    /// bad one is refused).
    pub fn tls(
        certificate: PathBuf,
        key: PathBuf,
        client_ca: Vec<PathBuf>,
        require_client_certificate: bool,
    ) -> EchoSettings {
        let verify_client = match (client_ca.is_empty(), require_client_certificate) {
            (true, _) => mtls_tls::VerifyClient::Off,
            (false, true) => mtls_tls::VerifyClient::On,
            (false, false) => mtls_tls::VerifyClient::Optional,
        };
        EchoSettings {
            tls: Some(ServerTlsSettings {
                certificate,
                key,
                key_password_file: None,
                client_ca,
                trusted_ca: Vec::new(),
                verify_client,
                crl: Vec::new(),
                // A test upstream accepts the gateway's certificate from an intermediate too;
                // the gateway's own default (1) is the place for strictness.
                verify_depth: 4,
                protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
                ciphers: None,
                prefer_server_ciphers: false,
                // Sessions on, so that the proxy's session reuse shows as `"resumed":true`.
                session_cache: Some(1000),
                session_timeout: Duration::from_secs(300),
                session_tickets: true,
                session_ticket_keys: Vec::new(),
                alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
                keylog: None,
            }),
        }
    }
}

impl EchoServer {
    /// Read the files the settings name.
    pub fn build(settings: &EchoSettings) -> Result<EchoServer, TlsError> {
        let tls = settings
            .tls
            .as_ref()
            .map(TlsServer::build)
            .transpose()?
            .map(Arc::new);
        Ok(EchoServer { tls })
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serve on `listener` until `shutdown` completes; then stop accepting and let requests
    /// in flight finish (for a few seconds at most). The gateway's own skeleton
    /// (`runtime`) runs it: the same accept, deadlines and drain.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let metrics = Metrics::new();
        let mut runtime = Runtime::new(metrics.clone());
        let echo = Echo {
            tls: self.tls,
            connections: AtomicU64::new(0),
            metrics,
        };
        runtime.listen(listener, Slots::new(MAX_CONNECTIONS, false), Arc::new(echo));
        runtime.run_until(shutdown, SHUTDOWN_TIMEOUT).await;
        Ok(())
    }
}

/// The echo server's listener.
#[derive(Debug)]
struct Echo {
    tls: Option<Arc<TlsServer>>,
    /// Connections accepted so far.
    connections: AtomicU64,
    /// The runtime's counters (deadlines closed, requests unparsed); not served anywhere.
    metrics: Arc<Metrics>,
}

impl Serve for Echo {
    async fn connection(self: Arc<Self>, tcp: CorkedIo, remote: SocketAddr, ticket: Ticket) {
        let id = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let new = |tls| Connection {
            id,
            remote,
            tls,
            requests: AtomicU64::new(0),
        };
        let registry = &ticket.registry;
        let Some(server) = &self.tls else {
            let activity = registry.add(Mode::Http1, TIMEOUTS);
            let requests = EchoRequests(Arc::new(new(None)));
            serve_http(
                tcp,
                requests,
                registry,
                activity,
                &self.metrics,
                remote,
                MAX_HEAD,
            )
            .await;
            return;
        };
        let handshake = async { ClientHello::read(tcp).await?.complete(server).await };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok((stream, info))) => {
                let mode = if info.alpn.as_deref() == Some(b"h2") {
                    Mode::Http2
                } else {
                    Mode::Http1
                };
                let activity = registry.add(mode, TIMEOUTS);
                let requests = EchoRequests(Arc::new(new(Some(info))));
                serve_http(
                    stream,
                    requests,
                    registry,
                    activity,
                    &self.metrics,
                    remote,
                    MAX_HEAD,
                )
                .await;
            }
            // A client that connects and leaves (a readiness probe) is not news.
            Ok(Err(e @ HandshakeError::Io(_))) => {
                tracing::debug!(
                    "echo-server: TLS handshake ended: client={remote} check={}: {e}",
                    e.check()
                );
            }
            Ok(Err(e)) => {
                tracing::warn!(
                    "echo-server: TLS handshake refused: client={remote} check={}: {e}",
                    e.check()
                );
            }
            Err(_) => tracing::warn!(
                "echo-server: TLS handshake refused: client={remote} check=handshake_timeout: \
                 no complete handshake within {HANDSHAKE_TIMEOUT:?}"
            ),
        }
    }
}

/// Each request of a connection, numbered in arrival order.
#[derive(Debug, Clone)]
struct EchoRequests(Arc<Connection>);

impl Handler for EchoRequests {
    type Body = Body;

    fn call(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send + use<> {
        let conn = self.0.clone();
        // Counted when the request arrives, so HTTP/2 streams are numbered in arrival order.
        let index = conn.requests.fetch_add(1, Ordering::Relaxed) + 1;
        async move { handle(&conn, index, request).await }
    }
}

/// The deadlines of an echo connection: generous, for tests that are slow on purpose
/// (`/sleep/MS` waits up to a minute).
const TIMEOUTS: Timeouts = Timeouts {
    client_header: Duration::from_secs(60),
    client_body: Duration::from_secs(60),
    send: Duration::from_secs(60),
    keepalive: Duration::from_secs(75),
};
/// The longest request head read.
const MAX_HEAD: usize = 64 * 1024;
/// At most this many connections at once.
const MAX_CONNECTIONS: usize = 10_000;
/// A client that connects and never finishes its handshake holds only its task this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for requests in flight.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `/sleep/MS` honoured, so a typo cannot park a test for hours.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// The chunk size of `/bytes/N`.
const CHUNK: usize = 64 * 1024;
/// `/bytes/N` byte i is `i % PATTERN_PERIOD`: a prime, so that a chunk boundary or a lost
/// or repeated block shows in the data.
const PATTERN_PERIOD: usize = 251;

/// What every request on one connection shares.
#[derive(Debug)]
struct Connection {
    /// 1 for the first connection accepted since start.
    id: u64,
    remote: SocketAddr,
    tls: Option<HandshakeInfo>,
    /// Requests seen so far on this connection.
    requests: AtomicU64,
}

/// What a request's path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Echo,
    Status(StatusCode),
    Sleep(Duration),
    Bytes(u64),
    Close,
    Invalid(String),
}

impl Route {
    fn parse(path: &str) -> Route {
        if let Some(code) = path.strip_prefix("/status/") {
            match code.parse::<u16>().ok().filter(|c| (200..=599).contains(c)) {
                Some(code) => StatusCode::from_u16(code).map_or(Route::Echo, Route::Status),
                None => Route::Invalid(format!(
                    "/status/ takes a status code from 200 to 599, not {code:?}"
                )),
            }
        } else if let Some(ms) = path.strip_prefix("/sleep/") {
            match ms.parse::<u64>() {
                Ok(ms) => Route::Sleep(Duration::from_millis(ms).min(MAX_SLEEP)),
                Err(_) => Route::Invalid(format!("/sleep/ takes milliseconds, not {ms:?}")),
            }
        } else if let Some(n) = path.strip_prefix("/bytes/") {
            match n.parse::<u64>() {
                Ok(n) => Route::Bytes(n),
                Err(_) => Route::Invalid(format!("/bytes/ takes a byte count, not {n:?}")),
            }
        } else if path == "/close" {
            Route::Close
        } else {
            Route::Echo
        }
    }
}

async fn handle(conn: &Connection, index: u64, mut request: Request<Incoming>) -> Response<Body> {
    if request.version() == Version::HTTP_11
        && let Some(protocol) = request.headers().get(UPGRADE).cloned()
    {
        return upgrade(&mut request, protocol);
    }
    let route = Route::parse(request.uri().path());
    let (head, incoming) = request.into_parts();
    let (body_bytes, body_fnv1a) = match read_body(incoming).await {
        Ok(digest) => digest,
        Err(e) => {
            // The client went away or sent a malformed body; hyper closes the connection.
            tracing::debug!("echo-server: reading the request body: {e}");
            return json(StatusCode::BAD_REQUEST, error_json(&e.to_string()));
        }
    };
    tracing::debug!(
        "echo-server: {} {} {:?} conn={} request={index} body_bytes={body_bytes}",
        head.method,
        head.uri,
        head.version,
        conn.id
    );
    let close = matches!(route, Route::Close);
    let status = match route {
        Route::Echo | Route::Close => StatusCode::OK,
        Route::Status(status) => status,
        Route::Sleep(duration) => {
            tokio::time::sleep(duration).await;
            StatusCode::OK
        }
        Route::Bytes(n) => return pattern_response(n),
        Route::Invalid(message) => return json(StatusCode::BAD_REQUEST, error_json(&message)),
    };
    let mut response = json(
        status,
        echo_json(conn, index, &head, body_bytes, body_fnv1a),
    );
    if close {
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// 101 with the client's Upgrade value, then a byte-for-byte echo on the upgraded
/// connection: enough for a proxy test to see that a tunnel carries data both ways.
fn upgrade(request: &mut Request<Incoming>, protocol: HeaderValue) -> Response<Body> {
    let on_upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
                if let Err(e) = tokio::io::copy(&mut reader, &mut writer).await {
                    tracing::debug!("echo-server: upgraded connection: {e}");
                }
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut writer).await;
            }
            Err(e) => tracing::debug!("echo-server: upgrade failed: {e}"),
        }
    });
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    response.headers_mut().insert(UPGRADE, protocol);
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    response
}

/// Count and hash the body as it streams in.
async fn read_body(mut incoming: Incoming) -> Result<(u64, u64), hyper::Error> {
    let mut length = 0u64;
    let mut hash = Fnv1a::new();
    while let Some(frame) = incoming.frame().await {
        if let Ok(data) = frame?.into_data() {
            length += data.len() as u64;
            hash.update(&data);
        }
    }
    Ok((length, hash.finish()))
}

fn json(status: StatusCode, text: String) -> Response<Body> {
    // These statuses must not carry content (RFC 9110 15.3.5, 15.3.6, 15.4.5).
    let content = matches!(
        status,
        StatusCode::NO_CONTENT | StatusCode::RESET_CONTENT | StatusCode::NOT_MODIFIED
    );
    let mut response = Response::new(if content {
        body::empty()
    } else {
        body::full(text)
    });
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error_json(message: &str) -> String {
    let mut out = String::from("{\"error\":");
    push_string(&mut out, message);
    out.push_str("}\n");
    out
}

fn echo_json(
    conn: &Connection,
    index: u64,
    head: &http::request::Parts,
    body_bytes: u64,
    body_fnv1a: u64,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("{\"method\":");
    push_string(&mut out, head.method.as_str());
    out.push_str(",\"path\":");
    push_string(&mut out, head.uri.path());
    out.push_str(",\"query\":");
    push_option(&mut out, head.uri.query());
    // HTTP/2 carries the host in :authority, which is not among the headers.
    out.push_str(",\"authority\":");
    push_option(&mut out, head.uri.authority().map(|a| a.as_str()));
    out.push_str(",\"version\":");
    push_string(&mut out, &format!("{:?}", head.version));
    out.push_str(",\"headers\":[");
    for (i, (name, value)) in head.headers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_string(&mut out, name.as_str());
        out.push(',');
        push_string(&mut out, &String::from_utf8_lossy(value.as_bytes()));
        out.push(']');
    }
    let _ = write!(
        out,
        "],\"body_bytes\":{body_bytes},\"body_fnv1a\":\"{body_fnv1a:016x}\",\"tls\":"
    );
    match &conn.tls {
        None => out.push_str("null,\"client_certificate\":null"),
        Some(info) => {
            out.push_str("{\"protocol\":");
            push_string(&mut out, info.protocol);
            out.push_str(",\"cipher\":");
            push_string(&mut out, info.cipher);
            let _ = write!(out, ",\"resumed\":{},\"sni\":", info.resumed);
            push_option(&mut out, info.server_name.as_deref());
            out.push_str(",\"alpn\":");
            let alpn = info.alpn.as_deref().map(String::from_utf8_lossy);
            push_option(&mut out, alpn.as_deref());
            out.push_str("},\"client_certificate\":{\"verify\":");
            push_string(&mut out, &info.verify.to_string());
            if let Some(peer) = &info.peer {
                for (key, value) in [
                    ("subject", &peer.subject),
                    ("issuer", &peer.issuer),
                    ("serial", &peer.serial),
                    ("fingerprint", &peer.fingerprint),
                ] {
                    let _ = write!(out, ",\"{key}\":");
                    push_string(&mut out, value);
                }
            }
            out.push('}');
        }
    }
    let _ = writeln!(
        out,
        ",\"connection\":{{\"id\":{},\"remote\":\"{}\",\"request\":{index}}}}}",
        conn.id, conn.remote
    );
    out
}

fn push_option(out: &mut String, value: Option<&str>) {
    match value {
        Some(value) => push_string(out, value),
        None => out.push_str("null"),
    }
}

/// Append `value` as a JSON string (RFC 8259 section 7).
fn push_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// 64-bit FNV-1a.
#[derive(Debug, Clone, Copy)]
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, data: &[u8]) {
        for &byte in data {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(self) -> u64 {
        self.0
    }
}

fn pattern_response(length: u64) -> Response<Body> {
    let mut response = Response::new(
        Pattern {
            offset: 0,
            remaining: length,
        }
        .boxed(),
    );
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

/// The `/bytes/N` body, made chunk by chunk as the client reads.
#[derive(Debug)]
struct Pattern {
    offset: u64,
    remaining: u64,
}

impl http_body::Body for Pattern {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        // One chunk-sized buffer of the pattern, plus a period so that a chunk can start at
        // any phase; every chunk is a cheap slice of it.
        static PATTERN: OnceLock<Bytes> = OnceLock::new();
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let pattern = PATTERN.get_or_init(|| {
            (0..CHUNK + PATTERN_PERIOD)
                .map(|i| (i % PATTERN_PERIOD) as u8)
                .collect::<Vec<u8>>()
                .into()
        });
        let length = usize::try_from(this.remaining).map_or(CHUNK, |r| r.min(CHUNK));
        // The remainder is below PATTERN_PERIOD, so the cast is exact.
        let phase = (this.offset % PATTERN_PERIOD as u64) as usize;
        this.offset += length as u64;
        this.remaining -= length as u64;
        Poll::Ready(Some(Ok(Frame::data(pattern.slice(phase..phase + length)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    use mtls_test_support::TestCa;

    use super::*;

    /// A running echo server; dropping it shuts the server down.
    struct Running {
        addr: SocketAddr,
        _stop: oneshot::Sender<()>,
    }

    async fn start(settings: EchoSettings) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(run(settings, listener, async move {
            let _ = stopped.await;
        }));
        Running { addr, _stop: stop }
    }

    /// A response read off a raw HTTP/1.1 connection.
    #[derive(Debug)]
    struct Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn text(&self) -> String {
            String::from_utf8(self.body.clone()).expect("a UTF-8 body")
        }
    }

    /// Send `request` and read one response (Content-Length framed, or a 101 head).
    async fn exchange(stream: &mut TcpStream, request: &[u8]) -> Answer {
        stream.write_all(request).await.expect("write");
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; CHUNK];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed before the head: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).expect("an ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code");
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').expect("name: value");
                (n.to_owned(), v.trim().to_owned())
            })
            .collect();
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        // These carry no content, and hyper sends no Content-Length with them.
        let length: usize = if matches!(status, 101 | 204 | 304) {
            0
        } else {
            answer
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .expect("a content-length")
        };
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed in the body");
            buf.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(buf.len(), head_end + length, "more bytes than the response");
        answer.body = buf[head_end..].to_vec();
        answer
    }

    async fn get(addr: SocketAddr, request: &[u8]) -> Answer {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        exchange(&mut stream, request).await
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        let hash = |data: &[u8]| {
            let mut h = Fnv1a::new();
            h.update(data);
            h.finish()
        };
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn strings_are_escaped_for_json() {
        let mut out = String::new();
        push_string(&mut out, "a\"b\\c\nd\te\u{1}f\u{7f}é\u{fffd}");
        assert_eq!(out, r#""a\"b\\c\nd\te\u0001f\u007fé�""#);
    }

    #[test]
    fn special_paths_parse() {
        assert_eq!(Route::parse("/"), Route::Echo);
        assert_eq!(
            Route::parse("/status/418"),
            Route::Status(StatusCode::IM_A_TEAPOT)
        );
        assert!(matches!(Route::parse("/status/99"), Route::Invalid(_)));
        assert!(matches!(Route::parse("/status/x"), Route::Invalid(_)));
        assert_eq!(
            Route::parse("/sleep/999999999"),
            Route::Sleep(Duration::from_secs(60))
        );
        assert_eq!(Route::parse("/bytes/7"), Route::Bytes(7));
    }

    #[tokio::test]
    async fn echoes_a_get_with_query_and_repeated_headers() {
        let server = start(EchoSettings::plain()).await;
        let answer = get(
            server.addr,
            b"GET /test_url?a=1&b=%22 HTTP/1.1\r\nHost: backend.internal\r\n\
             X-Client-Subject: CN=gw\r\nX-Repeat: one\r\nX-Repeat: two\r\n\
             X-Odd: \"quoted\" \\ \xff\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let text = answer.text();
        let expected_start = "{\"method\":\"GET\",\"path\":\"/test_url\",\"query\":\"a=1&b=%22\",\
            \"authority\":null,\"version\":\"HTTP/1.1\",\"headers\":[[\"host\",\"backend.internal\"],\
            [\"x-client-subject\",\"CN=gw\"],[\"x-repeat\",\"one\"],[\"x-repeat\",\"two\"],\
            [\"x-odd\",\"\\\"quoted\\\" \\\\ \u{fffd}\"],[\"connection\",\"close\"]],\
            \"body_bytes\":0,\"body_fnv1a\":\"cbf29ce484222325\",\"tls\":null,\
            \"client_certificate\":null,\"connection\":{\"id\":1,\"remote\":\"127.0.0.1:";
        assert!(text.starts_with(expected_start), "{text}");
        assert!(text.ends_with(",\"request\":1}}\n"), "{text}");
    }

    #[tokio::test]
    async fn hashes_a_posted_body_as_it_streams() {
        let server = start(EchoSettings::plain()).await;
        let body: Vec<u8> = (0..720_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut expected = Fnv1a::new();
        expected.update(&body);
        let mut request = format!(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let answer = exchange(&mut stream, &request).await;
        let text = answer.text();
        assert_eq!(answer.status, 200, "{text}");
        assert!(text.contains("\"method\":\"POST\""), "{text}");
        assert!(text.contains("\"body_bytes\":720000,"), "{text}");
        let fnv = format!("\"body_fnv1a\":\"{:016x}\"", expected.finish());
        assert!(text.contains(&fnv), "{text}");
    }

    #[tokio::test]
    async fn status_sleep_and_bytes_paths() {
        let server = start(EchoSettings::plain()).await;
        let answer = get(server.addr, b"GET /status/418 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(answer.status, 418);
        assert!(answer.text().contains("\"path\":\"/status/418\""));

        let answer = get(server.addr, b"GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!((answer.status, answer.body.len()), (204, 0));

        let answer = get(server.addr, b"GET /status/1 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(answer.status, 400);
        assert!(
            answer.text().starts_with("{\"error\":"),
            "{}",
            answer.text()
        );

        let started = Instant::now();
        let answer = get(server.addr, b"GET /sleep/150 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(answer.status, 200);
        assert!(started.elapsed() >= Duration::from_millis(150));

        let answer = get(
            server.addr,
            b"GET /bytes/100000 HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(answer.body.len(), 100_000);
        assert!(
            answer
                .body
                .iter()
                .enumerate()
                .all(|(i, &b)| usize::from(b) == i % 251)
        );
    }

    #[tokio::test]
    async fn counts_connections_and_requests_on_keep_alive() {
        let server = start(EchoSettings::plain()).await;
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let request = b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n";
        let first = exchange(&mut stream, request).await.text();
        let second = exchange(&mut stream, request).await.text();
        assert!(first.contains("{\"id\":1,"), "{first}");
        assert!(first.ends_with(",\"request\":1}}\n"), "{first}");
        assert!(second.contains("{\"id\":1,"), "{second}");
        assert!(second.ends_with(",\"request\":2}}\n"), "{second}");
        let third = get(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .text();
        assert!(third.contains("{\"id\":2,"), "{third}");
        assert!(third.ends_with(",\"request\":1}}\n"), "{third}");
    }

    #[tokio::test]
    async fn upgrade_echoes_raw_bytes() {
        let server = start(EchoSettings::plain()).await;
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let answer = exchange(
            &mut stream,
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .await;
        assert_eq!(answer.status, 101);
        assert_eq!(answer.header("upgrade"), Some("websocket"));
        for message in [&b"hello"[..], &[0u8, 255, 13, 10][..]] {
            stream.write_all(message).await.expect("write");
            let mut back = vec![0u8; message.len()];
            stream.read_exact(&mut back).await.expect("read the echo");
            assert_eq!(back, message);
        }
    }

    /// `curl ARGS URL` on the blocking pool, so the server keeps running: (exit code, stdout,
    /// stderr).
    async fn curl(args: Vec<String>) -> (i32, String, String) {
        tokio::task::spawn_blocking(move || {
            let out = Command::new(mtls_test_support::require_peer("curl"))
                .arg("-sS")
                .args(&args)
                .output()
                .expect("running curl");
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .await
        .expect("the curl task")
    }

    /// A TLS echo server for `backend.test` asking for certificates from the test CA, and
    /// curl's arguments to reach it.
    async fn tls_server(ca: &mut TestCa, require: bool) -> (Running, Vec<String>, String) {
        let issued = ca.server("backend.test", &["backend.test"]);
        let ca_cert = ca.ca.layout().ca_cert();
        let settings = EchoSettings::tls(
            issued.chain,
            issued.key.expect("a generated key"),
            vec![ca_cert.clone()],
            require,
        );
        let server = start(settings).await;
        let port = server.addr.port();
        let args = vec![
            "--cacert".into(),
            ca_cert.display().to_string(),
            "--resolve".into(),
            format!("backend.test:{port}:127.0.0.1"),
        ];
        (
            server,
            args,
            format!("https://backend.test:{port}/hello?x=1"),
        )
    }

    #[tokio::test]
    async fn tls_reports_the_verified_client_certificate() {
        let mut ca = TestCa::new();
        let client = ca.client("gw");
        let (_server, mut args, url) = tls_server(&mut ca, true).await;
        args.extend([
            "--cert".into(),
            client.cert.display().to_string(),
            "--key".into(),
            client.key.expect("a generated key").display().to_string(),
            url,
        ]);
        let (code, out, err) = curl(args).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("\"version\":\"HTTP/2.0\""), "{out}");
        assert!(out.contains("\"query\":\"x=1\""), "{out}");
        assert!(
            out.contains("\"sni\":\"backend.test\",\"alpn\":\"h2\"}"),
            "{out}"
        );
        assert!(
            out.contains("\"client_certificate\":{\"verify\":\"SUCCESS\",\"subject\":\"CN=gw\","),
            "{out}"
        );
        assert!(out.contains("\"fingerprint\":\""), "{out}");
    }

    #[tokio::test]
    async fn tls_optional_without_a_certificate_is_none() {
        let mut ca = TestCa::new();
        let (_server, mut args, url) = tls_server(&mut ca, false).await;
        args.extend(["--http1.1".into(), url]);
        let (code, out, err) = curl(args).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("\"version\":\"HTTP/1.1\""), "{out}");
        assert!(out.contains("\"alpn\":\"http/1.1\"}"), "{out}");
        assert!(out.contains("\"protocol\":\"TLSv1.3\""), "{out}");
        assert!(
            out.contains("\"client_certificate\":{\"verify\":\"NONE\"},"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn tls_required_without_a_certificate_is_refused() {
        let mut ca = TestCa::new();
        let (_server, mut args, url) = tls_server(&mut ca, true).await;
        args.push(url);
        let (code, out, _) = curl(args).await;
        assert_ne!(code, 0, "{out}");
    }
}

//! `mtls get`: one HTTPS request, made by hand so that every phase can be timed and every
//! handshake byte kept.
//!
//! A pooled client (hyper-util's legacy `Client`) hides where time goes, so each hop is
//! built from its parts, seed 004's walk through a request:
//!
//! ```text
//!   lookup_host ─► TcpStream::connect ─► Recording ─► ProbeClient::connect (TLS)
//!     (DNS)           (TCP)           (notes bytes)       (TLS handshake)
//!   ─► hyper::client::conn::http1 or http2 ─► send_request ─► headers ─► body
//!        (request sent: last write)          (server processing)  (content transfer)
//! ```
//!
//! The phases are consecutive segments of one monotonic clock, so they are never negative
//! and add up to the total. With `-L` a redirect makes a new hop: a new connection,
//! resolved again (the host may differ), through the same [`ProbeClient`], so a TLS
//! session may resume. After each hop, with `--trace`, the recorded bytes go through
//! `mtls-inspect`'s dissector with the key log rustls gave us.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE, HOST, LOCATION};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::{Serialize, Serializer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use mtls_inspect::{Dissector, Event, KeyLog};
use mtls_pki::show::CertInfo;
use mtls_tls::TlsError;
use mtls_tls::probe::{ProbeClient, ProbeError, ProbeInfo, Verification};

use crate::record::{Recording, Tape};
use crate::request::{GetRequest, HttpChoice, MAX_REDIRECTS, Scheme, Target};

/// Told about the exchange as it happens, so output keeps curl's order: each response's
/// head before its body, the body streamed rather than held.
pub trait Observer {
    /// A hop's response head arrived (redirects included), before its body is read.
    fn head(&mut self, hop: &Hop);
    /// A piece of the final response's body.
    fn body(&mut self, chunk: &[u8]) -> io::Result<()>;
}

/// Everything that happened: every hop (one per redirect followed), and the error that
/// ended it early, if one did.
#[derive(Debug)]
pub struct Report {
    /// The hops, in order; the last one is the answer (or where it failed).
    pub hops: Vec<Hop>,
    /// Why it stopped before a complete answer.
    pub error: Option<GetError>,
}

/// One connection and one request on it.
#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    /// The URL asked for.
    pub url: String,
    /// The address connected to.
    pub address: Option<SocketAddr>,
    /// What the TLS handshake showed (`None` for `http://` or before it finished).
    pub tls: Option<TlsSummary>,
    /// The request as sent.
    pub request: Option<RequestHead>,
    /// The response head, once it arrived.
    pub response: Option<ResponseHead>,
    /// How long each phase took.
    pub timing: Timing,
    /// With `--trace`: every record and handshake message, both directions, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Vec<TraceEntry>>,
}

/// The handshake, for `-v` and `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct TlsSummary {
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: String,
    /// The cipher suite (OpenSSL's name).
    pub cipher: String,
    /// The key-exchange group.
    pub group: Option<String>,
    /// The ALPN protocol agreed.
    pub alpn: Option<String>,
    /// Whether a session was resumed.
    pub resumed: bool,
    /// The server's chain as sent, leaf first.
    pub chain: Vec<CertInfo>,
    /// How the chain was checked.
    pub verification: VerificationSummary,
    /// Whether the server sent a CertificateRequest.
    pub client_certificate_requested: bool,
    /// The CA names in it.
    pub acceptable_cas: Vec<String>,
    /// The certificate we sent, if any.
    pub sent_certificate: Option<SentCertificate>,
}

/// The verification result in one sentence.
#[derive(Debug, Clone, Serialize)]
pub struct VerificationSummary {
    /// Whether the certificate was verified and trusted.
    pub verified: bool,
    /// What was checked, or why not.
    pub detail: String,
}

/// Our certificate as we sent it.
#[derive(Debug, Clone, Serialize)]
pub struct SentCertificate {
    /// Subject DN.
    pub subject: String,
    /// Serial, upper-case hex.
    pub serial: String,
}

/// A request head as sent.
#[derive(Debug, Clone, Serialize)]
pub struct RequestHead {
    /// The method.
    pub method: String,
    /// The request target (a path for HTTP/1.1, the URL for HTTP/2).
    pub target: String,
    /// `HTTP/1.1` or `HTTP/2`.
    pub version: String,
    /// Headers in order, as sent by us (hyper adds none that matter here).
    pub headers: Vec<(String, String)>,
    /// The body's length.
    pub body_bytes: usize,
}

/// A response head.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// Its reason phrase.
    pub reason: String,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`.
    pub version: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The body's length, once read.
    pub body_bytes: u64,
}

/// The phases of a hop: consecutive, so they add up to `total`. `None` for a phase not
/// reached (the hop failed first).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timing {
    /// Name resolution (zero with `--resolve` or an IP address).
    #[serde(rename = "dns_ms", serialize_with = "opt_ms")]
    pub dns: Option<Duration>,
    /// The TCP three-way handshake.
    #[serde(rename = "tcp_ms", serialize_with = "opt_ms")]
    pub tcp: Option<Duration>,
    /// The TLS handshake (zero for `http://`).
    #[serde(rename = "tls_ms", serialize_with = "opt_ms")]
    pub tls: Option<Duration>,
    /// From the handshake to the last byte of the request written.
    #[serde(rename = "request_ms", serialize_with = "opt_ms")]
    pub request: Option<Duration>,
    /// Server processing: from the request sent to the response head received (TTFB).
    #[serde(rename = "ttfb_ms", serialize_with = "opt_ms")]
    pub ttfb: Option<Duration>,
    /// Content transfer: reading the body.
    #[serde(rename = "transfer_ms", serialize_with = "opt_ms")]
    pub transfer: Option<Duration>,
    /// From the start of the hop to the end of the body (or to the failure).
    #[serde(rename = "total_ms", serialize_with = "ms")]
    pub total: Duration,
}

/// One item of a trace.
#[derive(Debug, Clone, Serialize)]
pub struct TraceEntry {
    /// Milliseconds since the hop started, when the bytes that completed it crossed.
    pub at_ms: f64,
    /// What the dissector found.
    pub event: Event,
}

/// Where in a hop something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Name resolution.
    Dns,
    /// The TCP connect.
    Tcp,
    /// The TLS handshake.
    Tls,
    /// Writing the request.
    Request,
    /// Waiting for the response head.
    Response,
    /// Reading the body.
    Body,
}

/// Why `mtls get` failed: one sentence saying why and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// A file or flag of the TLS settings cannot be used.
    #[error("{0}")]
    Setup(TlsError),
    /// DNS failed.
    #[error("cannot resolve {host}: {message}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's complaint.
        message: String,
    },
    /// Nothing listens at the address.
    #[error(
        "connection refused by {addr}: nothing is listening there (is the server running, and \
         on this port?)"
    )]
    Refused {
        /// The address.
        addr: SocketAddr,
    },
    /// TCP failed otherwise.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// A time limit passed.
    #[error("timed out during {phase} (the {flag} of {} passed)", human(*.limit))]
    Timeout {
        /// Where it was.
        phase: Phase,
        /// `--connect-timeout` or `--max-time`.
        flag: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// The TLS handshake (or a TLS alert after it) failed.
    #[error(transparent)]
    Tls(ProbeError),
    /// `--http2` and the server did not choose it.
    #[error(
        "the server did not agree to HTTP/2 (its ALPN answer: {}); leave out --http2 to let it \
         choose",
        .alpn.as_deref().unwrap_or("none")
    )]
    NoHttp2 {
        /// The protocol it chose, if any.
        alpn: Option<String>,
    },
    /// HTTP failed.
    #[error("HTTP failed while {phase}: {message}")]
    Http {
        /// Where.
        phase: Phase,
        /// hyper's words, with their causes.
        message: String,
    },
    /// `-L` went round too long.
    #[error("too many redirects (more than {MAX_REDIRECTS}); the last pointed to {url}")]
    TooManyRedirects {
        /// Where the last one pointed.
        url: String,
    },
    /// A redirect's `Location` cannot be followed.
    #[error("cannot follow the redirect to {location:?}: {message}")]
    BadRedirect {
        /// The header's value.
        location: String,
        /// Why.
        message: String,
    },
    /// Writing the body failed.
    #[error("cannot write the body: {0}")]
    Output(io::Error),
}

impl GetError {
    /// A short stable name of what failed, for `--json`: the TLS checks of
    /// [`ProbeError::check`], or `resolve`, `refused`, `connect`, `timeout`, `no_http2`,
    /// `http`, `redirects`, `output`, `setup`.
    pub fn check(&self) -> &'static str {
        match self {
            GetError::Setup(_) => "setup",
            GetError::Resolve { .. } => "resolve",
            GetError::Refused { .. } => "refused",
            GetError::Connect { .. } => "connect",
            GetError::Timeout { .. } => "timeout",
            GetError::Tls(e) => e.check(),
            GetError::NoHttp2 { .. } => "no_http2",
            GetError::Http { .. } => "http",
            GetError::TooManyRedirects { .. } | GetError::BadRedirect { .. } => "redirects",
            GetError::Output(_) => "output",
        }
    }
}

/// Make the request, following redirects when asked; never panics on what a peer sends.
pub async fn get(request: &GetRequest, observer: &mut dyn Observer) -> Report {
    let started = Instant::now();
    let mut run = Run {
        request,
        probe: None,
        max_time: request.max_time.map(|limit| (started + limit, limit)),
        observer,
    };
    let mut report = Report {
        hops: Vec::new(),
        error: None,
    };
    let mut step = Step {
        target: request.target.clone(),
        method: request.method.clone(),
        body: request.body.clone(),
        headers: request.headers.clone(),
    };
    let mut redirects = 0;
    loop {
        let mut hop = Hop::new(step.target.url());
        let result = run.hop(&step, &mut hop).await;
        let status = hop.response.as_ref().map(|r| r.status);
        report.hops.push(hop);
        match result {
            Ok(None) => break,
            Ok(Some(next)) if redirects == MAX_REDIRECTS => {
                report.error = Some(GetError::TooManyRedirects { url: next.url() });
                break;
            }
            Ok(Some(next)) => {
                redirects += 1;
                step = step.redirect(status.unwrap_or(302), next);
            }
            Err(error) => {
                report.error = Some(error);
                break;
            }
        }
    }
    report
}

/// What one hop asks for.
#[derive(Debug, Clone)]
struct Step {
    target: Target,
    method: Method,
    body: Option<Bytes>,
    headers: Vec<(http::HeaderName, Option<HeaderValue>)>,
}

impl Step {
    /// The next request after a redirect, as curl does it: 303 (and 301/302 after a POST)
    /// becomes a GET without body; credentials are not carried to another host.
    fn redirect(self, status: u16, target: Target) -> Step {
        let to_get = status == 303 && self.method != Method::HEAD
            || (status == 301 || status == 302) && self.method == Method::POST;
        let (method, body) = if to_get {
            (Method::GET, None)
        } else {
            (self.method, self.body)
        };
        let mut headers = self.headers;
        if target.host != self.target.host {
            headers.retain(|(name, _)| name != AUTHORIZATION && name != COOKIE);
        }
        Step {
            target,
            method,
            body,
            headers,
        }
    }
}

struct Run<'a> {
    request: &'a GetRequest,
    probe: Option<ProbeClient>,
    max_time: Option<(Instant, Duration)>,
    observer: &'a mut dyn Observer,
}

/// The clock of one hop: each `lap` is the time since the previous one.
struct Clock {
    start: Instant,
    last: Instant,
}

impl Clock {
    fn new() -> Clock {
        let now = Instant::now();
        Clock {
            start: now,
            last: now,
        }
    }

    fn lap(&mut self, at: Instant) -> Duration {
        let at = at.max(self.last);
        let lap = at - self.last;
        self.last = at;
        lap
    }

    fn total(&self) -> Duration {
        self.last - self.start
    }
}

/// hyper's executor for an HTTP/2 connection, keeping what it spawns. hyper drives the h2
/// connection in a task of its own, which sends GOAWAY and shuts the TLS stream down (our
/// close_notify) once the sender is dropped; `mtls get`'s runtime runs tasks only while a
/// hop is awaited, so a hop that did not wait for that task would end without either.
#[derive(Debug, Clone, Default)]
struct Tasks(Arc<Mutex<Vec<JoinHandle<()>>>>);

impl Tasks {
    /// Wait for every task spawned so far.
    async fn finish(&self) {
        let spawned = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for task in spawned {
            let _ = task.await;
        }
    }
}

impl<F> hyper::rt::Executor<F> for Tasks
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        let task = tokio::spawn(async move {
            future.await;
        });
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(task);
    }
}

/// The HTTP connection of a hop, whichever version it speaks.
enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(&mut self, request: Request<Full<Bytes>>) -> hyper::Result<Response<Incoming>> {
        match self {
            Sender::Http1(sender) => sender.send_request(request).await,
            Sender::Http2(sender) => sender.send_request(request).await,
        }
    }
}

/// The TLS stream under hyper, keeping the first TLS error a read or write met. In TLS 1.3
/// the server's verdict on our certificate (`certificate_required`, `unknown_ca`, or a
/// close when we sent none) arrives as the first read fails, and hyper (h2 in particular)
/// reports it without its cause.
struct Watched<IO> {
    inner: IO,
    watch: Arc<TlsWatch>,
}

/// What [`Watched`] keeps, and what it needs to put a TLS error in words.
struct TlsWatch {
    probe: ProbeClient,
    info: ProbeInfo,
    first: Mutex<Option<ProbeError>>,
    /// The response head arrived: from then on a close is not a refusal.
    answered: AtomicBool,
}

impl Run<'_> {
    /// One connection, one request. Returns where to go next for a redirect to follow.
    async fn hop(&mut self, step: &Step, hop: &mut Hop) -> Result<Option<Target>, GetError> {
        // Building the client (certificate files, the rustls config, seeding the random
        // generator) is not part of any phase: done before the clock, so that the TLS
        // phase starts with the ClientHello.
        if step.target.scheme == Scheme::Https && self.probe.is_none() {
            let probe = ProbeClient::build(&self.request.tls).map_err(GetError::Setup)?;
            self.probe = Some(probe);
        }
        let mut clock = Clock::new();
        let connect_deadline = self
            .request
            .connect_timeout
            .map(|limit| (clock.start + limit, limit));
        let target = &step.target;

        let addrs = self
            .within(Phase::Dns, connect_deadline, self.lookup(target))
            .await??;
        hop.timing.dns = Some(clock.lap(Instant::now()));

        let (tcp, addr) = self
            .within(Phase::Tcp, connect_deadline, connect_any(&addrs))
            .await??;
        hop.address = Some(addr);
        // Requests are small and written at once; Nagle would only delay them.
        let _ = tcp.set_nodelay(true);
        hop.timing.tcp = Some(clock.lap(Instant::now()));
        hop.timing.total = clock.total();

        let tape = Tape::new(self.request.trace);
        let io = Recording::new(tcp, tape.clone());
        let result = self
            .over_tcp(io, step, hop, &mut clock, connect_deadline, &tape)
            .await;
        if result.is_err() {
            hop.timing.total = Instant::now() - clock.start;
        }
        if self.request.trace {
            hop.trace = Some(self.trace(&tape, clock.start));
        }
        result
    }

    async fn over_tcp(
        &mut self,
        io: Recording<TcpStream>,
        step: &Step,
        hop: &mut Hop,
        clock: &mut Clock,
        connect_deadline: Option<(Instant, Duration)>,
        tape: &Tape,
    ) -> Result<Option<Target>, GetError> {
        let target = &step.target;
        if target.scheme == Scheme::Http {
            hop.timing.tls = Some(clock.lap(Instant::now()));
            let h2 = self.request.http == HttpChoice::Http2;
            return self.http(io, h2, None, step, hop, clock, tape).await;
        }
        let probe = match &self.probe {
            Some(probe) => probe.clone(),
            None => ProbeClient::build(&self.request.tls).map_err(GetError::Setup)?,
        };
        let (stream, info) = self
            .within(
                Phase::Tls,
                connect_deadline,
                probe.connect(io, &target.host),
            )
            .await?
            .map_err(GetError::Tls)?;
        hop.timing.tls = Some(clock.lap(Instant::now()));
        hop.timing.total = clock.total();
        hop.tls = Some(TlsSummary::new(
            &info,
            &target.host,
            self.request.tls.insecure,
        ));
        let h2 = info.alpn.as_deref() == Some("h2");
        if self.request.http == HttpChoice::Http2 && !h2 {
            return Err(GetError::NoHttp2 {
                alpn: info.alpn.clone(),
            });
        }
        let watch = Arc::new(TlsWatch {
            probe,
            info,
            first: Mutex::new(None),
            answered: AtomicBool::new(false),
        });
        let stream = Watched {
            inner: stream,
            watch: watch.clone(),
        };
        self.http(stream, h2, Some(&watch), step, hop, clock, tape)
            .await
    }

    #[allow(clippy::too_many_arguments)] // one hop's state, passed down once
    async fn http<IO>(
        &mut self,
        io: IO,
        h2: bool,
        tls: Option<&Arc<TlsWatch>>,
        step: &Step,
        hop: &mut Hop,
        clock: &mut Clock,
        tape: &Tape,
    ) -> Result<Option<Target>, GetError>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let request = build_request(step, h2)?;
        hop.request = Some(RequestHead::of(
            &request,
            step.body.as_ref().map_or(0, Bytes::len),
        ));
        let io = TokioIo::new(io);
        let tasks = Tasks::default();
        let (mut sender, connection): (Sender, JoinHandle<hyper::Result<()>>) = if h2 {
            let (sender, conn) = hyper::client::conn::http2::handshake(tasks.clone(), io)
                .await
                .map_err(|e| http_failure(Phase::Request, &e))?;
            (Sender::Http2(sender), tokio::spawn(conn))
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| http_failure(Phase::Request, &e))?;
            (Sender::Http1(sender), tokio::spawn(conn))
        };

        let response = match self
            .within(Phase::Response, None, sender.send(request))
            .await?
        {
            Ok(response) => response,
            Err(error) => return Err(stream_failure(Phase::Response, &error, tls)),
        };
        let headers_at = Instant::now();
        if let Some(watch) = tls {
            watch.answered.store(true, Ordering::Relaxed);
        }
        // The request is sent when its last byte is written, which hyper does not report:
        // the socket's last write before the head arrived tells.
        let sent_at = tape
            .last_write()
            .unwrap_or(headers_at)
            .clamp(clock.last, headers_at);
        hop.timing.request = Some(clock.lap(sent_at));
        hop.timing.ttfb = Some(clock.lap(headers_at));
        hop.timing.total = clock.total();
        hop.response = Some(ResponseHead::of(&response));

        let next = self.redirect_target(&step.target, &response)?;
        self.observer.head(hop);

        let mut body = response.into_body();
        let mut length = 0u64;
        loop {
            let frame = match self.within(Phase::Body, None, body.frame()).await? {
                None => break,
                Some(Ok(frame)) => frame,
                Some(Err(error)) => {
                    return Err(stream_failure(Phase::Body, &error, tls));
                }
            };
            if let Ok(data) = frame.into_data() {
                length += data.len() as u64;
                if next.is_none() {
                    self.observer.body(&data).map_err(GetError::Output)?;
                }
            }
        }
        hop.timing.transfer = Some(clock.lap(Instant::now()));
        hop.timing.total = clock.total();
        if let Some(response) = &mut hop.response {
            response.body_bytes = length;
        }
        // Close politely, as curl does (HTTP/2's GOAWAY, then close_notify, so the trace
        // shows the end), without waiting long. Once the sender is gone hyper's connection
        // shuts the stream down: HTTP/1.1 in `connection`, HTTP/2 in the task it spawned.
        // The body (an h2 stream) holds the connection open too.
        drop(body);
        drop(sender);
        let closing = async {
            let _ = connection.await;
            tasks.finish().await;
        };
        let _ = tokio::time::timeout(Duration::from_millis(500), closing).await;
        Ok(next)
    }

    /// With `-L`, where a redirect response points.
    fn redirect_target(
        &self,
        current: &Target,
        response: &Response<Incoming>,
    ) -> Result<Option<Target>, GetError> {
        let status = response.status();
        if !self.request.follow_redirects || !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
        {
            return Ok(None);
        }
        let Some(location) = response.headers().get(LOCATION) else {
            return Ok(None);
        };
        let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
        current
            .join(&location)
            .map(Some)
            .map_err(|message| GetError::BadRedirect { location, message })
    }

    /// `--resolve`, an IP address, or DNS.
    async fn lookup(&self, target: &Target) -> Result<Vec<SocketAddr>, GetError> {
        if let Some(fixed) = self
            .request
            .resolve
            .iter()
            .find(|r| r.host == target.host && r.port == target.port)
        {
            return Ok(vec![fixed.socket_addr()]);
        }
        if let Ok(ip) = target.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, target.port)]);
        }
        let resolve_error = |message: String| GetError::Resolve {
            host: target.host.clone(),
            message,
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| resolve_error(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(resolve_error("no addresses".into()));
        }
        Ok(addrs)
    }

    /// Run `future` within the hop's connect limit (when given) and `--max-time`.
    async fn within<F: Future>(
        &self,
        phase: Phase,
        connect: Option<(Instant, Duration)>,
        future: F,
    ) -> Result<F::Output, GetError> {
        let limits = [
            connect.map(|(at, limit)| (at, limit, "--connect-timeout")),
            self.max_time.map(|(at, limit)| (at, limit, "--max-time")),
        ];
        match limits.into_iter().flatten().min_by_key(|(at, _, _)| *at) {
            None => Ok(future.await),
            Some((at, limit, flag)) => tokio::time::timeout_at(at.into(), future)
                .await
                .map_err(|_| GetError::Timeout { phase, flag, limit }),
        }
    }

    /// The dissector's reading of the recorded bytes.
    fn trace(&self, tape: &Tape, start: Instant) -> Vec<TraceEntry> {
        let mut keylog = KeyLog::empty();
        for line in self.probe.iter().flat_map(ProbeClient::key_log_lines) {
            if let Err(e) = keylog.push_line(&line) {
                tracing::debug!("key log line not taken by the dissector: {e}");
            }
        }
        let mut dissector = Dissector::new(keylog);
        let mut entries = Vec::new();
        for chunk in tape.chunks() {
            let at_ms = millis(chunk.at.saturating_duration_since(start));
            for event in dissector.feed(chunk.direction, &chunk.bytes) {
                entries.push(TraceEntry { at_ms, event });
            }
        }
        entries
    }
}

impl Hop {
    fn new(url: String) -> Hop {
        Hop {
            url,
            address: None,
            tls: None,
            request: None,
            response: None,
            timing: Timing::default(),
            trace: None,
        }
    }
}

impl TlsSummary {
    fn new(info: &ProbeInfo, host: &str, insecure: bool) -> TlsSummary {
        let now = time::OffsetDateTime::now_utc();
        let chain = info
            .peer_chain
            .iter()
            .filter_map(|der| mtls_pki::show::describe_certificate(der, now).ok())
            .collect();
        let verification = match &info.verification {
            Verification::Verified {
                anchor,
                by_common_name,
            } => {
                let anchor = anchor.as_deref().unwrap_or("a CA");
                let name = if *by_common_name {
                    format!("{host} matches its subject CN (it has no subjectAltName)")
                } else {
                    format!("it is valid for {host}")
                };
                VerificationSummary {
                    verified: true,
                    detail: format!("verified: the chain ends at {anchor} from --ca, and {name}"),
                }
            }
            Verification::Resumed => VerificationSummary {
                verified: !insecure,
                detail: if insecure {
                    "NOT verified (--insecure): the session was resumed".into()
                } else {
                    "verified earlier: the session was resumed from a handshake that verified it"
                        .into()
                },
            },
            Verification::Skipped { against_ca } => VerificationSummary {
                verified: false,
                detail: match against_ca {
                    None => "NOT verified (--insecure, and no --ca to check against)".into(),
                    Some(Ok(())) => {
                        "NOT enforced (--insecure), but it does verify against --ca".into()
                    }
                    Some(Err(reason)) => {
                        format!("NOT verified (--insecure); against --ca it fails: {reason}")
                    }
                },
            },
        };
        TlsSummary {
            protocol: info.protocol.to_owned(),
            cipher: info.cipher.to_owned(),
            group: info.key_exchange_group.clone(),
            alpn: info.alpn.clone(),
            resumed: info.resumed,
            chain,
            verification,
            client_certificate_requested: info.certificate_requested.is_some(),
            acceptable_cas: info.certificate_requested.clone().unwrap_or_default(),
            sent_certificate: info.sent_certificate.as_ref().map(|c| SentCertificate {
                subject: c.subject.clone(),
                serial: c.serial.clone(),
            }),
        }
    }
}

impl RequestHead {
    fn of(request: &Request<Full<Bytes>>, body_bytes: usize) -> RequestHead {
        RequestHead {
            method: request.method().to_string(),
            target: request.uri().to_string(),
            version: version_name(request.version()).to_owned(),
            headers: header_list(request.headers()),
            body_bytes,
        }
    }
}

impl ResponseHead {
    fn of(response: &Response<Incoming>) -> ResponseHead {
        let status = response.status();
        ResponseHead {
            status: status.as_u16(),
            // HTTP/1 keeps the server's own words (hyper stores them only when they differ
            // from the canonical ones); HTTP/2 has none.
            reason: response
                .extensions()
                .get::<hyper::ext::ReasonPhrase>()
                .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
            version: version_name(response.version()).to_owned(),
            headers: header_list(response.headers()),
            body_bytes: 0,
        }
    }
}

impl Timing {
    /// The phases in order with their names (`None`: not reached).
    pub fn phases(&self) -> [(&'static str, Option<Duration>); 6] {
        [
            ("DNS lookup", self.dns),
            ("TCP connect", self.tcp),
            ("TLS handshake", self.tls),
            ("Request sent", self.request),
            ("Server processing", self.ttfb),
            ("Content transfer", self.transfer),
        ]
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Dns => "DNS lookup",
            Phase::Tcp => "TCP connect",
            Phase::Tls => "TLS handshake",
            Phase::Request => "sending the request",
            Phase::Response => "waiting for the response",
            Phase::Body => "reading the body",
        })
    }
}

/// The request of a step: origin-form with a Host header for HTTP/1.1, the whole URL (its
/// authority becomes `:authority`) for HTTP/2. Defaults first, then `-H`, as curl.
fn build_request(step: &Step, h2: bool) -> Result<Request<Full<Bytes>>, GetError> {
    let bad = |e: http::Error| GetError::Http {
        phase: Phase::Request,
        message: e.to_string(),
    };
    let authority = step.target.authority();
    let mut headers = crate::request::request_headers(
        &authority,
        concat!("mtls/", env!("CARGO_PKG_VERSION")),
        step.body.as_ref(),
        &step.headers,
    );
    let scheme = match step.target.scheme {
        Scheme::Https => "https",
        Scheme::Http => "http",
    };
    let (uri, version) = if h2 {
        // HTTP/2 carries the host in :authority; a Host header would be sent twice.
        let authority = headers
            .remove(HOST)
            .and_then(|h| h.to_str().ok().map(str::to_owned))
            .unwrap_or(authority);
        let uri = format!("{scheme}://{authority}{}", step.target.path_and_query);
        (uri, Version::HTTP_2)
    } else {
        (step.target.path_and_query.clone(), Version::HTTP_11)
    };
    let mut builder = Request::builder()
        .method(step.method.clone())
        .uri(uri)
        .version(version);
    if let Some(map) = builder.headers_mut() {
        *map = headers;
    }
    builder
        .body(Full::new(step.body.clone().unwrap_or_default()))
        .map_err(bad)
}

/// Try each address in turn; the first error names its address.
async fn connect_any(addrs: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), GetError> {
    let mut first_error = None;
    for &addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok((stream, addr)),
            Err(error) => {
                first_error.get_or_insert((addr, error));
            }
        }
    }
    Err(match first_error {
        Some((addr, error)) if error.kind() == io::ErrorKind::ConnectionRefused => {
            GetError::Refused { addr }
        }
        Some((addr, source)) => GetError::Connect { addr, source },
        None => GetError::Resolve {
            host: "the host".into(),
            message: "no addresses".into(),
        },
    })
}

/// An HTTP error after the handshake, in the TLS words when a TLS error caused it.
fn stream_failure(phase: Phase, error: &hyper::Error, tls: Option<&Arc<TlsWatch>>) -> GetError {
    match tls.and_then(|watch| watch.take()) {
        Some(found) => GetError::Tls(found),
        None => http_failure(phase, error),
    }
}

fn http_failure(phase: Phase, error: &hyper::Error) -> GetError {
    let message = mtls_tls::cause::describe(error);
    GetError::Http { phase, message }
}

impl TlsWatch {
    fn check(&self, error: &io::Error) {
        let answered = self.answered.load(Ordering::Relaxed);
        if let Some(found) = self.probe.stream_error(&self.info, error, answered) {
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert(found);
        }
    }

    fn take(&self) -> Option<ProbeError> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl<IO> Watched<IO> {
    fn watch<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(error)) = &poll {
            self.watch.check(error);
        }
        poll
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.watch(poll)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(poll)
    }
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
}

/// Milliseconds with three decimals (microseconds), as JSON shows them.
pub fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// "1s", "500ms", "1.5s".
fn human(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

fn ms<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(millis(*duration))
}

fn opt_ms<S: Serializer>(duration: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match duration {
        Some(d) => serializer.serialize_f64(millis(*d)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_laps_are_consecutive_and_never_negative() {
        let mut clock = Clock::new();
        let start = clock.start;
        let a = clock.lap(start + Duration::from_millis(3));
        // An instant before the last lap (a clamped mark) counts as zero.
        let b = clock.lap(start + Duration::from_millis(1));
        let c = clock.lap(start + Duration::from_millis(10));
        assert_eq!(a + b + c, clock.total());
        assert_eq!(b, Duration::ZERO);
        assert_eq!(clock.total(), Duration::from_millis(10));
    }

    #[test]
    fn redirects_change_method_like_curl() {
        let step = Step {
            target: Target::parse("https://a.test/x").expect("url"),
            method: Method::POST,
            body: Some(Bytes::from_static(b"d")),
            headers: vec![(AUTHORIZATION, HeaderValue::from_str("Bearer t").ok())],
        };
        let same_host = step
            .clone()
            .redirect(307, Target::parse("https://a.test/y").expect("url"));
        assert_eq!(same_host.method, Method::POST);
        assert!(same_host.body.is_some());
        assert_eq!(same_host.headers.len(), 1);
        let other = step.redirect(303, Target::parse("https://b.test/").expect("url"));
        assert_eq!(other.method, Method::GET);
        assert!(other.body.is_none());
        assert!(other.headers.is_empty(), "credentials stay with their host");
    }

    #[test]
    fn requests_per_version() {
        let step = Step {
            target: Target::parse("https://a.test:8443/p?q").expect("url"),
            method: Method::GET,
            body: None,
            headers: vec![
                (http::header::USER_AGENT, None),
                (
                    http::HeaderName::from_static("x-a"),
                    HeaderValue::from_str("1").ok(),
                ),
            ],
        };
        let h1 = build_request(&step, false).expect("h1");
        assert_eq!(h1.uri(), "/p?q");
        assert_eq!(h1.headers()[HOST], "a.test:8443");
        assert!(h1.headers().get(http::header::USER_AGENT).is_none());
        assert_eq!(h1.headers()["x-a"], "1");
        let h2 = build_request(&step, true).expect("h2");
        assert_eq!(h2.uri(), "https://a.test:8443/p?q");
        assert!(h2.headers().get(HOST).is_none());
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(human(Duration::from_secs(1)), "1s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(millis(Duration::from_micros(1234)), 1.234);
    }
}

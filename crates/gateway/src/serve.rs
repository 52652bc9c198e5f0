//! The accept loop and the connection lifecycle: TCP accept -> (TLS: ClientHello, pick the
//! virtual host by SNI, finish the handshake or log why not) -> HTTP/2 with hyper (ALPN
//! `h2`), or HTTP/1.1 with hyper in [`crate::keepalive`]'s loop, which releases the
//! buffers of idle connections -> graceful shutdown.
//!
//! Shutdown is ours rather than hyper-util's `GracefulShutdown` (whose connection trait is
//! sealed, and the keep-alive loop is not one of hyper's connections): a `watch` turns
//! true, each connection finishes what is in flight, and `run` waits until the last task
//! has dropped its `mpsc` sender.
//!
//! One task per connection; nothing is shared between connections but the read-only
//! [`Site`] and the access-log channel, so a peer that sends garbage or nothing at all costs
//! only its own task (bounded by the handshake timeout).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use mtls_tls::{ClientHello, HandshakeError, HandshakeInfo};

use crate::access_log::AccessLogger;
use crate::activity::{Activity, Counted, InFlight, Mode, Registry, Watched, close_expired};
use crate::body::Body;
use crate::config::Timeouts;
use crate::handler;
use crate::keepalive;
use crate::limits::{self, Throttle};
use crate::metrics::Metrics;
use crate::site::Site;

/// What one connection knows while it serves requests.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) site: Arc<Site>,
    pub(crate) listener: usize,
    pub(crate) remote: SocketAddr,
    /// The host picked by SNI (TLS) — `None` for plain HTTP, where Host decides per request.
    pub(crate) sni_host: Option<usize>,
    pub(crate) tls: Option<HandshakeInfo>,
    pub(crate) log: AccessLogger,
    pub(crate) metrics: Arc<Metrics>,
    /// The client-identity and forwarding header values, made at the first proxied
    /// request and reused: neither can change during a connection.
    pub(crate) identity: std::sync::OnceLock<crate::proxy::IdentityValues>,
}

impl Connection {
    /// `large_client_header_buffers` for this connection: its SNI host's, or (plain HTTP,
    /// where the Host is not read yet) the largest of the listener's hosts.
    pub(crate) fn timeouts(&self) -> Timeouts {
        let host = self
            .sni_host
            .unwrap_or(self.site.listeners[self.listener].default_host);
        self.site.hosts[host].timeouts
    }

    pub(crate) fn max_request_head(&self) -> usize {
        match self.sni_host {
            Some(host) => self.site.hosts[host].max_request_head,
            None => self.site.listeners[self.listener].max_request_head,
        }
    }

    /// Count and log a request refused with `status` under `check` (the name metrics and
    /// the log share); `why` is one sentence.
    pub(crate) fn refused(&self, check: &'static str, status: http::StatusCode, why: &str) {
        self.metrics.request_refusal(check);
        tracing::info!(
            "request refused: client={} check={check}: {}, {why}",
            self.remote,
            status.as_u16()
        );
    }
}

/// The sockets a site serves on, bound before anything runs.
#[derive(Debug)]
pub struct Listeners {
    servers: Vec<TcpListener>,
    metrics: Option<TcpListener>,
}

/// Bind every listen address of `site` (and its metrics address). Binding is separate from
/// running so that the caller can report "listening on ..." only once the ports are really
/// ours, and fail before anything starts when one is taken.
pub fn bind(site: &Site) -> std::io::Result<Listeners> {
    let servers = site
        .listeners
        .iter()
        .map(|plan| bind_one(plan.addr))
        .collect::<std::io::Result<Vec<_>>>()?;
    let metrics = site.metrics.map(bind_one).transpose()?;
    Ok(Listeners { servers, metrics })
}

fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // So that "0.0.0.0:8000" and "[::]:8000" can both be listed, as in nginx.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Serve `site` on `listeners` (from [`bind`]) until `shutdown` completes; then stop
/// accepting, let in-flight requests finish (up to the site's shutdown timeout) and return.
pub async fn run(
    site: Site,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let log = AccessLogger::start(&site.access_log)?;
    let metrics = Metrics::new();
    let nofile = limits::raise_nofile(site.worker_rlimit_nofile);
    let max_connections = site
        .max_connections
        .unwrap_or_else(|| limits::default_max_connections(nofile));
    tracing::info!("file descriptors: {nofile}; max_connections: {max_connections}");
    if u64::try_from(max_connections).unwrap_or(u64::MAX) > nofile {
        // nginx warns the same way: the cap will never be reached, EMFILE will.
        tracing::warn!(
            "max_connections ({max_connections}) is more than the file-descriptor limit \
             ({nofile}): accept will fail with EMFILE before the cap is reached"
        );
    }
    let slots = Arc::new(Slots {
        free: Arc::new(Semaphore::new(max_connections)),
        max: max_connections,
        cap_log: Throttle::default(),
        accept_log: Throttle::default(),
    });
    let site = Arc::new(site);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; when the last one ends, `recv` says so.
    let (alive, mut all_ended) = mpsc::channel::<()>(1);
    let registry = Arc::new(Registry::default());
    let mut tasks = vec![
        tokio::spawn(registry.clone().run(metrics.clone(), stop_rx.clone())),
        tokio::spawn(reap_upstreams(site.clone(), stop_rx.clone())),
    ];
    for (index, listener) in listeners.servers.into_iter().enumerate() {
        let shared = Shared {
            site: site.clone(),
            log: log.clone(),
            metrics: metrics.clone(),
            registry: registry.clone(),
            slots: slots.clone(),
            stop: stop_rx.clone(),
            _alive: alive.clone(),
        };
        tasks.push(tokio::spawn(accept_loop(shared, index, listener)));
    }
    drop(alive);
    if let Some(listener) = listeners.metrics {
        tasks.push(tokio::spawn(metrics_loop(
            listener,
            metrics.clone(),
            registry.clone(),
            site.timeouts,
            stop_rx.clone(),
        )));
    }
    shutdown.await;
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    if tokio::time::timeout(site.shutdown_timeout, all_ended.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            "shutdown timeout ({:?}) reached; closing the remaining connections",
            site.shutdown_timeout
        );
    }
    log.flush().await;
    Ok(())
}

/// What every connection task of a run holds.
#[derive(Debug, Clone)]
struct Shared {
    site: Arc<Site>,
    log: AccessLogger,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
    slots: Arc<Slots>,
    /// Turns true when the gateway stops: finish what is in flight, then close.
    stop: watch::Receiver<bool>,
    /// Held while the task lives, so that shutdown can wait for the last one.
    _alive: mpsc::Sender<()>,
}

/// `max_connections`, shared by every listener: a connection holds a permit for its life.
#[derive(Debug)]
struct Slots {
    free: Arc<Semaphore>,
    max: usize,
    /// "max_connections reached", at most once a second.
    cap_log: Throttle,
    /// accept errors (EMFILE, ENFILE, ENOBUFS), at most once a second.
    accept_log: Throttle,
}

async fn accept_loop(shared: Shared, index: usize, listener: TcpListener) {
    let mut stop = shared.stop.clone();
    let addr = shared.site.listeners[index].addr;
    loop {
        // A slot first: at the cap, stop accepting (clients wait in the kernel's backlog)
        // rather than accept and drop, and resume as soon as a connection closes.
        let slot = match shared.slots.free.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                shared.metrics.cap_reached();
                if let Some(held_back) = shared.slots.cap_log.allow() {
                    tracing::warn!(
                        "max_connections ({}) reached: not accepting on {addr} until a \
                         connection closes{}",
                        shared.slots.max,
                        repeated(held_back)
                    );
                }
                tokio::select! {
                    slot = shared.slots.free.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => return,
                    },
                    _ = stop.changed() => return,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (tcp, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off a little rather than spin, and say so once a
                // second, not fifty times.
                if let Some(held_back) = shared.slots.accept_log.allow() {
                    tracing::warn!("accept on {addr}: {e}{}", repeated(held_back));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            connection(shared, index, tcp, remote, slot).await;
        });
    }
}

/// ` (and N more times since the last line)`, for a throttled warning.
fn repeated(held_back: u64) -> String {
    if held_back == 0 {
        String::new()
    } else {
        format!(" (and {held_back} more times since the last such line)")
    }
}

async fn connection(
    shared: Shared,
    listener: usize,
    tcp: TcpStream,
    remote: SocketAddr,
    _slot: OwnedSemaphorePermit,
) {
    let Shared {
        site,
        log,
        metrics,
        registry,
        slots: _,
        stop: _,
        _alive,
    } = shared;
    let _open = metrics.open_connection();
    let plan = &site.listeners[listener];
    if !plan.tls {
        let conn = Connection {
            site: site.clone(),
            listener,
            remote,
            sni_host: None,
            tls: None,
            log,
            metrics,
            identity: std::sync::OnceLock::new(),
        };
        let activity = registry.add(Mode::Http1, conn.timeouts());
        serve_http(tcp, conn, &registry, activity).await;
        return;
    }
    let handshake = async {
        let hello = ClientHello::read(tcp).await?;
        let host = site.host_for(plan, hello.server_name());
        let Some(tls) = site.hosts[host].tls.as_ref() else {
            return Err(HandshakeError::Tls(format!(
                "server block {host} on {} has no [server.tls]",
                plan.addr
            )));
        };
        let (stream, info) = hello.complete(tls).await?;
        Ok((host, stream, info))
    };
    // Boxed: the handshake's state is large and would otherwise stay part of the task's
    // future (and its allocation) for the whole life of the connection.
    let handshake = Box::pin(tokio::time::timeout(site.ssl_handshake_timeout, handshake));
    let (host, stream, info) = match handshake.await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            if !matches!(e, HandshakeError::Io(_)) {
                metrics.tls_refusal(e.check());
            }
            log_refusal(remote, &e);
            return;
        }
        Err(_) => {
            metrics.tls_refusal("handshake_timeout");
            tracing::info!(
                "TLS handshake not finished: client={remote} check=handshake_timeout: \
                 no complete handshake within {:?}; connection closed",
                site.ssl_handshake_timeout
            );
            return;
        }
    };
    metrics.handshake(&info);
    let conn = Connection {
        site: site.clone(),
        listener,
        remote,
        sni_host: Some(host),
        tls: Some(info),
        log,
        metrics,
        identity: std::sync::OnceLock::new(),
    };
    if conn.tls.as_ref().and_then(|t| t.alpn.as_deref()) == Some(b"h2") {
        let activity = registry.add(Mode::Http2, conn.timeouts());
        serve_http(stream, conn, &registry, activity).await;
    } else {
        keepalive::serve(stream, conn, &registry).await;
    }
}

/// How often idle upstream connections are looked at: they close between
/// `keepalive_timeout` and `keepalive_timeout` + this.
const REAP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Close pooled upstream connections idle past their upstream's `keepalive_timeout`, so a
/// burst does not leave sockets open on both sides until the next request happens by.
async fn reap_upstreams(site: Arc<Site>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for proxy in site.hosts.iter().flat_map(|h| h.proxies()) {
                    proxy.reap_idle();
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// The metrics endpoint: plain HTTP/1.1, `GET /metrics` only, with the top-level
/// deadlines and a small connection cap of its own (a flood of clients cannot starve the
/// scraper, and a flood of scrapers cannot take the clients' descriptors).
async fn metrics_loop(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(METRICS_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let Ok((tcp, remote)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        let activity = registry.add(Mode::Http1, timeouts);
        let registry = registry.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = {
                let (metrics, activity) = (metrics.clone(), activity.clone());
                service_fn(move |request: Request<Incoming>| {
                    let mut request_guard = InFlight::start(&activity);
                    let response = metrics_page(&metrics, &request);
                    request_guard.head_sent();
                    let counted = response.map(|body| Counted::new(body, request_guard));
                    std::future::ready(Ok::<_, Infallible>(counted))
                })
            };
            let builder = hyper::server::conn::http1::Builder::new();
            let io = TokioIo::new(Watched::new(tcp, activity.clone()));
            let served = builder.serve_connection(io, service);
            drive(served, &registry, &activity, &metrics, remote).await;
        });
    }
}

fn metrics_page(metrics: &Metrics, request: &Request<Incoming>) -> Response<Body> {
    if request.uri().path() != "/metrics" {
        return crate::page::error_page(http::StatusCode::NOT_FOUND, "Try /metrics.");
    }
    let mut response = Response::new(crate::body::full(metrics.encode()));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    response
}

/// At most this many metrics connections at once.
const METRICS_CONNECTIONS: usize = 64;

/// A hyper connection future that can be told to finish gracefully.
trait Graceful {
    fn shut_down(self: Pin<&mut Self>);
}

/// Serve a connection until it ends, the gateway stops (requests in flight finish), or a
/// deadline of its [`Activity`] passes: `keepalive_timeout` ends it gracefully (HTTP/2: a
/// GOAWAY), `client_header_timeout` and `send_timeout` drop it.
async fn drive<C, E>(
    served: C,
    registry: &Registry,
    activity: &Arc<Activity>,
    metrics: &Metrics,
    remote: SocketAddr,
) where
    C: Future<Output = Result<(), E>> + Graceful,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut served = std::pin::pin!(served);
    let mut stopping = false;
    let mut closing = false;
    let ended = std::future::poll_fn(|cx| {
        loop {
            if let Poll::Ready(ended) = served.as_mut().poll(cx) {
                return Poll::Ready(Some(ended));
            }
            activity.waker.register(cx.waker());
            if !stopping && registry.stopping.load(Ordering::Relaxed) {
                stopping = true;
                served.as_mut().shut_down();
                continue;
            }
            if let Some(expired) = activity.expired()
                && !closing
            {
                closing = true;
                close_expired(metrics, remote, activity, expired);
                if !activity.is_idle() {
                    // A request is open (send_timeout): drop it, the client is not reading.
                    return Poll::Ready(None);
                }
                // Idle: say goodbye properly (HTTP/2: a GOAWAY) on the way out.
                served.as_mut().shut_down();
                continue;
            }
            if (stopping || closing) && activity.is_idle() {
                // The GOAWAY (or the HTTP/1.1 close) went out in the poll above; nothing is
                // in flight, so do not wait for the client to acknowledge it (HTTP/2's
                // graceful close waits for a PING the client may never answer).
                return Poll::Ready(Some(Ok(())));
            }
            return Poll::Pending;
        }
    })
    .await;
    if let Some(Err(e)) = ended {
        connection_error(metrics, remote, &*e.into());
    }
}

/// A connection that ended with an error: a request hyper could not parse was answered 400
/// by hyper itself, and is counted and logged like every other refusal; anything else (the
/// client went away) is not news.
pub(crate) fn connection_error(
    metrics: &Metrics,
    remote: SocketAddr,
    error: &(dyn std::error::Error + Send + Sync + 'static),
) {
    let parse = error
        .downcast_ref::<hyper::Error>()
        .is_some_and(|e| e.is_parse() || e.is_parse_too_large());
    if parse {
        metrics.request_refusal("http_parse");
        tracing::info!(
            "request refused: client={remote} check=http_parse: 400, the request could not \
             be parsed: {error}"
        );
    } else {
        tracing::debug!("connection ended: client={remote}: {error}");
    }
}

impl<I, S> Graceful for hyper::server::conn::http1::Connection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: http_body::Body + 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shut_down(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

fn log_refusal(remote: SocketAddr, error: &HandshakeError) {
    let check = error.check();
    match error {
        // A client that connects and leaves (health checks, port scans) is not news.
        HandshakeError::Io(_) => {
            tracing::debug!("TLS handshake ended: client={remote} check={check}: {error}")
        }
        _ => tracing::warn!("TLS handshake refused: client={remote} check={check}: {error}"),
    }
}

/// HTTP/2 (ALPN `h2`) and plain HTTP/1.1 (or h2c): hyper-util's auto builder over a
/// [`Watched`] stream, driven by [`drive`] for the deadlines and the stop signal.
async fn serve_http<IO>(io: IO, conn: Connection, registry: &Registry, activity: Arc<Activity>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let head = conn.max_request_head();
    let remote = conn.remote;
    let metrics = conn.metrics.clone();
    let conn = Arc::new(conn);
    // Each request counted from dispatch until its response body is sent. The handler's
    // future is made inside the async block, not passed in: a future captured by another
    // and then awaited is stored twice, and HTTP/2 moves every request's future into a
    // task of its own (a memmove that showed as a quarter of the CPU).
    let service = {
        let activity = activity.clone();
        service_fn(move |request: Request<Incoming>| {
            let conn = conn.clone();
            let mut request_guard = InFlight::start(&activity);
            async move {
                let response = handler::handle(&conn, request).await;
                request_guard.head_sent();
                let counted = response.map(|body| Counted::new(body, request_guard));
                Ok::<_, Infallible>(counted)
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's read buffer holds at most the request head (hyper answers 431 past it), so a
    // slow client's partial head costs at most this much.
    builder.http1().max_buf_size(head);
    builder
        .http2()
        .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX));
    let io = TokioIo::new(Watched::new(io, activity.clone()));
    let served = builder.serve_connection_with_upgrades(io, service);
    drive(served, registry, &activity, &metrics, remote).await;
}

impl<I, S> Graceful for auto::UpgradeableConnection<'_, I, S, TokioExecutor>
where
    S: hyper::service::HttpService<Incoming>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: http_body::Body + Send + 'static,
    <S::ResBody as http_body::Body>::Data: Send,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    fn shut_down(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

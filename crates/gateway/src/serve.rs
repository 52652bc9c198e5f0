//! `mtls serve` on the runtime: each listener of the site is a `Serve` that reads the
//! ClientHello, picks the virtual host by SNI, finishes the handshake (or logs why not),
//! then serves HTTP/2 (ALPN `h2`) on the runtime's HTTP driver or HTTP/1.1 in
//! `keepalive`'s loop, which releases the buffers of idle connections. The metrics
//! listener is another `Serve` on the same runtime, with a small cap of its own.
//!
//! One task per connection; nothing is shared between connections but the read-only
//! [`Site`] and the access-log channel, so a peer that sends garbage or nothing at all costs
//! only its own task (bounded by the handshake timeout).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use mtls_tls::{ClientHello, HandshakeError, HandshakeInfo};

use crate::access_log::{AccessLogger, Logged};
use crate::activity::{Activity, Mode, Phase, Registry};
use crate::body::Body;
use crate::config::Timeouts;
use crate::context::Connection;
use crate::handler;
use crate::keepalive;
use crate::limits;
use crate::metrics::Metrics;
use crate::runtime::{self, Handler, Hold, Runtime, Serve, Slots, Ticket};
use crate::site::{Entrance, Site};

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
/// accepting, let in-flight requests finish (up to the site's shutdown timeout), cut what
/// is left, and return once every request has its access-log line.
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
    let site = Arc::new(site);
    let mut runtime = Runtime::new(metrics.clone());
    let slots = Slots::new(max_connections, true);
    for (index, listener) in listeners.servers.into_iter().enumerate() {
        let gateway = Gateway {
            site: site.clone(),
            listener: index,
            log: log.clone(),
            metrics: metrics.clone(),
        };
        runtime.listen(listener, slots.clone(), Arc::new(gateway));
    }
    if let Some(listener) = listeners.metrics {
        let endpoint = MetricsEndpoint {
            metrics: metrics.clone(),
            timeouts: site.timeouts,
        };
        runtime.listen(
            listener,
            Slots::new(METRICS_CONNECTIONS, false),
            Arc::new(endpoint),
        );
    }
    runtime.background(reap_upstreams(site.clone()));
    runtime.run_until(shutdown, site.shutdown_timeout).await;
    log.flush().await;
    Ok(())
}

/// A listener of the site: TLS (SNI picks the block) or plain, then HTTP.
#[derive(Debug)]
struct Gateway {
    site: Arc<Site>,
    listener: usize,
    log: AccessLogger,
    metrics: Arc<Metrics>,
}

impl Serve for Gateway {
    async fn connection(self: Arc<Self>, tcp: TcpStream, remote: SocketAddr, ticket: Ticket) {
        let _open = self.metrics.open_connection();
        let site = &self.site;
        let plan = &site.listeners[self.listener];
        if !plan.tls {
            let entrance = Entrance::new(site.clone(), self.listener, None);
            let activity = ticket.registry.add(Mode::Http1, entrance.timeouts());
            let conn = self.context(&entrance, remote, None, activity);
            serve_http(tcp, entrance, conn, &ticket).await;
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
                    self.metrics.tls_refusal(e.check());
                }
                log_refusal(remote, &e);
                return;
            }
            Err(_) => {
                self.metrics.tls_refusal("handshake_timeout");
                tracing::info!(
                    "TLS handshake not finished: client={remote} check=handshake_timeout: \
                     no complete handshake within {:?}; connection closed",
                    site.ssl_handshake_timeout
                );
                return;
            }
        };
        self.metrics.handshake(&info);
        let entrance = Entrance::new(site.clone(), self.listener, Some(host));
        let h2 = info.alpn.as_deref() == Some(b"h2");
        let registry = &ticket.registry;
        if h2 {
            let activity = registry.add(Mode::Http2, entrance.timeouts());
            let conn = self.context(&entrance, remote, Some(info), activity);
            serve_http(stream, entrance, conn, &ticket).await;
        } else {
            let activity = registry.add(Mode::Hibernating, entrance.timeouts());
            let conn = self.context(&entrance, remote, Some(info), activity.clone());
            let head = entrance.max_request_head();
            let handler = Requests::new(entrance, conn, &ticket);
            keepalive::serve(
                stream,
                handler,
                registry,
                activity,
                &self.metrics,
                remote,
                head,
            )
            .await;
        }
    }
}

impl Gateway {
    fn context(
        &self,
        entrance: &Entrance,
        remote: SocketAddr,
        tls: Option<HandshakeInfo>,
        activity: Arc<Activity>,
    ) -> Connection {
        Connection {
            remote,
            local: entrance.local(),
            tls,
            metrics: self.metrics.clone(),
            log: self.log.clone(),
            activity,
            identity: std::sync::OnceLock::new(),
        }
    }
}

/// Each request of a connection to [`handler::handle`], with the connection's entrance.
#[derive(Debug, Clone)]
struct Requests(Arc<(Entrance, Connection, Arc<Registry>, Hold)>);

impl Requests {
    fn new(entrance: Entrance, conn: Connection, ticket: &Ticket) -> Requests {
        let registry = ticket.registry.clone();
        Requests(Arc::new((entrance, conn, registry, ticket.hold())))
    }
}

impl Handler for Requests {
    type Body = Logged;

    fn call(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<Logged>> + Send + use<> {
        let shared = self.0.clone();
        async move {
            // `shared` also holds the drain open until this request has ended.
            let (entrance, conn, registry) = (&shared.0, &shared.1, &shared.2);
            // HTTP/2 runs each request in a task of its own, which may outlive its
            // connection: at the end of a shutdown's drain the request is dropped here, so
            // that its access-log line is written (`end=shutdown`) before the process exits.
            // The cut is only looked at while the handler waits (an upstream, a file).
            let answered = {
                let mut handling = std::pin::pin!(handler::handle(entrance, conn, request));
                let mut cut = std::pin::pin!(registry.reached(Phase::Cut));
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(response) = handling.as_mut().poll(cx) {
                        return Poll::Ready(Some(response));
                    }
                    if cut.as_mut().poll(cx).is_ready() {
                        conn.activity.cut();
                        return Poll::Ready(None);
                    }
                    Poll::Pending
                })
                .await
            };
            answered.unwrap_or_else(|| {
                let page = crate::page::error_page(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "The server is shutting down.",
                );
                page.map(|body| Logged::new(body, None))
            })
        }
    }
}

/// HTTP/2 (ALPN `h2`) and plain HTTP/1.1 (or h2c), on the runtime's one HTTP driver.
async fn serve_http<IO>(io: IO, entrance: Entrance, conn: Connection, ticket: &Ticket)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let head = entrance.max_request_head();
    let (remote, metrics, activity) = (conn.remote, conn.metrics.clone(), conn.activity.clone());
    let handler = Requests::new(entrance, conn, ticket);
    runtime::serve_http(
        io,
        handler,
        &ticket.registry,
        activity,
        &metrics,
        remote,
        head,
    )
    .await;
}

/// How often idle upstream connections are looked at: they close between
/// `keepalive_timeout` and `keepalive_timeout` + this.
const REAP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Close pooled upstream connections idle past their upstream's `keepalive_timeout`, so a
/// burst does not leave sockets open on both sides until the next request happens by.
async fn reap_upstreams(site: Arc<Site>) {
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for proxy in site.hosts.iter().flat_map(|h| h.proxies()) {
            proxy.reap_idle();
        }
    }
}

/// The metrics endpoint: plain HTTP/1.1, `GET /metrics` only, with the top-level
/// deadlines and a small connection cap of its own (a flood of clients cannot starve the
/// scraper, and a flood of scrapers cannot take the clients' descriptors).
#[derive(Debug)]
struct MetricsEndpoint {
    metrics: Arc<Metrics>,
    timeouts: Timeouts,
}

impl Serve for MetricsEndpoint {
    async fn connection(self: Arc<Self>, tcp: TcpStream, remote: SocketAddr, ticket: Ticket) {
        let activity = ticket.registry.add(Mode::Http1, self.timeouts);
        runtime::serve_http(
            tcp,
            MetricsPage(self.metrics.clone()),
            &ticket.registry,
            activity,
            &self.metrics,
            remote,
            METRICS_HEAD,
        )
        .await;
    }
}

/// `GET /metrics`.
#[derive(Debug, Clone)]
struct MetricsPage(Arc<Metrics>);

impl Handler for MetricsPage {
    type Body = Body;

    fn call(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send + use<> {
        std::future::ready(metrics_page(&self.0, &request))
    }
}

/// The longest request head the metrics endpoint reads.
const METRICS_HEAD: usize = 8 * 1024;

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

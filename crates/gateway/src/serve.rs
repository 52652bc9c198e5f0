//! `mtls serve` on the runtime: each listener of the site is a `Serve` that reads the
//! ClientHello, picks the virtual host by SNI, finishes the handshake (or logs why not),
//! then serves HTTP/2 (ALPN `h2`) on the runtime's HTTP driver or HTTP/1.1 in
//! `keepalive`'s loop, which releases the buffers of idle connections. The metrics
//! listener is another `Serve` on the same runtime, with a small cap of its own.
//!
//! One task per connection; nothing is shared between connections but the read-only
//! [`Site`] and the access-log channel, so a peer that sends garbage or nothing at all costs
//! only its own task (bounded by the handshake timeout).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use mtls_tls::{ClientHello, HandshakeError, HandshakeInfo};

use crate::access_log::{AccessLogger, Logged};
use crate::activity::{Activity, Mode, Phase, Registry};
use crate::body::Body;
use crate::config::Timeouts;
use crate::context::Connection;
use crate::cork::CorkedIo;
use crate::handler;
use crate::keepalive;
use crate::limits;
use crate::live::{Live, Reloads};
use crate::metrics::Metrics;
use crate::runtime::{self, Handler, Hold, Runtime, Serve, Slots, Spawner, StopListening, Ticket};
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
    reloads: Option<Reloads>,
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
    let live = Arc::new(Live::new(site.clone()));
    let mut runtime = Runtime::new(metrics.clone());
    let slots = Slots::new(max_connections, true);
    let gateway = |addr| Gateway {
        live: live.clone(),
        addr,
        log: log.clone(),
        metrics: metrics.clone(),
    };
    let mut listening = HashMap::new();
    let spawner = runtime.spawner();
    for (plan, listener) in site.listeners.iter().zip(listeners.servers) {
        let (_, stop) = spawner.listen(listener, slots.clone(), Arc::new(gateway(plan.addr)));
        listening.insert(plan.addr, stop);
    }
    if let Some(listener) = listeners.metrics {
        let endpoint = MetricsEndpoint {
            live: live.clone(),
            metrics: metrics.clone(),
            timeouts: site.timeouts,
        };
        runtime.listen(
            listener,
            Slots::new(METRICS_CONNECTIONS, false),
            Arc::new(endpoint),
        );
    }
    runtime.background(reap_upstreams(live.clone()));
    match reloads {
        Some(reloads) => {
            runtime.background(crate::watch::run(live.clone(), reloads.sender.clone()));
            let reloader = Reloader {
                live: live.clone(),
                spawner,
                slots,
                listening,
                log: log.clone(),
                metrics: metrics.clone(),
            };
            runtime.background(reloader.run(reloads));
        }
        // The accept loops run while their stop handles live.
        None => runtime.background(async move {
            let _listening = listening;
            drop(spawner);
            std::future::pending::<()>().await;
        }),
    }
    runtime.run_until(shutdown, site.shutdown_timeout).await;
    log.flush().await;
    Ok(())
}

/// A listener of the site: TLS (SNI picks the block) or plain, then HTTP. Each connection
/// is served by the site current when it was accepted, to its end.
#[derive(Debug)]
struct Gateway {
    live: Arc<Live>,
    addr: SocketAddr,
    log: AccessLogger,
    metrics: Arc<Metrics>,
}

impl Serve for Gateway {
    async fn connection(self: Arc<Self>, tcp: CorkedIo, remote: SocketAddr, ticket: Ticket) {
        let _open = self.metrics.open_connection();
        let site = &self.live.site();
        // A reload that removed this address stops its accept loop; a connection
        // accepted just before the swap is served by nothing and closed.
        let Some(listener) = site.listener_on(self.addr) else {
            return;
        };
        let plan = &site.listeners[listener];
        if !plan.tls {
            let entrance = Entrance::new(site.clone(), listener, None);
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
                if matches!(e, HandshakeError::ResumedRevoked(_)) {
                    self.metrics.resumption_refused_revoked();
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
        let entrance = Entrance::new(site.clone(), listener, Some(host));
        let h2 = info.alpn.as_deref() == Some(b"h2");
        let registry = &ticket.registry;
        let verified = matches!(info.verify, mtls_tls::VerifyStatus::Success);
        let peer = info.peer.clone().filter(|_| verified);
        let intermediates = info.intermediates.clone();
        let client = |peer: &Option<Arc<mtls_tls::PeerCert>>| {
            peer.clone()
                .map(|certificate| crate::activity::VerifiedClient {
                    certificate,
                    intermediates: intermediates.clone(),
                    remote,
                })
        };
        if h2 {
            let activity = registry.add(Mode::Http2, entrance.timeouts());
            if let Some(client) = client(&peer) {
                let _ = activity.peer.set(client);
            }
            let conn = self.context(&entrance, remote, Some(info), activity);
            serve_http(stream, entrance, conn, &ticket).await;
        } else {
            let activity = registry.add(Mode::Hibernating, entrance.timeouts());
            if let Some(client) = client(&peer) {
                let _ = activity.peer.set(client);
            }
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

/// Applies reloads: see [`crate::live`].
struct Reloader {
    live: Arc<Live>,
    spawner: Spawner,
    slots: Arc<Slots>,
    listening: HashMap<SocketAddr, StopListening>,
    log: AccessLogger,
    metrics: Arc<Metrics>,
}

impl Reloader {
    async fn run(mut self, mut reloads: Reloads) {
        let rebuild = Arc::new(reloads.rebuild);
        while let Some(cause) = reloads.requests.recv().await {
            // Requests that queued while the last reload ran are served by this one.
            let mut causes = vec![cause];
            while let Ok(more) = reloads.requests.try_recv() {
                if !causes.contains(&more) {
                    causes.push(more);
                }
            }
            let why = causes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            let current = self.live.site();
            let rebuild = rebuild.clone();
            // Reading files and parsing keys blocks: off the serving threads.
            let built = tokio::task::spawn_blocking(move || rebuild(&current)).await;
            let site = match built {
                Ok(Ok(site)) => site,
                Ok(Err(errors)) => {
                    for error in &errors.0 {
                        tracing::error!(
                            "reload ({why}) failed, still serving the previous configuration: {error}"
                        );
                    }
                    self.metrics.reload(false);
                    continue;
                }
                Err(panicked) => {
                    tracing::error!("reload ({why}) failed: {panicked}");
                    self.metrics.reload(false);
                    continue;
                }
            };
            match self.apply(site) {
                Ok(addresses) => {
                    self.metrics.reload(true);
                    tracing::info!("reloaded ({why}): serving on {addresses}");
                }
                Err(e) => {
                    tracing::error!(
                        "reload ({why}) failed, still serving the previous configuration: {e}"
                    );
                    self.metrics.reload(false);
                }
            }
        }
    }

    /// Bind the new addresses (all or none), swap the site, stop the listeners it no
    /// longer has, and retire connections whose client the new CRLs revoke.
    fn apply(&mut self, site: Site) -> std::io::Result<String> {
        let previous = self.live.site();
        let mut bound = Vec::new();
        for plan in &site.listeners {
            if !self.listening.contains_key(&plan.addr) {
                let listener = bind_one(plan.addr).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("{}: listen: {e}", plan.origin))
                })?;
                bound.push((plan.addr, listener));
            }
        }
        for warning in site.warnings() {
            tracing::warn!("{warning}");
        }
        for (what, before, after) in [
            (
                "access_log",
                format!("{:?}", previous.access_log),
                format!("{:?}", site.access_log),
            ),
            (
                "metrics",
                format!("{:?}", previous.metrics),
                format!("{:?}", site.metrics),
            ),
            (
                "max_connections",
                format!("{:?}", previous.max_connections),
                format!("{:?}", site.max_connections),
            ),
        ] {
            if before != after {
                tracing::warn!("reload: {what} changed; it takes effect at the next restart");
            }
        }
        let site = Arc::new(site);
        let addresses = site
            .listeners
            .iter()
            .map(|l| format!("{}://{}", if l.tls { "https" } else { "http" }, l.addr))
            .collect::<Vec<_>>()
            .join(", ");
        self.live.replace(site.clone());
        for (addr, listener) in bound {
            let gateway = Gateway {
                live: self.live.clone(),
                addr,
                log: self.log.clone(),
                metrics: self.metrics.clone(),
            };
            let (_, stop) = self
                .spawner
                .listen(listener, self.slots.clone(), Arc::new(gateway));
            self.listening.insert(addr, stop);
        }
        self.listening.retain(|addr, stop| {
            let keep = site.listener_on(*addr).is_some();
            if !keep {
                stop.stop();
                tracing::info!("reload: no longer listening on {addr}");
            }
            keep
        });
        self.retire_revoked(&site);
        Ok(addresses)
    }

    /// A client whose certificate the new CRLs revoke keeps no connection: each is closed
    /// after its requests in flight (HTTP/2: a GOAWAY).
    fn retire_revoked(&self, site: &Site) {
        for activity in self.spawner.registry().connections() {
            let Some(client) = activity.peer.get() else {
                continue;
            };
            let remote = client.remote;
            if let Some(refusal) = site.revoked(&client.certificate.der, &client.intermediates)
                && activity.retire()
            {
                self.metrics.revoked_while_connected();
                tracing::warn!(
                    "client certificate revoked while connected: client={remote} \
                     check=revoked_while_connected: {}; subject {}, issuer {}, serial {}; the \
                     connection closes after its requests in flight",
                    refusal.reason,
                    refusal.subject,
                    refusal.issuer,
                    refusal.serial
                );
            }
        }
    }
}

/// How often idle upstream connections are looked at: they close between
/// `keepalive_timeout` and `keepalive_timeout` + this.
const REAP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Close pooled upstream connections idle past their upstream's `keepalive_timeout`, so a
/// burst does not leave sockets open on both sides until the next request happens by.
async fn reap_upstreams(live: Arc<Live>) {
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let site = live.site();
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
    live: Arc<Live>,
    metrics: Arc<Metrics>,
    timeouts: Timeouts,
}

impl Serve for MetricsEndpoint {
    async fn connection(self: Arc<Self>, tcp: CorkedIo, remote: SocketAddr, ticket: Ticket) {
        let activity = ticket.registry.add(Mode::Http1, self.timeouts);
        runtime::serve_http(
            tcp,
            MetricsPage(self.metrics.clone(), self.live.clone()),
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
struct MetricsPage(Arc<Metrics>, Arc<Live>);

impl Handler for MetricsPage {
    type Body = Body;

    fn call(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send + use<> {
        self.0.inventory(&self.1.site().inventory);
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

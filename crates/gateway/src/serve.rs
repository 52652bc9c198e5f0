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
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use mtls_tls::{ClientHello, HandshakeError, HandshakeInfo};

use crate::access_log::AccessLogger;
use crate::body::Body;
use crate::handler;
use crate::keepalive;
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
    let site = Arc::new(site);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; when the last one ends, `recv` says so.
    let (alive, mut all_ended) = mpsc::channel::<()>(1);
    let keepalive = Arc::new(keepalive::Registry::default());
    let mut tasks = vec![
        tokio::spawn(keepalive.clone().run(stop_rx.clone())),
        tokio::spawn(reap_upstreams(site.clone(), stop_rx.clone())),
    ];
    for (index, listener) in listeners.servers.into_iter().enumerate() {
        let shared = Shared {
            site: site.clone(),
            log: log.clone(),
            metrics: metrics.clone(),
            keepalive: keepalive.clone(),
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
    keepalive: Arc<keepalive::Registry>,
    /// Turns true when the gateway stops: finish what is in flight, then close.
    stop: watch::Receiver<bool>,
    /// Held while the task lives, so that shutdown can wait for the last one.
    _alive: mpsc::Sender<()>,
}

async fn accept_loop(shared: Shared, index: usize, listener: TcpListener) {
    let mut stop = shared.stop.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (tcp, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off a little rather than spin.
                tracing::warn!("accept on {}: {e}", shared.site.listeners[index].addr);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            connection(shared, index, tcp, remote).await;
        });
    }
}

async fn connection(shared: Shared, listener: usize, tcp: TcpStream, remote: SocketAddr) {
    let Shared {
        site,
        log,
        metrics,
        keepalive,
        stop,
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
        serve_http(TokioIo::new(tcp), conn, stop).await;
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
    let handshake = Box::pin(tokio::time::timeout(site.handshake_timeout, handshake));
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
                site.handshake_timeout
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
        serve_http(TokioIo::new(stream), conn, stop).await;
    } else {
        let timeout = site.keepalive_timeout;
        keepalive::serve(stream, conn, &keepalive, timeout).await;
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

/// The metrics endpoint: plain HTTP/1.1, `GET /metrics` only.
async fn metrics_loop(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let Ok((tcp, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let response = if request.uri().path() == "/metrics" {
                        let mut response = Response::new(crate::body::full(metrics.encode()));
                        response.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static(
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            ),
                        );
                        response
                    } else {
                        crate::files::error_page(http::StatusCode::NOT_FOUND, "Try /metrics.")
                    };
                    Ok::<Response<Body>, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
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

async fn serve_http<IO>(io: IO, conn: Connection, mut stop: watch::Receiver<bool>)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let conn = Arc::new(conn);
    let service = service_fn(move |request: Request<Incoming>| {
        let conn = conn.clone();
        async move { Ok::<Response<Body>, Infallible>(handler::handle(&conn, request).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let served = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(served);
    let mut stopping = *stop.borrow();
    if stopping {
        served.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            ended = &mut served => {
                if let Err(e) = ended {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

//! The accept loop and the connection lifecycle: TCP accept -> (TLS: ClientHello, pick the
//! virtual host by SNI, finish the handshake or log why not) -> HTTP/1.1 or HTTP/2 with
//! hyper -> graceful shutdown.
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
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use mtls_tls::{ClientHello, HandshakeError, HandshakeInfo};

use crate::access_log::AccessLogger;
use crate::body::Body;
use crate::handler;
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
}

/// Bind every listen address of `site`. Binding is separate from running so that the
/// caller can report "listening on ..." only once the ports are really ours, and fail
/// before anything starts when one is taken.
pub fn bind(site: &Site) -> std::io::Result<Vec<TcpListener>> {
    site.listeners
        .iter()
        .map(|plan| {
            let domain = socket2::Domain::for_address(plan.addr);
            let socket =
                socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            if plan.addr.is_ipv6() {
                // So that "0.0.0.0:8000" and "[::]:8000" can both be listed, as in nginx.
                socket.set_only_v6(true)?;
            }
            socket.set_nonblocking(true)?;
            socket.bind(&plan.addr.into()).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", plan.addr))
            })?;
            socket.listen(1024)?;
            TcpListener::from_std(socket.into())
        })
        .collect()
}

/// Serve `site` on `listeners` (from [`bind`], in the same order) until `shutdown`
/// completes; then stop accepting, let in-flight requests finish (up to the site's shutdown
/// timeout) and return.
pub async fn run(
    site: Site,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let log = AccessLogger::start(&site.access_log)?;
    let site = Arc::new(site);
    let graceful = Arc::new(GracefulShutdown::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for (index, listener) in listeners.into_iter().enumerate() {
        tasks.push(tokio::spawn(accept_loop(
            site.clone(),
            index,
            listener,
            graceful.clone(),
            log.clone(),
            stop_rx.clone(),
        )));
    }
    shutdown.await;
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let graceful = Arc::try_unwrap(graceful).unwrap_or_else(|_| GracefulShutdown::new());
    if tokio::time::timeout(site.shutdown_timeout, graceful.shutdown())
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

async fn accept_loop(
    site: Arc<Site>,
    index: usize,
    listener: TcpListener,
    graceful: Arc<GracefulShutdown>,
    log: AccessLogger,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (tcp, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off a little rather than spin.
                tracing::warn!("accept on {}: {e}", site.listeners[index].addr);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let site = site.clone();
        let watcher = graceful.watcher();
        let log = log.clone();
        tokio::spawn(async move {
            connection(site, index, tcp, remote, watcher, log).await;
        });
    }
}

async fn connection(
    site: Arc<Site>,
    listener: usize,
    tcp: TcpStream,
    remote: SocketAddr,
    watcher: hyper_util::server::graceful::Watcher,
    log: AccessLogger,
) {
    let plan = &site.listeners[listener];
    if !plan.tls {
        let conn = Connection {
            site: site.clone(),
            listener,
            remote,
            sni_host: None,
            tls: None,
            log,
        };
        serve_http(TokioIo::new(tcp), conn, watcher).await;
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
    let (host, stream, info) = match tokio::time::timeout(site.handshake_timeout, handshake).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            log_refusal(remote, &e);
            return;
        }
        Err(_) => {
            tracing::info!(
                "TLS handshake not finished: client={remote} check=handshake_timeout: \
                 no complete handshake within {:?}; connection closed",
                site.handshake_timeout
            );
            return;
        }
    };
    let conn = Connection {
        site: site.clone(),
        listener,
        remote,
        sni_host: Some(host),
        tls: Some(info),
        log,
    };
    serve_http(TokioIo::new(stream), conn, watcher).await;
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

async fn serve_http<IO>(io: IO, conn: Connection, watcher: hyper_util::server::graceful::Watcher)
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
    if let Err(e) = watcher.watch(served.into_owned()).await {
        tracing::debug!("connection ended: {e}");
    }
}

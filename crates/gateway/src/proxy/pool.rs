//! Keep-alive connections to the servers of one upstream group, reused last in, first out.
//!
//! hyper-util's pooled client did this job before, and per request it spawned a task to
//! wait for the connection to become idle again, sent through a oneshot channel, cloned the
//! connector and hashed the pool key twice; on the proxy figure of `bench/compare` that was
//! several per cent of the gateway's CPU. Here a connection goes back to its server's list
//! when the response body it carried has ended (the body wrapper in `proxy.rs` does that
//! on drop), and the next request takes it with one uncontended lock.
//!
//! A request is only retried on another connection if hyper hands it back unsent (the
//! pooled connection had closed before we wrote to it), as hyper-util's
//! `retry_canceled_requests` did. Each connection is driven by its own task
//! (`with_upgrades`, so a `101 Switching Protocols` hands the stream to the upgrade).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};

use super::{ConnectError, Connector};
use crate::body::Body;
use crate::config::HostPort;

/// Idle connections, by server index.
#[derive(Debug)]
pub(super) struct Pool {
    idle: Vec<Mutex<Vec<Idle>>>,
    max_idle: usize,
    idle_timeout: Duration,
    builder: http1::Builder,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

/// A connection lent to one request: [`Lent::give_back`] once its response has ended.
#[derive(Debug)]
pub(super) struct Lent {
    pool: Arc<Pool>,
    server: usize,
    sender: SendRequest<Body>,
}

impl Pool {
    /// How long an idle connection is kept (the upstream's `keepalive_timeout`).
    pub(super) fn keepalive_timeout(&self) -> Duration {
        self.idle_timeout
    }
}

impl Lent {
    /// The index of the server this connection goes to.
    pub(super) fn server(&self) -> usize {
        self.server
    }

    pub(super) fn give_back(self) {
        let Lent {
            pool,
            server,
            sender,
        } = self;
        if sender.is_closed() {
            return;
        }
        if let Some(Ok(mut idle)) = pool.idle.get(server).map(Mutex::lock)
            && idle.len() < pool.max_idle
        {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}

/// Why a request did not get a response head.
#[derive(Debug)]
pub(super) enum SendError {
    /// No connection could be made (TCP, TLS, timeout): another server may be tried.
    Connect(ConnectError),
    /// The connection failed while the request was sent or the response awaited.
    Http(hyper::Error),
    /// No response head within `read_timeout` of the request being sent.
    ReadTimeout,
}

/// `future`, failing with [`SendError::ReadTimeout`] after `limit` (`None`: no limit).
async fn within<T>(
    limit: Option<std::time::Duration>,
    future: impl std::future::Future<Output = T>,
) -> Result<T, SendError> {
    match limit {
        None => Ok(future.await),
        Some(limit) => tokio::time::timeout(limit, future)
            .await
            .map_err(|_| SendError::ReadTimeout),
    }
}

impl Pool {
    /// `max_header_size`: the most a response head may take (hyper's read buffer grows
    /// to at least 8 KiB for bodies either way).
    pub(super) fn new(servers: usize, max_header_size: usize, idle_timeout: Duration) -> Pool {
        let mut builder = http1::Builder::new();
        builder
            .max_header_size(max_header_size)
            .max_buf_size(max_header_size.max(8192));
        Pool {
            idle: (0..servers).map(|_| Mutex::new(Vec::new())).collect(),
            max_idle: 256,
            idle_timeout,
            builder,
        }
    }

    /// Drop the idle connections that have been idle too long or closed: dropping the last
    /// `SendRequest` ends hyper's connection task, which closes the socket.
    pub(super) fn reap(&self) {
        for list in &self.idle {
            if let Ok(mut idle) = list.lock() {
                idle.retain(|i| !i.sender.is_closed() && i.since.elapsed() < self.idle_timeout);
            }
        }
    }

    fn take(&self, server: usize) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.get(server)?.lock().ok()?;
        while let Some(Idle { sender, since }) = idle.pop() {
            if !sender.is_closed() && since.elapsed() < self.idle_timeout {
                return Some(sender);
            }
        }
        None
    }

    /// Send `request` to server `server` (`target`) on an idle connection, or a new one.
    pub(super) async fn send(
        self: &Arc<Self>,
        server: usize,
        target: &HostPort,
        connector: &Connector,
        mut request: Request<Body>,
        head_timeout: Option<std::time::Duration>,
    ) -> Result<(Response<Incoming>, Lent), SendError> {
        while let Some(mut sender) = self.take(server) {
            // Ready once its connection has finished the previous response; an error
            // means it closed meanwhile.
            if sender.ready().await.is_err() {
                continue;
            }
            match within(head_timeout, sender.try_send_request(request)).await? {
                Ok(response) => return Ok((response, self.lend(server, sender))),
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::Http(failed.into_error())),
                },
            }
        }
        let io = connector
            .connect(target)
            .await
            .map_err(SendError::Connect)?;
        let (mut sender, connection) = self.builder.handshake(io).await.map_err(SendError::Http)?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!("upstream connection ended: {e}");
            }
        });
        let response = within(head_timeout, sender.send_request(request))
            .await?
            .map_err(SendError::Http)?;
        Ok((response, self.lend(server, sender)))
    }

    fn lend(self: &Arc<Self>, server: usize, sender: SendRequest<Body>) -> Lent {
        Lent {
            pool: self.clone(),
            server,
            sender,
        }
    }
}

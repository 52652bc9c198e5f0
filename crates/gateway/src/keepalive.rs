//! HTTP/1.1 keep-alive over TLS that holds no HTTP buffers while a connection is idle.
//!
//! hyper keeps a connection's read buffer (grown to 16 KiB) and write buffer (8 KiB) for as
//! long as the connection lives, so 10,000 idle keep-alive clients cost 240 MB of buffers
//! doing nothing. nginx frees its request buffers between keep-alive requests (and OpenSSL's
//! record buffers, `SSL_MODE_RELEASE_BUFFERS`). Here an idle connection *hibernates*: hyper's
//! connection is ended without touching the socket, the bytes it had read but not used are
//! kept, and the task waits for the socket to become readable holding only the TLS state.
//! When the client sends its next request, a new hyper connection is made over the same
//! TLS stream; the client sees nothing of it.
//!
//! Idle is found by the sweep of [`crate::activity`]: a connection hibernates once a sweep
//! finds it with no request in flight, no write waiting, and no byte read or written since
//! the previous sweep, after one to two sweeps of silence. The same sweep fires its
//! `client_header_timeout` and `send_timeout`, which therefore hold across hibernation (a
//! head that arrives in pieces may span several hyper connections). A hibernating
//! connection that stays silent for `keepalive_timeout` is closed with a TLS close_notify.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::activity::{Activity, Expired, InFlight, Registry, Watched, close_expired};
use crate::metrics::Metrics;
use crate::runtime::{Handler, connection_error};

/// Serve HTTP/1.1 on an established TLS stream until the client leaves, the connection
/// upgrades, `keepalive_timeout` passes in silence, or the server stops (then the request
/// in flight finishes first). `activity` is the connection's, made in
/// [`crate::activity::Mode::Hibernating`];
/// each request is answered by `handler`; `head` bounds the request head.
pub(crate) async fn serve<S, H>(
    stream: S,
    handler: H,
    registry: &Registry,
    activity: Arc<Activity>,
    metrics: &Arc<Metrics>,
    remote: SocketAddr,
    head: usize,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let keepalive_timeout = activity.limit(Expired::Keepalive);
    let service = {
        let activity = activity.clone();
        service_fn(move |request: Request<Incoming>| {
            let handler = handler.clone();
            let in_flight = InFlight::start(&activity);
            async move {
                let response = handler.call(request).await;
                drop(in_flight);
                Ok::<Response<H::Body>, Infallible>(response)
            }
        })
    };
    let mut io = Watched::new(stream, activity.clone());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.writev(true);
    // A client may shut down its sending side once its request is sent (HTTP/1.1 allows
    // it; nginx answers it): the answer is still owed.
    builder.half_close(true);
    // The read buffer never grows past the request-head limit: hyper answers 431 beyond it.
    builder.max_buf_size(head);
    loop {
        activity.hibernate.store(false, Ordering::Relaxed);
        activity.asleep.store(false, Ordering::Relaxed);
        // Boxed: while hibernating, the task's future does not keep room for hyper's state.
        let mut http = Box::pin(
            builder
                .serve_connection(TokioIo::new(io), service.clone())
                .with_upgrades(),
        );
        let mut stopping = activity.stopping(registry);
        if stopping {
            http.as_mut().graceful_shutdown();
        }
        let ended = std::future::poll_fn(|cx| {
            loop {
                if let Poll::Ready(ended) = http.as_mut().poll(cx) {
                    return Poll::Ready(ended);
                }
                // Registered before the flags are read: a flag set after this wakes us.
                activity.waker.register(cx.waker());
                if activity.expired().is_some() {
                    return Poll::Ready(Ok(()));
                }
                if registry.is_cut() {
                    activity.cut();
                    return Poll::Ready(Ok(()));
                }
                if !stopping && activity.stopping(registry) {
                    stopping = true;
                    activity.hibernate.store(false, Ordering::Relaxed);
                    http.as_mut().graceful_shutdown();
                    continue;
                }
                if activity.requested.load(Ordering::Relaxed)
                    && activity.requested.swap(false, Ordering::Relaxed)
                {
                    // The sweep saw this connection quiet; make sure nothing came since.
                    let seen = activity.seen.load(Ordering::Relaxed);
                    if !stopping && activity.quiet_since(seen) {
                        activity.hibernate.store(true, Ordering::Relaxed);
                        http.as_mut().graceful_shutdown();
                        continue;
                    }
                }
                return Poll::Pending;
            }
        })
        .await;
        if let Err(e) = ended {
            connection_error(metrics, remote, &e);
            return;
        }
        if let Some(expired) = activity.expired() {
            drop(http);
            close_expired(metrics, remote, &activity, expired);
            return;
        }
        if registry.is_cut() || !activity.hibernate.load(Ordering::Relaxed) {
            return; // the client closed, or we are stopping
        }
        let Some(parts) = Pin::into_inner(http).into_parts() else {
            return; // upgraded: the upgrade's task owns the stream now
        };
        io = parts.io.into_inner();
        io.unread = join(parts.read_buf, std::mem::take(&mut io.unread));
        drop(parts.service);
        if !io.unread.is_empty() {
            continue; // the next request has begun
        }
        activity.asleep.store(true, Ordering::Relaxed);
        let _waiting = metrics.waiting_connection();
        tracing::debug!("client={remote}: keep-alive connection idle; HTTP buffers released");
        // A read through TLS, not a readiness check on the socket: only application data
        // ends the wait (a socket can be readable with nothing for us, and rustls may hold
        // a record already). The few bytes read here go to the next hyper connection.
        let mut first = [0u8; 256];
        let mut first = ReadBuf::new(&mut first);
        // `None`: the gateway is stopping (its sweep task wakes us, as in the loop above).
        let woken = std::future::poll_fn(|cx| {
            activity.waker.register(cx.waker());
            if activity.stopping(registry) {
                return Poll::Ready(None);
            }
            Pin::new(&mut io.io).poll_read(cx, &mut first).map(Some)
        });
        let woken = tokio::select! {
            woken = woken => woken,
            _ = tokio::time::sleep(keepalive_timeout) => {
                tracing::debug!(
                    "client={remote}: keep-alive connection idle for {keepalive_timeout:?}; closing"
                );
                None
            }
        };
        match woken {
            Some(Ok(())) if !first.filled().is_empty() => {
                io.unread = Bytes::copy_from_slice(first.filled());
                // The first bytes of the next request head: its clock starts now, even if
                // no more ever come.
                activity.read_some();
            }
            Some(_) => return, // an error, or the client closed
            None => {
                let _ = tokio::time::timeout(Duration::from_secs(1), io.io.shutdown()).await;
                return;
            }
        }
    }
}

fn join(first: Bytes, then: Bytes) -> Bytes {
    if then.is_empty() {
        return first;
    }
    if first.is_empty() {
        return then;
    }
    let mut joined = BytesMut::with_capacity(first.len() + then.len());
    joined.extend_from_slice(&first);
    joined.extend_from_slice(&then);
    joined.freeze()
}

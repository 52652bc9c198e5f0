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
//! Idle is found by a sweep (one task per gateway, every [`SWEEP`]), not by a timer per
//! request: arming and disarming a timer for every request costs tokio's driver a wake-up
//! (an eventfd write) whenever the new deadline is the earliest. A connection hibernates once
//! a sweep finds it with no request in flight, no write waiting, and no byte read or written
//! since the previous sweep: after one to two sweeps of silence.
//!
//! The sweep also gives `keepalive_timeout` (nginx's, default 75 s): a hibernating connection
//! that stays silent that long is closed with a TLS close_notify.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use crate::body::Body;
use crate::handler;
use crate::serve::Connection;

/// How often idle connections are looked for.
pub(crate) const SWEEP: Duration = Duration::from_millis(250);

/// What the sweep and a connection's task share.
#[derive(Debug, Default)]
struct Activity {
    /// Bumped by every read or write that moved bytes.
    ops: AtomicU64,
    /// `ops` as the previous sweep saw it.
    seen: AtomicU64,
    /// Requests whose response head is not yet with hyper.
    in_flight: AtomicUsize,
    /// The last write or flush could not finish (the client is not reading).
    write_blocked: AtomicBool,
    /// Hibernating already: nothing for the sweep to do.
    asleep: AtomicBool,
    /// The sweep asks the connection to hibernate.
    requested: AtomicBool,
    /// The connection is hibernating: hyper's shutdown must leave the socket alone.
    hibernate: AtomicBool,
    /// The connection's task, for the sweep and for shutdown to wake. Flags and a waker,
    /// not a `Notify` or a `watch`: those take a lock each time the task is polled, and the
    /// task is polled for every read and write.
    waker: AtomicWaker,
}

impl Activity {
    fn quiet_since(&self, ops: u64) -> bool {
        self.ops.load(Ordering::Relaxed) == ops
            && self.in_flight.load(Ordering::Relaxed) == 0
            && !self.write_blocked.load(Ordering::Relaxed)
    }
}

/// The connections the sweep watches.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    connections: Mutex<Vec<Weak<Activity>>>,
    /// The gateway is stopping: finish what is in flight, then close.
    stopping: AtomicBool,
}

impl Registry {
    fn add(&self, activity: &Arc<Activity>) {
        if let Ok(mut list) = self.connections.lock() {
            list.push(Arc::downgrade(activity));
        }
    }

    /// Tell every connection that has been quiet since the previous sweep to hibernate,
    /// and forget the connections that ended.
    fn sweep(&self) {
        let Ok(mut list) = self.connections.lock() else {
            return;
        };
        list.retain(|weak| {
            let Some(activity) = weak.upgrade() else {
                return false;
            };
            let ops = activity.ops.load(Ordering::Relaxed);
            let before = activity.seen.swap(ops, Ordering::Relaxed);
            if !activity.asleep.load(Ordering::Relaxed) && activity.quiet_since(before) {
                activity.requested.store(true, Ordering::Relaxed);
                activity.waker.wake();
            }
            true
        });
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        if let Ok(list) = self.connections.lock() {
            for activity in list.iter().filter_map(Weak::upgrade) {
                activity.waker.wake();
            }
        }
    }

    /// The sweep task: runs until `stop` turns true.
    pub(crate) async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.sweep(),
                _ = stop.changed() => {
                    self.stop();
                    return;
                }
            }
        }
    }
}

/// The stream as hyper sees it: counts activity, replays the bytes a previous hyper
/// connection had read but not used, and ignores hyper's shutdown while hibernating.
struct Watched<S> {
    io: S,
    unread: Bytes,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.unread.is_empty() {
            let n = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread[..n]);
            this.unread.advance(n);
            this.activity.ops.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() != before {
            this.activity.ops.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> Watched<S> {
    /// Note a write's outcome. Only bytes count as activity: hyper flushes (nothing) every
    /// time its task is polled, and that must not keep a quiet connection awake.
    fn wrote<T>(
        &self,
        polled: Poll<io::Result<T>>,
        moved: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        self.activity
            .write_blocked
            .store(polled.is_pending(), Ordering::Relaxed);
        if let Poll::Ready(Ok(done)) = &polled
            && moved(done)
        {
            self.activity.ops.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(polled, |n| *n > 0)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(polled, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.wrote(polled, |_| false)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.activity.hibernate.load(Ordering::Relaxed) {
            // hyper ends its side only; the socket and the TLS session live on.
            return Pin::new(&mut this.io).poll_flush(cx);
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// Counts a request in flight until its response head is handed to hyper.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serve HTTP/1.1 on an established TLS stream until the client leaves, the connection
/// upgrades, `keepalive_timeout` passes in silence, or the gateway stops (then the request
/// in flight finishes first).
pub(crate) async fn serve<S>(
    stream: S,
    conn: Connection,
    registry: &Registry,
    keepalive_timeout: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    registry.add(&activity);
    let remote = conn.remote;
    let metrics = conn.metrics.clone();
    let head = conn.max_request_head();
    let conn = Arc::new(conn);
    let service = {
        let activity = activity.clone();
        service_fn(move |request: Request<Incoming>| {
            let conn = conn.clone();
            let in_flight = InFlight::start(&activity);
            async move {
                let response = handler::handle(&conn, request).await;
                drop(in_flight);
                Ok::<Response<Body>, Infallible>(response)
            }
        })
    };
    let mut io = Watched {
        io: stream,
        unread: Bytes::new(),
        activity: activity.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.writev(true);
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
        let mut stopping = registry.stopping.load(Ordering::Relaxed);
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
                if !stopping && registry.stopping.load(Ordering::Relaxed) {
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
            tracing::debug!("connection ended: {e}");
            return;
        }
        if !activity.hibernate.load(Ordering::Relaxed) {
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
            if registry.stopping.load(Ordering::Relaxed) {
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

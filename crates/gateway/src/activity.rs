//! What each client connection is doing, and the one sweep that enforces its deadlines.
//!
//! Every connection (TLS or plain, HTTP/1.1 or HTTP/2, and the metrics listener's) reads
//! and writes through [`Watched`], which records its activity in an [`Activity`] shared with
//! the gateway's [`Registry`]. One sweep task looks at every connection each [`SWEEP`] and:
//!
//! - closes a connection whose request head has been arriving for longer than
//!   `client_header_timeout` (counted from the head's first byte, or from the accept or the
//!   end of the handshake for the first request);
//! - closes one whose response has waited longer than `send_timeout` for the client to take
//!   any of it;
//! - ends, gracefully, an HTTP/2 or plain HTTP/1.1 connection with no request in flight for
//!   `keepalive_timeout` (HTTP/2: a GOAWAY; streams are counted here, PINGs do not count);
//! - asks an idle TLS HTTP/1.1 connection to hibernate ([`crate::keepalive`]), which then
//!   keeps its own `keepalive_timeout`.
//!
//! The deadlines live here, in the connection, not in hyper: a hibernating connection builds
//! a new hyper connection for each request, so hyper's own `header_read_timeout` would start
//! again at every wake-up and never fire. And a sweep costs nothing per request, where a
//! timer armed and disarmed for every request costs tokio's driver a wake-up whenever the new
//! deadline is the earliest.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::config::Timeouts;
use crate::metrics::Metrics;

/// How often connections are looked at: deadlines fire up to this late.
pub(crate) const SWEEP: Duration = Duration::from_millis(250);

/// How a connection is served, which decides who keeps its keep-alive deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// TLS HTTP/1.1: hibernates when idle and keeps `keepalive_timeout` itself.
    Hibernating,
    /// Plain HTTP/1.1 (or the metrics listener): request heads are timed; idle is swept.
    Http1,
    /// HTTP/2: only the first request's head is timed (later ones come in frames between
    /// others); idle (no stream open) is swept.
    Http2,
}

/// A deadline that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Expired {
    ClientHeader = 1,
    Send = 2,
    Keepalive = 3,
}

impl Expired {
    fn from_u8(value: u8) -> Option<Expired> {
        match value {
            1 => Some(Expired::ClientHeader),
            2 => Some(Expired::Send),
            3 => Some(Expired::Keepalive),
            _ => None,
        }
    }

    /// The config key, used as the `check=` name and the metric label.
    pub(crate) fn check(self) -> &'static str {
        match self {
            Expired::ClientHeader => "client_header_timeout",
            Expired::Send => "send_timeout",
            Expired::Keepalive => "keepalive_timeout",
        }
    }
}

/// A connection's client whose certificate verified, as a reload needs it.
#[derive(Debug)]
pub(crate) struct VerifiedClient {
    pub(crate) certificate: Arc<mtls_tls::PeerCert>,
    /// What the client sent after its certificate (DER).
    pub(crate) intermediates: Arc<Vec<Vec<u8>>>,
    pub(crate) remote: std::net::SocketAddr,
}

/// What the sweep and a connection's task share.
#[derive(Debug)]
pub(crate) struct Activity {
    mode: Mode,
    timeouts: Timeouts,
    /// The registry's clock.
    epoch: Instant,
    /// Bumped by every read or write that moved bytes.
    pub(crate) ops: AtomicU64,
    /// `ops` as the previous sweep saw it.
    pub(crate) seen: AtomicU64,
    /// Requests whose response head is not yet with hyper.
    pub(crate) in_flight: AtomicUsize,
    /// Requests whose response has not been sent whole (HTTP/2 streams open).
    streams: AtomicUsize,
    /// Clock (ms + 1; 0 = not) since a request head began arriving and is not whole yet.
    head_since: AtomicU64,
    /// Clock since the last write could not finish (the client is not reading).
    blocked_since: AtomicU64,
    /// One clock per response that has handed hyper a chunk and not been asked for the
    /// next since (0 = asked): an HTTP/2 client that stops sending WINDOW_UPDATE stalls
    /// its streams inside h2's flow control, where no socket write ever blocks.
    stalls: Mutex<Vec<Weak<AtomicU64>>>,
    /// Clock since the last response ended with nothing else in flight.
    idle_since: AtomicU64,
    /// Which deadline passed (an [`Expired`] as u8; 0: none).
    expired: AtomicU8,
    /// Hibernating already: nothing for the sweep to do.
    pub(crate) asleep: AtomicBool,
    /// The sweep asks the connection to hibernate.
    pub(crate) requested: AtomicBool,
    /// The connection is hibernating: hyper's shutdown must leave the socket alone.
    pub(crate) hibernate: AtomicBool,
    /// The server's drain ran out and dropped this connection.
    cut: AtomicBool,
    /// Close this connection as the server would at shutdown: after the requests in
    /// flight (its client was revoked by a reload).
    retire: AtomicBool,
    /// The client certificate, when one verified, and the client's address: what a reload
    /// checks against new CRLs, and names in its log line.
    pub(crate) peer: std::sync::OnceLock<VerifiedClient>,
    /// The connection's task, for the sweep and for shutdown to wake. Flags and a waker,
    /// not a `Notify` or a `watch`: those take a lock each time the task is polled, and the
    /// task is polled for every read and write.
    pub(crate) waker: AtomicWaker,
}

impl Activity {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Quiet since the sweep saw `ops`: nothing moved, nothing in flight, nothing blocked.
    pub(crate) fn quiet_since(&self, ops: u64) -> bool {
        self.ops.load(Ordering::Relaxed) == ops
            && self.in_flight.load(Ordering::Relaxed) == 0
            && self.blocked_since.load(Ordering::Relaxed) == 0
    }

    /// No request open: nothing would be lost by closing now.
    pub(crate) fn is_idle(&self) -> bool {
        self.streams.load(Ordering::Relaxed) == 0
    }

    /// The deadline that passed, if one did.
    pub(crate) fn expired(&self) -> Option<Expired> {
        Expired::from_u8(self.expired.load(Ordering::Relaxed))
    }

    /// Close after the requests in flight, as at shutdown (HTTP/2: a GOAWAY). False when
    /// it was retired already.
    pub(crate) fn retire(&self) -> bool {
        let first = !self.retire.swap(true, Ordering::Relaxed);
        self.waker.wake();
        first
    }

    /// Whether this connection should finish what it has and close: the server is
    /// stopping, or this connection was retired.
    pub(crate) fn stopping(&self, registry: &Registry) -> bool {
        registry.stopping() || self.retire.load(Ordering::Relaxed)
    }

    /// The timeout that goes with `expired`, for log lines.
    /// The connection is being dropped by the end of the server's drain.
    pub(crate) fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
    }

    /// Why a response on this connection stopped before its end, when the connection (not
    /// the client) stopped it: `send_timeout`, or `shutdown` for the end of the drain.
    pub(crate) fn cut_short(&self) -> Option<&'static str> {
        if self.cut.load(Ordering::Relaxed) {
            Some("shutdown")
        } else if self.expired() == Some(Expired::Send) {
            Some("send_timeout")
        } else {
            None
        }
    }

    pub(crate) fn limit(&self, expired: Expired) -> Duration {
        match expired {
            Expired::ClientHeader => self.timeouts.client_header,
            Expired::Send => self.timeouts.send,
            Expired::Keepalive => self.timeouts.keepalive,
        }
    }

    /// A request's head is whole and dispatched: its clock stops, it is in flight.
    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.streams.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        self.idle_since.store(0, Ordering::Relaxed);
    }

    fn response_ended(&self) {
        if self.streams.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// Bytes came in: for HTTP/1, the first of a new request head starts its clock.
    pub(crate) fn read_some(&self) {
        self.ops.fetch_add(1, Ordering::Relaxed);
        if self.mode != Mode::Http2
            && self.head_since.load(Ordering::Relaxed) == 0
            && self.streams.load(Ordering::Relaxed) == 0
        {
            self.head_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// A clock for one response's stall (see `stalls`), watched until it is dropped.
    fn stall_clock(&self) -> Arc<AtomicU64> {
        let clock = Arc::new(AtomicU64::new(0));
        if let Ok(mut stalls) = self.stalls.lock() {
            stalls.push(Arc::downgrade(&clock));
        }
        clock
    }

    /// The oldest running stall clock (0: none), forgetting the responses that are gone.
    fn oldest_stall(&self) -> u64 {
        let Ok(mut stalls) = self.stalls.lock() else {
            return 0;
        };
        let mut oldest = 0;
        stalls.retain(|weak| {
            let Some(clock) = weak.upgrade() else {
                return false;
            };
            let since = clock.load(Ordering::Relaxed);
            if since != 0 && (oldest == 0 || since < oldest) {
                oldest = since;
            }
            true
        });
        oldest
    }

    /// What the sweep decides for this connection at `now`.
    fn check(&self, now: u64) -> Option<Expired> {
        let past = |since: u64, limit: Duration| {
            let limit = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX / 2);
            since != 0 && now >= since.saturating_add(limit)
        };
        if past(
            self.head_since.load(Ordering::Relaxed),
            self.timeouts.client_header,
        ) {
            Some(Expired::ClientHeader)
        } else if past(
            self.blocked_since.load(Ordering::Relaxed),
            self.timeouts.send,
        ) || past(self.oldest_stall(), self.timeouts.send)
        {
            Some(Expired::Send)
        } else if self.mode != Mode::Hibernating
            && self.streams.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
            && past(
                self.idle_since.load(Ordering::Relaxed),
                self.timeouts.keepalive,
            )
        {
            Some(Expired::Keepalive)
        } else {
            None
        }
    }
}

/// Count and log a connection closed because `expired` passed.
pub(crate) fn close_expired(
    metrics: &Metrics,
    remote: std::net::SocketAddr,
    activity: &Activity,
    expired: Expired,
) {
    metrics.timed_out(expired.check());
    let limit = activity.limit(expired);
    let what = match expired {
        Expired::ClientHeader => "no complete request head",
        Expired::Send => "the client took none of the response",
        Expired::Keepalive => "no request",
    };
    tracing::info!(
        "connection closed: client={remote} check={}: {what} within {limit:?}",
        expired.check()
    );
}

/// Where a server is in its life: the one stop signal every listener, connection and
/// background task of a [`crate::runtime::Runtime`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Accepting and serving.
    Running = 0,
    /// No new connections; requests in flight finish, idle connections close at once.
    Draining = 1,
    /// The drain took too long: every connection still open is dropped now (its requests
    /// get their access-log line, ended by `shutdown`).
    Cut = 2,
}

/// The connections the sweep watches, and the stop signal they follow.
#[derive(Debug)]
pub(crate) struct Registry {
    connections: Mutex<Vec<Weak<Activity>>>,
    epoch: Instant,
    /// [`Phase`] as a number, read on every poll of a connection (an atomic load).
    phase: AtomicU8,
    /// The same phase for tasks that wait for it (accept loops, background tasks).
    changes: watch::Sender<Phase>,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            connections: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            phase: AtomicU8::new(Phase::Running as u8),
            changes: watch::Sender::new(Phase::Running),
        }
    }
}

impl Registry {
    /// Watch a new connection, served as `mode` with `timeouts`. Its head clock starts now:
    /// the first request must arrive within `client_header_timeout`.
    pub(crate) fn add(&self, mode: Mode, timeouts: Timeouts) -> Arc<Activity> {
        let activity = Arc::new(Activity {
            mode,
            timeouts,
            epoch: self.epoch,
            ops: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            head_since: AtomicU64::new(0),
            blocked_since: AtomicU64::new(0),
            stalls: Mutex::new(Vec::new()),
            idle_since: AtomicU64::new(0),
            expired: AtomicU8::new(0),
            asleep: AtomicBool::new(false),
            requested: AtomicBool::new(false),
            hibernate: AtomicBool::new(false),
            cut: AtomicBool::new(false),
            retire: AtomicBool::new(false),
            peer: std::sync::OnceLock::new(),
            waker: AtomicWaker::new(),
        });
        activity.head_since.store(activity.now(), Ordering::Relaxed);
        if let Ok(mut list) = self.connections.lock() {
            list.push(Arc::downgrade(&activity));
        }
        activity
    }

    /// Every connection still open.
    pub(crate) fn connections(&self) -> Vec<Arc<Activity>> {
        match self.connections.lock() {
            Ok(list) => list.iter().filter_map(Weak::upgrade).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Fire the deadlines that passed, ask quiet TLS HTTP/1.1 connections to hibernate,
    /// forget the connections that ended, and count the states for the metrics.
    fn sweep(&self, metrics: &Metrics) {
        let Ok(mut list) = self.connections.lock() else {
            return;
        };
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let (mut reading, mut writing) = (0, 0);
        list.retain(|weak| {
            let Some(activity) = weak.upgrade() else {
                return false;
            };
            if activity.head_since.load(Ordering::Relaxed) != 0 {
                reading += 1;
            } else if activity.streams.load(Ordering::Relaxed) > 0 {
                writing += 1;
            }
            if activity.expired.load(Ordering::Relaxed) == 0
                && let Some(expired) = activity.check(now)
            {
                activity.expired.store(expired as u8, Ordering::Relaxed);
                activity.waker.wake();
                return true;
            }
            let ops = activity.ops.load(Ordering::Relaxed);
            let before = activity.seen.swap(ops, Ordering::Relaxed);
            if activity.mode == Mode::Hibernating
                && !activity.asleep.load(Ordering::Relaxed)
                && activity.quiet_since(before)
            {
                activity.requested.store(true, Ordering::Relaxed);
                activity.waker.wake();
            }
            true
        });
        metrics.connection_states(reading, writing);
    }

    /// The server stops accepting: requests in flight finish, then their connections close.
    pub(crate) fn stopping(&self) -> bool {
        self.phase.load(Ordering::Relaxed) >= Phase::Draining as u8
    }

    /// The drain is over: drop the connection now, whatever it is doing.
    pub(crate) fn is_cut(&self) -> bool {
        self.phase.load(Ordering::Relaxed) >= Phase::Cut as u8
    }

    /// Move to `phase` (never back) and wake every connection and waiting task to see it.
    pub(crate) fn enter(&self, phase: Phase) {
        if self.phase.fetch_max(phase as u8, Ordering::Relaxed) >= phase as u8 {
            return;
        }
        self.changes.send_if_modified(|now| {
            let later = phase > *now;
            if later {
                *now = phase;
            }
            later
        });
        if let Ok(list) = self.connections.lock() {
            for activity in list.iter().filter_map(Weak::upgrade) {
                activity.waker.wake();
            }
        }
    }

    /// Wait until the server is at least at `phase`.
    pub(crate) async fn reached(&self, phase: Phase) {
        let mut changes = self.changes.subscribe();
        let _ = changes.wait_for(|now| *now >= phase).await;
    }

    /// The sweep task: deadlines hold while requests drain too; it ends at the cut.
    pub(crate) async fn run(self: Arc<Self>, metrics: Arc<Metrics>) {
        let mut tick = tokio::time::interval(SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.sweep(&metrics),
                () = self.reached(Phase::Cut) => return,
            }
        }
    }
}

/// Counts a request from its dispatch: in flight until its response head is handed to
/// hyper ([`InFlight::head_sent`]), open until the guard is dropped (with the response
/// body, for HTTP/2 and plain HTTP/1.1; at once for hibernating TLS HTTP/1.1, whose idle
/// is found from the bytes).
#[derive(Debug)]
pub(crate) struct InFlight {
    activity: Arc<Activity>,
    head_sent: bool,
}

impl InFlight {
    pub(crate) fn start(activity: &Arc<Activity>) -> InFlight {
        activity.request_started();
        InFlight {
            activity: activity.clone(),
            head_sent: false,
        }
    }

    /// The response head is with hyper.
    pub(crate) fn head_sent(&mut self) {
        if !self.head_sent {
            self.head_sent = true;
            self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.head_sent();
        self.activity.response_ended();
    }
}

/// A response body that keeps its request counted as open until it has been sent (or
/// dropped): what "no stream open" means for HTTP/2's `keepalive_timeout`. It also keeps
/// the response's stall clock: running from a chunk handed to hyper until hyper asks for
/// the next, which it does not while the client's flow-control window stays shut
/// (`send_timeout` for HTTP/2).
#[derive(Debug)]
pub(crate) struct Counted<B> {
    body: B,
    request: InFlight,
    stall: Option<Arc<AtomicU64>>,
}

impl<B> Counted<B> {
    pub(crate) fn new(body: B, request: InFlight) -> Counted<B> {
        Counted {
            body,
            request,
            stall: None,
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        if let Some(stall) = &this.stall {
            stall.store(0, Ordering::Relaxed);
        }
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        // A body that has ended with this chunk (most small answers) is never asked again:
        // no clock for it.
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && frame.is_data()
            && !this.body.is_end_stream()
        {
            let activity = &this.request.activity;
            let stall = this.stall.get_or_insert_with(|| activity.stall_clock());
            stall.store(activity.now(), Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The stream as hyper sees it: counts activity, replays the bytes a previous hyper
/// connection had read but not used, and ignores hyper's shutdown while hibernating.
#[derive(Debug)]
pub(crate) struct Watched<S> {
    pub(crate) io: S,
    pub(crate) unread: Bytes,
    pub(crate) activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub(crate) fn new(io: S, activity: Arc<Activity>) -> Watched<S> {
        Watched {
            io,
            unread: Bytes::new(),
            activity,
        }
    }
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
        let polled = match Pin::new(&mut this.io).poll_read(cx, buf) {
            // rustls: the peer closed TCP without close_notify. To HTTP that is the end of
            // the stream (its own framing tells a cut message: hyper reports an incomplete
            // head or body); as an error it would drop a request already read whole.
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(())),
            polled => polled,
        };
        if buf.filled().len() != before {
            this.activity.read_some();
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
        let blocked = &self.activity.blocked_since;
        if polled.is_pending() {
            if blocked.load(Ordering::Relaxed) == 0 {
                blocked.store(self.activity.now(), Ordering::Relaxed);
            }
        } else if blocked.load(Ordering::Relaxed) != 0 {
            blocked.store(0, Ordering::Relaxed);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts(ms: u64) -> Timeouts {
        let d = Duration::from_millis(ms);
        Timeouts {
            client_header: d,
            client_body: d,
            send: d,
            keepalive: d,
        }
    }

    #[test]
    fn a_head_that_does_not_finish_expires() {
        let registry = Registry::default();
        let activity = registry.add(Mode::Http1, timeouts(100));
        let start = activity.head_since.load(Ordering::Relaxed);
        assert_eq!(activity.check(start + 50), None);
        assert_eq!(activity.check(start + 100), Some(Expired::ClientHeader));
        // Once dispatched, the head clock stops; the response then ends and idle begins.
        let mut request = InFlight::start(&activity);
        assert_eq!(activity.check(start + 1000), None);
        request.head_sent();
        drop(request);
        let idle = activity.idle_since.load(Ordering::Relaxed);
        assert!(idle != 0);
        assert_eq!(activity.check(idle + 100), Some(Expired::Keepalive));
        // The next request's first byte starts a new head clock, which wins over idle.
        activity.read_some();
        let head = activity.head_since.load(Ordering::Relaxed);
        assert!(head != 0);
        assert_eq!(activity.check(head + 100), Some(Expired::ClientHeader));
    }

    #[test]
    fn http2_counts_streams_not_bytes() {
        let registry = Registry::default();
        let activity = registry.add(Mode::Http2, timeouts(100));
        let stream = InFlight::start(&activity);
        drop(stream);
        let idle = activity.idle_since.load(Ordering::Relaxed);
        activity.read_some(); // a PING
        assert_eq!(activity.head_since.load(Ordering::Relaxed), 0);
        assert_eq!(activity.check(idle + 100), Some(Expired::Keepalive));
        let _open = InFlight::start(&activity);
        assert_eq!(activity.check(idle + 10_000), None);
    }

    #[test]
    fn hibernating_connections_keep_their_own_keepalive() {
        let registry = Registry::default();
        let activity = registry.add(Mode::Hibernating, timeouts(100));
        drop(InFlight::start(&activity));
        let idle = activity.idle_since.load(Ordering::Relaxed);
        assert_eq!(activity.check(idle + 10_000), None);
    }

    #[test]
    fn a_blocked_write_expires_at_send_timeout() {
        let registry = Registry::default();
        let activity = registry.add(Mode::Http1, timeouts(100));
        let _request = InFlight::start(&activity);
        activity.blocked_since.store(5, Ordering::Relaxed);
        assert_eq!(activity.check(50), None);
        assert_eq!(activity.check(105), Some(Expired::Send));
    }
}

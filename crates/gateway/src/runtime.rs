//! The one server skeleton: accept, serve, drain, for every listener of the process.
//!
//! `mtls serve`'s listeners, its metrics listener and `mtls echo-server` differ only in
//! what they do with an accepted socket (a [`Serve`]); everything around it is here, once:
//!
//! ```text
//!   Runtime::listen ─► accept loop: a slot of the listener's cap first (at the cap, stop
//!     accepting; clients wait in the kernel's backlog), then accept (EMFILE: back off,
//!     say so once a second)
//!   ─► one task per connection, in a tracing span `client=ADDR` (so rustls' own warnings
//!     name the client), holding its slot and a drain token; its socket is corked (what
//!     the task writes in one turn leaves in one writev, see `cork`)
//!   ─► Serve::connection ─► serve_http / keepalive, both driven by `drive`: deadlines of
//!     its Activity, and the stop signal
//!   Runtime::stop ─► Draining: accept loops end, idle connections close at once (HTTP/2: a
//!     GOAWAY), requests in flight finish ─► after the drain timeout, Cut: what is left is
//!     dropped and its requests logged ─► return when the last connection task has ended
//! ```
//!
//! One stop signal, the [`Registry`]'s [`Phase`]: connections read it on every poll (an
//! atomic) and are woken when it changes; tasks that wait (accept loops, background work)
//! await it. Reload and TCP tunnels are further [`Serve`]s on the same skeleton.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::activity::{Activity, Counted, InFlight, Phase, Registry, Watched, close_expired};
use crate::cork::{self, CorkedIo};
use crate::limits::Throttle;
use crate::metrics::Metrics;

/// What a listener does with an accepted connection.
pub(crate) trait Serve: Send + Sync + 'static {
    /// Serve `tcp` until it ends. `ticket` must live as long as the connection: it holds
    /// the connection's slot and tells [`Runtime::stop`] the connection is still open.
    fn connection(
        self: Arc<Self>,
        tcp: CorkedIo,
        remote: SocketAddr,
        ticket: Ticket,
    ) -> impl Future<Output = ()> + Send + 'static;
}

/// Answers each request of a connection (the same value serves all of them).
pub(crate) trait Handler: Clone + Send + Sync + 'static {
    /// The response body.
    type Body: http_body::Body<Data = bytes::Bytes, Error = std::io::Error> + Unpin + Send + 'static;

    /// The answer to `request`. The future owns what it needs (a clone of an `Arc`), so
    /// that it is made inside the connection's service, not captured and stored twice.
    fn call(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = hyper::Response<Self::Body>> + Send + use<Self>;
}

/// Held by a connection's task for its whole life.
#[derive(Debug)]
pub(crate) struct Ticket {
    pub(crate) registry: Arc<Registry>,
    _slot: OwnedSemaphorePermit,
    _alive: mpsc::Sender<()>,
}

impl Ticket {
    /// A token that keeps [`Runtime::run_until`] waiting while it lives, for work of the
    /// connection that may outlive its task (an HTTP/2 request runs in a task of its own).
    pub(crate) fn hold(&self) -> Hold {
        Hold {
            _alive: self._alive.clone(),
        }
    }
}

/// See [`Ticket::hold`].
#[derive(Debug, Clone)]
pub(crate) struct Hold {
    _alive: mpsc::Sender<()>,
}

/// A connection cap (`max_connections`, or the metrics listener's own), shared by the
/// listeners given the same one.
#[derive(Debug)]
pub(crate) struct Slots {
    free: Arc<Semaphore>,
    max: usize,
    /// "max_connections reached", at most once a second.
    cap_log: Throttle,
    /// accept errors (EMFILE, ENFILE, ENOBUFS), at most once a second.
    accept_log: Throttle,
    /// Whether reaching the cap is worth a warning and a metric (the gateway's listeners),
    /// or is part of the design (the metrics listener's small cap).
    warn: bool,
}

impl Slots {
    /// At most `max` connections at once; `warn`: say so (and count it) when the cap holds
    /// new clients back.
    pub(crate) fn new(max: usize, warn: bool) -> Arc<Slots> {
        Arc::new(Slots {
            free: Arc::new(Semaphore::new(max)),
            max,
            cap_log: Throttle::default(),
            accept_log: Throttle::default(),
            warn,
        })
    }
}

/// The listeners, connections and background tasks of one server, and how they stop.
#[derive(Debug)]
pub(crate) struct Runtime {
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    /// Accept loops and background tasks: they end as the drain begins.
    tasks: Vec<JoinHandle<()>>,
    /// The accept loops added by [`Runtime::listen`] run while these live.
    listening: Vec<StopListening>,
    /// Every connection task holds a clone (in its [`Ticket`]); when the last is gone,
    /// `all_ended` says so.
    alive: mpsc::Sender<()>,
    all_ended: mpsc::Receiver<()>,
}

impl Runtime {
    /// A runtime whose deadline sweep counts into `metrics`.
    pub(crate) fn new(metrics: Arc<Metrics>) -> Runtime {
        let registry = Arc::new(Registry::default());
        // The sweep goes on while requests drain (their deadlines hold); it ends at the cut.
        tokio::spawn(registry.clone().run(metrics.clone()));
        let (alive, all_ended) = mpsc::channel(1);
        Runtime {
            registry,
            metrics,
            tasks: Vec::new(),
            listening: Vec::new(),
            alive,
            all_ended,
        }
    }

    /// Accept on `listener` into `service`, within `slots`, until the drain begins.
    pub(crate) fn listen<S: Serve>(
        &mut self,
        listener: TcpListener,
        slots: Arc<Slots>,
        service: Arc<S>,
    ) {
        let (task, stop) = self.spawner().listen(listener, slots, service);
        self.tasks.push(task);
        self.listening.push(stop);
    }

    /// A handle that adds listeners while the runtime runs (a reload). It keeps the drain
    /// waiting while it lives: give it to a [`Runtime::background`] task, which ends when
    /// the drain begins.
    pub(crate) fn spawner(&self) -> Spawner {
        Spawner {
            registry: self.registry.clone(),
            metrics: self.metrics.clone(),
            alive: self.alive.clone(),
        }
    }

    /// Run `task` until it ends or the drain begins.
    pub(crate) fn background(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        let registry = self.registry.clone();
        self.tasks.push(tokio::spawn(async move {
            tokio::select! {
                () = task => {}
                () = registry.reached(Phase::Draining) => {}
            }
        }));
    }

    /// Serve until `shutdown` completes, then stop: no new connections, requests in flight
    /// finish within `drain`, and what is still open then is cut.
    pub(crate) async fn run_until(mut self, shutdown: impl Future<Output = ()>, drain: Duration) {
        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        self.registry.enter(Phase::Draining);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        drop(self.alive);
        if tokio::time::timeout(drain, self.all_ended.recv())
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown timeout ({drain:?}) reached; closing the remaining connections"
            );
        }
        self.registry.enter(Phase::Cut);
        // A cut connection ends at its next poll, which the phase change has woken.
        let _ = tokio::time::timeout(CUT_GRACE, self.all_ended.recv()).await;
    }
}

/// Adds accept loops to a running [`Runtime`]; see [`Runtime::spawner`].
#[derive(Debug, Clone)]
pub(crate) struct Spawner {
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    alive: mpsc::Sender<()>,
}

/// Ends one accept loop (a listener removed by a reload) when dropped or stopped; its
/// connections go on.
#[derive(Debug)]
pub(crate) struct StopListening(tokio::sync::watch::Sender<bool>);

impl StopListening {
    /// Stop accepting; the socket closes.
    pub(crate) fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Spawner {
    /// The connections' registry (a reload looks at who is connected).
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Accept on `listener` into `service`, within `slots`, until the drain begins or the
    /// returned [`StopListening`] is stopped.
    pub(crate) fn listen<S: Serve>(
        &self,
        listener: TcpListener,
        slots: Arc<Slots>,
        service: Arc<S>,
    ) -> (JoinHandle<()>, StopListening) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let accept = Accept {
            listener,
            slots,
            registry: self.registry.clone(),
            metrics: self.metrics.clone(),
            alive: self.alive.clone(),
            stopped,
        };
        (tokio::spawn(accept.run(service)), StopListening(stop))
    }
}

/// How long connections get to notice the cut and log their requests.
const CUT_GRACE: Duration = Duration::from_secs(1);

/// One listener's accept loop.
struct Accept {
    listener: TcpListener,
    slots: Arc<Slots>,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    alive: mpsc::Sender<()>,
    stopped: tokio::sync::watch::Receiver<bool>,
}

impl Accept {
    async fn run<S: Serve>(mut self, service: Arc<S>) {
        let mut stopped = self.stopped.clone();
        tokio::select! {
            () = self.accept(service) => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
    }

    async fn accept<S: Serve>(&mut self, service: Arc<S>) {
        let addr = self
            .listener
            .local_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string());
        let slots = &self.slots;
        loop {
            let slot = match slots.free.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    if slots.warn {
                        self.metrics.cap_reached();
                        if let Some(held_back) = slots.cap_log.allow() {
                            tracing::warn!(
                                "max_connections ({}) reached: not accepting on {addr} until \
                                 a connection closes{}",
                                slots.max,
                                repeated(held_back)
                            );
                        }
                    }
                    tokio::select! {
                        slot = slots.free.clone().acquire_owned() => match slot {
                            Ok(slot) => slot,
                            Err(_) => return,
                        },
                        () = self.registry.reached(Phase::Draining) => return,
                    }
                }
            };
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = self.registry.reached(Phase::Draining) => return,
            };
            let (tcp, remote) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off a little rather than spin, and say so
                    // once a second, not fifty times.
                    if let Some(held_back) = slots.accept_log.allow() {
                        tracing::warn!("accept on {addr}: {e}{}", repeated(held_back));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let ticket = Ticket {
                registry: self.registry.clone(),
                _slot: slot,
                _alive: self.alive.clone(),
            };
            let span = tracing::info_span!("connection", client = %remote);
            let (io, cork) = cork::split(tcp);
            tokio::spawn(
                cork.cork(service.clone().connection(io, remote, ticket))
                    .instrument(span),
            );
        }
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

/// Serve HTTP/1.1 or HTTP/2 (ALPN `h2`, or h2c prior knowledge on plain listeners) on
/// `io` with hyper-util's auto builder, each request answered by `handler` and counted in
/// `activity` from dispatch until its response body is sent; driven by [`drive`] for the
/// deadlines and the stop signal. `head` bounds the request head (hyper's read buffer).
pub(crate) async fn serve_http<IO, H>(
    io: IO,
    handler: H,
    registry: &Registry,
    activity: Arc<Activity>,
    metrics: &Metrics,
    remote: SocketAddr,
    head: usize,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    // The handler's future is made inside the async block, not passed in: a future made
    // outside and awaited inside is stored twice, and HTTP/2 moves every request's future
    // into a task of its own (a memmove that showed as a quarter of the CPU, twice now).
    let service = {
        let activity = activity.clone();
        service_fn(move |request: Request<Incoming>| {
            let handler = handler.clone();
            let mut request_guard = InFlight::start(&activity);
            async move {
                let response = handler.call(request).await;
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
    // A client that shuts down its sending side after its request still gets the answer
    // (as in keepalive's HTTP/1.1).
    builder.http1().half_close(true);
    builder
        .http2()
        .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX));
    let io = TokioIo::new(Watched::new(io, activity.clone()));
    let served = builder.serve_connection_with_upgrades(io, service);
    drive(served, registry, &activity, metrics, remote).await;
}

/// A hyper connection future that can be told to finish gracefully.
pub(crate) trait Graceful {
    fn shut_down(self: Pin<&mut Self>);
}

/// Serve a connection until it ends, the server stops (requests in flight finish; at the
/// cut, they are dropped), or a deadline of its [`Activity`] passes: `keepalive_timeout`
/// ends it gracefully (HTTP/2: a GOAWAY), `client_header_timeout` and `send_timeout` drop
/// it.
pub(crate) async fn drive<C, E>(
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
            if registry.is_cut() {
                activity.cut();
                return Poll::Ready(None);
            }
            if !stopping && activity.stopping(registry) {
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
        // hyper's own words ("connection error") name no cause: the chain does.
        let because = mtls_tls::cause::describe(error);
        tracing::debug!("connection ended: client={remote}: {because}");
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

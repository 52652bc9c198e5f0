//! The load itself: one tokio task per connection, requests on a schedule, a tally per task.
//!
//! ```text
//!   before the clock:  keep-alive connections opened (requests), or one full handshake
//!                      per connection to fill the session store (resume)
//!   one task per connection ── lanes: 1, or -m HTTP/2 streams polled in the same task
//!       lane: next() ─► due time (now, or its slot on the --rate schedule), -n share, -d end
//!             ─► [connection per request: TCP ─► TLS (full or resumed) ─► HTTP] ─► request
//!             ─► body read ─► Stats::record (2xx: latency; else an error by kind)
//!   join ─► merge the tallies
//! ```
//!
//! hyper's connection future is polled beside the requests in the connection's own task
//! ([`alongside`]) rather than spawned, so a connection costs one task and its requests
//! never cross threads. Bytes are counted above TLS by [`Metered`], which also keeps the
//! first TLS error a read met: in TLS 1.3 the server's refusal of our certificate arrives
//! as the response is read, and hyper passes it on without its cause.

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use mtls_tls::{ClientStream, ProbeClient, ProbeError, QuickHandshake};

use super::plan::{BenchPlan, Mode, Stop};
use super::progress::Progress;
use super::stats::{Failure, Live, Outcome, Stats};

type Body = Full<Bytes>;

/// How much earlier than its slot a `--rate` request may start (see [`Lane::next`]).
const TIMER_SLACK: Duration = Duration::from_millis(1);
type Io = TokioIo<Metered<ClientStream<TcpStream>>>;

/// What every connection needs, the same for all.
struct Shared {
    probe: ProbeClient,
    addr: SocketAddr,
    /// The name verified and sent in SNI.
    host: String,
    /// Cloned for every request.
    template: Request<Body>,
    h2: bool,
    timeout: Duration,
    /// Set by Ctrl-C: no new requests.
    stop: AtomicBool,
}

/// When requests are due and which are recorded; the same for every lane.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: Instant,
    /// The end of the warm-up.
    record_from: Instant,
    /// `-d`: no request starts after this.
    end: Option<Instant>,
    /// `-d`: requests still running this long after `end` are abandoned, uncounted.
    hard_end: Option<Instant>,
    /// `--rate`: seconds between two requests of the whole run.
    interval: Option<f64>,
    lanes: usize,
}

/// A sequence of requests one after another: a connection's, or one HTTP/2 stream's.
#[derive(Debug)]
struct Lane {
    index: usize,
    /// `-n`: this lane's share still to do.
    budget: Option<u64>,
    /// Requests taken from the schedule so far (`--rate`).
    issued: u64,
    /// A request the last connection closed before sending, to send on the next.
    pending: Option<Op>,
    done: bool,
}

/// One request to make.
#[derive(Debug, Clone, Copy)]
struct Op {
    /// When it was due: latency counts from here (coordinated omission: a request late
    /// because the ones before it were slow is slow).
    due: Instant,
    /// Past the warm-up.
    record: bool,
}

/// A task's tally, shared by its lanes (all polled by the one task: never contended).
struct Tally {
    stats: Mutex<Stats>,
    live: Arc<Live>,
}

/// A connection ready for requests (hyper's connection future boxed: it moves from the
/// set-up into its task, and is large for HTTP/1.1).
enum Opened {
    H1 {
        sender: http1::SendRequest<Body>,
        conn: Pin<Box<http1::Connection<Io, Body>>>,
        state: Arc<ConnState>,
    },
    H2 {
        sender: http2::SendRequest<Body>,
        conn: Pin<Box<http2::Connection<Io, Body, TokioExecutor>>>,
        state: Arc<ConnState>,
    },
}

enum Sender {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

/// Why a request got no answer.
enum Trip {
    /// It never left: the connection was closed first.
    Unsent,
    Failed(hyper::Error),
}

/// Why a request was cut short.
enum Late {
    /// `--timeout` passed.
    Timeout,
    /// The run is over (`-d` and its grace).
    Cut,
}

/// One connection's counters, shared by [`Metered`] (inside hyper) and the lanes.
struct ConnState {
    shared: Arc<Shared>,
    read: AtomicU64,
    written: AtomicU64,
    answered: AtomicU64,
    tls_error: Mutex<Option<ProbeError>>,
    /// What the handshake showed, to explain a TLS error met after it.
    handshake: QuickHandshake,
}

/// The TLS stream under hyper, counting bytes and keeping the first TLS error.
struct Metered<IO> {
    inner: IO,
    state: Arc<ConnState>,
}

/// What a connection-per-request exchange came to.
struct Exchanged {
    outcome: Outcome,
    end: Instant,
    bytes: (u64, u64),
    resumed: Option<bool>,
}

/// Run the plan against `addr`; the merged tally and when recording began.
pub(super) async fn run(
    plan: &BenchPlan,
    probe: ProbeClient,
    addr: SocketAddr,
) -> (Stats, Instant) {
    let shared = Arc::new(Shared {
        probe,
        addr,
        host: plan.target.host.clone(),
        template: plan.request.clone(),
        h2: plan.http2,
        timeout: plan.timeout,
        stop: AtomicBool::new(false),
    });
    let interrupt = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shared.stop.store(true, Ordering::Relaxed);
            }
        })
    };
    let links = prepare(plan, &shared).await;
    let start = Instant::now();
    let schedule = Schedule::new(plan, start);
    let lives: Vec<Arc<Live>> = (0..plan.connections).map(|_| Arc::default()).collect();
    let progress = plan
        .progress
        .then(|| Progress::start(lives.clone(), plan.stop, start, schedule.record_from));
    let per = plan.streams_per_connection();
    let tasks: Vec<_> = links
        .into_iter()
        .zip(&lives)
        .enumerate()
        .map(|(c, (link, live))| {
            let lanes = (c * per..(c + 1) * per)
                .map(|index| Lane::new(index, schedule.share(index, plan.stop)))
                .collect();
            let tally = Tally {
                stats: Mutex::new(Stats::new()),
                live: live.clone(),
            };
            tokio::spawn(connection(
                shared.clone(),
                schedule,
                lanes,
                link,
                tally,
                plan.mode,
            ))
        })
        .collect();
    let mut total = Stats::new();
    for task in tasks {
        match task.await {
            Ok(stats) => total.merge(stats),
            Err(e) => total.lost_task(format!("a connection task ended early: {e}")),
        }
    }
    if let Some(progress) = progress {
        progress.finish();
    }
    interrupt.abort();
    (total, schedule.record_from)
}

/// Before the clock starts: open the keep-alive connections (their handshakes are not any
/// request's time), or, to resume, make one full handshake per connection so that the
/// store holds a ticket for each. Failures here are not counted: the run meets them again.
async fn prepare(plan: &BenchPlan, shared: &Arc<Shared>) -> Vec<Option<Opened>> {
    let limit = shared.timeout;
    let mut links = Vec::with_capacity(plan.connections);
    match plan.mode {
        Mode::Requests => {
            let opening: Vec<_> = (0..plan.connections)
                .map(|_| {
                    let shared = shared.clone();
                    tokio::spawn(async move { tokio::time::timeout(limit, open(&shared)).await })
                })
                .collect();
            for opened in join_all(opening).await {
                links.push(opened.ok().and_then(Result::ok).and_then(Result::ok));
            }
        }
        Mode::Resume => {
            let priming: Vec<_> = (0..plan.connections)
                .map(|_| {
                    let shared = shared.clone();
                    tokio::spawn(
                        async move { tokio::time::timeout(limit, exchange(&shared)).await },
                    )
                })
                .collect();
            join_all(priming).await;
            links.extend((0..plan.connections).map(|_| None));
        }
        Mode::Handshakes => links.extend((0..plan.connections).map(|_| None)),
    }
    links
}

/// One connection's task: its lanes until they are done; its tally.
async fn connection(
    shared: Arc<Shared>,
    schedule: Schedule,
    mut lanes: Vec<Lane>,
    link: Option<Opened>,
    tally: Tally,
    mode: Mode,
) -> Stats {
    if mode.connection_per_request() {
        for lane in &mut lanes {
            lane.connection_per_request(&shared, &schedule, &tally)
                .await;
        }
    } else {
        keep_alive(&shared, &schedule, &mut lanes, link, &tally).await;
    }
    tally
        .stats
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Requests mode: requests on the connection until it is lost, then a new one (its
/// opening is part of the next request's time), until every lane is done.
async fn keep_alive(
    shared: &Arc<Shared>,
    schedule: &Schedule,
    lanes: &mut [Lane],
    mut link: Option<Opened>,
    tally: &Tally,
) {
    loop {
        let Some(lane) = lanes.iter_mut().find(|l| !l.done) else {
            return;
        };
        let opened = match link.take() {
            Some(opened) => opened,
            None => {
                let Some(op) = lane.next(schedule, &shared.stop).await else {
                    continue;
                };
                let failure = match within(shared, schedule, open(shared)).await {
                    Ok(Ok(opened)) => {
                        lane.pending = Some(op);
                        serve(shared, schedule, lanes, opened, tally).await;
                        continue;
                    }
                    Ok(Err(failure)) => failure,
                    Err(Late::Timeout) => Failure::timeout(shared.timeout),
                    Err(Late::Cut) => return,
                };
                tally.record(op, Instant::now(), Outcome::Failed(failure), (0, 0), None);
                continue;
            }
        };
        serve(shared, schedule, lanes, opened, tally).await;
    }
}

/// The lanes' requests on one connection, until it is lost or they are done.
async fn serve(
    shared: &Arc<Shared>,
    schedule: &Schedule,
    lanes: &mut [Lane],
    opened: Opened,
    tally: &Tally,
) {
    match opened {
        Opened::H1 {
            sender,
            conn,
            state,
            ..
        } => {
            let mut conn = Some(conn);
            if let Some(lane) = lanes.iter_mut().find(|l| !l.done) {
                let work = lane.requests(shared, schedule, Sender::H1(sender), &state, tally);
                alongside(&mut conn, work).await;
            }
            close(conn, lanes).await;
        }
        Opened::H2 {
            sender,
            conn,
            state,
            ..
        } => {
            let mut conn = Some(conn);
            let work = join_all(lanes.iter_mut().filter(|l| !l.done).map(|lane| {
                lane.requests(shared, schedule, Sender::H2(sender.clone()), &state, tally)
            }));
            // Only the lanes hold senders now: when they stop, the connection may close.
            drop(sender);
            alongside(&mut conn, work).await;
            close(conn, lanes).await;
        }
    }
}

/// At the end, let the connection say goodbye (close_notify, FIN; hyper does it once no
/// sender is left); a lost one is simply dropped.
async fn close<C: Future>(conn: Option<Pin<Box<C>>>, lanes: &[Lane]) {
    if let Some(conn) = conn
        && lanes.iter().all(|l| l.done)
    {
        let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
    }
}

/// One request on a new connection, then the connection closed: `--mode handshakes` and
/// `--mode resume`.
async fn exchange(shared: &Arc<Shared>) -> Exchanged {
    let opened = match open(shared).await {
        Ok(opened) => opened,
        Err(failure) => {
            return Exchanged {
                outcome: Outcome::Failed(failure),
                end: Instant::now(),
                bytes: (0, 0),
                resumed: None,
            };
        }
    };
    let (result, end, state) = match opened {
        Opened::H1 {
            sender,
            conn,
            state,
        } => {
            let (result, end) = once(Sender::H1(sender), conn, &shared.template).await;
            (result, end, state)
        }
        Opened::H2 {
            sender,
            conn,
            state,
        } => {
            let (result, end) = once(Sender::H2(sender), conn, &shared.template).await;
            (result, end, state)
        }
    };
    let outcome = match result {
        Ok(status) => Outcome::Status(status),
        Err(Trip::Unsent) => Outcome::Failed(
            state
                .tls_failure()
                .unwrap_or_else(Failure::closed_unanswered),
        ),
        Err(Trip::Failed(error)) => Outcome::Failed(state.failure(&error)),
    };
    Exchanged {
        outcome,
        end,
        bytes: state.take_bytes(),
        resumed: Some(state.handshake.resumed),
    }
}

/// The request and its answer on `conn`, then the close: close_notify and FIN before the
/// next connection opens, so the server sees each exchange end (`--timeout` bounds it).
async fn once<C>(
    mut sender: Sender,
    conn: Pin<Box<C>>,
    template: &Request<Body>,
) -> (Result<u16, Trip>, Instant)
where
    C: Future<Output = hyper::Result<()>>,
{
    let mut conn = Some(conn);
    let result = alongside(&mut conn, sender.round_trip(template.clone())).await;
    let end = Instant::now();
    drop(sender);
    if let Some(conn) = conn {
        let _ = conn.await;
    }
    (result, end)
}

/// TCP, TLS and the HTTP handshake.
async fn open(shared: &Arc<Shared>) -> Result<Opened, Failure> {
    let tcp = TcpStream::connect(shared.addr)
        .await
        .map_err(|e| Failure::connect(shared.addr, &e))?;
    // Requests are small and written at once; Nagle's algorithm would only hold them.
    let _ = tcp.set_nodelay(true);
    let (tls, handshake) = shared
        .probe
        .connect_quick(tcp, &shared.host)
        .await
        .map_err(Failure::tls)?;
    if shared.h2 && handshake.alpn != Some(0) {
        return Err(Failure::no_http2());
    }
    let state = Arc::new(ConnState {
        shared: shared.clone(),
        read: AtomicU64::new(0),
        written: AtomicU64::new(0),
        answered: AtomicU64::new(0),
        tls_error: Mutex::new(None),
        handshake,
    });
    let io = TokioIo::new(Metered {
        inner: tls,
        state: state.clone(),
    });
    if shared.h2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| state.failure(&e))?;
        Ok(Opened::H2 {
            sender,
            conn: Box::pin(conn),
            state,
        })
    } else {
        let (sender, conn) = http1::handshake(io).await.map_err(|e| state.failure(&e))?;
        Ok(Opened::H1 {
            sender,
            conn: Box::pin(conn),
            state,
        })
    }
}

/// Poll `work` with hyper's connection future beside it, in this task. When the
/// connection ends first it is dropped, which hands every request still waiting its
/// error (or its request back, unsent), so `work` always comes to an end.
async fn alongside<C, F>(conn: &mut Option<Pin<Box<C>>>, work: F) -> F::Output
where
    C: Future,
    F: Future,
{
    let mut work = pin!(work);
    poll_fn(|cx: &mut Context<'_>| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        let Some(running) = conn.as_mut() else {
            return Poll::Pending;
        };
        if running.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        *conn = None;
        work.as_mut().poll(cx)
    })
    .await
}

/// Run `future` within `--timeout`, and not past the end of a `-d` run's grace.
async fn within<F: Future>(
    shared: &Shared,
    schedule: &Schedule,
    future: F,
) -> Result<F::Output, Late> {
    let limit = Instant::now() + shared.timeout;
    let deadline = schedule.hard_end.map_or(limit, |hard| hard.min(limit));
    tokio::time::timeout_at(deadline.into(), future)
        .await
        .map_err(|_| match schedule.hard_end {
            Some(hard) if Instant::now() >= hard => Late::Cut,
            _ => Late::Timeout,
        })
}

impl Schedule {
    fn new(plan: &BenchPlan, start: Instant) -> Schedule {
        let record_from = start + plan.warmup;
        let end = match plan.stop {
            Stop::After(span) => Some(record_from + span),
            Stop::Count(_) => None,
        };
        Schedule {
            start,
            record_from,
            end,
            // Requests running at the end may finish (and count) for a moment.
            hard_end: end.map(|end| end + plan.timeout.min(Duration::from_secs(2))),
            interval: plan.rate.map(|rate| 1.0 / rate),
            lanes: plan.lanes(),
        }
    }

    /// Lane `index`'s share of `-n`: as even as it divides.
    fn share(&self, index: usize, stop: Stop) -> Option<u64> {
        match stop {
            Stop::Count(count) => {
                let lanes = self.lanes as u64;
                Some(count / lanes + u64::from((index as u64) < count % lanes))
            }
            Stop::After(_) => None,
        }
    }

    /// When the `issued`-th request of lane `index` is due with `--rate`: the lanes take
    /// the run's slots in turn, so together they keep the rate (wrk2's schedule).
    fn due(&self, interval: f64, index: usize, issued: u64) -> Instant {
        let slot = index as f64 + issued as f64 * self.lanes as f64;
        self.start + Duration::from_secs_f64(slot * interval)
    }
}

impl Lane {
    fn new(index: usize, budget: Option<u64>) -> Lane {
        Lane {
            index,
            budget,
            issued: 0,
            pending: None,
            done: false,
        }
    }

    /// The next request to make, waiting for its slot with `--rate`; `None` when the lane
    /// is done (its `-n` share made, `-d` over, or Ctrl-C).
    async fn next(&mut self, schedule: &Schedule, stop: &AtomicBool) -> Option<Op> {
        if let Some(op) = self.pending.take() {
            return Some(op);
        }
        if self.done || self.budget == Some(0) || stop.load(Ordering::Relaxed) {
            self.done = true;
            return None;
        }
        let due = match schedule.interval {
            Some(interval) => {
                let slot = schedule.due(interval, self.index, self.issued);
                self.issued += 1;
                if schedule.end.is_some_and(|end| slot >= end) {
                    self.done = true;
                    return None;
                }
                // tokio's timer rounds up to whole milliseconds, and then some: waking a
                // little early and counting from the actual start when that is earlier
                // keeps the timer's lateness out of the latency, while a request late for
                // any other reason still counts from its slot.
                let wake = slot.checked_sub(TIMER_SLACK).unwrap_or(slot);
                tokio::time::sleep_until(wake.into()).await;
                slot.min(Instant::now())
            }
            None => {
                let now = Instant::now();
                if schedule.end.is_some_and(|end| now >= end) {
                    self.done = true;
                    return None;
                }
                now
            }
        };
        let record = due >= schedule.record_from;
        if record && let Some(budget) = &mut self.budget {
            *budget -= 1;
        }
        Some(Op { due, record })
    }

    /// Requests on one keep-alive connection until the lane is done or the connection
    /// is lost.
    async fn requests(
        &mut self,
        shared: &Shared,
        schedule: &Schedule,
        mut sender: Sender,
        state: &ConnState,
        tally: &Tally,
    ) {
        while let Some(op) = self.next(schedule, &shared.stop).await {
            let result = within(shared, schedule, sender.round_trip(shared.template.clone())).await;
            let end = Instant::now();
            let outcome = match result {
                Ok(Ok(status)) => {
                    state.answered.fetch_add(1, Ordering::Relaxed);
                    Outcome::Status(status)
                }
                Ok(Err(Trip::Unsent)) => match state.tls_failure() {
                    Some(failure) => Outcome::Failed(failure),
                    None => {
                        let h2 = matches!(sender, Sender::H2(_));
                        if state.answered.load(Ordering::Relaxed) > 0
                            || (h2 && answered_soon(state).await)
                        {
                            // The server closed a connection that served (nginx does after
                            // keepalive_requests): not an error; the request goes on the
                            // next.
                            self.pending = Some(op);
                            return;
                        }
                        Outcome::Failed(Failure::closed_unanswered())
                    }
                },
                Ok(Err(Trip::Failed(error))) => Outcome::Failed(state.failure(&error)),
                Err(Late::Timeout) => Outcome::Failed(Failure::timeout(shared.timeout)),
                Err(Late::Cut) => {
                    self.done = true;
                    return;
                }
            };
            let answered = matches!(outcome, Outcome::Status(_));
            tally.record(op, end, outcome, state.take_bytes(), None);
            // HTTP/1.1 cannot go on after a failure; an HTTP/2 stream's may be its own.
            if !answered && (matches!(sender, Sender::H1(_)) || sender.is_closed()) {
                return;
            }
        }
    }

    /// `--mode handshakes` / `resume`: a connection for every request.
    async fn connection_per_request(
        &mut self,
        shared: &Arc<Shared>,
        schedule: &Schedule,
        tally: &Tally,
    ) {
        while let Some(op) = self.next(schedule, &shared.stop).await {
            match within(shared, schedule, exchange(shared)).await {
                Ok(done) => tally.record(op, done.end, done.outcome, done.bytes, done.resumed),
                Err(Late::Timeout) => tally.record(
                    op,
                    Instant::now(),
                    Outcome::Failed(Failure::timeout(shared.timeout)),
                    (0, 0),
                    None,
                ),
                Err(Late::Cut) => return,
            }
        }
    }
}

/// Whether a connection that has not been seen to answer yet does within a moment. The
/// streams of one HTTP/2 connection end in any order: when a server answers seven streams
/// and sends a GOAWAY that leaves the eighth unprocessed, all in one read, the eighth's
/// task may run before the seven count their answers. Waiting up to 100 ms for them tells
/// that connection apart from one that closed without answering anything (which counts
/// as a failure, so a server that closes every connection cannot loop the run).
async fn answered_soon(state: &ConnState) -> bool {
    for _ in 0..50 {
        if state.answered.load(Ordering::Relaxed) > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

/// Whether HTTP/2 says the server never processed the request: a stream above the last
/// one a graceful GOAWAY covers (nginx sends one after `keepalive_requests`), or one
/// refused with REFUSED_STREAM. Such a request may be sent again on a new connection
/// (RFC 9113, section 8.7). hyper hands these out as errors without the request; the h2
/// error under them says which, by type: a GOAWAY with NO_ERROR or a REFUSED_STREAM reset,
/// both from the server.
fn unprocessed(error: &hyper::Error) -> bool {
    mtls_tls::cause::find::<h2::Error>(error).is_some_and(|h2| {
        h2.is_remote()
            && match h2.reason() {
                Some(h2::Reason::NO_ERROR) => h2.is_go_away(),
                Some(h2::Reason::REFUSED_STREAM) => h2.is_reset(),
                _ => false,
            }
    })
}

impl Tally {
    fn record(
        &self,
        op: Op,
        end: Instant,
        outcome: Outcome,
        bytes: (u64, u64),
        resumed: Option<bool>,
    ) {
        self.live.done.fetch_add(1, Ordering::Relaxed);
        if !op.record {
            return;
        }
        self.live.measured.fetch_add(1, Ordering::Relaxed);
        if !matches!(outcome, Outcome::Status(200..=299)) {
            self.live.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(op.due, end, outcome, bytes, resumed);
    }
}

impl Sender {
    /// Send the request and read the whole answer; its status.
    async fn round_trip(&mut self, request: Request<Body>) -> Result<u16, Trip> {
        let sent = match self {
            Sender::H1(sender) => {
                if sender.ready().await.is_err() {
                    return Err(Trip::Unsent);
                }
                sender.try_send_request(request).await
            }
            Sender::H2(sender) => sender.try_send_request(request).await,
        };
        let response = match sent {
            Ok(response) => response,
            // The request comes back when it never left (the connection closed first).
            Err(error) if error.message().is_some() => return Err(Trip::Unsent),
            Err(error) if unprocessed(error.error()) => return Err(Trip::Unsent),
            Err(error) => return Err(Trip::Failed(error.into_error())),
        };
        let status = response.status().as_u16();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(Trip::Failed)?;
        }
        Ok(status)
    }

    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(sender) => sender.is_closed(),
            Sender::H2(sender) => sender.is_closed(),
        }
    }
}

impl ConnState {
    /// Bytes moved since the last call.
    fn take_bytes(&self) -> (u64, u64) {
        (
            self.read.swap(0, Ordering::Relaxed),
            self.written.swap(0, Ordering::Relaxed),
        )
    }

    /// The TLS error under a failed request, if a read or write met one.
    fn tls_failure(&self) -> Option<Failure> {
        self.tls_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .map(Failure::tls)
    }

    /// A failed request: in TLS words when TLS failed under it.
    fn failure(&self, error: &hyper::Error) -> Failure {
        self.tls_failure().unwrap_or_else(|| Failure::http(error))
    }

    fn note(&self, error: &io::Error) {
        let answered = self.answered.load(Ordering::Relaxed) > 0;
        if let Some(found) = self
            .shared
            .probe
            .quick_stream_error(&self.handshake, error, answered)
        {
            self.tls_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(found);
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Metered<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &poll {
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as u64;
                this.state.read.fetch_add(n, Ordering::Relaxed);
            }
            Poll::Ready(Err(error)) => this.state.note(error),
            Poll::Pending => {}
        }
        poll
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Metered<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(&poll);
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        if let Poll::Ready(Err(error)) = &poll {
            this.state.note(error);
        }
        poll
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        if let Poll::Ready(Err(error)) = &poll {
            this.state.note(error);
        }
        poll
    }
}

impl<IO> Metered<IO> {
    fn wrote(&self, poll: &Poll<io::Result<usize>>) {
        match poll {
            Poll::Ready(Ok(n)) => {
                self.state.written.fetch_add(*n as u64, Ordering::Relaxed);
            }
            Poll::Ready(Err(error)) => self.state.note(error),
            Poll::Pending => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(lanes: usize, rate: Option<f64>, warmup: Duration) -> Schedule {
        let start = Instant::now();
        Schedule {
            start,
            record_from: start + warmup,
            end: None,
            hard_end: None,
            interval: rate.map(|r| 1.0 / r),
            lanes,
        }
    }

    #[test]
    fn shares_of_n_add_up() {
        let s = schedule(4, None, Duration::ZERO);
        let shares: Vec<u64> = (0..4)
            .map(|i| s.share(i, Stop::Count(10)).expect("count"))
            .collect();
        assert_eq!(shares, [3, 3, 2, 2]);
        assert_eq!(s.share(0, Stop::After(Duration::from_secs(1))), None);
    }

    #[test]
    fn lanes_take_the_rate_slots_in_turn() {
        // 100/s over 4 lanes: lane 1's requests are slots 1, 5, 9 ... 10 ms apart.
        let s = schedule(4, Some(100.0), Duration::ZERO);
        let interval = s.interval.expect("rate");
        let at = |lane, issued| s.due(interval, lane, issued).duration_since(s.start);
        assert_eq!(at(0, 0), Duration::ZERO);
        assert_eq!(at(1, 0), Duration::from_millis(10));
        assert_eq!(at(1, 2), Duration::from_millis(90));
        assert_eq!(at(3, 1), Duration::from_millis(70));
    }

    #[tokio::test]
    async fn warmup_requests_are_not_recorded_and_not_counted_towards_n() {
        let mut s = schedule(1, None, Duration::from_millis(30));
        s.end = None;
        let stop = AtomicBool::new(false);
        let mut lane = Lane::new(0, Some(2));
        let first = lane.next(&s, &stop).await.expect("warm-up request");
        assert!(!first.record);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(lane.next(&s, &stop).await.expect("one").record);
        assert!(lane.next(&s, &stop).await.expect("two").record);
        assert!(lane.next(&s, &stop).await.is_none(), "-n share made");
        assert!(lane.done);
    }

    #[tokio::test]
    async fn stop_ends_lanes_but_a_pending_request_goes_first() {
        let s = schedule(1, None, Duration::ZERO);
        let stop = AtomicBool::new(true);
        let mut lane = Lane::new(0, None);
        let op = Op {
            due: Instant::now(),
            record: true,
        };
        lane.pending = Some(op);
        assert!(lane.next(&s, &stop).await.is_some());
        assert!(lane.next(&s, &stop).await.is_none());
    }
}

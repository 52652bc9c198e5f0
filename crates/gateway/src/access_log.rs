//! The access log: nginx's `combined` format, then the TLS facts an mTLS operator needs.
//!
//! ```text
//! 127.0.0.1 - - [23/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/7.88.1" \
//!     tls=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 resumed=. client="CN=alice" verify=SUCCESS \
//!     rt=0.000 end=ok
//! ```
//!
//! The line is written when the response has ended, not when its head went out: the size
//! is the body bytes really sent (nginx's `$body_bytes_sent`), `rt` runs to the last byte,
//! and `end` says how it ended: `ok`; `client_closed` (the client went away or reset the
//! stream); `send_timeout`; `shutdown` (cut at the end of a shutdown's drain); or the check
//! name of the upstream's failure (`upstream_truncated`, `read_timeout`).
//!
//! Lines go through a bounded channel to one writer task, so a request never waits on the
//! terminal or the disk; if the writer falls behind by more than the channel holds, lines
//! are dropped and counted rather than slowing requests down.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, header};
use http_body::{Body as _, Frame, SizeHint};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use mtls_tls::HandshakeInfo;

use crate::activity::Activity;
use crate::body::Body;
use crate::config::AccessLog;
use crate::error::Error;

const TIME_LOCAL: &[FormatItem<'static>] = format_description!(
    "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
);

/// A handle to the access-log writer; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AccessLogger {
    tx: Option<mpsc::Sender<Message>>,
    dropped: Arc<AtomicU64>,
}

#[derive(Debug)]
enum Message {
    Line(String),
    Flush(oneshot::Sender<()>),
}

/// What the log needs from a request, taken before the request is handed on (a proxied
/// request's body goes to the upstream).
#[derive(Debug)]
pub(crate) struct RequestLine {
    method: http::Method,
    target: String,
    version: http::Version,
    referer: Option<http::HeaderValue>,
    user_agent: Option<http::HeaderValue>,
}

impl RequestLine {
    pub(crate) fn of<B>(request: &Request<B>) -> RequestLine {
        RequestLine {
            method: request.method().clone(),
            target: request
                .uri()
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
            version: request.version(),
            referer: request.headers().get(header::REFERER).cloned(),
            user_agent: request.headers().get(header::USER_AGENT).cloned(),
        }
    }
}

/// A request whose response is on its way: its access-log line is written when the body
/// has been sent, fails, or is dropped (the client went away, `send_timeout`, the end of
/// a shutdown's drain), with the bytes really sent, the time to the last byte, and how it
/// ended (`end=`).
#[derive(Debug)]
pub(crate) struct Pending {
    logger: AccessLogger,
    client: IpAddr,
    request: RequestLine,
    status: u16,
    /// ` tls=... verify=...`, made while the handshake's facts are at hand.
    tls: String,
    started: Instant,
    sent: u64,
    /// The Content-Length announced: hyper stops polling a body once it has sent that many
    /// bytes, so a body that never says it has ended is whole when this much has gone.
    length: Option<u64>,
    activity: Arc<Activity>,
    written: bool,
}

impl Drop for Pending {
    /// Dropped unwritten: the response stopped short, cut by the connection
    /// (`send_timeout`, `shutdown`) or by the client.
    fn drop(&mut self) {
        if !self.written {
            self.write(self.activity.cut_short().unwrap_or("client_closed"));
        }
    }
}

impl Pending {
    /// The line of `request`, which arrived just now on the connection from `client` with
    /// the handshake `tls`. Until [`Pending::answered`] says otherwise, its status is 499
    /// (nginx's "no response was sent"): a request dropped before its answer (the client
    /// left, or a shutdown cut it) is logged so.
    pub(crate) fn new<B>(
        logger: &AccessLogger,
        client: IpAddr,
        tls: Option<&HandshakeInfo>,
        activity: &Arc<Activity>,
        request: &Request<B>,
    ) -> Box<Pending> {
        let tls = match tls {
            Some(tls) => {
                let peer = tls.peer.as_ref().map_or("-", |p| p.subject.as_str());
                format!(
                    " tls={} cipher={} resumed={} client=\"{}\" verify={}",
                    tls.protocol,
                    tls.cipher,
                    if tls.resumed { "r" } else { "." },
                    escape(peer),
                    tls.verify
                )
            }
            None => " tls=- cipher=- resumed=- client=\"-\" verify=NONE".to_owned(),
        };
        Box::new(Pending {
            logger: logger.clone(),
            client,
            request: RequestLine::of(request),
            status: 499,
            tls,
            started: Instant::now(),
            sent: 0,
            length: None,
            activity: activity.clone(),
            written: false,
        })
    }

    /// The response head is on its way with `status` and `headers`.
    pub(crate) fn answered(&mut self, status: http::StatusCode, headers: &http::HeaderMap) {
        self.status = status.as_u16();
        self.length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
    }

    fn finish(mut self: Box<Self>, end: &str) {
        self.write(end);
        self.written = true;
    }

    fn write(&self, end: &str) {
        let header = |value: &Option<http::HeaderValue>| {
            value
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let request = &self.request;
        let when = OffsetDateTime::now_utc()
            .format(TIME_LOCAL)
            .unwrap_or_default();
        let line = format!(
            "{} - - [{when}] \"{} {} {:?}\" {} {} \"{}\" \"{}\"{} rt={:.3} end={end}\n",
            self.client,
            request.method,
            escape(&request.target),
            request.version,
            self.status,
            self.sent,
            escape(&header(&request.referer)),
            escape(&header(&request.user_agent)),
            self.tls,
            self.started.elapsed().as_secs_f64(),
        );
        self.logger.log(line);
    }
}

/// A response body that writes its request's access-log line when it ends (see
/// [`Pending`]); without a pending line (`access_log = "off"`) it only passes frames on.
#[derive(Debug)]
pub(crate) struct Logged {
    body: Body,
    pending: Option<Box<Pending>>,
}

impl Logged {
    pub(crate) fn new(body: Body, pending: Option<Box<Pending>>) -> Logged {
        Logged { body, pending }
    }

    fn finish(&mut self, end: &str) {
        if let Some(pending) = self.pending.take() {
            pending.finish(end);
        }
    }
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Some(pending) = this.pending.as_mut() {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    pending.sent += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                Poll::Ready(Some(Err(e))) => {
                    let end = Error::within(e).map_or("error", |e| e.check);
                    this.finish(end);
                }
                Poll::Ready(None) => this.finish("ok"),
                Poll::Pending => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Logged {
    /// hyper stops polling a body that says it has ended; one dropped before that was cut
    /// short, and its [`Pending`] says so as it drops.
    fn drop(&mut self) {
        let whole = self
            .pending
            .as_ref()
            .is_some_and(|p| p.length == Some(p.sent));
        if whole || self.body.is_end_stream() {
            self.finish("ok");
        }
    }
}

/// Quotes and control characters escaped as nginx does (`\x22`), so a line is one line.
fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    let plain = |b: u8| b != b'"' && b != b'\\' && (0x20..0x7f).contains(&b);
    if !text.bytes().any(|b| !plain(b)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for b in text.bytes() {
        if !plain(b) {
            out.push_str(&format!("\\x{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    std::borrow::Cow::Owned(out)
}

impl AccessLogger {
    /// Start the writer task for `target`.
    pub(crate) fn start(target: &AccessLog) -> std::io::Result<AccessLogger> {
        let dropped = Arc::new(AtomicU64::new(0));
        let mut out: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = match target {
            AccessLog::Off => return Ok(AccessLogger { tx: None, dropped }),
            AccessLog::Stdout => Box::new(tokio::io::stdout()),
            AccessLog::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("access_log {}: {e}", path.display()))
                    })?;
                Box::new(tokio::fs::File::from_std(file))
            }
        };
        let (tx, mut rx) = mpsc::channel::<Message>(8192);
        tokio::spawn(async move {
            let mut buffer = Vec::with_capacity(64 * 1024);
            while let Some(message) = rx.recv().await {
                let mut flushes = Vec::new();
                let mut handle = |m: Message, buffer: &mut Vec<u8>| match m {
                    Message::Line(line) => buffer.extend_from_slice(line.as_bytes()),
                    Message::Flush(done) => flushes.push(done),
                };
                handle(message, &mut buffer);
                // Batch whatever else is already queued into one write.
                while buffer.len() < 60 * 1024 {
                    match rx.try_recv() {
                        Ok(m) => handle(m, &mut buffer),
                        Err(_) => break,
                    }
                }
                if out.write_all(&buffer).await.is_err() || out.flush().await.is_err() {
                    // Nowhere to report a broken log sink but stderr; keep serving.
                    eprintln!("access log: write failed; lines lost");
                }
                buffer.clear();
                for done in flushes {
                    let _ = done.send(());
                }
            }
        });
        Ok(AccessLogger {
            tx: Some(tx),
            dropped,
        })
    }

    /// Whether lines are written at all.
    pub(crate) fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    fn log(&self, line: String) {
        if let Some(tx) = &self.tx
            && tx.try_send(Message::Line(line)).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Wait until every line logged so far is written.
    pub(crate) async fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (done, wait) = oneshot::channel();
            if tx.send(Message::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!("access log: {dropped} lines dropped because the writer fell behind");
        }
    }
}

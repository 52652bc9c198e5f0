//! The access log: nginx's `combined` format, then the TLS facts an mTLS operator needs.
//!
//! ```text
//! 127.0.0.1 - - [23/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/7.88.1" \
//!     tls=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 resumed=. client="CN=alice" verify=SUCCESS rt=0.000
//! ```
//!
//! Lines go through a bounded channel to one writer task, so a request never waits on the
//! terminal or the disk; if the writer falls behind by more than the channel holds, lines
//! are dropped and counted rather than slowing requests down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use http::{Request, Response, header};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use crate::config::AccessLog;
use crate::serve::Connection;

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

/// One finished request, formatted off the request path's hot part.
#[derive(Debug)]
pub(crate) struct Entry(String);

impl Entry {
    pub(crate) fn new<C>(
        conn: &Connection,
        request: &RequestLine,
        response: &Response<C>,
        started: Instant,
    ) -> Entry {
        let header = |value: &Option<http::HeaderValue>| {
            value
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let bytes = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("0");
        let now = OffsetDateTime::now_utc();
        let when = now.format(TIME_LOCAL).unwrap_or_default();
        let mut line = format!(
            "{} - - [{when}] \"{} {} {:?}\" {} {bytes} \"{}\" \"{}\"",
            conn.remote.ip(),
            request.method,
            escape(&request.target),
            request.version,
            response.status().as_u16(),
            escape(&header(&request.referer)),
            escape(&header(&request.user_agent)),
        );
        match &conn.tls {
            Some(tls) => {
                let client = tls.peer.as_ref().map_or("-", |p| p.subject.as_str());
                line.push_str(&format!(
                    " tls={} cipher={} resumed={} client=\"{}\" verify={}",
                    tls.protocol,
                    tls.cipher,
                    if tls.resumed { "r" } else { "." },
                    escape(client),
                    tls.verify
                ));
            }
            None => line.push_str(" tls=- cipher=- resumed=- client=\"-\" verify=NONE"),
        }
        line.push_str(&format!(" rt={:.3}\n", started.elapsed().as_secs_f64()));
        Entry(line)
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

    pub(crate) fn log(&self, entry: Entry) {
        if let Some(tx) = &self.tx
            && tx.try_send(Message::Line(entry.0)).is_err()
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

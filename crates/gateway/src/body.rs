//! The one response body type of the gateway, and the request-body limit.
//!
//! Static files stream from disk, generated pages are a single buffer, and proxied bodies
//! stream from upstreams; boxing them behind one type keeps every route's handler
//! signature the same without generic plumbing through the router.
//!
//! `Checked` holds a request body to `client_max_body_size` when its length is not
//! announced (chunked, or HTTP/2 without content-length) and to `client_body_timeout`: it
//! streams the body on and fails it at the first byte over the limit or when the client
//! stalls, and says which through a `BodyVerdict` the proxy reads to answer 413 or 408
//! rather than blame the upstream.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};

use crate::error::Error;

/// A response body: any stream of byte chunks that may fail with an I/O error.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A body made of one buffer.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body (HEAD, 304, redirects).
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// nginx's `lingering_time`: how long a refused request's body is read and thrown away.
const LINGER: std::time::Duration = std::time::Duration::from_secs(30);

/// Read and discard what is left of a refused request's body, for at most [`LINGER`], in a
/// task of its own (nginx's lingering close). Dropping it instead resets an HTTP/2 stream,
/// or closes an HTTP/1.1 connection, while the client is still sending: many clients then
/// report the reset and never show the answer.
pub(crate) fn discard(mut body: hyper::body::Incoming) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(LINGER, async move {
            while let Some(Ok(_)) = body.frame().await {}
        })
        .await;
    });
}

/// Why a [`Checked`] request body failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum BodyFault {
    /// More than `client_max_body_size` bytes: 413.
    TooLarge = 1,
    /// Nothing for `client_body_timeout`: 408.
    Timeout = 2,
    /// The client's body itself failed (malformed chunking, the client went away): 400.
    Client = 3,
}

impl BodyFault {
    /// The client's error this fault is: `max` is `client_max_body_size`, `timeout`
    /// `client_body_timeout`.
    pub(crate) fn error(self, max: Option<u64>, timeout: Duration) -> Error {
        match self {
            BodyFault::TooLarge => Error::client(
                "client_max_body_size",
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body went over client_max_body_size ({} bytes)",
                    max.unwrap_or_default()
                ),
            ),
            BodyFault::Timeout => Error::client(
                "client_body_timeout",
                http::StatusCode::REQUEST_TIMEOUT,
                format!("no body data within client_body_timeout ({timeout:?})"),
            ),
            BodyFault::Client => Error::client(
                "client_body_invalid",
                http::StatusCode::BAD_REQUEST,
                "The request body broke off or was malformed.",
            ),
        }
    }
}

/// What a [`Checked`] body reports to whoever sends it on (the proxy): the fault, if any.
#[derive(Debug, Default)]
pub(crate) struct BodyVerdict(AtomicU8);

impl BodyVerdict {
    /// The fault that ended the body, if one did.
    pub(crate) fn fault(&self) -> Option<BodyFault> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(BodyFault::TooLarge),
            2 => Some(BodyFault::Timeout),
            3 => Some(BodyFault::Client),
            _ => None,
        }
    }

    fn set(&self, fault: BodyFault) {
        self.0.store(fault as u8, Ordering::Relaxed);
    }
}

/// A request body held to `client_max_body_size` (for a body whose length is not announced)
/// and `client_body_timeout` (between two reads). The timer is armed only while the client
/// makes us wait, so a body that flows costs no timer.
pub(crate) struct Checked<B> {
    inner: B,
    left: Option<u64>,
    limit: u64,
    timeout: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
    verdict: Arc<BodyVerdict>,
}

impl<B> std::fmt::Debug for Checked<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("left", &self.left)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<B> Checked<B> {
    /// `inner`, failing past `limit` bytes (`None`: no limit) or after `timeout` without
    /// a byte; `verdict` says which.
    pub(crate) fn new(
        inner: B,
        limit: Option<u64>,
        timeout: Duration,
        verdict: Arc<BodyVerdict>,
    ) -> Checked<B> {
        Checked {
            inner,
            left: limit,
            limit: limit.unwrap_or(u64::MAX),
            timeout,
            waiting: None,
            verdict,
        }
    }

    fn fail(&self, fault: BodyFault) -> std::io::Error {
        self.verdict.set(fault);
        std::io::Error::other(match fault {
            BodyFault::TooLarge => format!(
                "request body over client_max_body_size ({} bytes)",
                self.limit
            ),
            BodyFault::Timeout => format!(
                "no request body data within client_body_timeout ({:?})",
                self.timeout
            ),
            BodyFault::Client => "the request body broke off or was malformed".to_owned(),
        })
    }
}

impl<B> http_body::Body for Checked<B>
where
    B: http_body::Body<Data = Bytes, Error = std::io::Error> + Unpin,
{
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if polled.is_pending() {
            let timeout = this.timeout;
            let waiting = this
                .waiting
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
            if waiting.as_mut().poll(cx).is_ready() {
                this.waiting = None;
                return Poll::Ready(Some(Err(this.fail(BodyFault::Timeout))));
            }
            return Poll::Pending;
        }
        this.waiting = None;
        if let Poll::Ready(Some(Err(_))) = &polled {
            this.verdict.set(BodyFault::Client);
            return polled;
        }
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Some(left) = &mut this.left
        {
            let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
            if len > *left {
                return Poll::Ready(Some(Err(this.fail(BodyFault::TooLarge))));
            }
            *left -= len;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checked_bodies_pass_up_to_the_limit_and_fail_past_it() {
        let verdict = Arc::new(BodyVerdict::default());
        let second = Duration::from_secs(1);
        let body = Checked::new(full(vec![b'x'; 10]), Some(10), second, verdict.clone());
        assert_eq!(
            body.collect().await.expect("at the limit").to_bytes().len(),
            10
        );
        assert_eq!(verdict.fault(), None);
        let body = Checked::new(full(vec![b'x'; 11]), Some(10), second, verdict.clone());
        assert!(body.collect().await.is_err());
        assert_eq!(verdict.fault(), Some(BodyFault::TooLarge));
    }

    #[tokio::test]
    async fn a_body_that_stalls_fails_at_the_timeout() {
        let verdict = Arc::new(BodyVerdict::default());
        use futures_util::StreamExt as _;
        let first = Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"some")));
        let frames = futures_util::stream::iter([first]).chain(futures_util::stream::pending());
        let stalled = http_body_util::StreamBody::new(frames);
        let body = Checked::new(stalled, None, Duration::from_millis(50), verdict.clone());
        assert!(body.collect().await.is_err());
        assert_eq!(verdict.fault(), Some(BodyFault::Timeout));
    }
}

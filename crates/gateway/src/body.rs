//! The one response body type of the gateway, and the request-body limit.
//!
//! Static files stream from disk, generated pages are a single buffer, and proxied bodies
//! stream from upstreams; boxing them behind one type keeps every route's handler
//! signature the same without generic plumbing through the router.
//!
//! [`Capped`] is `client_max_body_size` for a body whose length is not announced (chunked,
//! or HTTP/2 without content-length): it streams the body on and fails it at the first
//! byte over the limit, and says so through a flag the proxy reads to answer 413 rather
//! than 502.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};

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

/// A request body cut off past `limit` bytes (see the module documentation).
#[derive(Debug)]
pub(crate) struct Capped<B> {
    inner: B,
    left: u64,
    limit: u64,
    exceeded: Arc<AtomicBool>,
}

impl<B> Capped<B> {
    /// `inner`, failing once more than `limit` bytes have come; `exceeded` turns true then.
    pub(crate) fn new(inner: B, limit: u64, exceeded: Arc<AtomicBool>) -> Capped<B> {
        Capped {
            inner,
            left: limit,
            limit,
            exceeded,
        }
    }
}

impl<B> http_body::Body for Capped<B>
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
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
            if len > this.left {
                this.exceeded.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(std::io::Error::other(format!(
                    "request body over client_max_body_size ({} bytes)",
                    this.limit
                )))));
            }
            this.left -= len;
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
    async fn capped_bodies_pass_up_to_the_limit_and_fail_past_it() {
        let flag = Arc::new(AtomicBool::new(false));
        let body = Capped::new(full(vec![b'x'; 10]), 10, flag.clone());
        assert_eq!(
            body.collect().await.expect("at the limit").to_bytes().len(),
            10
        );
        assert!(!flag.load(Ordering::Relaxed));
        let body = Capped::new(full(vec![b'x'; 11]), 10, flag.clone());
        assert!(body.collect().await.is_err());
        assert!(flag.load(Ordering::Relaxed));
    }
}

//! The one response body type of the gateway.
//!
//! Static files stream from disk, generated pages are a single buffer, and (issue 4) proxied
//! bodies stream from upstreams; boxing them behind one type keeps every route's handler
//! signature the same without generic plumbing through the router.

use bytes::Bytes;
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

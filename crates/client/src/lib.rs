//! `mtls-client`: `mtls get` (and, with issue 6, `mtls bench`).
//!
//! `get` is seed 001's httplib2 script (a CA, a client key and certificate, one GET) with
//! seed 004's walk through a request made visible: every phase timed, the handshake
//! summarised, every handshake message traced.
//!
//! ```text
//!   GetFlags (strings from the CLI) ──TryFrom──► GetRequest (checked; files read)
//!   get(&GetRequest, &mut Observer) ──► Report { hops: [Hop], error }
//!        per hop:  DNS ─► TCP ─► Recording (bytes + times) ─► mtls-tls ProbeClient (TLS)
//!                  ─► hyper conn (HTTP/1.1 or HTTP/2) ─► head ─► body (to the Observer)
//!                  ─► with --trace: the recording through mtls-inspect's Dissector
//! ```
//!
//! The library decides nothing about output: the CLI prints heads, summaries, the timing
//! picture, traces or JSON from the [`Report`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod get;
pub mod record;
pub mod request;

pub use get::{GetError, Hop, Observer, Report, Timing, get};
pub use request::{GetFlags, GetRequest, RequestError};

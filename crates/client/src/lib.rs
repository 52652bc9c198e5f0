//! `mtls-client`: `mtls get` and `mtls bench`.
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
//! `bench` (see its module) reuses `get`'s flag conversion and `mtls-tls`'s client, built
//! for load: one tokio task per connection, a tally per task, one report at the end.
//!
//! The library decides nothing about output: the CLI prints heads, summaries, the timing
//! picture, traces or JSON from the [`Report`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bench;
pub mod fetch;
pub mod get;
pub mod record;
pub mod request;

pub use bench::{BenchError, BenchFlags, BenchPlan, BenchReport};
pub use get::{GetError, Hop, Observer, Report, Timing, get};
pub use request::{GetFlags, GetRequest, RequestError};

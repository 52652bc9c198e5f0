//! `mtls-client`: `mtls get` and `mtls bench`.
//!
//! `get` will be an HTTPS client with client certificates that times each phase (DNS,
//! TCP, TLS, first byte, transfer) and traces every handshake message through
//! `mtls-inspect`; `bench` a load generator for mutual-TLS servers (full and resumed
//! handshakes per second, requests per second, latency percentiles).
//!
//! Empty until issues 5 and 6 land.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

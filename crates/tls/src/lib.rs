//! `mtls-tls`: the only crate that depends on rustls.
//!
//! It will turn validated configuration into rustls `ServerConfig` / `ClientConfig`:
//! the client-certificate verifier (trusted CAs, CRLs, depth, allow-lists), OpenSSL cipher
//! names mapped to rustls suites (with a clear error for the ones rustls does not
//! implement), protocol versions, the session cache and ticketer shared across reloads,
//! key logging, and certificate reload. Nothing here parses HTTP.
//!
//! Today it holds [`ciphers`]: OpenSSL cipher strings and protocol names mapped to rustls,
//! with an error naming every item rustls cannot honour. The server and client configs
//! arrive with `mtls serve` (issue 3); certificates come from `mtls-pki`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ciphers;

//! `mtls-tls`: the only crate that depends on rustls.
//!
//! It will turn validated configuration into rustls `ServerConfig` / `ClientConfig`:
//! the client-certificate verifier (trusted CAs, CRLs, depth, allow-lists), OpenSSL cipher
//! names mapped to rustls suites (with a clear error for the ones rustls does not
//! implement), protocol versions, the session cache and ticketer shared across reloads,
//! key logging, and certificate reload. Nothing here parses HTTP.
//!
//! Empty until `mtls serve` (issue 3) lands; certificates come from `mtls-pki`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

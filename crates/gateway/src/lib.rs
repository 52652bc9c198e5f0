//! `mtls-gateway`: what `mtls serve` runs.
//!
//! It will own the TOML config model (nginx's vocabulary, file:line errors), the accept
//! loop, SNI/Host virtual hosts, routes (proxy, static files, redirects), the upstream pool
//! with mutual TLS, client-identity headers, the access log, metrics, the status page, and
//! reload/shutdown without dropping connections. It never generates certificates.
//!
//! Empty until issue 3 lands.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

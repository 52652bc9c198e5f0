//! `mtls-gateway`: what `mtls serve` runs.
//!
//! It owns the TOML config model (nginx's vocabulary, file:line errors), the accept
//! loop, HTTP/1.1 keep-alive that releases an idle connection's buffers (`keepalive`),
//! SNI/Host virtual hosts, routes (proxy, static files, redirects), the upstream pool with
//! mutual TLS (`proxy::pool`), client-identity headers, the access log, metrics, and
//! shutdown without dropping requests in flight. It never generates certificates.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access_log;
pub mod body;
pub mod config;
pub mod echo;
pub mod files;
mod handler;
mod host;
mod keepalive;
mod metrics;
pub mod path;
mod proxy;
pub mod serve;
pub mod site;

pub use config::{Config, ConfigError, ConfigErrors};
pub use site::Site;

//! `mtls-gateway`: what `mtls serve` runs.
//!
//! It owns the TOML config model (nginx's vocabulary, file:line errors), the accept
//! loop, HTTP/1.1 keep-alive that releases an idle connection's buffers (`keepalive`),
//! SNI/Host virtual hosts, routes (proxy, static files, redirects), the upstream pool with
//! mutual TLS (`proxy::pool`), client-identity headers, the access log, metrics, and
//! shutdown without dropping requests in flight. It never generates certificates.
//!
//! ```text
//!   accept (serve: max_connections, fd limit in limits)
//!     -> TLS handshake (mtls-tls) -> HTTP/1.1 (keepalive) or HTTP/2 / plain (serve)
//!        every connection watched by activity: deadlines, hibernation, one sweep
//!     -> request (handler): Host validated (host), one normalised path (path),
//!        location, client_auth/allow, body limits
//!     -> static files (files) | return | proxy_pass (proxy, proxy::pool)
//!     -> error pages (page), access log, metrics
//! ```
//!
//! A request is read hostile: the path and Host are interpreted in one place each, before
//! anything routes on them, so no two components can read them differently.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access_log;
mod activity;
pub mod body;
pub mod config;
mod context;
pub mod echo;
mod error;
pub mod files;
mod handler;
mod host;
mod identity;
mod keepalive;
mod limits;
mod metrics;
mod page;
pub mod path;
mod proxy;
mod runtime;
pub mod serve;
pub mod site;

pub use config::{Config, ConfigError, ConfigErrors};
pub use site::Site;

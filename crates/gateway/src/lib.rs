//! `mtls-gateway`: what `mtls serve` runs.
//!
//! It owns the TOML config model (nginx's vocabulary, file:line errors), the accept
//! loop, HTTP/1.1 keep-alive that releases an idle connection's buffers (`keepalive`),
//! SNI/Host virtual hosts, routes (proxy, static files, redirects), the upstream pool with
//! mutual TLS (`proxy::pool`), client-identity headers, the access log, metrics, and
//! shutdown without dropping requests in flight. It never generates certificates.
//!
//! ```text
//!   runtime: one skeleton for every listener (serve's, the metrics listener, echo-server):
//!     accept within a cap (limits) -> a task per connection in a `client=` span, its
//!     socket corked (cork: a turn's writes in one writev) -> Serve::connection -> drain
//!     and cut on stop; activity's sweep keeps the deadlines
//!   serve: TLS handshake (mtls-tls) -> HTTP/1.1 (keepalive: idle buffers released) or
//!     HTTP/2 / plain (runtime::serve_http)
//!   handler: Host validated (host) -> virtual host (site::Entrance) -> one normalised
//!     path (path) -> location -> client_auth/allow -> body limits (body)
//!     -> static files (files) | return | proxy_pass (proxy, proxy::pool, identity)
//!   below them all: context (what a request knows of its connection), error (who is to
//!     blame, the check name), access_log (a line when the body ends), metrics, page
//! ```
//!
//! Nothing below `handler` knows the site: an action gets the virtual host and route the
//! router picked, and the connection's `context`. New protocols (TCP tunnels) are
//! another `runtime::Serve`; a reloaded site is a new `site::Entrance` for new connections.
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
mod cork;
pub mod echo;
mod error;
pub mod files;
mod handler;
mod host;
mod identity;
mod inventory;
mod keepalive;
mod limits;
mod lint;
pub mod live;
mod metrics;
mod page;
pub mod path;
mod proxy;
mod runtime;
pub mod serve;
pub mod site;
mod watch;

pub use config::{Config, ConfigError, ConfigErrors};
pub use site::Site;

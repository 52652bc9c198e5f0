//! What a request's handling may know of its connection.
//!
//! Narrow on purpose: the client's address, the local address, the handshake's facts, and
//! the shared sinks (metrics, access log) and this connection's [`Activity`]. The site, the
//! listener and the SNI host are the router's business ([`crate::site::Entrance`]); the
//! handler hands each action only the virtual host and route it picked.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use mtls_tls::HandshakeInfo;

use crate::access_log::AccessLogger;
use crate::activity::Activity;
use crate::error::Error;
use crate::identity::IdentityValues;
use crate::metrics::Metrics;

/// One client connection, as its requests see it.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) remote: SocketAddr,
    /// The address the client connected to (`$server_port`, `$host` without a Host).
    pub(crate) local: SocketAddr,
    /// `None` for plain HTTP.
    pub(crate) tls: Option<HandshakeInfo>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) log: AccessLogger,
    /// Its deadlines, and how a response cut short was cut (for the access log).
    pub(crate) activity: Arc<Activity>,
    /// The client-identity and forwarding header values, made at the first proxied
    /// request and reused: neither can change during a connection.
    pub(crate) identity: OnceLock<IdentityValues>,
}

impl Connection {
    /// Count and log `error` of a request on this connection (see [`Error::report`]).
    pub(crate) fn report(&self, error: &Error, upstream: Option<&str>) {
        error.report(&self.metrics, self.remote, upstream);
    }
}

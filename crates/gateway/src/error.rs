//! The gateway's one error type, in pingora's manner: every failure of a request knows the
//! side to blame, the stable check name that logs and metrics share, what the client is
//! answered, and whether the request may be tried again elsewhere.
//!
//! ```text
//!   Side::Client    the client's request or body was wrong, or it went away: 4xx (or
//!                   nothing), `request refused ... check=...`, mtls_http_refusals_total
//!   Side::Upstream  the upstream refused, broke off or was too slow: 502/504,
//!                   `upstream error ... check=...`, mtls_upstream_errors_total
//!   Side::Internal  our own fault (a path we cannot forward, a config that cannot work):
//!                   500/502, `internal error ... check=...`, mtls_internal_errors_total
//! ```
//!
//! Errors are classified where they are made, by type, never by reading an error's words:
//! a failure inside a body stream travels as an `io::Error` wrapping this type
//! ([`Error::into_io`]), and whoever receives it takes it back out ([`Error::within`]).

use std::fmt;
use std::net::SocketAddr;

use http::StatusCode;

use crate::metrics::Metrics;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The client: its request, its body, or its going away.
    Client,
    /// The upstream a request was proxied to.
    Upstream,
    /// The gateway itself.
    Internal,
}

/// A failed request (or part of one), classified.
#[derive(Debug, Clone)]
pub(crate) struct Error {
    /// Who is to blame.
    pub(crate) side: Side,
    /// The stable name of the check that failed, for logs and metrics.
    pub(crate) check: &'static str,
    /// What the client is answered, if it can still be answered.
    pub(crate) status: StatusCode,
    /// The request never reached the upstream, so it may be sent to another server.
    pub(crate) retry: bool,
    /// One sentence a person can act on.
    pub(crate) why: String,
}

impl Error {
    /// The client's fault.
    pub(crate) fn client(check: &'static str, status: StatusCode, why: impl Into<String>) -> Error {
        Error {
            side: Side::Client,
            check,
            status,
            retry: false,
            why: why.into(),
        }
    }

    /// The upstream's fault.
    pub(crate) fn upstream(
        check: &'static str,
        status: StatusCode,
        why: impl Into<String>,
    ) -> Error {
        Error {
            side: Side::Upstream,
            check,
            status,
            retry: false,
            why: why.into(),
        }
    }

    /// Our own fault.
    pub(crate) fn internal(check: &'static str, why: impl Into<String>) -> Error {
        Error {
            side: Side::Internal,
            check,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            retry: false,
            why: why.into(),
        }
    }

    /// Answer the client `status` instead.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Error {
        self.status = status;
        self
    }

    /// The request never reached the upstream: another server may be tried.
    pub(crate) fn retryable(mut self) -> Error {
        self.retry = true;
        self
    }

    /// Count it in `metrics` and write its one log line for the client at `remote`.
    /// `upstream` names the upstream (group, and the server tried) for an upstream's fault.
    pub(crate) fn report(&self, metrics: &Metrics, remote: SocketAddr, upstream: Option<&str>) {
        let check = self.check;
        match self.side {
            Side::Client => {
                metrics.request_refusal(check);
                tracing::info!(
                    "request refused: client={remote} check={check}: {}, {}",
                    self.status.as_u16(),
                    self.why
                );
            }
            Side::Upstream => {
                metrics.upstream_error(check);
                tracing::warn!(
                    "upstream error: client={remote} upstream={} check={check}: {}",
                    upstream.unwrap_or("-"),
                    self.why
                );
            }
            Side::Internal => {
                metrics.internal_error(check);
                tracing::error!(
                    "internal error: client={remote} check={check}: {}, {}",
                    self.status.as_u16(),
                    self.why
                );
            }
        }
    }

    /// As an `io::Error`, to travel through a body stream.
    pub(crate) fn into_io(self) -> std::io::Error {
        let kind = if self.status == StatusCode::GATEWAY_TIMEOUT {
            std::io::ErrorKind::TimedOut
        } else {
            std::io::ErrorKind::Other
        };
        std::io::Error::new(kind, self)
    }

    /// The classified error somewhere in `error`'s chain of causes, if there is one.
    pub(crate) fn within<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
        mtls_tls::cause::chain(error).find_map(|cause| {
            cause.downcast_ref::<Error>().or_else(|| {
                cause
                    .downcast_ref::<std::io::Error>()?
                    .get_ref()?
                    .downcast_ref::<Error>()
            })
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

impl std::error::Error for Error {}

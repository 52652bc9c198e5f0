//! `mtls bench`: a load generator that speaks mutual TLS, which wrk and h2load cannot.
//!
//! ```text
//!   BenchFlags (strings from the CLI) ──TryFrom──► BenchPlan (checked; files read; the
//!        request template built)  ── the URL, certificate, -H and --data flags go through
//!        `mtls get`'s own conversion, so they mean the same
//!   run(&BenchPlan) ─► ProbeClient::for_load (mtls-tls: verifier and identity as `get`,
//!        sessions by mode) ─► a tokio runtime of --threads workers ─► engine ─► Stats
//!        per connection task ─► merged ─► BenchReport (--json as is; the CLI words it)
//! ```
//!
//! Three modes measure three things:
//!
//! - `requests`: keep-alive connections (`-c`), HTTP/1.1 requests one after another on
//!   each, or `-m` concurrent streams per HTTP/2 connection;
//! - `handshakes`: a new connection per request with a full handshake (resumption off in
//!   the client config, so no session is even offered), closed after the answer;
//! - `resume`: a new connection per request resuming a session: a full handshake per
//!   connection first (not recorded) fills a store big enough for all of them; the
//!   fraction actually resumed is reported and under 90% fails the run.
//!
//! With `--rate` requests are due on a fixed schedule and latency counts from when each
//! was due, not when it went out (wrk2's correction for coordinated omission). Only 2xx
//! answers are successes; anything else is an error by kind, and the run fails.

mod engine;
mod plan;
mod progress;
mod stats;

use std::net::{SocketAddr, ToSocketAddrs};

use mtls_tls::{ProbeClient, SessionReuse, TlsError};

pub use plan::{BenchFlags, BenchPlan, DEFAULT_CONNECTIONS, Mode, Stop};
pub use stats::{BenchReport, Latency, RESUMED_AT_LEAST};

/// Why a run could not start (a run that started always ends in a [`BenchReport`], its
/// failures counted in it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A file or flag of the TLS settings cannot be used.
    #[error("{0}")]
    Setup(TlsError),
    /// The host has no address.
    #[error("cannot resolve {host}: {message}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's complaint.
        message: String,
    },
    /// The runtime could not start (threads).
    #[error("cannot start {threads} worker threads: {source}")]
    Runtime {
        /// How many were asked for.
        threads: usize,
        /// The system's answer.
        source: std::io::Error,
    },
}

/// Run the load the plan describes; blocks until it is over (or Ctrl-C).
pub fn run(plan: &BenchPlan) -> Result<BenchReport, BenchError> {
    let sessions = match plan.mode {
        Mode::Requests => SessionReuse::Default,
        Mode::Handshakes => SessionReuse::Disabled,
        // Each connection in flight holds one ticket and brings back at least one: room
        // for all of them, with the server's usual two per handshake.
        Mode::Resume => SessionReuse::Shared {
            tickets: plan.connections * 4 + 16,
        },
    };
    let probe = ProbeClient::for_load(&plan.tls, sessions).map_err(BenchError::Setup)?;
    let addr = address(plan)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.threads)
        .thread_name("bench")
        .enable_all()
        .build()
        .map_err(|source| BenchError::Runtime {
            threads: plan.threads,
            source,
        })?;
    let (stats, record_from) = runtime.block_on(engine::run(plan, probe, addr));
    Ok(stats.report(plan, record_from))
}

/// `--resolve`, an IP address, or DNS (once: every connection goes to the first address).
fn address(plan: &BenchPlan) -> Result<SocketAddr, BenchError> {
    let target = &plan.target;
    if let Some(fixed) = plan
        .resolve
        .iter()
        .find(|r| r.host == target.host && r.port == target.port)
    {
        return Ok(fixed.socket_addr());
    }
    let resolve_error = |message: String| BenchError::Resolve {
        host: target.host.clone(),
        message,
    };
    (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| resolve_error(e.to_string()))?
        .next()
        .ok_or_else(|| resolve_error("no addresses".into()))
}

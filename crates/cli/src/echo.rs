//! `mtls echo-server`: the built-in upstream of `mtls-gateway::echo`, on one address, until
//! Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use mtls_gateway::echo::{EchoServer, EchoSettings};

use crate::serve::{init_logging, shutdown_signal};

/// Flags of `mtls echo-server`.
#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Address to listen on; port 0 picks a free port (the real address is printed).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Serve TLS with this certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Ask clients for a certificate issued by this CA (repeatable).
    #[arg(long = "client-ca", value_name = "FILE", requires = "cert")]
    client_ca: Vec<PathBuf>,
    /// Whether a client certificate is required (on) or only asked for (optional).
    #[arg(long, value_enum, value_name = "MODE", requires = "client_ca")]
    verify_client: Option<VerifyClientArg>,
}

/// `--verify-client`; `optional` when --client-ca is given without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum VerifyClientArg {
    /// A certificate is required and must verify.
    On,
    /// A certificate is asked for; none is reported as NONE, a bad one is refused.
    Optional,
}

/// `mtls echo-server`.
pub fn run(args: EchoArgs) -> Result<ExitCode> {
    init_logging();
    let settings = match (args.cert, args.key) {
        (Some(cert), Some(key)) => EchoSettings::tls(
            cert,
            key,
            args.client_ca,
            args.verify_client == Some(VerifyClientArg::On),
        ),
        // clap's `requires` leaves only "both" or "neither".
        _ => EchoSettings::plain(),
    };
    let server = EchoServer::build(&settings).context("echo-server TLS settings")?;
    let scheme = if server.is_tls() { "https" } else { "http" };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener
            .local_addr()
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!("echo-server listening on {scheme}://{addr}");
        server.run(listener, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

//! `mtls`: mutual TLS end to end, in one binary.
//!
//! This file only parses the command line and maps errors to exit codes; every command's
//! logic lives in a library crate (`mtls-pki`, `mtls-gateway`, and later `mtls-client`,
//! `mtls-inspect`). Exit codes: 0 success, 1 failure (including "certificate not valid"
//! from `pki verify`), 2 bad usage.

#![forbid(unsafe_code)]

mod bench;
mod echo;
mod get;
mod identity;
mod log;
mod pki;
mod serve;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Mutual TLS end to end: certificates, gateway, client, dissector, load generator.
#[derive(Debug, Parser)]
#[command(name = "mtls", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Certificate authority: keys, CSRs, signing, revocation, CRLs, PKCS#12.
    Pki(pki::PkiArgs),
    /// Run the gateway: TLS termination with client certificates (the quickstart without -c).
    Serve(serve::ServeArgs),
    /// Check a config file like `nginx -t`: every key, file, certificate and key pair.
    Check(serve::CheckArgs),
    /// A built-in upstream that answers every request with what it received, as JSON.
    EchoServer(echo::EchoArgs),
    /// HTTPS with a client certificate, like curl: timing of each phase, the handshake
    /// summary (-v) and every handshake message (--trace).
    Get(get::GetArgs),
    /// Load generator speaking mutual TLS: keep-alive requests (HTTP/1.1 or HTTP/2), full
    /// or resumed handshakes per second, latency percentiles, errors by kind.
    Bench(bench::BenchArgs),
    /// Read a packet capture (pcap, pcapng): each TLS connection in one line, and why each
    /// mutual-TLS handshake that failed did.
    #[command(disable_version_flag = true)]
    Trace(trace::TraceArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pki(args) => pki::run(args),
        Command::Serve(args) => serve::serve(args),
        Command::Check(args) => serve::check(args),
        Command::EchoServer(args) => echo::run(args),
        Command::Get(args) => get::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Trace(args) => trace::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", sentence(&err));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes as one line, like `{:#}`, but a cause whose words the line
/// already holds is left out: many errors repeat their source in their own message, and
/// "No such file or directory (os error 2): No such file or directory (os error 2)" helps
/// nobody.
fn sentence(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let words = io.to_string();
        let err = anyhow::Error::new(io).context(format!("reading crl.pem: {words}"));
        assert_eq!(sentence(&err), format!("reading crl.pem: {words}"));
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(sentence(&err), "outer: inner");
    }
}

//! `mtls bench URL`: the load generator's flags (curl's for the request and certificates,
//! wrk's and h2load's for the load: `-c`, `-d`, `-m`, `-n`) and its report: text on
//! stdout, or one JSON document with `--json`; warnings on stderr either way.
//!
//! Exit status: 0 when every measured request was answered 2xx, 1 when any failed or was
//! answered otherwise (or too few sessions resumed in `--mode resume`), 2 for bad flags.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use mtls_client::GetFlags;
use mtls_client::bench::{BenchFlags, BenchPlan, BenchReport, Mode};

/// Flags of `mtls bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The URL: https://host[:port]/path?query.
    url: String,
    /// What to measure: keep-alive requests, full handshakes (a new connection and
    /// handshake per request, resumption off) or resumed handshakes.
    #[arg(long, value_enum, default_value_t = ModeArg::Requests)]
    mode: ModeArg,
    /// Concurrent connections.
    #[arg(short = 'c', long = "connections", value_name = "N")]
    connections: Option<usize>,
    /// How long to measure, after the warm-up (seconds, or 500ms, 10s, 1m) [default: 10s].
    #[arg(
        short = 'd',
        long = "duration",
        value_name = "TIME",
        conflicts_with = "requests"
    )]
    duration: Option<String>,
    /// How many requests to measure, instead of -d.
    #[arg(short = 'n', long = "requests", value_name = "N")]
    requests: Option<u64>,
    /// Speak HTTP/2 (ALPN h2 only) rather than HTTP/1.1.
    #[arg(long = "http2")]
    http2: bool,
    /// Concurrent HTTP/2 streams per connection (--http2, --mode requests).
    #[arg(short = 'm', long = "streams", value_name = "N")]
    streams: Option<usize>,
    /// tokio worker threads [default: one per CPU].
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// A constant rate for the whole run, requests per second; latency then counts from
    /// when each request was due (wrk2's coordinated-omission correction).
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// Run this long first without recording [default: 1s with -d, 0 with -n].
    #[arg(long, value_name = "TIME")]
    warmup: Option<String>,
    /// Limit on one request, its connection and handshake included.
    #[arg(long, value_name = "TIME", default_value = "10s")]
    timeout: String,
    #[command(flatten)]
    identity: crate::identity::IdentityArgs,
    /// Do not verify the server's certificate (a warning is printed every time).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Connect to ADDR for HOST:PORT instead of asking DNS (repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    resolve: Vec<String>,
    /// The request method (default GET, or POST with --data).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    request: Option<String>,
    /// A request header, "Name: value" ("Name:" removes a default one); repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// The request body; @FILE reads a file (-d is the duration here, as in wrk).
    #[arg(long = "data", value_name = "DATA")]
    data: Option<String>,
    /// Print one JSON document on stdout instead of the text report.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Requests,
    Handshakes,
    Resume,
}

/// `mtls bench`.
pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let stderr_is_terminal = io::stderr().is_terminal();
    let flags = BenchFlags {
        get: GetFlags {
            insecure: args.insecure,
            resolve: args.resolve,
            request: args.request,
            headers: args.headers,
            data: args.data,
            ..args.identity.flags(args.url)
        },
        mode: match args.mode {
            ModeArg::Requests => Mode::Requests,
            ModeArg::Handshakes => Mode::Handshakes,
            ModeArg::Resume => Mode::Resume,
        },
        connections: args.connections,
        streams: args.streams,
        http2: args.http2,
        duration: args.duration,
        requests: args.requests,
        threads: args.threads,
        rate: args.rate,
        warmup: args.warmup,
        timeout: Some(args.timeout),
        progress: stderr_is_terminal,
    };
    let plan = match BenchPlan::try_from(flags) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(if e.is_usage() { 2 } else { 1 }));
        }
    };
    if plan.tls.insecure {
        eprintln!(
            "warning: --insecure: the server's certificate is NOT verified; anyone on the path \
             can pose as the server"
        );
    }
    let report = match mtls_client::bench::run(&plan) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut stdout = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report).context("writing JSON")?;
        writeln!(stdout).context("writing JSON")?;
    } else {
        stdout
            .write_all(text(&report).as_bytes())
            .context("writing the report")?;
    }
    stdout.flush().context("writing the report")?;
    let mut stderr = io::stderr().lock();
    for warning in report.warnings() {
        let _ = writeln!(stderr, "{warning}");
    }
    Ok(if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The report for people, wrk-style.
fn text(report: &BenchReport) -> String {
    let mut out = String::new();
    let streams = if report.streams > 1 {
        format!(" x {} streams", report.streams)
    } else {
        String::new()
    };
    let rate = report
        .rate
        .map_or(String::new(), |r| format!(", rate {r}/s"));
    let _ = writeln!(
        out,
        "{} mode, {}, {} connections{streams}, {} threads{rate}: {}",
        report.mode.name(),
        report.http,
        report.connections,
        report.threads,
        report.url
    );
    let _ = writeln!(
        out,
        "  {:>10.1} ops/s   {} ok in {:.3} s",
        report.ops_per_s, report.requests_ok, report.duration_s
    );
    let l = &report.latency_us;
    if report.requests_ok == 0 {
        let _ = writeln!(out, "  latency     none (no 2xx answer)");
    } else {
        let _ = writeln!(
            out,
            "  latency     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}",
            micros(l.p50),
            micros(l.p90),
            micros(l.p99),
            micros(l.p999),
            micros(l.max),
            micros(l.mean.round() as u64)
        );
    }
    let _ = writeln!(
        out,
        "  bytes       read {}  written {}",
        bytes(report.bytes_read),
        bytes(report.bytes_written)
    );
    if let Some(fraction) = report.resumed_fraction {
        let _ = writeln!(out, "  resumed     {:.1}% of handshakes", fraction * 100.0);
    }
    if report.errors.is_empty() {
        let _ = writeln!(out, "  errors      none");
    } else {
        let list: Vec<String> = report
            .errors
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        let _ = writeln!(out, "  errors      {}", list.join(", "));
    }
    out
}

/// "850us", "12.3ms", "1.52s".
fn micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// "512 B", "1.5 KiB", "10.0 MiB".
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_well() {
        assert_eq!(micros(850), "850us");
        assert_eq!(micros(12_345), "12.35ms");
        assert_eq!(micros(1_520_000), "1.52s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(10 * 1024 * 1024), "10.0 MiB");
    }
}

//! `mtls get URL`: curl's flags, `mtls-client`'s exchange, and the output: the body on
//! stdout (or `-o`); on stderr, curl-style `-v` lines with a handshake summary, the
//! `--timing` picture (httpstat's) and the `--trace`; or one JSON document with `--json`.
//!
//! A failure is one sentence on stderr and exit 1; bad flags exit 2.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};

use mtls_client::get::{Hop, TlsSummary, millis};
use mtls_client::{GetFlags, GetRequest, Observer, Report, Timing};

/// Flags of `mtls get`, in curl's spelling.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The URL: https://host[:port]/path?query (http:// too, e.g. before a redirect).
    url: String,
    #[command(flatten)]
    identity: crate::identity::IdentityArgs,
    /// The request method (default GET, or POST with -d).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    request: Option<String>,
    /// A request header, "Name: value" ("Name:" removes a default one); repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// The request body; @FILE reads a file, @- standard input.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    data: Option<String>,
    /// Write the body to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Follow redirects (at most 10), resolving and connecting again for each.
    #[arg(short = 'L', long = "location")]
    location: bool,
    /// Offer only HTTP/1.1 (ALPN).
    #[arg(long = "http1.1")]
    http1_1: bool,
    /// Offer only HTTP/2 (ALPN) and fail if the server does not agree.
    #[arg(long = "http2", conflicts_with = "http1_1")]
    http2: bool,
    /// Connect to ADDR for HOST:PORT instead of asking DNS (repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    resolve: Vec<String>,
    /// Limit on DNS + TCP + TLS, in seconds (or 500ms, 2s, 1m).
    #[arg(long, value_name = "SECONDS")]
    connect_timeout: Option<String>,
    /// Limit on the whole command, in seconds (or 500ms, 2s, 1m).
    #[arg(long, value_name = "SECONDS")]
    max_time: Option<String>,
    /// Do not verify the server's certificate (a warning is printed every time).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Append the TLS secrets to FILE (NSS key-log format, for Wireshark).
    #[arg(long, value_name = "FILE", env = "SSLKEYLOGFILE")]
    keylog: Option<PathBuf>,
    /// Print one JSON document (status, headers, body, timing, tls) on stdout.
    #[arg(long)]
    json: bool,
    /// Print the handshake summary, request and response heads on stderr.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Print the time of each phase as a picture on stderr.
    #[arg(long)]
    timing: bool,
    /// Print every TLS record and handshake message, both directions, on stderr.
    #[arg(long)]
    trace: bool,
}

/// `mtls get`.
pub fn run(args: GetArgs) -> Result<ExitCode> {
    init_logging();
    let flags = GetFlags {
        request: args.request,
        headers: args.headers,
        data: args.data,
        output: args.output,
        location: args.location,
        http1_1: args.http1_1,
        http2: args.http2,
        resolve: args.resolve,
        connect_timeout: args.connect_timeout,
        max_time: args.max_time,
        insecure: args.insecure,
        keylog: args.keylog.filter(|path| !path.as_os_str().is_empty()),
        trace: args.trace,
        ..args.identity.flags(args.url)
    };
    let request = match GetRequest::try_from(flags) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(if e.is_usage() { 2 } else { 1 }));
        }
    };
    if request.tls.insecure {
        eprintln!(
            "warning: --insecure: the server's certificate is NOT verified; anyone on the path \
             can pose as the server and read this exchange"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut printer = Printer {
        verbose: args.verbose && !args.json,
        output: request.output.clone(),
        file: None,
        buffer: args.json.then(Vec::new),
        heads_printed: 0,
    };
    let report = runtime.block_on(mtls_client::get(&request, &mut printer));
    let stderr = &mut io::stderr().lock();
    if printer.verbose {
        // Hops that failed before their response head was shown.
        for hop in report.hops.iter().skip(printer.heads_printed) {
            let _ = stderr.write_all(hop_text(hop).as_bytes());
        }
    }
    if report.error.is_none() && printer.output.is_some() && printer.file.is_none() {
        // An empty body still makes the file, as curl does.
        printer.open_output().map_err(anyhow::Error::from)?;
    }
    if let Some(file) = &mut printer.file {
        file.flush().context("writing -o")?;
    }
    if args.json {
        let document = json_document(&report, printer.buffer.as_deref());
        let mut stdout = io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &document).context("writing JSON")?;
        writeln!(stdout).context("writing JSON")?;
    } else {
        io::stdout().flush().context("writing the body")?;
        if args.trace {
            for hop in &report.hops {
                let _ = stderr.write_all(trace_text(hop).as_bytes());
            }
        }
        if args.timing
            && let Some(hop) = report.hops.last()
        {
            let _ = stderr.write_all(timing_picture(&hop.timing).as_bytes());
            if report.hops.len() > 1 {
                let _ = writeln!(
                    stderr,
                    "(the last of {} hops; --json has them all)",
                    report.hops.len()
                );
            }
        }
    }
    match &report.error {
        None => Ok(ExitCode::SUCCESS),
        Some(error) => {
            let _ = writeln!(stderr, "error: {error}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Writes bodies where they go and `-v` heads as they arrive.
struct Printer {
    verbose: bool,
    output: Option<PathBuf>,
    file: Option<File>,
    /// `--json` without `-o`: the body goes into the document.
    buffer: Option<Vec<u8>>,
    heads_printed: usize,
}

impl Printer {
    fn open_output(&mut self) -> io::Result<&mut File> {
        match (&mut self.file, &self.output) {
            (Some(_), _) => {}
            (None, Some(path)) => {
                let file = File::create(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("-o {}: {e}", path.display())))?;
                self.file = Some(file);
            }
            (None, None) => return Err(io::Error::other("no -o file")),
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("no -o file"))
    }
}

impl Observer for Printer {
    fn head(&mut self, hop: &Hop) {
        if self.verbose {
            let _ = io::stderr().write_all(hop_text(hop).as_bytes());
        }
        self.heads_printed += 1;
    }

    fn body(&mut self, chunk: &[u8]) -> io::Result<()> {
        if self.output.is_some() {
            return self.open_output()?.write_all(chunk);
        }
        match &mut self.buffer {
            Some(buffer) => {
                buffer.extend_from_slice(chunk);
                Ok(())
            }
            None => io::stdout().write_all(chunk),
        }
    }
}

/// `-v`: the connection, the handshake, the request and the response head, curl-style.
fn hop_text(hop: &Hop) -> String {
    let mut out = String::new();
    match hop.address {
        Some(addr) => {
            let _ = writeln!(out, "* Connected to {addr} for {}", hop.url);
        }
        None => {
            let _ = writeln!(out, "* Not connected ({})", hop.url);
        }
    }
    if let Some(tls) = &hop.tls {
        out.push_str(&tls_text(tls));
    }
    if let Some(request) = &hop.request {
        let _ = writeln!(
            out,
            "> {} {} {}",
            request.method, request.target, request.version
        );
        for (name, value) in &request.headers {
            let _ = writeln!(out, "> {name}: {value}");
        }
        let _ = writeln!(out, ">");
        if request.body_bytes > 0 {
            let _ = writeln!(out, "* (request body: {} bytes)", request.body_bytes);
        }
    }
    if let Some(response) = &hop.response {
        let _ = writeln!(
            out,
            "< {} {} {}",
            response.version, response.status, response.reason
        );
        for (name, value) in &response.headers {
            let _ = writeln!(out, "< {name}: {value}");
        }
        let _ = writeln!(out, "<");
    }
    out
}

/// The handshake summary of `-v`.
fn tls_text(tls: &TlsSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "* TLS handshake: {}, cipher {}, key exchange {}, ALPN {}, {}",
        tls.protocol,
        tls.cipher,
        tls.group.as_deref().unwrap_or("none (resumed)"),
        tls.alpn.as_deref().unwrap_or("none"),
        if tls.resumed {
            "session resumed"
        } else {
            "new session (not resumed)"
        }
    );
    let _ = writeln!(
        out,
        "* Server certificate chain ({} sent):",
        tls.chain.len()
    );
    for (i, cert) in tls.chain.iter().enumerate() {
        let _ = writeln!(out, "*   {i} subject: {}", cert.subject);
        let _ = writeln!(out, "*     issuer:  {}", cert.issuer);
        if !cert.subject_alt_names.is_empty() {
            let _ = writeln!(out, "*     SANs:    {}", cert.subject_alt_names.join(", "));
        }
        let until = cert
            .not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "*     {} (not after {until}), serial {}, {}",
            cert.validity, cert.serial, cert.key
        );
    }
    let _ = writeln!(out, "* Verification: {}", tls.verification.detail);
    if tls.client_certificate_requested {
        let cas = if tls.acceptable_cas.is_empty() {
            "it named no CAs".to_owned()
        } else {
            format!(
                "it accepts certificates issued by: {}",
                tls.acceptable_cas.join("; ")
            )
        };
        let _ = writeln!(out, "* The server asked for a client certificate; {cas}");
        match &tls.sent_certificate {
            Some(sent) => {
                let _ = writeln!(
                    out,
                    "* We sent our certificate: {} (serial {})",
                    sent.subject, sent.serial
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "* We sent no certificate (none given: pass --cert and --key, or --p12)"
                );
            }
        }
    } else if tls.resumed {
        let _ = writeln!(
            out,
            "* No certificate request on a resumed session (the first handshake settled it)"
        );
    } else {
        let _ = writeln!(out, "* The server did not ask for a client certificate");
    }
    out
}

/// `--trace`: every record and message the dissector found, with when it crossed.
fn trace_text(hop: &Hop) -> String {
    let Some(trace) = &hop.trace else {
        return String::new();
    };
    let mut out = String::new();
    let address = hop
        .address
        .map_or_else(|| "not connected".to_owned(), |a| a.to_string());
    let _ = writeln!(out, "* Trace of {} ({address}):", hop.url);
    for entry in trace {
        let _ = writeln!(out, "{}", entry.event.framed(entry.at_ms));
    }
    out
}

/// `--timing`: httpstat's picture, one column per phase, cumulative marks beneath.
fn timing_picture(timing: &Timing) -> String {
    let phases = timing.phases();
    let marks = [
        "namelookup",
        "connect",
        "tls_done",
        "pretransfer",
        "starttransfer",
        "total",
    ];
    let values: Vec<String> = phases
        .iter()
        .map(|(_, d)| d.map_or_else(|| "-".to_owned(), amount))
        .collect();
    let widths: Vec<usize> = phases
        .iter()
        .zip(&values)
        .map(|((name, _), value)| name.len().max(value.len()) + 4)
        .collect();
    let mut names = String::from(" ");
    let mut bar = String::from("[");
    for (i, ((name, _), value)) in phases.iter().zip(&values).enumerate() {
        let separator = if i + 1 == phases.len() { "]" } else { "|" };
        let _ = write!(names, "{name:^width$} ", width = widths[i]);
        let _ = write!(bar, "{value:^width$}{separator}", width = widths[i]);
    }
    // Column i ends at the boundary after it: positions in `bar`.
    let boundaries: Vec<usize> = widths
        .iter()
        .scan(0, |end, w| {
            *end += w + 1;
            Some(*end)
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "{}", names.trim_end());
    let _ = writeln!(out, "{bar}");
    out.push_str(&marker_line(&boundaries, 0, ""));
    let mut cumulative = Duration::ZERO;
    for (k, ((_, phase), mark)) in phases.iter().zip(marks).enumerate() {
        cumulative += phase.unwrap_or_default();
        let label = if k + 1 == phases.len() {
            format!("{mark}:{}", amount(timing.total))
        } else {
            format!("{mark}:{}", amount(cumulative))
        };
        out.push_str(&marker_line(&boundaries, k, &label));
    }
    out
}

/// A line with `label` centred under boundary `k` (empty label: under none) and `|` under
/// each later boundary it does not cover.
fn marker_line(boundaries: &[usize], k: usize, label: &str) -> String {
    let width = boundaries.last().copied().unwrap_or(0) + label.len() + 1;
    let mut line = vec![b' '; width];
    let mut covered_until = 0;
    if !label.is_empty() {
        let start = boundaries[k].saturating_sub(label.len() / 2);
        line[start..start + label.len()].copy_from_slice(label.as_bytes());
        covered_until = start + label.len();
    }
    let first = if label.is_empty() { 0 } else { k + 1 };
    for &b in boundaries.iter().take(boundaries.len() - 1).skip(first) {
        if b > covered_until {
            line[b] = b'|';
        }
    }
    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
    format!("{text}\n")
}

/// "0.312ms", "12.4ms", "1530ms".
fn amount(duration: Duration) -> String {
    let ms = millis(duration);
    if ms < 10.0 {
        format!("{ms:.3}ms")
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.0}ms")
    }
}

/// `--json`: the last hop's answer at the top, earlier hops under `redirects`.
fn json_document(report: &Report, body: Option<&[u8]>) -> Value {
    let last = report.hops.last();
    let response = last.and_then(|h| h.response.as_ref());
    let mut document = json!({
        "url": last.map(|h| h.url.clone()),
        "address": last.and_then(|h| h.address).map(|a| a.to_string()),
        "status": response.map(|r| r.status),
        "version": response.map(|r| r.version.clone()),
        "headers": response.map(|r| r.headers.clone()),
        "body_bytes": response.map(|r| r.body_bytes),
        "timing": last.map(|h| h.timing),
        "tls": last.and_then(|h| h.tls.clone()),
        "request": last.and_then(|h| h.request.clone()),
        "redirects": report.hops[..report.hops.len().saturating_sub(1)].to_vec(),
        "error": report.error.as_ref().map(|e| json!({"check": e.check(), "message": e.to_string()})),
    });
    if let Some(body) = body {
        document["body"] = Value::String(String::from_utf8_lossy(body).into_owned());
    }
    if let Some(trace) = last.and_then(|h| h.trace.clone()) {
        document["trace"] = serde_json::to_value(trace).unwrap_or(Value::Null);
    }
    document
}

/// Logs to stderr, `MTLS_LOG` (default `warn`), one line per event (`crate::log`).
fn init_logging() {
    crate::log::init("warn");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_picture_lines_up() {
        let timing = Timing {
            dns: Some(Duration::from_micros(300)),
            tcp: Some(Duration::from_micros(100)),
            tls: Some(Duration::from_micros(4200)),
            request: Some(Duration::from_micros(100)),
            ttfb: Some(Duration::from_micros(1100)),
            transfer: Some(Duration::ZERO),
            total: Duration::from_micros(5800),
        };
        let picture = timing_picture(&timing);
        let lines: Vec<&str> = picture.lines().collect();
        assert!(lines[0].contains("DNS lookup") && lines[0].contains("Content transfer"));
        assert!(
            lines[1].starts_with('[') && lines[1].ends_with(']'),
            "{picture}"
        );
        assert!(lines[1].contains("4.200ms"), "{picture}");
        assert!(picture.contains("namelookup:0.300ms"), "{picture}");
        assert!(picture.contains("tls_done:4.600ms"), "{picture}");
        assert!(picture.contains("starttransfer:5.800ms"), "{picture}");
        assert!(picture.contains("total:5.800ms"), "{picture}");
        // Every separator of the bar has a mark line beneath it.
        let bar = lines[1];
        for (i, c) in bar.char_indices().filter(|(_, c)| *c == '|') {
            assert_eq!(lines[2].chars().nth(i), Some('|'), "{picture}");
            let _ = c;
        }
    }
}

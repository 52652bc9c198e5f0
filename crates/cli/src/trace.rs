//! `mtls trace`: read a packet capture, rebuild each TCP connection, dissect its TLS, and
//! say in one line how each handshake went, or in one sentence why it failed.
//!
//! Wiring only: `mtls-capture` reads the file and reassembles TCP; `mtls-inspect`'s
//! `Dissector` decodes each direction (decrypting TLS 1.3 with the key log: `--keylog`,
//! or one embedded in the pcapng), and its `Conversation` makes the summary and verdict.
//! The capture is streamed: memory follows the connections open at once, not the file.
//! A large file read on a terminal gets a progress line on stderr (`progress`).

mod progress;

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use mtls_capture::{
    Block, CaptureReader, Close, Decoded, Direction as Way, Event, FlowId, Reassembler,
};
use mtls_inspect::conversation::{Close as Ending, Conversation, Outcome, Summary};
use mtls_inspect::{Detail, Direction, Dissector, KeyLog};

/// Flags of `mtls trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The capture: pcap or pcapng, gzip-compressed or not; `-` reads standard input
    /// (`tcpdump -w - | mtls trace -`).
    input: PathBuf,
    /// An NSS key log (SSLKEYLOGFILE) to decrypt TLS 1.3 handshakes; key logs embedded in
    /// a pcapng (`editcap --inject-secrets`) are used without it.
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,
    /// Print every record and handshake message of each connection, like `mtls get --trace`
    /// (times in ms from the connection's first packet).
    #[arg(short = 'V', long)]
    verbose: bool,
    /// One JSON object per connection (JSON Lines), as each ends.
    #[arg(long)]
    json: bool,
    /// Only the connections whose handshake did not complete.
    #[arg(long)]
    failed: bool,
    /// Only the connections that match: `host=ADDR` (either end), `port=N` (either end),
    /// `sni=NAME`. Repeatable; all must match.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_filter)]
    filter: Vec<Filter>,
    /// A connection whose last message was not answered for this long when it closed (or
    /// the capture ended) is reported as stalled.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    stall: u64,
}

/// One `--filter`.
#[derive(Debug, Clone)]
enum Filter {
    Host(std::net::IpAddr),
    Port(u16),
    Sni(String),
}

fn parse_filter(s: &str) -> std::result::Result<Filter, String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected host=ADDR, port=N or sni=NAME, not {s:?}"))?;
    match key {
        "host" => value
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map(Filter::Host)
            .map_err(|_| format!("host={value}: not an IP address")),
        "port" => value
            .parse()
            .map(Filter::Port)
            .map_err(|_| format!("port={value}: not a port number")),
        "sni" => Ok(Filter::Sni(
            value.trim_end_matches('.').to_ascii_lowercase(),
        )),
        _ => Err(format!(
            "unknown filter {key:?}: expected host, port or sni"
        )),
    }
}

impl Filter {
    fn matches(&self, flow: &Flow, summary: &Summary) -> bool {
        match self {
            Filter::Host(ip) => flow.client.ip() == *ip || flow.server.ip() == *ip,
            Filter::Port(port) => flow.client.port() == *port || flow.server.port() == *port,
            Filter::Sni(name) => summary
                .sni
                .as_deref()
                .is_some_and(|sni| sni.eq_ignore_ascii_case(name)),
        }
    }
}

/// One TCP connection being followed.
struct Flow {
    client: SocketAddr,
    server: SocketAddr,
    tcp_handshake_ms: Option<f64>,
    dissector: Dissector,
    conversation: Conversation,
    /// Whether the connection is TLS, told by its first bytes (see `Tracer::handle`); `None`
    /// before they are seen.
    tls: Option<bool>,
    /// Per direction (client, server): the capture lost bytes of it before any arrived.
    lost_start: [bool; 2],
    gaps: Vec<String>,
    first_fin: Option<Direction>,
    /// When each side last sent bytes (ns), to tell a stall.
    last_client: Option<u64>,
    last_server: Option<u64>,
    /// When the connection's first packet was captured (ns): -V's times count from it.
    first_ts: u64,
    /// Events rendered for -V, printed with the summary so connections do not interleave.
    trace: Vec<String>,
}

/// What `--json` prints for a connection.
#[derive(Serialize)]
struct Line<'a> {
    client: SocketAddr,
    server: SocketAddr,
    tcp_handshake_ms: Option<f64>,
    #[serde(flatten)]
    summary: &'a Summary,
    gaps: &'a [String],
}

/// Run `mtls trace`.
pub fn run(args: TraceArgs) -> Result<ExitCode> {
    match trace(args) {
        // `mtls trace cap.pcap | head`: the reader left, which is not an error.
        Err(e)
            if e.chain().any(|cause| {
                let kind = cause
                    .downcast_ref::<std::io::Error>()
                    .map(std::io::Error::kind)
                    .or_else(|| cause.downcast_ref::<serde_json::Error>()?.io_error_kind());
                kind == Some(std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        other => other,
    }
}

fn trace(args: TraceArgs) -> Result<ExitCode> {
    let mut keylog_text = match &args.keylog {
        Some(path) => mtls_pki::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .with_context(|| format!("reading the key log {}", path.display()))?,
        None => String::new(),
    };
    let keylog = KeyLog::parse(&keylog_text).with_context(|| match &args.keylog {
        Some(path) => format!("reading the key log {}", path.display()),
        None => "reading the key log".to_owned(),
    })?;
    if let Some(path) = &args.keylog
        && keylog.is_empty()
    {
        eprintln!(
            "warning: the key log {} has no TLS secrets (NSS SSLKEYLOGFILE lines such as \
             CLIENT_RANDOM or CLIENT_HANDSHAKE_TRAFFIC_SECRET): nothing will be decrypted",
            path.display()
        );
    }
    let (input, mut progress): (Box<dyn Read>, _) = if args.input.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        // The reader keeps its own 1 MiB window: no BufReader (it would be a second copy).
        let file = std::fs::File::open(&args.input)
            .with_context(|| format!("opening {}", args.input.display()))?;
        progress::watch(file)
    };
    let what = args.input.display().to_string();
    let mut reader = CaptureReader::new(input).with_context(|| format!("reading {what}"))?;
    let mut reassembler = Reassembler::new();
    let mut tracer = Tracer {
        flows: HashMap::default(),
        scratch: Vec::new(),
        keylog: Arc::new(keylog),
        last_ts: 0,
        counts: Counts::default(),
    };
    // A file is read as fast as it goes, so lines are written in blocks; a live capture
    // (`-`) gets each line as its connection ends.
    let stdout = std::io::stdout().lock();
    let mut out: Box<dyn Write> = if args.input.as_os_str() == "-" {
        Box::new(std::io::LineWriter::new(stdout))
    } else if let Some(progress) = progress.as_ref().filter(|_| stdout.is_terminal()) {
        Box::new(progress.around(stdout))
    } else {
        Box::new(std::io::BufWriter::with_capacity(1 << 16, stdout))
    };
    // A capture that breaks off (tcpdump killed, a file still being written) or is damaged
    // mid-way loses nothing read before: the connections open there end with it.
    let mut stopped = None;
    loop {
        let block = match reader.next() {
            Ok(Some(block)) => block,
            Ok(None) => break,
            Err(e) => {
                stopped = Some(e);
                break;
            }
        };
        match block {
            Block::KeyLog(text) => {
                keylog_text.push_str(&text);
                keylog_text.push('\n');
                tracer.keylog =
                    Arc::new(KeyLog::parse(&keylog_text).context("reading the embedded key log")?);
                for flow in tracer.flows.values_mut() {
                    flow.dissector.set_keylog(Arc::clone(&tracer.keylog));
                }
            }
            Block::Packet(packet) => {
                tracer.last_ts = tracer.last_ts.max(packet.ts_nanos);
                let segment = match mtls_capture::decode(packet.link, &packet.data) {
                    Ok(Decoded::Tcp(segment)) => segment,
                    Ok(Decoded::Skipped(mtls_capture::Skipped::UnsupportedLink(_))) => {
                        tracer.counts.unsupported_link += 1;
                        continue;
                    }
                    _ => continue,
                };
                // The events may borrow the packet: they are handled before the next one.
                let mut events = Vec::new();
                reassembler.feed(packet.ts_nanos, &segment, &mut events);
                for event in events {
                    tracer.handle(event, &args, &mut out)?;
                }
            }
            _ => {}
        }
        if let Some(progress) = &mut progress {
            progress.update(tracer.counts.tls);
        }
    }
    let mut events = Vec::new();
    reassembler.finish(&mut events);
    for event in events.drain(..) {
        tracer.handle(event, &args, &mut out)?;
    }
    out.flush()?;
    // Erases the progress line before the count.
    drop(progress);
    let counts = &tracer.counts;
    if !args.json {
        let shown = if args.failed || !args.filter.is_empty() {
            format!(" ({} shown)", counts.shown)
        } else {
            String::new()
        };
        let not_tls = match counts.not_tls {
            0 => String::new(),
            n => format!("; {n} TCP connection(s) that did not start with TLS (plain HTTP?)"),
        };
        eprintln!(
            "{} TLS connection(s): {} completed, {} failed, {} incomplete{shown}{not_tls}",
            counts.tls, counts.completed, counts.failed, counts.incomplete
        );
    }
    if counts.unsupported_link > 0 {
        eprintln!(
            "warning: {} packet(s) of a link type mtls trace does not read were skipped \
             (it reads Ethernet, Linux cooked SLL/SLL2, loopback/null and raw IP)",
            counts.unsupported_link
        );
    }
    match stopped {
        None => Ok(ExitCode::SUCCESS),
        Some(e @ mtls_capture::CaptureError::Truncated { .. }) => {
            eprintln!(
                "warning: {what}: {e}; the connections open there end with it (a capture \
                 still being written, or cut short)"
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(e) => {
            eprintln!("error: reading {what}: {e}; what came before it is reported above");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[derive(Default)]
struct Counts {
    tls: usize,
    /// Lines printed (after --failed and --filter).
    shown: usize,
    /// Packets skipped because their link type is not read.
    unsupported_link: usize,
    /// TCP connections whose first bytes were not TLS.
    not_tls: usize,
    completed: usize,
    failed: usize,
    incomplete: usize,
}

/// The connections being followed, and what the whole capture has shown so far.
struct Tracer {
    flows: HashMap<FlowId, Flow, foldhash::fast::RandomState>,
    /// The dissector's events for one chunk of bytes, one vector for all connections.
    scratch: Vec<mtls_inspect::Event>,
    keylog: Arc<KeyLog>,
    /// The newest packet's time (ns): when the capture ends.
    last_ts: u64,
    counts: Counts,
}

impl Tracer {
    fn handle(&mut self, event: Event<'_>, args: &TraceArgs, out: &mut impl Write) -> Result<()> {
        let Tracer {
            flows,
            scratch,
            keylog,
            last_ts,
            counts,
        } = self;
        match event {
            Event::Opened {
                flow,
                client,
                server,
                first_ts,
                syn_ts,
                syn_ack_ts,
                ..
            } => {
                let tcp_handshake_ms = match (syn_ts, syn_ack_ts) {
                    (Some(syn), Some(ack)) if ack >= syn => Some((ack - syn) as f64 / 1e6),
                    _ => None,
                };
                flows.insert(
                    flow,
                    Flow {
                        client,
                        server,
                        tcp_handshake_ms,
                        // The summary reads a few fields; -V prints them all.
                        dissector: Dissector::new(Arc::clone(keylog)).with_detail(
                            if args.verbose {
                                Detail::Full
                            } else {
                                Detail::Summary
                            },
                        ),
                        conversation: Conversation::new(),
                        tls: None,
                        lost_start: [false; 2],
                        gaps: Vec::new(),
                        first_fin: None,
                        last_client: None,
                        last_server: None,
                        first_ts,
                        trace: Vec::new(),
                    },
                );
            }
            Event::Data {
                flow,
                dir,
                bytes,
                ts_nanos,
            } => {
                let Some(f) = flows.get_mut(&flow) else {
                    return Ok(());
                };
                let direction = direction(dir);
                match direction {
                    Direction::ClientToServer => f.last_client = Some(ts_nanos),
                    Direction::ServerToClient => f.last_server = Some(ts_nanos),
                }
                // TLS is told by its bytes, on any port: the client's first bytes are a
                // handshake record or not; the server's, when they come first (the capture
                // lost or has not yet ordered the client's), can only say yes.
                let side = usize::from(direction == Direction::ServerToClient);
                if f.tls.is_none() && !f.lost_start[side] {
                    let handshake = bytes.first() == Some(&0x16);
                    if direction == Direction::ClientToServer || handshake {
                        f.tls = Some(handshake);
                    }
                }
                if f.tls == Some(false) {
                    return Ok(());
                }
                f.dissector.feed_into(direction, &bytes, scratch);
                for event in scratch.drain(..) {
                    if args.verbose {
                        let at_ms = ts_nanos.saturating_sub(f.first_ts) as f64 / 1e6;
                        f.trace.push(event.framed(at_ms).to_string());
                    }
                    f.conversation.observe_owned(event);
                }
            }
            Event::Gap {
                flow,
                dir,
                at,
                missing,
            } => {
                if let Some(f) = flows.get_mut(&flow) {
                    // Where the next record starts is unknown: that direction is not
                    // dissected further (the note below says why).
                    if at == 0 {
                        f.lost_start[usize::from(dir == Way::ServerToClient)] = true;
                    }
                    let _ = f.dissector.gap(direction(dir), at, missing);
                    f.conversation.tcp_gap(direction(dir), at, missing);
                    let side = match direction(dir) {
                        Direction::ClientToServer => "client",
                        Direction::ServerToClient => "server",
                    };
                    f.gaps.push(format!(
                    "{missing} byte(s) from the {side} missing from the capture at stream offset {at}"
                ));
                }
            }
            Event::Fin { flow, dir, .. } => {
                if let Some(f) = flows.get_mut(&flow) {
                    f.conversation.tcp_fin(direction(dir));
                }
            }
            Event::Closed {
                flow,
                how,
                ts_nanos,
                first_fin,
            } => {
                let Some(mut f) = flows.remove(&flow) else {
                    return Ok(());
                };
                if f.tls != Some(true) {
                    // Plain HTTP to a TLS port, or any other protocol: counted, not dissected.
                    if f.tls == Some(false) {
                        counts.not_tls += 1;
                    }
                    return Ok(());
                }
                f.first_fin = first_fin.map(direction);
                // The client spoke last and the server said nothing for `--stall` seconds
                // before the end: a stall, whatever ended it.
                let end = if matches!(how, Close::EndOfCapture) {
                    *last_ts
                } else {
                    ts_nanos
                };
                let unanswered = match (f.last_client, f.last_server) {
                    (Some(c), Some(s)) if s >= c => None,
                    (Some(c), _) => Some(end.saturating_sub(c) / 1_000_000_000),
                    _ => None,
                };
                let ending = match (how, unanswered) {
                    (_, Some(secs)) if secs >= args.stall => Ending::Stalled { after_secs: secs },
                    (Close::Reset { by }, _) => Ending::Reset { by: direction(by) },
                    (Close::Fin, _) => match f.first_fin {
                        Some(by) => Ending::Fin { by },
                        None => Ending::EndOfCapture,
                    },
                    // One side closed and the capture ended before the other did.
                    (Close::EndOfCapture, _) => f
                        .first_fin
                        .map_or(Ending::EndOfCapture, |by| Ending::Fin { by }),
                    _ => Ending::EndOfCapture,
                };
                f.conversation.tcp_closed(ending);
                report(&f, args, out, counts)?;
            }
            _ => {}
        }
        Ok(())
    }
}

fn direction(way: Way) -> Direction {
    match way {
        Way::ClientToServer => Direction::ClientToServer,
        Way::ServerToClient => Direction::ServerToClient,
    }
}

fn report(flow: &Flow, args: &TraceArgs, out: &mut impl Write, counts: &mut Counts) -> Result<()> {
    let summary = flow.conversation.summary();
    counts.tls += 1;
    let completed = matches!(summary.outcome, Outcome::Completed);
    match summary.outcome {
        Outcome::Completed => counts.completed += 1,
        Outcome::Failed { .. } => counts.failed += 1,
        _ => counts.incomplete += 1,
    }
    if args.failed && completed || !args.filter.iter().all(|f| f.matches(flow, &summary)) {
        return Ok(());
    }
    counts.shown += 1;
    if args.json {
        let line = Line {
            client: flow.client,
            server: flow.server,
            tcp_handshake_ms: flow.tcp_handshake_ms,
            summary: &summary,
            gaps: &flow.gaps,
        };
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
        return Ok(());
    }
    let tcp = flow
        .tcp_handshake_ms
        .map(|ms| format!(" tcp={ms:.2}ms"))
        .unwrap_or_default();
    writeln!(out, "{} -> {}{tcp} {summary}", flow.client, flow.server)?;
    for note in summary.what_could_not_be_seen.iter().chain(&flow.gaps) {
        writeln!(out, "    note: {note}")?;
    }
    if args.verbose {
        for event in &flow.trace {
            writeln!(out, "{event}")?;
        }
    }
    Ok(())
}

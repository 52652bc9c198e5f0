//! `mtls trace`: read a packet capture, rebuild each TCP connection, dissect its TLS, and
//! say in one line how each handshake went, or in one sentence why it failed.
//!
//! Wiring only: `mtls-capture` reads the file and reassembles TCP; `mtls-inspect`'s
//! `Dissector` decodes each direction (decrypting TLS 1.3 with the key log: `--keylog`,
//! or one embedded in the pcapng), and its `Conversation` makes the summary and verdict.
//! The capture is streamed: memory follows the connections open at once, not the file.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use mtls_capture::{
    Block, CaptureReader, Close, Decoded, Direction as Way, Event, FlowId, Reassembler,
};
use mtls_inspect::conversation::{Close as Ending, Conversation, Outcome, Summary};
use mtls_inspect::{Direction, Dissector, KeyLog};

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
    /// Print every record and handshake message of each connection, like `mtls get --trace`.
    #[arg(short = 'V', long)]
    verbose: bool,
    /// One JSON object per connection (JSON Lines), as each ends.
    #[arg(long)]
    json: bool,
    /// Only the connections whose handshake did not complete.
    #[arg(long)]
    failed: bool,
}

/// One TCP connection being followed.
struct Flow {
    client: SocketAddr,
    server: SocketAddr,
    tcp_handshake_ms: Option<f64>,
    dissector: Dissector,
    conversation: Conversation,
    /// Whether the client's first bytes were a TLS record; `None` before any.
    tls: Option<bool>,
    gaps: Vec<String>,
    first_fin: Option<Direction>,
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
    let mut keylog_text = match &args.keylog {
        Some(path) => mtls_pki::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .with_context(|| format!("reading the key log {}", path.display()))?,
        None => String::new(),
    };
    let mut keylog = KeyLog::parse(&keylog_text)
        .with_context(|| format!("reading the key log {:?}", args.keylog))?;
    let input: Box<dyn Read> = if args.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.input)
            .with_context(|| format!("opening {}", args.input.display()))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let what = args.input.display().to_string();
    let mut reader = CaptureReader::new(input).with_context(|| format!("reading {what}"))?;
    let mut reassembler = Reassembler::new();
    let mut flows: HashMap<FlowId, Flow> = HashMap::new();
    // The first FIN of each connection, by its endpoints (a FIN is seen before the flow's
    // Closed event, which only says that both sides closed).
    let mut fins: HashMap<(SocketAddr, SocketAddr), SocketAddr> = HashMap::new();
    let mut events = Vec::new();
    let mut out = std::io::stdout().lock();
    let mut counts = Counts::default();
    while let Some(block) = reader.next().with_context(|| format!("reading {what}"))? {
        match block {
            Block::KeyLog(text) => {
                keylog_text.push_str(&text);
                keylog_text.push('\n');
                keylog = KeyLog::parse(&keylog_text).context("reading the embedded key log")?;
                for flow in flows.values_mut() {
                    flow.dissector.set_keylog(keylog.clone());
                }
            }
            Block::Packet(packet) => {
                let Ok(Decoded::Tcp(segment)) = mtls_capture::decode(packet.link, &packet.data)
                else {
                    continue;
                };
                if segment.flags.fin {
                    fins.entry(pair(segment.src, segment.dst))
                        .or_insert(segment.src);
                }
                reassembler.feed(packet.ts_nanos, &segment, &mut events);
            }
            _ => {}
        }
        for event in events.drain(..) {
            handle(
                event,
                &mut flows,
                &mut fins,
                &keylog,
                &args,
                &mut out,
                &mut counts,
            )?;
        }
    }
    reassembler.finish(&mut events);
    for event in events.drain(..) {
        handle(
            event,
            &mut flows,
            &mut fins,
            &keylog,
            &args,
            &mut out,
            &mut counts,
        )?;
    }
    if !args.json {
        eprintln!(
            "{} TLS connection(s): {} completed, {} failed, {} incomplete",
            counts.tls, counts.completed, counts.failed, counts.incomplete
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Default)]
struct Counts {
    tls: usize,
    completed: usize,
    failed: usize,
    incomplete: usize,
}

fn pair(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

fn handle(
    event: Event,
    flows: &mut HashMap<FlowId, Flow>,
    fins: &mut HashMap<(SocketAddr, SocketAddr), SocketAddr>,
    keylog: &KeyLog,
    args: &TraceArgs,
    out: &mut impl Write,
    counts: &mut Counts,
) -> Result<()> {
    match event {
        Event::Opened {
            flow,
            client,
            server,
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
                    dissector: Dissector::new(keylog.clone()),
                    conversation: Conversation::new(),
                    tls: None,
                    gaps: Vec::new(),
                    first_fin: None,
                    trace: Vec::new(),
                },
            );
        }
        Event::Data {
            flow, dir, bytes, ..
        } => {
            let Some(f) = flows.get_mut(&flow) else {
                return Ok(());
            };
            let direction = direction(dir);
            if f.tls.is_none() && direction == Direction::ClientToServer {
                // TLS is told by its bytes, on any port: a handshake record.
                f.tls = Some(bytes.first() == Some(&0x16));
            }
            if f.tls == Some(false) {
                return Ok(());
            }
            for event in f.dissector.feed(direction, &bytes) {
                if args.verbose {
                    f.trace.push(event.to_string());
                }
                f.conversation.observe(&event);
            }
        }
        Event::Gap {
            flow,
            dir,
            at,
            missing,
        } => {
            if let Some(f) = flows.get_mut(&flow) {
                let side = match direction(dir) {
                    Direction::ClientToServer => "client",
                    Direction::ServerToClient => "server",
                };
                f.gaps.push(format!(
                    "{missing} byte(s) from the {side} missing from the capture at stream offset {at}"
                ));
            }
        }
        Event::Closed { flow, how, .. } => {
            let Some(mut f) = flows.remove(&flow) else {
                return Ok(());
            };
            if f.tls != Some(true) {
                return Ok(());
            }
            let key = pair(f.client, f.server);
            f.first_fin = fins.remove(&key).map(|by| {
                if by == f.client {
                    Direction::ClientToServer
                } else {
                    Direction::ServerToClient
                }
            });
            let ending = match how {
                Close::Reset { by } => Ending::Reset { by: direction(by) },
                Close::Fin => match f.first_fin {
                    Some(by) => Ending::Fin { by },
                    None => Ending::EndOfCapture,
                },
                _ => Ending::EndOfCapture,
            };
            f.conversation.tcp_closed(ending);
            report(&f, args, out, counts)?;
        }
        _ => {}
    }
    Ok(())
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
    if args.failed && completed {
        return Ok(());
    }
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
        for line in &flow.trace {
            writeln!(out, "    {line}")?;
        }
    }
    Ok(())
}

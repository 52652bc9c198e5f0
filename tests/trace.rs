//! `mtls trace` on real captures: tcpdump records the gateway refusing clients (no
//! certificate, a certificate from another CA; TLS 1.2 and 1.3, with and without the
//! client's key log), and each connection's line must give the verdict the gateway logged,
//! in the same words. tshark, reading the same file, is the oracle for what every
//! connection negotiated.

use std::process::Command;

use crate::util::{Tcpdump, Work, localhost_pki};

#[test]
fn trace_gives_each_failed_handshake_the_gateways_verdict() {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    let other = Work::new();
    other.ok(&["pki", "init", "--cn", "Other CA"]);
    other.ok(&["pki", "issue", "client", "mallory"]);
    for f in ["certs/mallory.crt", "private/mallory.key"] {
        std::fs::copy(
            other.join(&format!("pki/{f}")),
            work.join(&format!("mallory.{}", &f[f.len() - 3..])),
        )
        .unwrap();
    }
    let server = crate::util::mutual_gateway(&work);
    let port = server.port;
    let capture = Tcpdump::start(&work, port);
    let url = format!("https://localhost:{port}/");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let curl = |extra: &[&str]| {
        let mut args = vec![
            "--cacert",
            "pki/ca.crt",
            "--resolve",
            &resolve,
            "-o",
            "/dev/null",
        ];
        args.extend_from_slice(extra);
        args.push(&url);
        work.curl(&args).0
    };
    let tls12: &[&str] = &["--tlsv1.2", "--tls-max", "1.2"];
    let mallory: &[&str] = &["--cert", "mallory.crt", "--key", "mallory.key"];
    assert_eq!(
        curl(&[
            "--cert",
            "pki/certs/alice.crt",
            "--key",
            "pki/private/alice.key"
        ]),
        0
    );
    assert_ne!(curl(tls12), 0);
    assert_ne!(curl(&[tls12, mallory].concat()), 0);
    // TLS 1.3 with the client's key log: the encrypted Certificate becomes visible.
    let keylog = work.join("keys.log");
    let out = Command::new(mtls_test_support::require_peer("curl"))
        .current_dir(work.path())
        .env("SSLKEYLOGFILE", &keylog)
        .args([
            "-s",
            "--cacert",
            "pki/ca.crt",
            "--resolve",
            &resolve,
            "-o",
            "/dev/null",
        ])
        .args(mallory)
        .arg(&url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let file = capture.stop();
    let file = file.to_str().unwrap();
    let log = server.wait_log("check=unknown_issuer");
    assert_eq!(log.matches("TLS handshake refused").count(), 3, "{log}");

    let text = work.ok(&["trace", file, "--keylog", "keys.log"]);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(lines.len(), 4, "{text}");
    // alice's connection had no key log: its TLS 1.3 certificate stays unseen, and it
    // completed.
    assert!(
        lines[0].contains("TLSv1.3") && lines[0].ends_with(" ok"),
        "{text}"
    );
    assert!(
        lines[1].contains("TLSv1.2")
            && lines[1].ends_with(
                "FAILED: the server asked for a client certificate (accepting CN=mtls CA) and the client sent none"
            ),
        "{text}"
    );
    let refused = "FAILED: the server refused the client certificate CN=mallory (issued by CN=Other CA) with alert unknown_ca: the server accepts CN=mtls CA";
    assert!(
        lines[2].contains("TLSv1.2") && lines[2].ends_with(refused),
        "{text}"
    );
    assert!(
        lines[3].contains("TLSv1.3") && lines[3].ends_with(refused),
        "{text}"
    );

    // Without the key log, TLS 1.3 says what it could not see.
    let blind = work.ok(&["trace", file, "--failed"]);
    assert_eq!(
        blind.lines().filter(|l| l.contains(" -> ")).count(),
        3,
        "{blind}"
    );
    assert!(blind.contains("give --keylog to see them"), "{blind}");
    assert!(
        blind.contains("probably it refused the client certificate"),
        "{blind}"
    );

    // JSON Lines, and tshark's reading of the same file: the same SNI, cipher suite and
    // JA3S for every connection, in the same order.
    let json = work.ok(&["trace", file, "--keylog", "keys.log", "--json"]);
    let ours: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(ours.len(), 4, "{json}");
    let tshark = Command::new(mtls_test_support::require_peer("tshark"))
        .args(["-r", file, "-Y", "tls.handshake.type == 2", "-T", "fields"])
        .args(["-e", "tcp.dstport", "-e", "tls.handshake.ciphersuite"])
        .args(["-e", "tls.handshake.ja3s"])
        .output()
        .unwrap();
    let theirs = String::from_utf8_lossy(&tshark.stdout).to_string();
    let theirs: Vec<Vec<&str>> = theirs.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(theirs.len(), 4, "{theirs:?}");
    for (line, fields) in ours.iter().zip(&theirs) {
        let [client_port, suite, ja3s] = fields[..] else {
            panic!("{fields:?}");
        };
        assert_eq!(line["ja3s"], ja3s, "{line}");
        let client = line["client"].as_str().unwrap();
        assert!(
            client.ends_with(&format!(":{client_port}")),
            "{line} vs {client_port}"
        );
        let suite_code = u16::from_str_radix(suite.trim_start_matches("0x"), 16).unwrap();
        let named = line["suite"].as_str().unwrap_or_default();
        assert!(!named.is_empty(), "{line}");
        let expected = match suite_code {
            0x1301 => "TLS_AES_128_GCM_SHA256",
            0x1302 => "TLS_AES_256_GCM_SHA384",
            0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
            0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            other => panic!("unexpected suite {other:#x}"),
        };
        assert_eq!(named, expected, "{line}");
        assert_eq!(line["sni"], "localhost", "{line}");
    }
}

/// A server that accepts the connection and never answers: with `--stall 1`, the
/// ClientHello that waited is reported as a stall, and `--filter` keeps only what matches.
#[test]
fn a_server_that_never_answers_is_a_stall() {
    let work = Work::new();
    let (_listener, port) = crate::util::silent_listener();
    let capture = Tcpdump::start(&work, port);
    // curl sends its ClientHello and gives up after 2 s without an answer.
    let (code, _, _) = work.curl(&[
        "-k",
        "--max-time",
        "2",
        &format!("https://127.0.0.1:{port}/"),
    ]);
    assert_ne!(code, 0);
    let file = capture.stop();
    let file = file.to_str().unwrap();
    let text = work.ok(&["trace", file, "--stall", "1"]);
    assert!(
        text.contains("FAILED: the handshake stalled: no answer to ClientHello for "),
        "{text}"
    );
    // Below --stall (10 s by default), it is curl that gave up: it closed.
    let default = work.ok(&["trace", file]);
    assert!(
        default.contains(
            "FAILED: the client closed the connection after ClientHello, without an alert"
        ),
        "{default}"
    );
    let port_filter = format!("port={port}");
    let kept = work.ok(&["trace", file, "--stall", "1", "--filter", &port_filter]);
    assert_eq!(
        kept.lines().filter(|l| l.contains(" -> ")).count(),
        1,
        "{kept}"
    );
    let none = work.ok(&["trace", file, "--filter", "sni=elsewhere.example"]);
    assert_eq!(
        none.lines().filter(|l| l.contains(" -> ")).count(),
        0,
        "{none}"
    );
}

/// Memory follows the connections open at once, not the size of the capture: a gigabyte of
/// short mutual-TLS connections, streamed through `mtls trace -`, is read in under 100 MB.
/// The connections are two real ones (curl with and without a client certificate against
/// the gateway, captured by tcpdump) replayed with new client ports, about 200,000 in all.
#[test]
fn a_gigabyte_capture_is_read_in_bounded_memory() {
    use std::io::{Read, Write};
    use std::process::Stdio;

    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    let server = crate::util::mutual_gateway(&work);
    let port = server.port;
    let capture = Tcpdump::start(&work, port);
    let url = format!("https://localhost:{port}/");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let common = [
        "--cacert",
        "pki/ca.crt",
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
    ];
    let alice = [
        "--cert",
        "pki/certs/alice.crt",
        "--key",
        "pki/private/alice.key",
    ];
    assert_eq!(work.curl(&[&common[..], &alice, &[&url]].concat()).0, 0);
    assert_ne!(
        work.curl(&[&common[..], &["--tlsv1.2", "--tls-max", "1.2", &url]].concat())
            .0,
        0
    );
    let file = capture.stop();
    drop(server);

    // pcap: a 24-byte header, then records of a 16-byte header and the frame. tcpdump on
    // lo writes Ethernet frames: IPv4 at 14, TCP ports at 14 + IHL.
    let bytes = std::fs::read(&file).unwrap();
    let (header, mut rest) = bytes.split_at(24);
    let mut packets: Vec<Vec<u8>> = Vec::new();
    while rest.len() >= 16 {
        let captured = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        packets.push(rest[..16 + captured].to_vec());
        rest = &rest[16 + captured..];
    }
    let ports = |p: &[u8]| {
        let tcp = 16 + 14 + usize::from(p[16 + 14] & 0x0f) * 4;
        (
            tcp,
            u16::from_be_bytes([p[tcp], p[tcp + 1]]),
            u16::from_be_bytes([p[tcp + 2], p[tcp + 3]]),
        )
    };
    let mut clients: Vec<u16> = packets
        .iter()
        .map(|p| ports(p))
        .map(|(_, src, dst)| if src == port { dst } else { src })
        .collect();
    clients.sort_unstable();
    clients.dedup();
    assert_eq!(clients.len(), 2, "two connections captured: {clients:?}");
    let per_round: usize = packets.iter().map(Vec::len).sum();
    // Replays of the two connections, to a gigabyte.
    let rounds = (1usize << 30).div_ceil(per_round);

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mtls"))
        .args(["trace", "-", "--failed"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let header = header.to_vec();
    let writer = std::thread::spawn(move || {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut stdin);
        out.write_all(&header).unwrap();
        for round in 0..rounds {
            for packet in &packets {
                let mut packet = packet.clone();
                let (tcp, src, dst) = ports(&packet);
                // Each round's connections get ports of their own (10,000 to 59,999; a
                // port comes back after 25,000 rounds, long after its connection closed).
                // The server's own port is skipped.
                let fresh = |old: u16| {
                    let which = clients.iter().position(|&c| c == old).unwrap_or(0);
                    let n = (round * clients.len() + which) % 50_000;
                    let new = 10_000 + u16::try_from(n).unwrap();
                    if new == port {
                        60_000 + u16::try_from(which).unwrap()
                    } else {
                        new
                    }
                };
                if src != port {
                    packet[tcp..tcp + 2].copy_from_slice(&fresh(src).to_be_bytes());
                }
                if dst != port {
                    packet[tcp + 2..tcp + 4].copy_from_slice(&fresh(dst).to_be_bytes());
                }
                out.write_all(&packet).unwrap();
            }
        }
        out.flush().unwrap();
    });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    // The peak resident size, read while it runs (and kept by the kernel as VmHWM).
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    writer.join().unwrap();
    let failed_lines = reader.join().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} TLS connection(s): {rounds} completed, {rounds} failed, 0 incomplete",
            2 * rounds
        )),
        "{stderr}"
    );
    assert_eq!(
        failed_lines.lines().filter(|l| l.contains(" -> ")).count(),
        rounds
    );
    assert!(peak_kb > 0, "no VmHWM read");
    eprintln!(
        "peak RSS {peak_kb} kB for {} MB",
        (rounds * per_round) >> 20
    );
    assert!(
        peak_kb < 100 * 1024,
        "peak RSS {peak_kb} kB for {} MB of capture",
        (rounds * per_round) >> 20
    );
}

/// `-V` frames each event as `mtls get --trace` does: the milliseconds since the
/// connection's first packet and the direction, then the event's lines indented.
#[test]
fn trace_verbose_frames_every_event_as_get_trace_does() {
    let work = Work::new();
    work.write("replay.pcap", replayed_capture(1));
    let text = work.ok(&["trace", "replay.pcap", "-V"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("10.1.0.0:40000 -> 10.0.0.1:8443 "),
        "{text}"
    );
    let hello = lines
        .iter()
        .position(|l| l.starts_with('['))
        .unwrap_or_else(|| panic!("no event in:\n{text}"));
    // The ClientHello left 1 ms after the SYN, the server answered 1 ms later.
    assert_eq!(lines[hello], "[     1.000 ms] client -> server", "{text}");
    assert!(
        lines[hello + 1].starts_with("    → handshake record TLS 1.0 (0x0301), "),
        "{text}"
    );
    assert!(
        lines[hello + 2].starts_with("      ClientHello ("),
        "{text}"
    );
    assert!(
        lines[hello + 3].starts_with("        legacy_version: "),
        "{text}"
    );
    assert!(
        text.contains("\n[     2.000 ms] server -> client\n    ← handshake record "),
        "{text}"
    );
    // Every line of the trace is a heading or indented under one.
    assert!(
        lines[hello..]
            .iter()
            .all(|l| l.starts_with("[ ") || l.starts_with("    ")),
        "{text}"
    );
}

/// `mtls trace FILE` on a file larger than 8 MB draws a progress line on stderr when it is a
/// terminal, erases it before the count, and leaves stdout as it is; on a pipe, nothing.
#[test]
fn trace_progress_line_only_on_a_terminal() {
    let work = Work::new();
    let mut connections = 1;
    let capture = loop {
        let capture = replayed_capture(connections);
        if capture.len() > 9_000_000 {
            break capture;
        }
        connections = connections * 9_000_000 / capture.len() + 1;
    };
    work.write("big.pcap", capture);
    let args = ["trace", "big.pcap"];

    let plain = work.mtls(&args);
    assert!(
        plain.status.success(),
        "{}",
        mtls_test_support::text(&plain)
    );
    let count = String::from_utf8(plain.stderr).unwrap();
    assert_eq!(
        count,
        format!(
            "{connections} TLS connection(s): {connections} completed, 0 failed, 0 incomplete\n"
        )
    );
    let summary = String::from_utf8(plain.stdout).unwrap();
    assert_eq!(summary.matches(" ok\n").count(), connections, "{summary}");

    // stderr on a terminal, stdout to a pipe.
    let (stdout, tty) = on_a_terminal(&work, &args, false);
    assert_eq!(stdout, summary);
    assert!(
        tty.contains(" MB/") && tty.contains(" TLS connections"),
        "no progress line in {tty:?}"
    );
    // The count line comes after the last erase, alone.
    let (drawn, after) = tty.rsplit_once("\x1b[2K").unwrap();
    assert_eq!(after, count.replace('\n', "\r\n"), "{tty:?}");
    assert!(drawn.contains(" MB/s, "), "{tty:?}");

    // Both on the terminal: every line of stdout arrives whole, the progress line lifted
    // out of the way first.
    let (_, tty) = on_a_terminal(&work, &args, true);
    let seen: Vec<&str> = tty
        .split("\r\n")
        .map(|l| l.rsplit("\x1b[2K").next().unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect();
    let expected: Vec<&str> = summary.lines().chain(count.lines()).collect();
    assert_eq!(seen, expected, "{tty:?}");
}

/// Runs `mtls ARGS...` with stderr (and stdout, when `both`) on a new pseudo-terminal;
/// returns what it wrote to stdout otherwise, and what the terminal received.
fn on_a_terminal(work: &Work, args: &[&str], both: bool) -> (String, String) {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    use std::process::Stdio;

    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let terminal = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
            .open(name.to_str().unwrap())
            .unwrap()
    };
    let stdout = if both {
        Stdio::from(terminal())
    } else {
        Stdio::piped()
    };
    // The command, and with it this process's copies of the terminal, are gone after this
    // statement: the master then reads an error once the child exits.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mtls"))
        .current_dir(work.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(terminal())
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(master);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut chunk = [0; 1 << 16];
        while let Ok(n @ 1..) = master.read(&mut chunk) {
            seen.extend_from_slice(&chunk[..n]);
        }
        seen
    });
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "mtls {args:?}: {}", out.status);
    let seen = reader.join().unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(seen).unwrap(),
    )
}

/// A pcap of `connections` TCP connections, each replaying the TLS 1.3 mutual-TLS handshake
/// of mtls-inspect's `tls13_mtls` fixture (one segment per recorded read): SYN, SYN-ACK, ACK
/// 0.1 ms apart, the first bytes 1 ms after the SYN and the rest 1 ms apart, then FINs.
fn replayed_capture(connections: usize) -> Vec<u8> {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/inspect/tests/fixtures/tls13_mtls.hex"
    ))
    .unwrap();
    let chunks: Vec<(bool, Vec<u8>)> = fixture
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(way, _)| *way == "c" || *way == "s")
        .map(|(way, hex)| {
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (way == "c", bytes)
        })
        .collect();
    // LINKTYPE_RAW (101): each record is a bare IPv4 packet.
    let mut pcap = Vec::new();
    for field in [0xa1b2_c3d4_u32, 0x0004_0002, 0, 0, 65535, 101] {
        pcap.extend_from_slice(&field.to_le_bytes());
    }
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PSH_ACK: u8 = 0x18;
    const FIN_ACK: u8 = 0x11;
    for i in 0..connections {
        let client = [10, 1, (i >> 8) as u8, i as u8];
        let server = [10, 0, 0, 1];
        let client_port = 40000 + (i >> 16) as u16;
        let start = 1_000_000 * i as u64; // µs: one connection a second
        let (mut c_seq, mut s_seq) = (1000_u32, 5000_u32);
        let mut packet =
            |at: u64, from_client: bool, flags: u8, seq: u32, ack: u32, data: &[u8]| {
                let (src, dst, sport, dport) = if from_client {
                    (client, server, client_port, 8443)
                } else {
                    (server, client, 8443, client_port)
                };
                let mut ip = vec![0x45, 0];
                ip.extend_from_slice(&((40 + data.len()) as u16).to_be_bytes());
                ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
                ip.extend_from_slice(&src);
                ip.extend_from_slice(&dst);
                ip.extend_from_slice(&sport.to_be_bytes());
                ip.extend_from_slice(&dport.to_be_bytes());
                ip.extend_from_slice(&seq.to_be_bytes());
                ip.extend_from_slice(&ack.to_be_bytes());
                ip.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
                ip.extend_from_slice(data);
                let at = start + at;
                for field in [
                    at / 1_000_000,
                    at % 1_000_000,
                    ip.len() as u64,
                    ip.len() as u64,
                ] {
                    pcap.extend_from_slice(&(field as u32).to_le_bytes());
                }
                pcap.extend_from_slice(&ip);
            };
        packet(0, true, SYN, c_seq - 1, 0, &[]);
        packet(100, false, SYN | ACK, s_seq - 1, c_seq, &[]);
        packet(200, true, ACK, c_seq, s_seq, &[]);
        let mut at = 1000;
        for (from_client, bytes) in &chunks {
            let (seq, ack) = if *from_client {
                (c_seq, s_seq)
            } else {
                (s_seq, c_seq)
            };
            packet(at, *from_client, PSH_ACK, seq, ack, bytes);
            let advance = bytes.len() as u32;
            if *from_client {
                c_seq += advance;
            } else {
                s_seq += advance;
            }
            at += 1000;
        }
        packet(at, true, FIN_ACK, c_seq, s_seq, &[]);
        packet(at + 100, false, FIN_ACK, s_seq, c_seq + 1, &[]);
        packet(at + 200, true, ACK, c_seq + 1, s_seq + 1, &[]);
    }
    pcap
}

/// A capture that lost a connection's ClientHello still lists that connection (TLS told by
/// the server's first bytes), says where the bytes are missing and does not guess how the
/// handshake went. The capture is `mtls-capture`'s real one, the ClientHello's frame cut.
#[test]
fn a_lost_client_hello_is_said_not_guessed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/capture/tests/data");
    let bytes = std::fs::read(format!("{dir}/mtls-handshakes.pcap")).unwrap();
    // pcap: a 24-byte header, records of a 16-byte header and an Ethernet frame.
    let mut out = bytes[..24].to_vec();
    let mut rest = &bytes[24..];
    let mut cut = None;
    while rest.len() >= 16 {
        let captured = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (record, after) = rest.split_at(16 + captured);
        let ip = &record[16 + 14..];
        let tcp = &ip[usize::from(ip[0] & 0x0f) * 4..];
        let payload = &tcp[usize::from(tcp[12] >> 4) * 4..];
        let client_hello = matches!(payload, [0x16, 0x03, _, _, _, 0x01, ..]);
        if client_hello && cut.is_none() {
            cut = Some(u16::from_be_bytes([tcp[0], tcp[1]]));
        } else {
            out.extend_from_slice(record);
        }
        rest = after;
    }
    let port = cut.expect("a ClientHello to cut");
    let work = Work::new();
    work.write("cut.pcap", &out);
    let keys = format!("{dir}/mtls-handshakes.keys");
    let text = work.ok(&["trace", "cut.pcap", "--keylog", &keys]);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(lines.len(), 6, "{text}");
    // Its line comes when the capture ends: the hole could still have been filled.
    let (cut_lines, whole): (Vec<&str>, Vec<&str>) = lines
        .iter()
        .partition(|l| l.starts_with(&format!("127.0.0.1:{port} ")));
    assert_eq!(cut_lines.len(), 1, "{text}");
    assert!(
        cut_lines[0].ends_with(
            "INCOMPLETE: the capture misses the client's first 517 byte(s), where its \
             ClientHello is, so the handshake cannot be followed"
        ),
        "{text}"
    );
    assert!(
        text.contains("517 byte(s) from the client missing from the capture at stream offset 0"),
        "{text}"
    );
    assert!(whole.iter().all(|l| !l.contains("INCOMPLETE")), "{text}");
}

/// A capture cut short (tcpdump killed, a file still being written) loses nothing read
/// before the cut: the connections open there are listed as incomplete, with a warning,
/// exit 0. A link type that is not read, a key log without secrets and a filter are said.
#[test]
fn a_cut_capture_loses_nothing_read_before_the_cut() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/capture/tests/data");
    let bytes = std::fs::read(format!("{dir}/mtls-handshakes.pcap")).unwrap();
    let work = Work::new();
    work.write("cut.pcap", &bytes[..12_000]);
    let out = work.mtls(&["trace", "cut.pcap"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" -> ")).count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains("INCOMPLETE: "), "{stdout}");
    assert!(
        stderr.contains("warning: cut.pcap: capture truncated at byte 12000")
            && stderr.contains("3 TLS connection(s): 2 completed, 0 failed, 1 incomplete"),
        "{stderr}"
    );

    let mut other_link = bytes.clone();
    other_link[20..24].copy_from_slice(&147u32.to_le_bytes());
    work.write("link.pcap", &other_link);
    let out = work.mtls(&["trace", "link.pcap"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("packet(s) of a link type mtls trace does not read were skipped"),
        "{stderr}"
    );

    work.write("empty.keys", "# nothing\n");
    let full = format!("{dir}/mtls-handshakes.pcap");
    let out = work.mtls(&[
        "trace",
        &full,
        "--keylog",
        "empty.keys",
        "--filter",
        "port=1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: the key log empty.keys has no TLS secrets")
            && stderr
                .contains("6 TLS connection(s): 3 completed, 3 failed, 0 incomplete (0 shown)"),
        "{stderr}"
    );
}

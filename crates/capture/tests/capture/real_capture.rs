//! Real captures: `openssl s_client` talks to `openssl s_server` on 127.0.0.1 while a real
//! capture tool records that port, and the capture must read back to a ClientHello from the
//! client and a ServerHello from the server. Interop tests never skip: a missing tool fails
//! the test with the hint to run scripts/test, which installs it.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mtls_capture::{
    Block, CaptureReader, ClientRule, Decoded, Direction, Event, Reassembler, decode,
};
use mtls_test_support::{TestCa, require_peer};

/// tcpdump writes classic pcap (Linux cooked or Ethernet/null link types on lo).
#[test]
fn tcpdump_capture_of_an_openssl_handshake() {
    let tcpdump = require_peer("tcpdump");
    capture_handshake(|file, port| {
        let mut cmd = Command::new(&tcpdump);
        // Immediate mode: without it, packets wait in the kernel ring for up to a second.
        cmd.args(["-i", "lo", "--immediate-mode", "-U", "-n", "-w"])
            .arg(file)
            .arg(format!("tcp port {port}"));
        (cmd, "listening on")
    });
}

/// dumpcap (Wireshark's capture engine, installed with tshark) writes pcapng.
#[test]
fn dumpcap_capture_of_an_openssl_handshake() {
    let dumpcap = require_peer("dumpcap");
    capture_handshake(|file, port| {
        let mut cmd = Command::new(&dumpcap);
        cmd.args(["-i", "lo", "-f", &format!("tcp port {port}"), "-w"])
            .arg(file);
        (cmd, "Capturing on")
    });
}

/// Kills a child process when dropped, so a failing assertion leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stop a capture tool with SIGTERM, so it writes what it holds and closes the file, and
/// wait for it (a SIGKILL when dropped if it does not exit in time).
fn stop(mut tool: Running) {
    let pid = tool.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = tool.0.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn capture_handshake(capture: impl FnOnce(&Path, u16) -> (Command, &'static str)) {
    let openssl = require_peer("openssl");
    let mut ca = TestCa::new();
    let server = ca.server("localhost", &["localhost", "127.0.0.1"]);
    let key = server.key.clone().expect("the CA generated the key");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("capture");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();

    let (mut cmd, ready) = capture(&file, port);
    let mut dump = Running(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the capture"),
    );
    let stderr = dump.0.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut said = String::new();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                said.push_str(&line);
                said.push('\n');
                if line.contains(ready) {
                    break;
                }
            }
            _ => panic!("the capture tool stopped before capturing:\n{said}"),
        }
    }
    // Keep draining stderr so the tool never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));

    let _server = Running(
        Command::new(&openssl)
            .args([
                "s_server",
                "-quiet",
                "-accept",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("-cert")
            .arg(&server.cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting openssl s_server"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "openssl s_server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let client = Command::new(&openssl)
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("running openssl s_client");
    assert!(
        String::from_utf8_lossy(&client.stdout).contains("BEGIN CERTIFICATE"),
        "s_client did not complete a handshake:\n{}",
        mtls_test_support::text(&client)
    );
    std::thread::sleep(Duration::from_millis(500)); // let the last packets reach the file
    stop(dump);

    let bytes = std::fs::read(&file).expect("reading the capture");
    let mut reader = CaptureReader::new(&bytes[..]).expect("a capture file");
    let mut reassembler = Reassembler::new();
    let mut events = Vec::new();
    while let Some(block) = reader.next().expect("a well-formed capture") {
        if let Block::Packet(packet) = block
            && let Ok(Decoded::Tcp(segment)) = decode(packet.link, &packet.data)
        {
            let mut fed = Vec::new();
            reassembler.feed(packet.ts_nanos, &segment, &mut fed);
            events.extend(fed.into_iter().map(Event::into_owned));
        }
    }
    reassembler.finish(&mut events);

    // The readiness probes are flows too; the handshake is the one carrying a ClientHello.
    let hello = events
        .iter()
        .find_map(|e| match e {
            Event::Data {
                flow,
                dir: Direction::ClientToServer,
                bytes,
                ..
            } if bytes.starts_with(&[0x16, 0x03]) && bytes.get(5) == Some(&1) => Some(*flow),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no ClientHello in the capture: {events:#?}"));
    let opened = events
        .iter()
        .find(|e| matches!(e, Event::Opened { flow, .. } if *flow == hello));
    assert!(
        matches!(
            opened,
            Some(Event::Opened { server, client_rule: ClientRule::Syn, syn_ack_ts: Some(_), .. })
                if server.port() == port
        ),
        "{opened:?}"
    );
    let server_first = events.iter().find_map(|e| match e {
        Event::Data {
            flow,
            dir: Direction::ServerToClient,
            bytes,
            ..
        } if *flow == hello => Some(bytes.clone()),
        _ => None,
    });
    let server_first = server_first.expect("the server answered");
    assert_eq!(&server_first[..2], &[0x16, 0x03], "a handshake record");
    assert_eq!(server_first.get(5), Some(&2), "a ServerHello");
    assert!(
        !events.iter().any(|e| matches!(e, Event::Gap { .. })),
        "nothing lost on lo"
    );
}

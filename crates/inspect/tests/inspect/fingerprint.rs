//! tshark as the oracle for JA3 and JA3S: tcpdump records real `openssl s_client` /
//! `s_server` handshakes on 127.0.0.1 (TLS 1.3 and TLS 1.2), tshark prints its
//! `tls.handshake.ja3*` fields and the TCP payload of each hello, and our functions must
//! give the same strings from those bytes. tshark 4.0 has no JA4 field; JA4 is checked
//! against FoxIO's published example in the unit tests. Interop tests never skip: a missing
//! tool fails the test with the hint to run scripts/test, which installs it.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mtls_test_support::{TestCa, require_peer};

#[test]
fn ja3_and_ja3s_match_tshark() {
    let tshark = require_peer("tshark");
    let tcpdump = require_peer("tcpdump");
    let openssl = require_peer("openssl");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("capture.pcap");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dump = start_tcpdump(&tcpdump, &file, port);
    handshakes(&openssl, port);
    stop(dump);

    let output = Command::new(&tshark)
        .arg("-r")
        .arg(&file)
        .args([
            "-Y",
            "tls.handshake.type == 1 || tls.handshake.type == 2",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "tls.handshake.ja3_full",
            "-e",
            "tls.handshake.ja3",
            "-e",
            "tls.handshake.ja3s_full",
            "-e",
            "tls.handshake.ja3s",
            "-e",
            "tcp.payload",
        ])
        .output()
        .expect("running tshark");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "tshark failed: {output:?}");

    let (mut clients, mut servers) = (0, 0);
    for line in text.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('|').collect();
        let [ja3_full, ja3, ja3s_full, ja3s, payload] = fields[..] else {
            panic!("unexpected tshark line: {line}");
        };
        let payload = hex::decode(payload.replace(':', "")).expect("hex payload");
        let (msg_type, body) = first_handshake(&payload).expect("a hello at the payload start");
        match msg_type {
            1 => {
                let ours = mtls_inspect::ja3(body).expect("our JA3");
                assert_eq!((ours.full.as_str(), ours.hash.as_str()), (ja3_full, ja3));
                let ja4 = mtls_inspect::ja4(body).expect("our JA4");
                // The openssl client sends SNI and the ALPN list we gave it.
                assert!(ja4.starts_with('t') && ja4[3..].starts_with('d'), "{ja4}");
                assert_eq!(ja4.get(8..10), Some("h2"), "{ja4}");
                clients += 1;
            }
            2 => {
                let ours = mtls_inspect::ja3s(body).expect("our JA3S");
                assert_eq!((ours.full.as_str(), ours.hash.as_str()), (ja3s_full, ja3s));
                servers += 1;
            }
            other => panic!("handshake type {other} in {line}"),
        }
    }
    assert_eq!((clients, servers), (2, 2), "tshark printed:\n{text}");
}

/// The type and body of the handshake message at the start of a TLS record stream.
fn first_handshake(payload: &[u8]) -> Option<(u8, &[u8])> {
    let record_length = usize::from(u16::from_be_bytes([*payload.get(3)?, *payload.get(4)?]));
    let fragment = payload.get(5..5 + record_length)?;
    let msg_type = *fragment.first()?;
    let length = usize::from(*fragment.get(2)?) << 8 | usize::from(*fragment.get(3)?);
    Some((msg_type, fragment.get(4..4 + length)?))
}

/// Kills a child process when dropped, so a failing assertion leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_tcpdump(tcpdump: &Path, file: &Path, port: u16) -> Running {
    let mut dump = Running(
        Command::new(tcpdump)
            .args(["-i", "lo", "--immediate-mode", "-U", "-n", "-w"])
            .arg(file)
            .arg(format!("tcp port {port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tcpdump"),
    );
    let stderr = dump.0.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut said = String::new();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                said.push_str(&line);
                said.push('\n');
                if line.contains("listening on") {
                    break;
                }
            }
            _ => panic!("tcpdump stopped before capturing:\n{said}"),
        }
    }
    // Keep draining stderr so tcpdump never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    dump
}

/// Stop tcpdump with SIGTERM, so it writes what it holds, and wait for it.
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

/// One TLS 1.3 and one TLS 1.2 handshake, each with SNI and ALPN.
fn handshakes(openssl: &Path, port: u16) {
    let mut ca = TestCa::new();
    let server = ca.server("localhost", &["localhost", "127.0.0.1"]);
    let key = server.key.clone().expect("the CA generated the key");
    let _server = Running(
        Command::new(openssl)
            .args(["s_server", "-quiet", "-alpn", "h2,http/1.1", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
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
    for version in ["-tls1_3", "-tls1_2"] {
        let client = Command::new(openssl)
            .args(["s_client", version, "-alpn", "h2,http/1.1", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-servername", "localhost"])
            .stdin(Stdio::null())
            .output()
            .expect("running openssl s_client");
        assert!(
            String::from_utf8_lossy(&client.stdout).contains("BEGIN CERTIFICATE"),
            "s_client {version} did not complete a handshake:\n{}",
            mtls_test_support::text(&client)
        );
    }
    std::thread::sleep(Duration::from_millis(500)); // let the last packets reach the file
}

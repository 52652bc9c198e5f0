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
    let server = work.serve(
        "gw",
        "[[server]]\nlisten = [\"127.0.0.1:{port}\"]\nserver_name = [\"localhost\"]\n\n\
         [server.tls]\ncertificate = \"pki/certs/localhost.chain.pem\"\n\
         key = \"pki/private/localhost.key\"\nverify_client = \"on\"\n\
         client_ca = \"pki/ca.crt\"\n\n\
         [[server.location]]\npath = \"/\"\nreturn = \"200 ok\"\n",
    );
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

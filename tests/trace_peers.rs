//! `mtls trace` on the failures real peers make: each verdict sentence of docs/trace.md
//! comes from a real client or server failing on loopback, captured by tcpdump (each test
//! its own port), and the test asserts the end of that connection's line, word for word.
//!
//! Clients: Python's `ssl` (`tests/peers/python_client.py`), curl and `openssl s_client`
//! against the gateway. Servers: the gateway, a Java `SSLEngine` server that hangs up
//! without an alert (`tests/peers/NeedClientAuth.java`), a TCP server that resets after
//! the ClientHello (`tests/peers/reset_after_hello.py`), `openssl s_server` refusing a
//! server name, and nginx. The last test reads one capture of several of these with tshark
//! and the key log, and every connection's `--json` must agree with it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{
    Server, Tcpdump, Work, free_port, localhost_pki, mutual_gateway, peer_script, python_client,
};

const NO_CERTIFICATE: &str = "FAILED: the server asked for a client certificate (accepting \
                              CN=mtls CA) and the client sent none";
const MALLORY_REFUSED: &str = "FAILED: the server refused the client certificate CN=mallory \
                               (issued by CN=Other CA) with alert unknown_ca: the server \
                               accepts CN=mtls CA";
const ONLY_CBC: &str = "FAILED: no cipher suite in common: the client offered only CBC suites";
const ONLY_TLS11: &str = "FAILED: the server refused the ClientHello with alert \
                          handshake_failure: the client offered only TLS 1.0/1.1";
const SERVER_REJECTED: &str = "FAILED: the client rejected the server's certificate \
                               CN=localhost (issued by CN=mtls CA) with alert unknown_ca";

/// For `python_client.py`: mallory's certificate, from another CA.
const MALLORY: &[&str] = &[
    "--cert",
    "other/certs/mallory.crt",
    "other/private/mallory.key",
];
/// For `python_client.py`: write the session keys to `keys.log`.
const KEYLOG: &[&str] = &["--keylog", "keys.log"];

/// Python's `ssl` as the client of the gateway: no certificate over TLS 1.2, and a
/// certificate from another CA over TLS 1.3 with the key log `keylog_filename` writes.
#[test]
fn python_ssl_clients_refused_by_the_gateway() {
    let work = pki_with_mallory();
    let gateway = mutual_gateway(&work);
    let capture = Tcpdump::start(&work, gateway.port);
    let none = python_client(&work, gateway.port, "1.2", &[]);
    let mallory = python_client(&work, gateway.port, "1.3", &[MALLORY, KEYLOG].concat());
    let file = capture.stop();
    let none = mtls_test_support::text(&none);
    assert!(none.contains("CERTIFICATE_REQUIRED"), "{none}");
    let mallory = mtls_test_support::text(&mallory);
    assert!(mallory.contains("UNKNOWN_CA"), "{mallory}");

    let lines = trace_lines(&work, &file, &["--keylog", "keys.log"]);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let line = line_ending_with(&lines, NO_CERTIFICATE);
    assert!(line.contains(" TLSv1.2 "), "{line}");
    let line = line_ending_with(&lines, MALLORY_REFUSED);
    assert!(
        line.contains(" TLSv1.3 ") && line.contains(" client-cert=CN=mallory (CN=Other CA, "),
        "{line}"
    );
}

/// `openssl s_client` offering what the gateway (rustls: no CBC, nothing before TLS 1.2)
/// does not speak: only a CBC suite for its P-256 key, and only TLS 1.1.
#[test]
fn openssl_clients_offering_nothing_the_gateway_speaks() {
    let work = localhost_pki();
    let gateway = mutual_gateway(&work);
    let capture = Tcpdump::start(&work, gateway.port);
    let cbc = work.s_client(
        gateway.port,
        &[
            "-servername",
            "localhost",
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-SHA",
        ],
    );
    let old = work.s_client(
        gateway.port,
        &[
            "-servername",
            "localhost",
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ],
    );
    // Only a finite-field group, which the gateway (rustls) does not speak.
    let ffdhe = work.s_client(
        gateway.port,
        &[
            "-servername",
            "localhost",
            "-tls1_3",
            "-groups",
            "ffdhe2048",
        ],
    );
    let file = capture.stop();
    assert!(cbc.contains("alert handshake failure"), "{cbc}");
    assert!(old.contains("alert handshake failure"), "{old}");
    assert!(ffdhe.contains("alert handshake failure"), "{ffdhe}");

    let lines = trace_lines(&work, &file, &[]);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    line_ending_with(&lines, ONLY_CBC);
    line_ending_with(&lines, ONLY_TLS11);
    line_ending_with(
        &lines,
        "FAILED: no key-exchange group in common: the client offered only ffdhe2048",
    );
}

/// A TLS 1.3 client asking for an ALPN protocol the gateway does not speak: the gateway
/// refuses it after its ServerHello, encrypted. With the client's key log the line names the
/// alert and the protocols; without it, the one alert-sized record where the server's
/// certificate should be is a probable refusal. Plain HTTP to the same port is counted.
#[test]
fn an_alpn_refusal_in_tls13_and_plain_http_to_the_tls_port() {
    let work = localhost_pki();
    let gateway = mutual_gateway(&work);
    let capture = Tcpdump::start(&work, gateway.port);
    let out = work.s_client(
        gateway.port,
        &[
            "-servername",
            "localhost",
            "-tls1_3",
            "-alpn",
            "foo",
            "-keylogfile",
            "alpn.keys",
        ],
    );
    let (code, _, _) = work.curl(&[&format!("http://127.0.0.1:{}/", gateway.port)]);
    let file = capture.stop();
    assert!(out.contains("no application protocol"), "{out}");
    assert_ne!(code, 0);

    let lines = trace_lines(&work, &file, &["--keylog", "alpn.keys"]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    line_ending_with(
        &lines,
        "FAILED: the server refused the ClientHello with alert no_application_protocol: it \
         speaks none of the ALPN protocols foo",
    );
    let blind = trace_lines(&work, &file, &[]);
    line_ending_with(
        &blind,
        "FAILED: the server answered the ClientHello with its ServerHello and one encrypted \
         record the size of an alert, no certificate: probably it refused something the \
         ClientHello asked (an ALPN protocol, the server name); give --keylog to see the alert",
    );
    let out = work.mtls(&["trace", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("; 1 TCP connection(s) that did not start with TLS (plain HTTP?)"),
        "{stderr}"
    );
}

/// A session resumed with `openssl s_client -sess_in` (TLS 1.2 and 1.3): the server does not
/// ask again; the line says the session is resumed and carries its first handshake's
/// client certificate, not that none was asked for.
#[test]
fn resumed_sessions_carry_the_first_handshakes_certificate() {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    let gateway = mutual_gateway(&work);
    let capture = Tcpdump::start(&work, gateway.port);
    for version in ["-tls1_2", "-tls1_3"] {
        let session = format!("session{version}.pem");
        let common = [
            "-servername",
            "localhost",
            version,
            "-CAfile",
            "pki/ca.crt",
            "-cert",
            "pki/certs/alice.crt",
            "-key",
            "pki/private/alice.key",
        ];
        let first = work.s_client(
            gateway.port,
            &[&common[..], &["-sess_out", &session]].concat(),
        );
        assert!(first.contains("Verify return code: 0"), "{first}");
        let again = work.s_client(
            gateway.port,
            &[&common[..], &["-sess_in", &session]].concat(),
        );
        assert!(again.contains("Reused,"), "{again}");
    }
    let file = capture.stop();
    let lines = trace_lines(&work, &file, &[]);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let resumed: Vec<&String> = lines.iter().filter(|l| l.contains(" resumed ")).collect();
    assert_eq!(resumed.len(), 2, "{lines:#?}");
    for line in resumed {
        assert!(line.contains(" client-cert=resumed "), "{line}");
        assert!(line.ends_with(" ok"), "{line}");
    }
}

/// Clients that do not trust the gateway's CA: curl with the system store (no
/// `--cacert`) and `openssl s_client -verify_return_error` trusting another CA. TLS 1.2,
/// where the client's alert is in clear.
#[test]
fn clients_that_reject_the_gateways_certificate() {
    let work = pki_with_mallory();
    let gateway = mutual_gateway(&work);
    let capture = Tcpdump::start(&work, gateway.port);
    let resolve = format!("localhost:{}:127.0.0.1", gateway.port);
    let url = format!("https://localhost:{}/", gateway.port);
    let (code, _, curl) =
        work.curl(&["--tlsv1.2", "--tls-max", "1.2", "--resolve", &resolve, &url]);
    assert_eq!(code, 60, "{curl}");
    let s_client = work.s_client(
        gateway.port,
        &[
            "-servername",
            "localhost",
            "-tls1_2",
            "-verify_return_error",
            "-CAfile",
            "other/ca.crt",
        ],
    );
    assert!(
        s_client.contains("unable to get local issuer certificate"),
        "{s_client}"
    );
    let file = capture.stop();

    let lines = trace_lines(&work, &file, &[]);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for line in &lines {
        assert!(
            line.contains(" TLSv1.2 ") && line.ends_with(SERVER_REJECTED),
            "{lines:#?}"
        );
    }
}

/// A server that reads the ClientHello and resets the connection (a firewall, a load
/// balancer refusing the name, a server that crashes on it).
#[test]
fn a_server_that_resets_after_the_client_hello() {
    let work = Work::new();
    let port = free_port();
    let script = peer_script("reset_after_hello.py");
    let _server = work.spawn_peer("reset", port, "python3", &[&script, &port.to_string()]);
    let capture = Tcpdump::start(&work, port);
    let (code, _, curl) = work.curl(&["-k", &format!("https://127.0.0.1:{port}/")]);
    assert_eq!(code, 35, "{curl}");
    let file = capture.stop();

    let lines = trace_lines(&work, &file, &[]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    line_ending_with(&lines, "FAILED: TCP reset by the server after ClientHello");
}

/// `openssl s_server` serving only another name, with a fatal alert for any other
/// (`-servername_fatal`, which needs a second certificate to switch to).
#[test]
fn openssl_server_that_refuses_the_server_name() {
    let work = localhost_pki();
    let port = free_port();
    let chain = "pki/certs/localhost.chain.pem";
    let key = "pki/private/localhost.key";
    let _server = work.s_server(
        "s_server",
        port,
        &[
            "-cert",
            chain,
            "-key",
            key,
            "-cert2",
            chain,
            "-key2",
            key,
            "-servername",
            "other.example",
            "-servername_fatal",
            "-www",
        ],
    );
    let capture = Tcpdump::start(&work, port);
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}/");
    let (code, _, curl) = work.curl(&["--cacert", "pki/ca.crt", "--resolve", &resolve, &url]);
    assert!(code != 0 && curl.contains("unrecognized name"), "{curl}");
    let file = capture.stop();

    let lines = trace_lines(&work, &file, &[]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    line_ending_with(
        &lines,
        "FAILED: the server refused the ClientHello with alert unrecognized_name: it does not \
         serve the name localhost",
    );
}

/// nginx with `ssl_verify_client on` and a client without a certificate: unlike the
/// gateway, nginx completes the handshake and refuses in HTTP (400 "No required SSL
/// certificate was sent", encrypted). The handshake did complete, so the line says `ok`;
/// `client-cert=none` (not `not-requested`) says the server asked and got nothing.
#[test]
fn nginx_completes_the_handshake_without_a_client_certificate() {
    let work = localhost_pki();
    let port = free_port();
    let nginx = work.nginx(
        port,
        &format!(
            r#"
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {{dir}}/pki/certs/localhost.chain.pem;
        ssl_certificate_key {{dir}}/pki/private/localhost.key;
        ssl_client_certificate {{dir}}/pki/ca.crt;
        ssl_verify_client on;
        location / {{
            return 200 "ok\n";
        }}
    }}
"#
        ),
    );
    let capture = Tcpdump::start(&work, port);
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}/");
    let (code, body, err) = work.curl(&[
        "--tlsv1.2",
        "--tls-max",
        "1.2",
        "--cacert",
        "pki/ca.crt",
        "--resolve",
        &resolve,
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        body.contains("No required SSL certificate was sent"),
        "{body}"
    );
    let file = capture.stop();
    // SIGTERM, so that the master stops its worker: killed, as when dropped, it leaves the
    // worker listening.
    nginx.terminate();

    let lines = trace_lines(&work, &file, &[]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert!(
        line.contains(" TLSv1.2 ")
            && line.contains(" client-cert=none server-cert=CN=localhost (CN=mtls CA, ")
            && line.ends_with(" ok"),
        "{line}"
    );
}

/// The Java server that needs a client certificate and, when curl sends none over TLS
/// 1.2, hangs up without an alert: a close on one port, a reset on the other. The line
/// should say both that the client sent none and how the server ended it, as `mtls get`
/// does for its own connection ("it then closed the connection without a TLS alert").
#[test]
fn java_server_that_hangs_up_on_a_client_without_a_certificate() {
    let work = pki_with_mallory();
    let (java, ports) = need_client_auth(&work, &["TLSv1.2/close", "TLSv1.2/reset"]);
    let endings = [
        "closed the connection without a TLS alert",
        "reset the connection",
    ];
    // Both ends are checked before the test fails, so that its message shows each.
    let mut wrong = Vec::new();
    for (port, ended) in ports.into_iter().zip(endings) {
        let capture = Tcpdump::start(&work, port);
        let resolve = format!("localhost:{port}:127.0.0.1");
        let url = format!("https://localhost:{port}/");
        let (code, _, err) = work.curl(&[
            "--tlsv1.2",
            "--tls-max",
            "1.2",
            "--cacert",
            "pki/ca.crt",
            "--resolve",
            &resolve,
            &url,
        ]);
        let file = capture.stop();
        assert_eq!(code, 35, "{err}\n{}", java.access_log());
        let lines = trace_lines(&work, &file, &[]);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        let expected = format!("{NO_CERTIFICATE}; it then {ended}");
        if !lines[0].ends_with(&expected) {
            wrong.push(format!("{}\nexpected the end: {expected}", lines[0]));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// The same Java server closing on `openssl s_client`, which answers the close with an
/// alert of its own (decode_error, read here with its key log). The server ended the
/// handshake; the client's alert came after the server's FIN and is not the cause.
#[test]
fn a_clients_alert_after_the_servers_close_is_not_the_verdict() {
    let work = pki_with_mallory();
    let (java, ports) = need_client_auth(&work, &["TLSv1.2/close"]);
    let capture = Tcpdump::start(&work, ports[0]);
    let out = work.s_client(
        ports[0],
        &[
            "-servername",
            "localhost",
            "-tls1_2",
            "-CAfile",
            "pki/ca.crt",
            "-keylogfile",
            "keys.log",
        ],
    );
    let file = capture.stop();
    assert!(
        out.contains("unexpected eof"),
        "{out}\n{}",
        java.access_log()
    );

    let lines = trace_lines(&work, &file, &["--keylog", "keys.log"]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    line_ending_with(
        &lines,
        &format!("{NO_CERTIFICATE}; it then closed the connection without a TLS alert"),
    );
}

/// Without the key log, a TLS 1.3 client the gateway refuses: its only answer to the
/// client's flight is one alert-sized record. The Python client here sends its request
/// and its FIN with its Finished (`--half-close`), so its FIN comes before the server's;
/// a plain Python client does the same when the gateway is slow to close (seen once, on
/// the first connection to a gateway just started). The line must not say `ok`.
#[test]
fn a_refused_tls13_client_that_closed_first_is_not_ok() {
    let work = pki_with_mallory();
    let gateway = mutual_gateway(&work);
    let capture = Tcpdump::start(&work, gateway.port);
    let out = python_client(
        &work,
        gateway.port,
        "1.3",
        &[MALLORY, &["--half-close"]].concat(),
    );
    let file = capture.stop();
    let out = mtls_test_support::text(&out);
    assert!(out.contains("UNKNOWN_CA"), "{out}");

    let lines = trace_lines(&work, &file, &[]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    line_ending_with(
        &lines,
        "FAILED: the server answered the client's certificate and Finished with one encrypted \
         record the size of an alert and nothing else: probably it refused the client \
         certificate (or its absence)",
    );
}

/// One capture of the gateway with mutual TLS that works (TLS 1.3 and 1.2) and fails
/// (Python without a certificate and with mallory's, a CBC-only and a TLS 1.1 ClientHello,
/// curl not trusting the CA), every client writing the one key log. For every connection
/// `mtls trace --json --keylog` must agree with tshark, given the same key log, on the SNI,
/// the negotiated version and cipher suite, JA3 and JA3S (hash and string), the CA names
/// the server asked for, and the subjects of both certificates; and each verdict is the
/// expected one.
#[test]
fn trace_json_agrees_with_tshark_on_every_connection() {
    let work = pki_with_mallory();
    let gateway = mutual_gateway(&work);
    let port = gateway.port;
    let capture = Tcpdump::start(&work, port);
    let keylog = work.join("keys.log");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}/");
    let curl = |args: &[&str]| {
        Command::new(mtls_test_support::require_peer("curl"))
            .current_dir(work.path())
            .env("SSLKEYLOGFILE", &keylog)
            .args(["-sS", "-o", "/dev/null", "--resolve", &resolve])
            .args(args)
            .arg(&url)
            .output()
            .unwrap()
    };
    let alice = [
        "--cert",
        "pki/certs/alice.crt",
        "--key",
        "pki/private/alice.key",
    ];
    let trusted = [&["--cacert", "pki/ca.crt"][..], &alice].concat();
    let tls12 = ["--tlsv1.2", "--tls-max", "1.2"];
    // In the order of tshark's stream numbers: the order the connections began.
    let expected = [
        " ok",
        " ok",
        NO_CERTIFICATE,
        MALLORY_REFUSED,
        ONLY_CBC,
        ONLY_TLS11,
        SERVER_REJECTED,
    ];
    let out = curl(&trusted);
    assert!(out.status.success(), "{}", mtls_test_support::text(&out));
    let out = curl(&[&trusted[..], &tls12].concat());
    assert!(out.status.success(), "{}", mtls_test_support::text(&out));
    python_client(&work, port, "1.2", KEYLOG);
    python_client(&work, port, "1.3", &[MALLORY, KEYLOG].concat());
    let s_client = |args: &[&str]| {
        let all = [
            &["-servername", "localhost", "-keylogfile", "keys.log"],
            args,
        ]
        .concat();
        work.s_client(port, &all)
    };
    s_client(&["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"]);
    s_client(&["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    let out = curl(&tls12);
    assert_eq!(
        out.status.code(),
        Some(60),
        "{}",
        mtls_test_support::text(&out)
    );
    let file = capture.stop();

    let json = work.ok(&[
        "trace",
        file.to_str().unwrap(),
        "--keylog",
        "keys.log",
        "--json",
    ]);
    let ours: BTreeMap<u16, Value> = json
        .lines()
        .map(|l| {
            let line: Value = serde_json::from_str(l).expect("one JSON object per line");
            (port_of(&line["client"]), line)
        })
        .collect();
    let theirs = tshark_connections(&file, &keylog, port);
    assert_eq!(ours.len(), expected.len(), "{json}");
    assert_eq!(theirs.len(), expected.len(), "{theirs:#?}");
    // The oracle saw what is compared: tshark decrypted both TLS 1.3 handshakes with the
    // key log, and read the empty Certificate of the client without one.
    let subjects: Vec<_> = theirs.iter().map(|t| t.client_subject.clone()).collect();
    let alice = Some(Some("CN=alice".to_owned()));
    let mallory = Some(Some("CN=mallory".to_owned()));
    assert_eq!(
        subjects,
        [alice.clone(), alice, Some(None), mallory, None, None, None],
        "{theirs:#?}"
    );
    let text = work.ok(&["trace", file.to_str().unwrap(), "--keylog", "keys.log"]);
    for (they, ending) in theirs.iter().zip(expected) {
        let Some(line) = ours.get(&they.client_port) else {
            panic!("tshark's {they:#?} is not in ours:\n{json}");
        };
        let what = format!("ours:\n{line:#}\ntshark's:\n{they:#?}");
        assert_eq!(line["sni"].as_str(), they.sni.as_deref(), "{what}");
        assert_eq!(line["version"].as_str(), they.version(), "{what}");
        assert_eq!(line["suite"].as_str(), they.suite(), "{what}");
        for (key, value) in [
            ("ja3", &they.ja3),
            ("ja3_full", &they.ja3_full),
            ("ja3s", &they.ja3s),
            ("ja3s_full", &they.ja3s_full),
        ] {
            assert_eq!(line[key].as_str(), value.as_deref(), "{key}: {what}");
        }
        assert_eq!(
            line["server_certificate"]["subject"].as_str(),
            they.server_subject.as_deref(),
            "{what}"
        );
        let request = &line["certificate_request"];
        match &they.authorities {
            Some(names) => {
                assert_eq!(request["type"], "sent", "{what}");
                assert_eq!(request["authorities"], serde_json::json!(names), "{what}");
            }
            None => assert!(
                request["type"] == "unknown" || request["type"] == "not_sent",
                "{what}"
            ),
        }
        let client = &line["client_certificate"];
        match &they.client_subject {
            Some(Some(subject)) => assert_eq!(client["subject"], subject.as_str(), "{what}"),
            Some(None) => assert_eq!(client["type"], "none", "{what}"),
            None => assert!(
                client["type"] == "unknown" || client["type"] == "none",
                "{what}"
            ),
        }
        // Every handshake message, both ways, in order (ours stop at the alert that ends
        // a handshake; nothing follows one here).
        let types: Vec<(bool, u8)> = line["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("no messages: {what}"))
            .iter()
            .map(|m| {
                let from_client = m["direction"] == "client_to_server";
                (
                    from_client,
                    handshake_type(m["kind"].as_str().unwrap_or_default()),
                )
            })
            .collect();
        assert_eq!(types, they.types, "handshake messages: {what}");
        let prefix = format!(":{} -> ", they.client_port);
        let Some(line) = text.lines().find(|l| l.contains(&prefix)) else {
            panic!("no line for {prefix}:\n{text}");
        };
        assert!(line.ends_with(ending), "{line}\nexpected the end: {ending}");
    }
}

/// Our CA with a certificate for localhost and one for alice; mallory's from another CA
/// in `other/`.
fn pki_with_mallory() -> Work {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    work.ok(&["pki", "--dir", "other", "init", "--cn", "Other CA"]);
    work.ok(&["pki", "--dir", "other", "issue", "client", "mallory"]);
    work
}

/// `tests/peers/NeedClientAuth.java` with the localhost certificate, one listener per
/// `PROTOCOL/close|reset` spec, each on a free port: the server and the ports, in order.
fn need_client_auth(work: &Work, specs: &[&str]) -> (Server, Vec<u16>) {
    let exported = work.mtls_env(
        &[
            "pki",
            "export",
            "localhost",
            "--p12",
            "--password-env",
            "P12_PASSWORD",
            "--out",
            "server.p12",
        ],
        &[("P12_PASSWORD", "changeit")],
    );
    assert!(
        exported.status.success(),
        "{}",
        mtls_test_support::text(&exported)
    );
    let ports: Vec<u16> = specs.iter().map(|_| free_port()).collect();
    let listeners: Vec<String> = ports
        .iter()
        .zip(specs)
        .map(|(port, spec)| format!("{port}/{spec}"))
        .collect();
    let source = peer_script("NeedClientAuth.java");
    let mut args = vec![source.as_str(), "server.p12", "changeit", "pki/ca.crt"];
    args.extend(listeners.iter().map(String::as_str));
    // Every listener is bound before the first accepts.
    (work.spawn_peer("java", ports[0], "java", &args), ports)
}

/// `mtls trace FILE ARGS...`: the connection lines, in the order the connections ended.
fn trace_lines(work: &Work, file: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["trace", file.to_str().unwrap()];
    all.extend_from_slice(args);
    work.ok(&all)
        .lines()
        .filter(|l| l.contains(" -> "))
        .map(str::to_owned)
        .collect()
}

/// The one line that ends with `ending`.
fn line_ending_with<'a>(lines: &'a [String], ending: &str) -> &'a str {
    let found: Vec<&String> = lines.iter().filter(|l| l.ends_with(ending)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one line ending with:\n{ending}\nthe lines:\n{}",
        lines.join("\n")
    );
    found[0]
}

fn port_of(address: &Value) -> u16 {
    let address = address.as_str().unwrap_or_default();
    address
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap()
}

/// What tshark decoded of one TCP connection.
#[derive(Debug, Default)]
struct TsharkConnection {
    client_port: u16,
    sni: Option<String>,
    ja3: Option<String>,
    ja3_full: Option<String>,
    ja3s: Option<String>,
    ja3s_full: Option<String>,
    /// From the ServerHello: supported_versions, else legacy_version (`0x0304`).
    version_code: Option<String>,
    /// From the ServerHello (`0x1301`).
    suite_code: Option<String>,
    /// The CA names of the server's CertificateRequest, when it sent one.
    authorities: Option<Vec<String>>,
    server_subject: Option<String>,
    /// The first certificate of the client's Certificate message; `Some(None)` for an
    /// empty one, `None` when no Certificate came from the client.
    client_subject: Option<Option<String>>,
    /// Every handshake message's type, in order, and whether the client sent it.
    types: Vec<(bool, u8)>,
}

impl TsharkConnection {
    fn version(&self) -> Option<&'static str> {
        Some(match self.version_code.as_deref()? {
            "0x0304" => "TLS 1.3",
            "0x0303" => "TLS 1.2",
            other => panic!("unexpected version {other}"),
        })
    }

    fn suite(&self) -> Option<&'static str> {
        Some(match self.suite_code.as_deref()? {
            "0x1301" => "TLS_AES_128_GCM_SHA256",
            "0x1302" => "TLS_AES_256_GCM_SHA384",
            "0x1303" => "TLS_CHACHA20_POLY1305_SHA256",
            "0xc02b" => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "0xc02c" => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "0xcca9" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            other => panic!("unexpected suite {other}"),
        })
    }

    /// One handshake message, as tshark's JSON has it.
    fn read(&mut self, from_client: bool, message: &Value) {
        let text = |key: &str| {
            find(message, key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if let Ok(kind) = field(message, "tls.handshake.type").parse() {
            self.types.push((from_client, kind));
        }
        match (field(message, "tls.handshake.type"), from_client) {
            ("1", true) => {
                self.sni = text("tls.handshake.extensions_server_name");
                self.ja3 = text("tls.handshake.ja3");
                self.ja3_full = text("tls.handshake.ja3_full");
            }
            ("2", false) => {
                self.suite_code = text("tls.handshake.ciphersuite");
                self.version_code = text("tls.handshake.extensions.supported_version")
                    .or_else(|| text("tls.handshake.version"));
                self.ja3s = text("tls.handshake.ja3s");
                self.ja3s_full = text("tls.handshake.ja3s_full");
            }
            ("13", false) => {
                self.authorities = Some(
                    find(message, "tls.handshake.dname")
                        .map(|names| each(names).map(distinguished_name).collect())
                        .unwrap_or_default(),
                );
            }
            ("11", _) => {
                let subject = find(message, "tls.handshake.certificate_tree")
                    .and_then(|chain| each(chain).next())
                    .and_then(|leaf| find(leaf, "x509af.subject_tree"))
                    .map(distinguished_name);
                if from_client {
                    self.client_subject = Some(subject);
                } else {
                    self.server_subject = subject;
                }
            }
            _ => {}
        }
    }
}

/// tshark's reading of `file` with `keylog`, one entry per TCP connection in the order
/// they began (`tcp.stream`). With `-T json --no-duplicate-keys` a field that repeats in
/// one place becomes an array, in order.
fn tshark_connections(file: &Path, keylog: &Path, server_port: u16) -> Vec<TsharkConnection> {
    let keylog = format!("tls.keylog_file:{}", keylog.display());
    let out = Command::new(mtls_test_support::require_peer("tshark"))
        .args(["-o", &keylog, "-T", "json", "--no-duplicate-keys", "-r"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", mtls_test_support::text(&out));
    let packets: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut connections: BTreeMap<u64, TsharkConnection> = BTreeMap::new();
    for packet in packets.as_array().unwrap() {
        let layers = &packet["_source"]["layers"];
        let tcp = &layers["tcp"];
        let stream: u64 = field(tcp, "tcp.stream").parse().unwrap();
        let source: u16 = field(tcp, "tcp.srcport").parse().unwrap();
        let destination: u16 = field(tcp, "tcp.dstport").parse().unwrap();
        let from_client = destination == server_port;
        let connection = connections.entry(stream).or_default();
        connection.client_port = if from_client { source } else { destination };
        let mut messages = Vec::new();
        handshake_messages(&layers["tls"], &mut messages);
        for message in messages {
            connection.read(from_client, message);
        }
    }
    connections.into_values().collect()
}

/// The handshake type number of a message name as `mtls trace --json` lists it.
fn handshake_type(kind: &str) -> u8 {
    match kind {
        "ClientHello" => 1,
        "ServerHello" | "HelloRetryRequest" => 2,
        "NewSessionTicket" => 4,
        "EndOfEarlyData" => 5,
        "EncryptedExtensions" => 8,
        "Certificate" => 11,
        "ServerKeyExchange" => 12,
        "CertificateRequest" => 13,
        "ServerHelloDone" => 14,
        "CertificateVerify" => 15,
        "ClientKeyExchange" => 16,
        "Finished" => 20,
        "KeyUpdate" => 24,
        other => panic!("unexpected handshake message {other}"),
    }
}

/// Every object with a `tls.handshake.type` under `value`, in order.
fn handshake_messages<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| handshake_messages(v, out)),
        Value::Object(map) if map.contains_key("tls.handshake.type") => out.push(value),
        Value::Object(map) => map.values().for_each(|v| handshake_messages(v, out)),
        _ => {}
    }
}

/// The items of an array, or the one value that is not.
fn each(value: &Value) -> impl Iterator<Item = &Value> {
    match value {
        Value::Array(items) => items.iter().collect::<Vec<_>>().into_iter(),
        one => vec![one].into_iter(),
    }
}

/// The first value of `key` under `value`, depth first.
fn find<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Array(items) => items.iter().find_map(|v| find(v, key)),
        Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|v| find(v, key))),
        _ => None,
    }
}

fn field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

/// `CN=alice` from a name in tshark's JSON: each attribute's OID and string.
fn distinguished_name(name: &Value) -> String {
    let mut parts = Vec::new();
    attributes(name, &mut parts);
    parts.join(", ")
}

fn attributes(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| attributes(v, out)),
        Value::Object(map) => {
            let Some(oid) = map.get("x509if.oid").and_then(Value::as_str) else {
                map.values().for_each(|v| attributes(v, out));
                return;
            };
            let name = match oid {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                other => other,
            };
            let text = map
                .iter()
                .find_map(|(k, v)| string_value(k, v))
                .unwrap_or_else(|| panic!("no string in {value}"));
            out.push(format!("{name}={text}"));
        }
        _ => {}
    }
}

/// The text of an attribute value (`x509sat.uTF8String`, `x509sat.printableString`, ...),
/// at any depth under its key.
fn string_value(key: &str, value: &Value) -> Option<String> {
    match value {
        // `x509sat.DirectoryString` is the number of the CHOICE, not the text.
        Value::String(s)
            if key.starts_with("x509sat.")
                && key.ends_with("String")
                && key != "x509sat.DirectoryString" =>
        {
            Some(s.clone())
        }
        Value::Object(map) => map.iter().find_map(|(k, v)| string_value(k, v)),
        _ => None,
    }
}

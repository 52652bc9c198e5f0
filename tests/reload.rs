//! Reload (SIGHUP, `mtls serve -s reload`, watched files) against the running binary:
//! new certificates and CRLs reach new connections, sessions survive, a bad config keeps
//! the old site serving, and revoked clients lose what they hold.

use crate::util::{Server, Work, localhost_pki};

const ALICE: &[&str] = &[
    "-cert",
    "pki/certs/alice.crt",
    "-key",
    "pki/private/alice.key",
];

/// The gateway config: TLS on {port} requiring our CA's clients, CRL checked, metrics.
fn config() -> String {
    r#"metrics = "127.0.0.1:{metrics_port}"

[[server]]
listen = ["127.0.0.1:{port}"]
server_name = ["localhost"]

[server.tls]
certificate = "pki/certs/localhost.chain.pem"
key = "pki/private/localhost.key"
client_ca = "pki/ca.crt"
verify_client = "on"
crl = "pki/crl.pem"
session_timeout = "10m"

[[server.location]]
path = "/"
return = "200 hello $ssl_client_s_dn"
"#
    .to_owned()
}

fn setup() -> (Work, Server) {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    work.ok(&["pki", "issue", "client", "bob"]);
    let server = work.serve("gw", &config());
    (work, server)
}

/// The serial of the certificate the server presents, as `openssl s_client` reads it.
fn served_serial(work: &Work, server: &Server) -> String {
    let out = work.s_client(
        server.port,
        &[&["-servername", "localhost", "-showcerts"], ALICE].concat(),
    );
    let pem_start = out
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a certificate");
    let pem_end = out[pem_start..]
        .find("-----END CERTIFICATE-----")
        .map(|i| pem_start + i + "-----END CERTIFICATE-----".len())
        .expect("its end");
    work.write("served.pem", &out[pem_start..pem_end]);
    let serial = mtls_test_support::run_peer(
        "openssl",
        &["x509", "-in", "served.pem", "-noout", "-serial"],
        work.path(),
    );
    mtls_test_support::text(&serial)
        .trim()
        .replace("serial=", "")
}

fn reload(work: &Work) {
    let out = work.ok(&["serve", "-s", "reload", "-c", "gw.toml"]);
    assert!(out.contains("sent reload (SIGHUP)"), "{out}");
}

fn metrics(work: &Work) -> String {
    let port = String::from_utf8(work.read("gw.metrics_port")).unwrap();
    let (code, text, err) = work.curl(&["-s", &format!("http://127.0.0.1:{port}/metrics")]);
    assert_eq!(code, 0, "{err}");
    text
}

#[test]
fn a_reload_serves_the_new_certificate_and_sessions_made_before_resume_after() {
    let (work, server) = setup();
    let before = served_serial(&work, &server);
    let base = [
        &["-servername", "localhost", "-CAfile", "pki/ca.crt"],
        ALICE,
    ]
    .concat();
    let first = work.s_client(server.port, &[&base[..], &["-sess_out", "s.pem"]].concat());
    assert!(first.contains("New,"), "{first}");

    // Rotate the server certificate in place, and reload through the pid file.
    work.ok(&[
        "pki",
        "issue",
        "server",
        "localhost",
        "--san",
        "localhost",
        "--san",
        "127.0.0.1",
        "--force",
    ]);
    reload(&work);
    server.wait_log("reloaded (SIGHUP)");
    let after = served_serial(&work, &server);
    assert_ne!(before, after, "the new certificate is served");
    assert!(!after.is_empty());

    let again = work.s_client(server.port, &[&base[..], &["-sess_in", "s.pem"]].concat());
    assert!(
        again.contains("Reused,"),
        "the session survives the reload: {again}"
    );
    assert!(metrics(&work).contains("mtls_reloads_total{result=\"ok\"} 1"));
    assert!(work.read("gw.toml").len() > 10);
    assert!(
        work.join("mtls.pid").is_file(),
        "the pid file beside the config"
    );
}

#[test]
fn a_broken_config_on_reload_is_logged_with_its_line_and_the_old_site_serves_on() {
    let (work, server) = setup();
    let good = String::from_utf8(work.read("gw.toml")).unwrap();
    work.write(
        "gw.toml",
        good.replace("verify_client = \"on\"", "verify_client = \"sometimes\""),
    );
    // `-s reload` checks the config first, like `nginx -s reload`, and does not signal.
    let err = work.fails(&["serve", "-s", "reload", "-c", "gw.toml"]);
    assert!(
        err.contains("gw.toml:11:17: verify_client") && err.contains("not sent"),
        "{err}"
    );
    // A bare SIGHUP (kill -HUP, a config manager) reaches the gateway, which refuses it.
    let pid = String::from_utf8(work.read("mtls.pid")).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success());
    let log = server.wait_log("reload (SIGHUP) failed");
    assert!(
        log.contains("gw.toml:11:17: verify_client")
            && log.contains("verify_client")
            && log.contains("still serving"),
        "{log}"
    );
    let out = work.s_client(
        server.port,
        &[
            &["-servername", "localhost", "-CAfile", "pki/ca.crt"],
            ALICE,
        ]
        .concat(),
    );
    assert!(
        out.contains("hello CN=alice"),
        "the old site answers: {out}"
    );
    let metrics = metrics(&work);
    assert!(
        metrics.contains("mtls_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );

    // Mended, it loads.
    work.write("gw.toml", good);
    reload(&work);
    server.wait_log("reloaded (SIGHUP)");
}

/// `mtls pki revoke` and a reload: alice's new handshakes are refused, her resumed
/// session is refused, her open keep-alive connection is closed; bob is not touched.
#[test]
fn revocation_reaches_connected_and_resuming_clients() {
    let (work, server) = setup();
    let base = [
        &["-servername", "localhost", "-CAfile", "pki/ca.crt"],
        ALICE,
    ]
    .concat();
    for version in ["-tls1_2", "-tls1_3"] {
        let out = work.s_client(
            server.port,
            &[
                &base[..],
                &[version, "-sess_out"],
                &[&format!("alice{version}.pem")],
            ]
            .concat(),
        );
        assert!(out.contains("New,"), "{out}");
    }
    // Two keep-alive clients: each makes a request, waits for the word "go" on stdin,
    // then tries a second request on the same connection.
    let script = r#"
import http.client, ssl, sys
who = sys.argv[1]
ctx = ssl.create_default_context(cafile="pki/ca.crt")
ctx.load_cert_chain(f"pki/certs/{who}.crt", f"pki/private/{who}.key")
c = http.client.HTTPSConnection("localhost", int(sys.argv[2]), context=ctx)
c.request("GET", "/"); r = c.getresponse(); print("first", r.status, r.read().decode(), flush=True)
sys.stdin.readline()
try:
    c.request("GET", "/"); r = c.getresponse(); print("second", r.status, r.read().decode(), flush=True)
except Exception as e:
    print("second failed", type(e).__name__, flush=True)
"#;
    work.write("keepalive.py", script);
    let spawn = |who: &str| {
        let mut child = std::process::Command::new(mtls_test_support::require_peer("python3"))
            .current_dir(work.path())
            .args(["keepalive.py", who, &server.port.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let mut reader = std::io::BufReader::new(stdout);
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert!(line.starts_with("first 200 hello CN="), "{who}: {line}");
        (child, reader)
    };
    let (mut alice, mut alice_out) = spawn("alice");
    let (mut bob, mut bob_out) = spawn("bob");

    work.ok(&["pki", "revoke", "alice", "--reason", "keyCompromise"]);
    reload(&work);
    let log = server.wait_log("check=revoked_while_connected");
    assert!(
        log.contains("CN=alice") && !log.contains("subject CN=bob"),
        "{log}"
    );

    let second = |child: &mut std::process::Child, out: &mut std::io::BufReader<_>| {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(out, &mut line).unwrap();
        let _ = child.wait();
        line
    };
    let line = second(&mut alice, &mut alice_out);
    assert!(
        line.starts_with("second failed"),
        "alice's connection was closed: {line}"
    );
    let line = second(&mut bob, &mut bob_out);
    assert!(
        line.starts_with("second 200 hello CN=bob"),
        "bob's was not: {line}"
    );

    // A new handshake, and the sessions she made before: refused.
    let out = work.s_client(server.port, &base);
    assert!(!out.contains("hello CN=alice"), "{out}");
    for version in ["-tls1_2", "-tls1_3"] {
        let out = work.s_client(
            server.port,
            &[
                &base[..],
                &[version, "-sess_in"],
                &[&format!("alice{version}.pem")],
            ]
            .concat(),
        );
        assert!(!out.contains("hello CN=alice"), "{version} resumed: {out}");
    }
    let log = server.wait_log("as the session was resumed");
    assert!(
        log.contains("check=revoked") && log.contains("CN=alice"),
        "{log}"
    );
    let metrics = metrics(&work);
    assert!(
        metrics.contains("mtls_connections_closed_revoked_total 1"),
        "{metrics}"
    );
}

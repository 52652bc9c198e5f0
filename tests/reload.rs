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
    // The file watcher may have seen the new files first: one reload or two, none failed.
    let metrics = metrics(&work);
    assert!(
        metrics.contains("mtls_reloads_total{result=\"ok\"} "),
        "{metrics}"
    );
    assert!(!metrics.contains("result=\"error\""), "{metrics}");
    assert!(work.read("gw.toml").len() > 10);
    assert!(
        work.join("gw.pid").is_file(),
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
    let pid = String::from_utf8(work.read("gw.pid")).unwrap();
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
    assert!(log.contains("connected: client=127.0.0.1:"), "{log}");
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
    let log = server.wait_log("on resumption: ");
    assert!(
        log.contains("check=revoked") && log.contains("CN=alice"),
        "{log}"
    );
    let metrics = metrics(&work);
    assert!(
        metrics.contains("mtls_connections_closed_revoked_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mtls_resumptions_refused_revoked_total 2"),
        "{metrics}"
    );
    // What an operator alerts on: the CRL now lists one entry and is fresh; the server
    // certificate has most of its 365 days left; the client CA is there too.
    let line = |prefix: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}: {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(line("mtls_crl_entries{"), 1.0);
    let fresh = line("mtls_crl_next_update_seconds{");
    assert!((6.0 * 86400.0..=7.0 * 86400.0).contains(&fresh), "{fresh}");
    let server_left = line("mtls_certificate_expiry_seconds{role=\"server\"");
    assert!(
        (364.0 * 86400.0..=366.0 * 86400.0).contains(&server_left),
        "{server_left}"
    );
    line("mtls_certificate_expiry_seconds{role=\"client_ca\"");
}

/// Waits (up to 5 s) for the log to contain `needle` after `since`, which it returns.
fn wait_new(server: &Server, since: usize, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = server.log();
        if log.get(since..).is_some_and(|tail| tail.contains(needle)) {
            return log[since..].to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "log never gained {needle:?}:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_revocation_is_picked_up_without_a_signal() {
    let (work, server) = setup();
    let base = [
        &["-servername", "localhost", "-CAfile", "pki/ca.crt"],
        ALICE,
    ]
    .concat();
    assert!(work.s_client(server.port, &base).contains("hello CN=alice"));
    let since = server.log().len();
    let started = std::time::Instant::now();
    work.ok(&["pki", "revoke", "alice"]);
    let log = wait_new(&server, since, "reloaded (changed: ");
    let took = started.elapsed();
    assert!(log.contains("crl.pem"), "{log}");
    // The issue asks for 1 s; CI machines are slow and shared, so the bound is looser.
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    eprintln!("revocation to reload: {took:?}");
    let out = work.s_client(server.port, &base);
    assert!(!out.contains("hello CN=alice"), "{out}");
    let log = server.wait_log("check=revoked");
    assert!(log.contains("CN=alice"), "{log}");
}

/// A Kubernetes secret volume: `tls.crt` -> `..data/tls.crt`, `..data` -> `..v1`; the
/// kubelet writes `..v2` and swaps `..data` atomically. The watched path never changes.
#[test]
fn a_kubernetes_style_secret_rotation_is_picked_up_without_a_signal() {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    let secret = work.join("secret");
    let version = |name: &str| {
        let dir = secret.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            work.join("pki/certs/localhost.chain.pem"),
            dir.join("tls.crt"),
        )
        .unwrap();
        std::fs::copy(work.join("pki/private/localhost.key"), dir.join("tls.key")).unwrap();
    };
    version("..v1");
    std::os::unix::fs::symlink("..v1", secret.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        std::os::unix::fs::symlink(format!("..data/{f}"), secret.join(f)).unwrap();
    }
    let server = work.serve(
        "k8s",
        &config()
            .replace("pki/certs/localhost.chain.pem", "secret/tls.crt")
            .replace("pki/private/localhost.key", "secret/tls.key"),
    );
    let before = served_serial(&work, &server);

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
    version("..v2");
    let since = server.log().len();
    std::os::unix::fs::symlink("..v2", secret.join("..data_tmp")).unwrap();
    std::fs::rename(secret.join("..data_tmp"), secret.join("..data")).unwrap();
    let log = wait_new(&server, since, "reloaded (changed: ");
    assert!(log.contains("tls.crt") && log.contains("tls.key"), "{log}");
    let after = served_serial(&work, &server);
    assert_ne!(before, after);
}

/// A certificate written without its new key is not loaded: the reload fails, says why,
/// the old pair serves on; once the key follows, the pair loads.
#[test]
fn a_half_written_change_is_never_loaded() {
    let (work, server) = setup();
    let before = served_serial(&work, &server);
    // The next pair, made elsewhere; the certificate lands first.
    work.ok(&["pki", "--dir", "next", "init"]);
    work.ok(&[
        "pki",
        "--dir",
        "next",
        "issue",
        "server",
        "localhost",
        "--san",
        "localhost",
    ]);
    let since = server.log().len();
    std::fs::copy(
        work.join("next/certs/localhost.chain.pem"),
        work.join("pki/certs/localhost.chain.pem.tmp"),
    )
    .unwrap();
    std::fs::rename(
        work.join("pki/certs/localhost.chain.pem.tmp"),
        work.join("pki/certs/localhost.chain.pem"),
    )
    .unwrap();
    let log = wait_new(
        &server,
        since,
        "failed, still serving the previous configuration",
    );
    assert!(log.contains("does not belong"), "{log}");
    assert_eq!(
        served_serial(&work, &server),
        before,
        "the old pair serves on"
    );

    let since = server.log().len();
    std::fs::copy(
        work.join("next/private/localhost.key"),
        work.join("pki/private/localhost.key"),
    )
    .unwrap();
    wait_new(&server, since, "reloaded (changed: ");
    assert_ne!(
        served_serial(&work, &server),
        before,
        "the whole new pair serves"
    );
}

/// Nothing drops: for 20 s a SIGHUP every 100 ms, and every 2 s a new server certificate,
/// a client CA bundle that gains a second CA (still holding ours) and a new CRL, while
/// `mtls bench` makes a new handshake per request at a fixed rate, another keeps
/// connections alive, and curl loops. Not one failed request or handshake.
#[test]
fn reloading_under_load_drops_nothing() {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    work.ok(&["pki", "--dir", "other", "init", "--cn", "Other CA"]);
    std::fs::copy(work.join("pki/ca.crt"), work.join("bundle.pem")).unwrap();
    let server = work.serve(
        "gw",
        &config()
            .replace("client_ca = \"pki/ca.crt\"", "client_ca = \"bundle.pem\"")
            // The second CA joins the bundle with its own CRL: revocation fails closed.
            .replace(
                "crl = \"pki/crl.pem\"",
                "crl = [\"pki/crl.pem\", \"other/crl.pem\"]",
            ),
    );
    let url = format!("https://localhost:{}/", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    let bench = |mode: &str, rate: &str| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("mtls"))
            .current_dir(work.path())
            .args([
                "bench",
                &url,
                "--resolve",
                &resolve,
                "--json",
                "--mode",
                mode,
                "--rate",
                rate,
                "-c",
                "4",
                "-d",
                "20s",
                "--warmup",
                "0s",
                "--ca",
                "pki/ca.crt",
                "--cert",
                "pki/certs/alice.crt",
                "--key",
                "pki/private/alice.key",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let handshakes = bench("handshakes", "50");
    let keepalive = bench("requests", "100");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let curl_loop = {
        let stop = stop.clone();
        let dir = work.path().to_owned();
        let (url, resolve) = (url.clone(), resolve.clone());
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let out = std::process::Command::new("curl")
                    .current_dir(&dir)
                    .args([
                        "-sS",
                        "--cacert",
                        "pki/ca.crt",
                        "--cert",
                        "pki/certs/alice.crt",
                        "--key",
                        "pki/private/alice.key",
                        "--resolve",
                        &resolve,
                        "-w",
                        "%{http_code}",
                        "-o",
                        "/dev/null",
                        &url,
                    ])
                    .output()
                    .unwrap();
                let text = mtls_test_support::text(&out);
                if out.status.success() && text.trim() == "200" {
                    ok += 1;
                } else {
                    failed.push(text);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            (ok, failed)
        })
    };
    let pid = String::from_utf8(work.read("gw.pid"))
        .unwrap()
        .trim()
        .to_owned();
    let started = std::time::Instant::now();
    let mut round = 0u32;
    while started.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        round += 1;
        if round.is_multiple_of(20) {
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
            let mut bundle = work.read("pki/ca.crt");
            if round.is_multiple_of(40) {
                bundle.extend_from_slice(&work.read("other/ca.crt"));
            }
            work.write("bundle.pem.tmp", bundle);
            std::fs::rename(work.join("bundle.pem.tmp"), work.join("bundle.pem")).unwrap();
            work.ok(&["pki", "crl"]);
        }
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (curl_ok, curl_failed) = curl_loop.join().unwrap();
    assert!(curl_failed.is_empty(), "curl failures: {curl_failed:?}");
    assert!(curl_ok > 50, "{curl_ok} curl requests");
    for (name, child) in [("handshakes", handshakes), ("keep-alive", keepalive)] {
        let out = child.wait_with_output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: {e}: {}", mtls_test_support::text(&out)));
        assert_eq!(report["errors"], serde_json::json!({}), "{name}: {report}");
        assert!(
            report["requests_ok"].as_u64().unwrap() > 500,
            "{name}: {report}"
        );
    }
    let log = server.log();
    let reloads = log.matches("reloaded (").count();
    assert!(reloads > 50, "{reloads} reloads");
    assert!(!log.contains("failed, still serving"), "{log}");
    // New connections get the newest certificate.
    let newest = mtls_test_support::run_peer(
        "openssl",
        &[
            "x509",
            "-in",
            "pki/certs/localhost.crt",
            "-noout",
            "-serial",
        ],
        work.path(),
    );
    let newest = mtls_test_support::text(&newest)
        .trim()
        .replace("serial=", "");
    assert_eq!(served_serial(&work, &server), newest);
    eprintln!("{reloads} reloads, {curl_ok} curl requests, no failure");
}

/// Upstream connections outlive a reload that does not change their route, and only then.
#[test]
fn upstream_pools_survive_a_reload_that_leaves_them_unchanged() {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    let (_echo, echo_port) = crate::util::plain_echo(&work);
    let proxy = format!(
        "\n[[server.location]]\npath = \"/api/\"\nproxy_pass = \"http://127.0.0.1:{echo_port}\"\n"
    );
    let server = work.serve("gw", &format!("{}{proxy}", config()));
    let upstream_connection = || {
        let out = work.s_client(
            server.port,
            &[
                &["-servername", "localhost", "-CAfile", "pki/ca.crt"],
                ALICE,
            ]
            .concat(),
        );
        // (s_client sends "GET /": ask the proxied path with curl instead.)
        drop(out);
        let (code, body, err) = work.curl(&[
            "-s",
            "--cacert",
            "pki/ca.crt",
            "--cert",
            "pki/certs/alice.crt",
            "--key",
            "pki/private/alice.key",
            "--resolve",
            &format!("localhost:{}:127.0.0.1", server.port),
            &format!("https://localhost:{}/api/x", server.port),
        ]);
        assert_eq!(code, 0, "{err}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        json["connection"]["id"].as_u64().unwrap()
    };
    let first = upstream_connection();
    assert_eq!(upstream_connection(), first, "pooled before any reload");
    reload(&work);
    server.wait_log("reloaded (SIGHUP)");
    assert_eq!(
        upstream_connection(),
        first,
        "the same upstream connection after"
    );

    // The route changes (a new read timeout): a new pool, a new connection.
    let text = String::from_utf8(work.read("gw.toml")).unwrap();
    work.write(
        "gw.toml",
        text.replace("proxy_pass = ", "read_timeout = \"30s\"\nproxy_pass = "),
    );
    let since = server.log().len();
    reload(&work);
    wait_new(&server, since, "reloaded (SIGHUP)");
    assert_ne!(
        upstream_connection(),
        first,
        "a changed route starts afresh"
    );
}

/// HTTP/2: a request in flight when its client is revoked finishes; then the connection
/// is closed (GOAWAY), so curl's next request on it needs a new handshake, which fails.
#[test]
fn a_revoked_http2_client_finishes_its_request_and_loses_the_connection() {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    let (_echo, echo_port) = crate::util::plain_echo(&work);
    let proxy = format!(
        "\n[[server.location]]\npath = \"/api/\"\nproxy_pass = \"http://127.0.0.1:{echo_port}/\"\n"
    );
    let server = work.serve("gw", &format!("{}{proxy}", config()));
    let base = format!("https://localhost:{}", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    let curl = {
        let dir = work.path().to_owned();
        let (slow, next) = (format!("{base}/api/sleep/3000"), format!("{base}/api/x"));
        std::thread::spawn(move || {
            std::process::Command::new("curl")
                .current_dir(dir)
                .args([
                    "-s",
                    "--http2",
                    "--cacert",
                    "pki/ca.crt",
                    "--cert",
                    "pki/certs/alice.crt",
                    "--key",
                    "pki/private/alice.key",
                    "--resolve",
                    &resolve,
                    "-w",
                    "\nstatus=%{http_code} version=%{http_version}\n",
                    &slow,
                    &next,
                ])
                .output()
                .unwrap()
        })
    };
    // The access log writes a line when a response ends, so wait for the request to be
    // with the upstream by time: well inside its 3 s.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(
        !server.access_log().contains("/api/sleep/3000"),
        "still in flight"
    );
    let since = server.log().len();
    work.ok(&["pki", "revoke", "alice"]);
    reload(&work);
    wait_new(&server, since, "check=revoked_while_connected");
    let out = curl.join().unwrap();
    let text = mtls_test_support::text(&out);
    assert!(
        text.contains("status=200 version=2"),
        "the request in flight finished: {text}"
    );
    assert_eq!(
        text.matches("status=200").count(),
        1,
        "the next one needed a new handshake, refused: {text}"
    );
}

/// A file the config names only after a reload is watched from then on: a CRL added by a
/// reload, then `mtls pki revoke` with no signal, and the client is refused.
#[test]
fn a_crl_added_by_a_reload_is_watched_too() {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    // At start the config names no CRL (and so the watcher has no reason to look at it).
    let server = work.serve("gw", &config().replace("crl = \"pki/crl.pem\"\n", ""));
    let since = server.log().len();
    work.write(
        "gw.toml",
        String::from_utf8(work.read("gw.toml")).unwrap().replace(
            "verify_client = \"on\"\n",
            "verify_client = \"on\"\ncrl = \"pki/crl.pem\"\n",
        ),
    );
    reload(&work);
    wait_new(&server, since, "reloaded (SIGHUP)");
    let base = [
        &["-servername", "localhost", "-CAfile", "pki/ca.crt"],
        ALICE,
    ]
    .concat();
    assert!(work.s_client(server.port, &base).contains("hello CN=alice"));
    let since = server.log().len();
    work.ok(&["pki", "revoke", "alice"]);
    wait_new(&server, since, "reloaded (changed: ");
    assert!(!work.s_client(server.port, &base).contains("hello CN=alice"));
}

/// A CRL file swapped for another CA's, or an expired one: refused at reload (and by
/// `mtls check`), so the old site serves on instead of refusing every client.
#[test]
fn a_crl_from_another_ca_or_expired_is_refused_at_load_not_at_every_handshake() {
    let (work, server) = setup();
    let base = [
        &["-servername", "localhost", "-CAfile", "pki/ca.crt"],
        ALICE,
    ]
    .concat();
    let ours = work.read("pki/crl.pem");
    work.ok(&["pki", "--dir", "evil", "init", "--cn", "Evil CA"]);
    let since = server.log().len();
    work.write("pki/crl.pem", work.read("evil/crl.pem"));
    let log = wait_new(
        &server,
        since,
        "failed, still serving the previous configuration",
    );
    assert!(
        log.contains("no CRL from CN=mtls CA") && log.contains("CN=Evil CA"),
        "{log}"
    );
    assert!(work.s_client(server.port, &base).contains("hello CN=alice"));
    let err = work.fails(&["check", "-c", "gw.toml"]);
    assert!(
        err.contains("gw.toml:12:") && err.contains("no CRL from"),
        "{err}"
    );

    // An expired CRL of our own CA.
    work.write("pki/crl.pem", &ours);
    work.ok(&["pki", "crl", "--next-update", "1s"]);
    // nextUpdate is written in whole seconds: two of them make sure it has passed.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let err = work.fails(&["check", "-c", "gw.toml"]);
    assert!(
        err.contains("expired on") && err.contains("crl_expired"),
        "{err}"
    );
}

/// Two configs in one directory: each its own pid file; a pid file held by a running
/// gateway is not taken over; a stale one (a process that is not mtls) is not signalled.
#[test]
fn each_config_finds_its_own_gateway_and_no_other_process() {
    let (work, server) = setup();
    // The pid file is written just after the listeners are bound, so a client can get in
    // first: wait for it (5 s at most).
    let written = |name: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !work.join(name).is_file() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        work.join(name).is_file()
    };
    assert!(written("gw.pid"));
    let second = work.serve("second", &config().replace("metrics = ", "# metrics = "));
    assert!(written("second.pid"));
    let pid = |name: &str| {
        String::from_utf8(work.read(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(pid("gw.pid"), server.child.id().to_string());
    assert_eq!(pid("second.pid"), second.child.id().to_string());

    // A third config that names gw's pid file is refused at start.
    work.write(
        "third.toml",
        format!(
            "pid = \"gw.pid\"\n{}",
            config().replace("metrics = ", "# metrics = ")
        )
        .replace("{port}", &crate::util::free_port().to_string()),
    );
    let err = work.fails(&["serve", "-c", "third.toml"]);
    assert!(
        err.contains("another gateway") && err.contains("gw.pid"),
        "{err}"
    );
    assert_eq!(pid("gw.pid"), server.child.id().to_string());

    // A stale pid file naming some other process: not signalled.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    work.write("second.pid", sleeper.id().to_string());
    let err = work.fails(&["serve", "-s", "stop", "-c", "second.toml"]);
    assert!(err.contains("is not a running mtls gateway"), "{err}");
    assert!(sleeper.try_wait().unwrap().is_none(), "the sleeper lives");
    let _ = sleeper.kill();
}

#[test]
fn a_pid_file_in_a_missing_directory_fails_check_not_just_serve() {
    let work = localhost_pki();
    work.write(
        "gw.toml",
        format!("pid = \"nowhere/gw.pid\"\n{}", config())
            .replace("{port}", "8000")
            .replace("{metrics_port}", "8001"),
    );
    let err = work.fails(&["check", "-c", "gw.toml"]);
    assert!(
        err.contains("pid: ") && err.contains("nowhere") && err.contains("does not exist"),
        "{err}"
    );
}

/// With an intermediate CA, the CRL that lists the client is the intermediate's: after a
/// reload its signature is checked on first use, with the intermediate the client sent.
/// Connected and resuming clients of the intermediate are cut as well.
#[test]
fn revocation_reaches_clients_of_an_intermediate_ca() {
    use mtls_test_support::forge;
    let work = Work::new();
    work.init_ca(true);
    work.ok(&[
        "pki",
        "issue",
        "server",
        "localhost",
        "--san",
        "localhost",
        "--san",
        "127.0.0.1",
    ]);
    work.ok(&["pki", "issue", "client", "alice"]);
    work.write(
        "root.crl",
        forge::crl_pem(&work.join("pki/ca.crt"), &work.join("pki/ca.key"), &[]),
    );
    let server = work.serve(
        "gw",
        &config().replace(
            "crl = \"pki/crl.pem\"",
            "crl = [\"root.crl\", \"pki/crl.pem\"]\nverify_depth = 2",
        ),
    );
    let base = [
        "-servername",
        "localhost",
        "-CAfile",
        "pki/ca.crt",
        "-cert",
        "pki/certs/alice.crt",
        "-cert_chain",
        "pki/intermediate.crt",
        "-key",
        "pki/private/alice.key",
        "-tls1_3",
    ];
    let first = work.s_client(server.port, &[&base[..], &["-sess_out", "s.pem"]].concat());
    assert!(first.contains("hello CN=alice"), "{first}");
    let script = r#"
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile="pki/ca.crt")
ctx.load_cert_chain("pki/certs/alice.chain.pem", "pki/private/alice.key")
c = http.client.HTTPSConnection("localhost", int(sys.argv[1]), context=ctx)
c.request("GET", "/"); r = c.getresponse(); print("first", r.status, r.read().decode(), flush=True)
sys.stdin.readline()
try:
    c.request("GET", "/"); r = c.getresponse(); print("second", r.status, flush=True)
except Exception as e:
    print("second failed", type(e).__name__, flush=True)
"#;
    work.write("keepalive.py", script);
    let mut child = std::process::Command::new(mtls_test_support::require_peer("python3"))
        .current_dir(work.path())
        .args(["keepalive.py", &server.port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert!(line.starts_with("first 200 hello CN=alice"), "{line}");

    let since = server.log().len();
    work.ok(&["pki", "revoke", "alice"]);
    wait_new(&server, since, "check=revoked_while_connected");
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let _ = child.wait();
    assert!(line.starts_with("second failed"), "{line}");
    let again = work.s_client(server.port, &[&base[..], &["-sess_in", "s.pem"]].concat());
    assert!(!again.contains("hello CN=alice"), "{again}");
    server.wait_log("on resumption: ");
}

/// A reload that adds an address someone else holds fails whole, naming the config line;
/// the old listeners serve on.
#[test]
fn a_reload_that_cannot_bind_names_the_config_line_and_keeps_the_old_listeners() {
    let (work, server) = setup();
    let (_held, port) = crate::util::silent_listener();
    let text = String::from_utf8(work.read("gw.toml")).unwrap();
    work.write(
        "gw.toml",
        text.replacen(
            "listen = [\"127.0.0.1:",
            &format!("listen = [\"127.0.0.1:{port}\", \"127.0.0.1:"),
            1,
        ),
    );
    let since = server.log().len();
    reload(&work);
    let log = wait_new(
        &server,
        since,
        "failed, still serving the previous configuration",
    );
    assert!(
        log.contains("gw.toml:3:1: listen: cannot listen on") && log.contains(&port.to_string()),
        "{log}"
    );
    let base = [
        &["-servername", "localhost", "-CAfile", "pki/ca.crt"],
        ALICE,
    ]
    .concat();
    assert!(work.s_client(server.port, &base).contains("hello CN=alice"));
}

//! `mtls serve` as a black box, against real peers: curl, `openssl s_client` and Python's
//! ssl. The cases are nginx-tests' ssl_verify_client.t, ssl_verify_depth.t, ssl_crl.t and
//! ssl_sni*.t, ported: same situations, same expected outcomes.

use mtls_test_support::forge;

use crate::util::{Server, Tcpdump, Work, free_port, localhost_pki, mutual_gateway, python_client};

/// A CA with a server certificate for localhost/127.0.0.1 and a client `alice`.
fn work_with_pki() -> Work {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice", "--ou", "Payments"]);
    work
}

/// A second, untrusted CA in `other/` with a client `mallory`.
fn untrusted_client(work: &Work) {
    work.ok(&["pki", "--dir", "other", "init", "--cn", "Other CA"]);
    work.ok(&["pki", "--dir", "other", "issue", "client", "mallory"]);
}

/// One TLS server on {port} with `tls` lines added to [server.tls] and a location that
/// echoes the verification result.
fn config(tls: &str, locations: &str) -> String {
    format!(
        r#"
[[server]]
listen = ["127.0.0.1:{{port}}"]
server_name = ["localhost"]

[server.tls]
certificate = "pki/certs/localhost.chain.pem"
key = "pki/private/localhost.key"
{tls}

{locations}

[[server.location]]
path = "/"
return = "200 verify=$ssl_client_verify subject=$ssl_client_s_dn"
"#
    )
}

const ALICE: &[&str] = &[
    "--cert",
    "pki/certs/alice.crt",
    "--key",
    "pki/private/alice.key",
];

fn get(work: &Work, server: &Server, path: &str, extra: &[&str]) -> (i32, String, String) {
    let url = format!("https://localhost:{}{path}", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    let mut args = vec![
        "--cacert",
        "pki/ca.crt",
        "--resolve",
        &resolve,
        url.as_str(),
    ];
    args.extend_from_slice(extra);
    work.curl(&args)
}

#[test]
fn required_without_certificate_is_refused_and_explained() {
    let work = work_with_pki();
    let server = work.serve(
        "s",
        &config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", ""),
    );
    let (code, out, err) = get(&work, &server, "/", &["--tlsv1.3"]);
    assert_ne!(code, 0, "handshake must fail: {out}");
    assert!(
        err.contains("alert") || err.contains("certificate required"),
        "{err}"
    );
    let log = server.wait_log("no_certificate");
    assert!(log.contains("127.0.0.1"), "{log}");
    assert!(log.contains("client sent no certificate"), "{log}");
}

/// The refusal's log line names the alert the client received, by name and number, in
/// each version (it once said "certificate_required (TLS 1.3) or handshake_failure (TLS
/// 1.2)", and a TLS 1.2 client got certificate_required).
#[test]
fn the_refusal_log_names_the_alert_s_client_received() {
    let work = work_with_pki();
    let server = work.serve(
        "s",
        &config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", ""),
    );
    for (version, refused_so_far) in [("-tls1_2", 1), ("-tls1_3", 2)] {
        let out = work.s_client(server.port, &[version, "-CAfile", "pki/ca.crt"]);
        // "...:tlsv13 alert certificate required:...:SSL alert number 116"
        let number: u8 = out
            .split("SSL alert number ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{version}: s_client got no alert:\n{out}"));
        assert!(
            out.contains("alert certificate required"),
            "{version}: {out}"
        );
        // The line for this refusal may come a moment after s_client has the alert: wait
        // for it by count (the first version's line already matches any text).
        let count = |log: &str| {
            log.lines()
                .filter(|l| l.contains("check=no_certificate"))
                .count()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut log = server.log();
        while count(&log) < refused_so_far && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            log = server.log();
        }
        assert_eq!(number, 116, "{version}: {out}");
        let refusals: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("check=no_certificate"))
            .collect();
        assert_eq!(refusals.len(), refused_so_far, "{version}: {log}");
        assert!(
            refusals
                .iter()
                .all(|l| l.ends_with("sent alert certificate_required (116)")),
            "{version}: {log}"
        );
    }
}

#[test]
fn required_with_good_certificate_shows_the_subject() {
    let work = work_with_pki();
    let server = work.serve(
        "s",
        &config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", ""),
    );
    let (code, out, err) = get(&work, &server, "/", &[ALICE, &["--http1.1"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verify=SUCCESS"), "{out}");
    assert!(out.contains("CN=alice"), "{out}");
    let access = server.wait_access("verify=SUCCESS");
    assert!(access.contains("\"GET / HTTP/1.1\" 200"), "{access}");
    assert!(
        access.contains("client=\"") && access.contains("CN=alice"),
        "{access}"
    );
    assert!(access.contains("tls=TLSv1.3"), "{access}");
}

#[test]
fn optional_without_certificate_is_none() {
    let work = work_with_pki();
    let server = work.serve(
        "s",
        &config(
            "client_ca = \"pki/ca.crt\"\nverify_client = \"optional\"",
            "",
        ),
    );
    let (code, out, err) = get(&work, &server, "/", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verify=NONE"), "{out}");
}

#[test]
fn optional_with_untrusted_certificate_is_refused_with_unknown_ca() {
    let work = work_with_pki();
    untrusted_client(&work);
    let server = work.serve(
        "s",
        &config(
            "client_ca = \"pki/ca.crt\"\nverify_client = \"optional\"",
            "",
        ),
    );
    let (code, _, err) = get(
        &work,
        &server,
        "/",
        &[
            "--cert",
            "other/certs/mallory.crt",
            "--key",
            "other/private/mallory.key",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("unknown ca"), "{err}");
    let log = server.wait_log("unknown_issuer");
    assert!(log.contains("CN=mallory"), "subject named: {log}");
    assert!(log.contains("serial"), "{log}");
    assert!(log.contains("sent alert unknown_ca"), "{log}");
}

#[test]
fn optional_no_ca_with_untrusted_certificate_is_reported_failed() {
    let work = work_with_pki();
    untrusted_client(&work);
    let server = work.serve(
        "s",
        &config(
            "client_ca = \"pki/ca.crt\"\nverify_client = \"optional_no_ca\"",
            "",
        ),
    );
    let (code, out, err) = get(
        &work,
        &server,
        "/",
        &[
            "--cert",
            "other/certs/mallory.crt",
            "--key",
            "other/private/mallory.key",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verify=FAILED:unknown issuer"), "{out}");
    assert!(out.contains("CN=mallory"), "{out}");
}

#[test]
fn off_ignores_client_certificates() {
    let work = work_with_pki();
    let server = work.serve("s", &config("verify_client = \"off\"", ""));
    let (code, out, err) = get(&work, &server, "/", ALICE);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verify=NONE"), "{out}");
    let hello = work.s_client(server.port, &["-servername", "localhost"]);
    assert!(
        !hello.contains("Acceptable client certificate CA names"),
        "no CertificateRequest when off: {hello}"
    );
}

#[test]
fn trusted_ca_is_accepted_but_not_advertised_and_names_are_not_repeated() {
    let work = work_with_pki();
    untrusted_client(&work);
    // pki/ca.crt twice (in two settings): advertised once. other/ca.crt only trusted.
    std::fs::copy(work.join("pki/ca.crt"), work.join("ca-copy.crt")).unwrap();
    let server = work.serve(
        "s",
        &config(
            "client_ca = [\"pki/ca.crt\", \"ca-copy.crt\"]\ntrusted_ca = \"other/ca.crt\"\nverify_client = \"on\"",
            "",
        ),
    );
    let (code, out, err) = get(
        &work,
        &server,
        "/",
        &[
            "--cert",
            "other/certs/mallory.crt",
            "--key",
            "other/private/mallory.key",
        ],
    );
    assert_eq!(code, 0, "trusted_ca accepted: {err}");
    assert!(out.contains("verify=SUCCESS"), "{out}");
    let hello = work.s_client(server.port, &["-servername", "localhost", "-tls1_2"]);
    let names: Vec<&str> = hello
        .lines()
        .skip_while(|l| !l.contains("Acceptable client certificate CA names"))
        .skip(1)
        .take_while(|l| !l.starts_with("Requested") && !l.starts_with("Client Certificate Types"))
        .collect();
    assert_eq!(
        names.len(),
        1,
        "one CA name advertised, no duplicates: {names:?}\n{hello}"
    );
    assert!(
        names[0].contains("mtls"),
        "the client_ca is advertised: {names:?}"
    );
    assert!(
        !hello.contains("CN = Other CA"),
        "trusted_ca not advertised: {hello}"
    );
}

#[test]
fn sni_and_host_must_agree_once_a_certificate_was_checked() {
    let work = work_with_pki();
    work.ok(&[
        "pki",
        "issue",
        "server",
        "other.test",
        "--san",
        "other.test",
    ]);
    let port_config = format!(
        "{}\n[[server]]\nlisten = [\"127.0.0.1:{{port}}\"]\nserver_name = [\"other.test\"]\n\
         [server.tls]\ncertificate = \"pki/certs/other.test.chain.pem\"\nkey = \"pki/private/other.test.key\"\n\
         [[server.location]]\npath = \"/\"\nreturn = \"200 other\"\n",
        config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", "")
    );
    let server = work.serve("s", &port_config);
    for version in ["--http1.1", "--http2"] {
        let (code, out, err) = get(
            &work,
            &server,
            "/",
            &[
                ALICE,
                &[
                    "-H",
                    "Host: other.test",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{http_version}",
                    version,
                ],
            ]
            .concat(),
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("421"), "{version}: {out}");
    }
    // The other name over its own connection works.
    let resolve = format!("other.test:{}:127.0.0.1", server.port);
    let url = format!("https://other.test:{}/", server.port);
    let (code, out, err) = work.curl(&["--cacert", "pki/ca.crt", "--resolve", &resolve, &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "other");
}

#[test]
fn verify_depth_counts_like_openssl() {
    let work = Work::new();
    work.init_ca(true); // root -> intermediate -> leaves
    work.ok(&["pki", "issue", "server", "localhost", "--san", "localhost"]);
    work.ok(&["pki", "issue", "client", "alice"]);
    let chain = [
        "--cert",
        "pki/certs/alice.chain.pem",
        "--key",
        "pki/private/alice.key",
    ];
    for (depth, ok) in [(0, false), (1, false), (2, true)] {
        let server = work.serve(
            &format!("d{depth}"),
            &config(
                &format!(
                    "client_ca = \"pki/ca.crt\"\nverify_client = \"on\"\nverify_depth = {depth}"
                ),
                "",
            ),
        );
        let (code, out, err) = get(&work, &server, "/", &chain);
        assert_eq!(code == 0, ok, "depth {depth}: {out}{err}");
        if !ok {
            let log = server.wait_log("chain_too_deep");
            assert!(log.contains("CN=alice"), "{log}");
        }
    }
    // A leaf signed directly by the trusted CA passes at depth 1 (nginx's default).
    work.ok(&["pki", "--dir", "flat", "init", "--cn", "Flat CA"]);
    work.ok(&["pki", "--dir", "flat", "issue", "client", "bob"]);
    let server = work.serve(
        "flat",
        &config("client_ca = \"flat/ca.crt\"\nverify_client = \"on\"", ""),
    );
    let (code, out, err) = get(
        &work,
        &server,
        "/",
        &[
            "--cert",
            "flat/certs/bob.crt",
            "--key",
            "flat/private/bob.key",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CN=bob"), "{out}");
}

#[test]
fn crls_refuse_revoked_leaves_and_intermediates_and_fail_closed() {
    let work = Work::new();
    work.init_ca(true);
    work.ok(&["pki", "issue", "server", "localhost", "--san", "localhost"]);
    work.ok(&["pki", "issue", "client", "alice"]);
    work.ok(&["pki", "issue", "client", "carol"]);
    let root = (work.join("pki/ca.crt"), work.join("pki/ca.key"));
    let int = (
        work.join("pki/intermediate.crt"),
        work.join("pki/intermediate.key"),
    );
    let int_serial = forge::serial_of(&int.0);
    let carol = forge::serial_of(&work.join("pki/certs/carol.crt"));
    work.write("root-empty.crl", forge::crl_pem(&root.0, &root.1, &[]));
    work.write(
        "root-revokes-int.crl",
        forge::crl_pem(&root.0, &root.1, &[int_serial]),
    );
    work.write("int-empty.crl", forge::crl_pem(&int.0, &int.1, &[]));
    work.write(
        "int-revokes-carol.crl",
        forge::crl_pem(&int.0, &int.1, &[carol]),
    );
    let alice = [
        "--cert",
        "pki/certs/alice.chain.pem",
        "--key",
        "pki/private/alice.key",
    ];
    let carol_flags = [
        "--cert",
        "pki/certs/carol.chain.pem",
        "--key",
        "pki/private/carol.key",
    ];

    let case = |name: &str, crls: &str| {
        work.serve(
            name,
            &config(
                &format!(
                    "client_ca = \"pki/ca.crt\"\nverify_client = \"on\"\nverify_depth = 2\ncrl = [{crls}]"
                ),
                "",
            ),
        )
    };
    // Full-chain empty CRLs: accepted.
    let server = case("ok", "\"root-empty.crl\", \"int-empty.crl\"");
    let (code, _, err) = get(&work, &server, "/", &alice);
    assert_eq!(code, 0, "empty CRLs: {err}");
    // A revoked leaf: certificate_revoked.
    let server = case("leaf", "\"root-empty.crl\", \"int-revokes-carol.crl\"");
    let (code, _, err) = get(&work, &server, "/", &carol_flags);
    assert_ne!(code, 0);
    assert!(err.contains("revoked"), "{err}");
    let log = server.wait_log("check=revoked");
    assert!(log.contains("CN=carol"), "{log}");
    let (code, _, err) = get(&work, &server, "/", &alice);
    assert_eq!(code, 0, "alice is not revoked: {err}");
    // A revoked intermediate refuses its leaves.
    let server = case("int", "\"root-revokes-int.crl\", \"int-empty.crl\"");
    let (code, _, err) = get(&work, &server, "/", &alice);
    assert_ne!(code, 0, "revoked intermediate must refuse alice");
    assert!(err.contains("revoked"), "{err}");
    // No CRL from the intermediate: alice's status is unknown, which refuses (fail closed).
    let server = case("missing", "\"root-empty.crl\"");
    let (code, _, _) = get(&work, &server, "/", &alice);
    assert_ne!(code, 0, "missing CRL must refuse");
    let log = server.wait_log("crl_missing");
    assert!(log.contains("CN=alice"), "{log}");
    // No CRL from the trusted CA itself: every client would be refused, which is a
    // configuration error at load (check, start, reload), not an outage.
    work.write(
        "no-root-crl.toml",
        config(
            "client_ca = \"pki/ca.crt\"\nverify_client = \"on\"\nverify_depth = 2\ncrl = [\"int-empty.crl\"]",
            "",
        )
        .replace("{port}", "8000"),
    );
    let err = work.fails(&["check", "-c", "no-root-crl.toml"]);
    assert!(
        err.contains("no-root-crl.toml:") && err.contains("crl: ") && err.contains("no CRL from"),
        "{err}"
    );
}

#[test]
fn expired_client_certificate_gets_certificate_expired() {
    let work = work_with_pki();
    let (cert, key) =
        forge::expired_client(&work.join("pki/ca.crt"), &work.join("pki/ca.key"), "old");
    work.write("old.crt", cert);
    work.write("old.key", key);
    let server = work.serve(
        "s",
        &config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", ""),
    );
    let (code, _, err) = get(
        &work,
        &server,
        "/",
        &["--cert", "old.crt", "--key", "old.key"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("certificate expired"), "{err}");
    let log = server.wait_log("check=expired");
    assert!(
        log.contains("CN=old") && log.contains("expired on"),
        "{log}"
    );
    assert!(log.contains("sent alert certificate_expired"), "{log}");
}

#[test]
fn per_route_client_auth_and_allow_rules() {
    let work = work_with_pki();
    work.ok(&["pki", "issue", "client", "bob"]);
    let server = work.serve(
        "s",
        &config(
            "client_ca = \"pki/ca.crt\"\nverify_client = \"optional\"",
            r#"
[[server.location]]
path = "/admin/"
client_auth = "required"
return = "200 admin for $ssl_client_s_dn"

[[server.location]]
path = "/payments/"
allow = { ou = "Payments", cn = ["svc-*"] }
return = "200 payments"
"#,
        ),
    );
    let code_of = |path: &str, extra: &[&str]| {
        let mut args = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        args.extend_from_slice(extra);
        let (code, out, err) = get(&work, &server, path, &args);
        assert_eq!(code, 0, "{err}");
        out
    };
    let bob = [
        "--cert",
        "pki/certs/bob.crt",
        "--key",
        "pki/private/bob.key",
    ];
    assert_eq!(code_of("/", &[]), "200", "open path needs nothing");
    assert_eq!(code_of("/admin/", &[]), "403");
    assert_eq!(code_of("/admin/", ALICE), "200");
    assert_eq!(code_of("/payments/x", ALICE), "200", "alice is OU=Payments");
    assert_eq!(code_of("/payments/x", &bob), "403", "bob matches no rule");
    assert_eq!(code_of("/payments/x", &[]), "403");
    let (_, body, _) = get(&work, &server, "/admin/", &[]);
    assert!(
        body.contains("requires a verified client certificate"),
        "{body}"
    );
    let log = server.wait_log("no allow rule matches");
    assert!(log.contains("CN=bob"), "{log}");
}

#[test]
fn plain_http_redirects_to_https() {
    let work = Work::new();
    let server = work.serve(
        "s",
        r#"
[[server]]
listen = ["127.0.0.1:{port}"]
[[server.location]]
path = "/"
return = "301 https://$host$request_uri"
"#,
    );
    let url = format!("http://127.0.0.1:{}/a/b?c=d", server.port);
    let (code, out, err) = work.curl(&["-D", "-", "-H", "Host: example.test:8000", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 301"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("location: https://example.test/a/b?c=d"),
        "{out}"
    );
}

#[test]
fn static_files_with_304_range_and_http2() {
    let work = work_with_pki();
    std::fs::create_dir(work.join("www")).unwrap();
    work.write("www/index.html", "<h1>home</h1>\n");
    work.write("www/data.txt", "0123456789");
    let server = work.serve(
        "s",
        &config(
            "client_ca = \"pki/ca.crt\"\nverify_client = \"on\"",
            "[[server.location]]\npath = \"/files/\"\nroot = \"www\"\n\n[[server.location]]\npath = \"= /index.html\"\nroot = \"www\"\n",
        ),
    );
    // nginx semantics: root + full URI path, so /files/ maps to www/files/.
    std::fs::create_dir(work.join("www/files")).unwrap();
    work.write("www/files/data.txt", "0123456789");
    let (code, headers, err) = get(
        &work,
        &server,
        "/files/data.txt",
        &[ALICE, &["--http1.1", "-D", "-", "-o", "/dev/null"]].concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(headers.starts_with("HTTP/1.1 200"), "{headers}");
    let etag = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("etag: ")
                .or_else(|| l.strip_prefix("ETag: "))
        })
        .expect("an ETag")
        .trim()
        .to_owned();
    let inm = format!("If-None-Match: {etag}");
    let (_, status, _) = get(
        &work,
        &server,
        "/files/data.txt",
        &[
            ALICE,
            &["-H", &inm, "-o", "/dev/null", "-w", "%{http_code}"],
        ]
        .concat(),
    );
    assert_eq!(status, "304");
    let (_, body, _) = get(
        &work,
        &server,
        "/files/data.txt",
        &[ALICE, &["-r", "2-4"]].concat(),
    );
    assert_eq!(body, "234");
    let (_, out, err) = get(
        &work,
        &server,
        "/index.html",
        &[ALICE, &["--http2", "-w", "\n%{http_version}"]].concat(),
    );
    assert!(out.ends_with("\n2"), "HTTP/2 by ALPN: {out}{err}");
    assert!(out.contains("<h1>home</h1>"), "{out}");
    let (_, status, _) = get(
        &work,
        &server,
        "/files/../../pki/ca.key",
        &[
            ALICE,
            &["--path-as-is", "-o", "/dev/null", "-w", "%{http_code}"],
        ]
        .concat(),
    );
    assert_ne!(status, "200", "no traversal");
}

/// Two gateways behind one load balancer, given the same `session_ticket_key` files:
/// a session made with one resumes on the other (TLS 1.2 and 1.3), a third gateway with
/// other keys refuses it (full handshake), and a key rotated to second place still opens.
#[test]
fn gateways_sharing_ticket_key_files_resume_each_others_sessions() {
    let work = work_with_pki();
    let key = |name: &str, fill: u8| {
        let bytes: Vec<u8> = (0..80u8)
            .map(|i| i.wrapping_mul(fill).wrapping_add(fill))
            .collect();
        work.write(name, bytes);
    };
    key("current.key", 3);
    key("previous.key", 5);
    key("other.key", 7);
    let tls = |keys: &str| {
        config(
            &format!(
                "client_ca = \"pki/ca.crt\"\nverify_client = \"on\"\nsession_cache = \"off\"\nsession_ticket_key = {keys}"
            ),
            "",
        )
    };
    let a = work.serve("a", &tls("[\"current.key\", \"previous.key\"]"));
    let b = work.serve("b", &tls("[\"current.key\"]"));
    let c = work.serve("c", &tls("\"other.key\""));
    // The key that sealed moved to second place on d: it still opens.
    let d = work.serve("d", &tls("[\"other.key\", \"current.key\"]"));
    for version in ["-tls1_2", "-tls1_3"] {
        let base = [
            "-servername",
            "localhost",
            "-CAfile",
            "pki/ca.crt",
            "-cert",
            "pki/certs/alice.crt",
            "-key",
            "pki/private/alice.key",
            version,
        ];
        let first = work.s_client(a.port, &[&base[..], &["-sess_out", "s.pem"]].concat());
        assert!(first.contains("New,"), "{version} a: {first}");
        let on = |server: &crate::util::Server| {
            work.s_client(server.port, &[&base[..], &["-sess_in", "s.pem"]].concat())
        };
        let out = on(&b);
        assert!(out.contains("Reused,"), "{version} b shares the key: {out}");
        let out = on(&c);
        assert!(out.contains("New,"), "{version} c has other keys: {out}");
        let out = on(&d);
        assert!(
            out.contains("Reused,"),
            "{version} d holds it second: {out}"
        );
    }

    // A key file of the wrong size: FILE:LINE and the fix.
    work.write("short.key", [1u8; 48]);
    work.write("bad.toml", tls("\"short.key\"").replace("{port}", "8000"));
    let err = work.fails(&["check", "-c", "bad.toml"]);
    assert!(
        err.contains("bad.toml:")
            && err.contains("session_ticket_key: ")
            && err.contains("exactly 80"),
        "{err}"
    );
}

#[test]
fn sessions_resume_with_openssl_and_respect_the_timeout() {
    let work = work_with_pki();
    // Tickets (stateless) and the server-side cache alone (tickets off) must both resume,
    // and both must forget a session after session_timeout.
    for (name, tickets) in [("tickets", "true"), ("cache", "false")] {
        let server = work.serve(
            name,
            &config(
                &format!(
                    "client_ca = \"pki/ca.crt\"\nverify_client = \"on\"\nsession_timeout = \"1s\"\nsession_tickets = {tickets}"
                ),
                "",
            ),
        );
        for version in ["-tls1_2", "-tls1_3"] {
            let base = [
                "-servername",
                "localhost",
                "-CAfile",
                "pki/ca.crt",
                "-cert",
                "pki/certs/alice.crt",
                "-key",
                "pki/private/alice.key",
                version,
            ];
            let first = work.s_client(
                server.port,
                &[&base[..], &["-sess_out", "sess.pem"]].concat(),
            );
            assert!(first.contains("New,"), "{name} {version} first: {first}");
            let second = work.s_client(
                server.port,
                &[&base[..], &["-sess_in", "sess.pem"]].concat(),
            );
            assert!(
                second.contains("Reused,"),
                "{name} {version} resumed: {second}"
            );
            std::thread::sleep(std::time::Duration::from_millis(1300));
            let late = work.s_client(
                server.port,
                &[&base[..], &["-sess_in", "sess.pem"]].concat(),
            );
            assert!(
                late.contains("New,"),
                "{name} {version} after the timeout: {late}"
            );
        }
        let access = server.wait_access("resumed=r");
        assert!(
            access.contains("verify=SUCCESS"),
            "a resumed session keeps its client identity: {access}"
        );
    }
}

#[test]
fn names_wildcards_default_server_and_ipv6() {
    let work = work_with_pki();
    work.ok(&["pki", "issue", "server", "a.test", "--san", "a.test"]);
    work.ok(&[
        "pki",
        "issue",
        "server",
        "wild",
        "--san",
        "*.wild.test",
        "--san",
        "a.b.wild.test",
        "--san",
        "fallback.test",
    ]);
    let block = |name: &str, cert: &str, default: &str, body: &str| {
        format!(
            "[[server]]\nlisten = [\"127.0.0.1:{{port}}{default}\", \"[::1]:{{port}}\"]\nserver_name = [\"{name}\"]\n\
             [server.tls]\ncertificate = \"pki/certs/{cert}.chain.pem\"\nkey = \"pki/private/{cert}.key\"\n\
             [[server.location]]\npath = \"/\"\nreturn = \"200 {body} sni=$ssl_server_name\"\n"
        )
    };
    let conf = format!(
        "{}{}",
        block("a.test", "a.test", "", "A"),
        block("*.wild.test", "wild", " default_server", "WILD")
    );
    let server = work.serve("s", &conf);
    let fetch = |host: &str, addr: &str| {
        let resolve = format!("{host}:{}:{addr}", server.port);
        let url = format!("https://{host}:{}/", server.port);
        let (code, out, err) = work.curl(&["--cacert", "pki/ca.crt", "--resolve", &resolve, &url]);
        assert_eq!(code, 0, "{host} via {addr}: {err}");
        out
    };
    assert_eq!(fetch("a.test", "127.0.0.1"), "A sni=a.test");
    assert_eq!(fetch("x.wild.test", "127.0.0.1"), "WILD sni=x.wild.test");
    assert_eq!(
        fetch("a.b.wild.test", "127.0.0.1"),
        "WILD sni=a.b.wild.test"
    );
    // No block is named fallback.test: the default_server answers, with its certificate.
    assert_eq!(
        fetch("fallback.test", "127.0.0.1"),
        "WILD sni=fallback.test"
    );
    assert_eq!(fetch("a.test", "[::1]"), "A sni=a.test", "IPv6 listener");
}

#[test]
fn shutdown_lets_a_download_in_flight_finish() {
    let work = work_with_pki();
    std::fs::create_dir_all(work.join("www")).unwrap();
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    work.write("www/big.bin", &big);
    // One worker: the current-thread runtime drains in-flight requests too.
    let server = work.serve(
        "s",
        &format!(
            "workers = 1\n{}",
            config(
                "verify_client = \"off\"",
                "[[server.location]]\npath = \"/big.bin\"\nroot = \"www\"\n",
            )
        ),
    );
    let url = format!("https://localhost:{}/big.bin", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    let dir = work.path().to_path_buf();
    let download = std::thread::spawn(move || {
        std::process::Command::new("curl")
            .current_dir(dir)
            .args([
                "-sS",
                "--limit-rate",
                "1M",
                "--cacert",
                "pki/ca.crt",
                "--resolve",
                &resolve,
                &url,
                "-o",
                "got.bin",
            ])
            .status()
            .unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(600));
    let status = server.terminate();
    assert!(status.success(), "{status}");
    assert!(download.join().unwrap().success(), "the download finished");
    assert_eq!(work.read("got.bin"), big, "intact");
}

#[test]
fn garbage_and_silent_peers_do_not_disturb_others() {
    use std::io::{Read, Write};
    let work = work_with_pki();
    let server = work.serve(
        "s",
        &config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", ""),
    );
    let silent = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut garbage = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x16\x03")
        .unwrap();
    let (code, out, err) = get(&work, &server, "/", ALICE);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verify=SUCCESS"));
    // The garbage sender is dropped at once; the silent one after the 2 s handshake timeout.
    let mut buf = [0u8; 64];
    garbage
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let n = garbage.read(&mut buf).unwrap_or(0);
    assert!(n < buf.len(), "closed (possibly after an alert)");
    let mut silent = silent;
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(6)))
        .unwrap();
    let started = std::time::Instant::now();
    let n = silent.read(&mut buf).unwrap();
    assert_eq!(n, 0, "closed by the server");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    server.wait_log("handshake_timeout");
}

#[test]
fn python_ssl_client_completes_a_mutual_handshake() {
    let work = work_with_pki();
    let server = work.serve(
        "s",
        &config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", ""),
    );
    let script = format!(
        r#"
import http.client, ssl
ctx = ssl.create_default_context(cafile="pki/ca.crt")
ctx.load_cert_chain("pki/certs/alice.crt", "pki/private/alice.key")
conn = http.client.HTTPSConnection("localhost", {port}, context=ctx)
conn.request("GET", "/test_url", headers={{"Content-Type": "application/json"}})
r = conn.getresponse()
print(r.status, r.read().decode())
"#,
        port = server.port
    );
    let out = mtls_test_support::run_peer("python3", &["-c", &script], work.path());
    let text = mtls_test_support::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("200 verify=SUCCESS"), "{text}");
}

#[test]
fn sigterm_stops_cleanly() {
    let work = work_with_pki();
    let server = work.serve("s", &config("verify_client = \"off\"", ""));
    let (code, _, err) = get(&work, &server, "/", &[]);
    assert_eq!(code, 0, "{err}");
    let status = server.terminate();
    assert!(status.success(), "exit 0 on SIGTERM: {status}");
}

#[test]
fn check_reports_file_line_and_key() {
    let work = work_with_pki();
    work.write(
        "bad.toml",
        "[[server]]\nlisten = [\"127.0.0.1:8000\"]\n[server.tls]\ncertificate = \"pki/certs/localhost.crt\"\nkey = \"pki/private/alice.key\"\n",
    );
    let err = work.fails(&["check", "-c", "bad.toml"]);
    assert!(err.contains("bad.toml:5:"), "{err}");
    assert!(
        err.contains("key:") && err.contains("does not belong"),
        "{err}"
    );

    work.write(
        "bad2.toml",
        "[[server]]\nlisten = [\"127.0.0.1:8000\"]\nlisten_typo = 1\n",
    );
    let err = work.fails(&["check", "-c", "bad2.toml"]);
    assert!(err.contains("bad2.toml:3:"), "{err}");

    work.write(
        "bad3.toml",
        "[[server]]\nlisten = [\"127.0.0.1:8000\"]\n[server.tls]\ncertificate = \"pki/certs/localhost.chain.pem\"\nkey = \"pki/private/localhost.key\"\nciphers = \"ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA\"\n",
    );
    let err = work.fails(&["check", "-c", "bad3.toml"]);
    assert!(err.contains("bad3.toml:6:"), "{err}");
    assert!(err.contains("AES128-SHA"), "{err}");

    // A CRL that names our CA as its issuer but was signed by another key (another CA
    // with the same name) is refused when the config is loaded, not at the first handshake.
    work.ok(&["pki", "--dir", "twin", "init"]);
    work.ok(&["pki", "--dir", "twin", "crl"]);
    work.write(
        "bad4.toml",
        config(
            "client_ca = \"pki/ca.crt\"\nverify_client = \"on\"\ncrl = \"twin/crl.pem\"",
            "",
        )
        .replace("{port}", "8000"),
    );
    let err = work.fails(&["check", "-c", "bad4.toml"]);
    assert!(
        err.contains("bad4.toml:") && err.contains("bad signature"),
        "{err}"
    );

    work.write(
        "good.toml",
        config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", "").replace("{port}", "8000"),
    );
    let out = work.ok(&["check", "-c", "good.toml"]);
    assert!(out.contains("ok"), "{out}");
}

/// A `[server.tls]` block on port 8000 for `server_name`, serving `cert` (key
/// `pki/private/NAME.key`), with a static root `root`; `certificate =` is on line 6.
fn lint_config(server_name: &str, name: &str, root: &str) -> String {
    format!(
        "[[server]]\nlisten = [\"127.0.0.1:8000\"]\nserver_name = [\"{server_name}\"]\n\n\
         [server.tls]\ncertificate = \"pki/certs/{name}.crt\"\nkey = \"pki/private/{name}.key\"\n\n\
         [[server.location]]\npath = \"/\"\nroot = \"{root}\"\n"
    )
}

#[test]
fn check_refuses_server_certificates_clients_refuse_and_warns_of_the_rest() {
    let work = localhost_pki();
    std::fs::create_dir_all(work.join("site")).unwrap();
    work.write("site/index.html", "hello");

    // clientAuth only: loads, and every client refuses it. An error with the line.
    work.ok(&["pki", "issue", "client", "cli", "--san", "localhost"]);
    work.write("client.toml", lint_config("localhost", "cli", "site"));
    let err = work.fails(&["check", "-c", "client.toml"]);
    assert!(err.contains("client.toml:6:"), "{err}");
    assert!(
        err.contains("certificate: pki/certs/cli.crt: wrong purpose")
            && err.contains("clientAuth")
            && err.contains("mtls pki issue server"),
        "{err}"
    );
    // serve refuses it the same way: check passing means serve starts, and back.
    let out = work.mtls(&["serve", "-c", "client.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("client.toml:6:"));

    // Expired: an error.
    work.ok(&[
        "pki",
        "issue",
        "server",
        "old",
        "--san",
        "localhost",
        "--not-before",
        "-30d",
        "--not-after",
        "-1d",
    ]);
    work.write("old.toml", lint_config("localhost", "old", "site"));
    let err = work.fails(&["check", "-c", "old.toml"]);
    assert!(
        err.contains("old.toml:6:") && err.contains("expired on") && err.contains("refuses"),
        "{err}"
    );

    // Expiring in ten days, not naming the server_name, and a root that holds the CA's
    // keys: three warnings; the config is still good.
    work.ok(&[
        "pki",
        "issue",
        "server",
        "soon",
        "--san",
        "localhost",
        "--days",
        "10",
    ]);
    work.write("warn.toml", lint_config("api.example", "soon", "pki"));
    let out = work.mtls(&["check", "-c", "warn.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: warn.toml:6:") && err.contains("expires in 9 days"),
        "{err}"
    );
    assert!(
        err.contains("server_name api.example is not among the names")
            && err.contains("DNS:localhost"),
        "{err}"
    );
    assert!(
        err.contains("warning: warn.toml:9:") && err.contains("holds private key material"),
        "{err}"
    );
    // The CA's public/ directory is what to serve instead: nothing to warn of there.
    work.write(
        "public.toml",
        lint_config("localhost", "localhost", "pki/public"),
    );
    let out = work.mtls(&["check", "-c", "public.toml"]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        mtls_test_support::text(&out)
    );
}

#[test]
fn quickstart_serves_with_the_printed_curl_command() {
    let work = Work::new();
    let port = 8443;
    let server = work.serve_args("quick", port, &["serve", "--handshake-timeout", "2s"]);
    let banner = server.access_log();
    let command = banner
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("curl ") && l.contains("--cert"))
        .unwrap_or_else(|| panic!("no curl command printed:\n{banner}"))
        .to_owned();
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let (code, out, err) = work.curl(&args);
    assert_eq!(code, 0, "{command}: {err}");
    // client --mTLS--> gateway --mTLS--> backend: the backend saw both identities.
    let echoed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        echoed["client_certificate"]["subject"], "CN=gateway",
        "{out}"
    );
    assert!(
        out.contains("\"x-client-subject\",\"CN=demo-client\""),
        "{out}"
    );
    let hello: Vec<&str> = args
        .iter()
        .map(|a| {
            if a.ends_with(":8443/") {
                "https://127.0.0.1:8443/hello"
            } else {
                a
            }
        })
        .collect();
    let (code, out, err) = work.curl(&hello);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Hello, CN=demo-client"), "{out}");
    assert!(work.join("mtls-data/pki/private/demo-client.p12").exists());
    drop(server);
    // Second start reuses the same CA.
    let ca = work.read("mtls-data/pki/ca.crt");
    let server = work.serve_args("quick2", port, &["serve"]);
    drop(server);
    assert_eq!(ca, work.read("mtls-data/pki/ca.crt"));
}

#[test]
fn refusals_are_counted_by_check_in_metrics() {
    let work = work_with_pki();
    untrusted_client(&work);
    let conf = format!(
        "metrics = \"127.0.0.1:{{metrics_port}}\"\n{}",
        config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", "")
    );
    let server = work.serve("s", &conf);
    let metrics_port = String::from_utf8(work.read("s.metrics_port")).unwrap();
    assert_ne!(get(&work, &server, "/", &[]).0, 0);
    let mallory = [
        "--cert",
        "other/certs/mallory.crt",
        "--key",
        "other/private/mallory.key",
    ];
    assert_ne!(get(&work, &server, "/", &mallory).0, 0);
    assert_eq!(get(&work, &server, "/", ALICE).0, 0);
    server.wait_log("unknown_issuer");
    let (code, text, err) = work.curl(&[
        "-D",
        "-",
        &format!("http://127.0.0.1:{metrics_port}/metrics"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("application/openmetrics-text"), "{text}");
    for line in [
        "mtls_tls_refusals_total{check=\"no_certificate\"} 1",
        "mtls_tls_refusals_total{check=\"unknown_issuer\"} 1",
        "mtls_tls_handshakes_total{protocol=\"TLSv1.3\",resumed=\"false\",client_verify=\"SUCCESS\"} 1",
        "mtls_http_requests_total{code=\"2xx\"} 1",
    ] {
        assert!(text.contains(line), "missing {line}:\n{text}");
    }
}

/// A Python client on one mutual-TLS connection to `port`: `ask(parts, pause)` sends a
/// request in parts with a pause between them and returns the status line; `waiting()`
/// reads `mtls_connections_waiting` from the metrics endpoint.
fn keepalive_client(port: u16, metrics_port: &str, steps: &str) -> String {
    format!(
        r#"
import socket, ssl, time, urllib.request
ctx = ssl.create_default_context(cafile="pki/ca.crt")
ctx.load_cert_chain("pki/certs/alice.crt", "pki/private/alice.key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", {port})), server_hostname="localhost")
REQ = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"

def ask(parts, pause=0.0):
    for i, part in enumerate(parts):
        if i:
            time.sleep(pause)
        s.sendall(part)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return "closed"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    while len(body) < length:
        body += s.recv(4096)
    return head.split(b"\r\n")[0].decode() + " " + body.decode()

def waiting():
    text = urllib.request.urlopen("http://127.0.0.1:{metrics_port}/metrics").read().decode()
    return [l for l in text.splitlines() if l.startswith("mtls_connections_waiting ")][0].split()[1]

{steps}
"#
    )
}

#[test]
fn idle_keepalive_connections_release_their_buffers_and_serve_on() {
    let work = work_with_pki();
    let conf = format!(
        "metrics = \"127.0.0.1:{{metrics_port}}\"\n{}",
        config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", "")
    );
    let server = work.serve("s", &conf);
    let metrics_port = String::from_utf8(work.read("s.metrics_port")).unwrap();
    // Hibernation comes after one to two sweeps (250 ms each) of silence; a request may
    // arrive in pieces across it.
    let steps = r#"
print("first", ask([REQ]))
print("busy", waiting())
time.sleep(2.6)
print("idle", waiting())
print("second", ask([REQ]))
print("split", ask([b"GET / HTTP/1.1\r\nHo", b"st: localhost\r\n\r\n"], pause=2.6))
"#;
    let script = keepalive_client(server.port, &metrics_port, steps);
    let out = mtls_test_support::run_peer("python3", &["-c", &script], work.path());
    let text = mtls_test_support::text(&out);
    assert!(out.status.success(), "{text}");
    let ok = "HTTP/1.1 200 OK verify=SUCCESS subject=CN=alice,OU=Payments";
    for line in [
        &format!("first {ok}"),
        "busy 0",
        "idle 1",
        &format!("second {ok}"),
        &format!("split {ok}"),
    ] {
        assert!(text.contains(line), "missing {line:?}:\n{text}");
    }
    // One connection served all three requests.
    let handshakes = work
        .curl(&[&format!("http://127.0.0.1:{metrics_port}/metrics")])
        .1;
    assert!(
        handshakes.contains("mtls_tls_handshakes_total{protocol=\"TLSv1.3\",resumed=\"false\",client_verify=\"SUCCESS\"} 1"),
        "{handshakes}"
    );
}

#[test]
fn keepalive_timeout_closes_silent_connections() {
    let work = work_with_pki();
    let port = crate::util::free_port();
    let metrics_port = crate::util::free_port().to_string();
    let conf = format!(
        "metrics = \"127.0.0.1:{metrics_port}\"\n{}",
        config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", "")
    )
    .replace("{port}", &port.to_string());
    work.write("s.toml", conf);
    let _server = work.serve_args(
        "s",
        port,
        &["serve", "-c", "s.toml", "--keepalive-timeout", "1s"],
    );
    let steps = r#"
print("first", ask([REQ]))
started = time.monotonic()
s.settimeout(8)
try:
    rest = s.recv(100)
except ssl.SSLZeroReturnError:
    rest = b""
print("closed", rest == b"", "after", round(time.monotonic() - started))
"#;
    let script = keepalive_client(port, &metrics_port, steps);
    let out = mtls_test_support::run_peer("python3", &["-c", &script], work.path());
    let text = mtls_test_support::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("first HTTP/1.1 200 OK"), "{text}");
    // Silence is noticed by a sweep (0.25-0.5 s), then keepalive_timeout (1 s) runs.
    let after: u64 = text
        .split("closed True after ")
        .nth(1)
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("not closed:\n{text}"));
    assert!((1..=3).contains(&after), "closed after {after} s:\n{text}");
}

#[test]
fn shutdown_closes_waiting_keepalive_connections_at_once() {
    let work = work_with_pki();
    let conf = format!(
        "metrics = \"127.0.0.1:{{metrics_port}}\"\n{}",
        config("client_ca = \"pki/ca.crt\"\nverify_client = \"on\"", "")
    );
    let server = work.serve("s", &conf);
    let metrics_port = String::from_utf8(work.read("s.metrics_port")).unwrap();
    // The client asks once, waits until its connection is hibernating, then waits for the
    // server to close it.
    let steps = r#"
print("first", ask([REQ]))
while waiting() != "1":
    time.sleep(0.1)
print("waiting", flush=True)
s.settimeout(20)
started = time.monotonic()
try:
    rest = s.recv(100)
except (ssl.SSLZeroReturnError, ConnectionResetError):
    rest = b""
print("closed", rest == b"", "after", round(time.monotonic() - started, 1), flush=True)
"#;
    let script = keepalive_client(server.port, &metrics_port, steps);
    let client = std::process::Command::new(mtls_test_support::require_peer("python3"))
        .args(["-c", &script])
        .current_dir(work.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    server.wait_log("serving on");
    // Give the client time to get its answer and hibernate (a sweep is 250 ms).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let started = std::time::Instant::now();
    let status = server.terminate();
    assert!(status.success(), "exit 0 on SIGTERM: {status}");
    // Not the 10 s shutdown timeout: a waiting connection has nothing in flight.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let out = client.wait_with_output().unwrap();
    let text = mtls_test_support::text(&out);
    assert!(text.contains("first HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("waiting\n"), "{text}");
    assert!(text.contains("closed True"), "{text}");
}

#[test]
fn a_tls_1_0_or_1_1_client_is_told_which_versions_are_accepted() {
    let work = work_with_pki();
    let server = work.serve("s", &config("", ""));
    for version in ["-tls1", "-tls1_1"] {
        let out = work.s_client(server.port, &[version, "-cipher", "DEFAULT:@SECLEVEL=0"]);
        assert!(out.contains("alert"), "{version}: {out}");
    }
    let log = server.wait_log("check=protocol_version");
    assert!(
        log.contains("offered only TLS 1.0 or 1.1") && log.contains("TLS 1.2 and 1.3"),
        "{log}"
    );
    assert!(
        !log.contains("SignatureAlgorithmsExtensionRequired"),
        "{log}"
    );
}

/// Many clients at once, failing for different reasons (expired, unknown CA, revoked by the
/// CRL, no certificate) beside good ones, each with a certificate of its own CN: every
/// refusal line names the check and the subject that the client at that address presented,
/// and the metrics count each check exactly as often as it was sent.
#[test]
fn concurrent_refusals_are_logged_and_counted_for_their_own_connection() {
    const EACH: usize = 8;
    let work = work_with_pki();
    work.ok(&["pki", "--dir", "other", "init", "--cn", "Other CA"]);
    let (ca_cert, ca_key) = (work.join("pki/ca.crt"), work.join("pki/ca.key"));
    let mut clients = Vec::new(); // (kind, cn, cert, key)
    let mut revoked = Vec::new();
    for i in 0..EACH {
        for kind in ["good", "expired", "unknown", "revoked", "none"] {
            let cn = format!("{kind}-{i}");
            let (cert, key) = match kind {
                "good" | "revoked" => {
                    work.ok(&["pki", "issue", "client", &cn]);
                    if kind == "revoked" {
                        revoked.push(forge::serial_of(&work.join(&format!("pki/certs/{cn}.crt"))));
                    }
                    (
                        format!("pki/certs/{cn}.crt"),
                        format!("pki/private/{cn}.key"),
                    )
                }
                "unknown" => {
                    work.ok(&["pki", "--dir", "other", "issue", "client", &cn]);
                    (
                        format!("other/certs/{cn}.crt"),
                        format!("other/private/{cn}.key"),
                    )
                }
                "expired" => {
                    let (cert, key) = forge::expired_client(&ca_cert, &ca_key, &cn);
                    work.write(&format!("{cn}.crt"), cert);
                    work.write(&format!("{cn}.key"), key);
                    (format!("{cn}.crt"), format!("{cn}.key"))
                }
                _ => (String::new(), String::new()),
            };
            clients.push((kind, cn, cert, key));
        }
    }
    work.write("clients.crl", forge::crl_pem(&ca_cert, &ca_key, &revoked));
    let conf = format!(
        "metrics = \"127.0.0.1:{{metrics_port}}\"\n{}",
        config(
            "client_ca = \"pki/ca.crt\"\nverify_client = \"on\"\ncrl = \"clients.crl\"",
            ""
        )
    );
    let server = work.serve("s", &conf);
    let metrics_port = String::from_utf8(work.read("s.metrics_port")).unwrap();

    // One Python process, a thread per client: all connect, then all handshake at once.
    // Each prints its local port, kind and CN; odd ones speak TLS 1.2.
    let list: Vec<String> = clients
        .iter()
        .map(|(kind, cn, cert, key)| format!("({kind:?}, {cn:?}, {cert:?}, {key:?})"))
        .collect();
    let script = format!(
        r#"
import socket, ssl, threading
clients = [{list}]
barrier = threading.Barrier(len(clients))
lines = []
def run(i, kind, cn, cert, key):
    ctx = ssl.create_default_context(cafile="pki/ca.crt")
    if i % 2:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        ctx.load_cert_chain(cert, key)
    sock = socket.create_connection(("127.0.0.1", {port}))
    port = sock.getsockname()[1]
    barrier.wait()
    outcome = "ok"
    try:
        tls = ctx.wrap_socket(sock, server_hostname="localhost")
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        if not tls.recv(100).startswith(b"HTTP/1.1 200"):
            outcome = "bad-answer"
    except (ssl.SSLError, OSError) as e:
        outcome = "refused"
    lines.append(f"{{port}} {{kind}} {{cn}} {{outcome}}")
threads = [threading.Thread(target=run, args=(i,) + c) for i, c in enumerate(clients)]
for t in threads: t.start()
for t in threads: t.join()
print("\n".join(lines))
"#,
        list = list.join(", "),
        port = server.port
    );
    let out = mtls_test_support::run_peer("python3", &["-c", &script], work.path());
    let text = mtls_test_support::text(&out);
    assert!(out.status.success(), "{text}");
    let mut by_port = std::collections::HashMap::new();
    for line in text.lines() {
        let [port, kind, cn, outcome] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("unexpected output {line:?}:\n{text}");
        };
        let expected = if kind == "good" { "ok" } else { "refused" };
        assert_eq!(outcome, expected, "{line}");
        by_port.insert(port.to_owned(), (kind.to_owned(), cn.to_owned()));
    }
    assert_eq!(by_port.len(), clients.len(), "{text}");

    let failing = EACH * 4;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refusals = loop {
        let log = server.log();
        let refusals: Vec<String> = log
            .lines()
            .filter(|l| l.contains("TLS handshake refused: client="))
            .map(str::to_owned)
            .collect();
        if refusals.len() >= failing || std::time::Instant::now() > deadline {
            break refusals;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(refusals.len(), failing, "{}", server.log());
    let field = |line: &str, start: &str, end: char| -> String {
        let from = line
            .find(start)
            .unwrap_or_else(|| panic!("{start} in {line}"))
            + start.len();
        line[from..].split(end).next().unwrap().to_owned()
    };
    let mut seen = std::collections::HashSet::new();
    for line in &refusals {
        let addr = field(line, "client=", ' ');
        let port = addr.rsplit(':').next().unwrap();
        let (kind, cn) = by_port
            .get(port)
            .unwrap_or_else(|| panic!("no client at {addr}: {line}"));
        assert!(seen.insert(port.to_owned()), "two lines for {addr}");
        let check = field(line, "check=", ':');
        let expected = match kind.as_str() {
            "expired" => "expired",
            "unknown" => "unknown_issuer",
            "revoked" => "revoked",
            "none" => "no_certificate",
            other => panic!("a {other} client was refused: {line}"),
        };
        assert_eq!(check, expected, "{cn}: {line}");
        if kind != "none" {
            assert_eq!(field(line, "; subject ", ','), format!("CN={cn}"), "{line}");
        }
    }

    let (code, metrics, err) = work.curl(&[&format!("http://127.0.0.1:{metrics_port}/metrics")]);
    assert_eq!(code, 0, "{err}");
    for check in ["expired", "unknown_issuer", "revoked", "no_certificate"] {
        let line = format!("mtls_tls_refusals_total{{check=\"{check}\"}} {EACH}\n");
        assert!(metrics.contains(&line), "missing {line}{metrics}");
    }
    let refused: usize = metrics
        .lines()
        .filter(|l| l.starts_with("mtls_tls_refusals_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(refused, failing, "{metrics}");
    let completed: usize = metrics
        .lines()
        .filter(|l| l.starts_with("mtls_tls_handshakes_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(completed, EACH, "{metrics}");
}

/// The default order is ours, AES-128-GCM first (SHA-256 handshakes cost less than the
/// SHA-384 of AES-256-GCM), except that a client listing ChaCha20 first (no AES
/// instructions) gets ChaCha20; `prefer_server_ciphers = false` gives the client its order.
#[test]
fn server_order_prefers_aes_128_but_lets_chacha_first_clients_have_chacha() {
    let work = work_with_pki();
    let ours = work.serve("ours", &config("", ""));
    let theirs = work.serve("theirs", &config("prefer_server_ciphers = false", ""));
    let cipher = |server: &Server, args: &[&str]| -> String {
        let out = work.s_client(server.port, args);
        let line = out
            .lines()
            .find(|l| l.contains("Cipher is "))
            .unwrap_or_else(|| panic!("{args:?}: no cipher line:\n{out}"));
        line.rsplit(' ').next().unwrap().to_owned()
    };
    let aes256_first = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";
    let chacha_first = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";
    let tls12_aes256_first = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:\
                              ECDHE-ECDSA-CHACHA20-POLY1305";
    let tls12_chacha_first = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:\
                              ECDHE-ECDSA-AES128-GCM-SHA256";
    for (server, args, expected) in [
        (
            &ours,
            &["-ciphersuites", aes256_first][..],
            "TLS_AES_128_GCM_SHA256",
        ),
        (
            &ours,
            &["-ciphersuites", chacha_first],
            "TLS_CHACHA20_POLY1305_SHA256",
        ),
        (
            &ours,
            &["-tls1_2", "-cipher", tls12_aes256_first],
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ),
        (
            &ours,
            &["-tls1_2", "-cipher", tls12_chacha_first],
            "ECDHE-ECDSA-CHACHA20-POLY1305",
        ),
        (
            &theirs,
            &["-ciphersuites", aes256_first],
            "TLS_AES_256_GCM_SHA384",
        ),
        (
            &theirs,
            &["-tls1_2", "-cipher", tls12_aes256_first],
            "ECDHE-ECDSA-AES256-GCM-SHA384",
        ),
    ] {
        assert_eq!(cipher(server, args), expected, "{args:?}");
    }
}

#[test]
fn check_finds_private_keys_in_a_static_root_whatever_the_file_is_called() {
    let work = localhost_pki();
    let pkcs8 = String::from_utf8(work.read("pki/private/localhost.key")).unwrap();
    let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n\
                   -----END OPENSSH PRIVATE KEY-----\n";
    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0w\n\
                     -----END ENCRYPTED PRIVATE KEY-----\n";
    // Backups and copies keep the key, not the extension: found by name where the name
    // still says key, by content everywhere else.
    let cases = [
        ("ca.key.bak", "not even PEM"),
        ("server.key.orig", "not even PEM"),
        ("site.p12.old", "not even PEM"),
        ("key.old", pkcs8.as_str()),
        ("notes.md", pkcs8.as_str()),
        ("id_ed25519", openssh),
        ("backup.html", encrypted),
    ];
    for (i, (name, content)) in cases.iter().enumerate() {
        let root = format!("root{i}");
        std::fs::create_dir_all(work.join(&root).join("old")).unwrap();
        work.write(&format!("{root}/index.html"), "hello");
        work.write(&format!("{root}/old/{name}"), content);
        work.write("key.toml", lint_config("localhost", "localhost", &root));
        let out = work.mtls(&["check", "-c", "key.toml"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        assert!(
            err.contains("warning: key.toml:9:")
                && err.contains("holds private key material")
                && err.contains(name),
            "{name}: {err}"
        );
    }
}

/// A server certificate for localhost made by openssl, signed by our CA, with `extensions`
/// (an openssl extfile, one per line): `pki/certs/NAME.crt`, `pki/private/NAME.key`.
fn openssl_server_certificate(work: &Work, name: &str, extensions: &str) {
    work.write(
        &format!("{name}.ext"),
        format!("subjectAltName=DNS:localhost\n{extensions}\n"),
    );
    let openssl = mtls_test_support::require_peer("openssl");
    let key = format!("pki/private/{name}.key");
    let csr = format!("{name}.csr");
    let cert = format!("pki/certs/{name}.crt");
    let ext = format!("{name}.ext");
    for args in [
        vec![
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-subj",
            "/CN=localhost",
            "-out",
            &csr,
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "pki/ca.crt",
            "-CAkey",
            "pki/ca.key",
            "-CAcreateserial",
            "-days",
            "90",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    ] {
        let out = std::process::Command::new(&openssl)
            .current_dir(work.path())
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", mtls_test_support::text(&out));
    }
}

#[test]
fn check_refuses_server_certificates_that_openssl_or_rustls_clients_refuse() {
    let work = localhost_pki();
    std::fs::create_dir_all(work.join("site")).unwrap();
    work.write("site/index.html", "hello");
    // (name, extensions, what check says, whether curl (OpenSSL) refuses it, whether
    // `mtls get` (mtls-verify) refuses it): each one is refused by at least one of them.
    let cases = [
        (
            "anyeku",
            "extendedKeyUsage=anyExtendedKeyUsage",
            "wrong purpose",
            true,
            true,
        ),
        (
            "certsign",
            "keyUsage=critical,keyCertSign,cRLSign",
            "without digitalSignature, keyEncipherment or keyAgreement",
            true,
            // mtls-verify checks a TLS leaf's keyUsage like OpenSSL does.
            true,
        ),
        (
            "calike",
            "basicConstraints=critical,CA:TRUE",
            "basicConstraints CA:TRUE",
            false,
            true,
        ),
    ];
    for (name, extensions, says, curl_refuses, rustls_refuses) in cases {
        openssl_server_certificate(&work, name, extensions);
        let config = format!("{name}.toml");
        work.write(&config, lint_config("localhost", name, "site"));
        let err = work.fails(&["check", "-c", &config]);
        assert!(
            err.contains(&format!("{name}.toml:6:"))
                && err.contains(&format!("certificate: pki/certs/{name}.crt"))
                && err.contains(says),
            "{name}: {err}"
        );

        // The clients agree: served by openssl, the certificate is refused.
        let port = free_port();
        let cert = format!("pki/certs/{name}.crt");
        let key = format!("pki/private/{name}.key");
        let _server = work.s_server(name, port, &["-cert", &cert, "-key", &key, "-www"]);
        let url = format!("https://localhost:{port}/");
        let resolve = format!("localhost:{port}:127.0.0.1");
        let (code, _, curl_err) = work.curl(&[
            "--cacert",
            "pki/ca.crt",
            "--resolve",
            &resolve,
            "-o",
            "/dev/null",
            &url,
        ]);
        assert_eq!(code != 0, curl_refuses, "{name}: curl: {code} {curl_err}");
        if curl_refuses {
            assert!(
                curl_err.contains("unsuitable certificate purpose"),
                "{name}: {curl_err}"
            );
        }
        let out = work.mtls(&["get", "--ca", "pki/ca.crt", "--resolve", &resolve, &url]);
        assert_eq!(
            !out.status.success(),
            rustls_refuses,
            "{name}: mtls get: {}",
            mtls_test_support::text(&out)
        );
    }
}

#[test]
fn check_warns_of_client_cas_given_to_a_server_that_never_asks_for_a_certificate() {
    let work = localhost_pki();
    std::fs::create_dir_all(work.join("site")).unwrap();
    work.write("site/index.html", "hello");
    work.ok(&["pki", "crl"]);
    let base = lint_config("localhost", "localhost", "site");
    // client_ca on line 8, verify_client left out: the default is off.
    for (key, value) in [("client_ca", "pki/ca.crt"), ("crl", "pki/crl.pem")] {
        let config = base.replace(
            "key = \"pki/private/localhost.key\"\n",
            &format!("key = \"pki/private/localhost.key\"\n{key} = \"{value}\"\n"),
        );
        work.write("off.toml", &config);
        let out = work.mtls(&["check", "-c", "off.toml"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("warning: off.toml:8:")
                && err.contains(&format!(
                    "{key} is set but verify_client is off (the default): client \
                     certificates are not requested; set verify_client = \"on\" or \
                     \"optional\""
                )),
            "{key}: {err}"
        );
        // Asking for certificates: nothing to warn of.
        for verify in ["on", "optional"] {
            let asked = config.replace(
                &format!("{key} = "),
                &format!("verify_client = \"{verify}\"\n{key} = "),
            );
            work.write("asked.toml", asked);
            let out = work.mtls(&["check", "-c", "asked.toml"]);
            if key == "crl" {
                // A CRL without a client CA is refused outright; not this warning.
                assert!(
                    !String::from_utf8_lossy(&out.stderr).contains("verify_client is off"),
                    "{}",
                    mtls_test_support::text(&out)
                );
                continue;
            }
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{verify}: {}",
                mtls_test_support::text(&out)
            );
        }
    }
}

/// `pki init --intermediate` and `crl = "pki/crl.pem"`: the file holds the intermediate's
/// CRL and the root's, so the fail-closed check covers the whole chain with our own PKI.
#[test]
fn an_intermediate_pki_publishes_a_crl_for_every_ca_of_the_chain() {
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
    work.ok(&["pki", "issue", "client", "bob"]);
    let shown = work.json(&["pki", "show", "pki/crl.pem"]);
    assert_eq!(shown[0]["objects"].as_array().unwrap().len(), 2, "{shown}");
    assert!(work.join("pki/public/root.crl").is_file());
    let server = work.serve(
        "int",
        &config(
            "client_ca = \"pki/ca.crt\"\nverify_client = \"on\"\nverify_depth = 2\ncrl = \"pki/crl.pem\"",
            "",
        ),
    );
    let alice = [
        "--cert",
        "pki/certs/alice.chain.pem",
        "--key",
        "pki/private/alice.key",
    ];
    let bob = [
        "--cert",
        "pki/certs/bob.chain.pem",
        "--key",
        "pki/private/bob.key",
    ];
    let (code, _, err) = get(&work, &server, "/", &alice);
    assert_eq!(code, 0, "{err}");
    work.ok(&["pki", "revoke", "alice"]);
    server.wait_log("reloaded (changed: ");
    let (code, _, err) = get(&work, &server, "/", &alice);
    assert_ne!(code, 0, "alice is revoked: {err}");
    let (code, _, err) = get(&work, &server, "/", &bob);
    assert_eq!(code, 0, "bob is not: {err}");
}

/// `keylog`: the TLS 1.3 secrets of a third-party client's connection land in a 0600 file
/// in the NSS format, tshark decrypts the capture with it (the server's Certificate
/// message, encrypted in TLS 1.3, is read), `check` and the start warn with the line, and
/// an existing file others may read is refused there.
#[test]
fn keylog_writes_the_secrets_that_decrypt_a_capture() {
    let work = localhost_pki();
    let server = work.serve("keylog", &config("keylog = \"keys.log\"", ""));
    let keys = work.join("keys.log");
    let warning = format!(
        "keylog.toml:9:10: keylog: TLS secrets of every connection to localhost on \
         127.0.0.1:{} are written to keys.log: anyone who can read it can decrypt the \
         traffic; remove `keylog` when done",
        server.port
    );
    server.wait_log(&warning);

    let capture = Tcpdump::start(&work, server.port);
    let (code, body, err) = get(&work, &server, "/", &["--tlsv1.3"]);
    assert_eq!(code, 0, "{err}");
    assert!(body.starts_with("verify=NONE"), "{body}");
    let capture = capture.stop();

    assert_eq!(crate::util::mode(&keys), 0o600);
    let text = std::fs::read_to_string(&keys).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    for line in &lines {
        assert_eq!(line.len(), 3, "{text}");
        // The client random is 32 bytes; secrets are a SHA-256 or SHA-384 hash long.
        assert!(line[1].len() == 64 && hex(line[1]), "{text}");
        assert!(matches!(line[2].len(), 64 | 96) && hex(line[2]), "{text}");
        assert_eq!(
            line[1], lines[0][1],
            "one connection, one client random:\n{text}"
        );
    }
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(lines.iter().any(|l| l[0] == label), "{label}:\n{text}");
    }

    let certificates = |keylog: &str| {
        let out = std::process::Command::new(mtls_test_support::require_peer("tshark"))
            .arg("-r")
            .arg(&capture)
            .args(["-o", &format!("tls.keylog_file:{keylog}")])
            .args(["-Y", "tls.handshake.type == 11"])
            .args(["-T", "fields", "-e", "tls.handshake.certificate"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", mtls_test_support::text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // Without the secrets the Certificate message is ciphertext: the check below means
    // something.
    assert_eq!(certificates(""), "");
    assert!(!certificates(&keys.display().to_string()).is_empty());

    let out = work.mtls(&["check", "-c", "keylog.toml"]);
    assert!(out.status.success(), "{}", mtls_test_support::text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("warning: {warning}")),
        "{}",
        mtls_test_support::text(&out)
    );

    std::fs::set_permissions(&keys, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let err = work.fails(&["check", "-c", "keylog.toml"]);
    assert!(
        err.contains("keylog.toml:9:10: keylog: keys.log: has mode 0644: others may read"),
        "{err}"
    );
    assert_eq!(crate::util::mode(&keys), 0o644, "the mode is not changed");
}

/// HTTP/1.1 lets a client shut down its sending side once its request is sent, and nginx
/// answers it. Attack from Python's ssl with memory BIOs (`--half-close`): the client's last
/// handshake flight, its request and its FIN leave in one segment, with no close_notify.
/// The answer is still owed, TLS 1.3 and 1.2 alike, and logged; before, the gateway
/// dropped it (rustls reports TCP's end without close_notify as an error, and hyper ended
/// the connection at the EOF while the answer was being made).
#[test]
fn a_client_that_half_closes_after_its_request_gets_its_answer() {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    let gateway = mutual_gateway(&work);
    let alice = ["--cert", "pki/certs/alice.crt", "pki/private/alice.key"];
    for version in ["1.3", "1.2"] {
        let out = python_client(
            &work,
            gateway.port,
            version,
            &[&alice[..], &["--half-close"]].concat(),
        );
        let text = mtls_test_support::text(&out);
        assert!(
            out.status.success() && text.starts_with("HTTP/1.1 200"),
            "TLS {version}: {text}"
        );
        let log = gateway.wait_access(&format!("tls=TLSv{version}"));
        let line = log
            .lines()
            .find(|l| l.contains(&format!("tls=TLSv{version}")))
            .unwrap_or_default();
        assert!(
            line.contains("\"GET / HTTP/1.1\" 200") && line.contains("end=ok"),
            "{line}"
        );
    }
}

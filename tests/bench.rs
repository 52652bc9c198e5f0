//! `mtls bench` as a black box against our gateway on 127.0.0.1 with client certificates:
//! each mode does what it says (the gateway's access log is the witness: one line per
//! request, `resumed=.` or `resumed=r`), failures are counted by kind and fail the run,
//! and the schedule flags keep their promises. Functional checks only: no performance
//! figure is asserted beyond sanity.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Server, Work, localhost_pki};

/// A CA with a server certificate for localhost/127.0.0.1 and a client `alice`.
fn bench_pki() -> Work {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    work
}

/// The gateway requiring client certificates from our CA: `/` answers 200, `/forbidden`
/// 403.
fn gateway(work: &Work) -> Server {
    work.serve(
        "gw",
        r#"
[[server]]
listen = ["127.0.0.1:{port}"]
server_name = ["localhost"]

[server.tls]
certificate = "pki/certs/localhost.chain.pem"
key = "pki/private/localhost.key"
client_ca = "pki/ca.crt"
verify_client = "on"

[[server.location]]
path = "/forbidden"
return = "403 no"

[[server.location]]
path = "/"
return = "200 hello"
"#,
    )
}

const ALICE: &[&str] = &[
    "--ca",
    "pki/ca.crt",
    "--cert",
    "pki/certs/alice.crt",
    "--key",
    "pki/private/alice.key",
];

/// `mtls bench https://localhost:PORT{path} --resolve ... ARGS... --json`.
fn bench(work: &Work, server: &Server, path: &str, args: &[&str]) -> Output {
    let url = format!("https://localhost:{}{path}", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    let mut all = vec!["bench", url.as_str(), "--resolve", &resolve, "--json"];
    all.extend_from_slice(args);
    work.mtls(&all)
}

/// Must exit 0; the JSON report.
fn ok(out: Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "mtls bench should succeed:\n{}",
        mtls_test_support::text(&out)
    );
    report(&out)
}

/// Must exit 1; the JSON report and stderr.
fn failed(out: Output) -> (Value, String) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "mtls bench should fail with 1:\n{}",
        mtls_test_support::text(&out)
    );
    (
        report(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", mtls_test_support::text(out)))
}

/// Wait (up to 5 s) until the access log has `count` lines containing `needle`; all its
/// lines.
fn access_lines(server: &Server, needle: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.access_log();
        let lines: Vec<String> = log.lines().map(str::to_owned).collect();
        if lines.iter().filter(|l| l.contains(needle)).count() >= count || Instant::now() > deadline
        {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

#[test]
fn keep_alive_requests_over_http1_are_all_answered() {
    let work = bench_pki();
    let server = gateway(&work);
    let report = ok(bench(
        &work,
        &server,
        "/",
        &[&["-n", "200", "-c", "4"], ALICE].concat(),
    ));
    assert_eq!(report["mode"], "requests");
    assert_eq!(report["http"], "HTTP/1.1");
    assert_eq!(report["connections"], 4);
    assert_eq!(report["requests_ok"], 200, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert_eq!(report["statuses"]["200"], 200);
    assert!(report["ops_per_s"].as_f64().unwrap() > 0.0, "{report}");
    let latency = &report["latency_us"];
    for key in ["p50", "p90", "p99", "p999", "max", "mean"] {
        assert!(latency[key].as_f64().unwrap() > 0.0, "{key}: {report}");
    }
    assert!(
        latency["p50"].as_u64() <= latency["max"].as_u64(),
        "{report}"
    );
    // "hello" is 5 bytes; every response has at least that, every request its line.
    assert!(
        report["bytes_read"].as_u64().unwrap() >= 200 * 5,
        "{report}"
    );
    assert!(
        report["bytes_written"].as_u64().unwrap() >= 200 * 14,
        "{report}"
    );
    assert!(report.get("resumed_fraction").is_none(), "{report}");

    let lines = access_lines(&server, "\"GET / HTTP/1.1\" 200", 200);
    assert_eq!(
        lines.len(),
        200,
        "one line per request:\n{}",
        lines.join("\n")
    );
    assert_eq!(count(&lines, "client=\"CN=alice\""), 200);
    assert_eq!(count(&lines, "mtls-bench/"), 200, "the User-Agent");

    // The request flags of `mtls get`: -X, -H and --data.
    work.write("body.txt", "amount=42");
    let report = ok(bench(
        &work,
        &server,
        "/put",
        &[
            &[
                "-n",
                "3",
                "-c",
                "1",
                "-X",
                "PUT",
                "-H",
                "User-Agent: probe/1",
            ][..],
            &["--data", "@body.txt"],
            ALICE,
        ]
        .concat(),
    ));
    assert_eq!(report["requests_ok"], 3, "{report}");
    let lines = access_lines(&server, "\"PUT /put HTTP/1.1\" 200", 3);
    assert_eq!(count(&lines, "\"PUT /put HTTP/1.1\" 200"), 3);
    assert_eq!(count(&lines, "probe/1"), 3, "-H replaces the default");
}

#[test]
fn http2_streams_share_connections() {
    let work = bench_pki();
    let server = gateway(&work);
    let report = ok(bench(
        &work,
        &server,
        "/",
        &[&["--http2", "-m", "4", "-c", "2", "-n", "200"], ALICE].concat(),
    ));
    assert_eq!(report["http"], "HTTP/2");
    assert_eq!(report["streams"], 4);
    assert_eq!(report["requests_ok"], 200, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    let lines = access_lines(&server, "HTTP/2", 200);
    assert_eq!(count(&lines, "HTTP/2"), 200, "{}", lines.join("\n"));
    assert_eq!(
        count(&lines, "resumed=r"),
        0,
        "kept-alive connections: no resumption"
    );
}

#[test]
fn requests_an_http2_server_never_processed_are_sent_again_not_counted_as_errors() {
    // nginx ends an HTTP/2 connection with a GOAWAY after `keepalive_requests`: the streams
    // above its last one were never processed (RFC 9113 8.7), and go on a new connection.
    let work = bench_pki();
    let port = crate::util::free_port();
    let server = work.nginx(
        port,
        &format!(
            "server {{\n listen 127.0.0.1:{port} ssl http2;\n keepalive_requests 7;\n\
             ssl_certificate {{dir}}/pki/certs/localhost.chain.pem;\n\
             ssl_certificate_key {{dir}}/pki/private/localhost.key;\n\
             location / {{ return 200 \"hello\\n\"; }}\n}}"
        ),
    );
    let report = ok(bench(
        &work,
        &server,
        "/",
        &[&["--http2", "-m", "8", "-c", "2", "-n", "400"], ALICE].concat(),
    ));
    assert_eq!(report["requests_ok"], 400, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
}

#[test]
fn handshakes_mode_makes_a_full_handshake_per_request() {
    let work = bench_pki();
    let server = gateway(&work);
    let report = ok(bench(
        &work,
        &server,
        "/",
        &[&["--mode", "handshakes", "-n", "50", "-c", "4"], ALICE].concat(),
    ));
    assert_eq!(report["mode"], "handshakes");
    assert_eq!(report["requests_ok"], 50, "{report}");
    assert_eq!(report["resumed_fraction"], 0.0, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    let lines = access_lines(&server, "resumed=.", 50);
    assert_eq!(lines.len(), 50, "{}", lines.join("\n"));
    assert_eq!(count(&lines, "resumed=."), 50, "{}", lines.join("\n"));
}

#[test]
fn resume_mode_resumes_and_reports_the_fraction() {
    let work = bench_pki();
    let server = gateway(&work);
    let report = ok(bench(
        &work,
        &server,
        "/",
        &[&["--mode", "resume", "-n", "50", "-c", "4"], ALICE].concat(),
    ));
    assert_eq!(report["mode"], "resume");
    assert_eq!(report["requests_ok"], 50, "{report}");
    assert!(
        report["resumed_fraction"].as_f64().unwrap() >= 0.9,
        "{report}"
    );
    // One full handshake per connection first (not measured), then resumptions that keep
    // the client's identity.
    let lines = access_lines(&server, "client=\"CN=alice\"", 54);
    assert!(count(&lines, "resumed=r") >= 45, "{}", lines.join("\n"));
    assert_eq!(lines.len(), 54, "{}", lines.join("\n"));
    assert_eq!(count(&lines, "client=\"CN=alice\""), 54);
}

#[test]
fn non_2xx_answers_fail_loudly_and_are_not_successes() {
    let work = bench_pki();
    let server = gateway(&work);
    let (report, stderr) = failed(bench(
        &work,
        &server,
        "/forbidden",
        &[&["-n", "30", "-c", "2"], ALICE].concat(),
    ));
    assert_eq!(report["requests_ok"], 0, "{report}");
    assert_eq!(report["ops_per_s"], 0.0, "{report}");
    assert_eq!(report["errors"]["4xx"], 30, "{report}");
    assert_eq!(report["statuses"]["403"], 30, "{report}");
    assert!(
        stderr.contains("WARNING: 30 of 30 responses were 403 Forbidden — this is not a success"),
        "{stderr}"
    );

    // The text report says it too.
    let url = format!("https://localhost:{}/forbidden", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    let out = work.mtls(
        &[
            &[
                "bench",
                url.as_str(),
                "--resolve",
                &resolve,
                "-n",
                "5",
                "-c",
                "1",
            ][..],
            ALICE,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1));
    let text = mtls_test_support::text(&out);
    assert!(text.contains("4xx 5"), "{text}");
    assert!(text.contains("5 of 5 responses were 403"), "{text}");
}

#[test]
fn without_a_certificate_the_errors_are_certificate_required_alerts() {
    let work = bench_pki();
    let server = gateway(&work);
    for mode in ["requests", "handshakes"] {
        let (report, stderr) = failed(bench(
            &work,
            &server,
            "/",
            &["--ca", "pki/ca.crt", "--mode", mode, "-n", "20", "-c", "2"],
        ));
        assert_eq!(report["requests_ok"], 0, "{report}");
        let errors = report["errors"].as_object().unwrap();
        let total: u64 = errors.values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(total, 20, "every request is counted: {report}");
        // In TLS 1.3 the refusal arrives after our side of the handshake; should the
        // server's reset overtake its alert, the socket loses it: allow a few.
        let required = errors.get("certificate_required").and_then(Value::as_u64);
        assert!(required.unwrap_or(0) >= 15, "{mode}: {report}");
        for kind in errors.keys() {
            assert!(
                ["certificate_required", "closed_after_no_certificate"].contains(&kind.as_str()),
                "{mode}: {report}"
            );
        }
        assert!(
            stderr.contains("failed: certificate_required")
                && stderr.contains("requires a client certificate"),
            "{stderr}"
        );
    }
    server.wait_log("no_certificate");
}

/// Against the same server, without a certificate, `mtls bench` and `mtls get` give one
/// diagnosis, word for word: bench once said the server "did not say which issuers it
/// accepts" where get named them.
#[test]
fn bench_and_get_explain_a_missing_certificate_in_the_same_words() {
    let work = bench_pki();
    let server = gateway(&work);
    let url = format!("https://localhost:{}/", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    let got = work.mtls(&["get", &url, "--resolve", &resolve, "--ca", "pki/ca.crt"]);
    assert_eq!(
        got.status.code(),
        Some(1),
        "{}",
        mtls_test_support::text(&got)
    );
    let said = String::from_utf8_lossy(&got.stderr);
    let sentence = said.trim_end().strip_prefix("error: ").unwrap_or(&said);
    assert!(
        sentence.ends_with("it accepts certificates issued by: CN=mtls CA"),
        "{sentence}"
    );
    for mode in ["requests", "handshakes"] {
        for http in [None, Some("--http2")] {
            let mut args = vec!["--ca", "pki/ca.crt", "--mode", mode, "-n", "4", "-c", "1"];
            args.extend(http);
            let (report, stderr) = failed(bench(&work, &server, "/", &args));
            assert_eq!(
                report["error_examples"]["certificate_required"], sentence,
                "{mode} {http:?}: {report}"
            );
            assert!(stderr.contains(sentence), "{mode} {http:?}: {stderr}");
        }
    }
}

#[test]
fn rate_keeps_its_schedule() {
    let work = bench_pki();
    let server = gateway(&work);
    let report = ok(bench(
        &work,
        &server,
        "/",
        &[&["--rate", "200", "-d", "2s", "-c", "4"], ALICE].concat(),
    ));
    let sent = report["requests_ok"].as_u64().unwrap();
    assert!((320..=480).contains(&sent), "about 400: {report}");
    assert_eq!(report["rate"], 200.0);
}

#[test]
fn duration_stops_the_run() {
    let work = bench_pki();
    let server = gateway(&work);
    let started = Instant::now();
    let report = ok(bench(
        &work,
        &server,
        "/",
        &[&["-d", "1s", "--warmup", "0s", "-c", "2"], ALICE].concat(),
    ));
    let wall = started.elapsed();
    assert!(wall < Duration::from_secs(5), "took {wall:?}");
    let measured = report["duration_s"].as_f64().unwrap();
    assert!((0.9..1.5).contains(&measured), "{report}");
    assert!(report["requests_ok"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn bad_flags_are_usage_errors() {
    let work = bench_pki();
    for (args, flag) in [
        (&["-m", "4"][..], "-m"),
        (&["-n", "0"][..], "-n"),
        (&["-c", "0"][..], "-c"),
        (&["--rate", "0"][..], "--rate"),
    ] {
        let out = work.mtls(&[&["bench", "https://localhost:1/"], ALICE, args].concat());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            mtls_test_support::text(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{args:?}: {err}");
    }
    let out = work.mtls(&["bench", "https://localhost:1/", "-n", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca"));
}

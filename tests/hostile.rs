//! Requests an attacker would send, against the running binary: paths written to slip past
//! a location's client-certificate rule, identity headers a client tries to forge, and Host
//! headers built to confuse routing or an error page.
//!
//! Every location below either requires a verified client certificate or allows only some
//! certificates; the test is that no spelling of a path reaches it without one.

use crate::util::{Server, Work, free_port, gateway_config, https_get, localhost_pki, plain_echo};

/// The gateway's PKI, a client `alice` (OU=Payments), and documents under `www/`.
fn hostile_pki() -> Work {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice", "--ou", "Payments"]);
    for dir in ["www/private", "www/pub", "www/allowed"] {
        std::fs::create_dir_all(work.join(dir)).unwrap();
    }
    work.write("www/private/secret.txt", "SECRET\n");
    work.write("www/allowed/secret.txt", "ALLOWED-ONLY\n");
    work.write("www/pub/hello.txt", "hello\n");
    work
}

/// The gateway with `locations`: anonymous clients connect, the per-location rules are
/// what keeps them out.
fn server_block(extra: &str, locations: &str) -> String {
    gateway_config("", extra, locations)
}

const STATIC_AND_RETURN: &str = r#"
[[server.location]]
path = "/"
root = "www"

[[server.location]]
path = "/private/"
client_auth = "required"
root = "www"

[[server.location]]
path = "/allowed/"
allow = { cn = "bob" }
root = "www"

[[server.location]]
path = "/ret/"
return = "200 public $uri"

[[server.location]]
path = "/ret/private/"
client_auth = "required"
return = "200 private $uri"
"#;

const ALICE: &[&str] = &[
    "--cert",
    "pki/certs/alice.crt",
    "--key",
    "pki/private/alice.key",
];

/// `curl --path-as-is` (the path goes out byte for byte): (status, body).
fn get(work: &Work, server: &Server, path: &str, extra: &[&str]) -> (u16, String) {
    https_get(work, server, path, &[&["--path-as-is"], extra].concat())
}

/// Spellings of `/private/secret.txt` that name the same file once decoded and normalised.
const SAME_FILE: &[&str] = &[
    "/private/secret.txt",
    "//private/secret.txt",
    "/%70rivate/secret.txt",
    "/%70%72%69%76%61%74%65/secret.txt",
    "/./private/secret.txt",
    "/pub/../private/secret.txt",
    "/pub/%2e%2e/private/secret.txt",
    "/pub/%2E%2e/private/secret.txt",
    "/pub/.%2E/private/secret.txt",
    "/pub/%2e./private/secret.txt",
    "/pub/x/../../private/secret.txt",
    "/private/./secret.txt",
    "/private//secret.txt",
    "/pub/hello.txt/../../private/secret.txt",
];

/// Spellings that would create a separator the router never saw, or are not text: 400.
const REFUSED: &[&str] = &[
    "/pub/..%2fprivate/secret.txt",
    "/pub/..%2Fprivate/secret.txt",
    "/pub%2f..%2fprivate/secret.txt",
    "/private%2fsecret.txt",
    "/pub/..%5cprivate/secret.txt",
    "/pub/..%5Cprivate/secret.txt",
    "/pub\\..\\private/secret.txt",
    "/pub/%c0%ae%c0%ae/private/secret.txt",
    "/pub/%c0%ae./private/secret.txt",
    "/private/secret.txt%00.html",
    "/pub/%0d%0aprivate/secret.txt",
    "/../private/secret.txt",
    "/pub/../../private/secret.txt",
    "/%2e%2e/private/secret.txt",
    "/pub/%zz/secret.txt",
];

#[test]
fn no_spelling_of_a_path_skips_client_auth_on_static_files() {
    let work = hostile_pki();
    let server = work.serve("gw", &server_block("", STATIC_AND_RETURN));
    for path in SAME_FILE {
        let (status, body) = get(&work, &server, path, &[]);
        assert_eq!(status, 403, "{path} without a certificate: {body}");
        assert!(!body.contains("SECRET"), "{path}: {body}");
        let (status, body) = get(&work, &server, path, ALICE);
        assert_eq!(
            (status, body.as_str()),
            (200, "SECRET\n"),
            "{path} with alice"
        );
    }
    for path in REFUSED {
        for extra in [&[][..], ALICE] {
            let (status, body) = get(&work, &server, path, extra);
            assert_eq!(status, 400, "{path} ({extra:?}): {body}");
            assert!(!body.contains("SECRET"), "{path}: {body}");
        }
    }
    // A double-encoded dot is a file literally named `%2e%2e`, never a step up.
    let (status, body) = get(&work, &server, "/pub/%252e%252e/private/secret.txt", ALICE);
    assert_eq!(status, 404, "{body}");
    // The refusal is logged against the normalised path.
    server.wait_log("check=client_auth_required: /private/secret.txt");
}

#[test]
fn no_spelling_of_a_path_skips_an_allow_rule() {
    let work = hostile_pki();
    let server = work.serve("gw", &server_block("", STATIC_AND_RETURN));
    for path in [
        "/allowed/secret.txt",
        "//allowed/secret.txt",
        "/%61llowed/secret.txt",
        "/./allowed/secret.txt",
        "/pub/../allowed/secret.txt",
        "/pub/%2e%2e/allowed/secret.txt",
    ] {
        let (status, body) = get(&work, &server, path, ALICE);
        assert_eq!(status, 403, "{path} as alice (allow cn = bob): {body}");
        assert!(!body.contains("ALLOWED-ONLY"), "{path}: {body}");
    }
}

#[test]
fn no_spelling_of_a_path_skips_client_auth_on_return() {
    let work = hostile_pki();
    let server = work.serve("gw", &server_block("", STATIC_AND_RETURN));
    for path in [
        "/ret/private/x",
        "/ret//private/x",
        "/ret/%70rivate/x",
        "/ret/./private/x",
        "/ret/pub/../private/x",
        "/ret/pub/%2e%2E/private/x",
        "//ret/private/x",
    ] {
        let (status, body) = get(&work, &server, path, &[]);
        assert_eq!(status, 403, "{path} without a certificate: {body}");
        // `$uri` is the normalised path, as in nginx.
        let (status, body) = get(&work, &server, path, ALICE);
        assert_eq!(
            (status, body.as_str()),
            (200, "private /ret/private/x"),
            "{path}"
        );
    }
    let (status, body) = get(&work, &server, "/ret/private%2fx", ALICE);
    assert_eq!(status, 400, "{body}");
}

#[test]
fn http2_paths_are_normalised_too() {
    let work = hostile_pki();
    let server = work.serve("gw", &server_block("", STATIC_AND_RETURN));
    for path in ["//private/secret.txt", "/pub/%2e%2e/private/secret.txt"] {
        let (status, body) = get(&work, &server, path, &["--http2"]);
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (status, _) = get(&work, &server, "/pub/..%2fprivate/secret.txt", &["--http2"]);
    assert_eq!(status, 400);
}

/// nginx as an upstream that normalises paths: it tells which of its locations answered.
fn normalising_upstream(work: &Work) -> (Server, u16) {
    let port = free_port();
    let nginx = work.nginx(
        port,
        &format!(
            "server {{\n listen 127.0.0.1:{port};\n\
             location /apiadmin/ {{ return 200 \"ADMIN $uri\\n\"; }}\n\
             location /api/ {{ return 200 \"API $uri\\n\"; }}\n\
             location / {{ return 200 \"ROOT $uri\\n\"; }}\n}}\n"
        ),
    );
    (nginx, port)
}

fn proxy_locations(upstream: u16, api_extra: &str) -> String {
    format!(
        r#"
[[server.location]]
path = "/api/"
proxy_pass = "http://127.0.0.1:{upstream}"
{api_extra}

[[server.location]]
path = "/apiadmin/"
client_auth = "required"
proxy_pass = "http://127.0.0.1:{upstream}"
"#
    )
}

#[test]
fn the_proxy_forwards_the_normalised_path() {
    let work = hostile_pki();
    let (_nginx, upstream) = normalising_upstream(&work);
    let server = work.serve("gw", &server_block("", &proxy_locations(upstream, "")));
    for path in [
        "/api/../apiadmin/x",
        "/api/%2e%2e/apiadmin/x",
        "/api/%2E%2E/apiadmin/x",
        "/api/./../apiadmin/x",
        "//apiadmin/x",
        "/%61piadmin/x",
    ] {
        let (status, body) = get(&work, &server, path, &[]);
        assert_eq!(status, 403, "{path} without a certificate: {body}");
        assert!(!body.contains("ADMIN"), "{path}: {body}");
        let (status, body) = get(&work, &server, path, ALICE);
        assert_eq!(
            (status, body.as_str()),
            (200, "ADMIN /apiadmin/x\n"),
            "{path}"
        );
    }
    for path in ["/api/..%2fapiadmin/x", "/api/..%5capiadmin/x", "/api/%00"] {
        let (status, body) = get(&work, &server, path, &[]);
        assert_eq!(status, 400, "{path}: {body}");
    }
    // What the upstream receives is the normalised path, encoded again; the query as sent.
    let (_echo, port) = plain_echo(&work);
    let server = work.serve("gw2", &server_block("", &proxy_locations(port, "")));
    for (sent, received) in [
        ("/api/./a//b/../c", "/api/a/c"),
        ("/api/a%20b", "/api/a%20b"),
        ("/api/%61", "/api/a"),
        ("/api/%252e%252e/x", "/api/%252e%252e/x"),
        ("/api/caf%C3%A9", "/api/caf%C3%A9"),
        ("/api/a%3Fb", "/api/a%3Fb"),
        ("/api/a%23b", "/api/a%23b"),
    ] {
        let (status, body) = get(&work, &server, &format!("{sent}?q=%2e%2e/x"), &[]);
        assert_eq!(status, 200, "{sent}: {body}");
        let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(echoed["path"], received, "{sent}");
        assert_eq!(echoed["query"], "q=%2e%2e/x", "{sent}");
    }
}

#[test]
fn forward_raw_path_sends_the_path_as_received_only_when_it_routes_the_same() {
    let work = hostile_pki();
    let (_echo, port) = plain_echo(&work);
    let server = work.serve(
        "gw",
        &server_block("", &proxy_locations(port, "forward_raw_path = true")),
    );
    for (sent, received) in [
        ("/api/a%2Cb", "/api/a%2Cb"),
        ("/api/./x", "/api/./x"),
        ("/api/%61", "/api/%61"),
    ] {
        let (status, body) = get(&work, &server, sent, &[]);
        assert_eq!(status, 200, "{sent}: {body}");
        let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(echoed["path"], received, "{sent}");
    }
    // Routed by its normalised form to /apiadmin/, which forwards normalised paths.
    let (status, _) = get(&work, &server, "/api/../apiadmin/x", &[]);
    assert_eq!(status, 403);
    let (status, body) = get(&work, &server, "/api/../apiadmin/x", ALICE);
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["path"], "/apiadmin/x");
    // Routed to /api/ (raw paths) by its normalised form, but its raw form, matched as it
    // is, would pick /apiadmin/: an upstream could read it either way, so it is refused.
    for extra in [&[][..], ALICE] {
        let (status, body) = get(&work, &server, "/apiadmin/../api/x", extra);
        assert_eq!(status, 400, "{body}");
    }
    server.wait_log("check=ambiguous_path");
}

/// One raw HTTP/1.1 exchange over TLS with Python's ssl (no client certificate): the
/// request bytes exactly as given, the answer until the server closes or 3 s of silence.
fn raw_tls(work: &Work, port: u16, request: &str) -> String {
    let script = format!(
        r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile="pki/ca.crt")
with socket.create_connection(("127.0.0.1", {port})) as tcp:
    with ctx.wrap_socket(tcp, server_hostname="localhost") as tls:
        tls.sendall(sys.stdin.buffer.read())
        tls.settimeout(3)
        out = b""
        while True:
            try:
                chunk = tls.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
sys.stdout.buffer.write(out)
"#
    );
    let mut child = std::process::Command::new(mtls_test_support::require_peer("python3"))
        .current_dir(work.path())
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", mtls_test_support::text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status_of(answer: &str) -> &str {
    answer.split(' ').nth(1).unwrap_or("")
}

#[test]
fn host_headers_are_validated() {
    let work = hostile_pki();
    let locations = r#"
[[server.location]]
path = "/"
return = "301 https://$host$request_uri"
"#;
    let server = work.serve("gw", &server_block("", locations));
    let request =
        |host_lines: &str| format!("GET /x HTTP/1.1\r\n{host_lines}Connection: close\r\n\r\n");
    let ok = raw_tls(&work, server.port, &request("Host: localhost\r\n"));
    assert_eq!(status_of(&ok), "301", "{ok}");
    for bad in [
        "Host: localhost\r\nHost: evil.test\r\n",
        "Host: evil\\.test\r\n",
        "Host: a\"b\r\n",
        "Host: <script>\r\n",
        "Host: a b\r\n",
        "Host: a/b\r\n",
        "Host: localhost:\r\n",
        "Host: localhost:99999\r\n",
        "Host: localhost:8x\r\n",
        "Host: [::1\r\n",
        "Host: [not-v6]\r\n",
        "Host: a..b\r\n",
        "Host: @evil.test\r\n",
        "",
    ] {
        let answer = raw_tls(&work, server.port, &request(bad));
        assert_eq!(status_of(&answer), "400", "{bad:?}: {answer}");
        assert!(!answer.contains("<script>"), "{answer}");
    }
    for good in [
        "Host: LOCALHOST\r\n",
        "Host: localhost:443\r\n",
        "Host: 127.0.0.1\r\n",
        "Host: [::1]:8443\r\n",
        "Host: localhost.\r\n",
    ] {
        let answer = raw_tls(&work, server.port, &request(good));
        assert_eq!(status_of(&answer), "301", "{good:?}: {answer}");
    }
}

#[test]
fn error_pages_escape_what_the_client_sent() {
    let work = hostile_pki();
    let locations = r#"
[[server.location]]
path = "/"
return = "301 https://$host$request_uri"
"#;
    let server = work.serve("gw", &server_block("", locations));
    // `"` is allowed in a request path by the HTTP parser; unescaped in the redirect page's
    // `href="..."` it would open an attribute of the attacker's choosing.
    let answer = raw_tls(
        &work,
        server.port,
        "GET /x\"onmouseover=\"alert(1) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), "301", "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    assert!(!body.contains("\"onmouseover"), "{answer}");
    assert!(body.contains("&quot;onmouseover"), "{answer}");
}

#[test]
fn underscored_and_renamed_identity_headers_never_reach_the_upstream() {
    let work = hostile_pki();
    let (_echo, port) = plain_echo(&work);
    let renamed = format!(
        r#"
[[server.location]]
path = "/"
proxy_pass = "http://127.0.0.1:{port}"
[server.location.header_names]
verify = "X-SSL-Verify"
subject = "X-SSL-Subject"
issuer = "X-SSL-Issuer"
serial = "X-SSL-Serial"
fingerprint = "X-SSL-Fingerprint"
cert = "X-SSL-Cert"
"#
    );
    let server = work.serve("gw", &server_block("", &renamed));
    let forged = [
        "-H",
        "X_Client_Subject: CN=carol",
        "-H",
        "X-Client-Subject: CN=carol",
        "-H",
        "X-Client-Verify: SUCCESS",
        "-H",
        "X-Client-Issuer: CN=mtls CA",
        "-H",
        "X-Client-Serial: 01",
        "-H",
        "X-Client-Fingerprint: 00",
        "-H",
        "X-Client-Cert: x",
        "-H",
        "X-SSL-Subject: CN=carol",
        "-H",
        "X-Forwarded-Client-Cert: Hash=00",
        "-H",
        "My_Header: kept?",
    ];
    let (status, body) = get(&work, &server, "/", &[ALICE, &forged].concat());
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<(String, String)> = echoed["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (name, value) in &names {
        assert!(!name.contains('_'), "{name} reached the upstream");
        assert!(!name.starts_with("x-client-"), "{name}: {value}");
        assert_ne!(name, "x-forwarded-client-cert");
        assert!(!value.contains("carol"), "{name}: {value}");
    }
    let subject: Vec<_> = names.iter().filter(|(n, _)| n == "x-ssl-subject").collect();
    assert_eq!(subject.len(), 1, "{names:?}");
    assert!(subject[0].1.contains("CN=alice"), "{names:?}");

    // `underscores_in_headers = true` lets ordinary underscored names through, never an
    // identity header.
    let server = work.serve(
        "gw2",
        &server_block("underscores_in_headers = true", &renamed),
    );
    let (status, body) = get(&work, &server, "/", &[ALICE, &forged].concat());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"my_header\",\"kept?\""), "{body}");
    assert!(!body.contains("carol"), "{body}");
}

/// A plain-HTTP upstream that reads a request head and answers every connection with the
/// bytes `reply` exactly, then closes: an upstream that misbehaves in a way of the test's
/// choosing. Returns it with its port.
fn scripted_upstream(work: &Work, reply: &[u8]) -> (Server, u16) {
    const SCRIPT: &str = r#"
import socket, sys, threading
REPLY = bytes.fromhex(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(16)
def handle(conn):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            return
        head += chunk
    conn.sendall(REPLY)
    conn.close()
while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"#;
    let port = free_port();
    let hex: String = reply.iter().map(|b| format!("{b:02x}")).collect();
    let upstream = work.spawn_peer(
        "upstream",
        port,
        "python3",
        &["-c", SCRIPT, &port.to_string(), &hex],
    );
    (upstream, port)
}

const FORTY_FIVE: &str = "forty-five bytes of body, all of which count!";

#[test]
fn an_upstream_answer_framed_two_ways_is_not_truncated() {
    let work = hostile_pki();
    // A 3-byte Content-Length beside a chunked body of 45 bytes.
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{FORTY_FIVE}\r\n0\r\n\r\n",
        FORTY_FIVE.len()
    );
    let (_upstream, port) = scripted_upstream(&work, reply.as_bytes());
    let locations =
        format!("[[server.location]]\npath = \"/\"\nproxy_pass = \"http://127.0.0.1:{port}\"\n");
    let server = work.serve("gw", &server_block("", &locations));
    for version in ["--http1.1", "--http2"] {
        let (status, body) = get(&work, &server, "/x", &[version]);
        assert_eq!((status, body.as_str()), (200, FORTY_FIVE), "{version}");
    }
}

#[test]
fn a_malformed_chunked_upload_is_the_clients_fault() {
    let work = hostile_pki();
    let (_echo, port) = plain_echo(&work);
    let locations =
        format!("[[server.location]]\npath = \"/\"\nproxy_pass = \"http://127.0.0.1:{port}\"\n");
    let server = work.serve("gw", &server_block("", &locations));
    let answer = raw_tls(
        &work,
        server.port,
        "POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n5\r\nhello\r\nzz\r\nnot hex\r\n0\r\n\r\n",
    );
    assert_eq!(status_of(&answer), "400", "{answer}");
    let log = server.wait_log("check=client_body_invalid");
    assert!(!log.contains("upstream error"), "{log}");
}

#[test]
fn an_upstream_that_breaks_off_mid_body_is_logged_and_the_client_can_tell() {
    let work = hostile_pki();
    // It promises 1,000 bytes, sends 100 and closes.
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{}",
        "t".repeat(100)
    );
    let (_upstream, port) = scripted_upstream(&work, reply.as_bytes());
    let locations =
        format!("[[server.location]]\npath = \"/\"\nproxy_pass = \"http://127.0.0.1:{port}\"\n");
    let server = work.serve("gw", &server_block("", &locations));
    for version in ["--http1.1", "--http2"] {
        let url = format!("https://localhost:{}/x", server.port);
        let resolve = format!("localhost:{}:127.0.0.1", server.port);
        let (code, out, _) = work.curl(&[
            "--cacert",
            "pki/ca.crt",
            "--resolve",
            &resolve,
            version,
            &url,
        ]);
        // curl sees the answer break off (18: partial file; 92: HTTP/2 stream reset).
        assert!(
            code == 18 || code == 92,
            "{version}: curl exit {code}, {} bytes",
            out.len()
        );
    }
    let log = server.wait_log("check=upstream_truncated");
    assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");
    // The access log says what was really sent, and how it ended, for both protocols.
    let access = server.wait_access("HTTP/2.0\" 200");
    let lines: Vec<&str> = access.lines().filter(|l| l.contains("GET /x ")).collect();
    assert_eq!(lines.len(), 2, "{access}");
    for line in lines {
        assert!(line.contains("\" 200 100 \""), "{line}");
        assert!(line.ends_with(" end=upstream_truncated"), "{line}");
    }
}

#[test]
fn an_h2c_upgrade_is_never_passed_to_the_upstream() {
    let work = hostile_pki();
    let (_echo, port) = plain_echo(&work);
    let locations = proxy_locations(port, "");
    let server = work.serve("gw", &server_block("", &locations));
    // Without a certificate, through the open location: an upstream that speaks h2c would
    // otherwise switch protocols and take requests for any path, unchecked.
    let answer = raw_tls(
        &work,
        server.port,
        "GET /api/x HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n\
         Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    );
    assert_eq!(status_of(&answer), "200", "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    assert!(!body.contains("\"upgrade\""), "{body}");
    assert!(!body.contains("http2-settings"), "{body}");
    // A WebSocket upgrade still goes through.
    let answer = raw_tls(
        &work,
        server.port,
        "GET /api/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assert_eq!(status_of(&answer), "101", "{answer}");
}

#[test]
fn path_parameters_cannot_route_around_a_location() {
    let work = hostile_pki();
    let (_echo, port) = plain_echo(&work);
    let locations = format!(
        "{}\n[[server.location]]\npath = \"/\"\nproxy_pass = \"http://127.0.0.1:{port}\"\n",
        proxy_locations(port, "")
    );
    let server = work.serve("gw", &server_block("", &locations));
    // Tomcat, Jetty and Spring drop `;parameters` from each segment before they route:
    // these are /apiadmin/x to them.
    for path in [
        "/api/..;/apiadmin/x",
        "/api/..;jsessionid=1/apiadmin/x",
        "/apiadmin;x/x",
        "/apiadmin;/x",
        "/.;/apiadmin/x",
    ] {
        let (status, body) = get(&work, &server, path, &[]);
        assert!(status == 400 || status == 403, "{path}: {status} {body}");
        assert!(
            !body.contains("\"path\""),
            "{path} reached the upstream: {body}"
        );
    }
    // Matrix parameters that do not change the location are fine.
    let (status, body) = get(&work, &server, "/api/cars;color=red", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("/api/cars;color=red"), "{body}");
}

#[test]
fn a_request_that_cannot_be_parsed_is_logged_and_counted() {
    let work = hostile_pki();
    let server = work.serve("gw", &server_block("", STATIC_AND_RETURN));
    let answer = raw_tls(
        &work,
        server.port,
        "GET /pub/hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n",
    );
    assert_eq!(status_of(&answer), "400", "{answer}");
    server.wait_log("check=http_parse");
}

#[test]
fn small_proxy_and_variable_fixes_from_the_attack_run() {
    let work = hostile_pki();
    let (_echo, port) = plain_echo(&work);
    let locations = format!(
        "[[server.location]]\npath = \"/r\"\nreturn = \"301 https://$host/x\"\n\
         [[server.location]]\npath = \"/\"\nproxy_pass = \"http://127.0.0.1:{port}\"\n"
    );
    let server = work.serve("gw", &server_block("", &locations));
    // `$host` keeps an IPv6 literal's brackets.
    let answer = raw_tls(
        &work,
        server.port,
        "GET /r HTTP/1.1\r\nHost: [::1]:8443\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.contains("location: https://[::1]/x"), "{answer}");
    // HTTP/1.0 without Host: the upstream still gets one (its own name).
    let answer = raw_tls(&work, server.port, "GET /a HTTP/1.0\r\n\r\n");
    assert!(
        answer.contains(&format!("[\"host\",\"127.0.0.1:{port}\"]")),
        "{answer}"
    );
    // HTTP/2 cookie fields, sent as two fields (curl would join them itself), reach an
    // HTTP/1.1 upstream as one header.
    let script = format!(
        r#"
import socket, ssl
import h2.connection, h2.config, h2.events
ctx = ssl.create_default_context(cafile="pki/ca.crt")
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", {port})), server_hostname="localhost")
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
conn.send_headers(1, [(":method", "GET"), (":path", "/c"), (":scheme", "https"),
                      (":authority", "localhost"), ("cookie", "a=1"), ("cookie", "b=2")],
                  end_stream=True)
s.sendall(conn.data_to_send())
body = b""
done = False
while not done:
    data = s.recv(65536)
    if not data:
        break
    for event in conn.receive_data(data):
        if isinstance(event, h2.events.DataReceived):
            body += event.data
            conn.acknowledge_received_data(len(event.data), event.stream_id)
        if isinstance(event, h2.events.StreamEnded):
            done = True
    s.sendall(conn.data_to_send())
print(body.decode())
"#,
        port = server.port
    );
    let out = mtls_test_support::run_peer("python3", &["-c", &script], work.path());
    let body = mtls_test_support::text(&out);
    assert!(out.status.success(), "{body}");
    assert!(body.contains("[\"cookie\",\"a=1; b=2\"]"), "{body}");
}

#[test]
fn a_certificate_with_two_common_names_matches_no_cn_rule() {
    let work = hostile_pki();
    let openssl = |args: &[&str]| {
        let out = mtls_test_support::run_peer("openssl", args, work.path());
        assert!(out.status.success(), "{}", mtls_test_support::text(&out));
    };
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "two.key",
        "-subj",
        "/CN=bob/CN=eve",
        "-out",
        "two.csr",
    ]);
    // Extensions make it a v3 certificate, which rustls requires.
    work.write(
        "ext.cnf",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    openssl(&[
        "x509",
        "-extfile",
        "ext.cnf",
        "-req",
        "-in",
        "two.csr",
        "-CA",
        "pki/ca.crt",
        "-CAkey",
        "pki/ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "two.crt",
    ]);
    let server = work.serve("gw", &server_block("", STATIC_AND_RETURN));
    // `allow = { cn = "bob" }` on /allowed/: bob is one of the two names, but not the name.
    let (status, body) = get(
        &work,
        &server,
        "/allowed/secret.txt",
        &["--cert", "two.crt", "--key", "two.key"],
    );
    assert_eq!(status, 403, "{body}");
}

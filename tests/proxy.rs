//! `proxy_pass` as a black box: client --mTLS--> `mtls serve` --mTLS--> upstream, with our
//! `mtls echo-server` and nginx as upstreams, curl and Python as clients. The name and
//! certificate cases are nginx-tests' proxy_ssl_name.t, proxy_ssl_verify.t and
//! proxy_ssl_certificate.t, ported.

use serde_json::Value;

use crate::util::{Server, Work, free_port, https_get, localhost_pki};

/// The CA, the gateway's own server certificate (localhost), a client `alice`, the
/// gateway's client certificate `gateway`, and the backend's server certificate.
fn proxy_pki() -> Work {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice", "--ou", "Payments"]);
    work.ok(&["pki", "issue", "client", "gateway"]);
    work.ok(&[
        "pki",
        "issue",
        "server",
        "backend",
        "--san",
        "backend.test",
        "--san",
        "localhost",
        "--san",
        "127.0.0.1",
        "--san",
        "::1",
    ]);
    work
}

/// `mtls echo-server` on `addr` with the backend certificate, asking for client
/// certificates from our CA (optional).
fn echo(work: &Work, name: &str, addr: &str, cert: &str) -> Server {
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let cert_file = format!("pki/certs/{cert}.chain.pem");
    let key_file = format!("pki/private/{cert}.key");
    work.serve_args(
        name,
        port,
        &[
            "echo-server",
            "--listen",
            addr,
            "--cert",
            &cert_file,
            "--key",
            &key_file,
            "--client-ca",
            "pki/ca.crt",
        ],
    )
}

/// A gateway on {port} requiring client certificates, with `locations`.
fn gateway(work: &Work, locations: &str) -> Server {
    work.serve(
        "gw",
        &format!(
            r#"
[[server]]
listen = ["127.0.0.1:{{port}}"]
server_name = ["localhost"]
[server.tls]
certificate = "pki/certs/localhost.chain.pem"
key = "pki/private/localhost.key"
client_ca = "pki/ca.crt"
verify_client = "optional"
{locations}
"#
        ),
    )
}

/// proxy_tls lines presenting the gateway's certificate and trusting our CA.
const GATEWAY_TLS: &str = r#"certificate = "pki/certs/gateway.crt"
key = "pki/private/gateway.key"
trusted_ca = "pki/ca.crt""#;

fn location(path: &str, target: &str, tls: &str) -> String {
    let tls = if tls.is_empty() {
        String::new()
    } else {
        format!("[server.location.proxy_tls]\n{tls}\n")
    };
    format!("\n[[server.location]]\npath = \"{path}\"\nproxy_pass = \"{target}\"\n{tls}")
}

const ALICE: &[&str] = &[
    "--cert",
    "pki/certs/alice.crt",
    "--key",
    "pki/private/alice.key",
];

/// GET (or more, with `extra`) through the gateway; (status, body).
fn fetch(work: &Work, gw: &Server, path: &str, extra: &[&str]) -> (u16, String) {
    https_get(work, gw, path, extra)
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Every value of header `name` in the echo's JSON.
fn header_values(echoed: &Value, name: &str) -> Vec<String> {
    echoed["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0].as_str() == Some(name))
        .map(|pair| pair[1].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_seed_chain_client_gateway_backend_with_identity_headers() {
    let work = proxy_pki();
    let port = free_port();
    let _echo = echo(&work, "echo", &format!("127.0.0.1:{port}"), "backend");
    let gw = gateway(
        &work,
        &location("/", &format!("https://127.0.0.1:{port}"), GATEWAY_TLS),
    );
    let spoof = [
        "-H",
        "X-Client-Subject: CN=admin",
        "-H",
        "X-Client-Verify: SUCCESS",
        "-H",
        "X-Forwarded-Client-Cert: Hash=00",
        "-H",
        "X-Forwarded-For: 10.9.9.9",
    ];
    let (status, body) = fetch(&work, &gw, "/test_url?a=1", &[ALICE, &spoof].concat());
    assert_eq!(status, 200, "{body}");
    let echoed = json(&body);
    assert_eq!(echoed["path"], "/test_url");
    assert_eq!(echoed["query"], "a=1");
    assert_eq!(
        echoed["version"], "HTTP/1.1",
        "HTTP/2 from curl, HTTP/1.1 upstream"
    );
    // The backend saw the gateway's certificate, verified.
    assert_eq!(echoed["client_certificate"]["verify"], "SUCCESS");
    assert!(
        echoed["client_certificate"]["subject"]
            .as_str()
            .unwrap()
            .contains("CN=gateway")
    );
    // No SNI for an IP literal, as nginx.
    assert!(echoed["tls"]["sni"].is_null(), "{body}");
    // Identity headers are the gateway's, never the client's.
    let subject = header_values(&echoed, "x-client-subject");
    assert_eq!(subject.len(), 1, "{subject:?}");
    assert!(
        subject[0].contains("CN=alice") && subject[0].contains("OU=Payments"),
        "{subject:?}"
    );
    assert_eq!(header_values(&echoed, "x-client-verify"), ["SUCCESS"]);
    assert!(header_values(&echoed, "x-forwarded-client-cert").is_empty());
    let cert = header_values(&echoed, "x-client-cert");
    assert!(
        cert[0].starts_with("-----BEGIN%20CERTIFICATE-----%0A"),
        "{cert:?}"
    );
    assert_eq!(header_values(&echoed, "x-client-serial").len(), 1);
    assert_eq!(header_values(&echoed, "x-client-fingerprint")[0].len(), 64);
    // Forwarding headers: the client's X-Forwarded-For is kept and extended.
    assert_eq!(
        header_values(&echoed, "x-forwarded-for"),
        ["10.9.9.9, 127.0.0.1"]
    );
    assert_eq!(header_values(&echoed, "x-forwarded-proto"), ["https"]);
    assert_eq!(
        header_values(&echoed, "forwarded"),
        [format!(
            "for=127.0.0.1;proto=https;host=\"localhost:{}\"",
            gw.port
        )]
    );
    assert_eq!(
        header_values(&echoed, "host"),
        [format!("localhost:{}", gw.port)]
    );
    // Without a client certificate (verify_client optional): NONE, no identity.
    let (status, body) = fetch(&work, &gw, "/", &["-H", "X-Client-Subject: CN=admin"]);
    assert_eq!(status, 200);
    let echoed = json(&body);
    assert_eq!(header_values(&echoed, "x-client-verify"), ["NONE"]);
    assert!(
        header_values(&echoed, "x-client-subject").is_empty(),
        "spoofed header dropped"
    );
}

#[test]
fn upstream_names_are_checked_like_nginx_proxy_ssl_verify() {
    let work = proxy_pki();
    work.ok(&["pki", "issue", "server", "wild", "--san", "*.wild.test"]);
    let (cert, key) = mtls_test_support::forge::server_cn_only(
        &work.join("pki/ca.crt"),
        &work.join("pki/ca.key"),
        "cnonly.test",
    );
    work.write("pki/certs/cnonly.chain.pem", cert);
    work.write("pki/private/cnonly.key", key);
    work.ok(&["pki", "--dir", "other", "init", "--cn", "Other CA"]);

    let backend = free_port();
    let wild = free_port();
    let cn_only = free_port();
    let v6 = free_port();
    let _e1 = echo(&work, "e1", &format!("127.0.0.1:{backend}"), "backend");
    let _e2 = echo(&work, "e2", &format!("127.0.0.1:{wild}"), "wild");
    let _e3 = echo(&work, "e3", &format!("127.0.0.1:{cn_only}"), "cnonly");
    let _e4 = echo(&work, "e4", &format!("[::1]:{v6}"), "backend");
    let named = |name: &str| format!("{GATEWAY_TLS}\nserver_name = \"{name}\"");
    let locations = [
        location(
            "/san",
            &format!("https://127.0.0.1:{backend}"),
            &named("backend.test"),
        ),
        location(
            "/wild",
            &format!("https://127.0.0.1:{wild}"),
            &named("x.wild.test"),
        ),
        location(
            "/mismatch",
            &format!("https://127.0.0.1:{backend}"),
            &named("other.test"),
        ),
        location(
            "/cn-only",
            &format!("https://127.0.0.1:{cn_only}"),
            &named("cnonly.test"),
        ),
        location(
            "/cn-mismatch",
            &format!("https://127.0.0.1:{cn_only}"),
            &named("wrong.test"),
        ),
        location(
            "/untrusted",
            &format!("https://127.0.0.1:{backend}"),
            "trusted_ca = \"other/ca.crt\"",
        ),
        location(
            "/by-host",
            &format!("https://localhost:{backend}"),
            GATEWAY_TLS,
        ),
        location(
            "/no-sni",
            &format!("https://localhost:{backend}"),
            &format!("{GATEWAY_TLS}\nsni = false"),
        ),
        location("/ipv6", &format!("https://[::1]:{v6}"), GATEWAY_TLS),
    ]
    .concat();
    let gw = gateway(&work, &locations);
    let sni = |path: &str| {
        let (status, body) = fetch(&work, &gw, path, ALICE);
        assert_eq!(status, 200, "{path}: {body}");
        json(&body)["tls"]["sni"].clone()
    };
    assert_eq!(sni("/san"), "backend.test", "the configured name is sent");
    assert_eq!(sni("/wild"), "x.wild.test");
    assert_eq!(
        sni("/cn-only"),
        "cnonly.test",
        "CN-only certificates match by CN"
    );
    assert_eq!(sni("/by-host"), "localhost", "the host without port");
    assert!(sni("/no-sni").is_null());
    assert!(sni("/ipv6").is_null(), "no SNI for an IPv6 literal");
    for path in ["/mismatch", "/cn-mismatch", "/untrusted"] {
        let (status, body) = fetch(&work, &gw, path, ALICE);
        assert_eq!(status, 502, "{path}: {body}");
    }
    let log = gw.wait_log("upstream certificate has no name other.test");
    assert!(log.contains("DNS:backend.test"), "the names it has: {log}");
    assert!(log.contains("wrong.test"), "{log}");
    assert!(
        log.contains("check=unknown_issuer") || log.contains("unknown issuer"),
        "{log}"
    );
}

#[test]
fn the_client_certificate_to_the_upstream_can_be_left_out_per_location() {
    let work = proxy_pki();
    let port = free_port();
    let _echo = echo(&work, "echo", &format!("127.0.0.1:{port}"), "backend");
    let locations = [
        location("/with/", &format!("https://127.0.0.1:{port}"), GATEWAY_TLS),
        location(
            "/without/",
            &format!("https://127.0.0.1:{port}"),
            "trusted_ca = \"pki/ca.crt\"",
        ),
    ]
    .concat();
    let gw = gateway(&work, &locations);
    let (_, body) = fetch(&work, &gw, "/with/", ALICE);
    assert_eq!(json(&body)["client_certificate"]["verify"], "SUCCESS");
    let (_, body) = fetch(&work, &gw, "/without/", ALICE);
    assert_eq!(json(&body)["client_certificate"]["verify"], "NONE");
}

#[test]
fn connections_and_tls_sessions_to_the_upstream_are_reused() {
    let work = proxy_pki();
    let port = free_port();
    let _echo = echo(&work, "echo", &format!("127.0.0.1:{port}"), "backend");
    let gw = gateway(
        &work,
        &location("/", &format!("https://127.0.0.1:{port}"), GATEWAY_TLS),
    );
    let (_, first) = fetch(&work, &gw, "/one", ALICE);
    let (_, second) = fetch(&work, &gw, "/two", ALICE);
    let (first, second) = (json(&first), json(&second));
    assert_eq!(
        first["connection"]["id"], second["connection"]["id"],
        "pooled connection"
    );
    assert_eq!(second["connection"]["request"], 2);
    assert_eq!(first["tls"]["resumed"], false);
    // The upstream closes the connection: the next request opens a new one, resuming the
    // TLS session.
    let (status, _) = fetch(&work, &gw, "/close", ALICE);
    assert_eq!(status, 200);
    let (_, third) = fetch(&work, &gw, "/three", ALICE);
    let third = json(&third);
    assert_ne!(
        third["connection"]["id"], second["connection"]["id"],
        "a new connection"
    );
    assert_eq!(third["tls"]["resumed"], true, "session resumed: {third}");
}

#[test]
fn slow_stalled_and_unreachable_upstreams_give_504_and_502() {
    use std::io::Write;
    let work = proxy_pki();
    let port = free_port();
    let _echo = echo(&work, "echo", &format!("127.0.0.1:{port}"), "backend");
    // An upstream that accepts TCP and never speaks: the TLS handshake stalls.
    let stall = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stall_port = stall.local_addr().unwrap().port();
    // An upstream whose accept queue is full: SYNs are dropped, connect never completes.
    let full = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    full.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    full.listen(0).unwrap();
    let full_port = full.local_addr().unwrap().as_socket().unwrap().port();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(
            &format!("127.0.0.1:{full_port}").parse().unwrap(),
            std::time::Duration::from_millis(200),
        ) {
            fillers.push(s);
        }
    }
    let dead = free_port();
    // An upstream that accepts and resets every connection.
    let reset = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let reset_port = reset.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in reset.incoming().flatten() {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(std::time::Duration::ZERO));
            drop(stream);
        }
    });
    let timeouts = "connect_timeout = \"1s\"\nread_timeout = \"1s\"\n";
    let locations = [
        location(
            "/slow/",
            &format!("https://127.0.0.1:{port}/sleep/3000"),
            GATEWAY_TLS,
        )
        .replace("proxy_pass", &format!("{timeouts}proxy_pass")),
        location(
            "/stall/",
            &format!("https://127.0.0.1:{stall_port}"),
            GATEWAY_TLS,
        )
        .replace("proxy_pass", &format!("{timeouts}proxy_pass")),
        location(
            "/full/",
            &format!("https://127.0.0.1:{full_port}"),
            GATEWAY_TLS,
        )
        .replace("proxy_pass", &format!("{timeouts}proxy_pass")),
        location("/dead/", &format!("https://127.0.0.1:{dead}"), GATEWAY_TLS),
        location(
            "/reset/",
            &format!("https://127.0.0.1:{reset_port}"),
            GATEWAY_TLS,
        ),
    ]
    .concat();
    let gw = gateway(&work, &locations);
    let started = std::time::Instant::now();
    assert_eq!(fetch(&work, &gw, "/slow/", ALICE).0, 504);
    assert_eq!(fetch(&work, &gw, "/stall/", ALICE).0, 504);
    assert_eq!(fetch(&work, &gw, "/full/", ALICE).0, 504);
    assert_eq!(fetch(&work, &gw, "/dead/", ALICE).0, 502);
    assert_eq!(fetch(&work, &gw, "/reset/", ALICE).0, 502);
    assert!(started.elapsed() < std::time::Duration::from_secs(12));
    let log = gw.wait_log("check=connect");
    assert!(log.contains("check=read_timeout"), "{log}");
    assert!(log.contains("check=connect_timeout"), "{log}");
    assert!(
        log.contains(&format!("127.0.0.1:{dead}")),
        "names the upstream: {log}"
    );
    drop(fillers);
    let _ = std::io::stdout().flush();
    drop(stall);
}

fn fnv1a(data: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[test]
fn big_bodies_stream_both_ways_intact() {
    let work = proxy_pki();
    let port = free_port();
    let _echo = echo(&work, "echo", &format!("127.0.0.1:{port}"), "backend");
    // No body limit here (the default is nginx's 1 MB).
    let gw = gateway(
        &work,
        &location("/", &format!("https://127.0.0.1:{port}"), GATEWAY_TLS).replacen(
            "proxy_pass",
            "client_max_body_size = 0\nproxy_pass",
            1,
        ),
    );
    for size in [720_000usize, 100 * 1024 * 1024] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 253) as u8).collect();
        work.write("upload.bin", &data);
        let (status, body) = fetch(
            &work,
            &gw,
            "/upload",
            &[ALICE, &["--data-binary", "@upload.bin"]].concat(),
        );
        assert_eq!(status, 200, "{size}: {body}");
        let echoed = json(&body);
        assert_eq!(echoed["body_bytes"], size, "{size}");
        assert_eq!(echoed["body_fnv1a"], fnv1a(&data), "{size} intact");
    }
    let (status, _) = fetch(
        &work,
        &gw,
        "/bytes/10000000",
        &[ALICE, &["-o", "down.bin"]].concat(),
    );
    assert_eq!(status, 200);
    let down = work.read("down.bin");
    assert_eq!(down.len(), 10_000_000);
    assert!(
        down.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8),
        "download intact"
    );
}

#[test]
fn websocket_upgrades_pass_through() {
    let work = proxy_pki();
    let port = free_port();
    let _echo = echo(&work, "echo", &format!("127.0.0.1:{port}"), "backend");
    let gw = gateway(
        &work,
        &location("/", &format!("https://127.0.0.1:{port}"), GATEWAY_TLS),
    );
    let script = format!(
        r#"
import socket, ssl
ctx = ssl.create_default_context(cafile="pki/ca.crt")
ctx.load_cert_chain("pki/certs/alice.crt", "pki/private/alice.key")
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", {port})), server_hostname="localhost")
s.sendall(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    chunk = s.recv(4096)
    if not chunk: break
    head += chunk
print(head.split(b"\r\n")[0].decode())
s.sendall(b"ping through the tunnel")
got = b""
while len(got) < 23:
    chunk = s.recv(4096)
    if not chunk: break
    got += chunk
print(got.decode())
"#,
        port = gw.port
    );
    let out = mtls_test_support::run_peer("python3", &["-c", &script], work.path());
    let text = mtls_test_support::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.contains("ping through the tunnel"), "{text}");
}

#[test]
fn upstream_groups_skip_a_dead_server() {
    let work = proxy_pki();
    let port = free_port();
    let dead = free_port();
    let _echo = echo(&work, "echo", &format!("127.0.0.1:{port}"), "backend");
    let conf = format!(
        r#"
[[upstream]]
name = "backends"
servers = ["127.0.0.1:{dead}", "127.0.0.1:{port}"]
fail_timeout = "30s"
[upstream.tls]
{GATEWAY_TLS}
server_name = "backend.test"
"#
    );
    let gw = work.serve(
        "gw",
        &format!(
            "{conf}\n[[server]]\nlisten = [\"127.0.0.1:{{port}}\"]\n[server.tls]\n\
             certificate = \"pki/certs/localhost.chain.pem\"\nkey = \"pki/private/localhost.key\"\n\
             [[server.location]]\npath = \"/\"\nproxy_pass = \"https://backends\"\n"
        ),
    );
    for _ in 0..6 {
        let (status, body) = fetch(&work, &gw, "/", &[]);
        assert_eq!(status, 200, "GETs are retried on the next server: {body}");
    }
    let log = gw.wait_log(&format!("127.0.0.1:{dead}"));
    assert_eq!(
        log.matches(&format!("connect to 127.0.0.1:{dead} failed"))
            .count(),
        1,
        "tried once, then skipped for fail_timeout: {log}"
    );
}

#[test]
fn nginx_upstream_sees_the_gateway_certificate() {
    let work = proxy_pki();
    work.ok(&["pki", "--dir", "other", "init", "--cn", "Other CA"]);
    work.ok(&["pki", "--dir", "other", "issue", "client", "impostor"]);
    let nginx_port = free_port();
    let _nginx = work.nginx(
        nginx_port,
        &format!(
            r#"
    server {{
        listen 127.0.0.1:{nginx_port} ssl;
        ssl_certificate {{dir}}/pki/certs/backend.chain.pem;
        ssl_certificate_key {{dir}}/pki/private/backend.key;
        ssl_client_certificate {{dir}}/pki/ca.crt;
        ssl_verify_client on;
        location / {{
            default_type text/plain;
            return 200 "verify=$ssl_client_verify subject=$ssl_client_s_dn xcs=$http_x_client_subject\n";
        }}
    }}
"#
        ),
    );
    let locations = [
        location("/", &format!("https://127.0.0.1:{nginx_port}"), GATEWAY_TLS),
        location(
            "/impostor/",
            &format!("https://127.0.0.1:{nginx_port}"),
            "certificate = \"other/certs/impostor.crt\"\nkey = \"other/private/impostor.key\"\ntrusted_ca = \"pki/ca.crt\"",
        ),
    ]
    .concat();
    let gw = gateway(&work, &locations);
    let (status, body) = fetch(&work, &gw, "/", ALICE);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("verify=SUCCESS subject=CN=gateway"),
        "{body}"
    );
    assert!(body.contains("xcs=") && body.contains("CN=alice"), "{body}");
    let (status, body) = fetch(&work, &gw, "/impostor/", ALICE);
    assert_eq!(status, 502, "nginx refused our certificate: {body}");
    let log = gw.wait_log("refused our client certificate");
    assert!(log.contains("127.0.0.1"), "{log}");
}

#[test]
fn the_seed_httplib2_client_gets_the_backend_answer() {
    let work = proxy_pki();
    let port = free_port();
    let _echo = echo(&work, "echo", &format!("127.0.0.1:{port}"), "backend");
    let gw = gateway(
        &work,
        &location("/", &format!("https://127.0.0.1:{port}"), GATEWAY_TLS),
    );
    // Seed 001's test script, as written there (Python 3 print).
    let script = format!(
        r#"
import httplib2
ca_cert = 'pki/ca.crt'
client_key = 'pki/private/alice.key'
client_cert = 'pki/certs/alice.crt'
full_url = 'https://localhost:{port}/test_url'
headers = {{ 'content-type': 'application/json', 'accept': 'application/json' }}
http = httplib2.Http(timeout=120, ca_certs=ca_cert, disable_ssl_certificate_validation=False)
http.follow_all_redirects = True
http.add_certificate(client_key, client_cert, '')
resp, resp_content = http.request(full_url, method='GET', headers=headers)
print(resp.status)
print(resp_content.decode())
"#,
        port = gw.port
    );
    let out = mtls_test_support::run_peer("python3", &["-c", &script], work.path());
    let text = mtls_test_support::text(&out);
    assert!(out.status.success(), "{text}");
    let (status, body) = text.split_once('\n').unwrap();
    assert_eq!(status, "200", "{text}");
    let echoed = json(body.trim());
    assert_eq!(echoed["path"], "/test_url");
    assert_eq!(header_values(&echoed, "content-type"), ["application/json"]);
    assert!(header_values(&echoed, "x-client-subject")[0].contains("CN=alice"));
}

#[test]
fn an_upstream_that_refuses_our_certificate_gives_502_with_the_alert() {
    let work = proxy_pki();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _echo = work.serve_args(
        "echo",
        port,
        &[
            "echo-server",
            "--listen",
            &addr,
            "--cert",
            "pki/certs/backend.chain.pem",
            "--key",
            "pki/private/backend.key",
            "--client-ca",
            "pki/ca.crt",
            "--verify-client",
            "on",
        ],
    );
    let gw = gateway(
        &work,
        &location(
            "/",
            &format!("https://127.0.0.1:{port}"),
            "trusted_ca = \"pki/ca.crt\"",
        ),
    );
    let (status, body) = fetch(&work, &gw, "/", ALICE);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("refused our client certificate"), "{body}");
    let log = gw.wait_log("check=refused_our_certificate");
    assert!(
        log.contains("certificate_required"),
        "names the alert: {log}"
    );
}

#[test]
fn plain_http_upstreams_hop_by_hop_headers_xfcc_and_renamed_headers() {
    let work = proxy_pki();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _echo = work.serve_args("echo", port, &["echo-server", "--listen", &addr]);
    let gw = gateway(
        &work,
        &format!(
            "{}xfcc = true\n[server.location.header_names]\nsubject = \"X-SSL-Subject\"\n",
            location("/api/", &format!("http://127.0.0.1:{port}/v1/"), "")
        ),
    );
    let hop = [
        "--http1.1",
        "-H",
        "Connection: keep-alive, X-Secret",
        "-H",
        "X-Secret: hop",
        "-H",
        "Keep-Alive: timeout=5",
        "-H",
        "X-SSL-Subject: CN=spoofed",
        "-H",
        "TE: trailers",
    ];
    let (status, body) = fetch(&work, &gw, "/api/users?id=7", &[ALICE, &hop].concat());
    assert_eq!(status, 200, "{body}");
    let echoed = json(&body);
    assert_eq!(
        echoed["path"], "/v1/users",
        "the location prefix is replaced, as nginx"
    );
    assert_eq!(echoed["query"], "id=7");
    assert!(echoed["tls"].is_null(), "plain HTTP upstream");
    for gone in ["x-secret", "keep-alive", "te", "x-client-subject"] {
        assert!(
            header_values(&echoed, gone).is_empty(),
            "{gone} must not be forwarded: {body}"
        );
    }
    let subject = header_values(&echoed, "x-ssl-subject");
    assert_eq!(subject.len(), 1, "{subject:?}");
    assert!(subject[0].contains("CN=alice"), "{subject:?}");
    let xfcc = header_values(&echoed, "x-forwarded-client-cert");
    assert!(
        xfcc[0].starts_with("Hash=") && xfcc[0].contains("Subject=\""),
        "{xfcc:?}"
    );
}

/// A Python TLS upstream (the backend certificate) on `port`: `/stall` reads the request
/// head and then nothing more; anything else gets a response head of ~20 KB.
const MISBEHAVING_UPSTREAM: &str = r#"
import socket, ssl, sys, threading, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("pki/certs/backend.chain.pem", "pki/private/backend.key")
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(16)

def handle(conn):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = tls.recv(4096)
            if not chunk:
                return
            head += chunk
        if head.startswith(b"POST /stall"):
            time.sleep(60)
            return
        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\nok")
        time.sleep(5)
    except Exception:
        pass

while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"#;

#[test]
fn send_timeout_and_max_header_size_guard_against_the_upstream() {
    let work = proxy_pki();
    let port = free_port();
    let _upstream = work.spawn_peer(
        "upstream",
        port,
        "python3",
        &["-c", MISBEHAVING_UPSTREAM, &port.to_string()],
    );
    let limits = "send_timeout = \"1s\"\nmax_header_size = \"8k\"\nclient_max_body_size = 0\n";
    let gw = gateway(
        &work,
        &format!(
            "{}{limits}[server.location.proxy_tls]\n{GATEWAY_TLS}\n",
            location("/", &format!("https://127.0.0.1:{port}"), "")
        ),
    );
    // An upstream that stops reading our request: 504 once a write has made no
    // progress for send_timeout, not a hang.
    work.write("big.bin", vec![b'x'; 32 << 20]);
    let started = std::time::Instant::now();
    let (status, body) = fetch(
        &work,
        &gw,
        "/stall",
        &[ALICE, &["--http1.1", "--data-binary", "@big.bin"]].concat(),
    );
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("send_timeout"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    gw.wait_log("check=send_timeout");
    // Response headers larger than max_header_size: 502 naming the limit.
    let (status, body) = fetch(&work, &gw, "/big", ALICE);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("max_header_size"), "{body}");
    gw.wait_log("check=max_header_size");
}

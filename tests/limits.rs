//! Deadlines and bounds, against the running binary: what a slow, silent or greedy peer can
//! hold, and signals that must not end the gateway.

use crate::util::{Server, Work, free_port, gateway_config, https_get, localhost_pki, plain_echo};

/// The gateway's PKI and a client `alice`.
fn limits_pki() -> Work {
    let work = localhost_pki();
    work.ok(&["pki", "issue", "client", "alice"]);
    work
}

fn tls_server(top: &str, server_keys: &str, locations: &str) -> String {
    gateway_config(top, server_keys, locations)
}

const HELLO: &str = r#"
[[server.location]]
path = "/"
return = "200 hello"
"#;

fn get(work: &Work, server: &Server, path: &str, extra: &[&str]) -> (u16, String) {
    https_get(work, server, path, extra)
}

fn signal(server: &Server, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sighup_reloads_and_the_gateway_keeps_serving() {
    let work = limits_pki();
    let mut server = work.serve("gw", &tls_server("", "", HELLO));
    assert_eq!(get(&work, &server, "/", &[]), (200, "hello".to_owned()));
    signal(&server, "HUP");
    server.wait_log("reloaded (SIGHUP)");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "SIGHUP ended the gateway:\n{}",
        server.log()
    );
    assert_eq!(get(&work, &server, "/", &[]), (200, "hello".to_owned()));
    signal(&server, "HUP");
    assert_eq!(get(&work, &server, "/", &[]), (200, "hello".to_owned()));
    assert!(server.terminate().success());
}

/// Established TCP connections from this machine to 127.0.0.1:`port`, read from
/// /proc/net/tcp (state 01, remote address 0100007F:PORT).
fn established_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[2] == remote && fields[3] == "01"
        })
        .count()
}

#[test]
fn idle_upstream_connections_are_closed_after_keepalive_timeout() {
    let work = limits_pki();
    let (_echo, port) = plain_echo(&work);
    let config = tls_server(
        &format!(
            "[[upstream]]\nname = \"backend\"\nservers = [\"127.0.0.1:{port}\"]\n\
             keepalive_timeout = \"1s\"\n"
        ),
        "",
        "[[server.location]]\npath = \"/\"\nproxy_pass = \"http://backend\"\n",
    );
    let server = work.serve("gw", &config);
    // A burst of parallel requests leaves several idle upstream connections in the pool.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let (status, body) = get(&work, &server, "/sleep/300", &[]);
                assert_eq!(status, 200, "{body}");
            });
        }
    });
    let pooled = established_to(port);
    assert!(pooled >= 2, "{pooled} pooled upstream connections");
    // Nothing more is sent: the reaper alone must close them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while established_to(port) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} upstream connections still open 5 s after a 1 s keepalive_timeout",
            established_to(port)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // And the pool still works afterwards.
    let (status, _) = get(&work, &server, "/x", &[]);
    assert_eq!(status, 200);
}

/// `mtls serve -c NAME.toml` under `ulimit -n NOFILE` (soft and hard), through bash.
fn serve_with_nofile(work: &Work, name: &str, config: &str, nofile: u32) -> Server {
    let port = free_port();
    work.write(
        &format!("{name}.toml"),
        config.replace("{port}", &port.to_string()),
    );
    let mtls = assert_cmd::cargo::cargo_bin("mtls");
    let script = format!(
        "ulimit -n {nofile} && exec '{}' serve -c {name}.toml --handshake-timeout 2s",
        mtls.display()
    );
    work.spawn_peer(name, port, "bash", &["-c", &script])
}

/// Open `n` TCP connections that never send a byte (the kernel completes them from the
/// listen backlog even while the gateway does not accept).
fn silent_connections(port: u16, n: usize) -> Vec<std::net::TcpStream> {
    (0..n)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect()
}

#[test]
fn more_silent_sockets_than_file_descriptors_neither_lock_out_clients_nor_flood_the_log() {
    let work = limits_pki();
    let server = serve_with_nofile(&work, "gw", &tls_server("", "", HELLO), 128);
    let started = std::time::Instant::now();
    let silent = silent_connections(server.port, 200);
    assert!(silent.len() > 128, "only {} connections", silent.len());
    // Served once the silent connections ahead of it reach the handshake timeout (2 s) and
    // free their slots.
    let (status, body) = get(&work, &server, "/", &["--max-time", "40"]);
    assert_eq!((status, body.as_str()), (200, "hello"));
    let elapsed = started.elapsed().as_secs() as usize;
    drop(silent);
    let log = server.log();
    let emfile = log.matches("Too many open files").count();
    assert!(
        emfile <= elapsed + 2,
        "{emfile} EMFILE lines in {elapsed} s:\n{log}"
    );
    let cap = log.matches("max_connections").count();
    assert!(cap <= elapsed + 2, "{cap} cap lines in {elapsed} s:\n{log}");
}

#[test]
fn max_connections_stops_accepting_until_a_slot_frees() {
    let work = limits_pki();
    let server = work.serve(
        "gw",
        &tls_server(
            "max_connections = 4\nmetrics = \"127.0.0.1:{metrics_port}\"\n",
            "",
            HELLO,
        ),
    );
    let silent = silent_connections(server.port, 4);
    // Give the gateway time to accept all four.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let (status, _) = get(&work, &server, "/", &["--max-time", "20"]);
    assert_eq!(status, 200);
    // It waited for the handshake timeout (2 s) to free a slot.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1500),
        "served after {:?}, before any slot was free",
        started.elapsed()
    );
    drop(silent);
    server.wait_log("max_connections (4) reached");
    let metrics = work.curl(&[
        "-s",
        &format!("http://127.0.0.1:{}/metrics", metrics_port(&work)),
    ]);
    let reached: u64 = metrics
        .1
        .lines()
        .find_map(|l| l.strip_prefix("mtls_connections_cap_reached_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cap counter:\n{}", metrics.1));
    assert!(reached >= 1, "{}", metrics.1);
}

fn metrics_port(work: &Work) -> String {
    String::from_utf8(work.read("gw.metrics_port")).unwrap()
}

/// `curl` sending `body_len` bytes to `path` (chunked when asked): the status.
fn post(
    work: &Work,
    server: &Server,
    path: &str,
    body_len: usize,
    extra: &[&str],
) -> (u16, String) {
    let file = format!("body-{body_len}");
    work.write(&file, vec![b'x'; body_len]);
    let data = format!("@{file}");
    let mut args = vec![
        "--data-binary",
        &data,
        "-H",
        "Content-Type: application/octet-stream",
    ];
    args.extend_from_slice(extra);
    get(work, server, path, &args)
}

#[test]
fn client_max_body_size_answers_413_per_server_and_location() {
    let work = limits_pki();
    let (_echo, port) = plain_echo(&work);
    std::fs::create_dir_all(work.join("www/static")).unwrap();
    work.write("www/static/a.txt", "a");
    let locations = format!(
        r#"
[[server.location]]
path = "/"
proxy_pass = "http://127.0.0.1:{port}"

[[server.location]]
path = "/small/"
proxy_pass = "http://127.0.0.1:{port}"
client_max_body_size = "1k"

[[server.location]]
path = "/big/"
proxy_pass = "http://127.0.0.1:{port}"
client_max_body_size = 0

[[server.location]]
path = "/static/"
root = "www"
client_max_body_size = "1k"
"#
    );
    let server = work.serve("gw", &tls_server("", "", &locations));
    // The default is nginx's 1 MB.
    assert_eq!(post(&work, &server, "/x", 1_500_000, &[]).0, 413);
    let (status, body) = post(&work, &server, "/x", 900_000, &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"body_bytes\":900000"), "{body}");
    // Per location, with a length announced or not, over HTTP/1.1 and HTTP/2.
    assert_eq!(post(&work, &server, "/small/x", 512, &[]).0, 200);
    for extra in [
        &["--http1.1"][..],
        &["--http1.1", "-H", "Transfer-Encoding: chunked"],
        &["--http2"],
        &["--http2", "-H", "Transfer-Encoding: chunked"],
    ] {
        let (status, body) = post(&work, &server, "/small/x", 4096, extra);
        assert_eq!(status, 413, "{extra:?}: {body}");
    }
    assert_eq!(post(&work, &server, "/static/a.txt", 2048, &[]).0, 413);
    // `0`: no limit.
    let (status, body) = post(&work, &server, "/big/x", 3_000_000, &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"body_bytes\":3000000"), "{body}");
    server.wait_log("check=client_max_body_size");
}

#[test]
fn a_request_head_over_large_client_header_buffers_is_refused() {
    let work = limits_pki();
    let server = work.serve(
        "gw",
        &tls_server("", "large_client_header_buffers = \"2 4k\"", HELLO),
    );
    let big = format!("X-Big: {}", "y".repeat(10_000));
    let (status, _) = get(&work, &server, "/", &["--http1.1", "-H", &big]);
    assert!(
        status == 431 || status == 400,
        "{status} for {} bytes",
        big.len()
    );
    let fits = format!("X-Fits: {}", "y".repeat(3_000));
    assert_eq!(get(&work, &server, "/", &["--http1.1", "-H", &fits]).0, 200);
    // The default is nginx's 4 x 8k.
    let server = work.serve("gw2", &tls_server("", "", HELLO));
    let huge = format!("X-Huge: {}", "y".repeat(40_000));
    let (status, _) = get(&work, &server, "/", &["--http1.1", "-H", &huge]);
    assert!(status == 431 || status == 400, "{status}");
    assert_eq!(get(&work, &server, "/", &["--http1.1", "-H", &big]).0, 200);
}

/// Run a Python client against the gateway on `port`; its stdout lines.
fn python(work: &Work, body: &str) -> String {
    let script = format!(
        r#"
import socket, ssl, sys, time
def tls(port, alpn=None):
    ctx = ssl.create_default_context(cafile="pki/ca.crt")
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
def closed_within(sock, seconds):
    """Seconds until the peer closed (EOF or reset), or None if still open after `seconds`."""
    start = time.time()
    sock.settimeout(0.2)
    while time.time() - start < seconds:
        try:
            data = sock.recv(65536)
            if not data:
                return round(time.time() - start, 1)
        except (socket.timeout, TimeoutError):
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            return round(time.time() - start, 1)
    return None
{body}
"#
    );
    let out = mtls_test_support::run_peer("python3", &["-c", &script], work.path());
    let text = mtls_test_support::text(&out);
    assert!(out.status.success(), "{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const DEADLINES: &str = "client_header_timeout = \"2s\"\nclient_body_timeout = \"2s\"\n\
                         send_timeout = \"2s\"\nkeepalive_timeout = \"2s\"\n";

#[test]
fn slowloris_on_tls_and_plain_http_is_closed_at_client_header_timeout() {
    let work = limits_pki();
    let plain = free_port();
    // Top-level timeouts are every server's defaults, and the metrics listener's.
    let top = format!("metrics = \"127.0.0.1:{{metrics_port}}\"\n{DEADLINES}");
    let config = format!(
        "{}\n[[server]]\nlisten = [\"127.0.0.1:{plain}\"]\n\
         [[server.location]]\npath = \"/\"\nreturn = \"200 plain\"\n",
        tls_server(&top, "", HELLO)
    );
    let server = work.serve("gw", &config);
    let port = server.port;
    let metrics = metrics_port(&work);
    let out = python(
        &work,
        &format!(
            r#"
# A silent connection to the metrics listener.
m = socket.create_connection(("127.0.0.1", {metrics}))
print("metrics-silent", closed_within(m, 6))
# One header line a second, forever: anonymous, on an optional listener.
s = tls({port})
s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
start = time.time()
closed = None
for i in range(8):
    try:
        s.sendall(b"X-Slow-%d: x\r\n" % i)
    except OSError:
        closed = round(time.time() - start, 1)
        break
    c = closed_within(s, 1.0)
    if c is not None:
        closed = round(time.time() - start, 1)
        break
print("tls", closed)
# Silent plain-HTTP connection, and one that starts a head and stops.
p = socket.create_connection(("127.0.0.1", {plain}))
print("plain-silent", closed_within(p, 6))
p = socket.create_connection(("127.0.0.1", {plain}))
p.sendall(b"GET / HTTP/1.1\r\nHo")
print("plain-partial", closed_within(p, 6))
# Silent TLS after the handshake.
s = tls({port})
print("tls-silent", closed_within(s, 6))
"#
        ),
    );
    for case in [
        "metrics-silent",
        "tls",
        "plain-silent",
        "plain-partial",
        "tls-silent",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{case} ")))
            .unwrap_or_else(|| panic!("{out}"));
        let seconds: f64 = line[case.len() + 1..]
            .parse()
            .unwrap_or_else(|_| panic!("{case} never closed: {out}"));
        assert!(
            (1.5..=4.5).contains(&seconds),
            "{case} closed after {seconds} s"
        );
    }
    // A well-behaved client is served throughout.
    assert_eq!(get(&work, &server, "/", &[]), (200, "hello".to_owned()));
    server.wait_log("check=client_header_timeout");
}

#[test]
fn idle_http2_and_plain_keepalive_connections_are_closed_at_keepalive_timeout() {
    let work = limits_pki();
    let plain = free_port();
    let config = format!(
        "{}\n[[server]]\nlisten = [\"127.0.0.1:{plain}\"]\n{DEADLINES}\
         [[server.location]]\npath = \"/\"\nreturn = \"200 plain\"\n",
        tls_server("", DEADLINES, HELLO)
    );
    let server = work.serve("gw", &config);
    let port = server.port;
    let out = python(
        &work,
        &format!(
            r#"
import h2.connection, h2.events, h2.config, h2.exceptions
# HTTP/2 without a client certificate: one request, then silence (PINGs do not count).
s = tls({port}, ["h2"])
assert s.selected_alpn_protocol() == "h2"
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
conn.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "localhost")], end_stream=True)
s.sendall(conn.data_to_send())
start = time.time()
goaway = None
s.settimeout(0.2)
while time.time() - start < 8:
    try:
        data = s.recv(65536)
    except (socket.timeout, TimeoutError):
        conn.ping(b"12345678")
        s.sendall(conn.data_to_send())
        continue
    except OSError:
        break
    if not data:
        break
    try:
        events = conn.receive_data(data)
    except h2.exceptions.ProtocolError:
        # A frame after the GOAWAY (our PING's ack) in the same read: closed by the GOAWAY.
        if conn.state_machine.state == h2.connection.ConnectionState.CLOSED:
            goaway = round(time.time() - start, 1)
        break
    if any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
        goaway = round(time.time() - start, 1)
        break
    s.sendall(conn.data_to_send())
print("h2-goaway", goaway)
# HTTP/2 again, but the client never answers anything after its request (no PING ack,
# no GOAWAY of its own): the connection must still end.
q = tls({port}, ["h2"])
c2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c2.initiate_connection()
c2.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "localhost")], end_stream=True)
q.sendall(c2.data_to_send())
print("h2-deaf", closed_within(q, 6))
# Plain HTTP/1.1 keep-alive: one request, then silence.
p = socket.create_connection(("127.0.0.1", {plain}))
p.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.3)
p.recv(65536)
print("plain-idle", closed_within(p, 6))
"#
        ),
    );
    for case in ["h2-goaway", "h2-deaf", "plain-idle"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{case} ")))
            .unwrap_or_else(|| panic!("{out}"));
        let seconds: f64 = line[case.len() + 1..]
            .parse()
            .unwrap_or_else(|_| panic!("{case} never closed: {out}"));
        assert!(
            (1.5..=4.5).contains(&seconds),
            "{case} closed after {seconds} s"
        );
    }
}

#[test]
fn a_body_that_stops_gets_408_at_client_body_timeout() {
    let work = limits_pki();
    let (_echo, port) = plain_echo(&work);
    let locations =
        format!("[[server.location]]\npath = \"/\"\nproxy_pass = \"http://127.0.0.1:{port}\"\n");
    let server = work.serve("gw", &tls_server("", DEADLINES, &locations));
    let gw = server.port;
    let out = python(
        &work,
        &format!(
            r#"
s = tls({gw})
s.sendall(b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
start = time.time()
s.settimeout(8)
answer = b""
try:
    while True:
        data = s.recv(65536)
        if not data:
            break
        answer += data
        if b"\r\n\r\n" in answer:
            break
except OSError:
    pass
print("status", answer.split(b" ")[1].decode() if answer else "none", round(time.time() - start, 1))
"#
        ),
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"status"), "{out}");
    assert_eq!(words.get(1), Some(&"408"), "{out}");
    let seconds: f64 = words[2].parse().unwrap();
    assert!((1.5..=4.5).contains(&seconds), "{out}");
    server.wait_log("check=client_body_timeout");
}

#[test]
fn a_client_that_stops_reading_is_cut_off_at_send_timeout() {
    let work = limits_pki();
    std::fs::create_dir_all(work.join("www")).unwrap();
    work.write("www/big.bin", vec![b'z'; 64 << 20]);
    let locations = "[[server.location]]\npath = \"/\"\nroot = \"www\"\n";
    let server = work.serve("gw", &tls_server("", DEADLINES, locations));
    let port = server.port;
    let out = python(
        &work,
        &format!(
            r#"
s = tls({port})
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
s.recv(4096)
# Read nothing more: the gateway's writes stall once the socket buffers are full.
time.sleep(4.5)
print("done")
"#
        ),
    );
    assert_eq!(out.trim(), "done");
    // Closed by the deadline (2 s), not by the client.
    server.wait_log("check=send_timeout");
}

#[test]
fn an_http2_client_that_stops_granting_window_is_cut_off_at_send_timeout() {
    // HTTP/2 flow control: the client never sends WINDOW_UPDATE, so after the first 64 KiB
    // the gateway has nothing it may send; no socket write ever blocks.
    let work = limits_pki();
    std::fs::create_dir_all(work.join("www")).unwrap();
    work.write("www/big.bin", vec![b'z'; 4 << 20]);
    let locations = "[[server.location]]\npath = \"/\"\nroot = \"www\"\n";
    let server = work.serve("gw", &tls_server("", DEADLINES, locations));
    let port = server.port;
    let out = python(
        &work,
        &format!(
            r#"
import h2.connection, h2.config
s = tls({port}, ["h2"])
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection()
c.send_headers(1, [(":method", "GET"), (":path", "/big.bin"), (":authority", "localhost"),
                   (":scheme", "https")], end_stream=True)
s.sendall(c.data_to_send())
start = time.time()
got = 0
closed = None
s.settimeout(0.2)
while time.time() - start < 8:
    try:
        data = s.recv(65536)
    except socket.timeout:
        continue
    except OSError:
        closed = time.time() - start
        break
    if not data:
        closed = time.time() - start
        break
    for event in c.receive_data(data):
        if hasattr(event, "data") and event.data:
            got += len(event.data)
    # SETTINGS and PING answers, never a WINDOW_UPDATE (no acknowledge_received_data).
    s.sendall(c.data_to_send())
print("closed", closed and round(closed, 1), got)
"#
        ),
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"closed"), "{out}");
    let seconds: f64 = words[1].parse().unwrap_or(f64::MAX);
    assert!(
        (1.5..=4.5).contains(&seconds),
        "closed after send_timeout (2 s): {out}"
    );
    let got: u64 = words[2].parse().unwrap();
    assert!(got <= 65_535, "no more than the initial window: {out}");
    server.wait_log("check=send_timeout");
    server.wait_access("end=send_timeout");
}

/// A Python script that holds its sockets open: started, and waited for until it prints
/// `ready`; it runs until dropped (its stdin closes, its `sys.stdin.read()` returns).
struct HeldPython(std::process::Child);

impl HeldPython {
    fn start(work: &Work, script: &str, ready: &str) -> HeldPython {
        use std::io::BufRead;
        let mut child = std::process::Command::new(mtls_test_support::require_peer("python3"))
            .current_dir(work.path())
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), ready);
        HeldPython(child)
    }
}

impl Drop for HeldPython {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// Resident memory of a running process, in KiB.
fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The documented bound on what one connection with a half-sent request head may hold:
/// twice `large_client_header_buffers` (hyper's read buffer may overshoot by one read) plus
/// the TLS and task state (docs/serve.md).
const HEAD_BOUND_KIB: u64 = 2 * 32 + 32;

/// The documented bound for a connection whose client reads its response slowly: one
/// 64 KiB file chunk, rustls' 64 KiB of pending TLS output, the 8 KiB of small writes the
/// gateway holds for one writev (`cork`), and 48 KiB of TLS, HTTP and task state.
const SLOW_READ_BOUND_KIB: u64 = 64 + 64 + 8 + 48;

#[test]
fn slow_request_heads_never_take_more_than_the_documented_memory() {
    let work = limits_pki();
    let server = work.serve("gw", &tls_server("", "", HELLO));
    let port = server.port;
    // Warm the allocator and the runtime first, so the growth measured is the connections'.
    for _ in 0..3 {
        assert_eq!(get(&work, &server, "/", &[]).0, 200);
    }
    let before = rss_kib(&server);
    let connections = 300;
    let script = format!(
        r#"
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile="pki/ca.crt")
held = []
# Half of them stop just under the head limit, half try to send far more than it.
for i in range({connections}):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", {port})), server_hostname="localhost")
    pad = 30000 if i % 2 == 0 else 400000
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * pad)
    except OSError:
        pass
    held.append(s)
print("sent", flush=True)
sys.stdin.read()
"#
    );
    let client = HeldPython::start(&work, &script, "sent");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let during = rss_kib(&server);
    // A well-behaved client is served meanwhile.
    assert_eq!(get(&work, &server, "/", &[]).0, 200);
    drop(client);
    let per_connection = during.saturating_sub(before) / connections;
    assert!(
        per_connection <= HEAD_BOUND_KIB,
        "{per_connection} KiB per slow connection (RSS {before} -> {during} KiB), bound {HEAD_BOUND_KIB}"
    );
}

#[test]
fn slowhttptest_slowloris_and_slow_read_leave_certificate_clients_served() {
    let work = limits_pki();
    std::fs::create_dir_all(work.join("www")).unwrap();
    work.write("www/big.bin", vec![b'r'; 4 << 20]);
    let locations = "[[server.location]]\npath = \"/\"\nroot = \"www\"\n";
    let server = work.serve("gw", &tls_server("", DEADLINES, locations));
    let url = format!("https://127.0.0.1:{}/big.bin", server.port);
    let before = rss_kib(&server);
    let mut peak = before;
    for mode in [
        // Slowloris: 200 connections, a header line every second, for 6 s.
        vec!["-H", "-c", "200", "-r", "200", "-i", "1", "-l", "6"],
        // Slow read: 200 connections reading 32 bytes every 2 s from a tiny window.
        vec![
            "-X", "-c", "200", "-r", "200", "-l", "6", "-n", "2", "-z", "32", "-w", "16", "-y",
            "64", "-k", "1",
        ],
    ] {
        let mut args = mode.clone();
        args.extend_from_slice(&["-u", &url, "-p", "3"]);
        let mut attack =
            std::process::Command::new(mtls_test_support::require_peer("slowhttptest"))
                .current_dir(work.path())
                .args(&args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
        std::thread::sleep(std::time::Duration::from_secs(3));
        // Mid-attack, a client with a certificate still gets its answer.
        let (status, _) = get(
            &work,
            &server,
            "/big.bin",
            &[
                "--cert",
                "pki/certs/alice.crt",
                "--key",
                "pki/private/alice.key",
                "-o",
                "/dev/null",
                "--max-time",
                "10",
            ],
        );
        assert_eq!(status, 200, "{mode:?}");
        let now = rss_kib(&server);
        eprintln!("{}: RSS {before} -> {now} KiB", mode[0]);
        peak = peak.max(now);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while attack.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "slowhttptest {mode:?} ran over"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    assert!(
        peak.saturating_sub(before) <= 200 * SLOW_READ_BOUND_KIB,
        "RSS {before} -> {peak} KiB under 200 slow connections"
    );
}

#[test]
fn one_byte_after_a_keepalive_pause_still_meets_client_header_timeout() {
    let work = limits_pki();
    let server = work.serve("gw", &tls_server("", DEADLINES, HELLO));
    let port = server.port;
    let out = python(
        &work,
        &format!(
            r#"
s = tls({port})
s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
time.sleep(0.3)
s.recv(65536)
# Let the connection hibernate, then send one byte of the next request and nothing more.
time.sleep(1.0)
s.sendall(b"G")
print("closed", closed_within(s, 6))
"#
        ),
    );
    let seconds: f64 = out
        .trim()
        .strip_prefix("closed ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("never closed: {out}"));
    assert!((1.5..=4.5).contains(&seconds), "closed after {seconds} s");
}

#[test]
fn sigterm_closes_idle_http2_and_plain_connections_at_once() {
    let work = limits_pki();
    let plain = free_port();
    let config = format!(
        "{}\n[[server]]\nlisten = [\"127.0.0.1:{plain}\"]\n\
         [[server.location]]\npath = \"/\"\nreturn = \"200 plain\"\n",
        tls_server("", "", HELLO)
    );
    let server = work.serve("gw", &config);
    let port = server.port;
    let script = format!(
        r#"
import socket, ssl, sys, time
import h2.connection, h2.config
ctx = ssl.create_default_context(cafile="pki/ca.crt")
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", {port})), server_hostname="localhost")
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
conn.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "localhost")], end_stream=True)
s.sendall(conn.data_to_send())
s.recv(65536)
p = socket.create_connection(("127.0.0.1", {plain}))
p.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
p.recv(65536)
print("idle", flush=True)
sys.stdin.read()
"#
    );
    let client = HeldPython::start(&work, &script, "idle");
    let started = std::time::Instant::now();
    assert!(server.terminate().success());
    // Not the 10 s shutdown timeout: nothing was in flight.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "shutdown took {:?} with two idle connections",
        started.elapsed()
    );
    drop(client);
}

#[test]
fn a_cap_above_the_descriptor_limit_is_warned_about() {
    let work = limits_pki();
    let server = work.serve(
        "gw",
        &tls_server(
            "max_connections = 10000\nworker_rlimit_nofile = 4096\n",
            "",
            HELLO,
        ),
    );
    server.wait_log("is more than the file-descriptor limit (4096)");
}

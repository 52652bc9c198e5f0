//! Deadlines and bounds, against the running binary: what a slow, silent or greedy peer can
//! hold, and signals that must not end the gateway.

use crate::util::{Server, Work, free_port};

/// A CA with a server certificate for localhost and a client `alice`.
fn limits_pki() -> Work {
    let work = Work::new();
    work.init_ca(false);
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
    work
}

fn tls_server(top: &str, server_keys: &str, locations: &str) -> String {
    format!(
        r#"{top}
[[server]]
listen = ["127.0.0.1:{{port}}"]
server_name = ["localhost"]
{server_keys}
[server.tls]
certificate = "pki/certs/localhost.chain.pem"
key = "pki/private/localhost.key"
client_ca = "pki/ca.crt"
verify_client = "optional"
{locations}
"#
    )
}

const HELLO: &str = r#"
[[server.location]]
path = "/"
return = "200 hello"
"#;

/// `curl` through the gateway: (status, body).
fn get(work: &Work, server: &Server, path: &str, extra: &[&str]) -> (u16, String) {
    let url = format!("https://localhost:{}{path}", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    let mut args = vec![
        "--cacert",
        "pki/ca.crt",
        "--resolve",
        &resolve,
        "-w",
        "\n%{http_code}",
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    let (code, out, err) = work.curl(&args);
    assert_eq!(code, 0, "curl {path}: {err}");
    let (body, status) = out.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

fn signal(server: &Server, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sighup_is_logged_and_the_gateway_keeps_serving() {
    let work = limits_pki();
    let mut server = work.serve("gw", &tls_server("", "", HELLO));
    assert_eq!(get(&work, &server, "/", &[]), (200, "hello".to_owned()));
    signal(&server, "HUP");
    server.wait_log("reload is not supported yet");
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
    let port = free_port();
    let _echo = work.serve_args(
        "echo",
        port,
        &["echo-server", "--listen", &format!("127.0.0.1:{port}")],
    );
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

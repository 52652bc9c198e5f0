//! The one runtime under every listener: what the access log says of each response (bytes
//! really sent, how it ended), and what a shutdown does to requests it has to cut.

use crate::util::{Server, Work, free_port, gateway_config, https_get, localhost_pki, plain_echo};

/// The gateway proxying `/` to a plain echo server: (gateway, echo).
fn proxy_to_echo(work: &Work, top: &str) -> (Server, Server) {
    let (echo, port) = plain_echo(work);
    let locations =
        format!("[[server.location]]\npath = \"/\"\nproxy_pass = \"http://127.0.0.1:{port}\"\n");
    let server = work.serve("gw", &gateway_config(top, "", &locations));
    (server, echo)
}

/// The access-log line whose request line contains `request`, once it is there.
fn line_for(server: &Server, request: &str) -> String {
    let log = server.wait_access(request);
    log.lines()
        .find(|l| l.contains(request))
        .unwrap_or_default()
        .to_owned()
}

/// `(status, bytes, end)` of an access-log line.
fn fields(line: &str) -> (u16, u64, String) {
    let after = line.split("\" ").nth(1).unwrap_or_default();
    let mut words = after.split(' ');
    let status = words.next().unwrap_or_default().parse().unwrap_or(0);
    let bytes = words.next().unwrap_or_default().parse().unwrap_or(u64::MAX);
    let end = line
        .rsplit(" end=")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    (status, bytes, end)
}

#[test]
fn the_access_log_counts_the_bytes_really_sent_over_both_protocols() {
    let work = localhost_pki();
    let (server, _echo) = proxy_to_echo(&work, "");
    for (version, n) in [("--http1.1", 300_000u64), ("--http2", 200_001)] {
        let path = format!("/bytes/{n}");
        let (status, size) = https_get(
            &work,
            &server,
            &path,
            &[
                version,
                "-o",
                "/dev/null",
                "-w",
                "%{size_download}\n%{http_code}",
            ],
        );
        assert_eq!(
            (status, size.as_str()),
            (200, n.to_string().as_str()),
            "{version}"
        );
        let line = line_for(&server, &format!("GET {path} "));
        assert_eq!(fields(&line), (200, n, "ok".into()), "{line}");
        assert!(line.contains(" rt="), "{line}");
    }
    // A HEAD (and any body-less answer) sends no body bytes, whatever it announces.
    let (status, _) = https_get(&work, &server, "/bytes/5000", &["--head"]);
    assert_eq!(status, 200);
    let line = line_for(&server, "HEAD /bytes/5000 ");
    assert_eq!(fields(&line), (200, 0, "ok".into()), "{line}");
}

#[test]
fn head_and_multipart_ranges_are_whole_answers() {
    let work = localhost_pki();
    std::fs::create_dir_all(work.join("www")).unwrap();
    work.write("www/small.bin", "0123456789".repeat(10));
    let locations = "[[server.location]]\npath = \"/hello\"\nreturn = \"200 hello, world\"\n\n\
                     [[server.location]]\npath = \"/\"\nroot = \"www\"\n";
    let server = work.serve("gw", &gateway_config("", "", locations));
    for version in ["--http1.1", "--http2"] {
        // HTTP/2 has no room for a body after HEAD's answer: a DATA frame is a protocol
        // error for curl.
        let (status, _) = https_get(&work, &server, "/hello", &[version, "--head"]);
        assert_eq!(status, 200, "{version}");
        // Two ranges: multipart/byteranges, a body that does not say when it has ended.
        let (status, _) = https_get(&work, &server, "/small.bin", &[version, "-r", "0-9,20-29"]);
        assert_eq!(status, 206, "{version}");
    }
    let log = server.wait_access("HTTP/2.0\" 206");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    for line in lines {
        assert!(line.ends_with(" end=ok"), "{line}");
        if line.contains("HEAD /hello ") {
            assert_eq!(fields(line), (200, 0, "ok".into()), "{line}");
        }
    }
}

#[test]
fn read_timeout_bounds_the_wait_for_the_response_head() {
    let work = localhost_pki();
    let (_echo, port) = plain_echo(&work);
    let locations = format!(
        "[[server.location]]\npath = \"/\"\nproxy_pass = \"http://127.0.0.1:{port}\"\n\
         read_timeout = \"1s\"\n"
    );
    let server = work.serve("gw", &gateway_config("", "", &locations));
    let started = std::time::Instant::now();
    let (status, _) = https_get(&work, &server, "/sleep/4000", &[]);
    assert_eq!(status, 504);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(3500),
        "504 after read_timeout, not after the upstream's answer"
    );
    server.wait_log("check=read_timeout");
}

#[test]
fn a_client_that_leaves_mid_download_is_logged_with_what_it_got() {
    let work = localhost_pki();
    let (server, _echo) = proxy_to_echo(&work, "");
    let total: u64 = 200_000_000;
    let path = format!("/bytes/{total}");
    let url = format!("https://localhost:{}{path}", server.port);
    let resolve = format!("localhost:{}:127.0.0.1", server.port);
    for version in ["--http1.1", "--http2"] {
        let started = std::time::Instant::now();
        let (code, _, _) = work.curl(&[
            "--cacert",
            "pki/ca.crt",
            "--resolve",
            &resolve,
            version,
            "--limit-rate",
            "1M",
            "--max-time",
            "1",
            "-o",
            "/dev/null",
            &url,
        ]);
        assert_eq!(code, 28, "{version}: curl gives up after its --max-time");
        let protocol = if version == "--http2" {
            "HTTP/2.0"
        } else {
            "HTTP/1.1"
        };
        let line = line_for(&server, &format!("GET {path} {protocol}"));
        let (status, bytes, end) = fields(&line);
        assert_eq!((status, end.as_str()), (200, "client_closed"), "{line}");
        assert!(bytes > 0 && bytes < total, "{line}");
        // rt runs to the end of the response, not to its head.
        let rt: f64 = line
            .split(" rt=")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|r| r.parse().ok())
            .unwrap_or(0.0);
        assert!(
            rt >= 0.5 && rt <= started.elapsed().as_secs_f64() + 1.0,
            "{line}"
        );
    }
}

#[test]
fn a_request_cut_by_the_shutdown_timeout_gets_its_access_log_line() {
    // HTTP/1.1 runs the request inside its connection; HTTP/2 in a task of its own.
    for version in ["--http1.1", "--http2"] {
        cut_by_shutdown(version);
    }
}

fn cut_by_shutdown(version: &'static str) {
    let work = localhost_pki();
    let (echo, port) = plain_echo(&work);
    let locations =
        format!("[[server.location]]\npath = \"/\"\nproxy_pass = \"http://127.0.0.1:{port}\"\n");
    let gw_port = free_port();
    work.write(
        "gw.toml",
        gateway_config("", "", &locations).replace("{port}", &gw_port.to_string()),
    );
    let server = work.serve_args(
        "gw",
        gw_port,
        &["serve", "-c", "gw.toml", "--shutdown-timeout", "1s"],
    );
    let url = format!("https://localhost:{gw_port}/sleep/8000");
    let resolve = format!("localhost:{gw_port}:127.0.0.1");
    let dir = work.path().to_path_buf();
    let slow = std::thread::spawn(move || {
        std::process::Command::new("curl")
            .current_dir(dir)
            .args([
                "-sS",
                version,
                "--cacert",
                "pki/ca.crt",
                "--resolve",
                &resolve,
                &url,
            ])
            .output()
            .unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let log_path = work.join("gw.access.log");
    let started = std::time::Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{version}: {status}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{version}: the drain was cut after --shutdown-timeout"
    );
    let _ = slow.join();
    let log = std::fs::read_to_string(log_path).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("GET /sleep/8000 "))
        .unwrap_or_else(|| panic!("{version}: no line for the cut request:\n{log}"));
    assert_eq!(
        fields(line),
        (499, 0, "shutdown".into()),
        "{version}: {line}"
    );
    drop(echo);
}

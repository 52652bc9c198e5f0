//! Running the binary in a scratch directory.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A scratch directory where `mtls pki` commands run with `--dir pki` by default.
pub struct Work {
    pub tmp: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    /// `mtls pki init`, with an intermediate CA when asked.
    pub fn init_ca(&self, intermediate: bool) {
        let mut args = vec!["pki", "init"];
        if intermediate {
            args.push("--intermediate");
        }
        self.ok(&args);
    }

    /// `mtls ARGS...` in this directory.
    pub fn mtls(&self, args: &[&str]) -> Output {
        Command::cargo_bin("mtls")
            .unwrap()
            .current_dir(self.path())
            .args(args)
            .output()
            .unwrap()
    }

    /// `mtls ARGS...`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.mtls(args);
        assert!(
            out.status.success(),
            "mtls {args:?} failed:\n{}",
            mtls_test_support::text(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `mtls ARGS...`, which must fail with exit code 1; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.mtls(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "mtls {args:?} should fail with 1:\n{}",
            mtls_test_support::text(&out)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// `mtls ARGS... --json`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    pub fn read(&self, p: &str) -> Vec<u8> {
        std::fs::read(self.join(p)).unwrap()
    }

    pub fn write(&self, p: &str, data: impl AsRef<[u8]>) {
        std::fs::write(self.join(p), data).unwrap()
    }

    /// Every file under the directory with its contents, to prove a failed command
    /// changed nothing.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push((path.clone(), std::fs::read(&path).unwrap()));
                }
            }
        }
        out.sort();
        out
    }
}

/// Unix permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A free TCP port on 127.0.0.1 (the OS picks it; it is released for the server to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `mtls serve`, killed when dropped. Its access log (stdout) and its own log
/// (stderr) go to files in the work directory, to be read by assertions.
pub struct Server {
    pub child: std::process::Child,
    pub port: u16,
    stdout: PathBuf,
    stderr: PathBuf,
    /// Stop with SIGTERM on drop rather than SIGKILL: nginx's master, killed, leaves its
    /// worker listening.
    terminate_on_drop: bool,
}

impl Work {
    /// Write `config` (with every `{port}` replaced by a free port) to `NAME.toml` and run
    /// `mtls serve -c NAME.toml`, waiting until the port accepts connections.
    pub fn serve(&self, name: &str, config: &str) -> Server {
        let port = free_port();
        let file = format!("{name}.toml");
        let metrics_port = free_port();
        self.write(
            &file,
            config
                .replace("{port}", &port.to_string())
                .replace("{metrics_port}", &metrics_port.to_string()),
        );
        self.write(&format!("{name}.metrics_port"), metrics_port.to_string());
        self.serve_args(
            name,
            port,
            &["serve", "-c", &file, "--handshake-timeout", "2s"],
        )
    }

    /// Run `mtls ARGS` in the background, waiting for `port` to accept connections.
    pub fn serve_args(&self, name: &str, port: u16, args: &[&str]) -> Server {
        self.spawn(name, port, &assert_cmd::cargo::cargo_bin("mtls"), args)
    }

    /// nginx in the foreground with its own prefix in `nginx/`, serving `server` (one
    /// `server { ... }` block, paths relative to this directory as `{dir}`), waiting for
    /// `port`.
    pub fn nginx(&self, port: u16, server: &str) -> Server {
        let dir = self.path().display().to_string();
        std::fs::create_dir_all(self.join("nginx/logs")).unwrap();
        let server = server.replace("{dir}", &dir);
        self.write(
            "nginx/nginx.conf",
            format!(
                "daemon off;\npid {dir}/nginx/nginx.pid;\nerror_log {dir}/nginx/logs/error.log info;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n    access_log off;\n\
                 client_body_temp_path {dir}/nginx/body;\n    proxy_temp_path {dir}/nginx/proxy;\n\
                 fastcgi_temp_path {dir}/nginx/fastcgi;\n    uwsgi_temp_path {dir}/nginx/uwsgi;\n\
                 scgi_temp_path {dir}/nginx/scgi;\n{server}\n}}\n"
            ),
        );
        let conf = self.join("nginx/nginx.conf").display().to_string();
        let prefix = self.join("nginx").display().to_string();
        let mut server = self.spawn_peer("nginx", port, "nginx", &["-p", &prefix, "-c", &conf]);
        server.terminate_on_drop = true;
        server
    }

    /// Run a real peer (nginx, ...) in the background, waiting for `port`.
    pub fn spawn_peer(&self, name: &str, port: u16, program: &str, args: &[&str]) -> Server {
        self.spawn(name, port, &mtls_test_support::require_peer(program), args)
    }

    fn spawn(&self, name: &str, port: u16, program: &Path, args: &[&str]) -> Server {
        let stdout = self.join(&format!("{name}.access.log"));
        let stderr = self.join(&format!("{name}.log"));
        let child = std::process::Command::new(program)
            .current_dir(self.path())
            .args(args)
            .env("MTLS_LOG", "info")
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            port,
            stdout,
            stderr,
            terminate_on_drop: false,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let v4 = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if v4 || std::net::TcpStream::connect(("::1", port)).is_ok() {
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("mtls serve exited with {status}:\n{}", server.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "mtls serve did not listen on {port}:\n{}",
                server.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// `curl -sS ARGS...` in this directory: (exit code, stdout, stderr).
    pub fn curl(&self, args: &[&str]) -> (i32, String, String) {
        let out = std::process::Command::new(mtls_test_support::require_peer("curl"))
            .current_dir(self.path())
            .arg("-sS")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `openssl s_client -connect 127.0.0.1:PORT ARGS...` with an empty stdin; all output.
    pub fn s_client(&self, port: u16, args: &[&str]) -> String {
        let connect = format!("127.0.0.1:{port}");
        // -ign_eof with a request on stdin: s_client stays until the server has answered
        // and closed, so TLS 1.3 session tickets (sent after the handshake) are received.
        let mut all = vec!["s_client", "-connect", &connect, "-ign_eof"];
        all.extend_from_slice(args);
        let mut child = std::process::Command::new(mtls_test_support::require_peer("openssl"))
            .current_dir(self.path())
            .args(&all)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let _ =
                stdin.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        }
        let out = child.wait_with_output().unwrap();
        mtls_test_support::text(&out)
    }
}

impl Server {
    /// The server's own log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The access log (stdout) so far.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Wait (up to 5 s) until the server's log contains `needle`; returns the log.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "log never contained {needle:?}:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Wait (up to 5 s) until the access log contains `needle`; returns it.
    pub fn wait_access(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let log = self.access_log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "access log never contained {needle:?}:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.terminate_on_drop && matches!(self.child.try_wait(), Ok(None)) {
            let pid = self.child.id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Work {
    /// `mtls ARGS...` in this directory with extra environment variables.
    pub fn mtls_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::cargo_bin("mtls").unwrap();
        command.current_dir(self.path()).args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    }

    /// `openssl s_server` on 127.0.0.1:`port` with `ARGS`, in the background (give it
    /// `-www`: it then answers HTTP and never reads its stdin).
    pub fn s_server(&self, name: &str, port: u16, args: &[&str]) -> Server {
        let accept = format!("127.0.0.1:{port}");
        let mut all = vec!["s_server", "-accept", &accept];
        all.extend_from_slice(args);
        self.spawn_peer(name, port, "openssl", &all)
    }
}

/// A TCP listener on 127.0.0.1 that accepts connections (the kernel completes the
/// handshake) but never reads or answers: a server that hangs mid-handshake.
pub fn silent_listener() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// A CA (`pki/ca.crt`) with a server certificate for localhost and 127.0.0.1
/// (`pki/certs/localhost.chain.pem`): what every gateway test serves with.
pub fn localhost_pki() -> Work {
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
    work
}

/// One TLS `[[server]]` on `{port}` for localhost, asking for client certificates from our
/// CA (`verify_client = "optional"`, so anonymous clients connect and the per-location
/// rules decide): `top` goes before it (top-level keys), `server_keys` into it, then
/// `locations`.
/// The gateway for localhost (`localhost_pki`'s certificate) requiring a client
/// certificate from its CA, answering `200 ok`.
/// The path of `tests/peers/NAME`.
pub fn peer_script(name: &str) -> String {
    format!("{}/tests/peers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `python3 tests/peers/python_client.py PORT VERSION pki/ca.crt ARGS...` in the work
/// directory.
pub fn python_client(work: &Work, port: u16, version: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(mtls_test_support::require_peer("python3"))
        .current_dir(work.path())
        .arg(peer_script("python_client.py"))
        .args([&port.to_string(), version, "pki/ca.crt"])
        .args(args)
        .output()
        .unwrap()
}

/// The gateway for localhost requiring a client certificate from our CA.
pub fn mutual_gateway(work: &Work) -> Server {
    work.serve(
        "gw",
        "[[server]]\nlisten = [\"127.0.0.1:{port}\"]\nserver_name = [\"localhost\"]\n\n\
         [server.tls]\ncertificate = \"pki/certs/localhost.chain.pem\"\n\
         key = \"pki/private/localhost.key\"\nverify_client = \"on\"\n\
         client_ca = \"pki/ca.crt\"\n\n\
         [[server.location]]\npath = \"/\"\nreturn = \"200 ok\"\n",
    )
}

pub fn gateway_config(top: &str, server_keys: &str, locations: &str) -> String {
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

/// `curl` to `https://localhost:PORT{path}` (resolved to 127.0.0.1, our CA trusted) with
/// `extra` arguments; curl must succeed. Returns (status, body).
pub fn https_get(work: &Work, server: &Server, path: &str, extra: &[&str]) -> (u16, String) {
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

/// A plain-HTTP `mtls echo-server` on a free port: (server, port).
pub fn plain_echo(work: &Work) -> (Server, u16) {
    let port = free_port();
    let server = work.serve_args(
        "echo",
        port,
        &["echo-server", "--listen", &format!("127.0.0.1:{port}")],
    );
    (server, port)
}

/// tcpdump on loopback, only `port` (tests run in parallel), writing `capture-PORT.pcap`.
pub struct Tcpdump {
    child: std::process::Child,
    file: PathBuf,
}

impl Tcpdump {
    /// Start capturing, waiting until tcpdump says it is listening.
    pub fn start(work: &Work, port: u16) -> Tcpdump {
        use std::time::{Duration, Instant};
        let file = work.join(&format!("capture-{port}.pcap"));
        let log = work.join(&format!("tcpdump-{port}.log"));
        let child = std::process::Command::new(mtls_test_support::require_peer("tcpdump"))
            .args(["-i", "lo", "--immediate-mode", "-U", "-n", "-w"])
            .arg(&file)
            .arg(format!("tcp port {port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
        {
            assert!(
                Instant::now() < deadline,
                "tcpdump did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // "listening on" is printed just before the capture starts.
        std::thread::sleep(Duration::from_millis(200));
        Tcpdump { child, file }
    }

    /// Stop it (SIGTERM, so the file is flushed) and return the capture.
    pub fn stop(mut self) -> PathBuf {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.file.clone()
    }
}

impl Drop for Tcpdump {
    /// A test that fails before `stop` leaves no tcpdump running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

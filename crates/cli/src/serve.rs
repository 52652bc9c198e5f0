//! `mtls serve` and `mtls check`: load the TOML config (or make the quickstart one), build
//! it with `mtls-gateway`, and run it until Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use mtls_gateway::live::{ReloadCause, Reloads};
use mtls_gateway::{Config, Site};
use mtls_pki::ca::{Ca, InitOptions, IssueRequest, LeafOptions};
use mtls_pki::db::Profile;
use mtls_pki::fs::{self as pkifs, Mode};
use mtls_pki::{KeyType, San, Subject};

/// Flags of `mtls serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The config file. Without it, ./mtls.toml is used if present, else the quickstart.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the quickstart keeps its PKI and config.
    #[arg(long, default_value = "mtls-data", value_name = "DIR")]
    data_dir: PathBuf,
    /// Close connections whose TLS handshake takes longer than this (overrides the
    /// config's `ssl_handshake_timeout`, default 60s).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    handshake_timeout: Option<Duration>,
    /// Runtime worker threads (overrides the config's `workers`; default one per CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
    /// On shutdown, wait this long for requests in flight.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    shutdown_timeout: Duration,
    /// Close connections idle for this long between requests (overrides every server's
    /// `keepalive_timeout`, default 75s).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    keepalive_timeout: Option<Duration>,
    /// Signal the running gateway of this config (through its `pid` file) and exit, like
    /// `nginx -s`: reload (SIGHUP: rebuild from the config, dropping nothing) or stop
    /// (SIGTERM: finish requests in flight, then exit).
    #[arg(short = 's', long = "signal", value_name = "SIGNAL")]
    signal: Option<ServeSignal>,
}

/// `mtls serve -s`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ServeSignal {
    Reload,
    Stop,
}

/// Flags of `mtls check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config file to check.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        default_value = "mtls.toml"
    )]
    config: PathBuf,
}

/// `mtls check`: like `nginx -t`.
pub fn check(args: CheckArgs) -> Result<ExitCode> {
    match load(&args.config) {
        Ok((config, site)) => {
            for warning in site.warnings() {
                eprintln!("warning: {warning}");
            }
            let listeners = site.listen_addresses();
            println!(
                "{}: ok ({} server block(s), listening on {})",
                args.config.display(),
                config.servers.len(),
                describe_listeners(&listeners)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: test failed", args.config.display());
            Ok(ExitCode::from(1))
        }
    }
}

/// `mtls serve`.
pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    init_logging();
    let (config_path, backend) = match &args.config {
        Some(path) => (path.clone(), None),
        None if Path::new("mtls.toml").exists() => (PathBuf::from("mtls.toml"), None),
        None => {
            let (config, backend) = quickstart(&args.data_dir)?;
            (config, Some(backend))
        }
    };
    if let Some(signal) = args.signal {
        return send_signal(&config_path, signal);
    }
    let (config, site) = match load(&config_path) {
        Ok(built) => built,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(1));
        }
    };
    let overrides = Overrides {
        shutdown_timeout: args.shutdown_timeout,
        handshake_timeout: args.handshake_timeout,
        keepalive_timeout: args.keepalive_timeout,
    };
    for warning in site.warnings() {
        tracing::warn!("{warning}");
    }
    let site = overrides.apply(site);
    let pid_file = config.pid.clone();
    // One worker: a current-thread runtime, like one nginx worker's event loop; no work
    // stealing and no cross-thread wake-ups to pay for.
    let workers = args.workers.map(usize::from).or(config.workers);
    let mut runtime = if workers == Some(1) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if let Some(workers) = workers.filter(|&w| w > 1) {
        runtime.worker_threads(workers);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        // The quickstart's backend: seed 001's last hop, an upstream that requires the
        // gateway's client certificate.
        let backend_task = match backend {
            Some(settings) => {
                let listener = tokio::net::TcpListener::bind(QUICKSTART_BACKEND)
                    .await
                    .with_context(|| {
                        format!("cannot listen on {QUICKSTART_BACKEND} for the quickstart backend")
                    })?;
                tracing::info!(
                    "quickstart backend (mtls echo-server) on https://{QUICKSTART_BACKEND}"
                );
                Some(tokio::spawn(mtls_gateway::echo::run(
                    settings,
                    listener,
                    stopped(stop_rx.clone()),
                )))
            }
            None => None,
        };
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(16);
        forward_hangups(reload_tx.clone());
        let listeners = mtls_gateway::serve::bind(&site)?;
        let _pid = PidFile::write(&pid_file)?;
        tracing::info!(
            "{}: serving on {}",
            config_path.display(),
            describe_listeners(&site.listen_addresses())
        );
        if let Some(addr) = site.metrics_address() {
            tracing::info!("metrics on http://{addr}/metrics");
        }
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let rebuild_path = config_path.clone();
        let reloads = Reloads {
            requests: reload_rx,
            sender: reload_tx,
            rebuild: Box::new(move |previous: &Site| {
                let config = Config::load(&rebuild_path)?;
                Ok(overrides.apply(Site::build_after(&config, Some(previous))?))
            }),
        };
        mtls_gateway::serve::run(site, listeners, stopped(stop_rx), Some(reloads)).await?;
        if let Some(task) = backend_task {
            task.await.context("the quickstart backend")??;
        }
        tracing::info!("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn load(path: &Path) -> Result<(Config, Site), mtls_gateway::ConfigErrors> {
    let config = Config::load(path)?;
    let site = Site::build(&config)?;
    Ok((config, site))
}

fn describe_listeners(listeners: &[(std::net::SocketAddr, bool)]) -> String {
    listeners
        .iter()
        .map(|(addr, tls)| format!("{}://{addr}", if *tls { "https" } else { "http" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Logs to stderr, `MTLS_LOG` (default `info`), one line per event (`crate::log`).
pub(crate) fn init_logging() {
    crate::log::init("info");
}

/// The command-line flags that override the config, applied to every site built (at
/// start and at each reload).
#[derive(Debug, Clone, Copy)]
struct Overrides {
    shutdown_timeout: Duration,
    handshake_timeout: Option<Duration>,
    keepalive_timeout: Option<Duration>,
}

impl Overrides {
    fn apply(self, site: Site) -> Site {
        let mut site = site.with_shutdown_timeout(self.shutdown_timeout);
        if let Some(timeout) = self.handshake_timeout {
            site = site.with_handshake_timeout(timeout);
        }
        if let Some(timeout) = self.keepalive_timeout {
            site = site.with_keepalive_timeout(timeout);
        }
        site
    }
}

/// SIGHUP reloads, as in nginx, HAProxy and ghostunnel. The handler is installed before
/// this returns (inside the runtime), so no SIGHUP that arrives once the gateway listens
/// can end it (its default action).
fn forward_hangups(reloads: tokio::sync::mpsc::Sender<ReloadCause>) {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut signal) => {
            tokio::spawn(async move {
                while signal.recv().await.is_some() {
                    // A full queue already holds a reload that will read everything anew.
                    let _ = reloads.try_send(ReloadCause::Signal);
                }
            });
        }
        Err(e) => tracing::warn!("cannot handle SIGHUP: {e}"),
    }
}

/// The `pid` file: written (atomically) once the ports are ours, removed at exit if it
/// still holds our pid.
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &Path) -> Result<PidFile> {
        if let Some(other) = running_gateway(path) {
            anyhow::bail!(
                "another gateway (process {other}) runs with the pid file {}: stop it \
                 (mtls serve -s stop), or give this config a `pid` of its own",
                path.display()
            );
        }
        let pid = std::process::id();
        pkifs::write_atomic(path, format!("{pid}\n").as_bytes(), Mode::Public)
            .with_context(|| format!("writing the pid file {}", path.display()))?;
        Ok(PidFile(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.0)
            .is_ok_and(|text| text.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// The process named in the pid file at `path`, if it is alive and is an mtls gateway
/// (Linux: its /proc entry says so; elsewhere alive is enough). A stale file, one that
/// names a process since reused for something else, is ignored.
fn running_gateway(path: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    if u32::try_from(pid).ok()? == std::process::id() {
        return None;
    }
    is_mtls(pid).then_some(pid)
}

fn is_mtls(pid: i32) -> bool {
    if cfg!(target_os = "linux") {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "mtls")
    } else {
        rustix::process::Pid::from_raw(pid)
            .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
    }
}

/// `mtls serve -s reload|stop`: signal the gateway whose pid the config's `pid` file holds.
fn send_signal(config_path: &Path, signal: ServeSignal) -> Result<ExitCode> {
    // Checked first, like `nginx -s reload`: a config that cannot load is not sent to the
    // running gateway (which would refuse it and keep serving the old one anyway).
    // A stop goes through whatever the config says now: the pid file is all it needs.
    let loaded = match signal {
        ServeSignal::Reload => Config::load(config_path).and_then(|c| Site::build(&c).map(|_| c)),
        ServeSignal::Stop => Config::load(config_path),
    };
    let pid_file = match loaded {
        Ok(config) => config.pid,
        Err(errors) if matches!(signal, ServeSignal::Stop) => {
            eprintln!("{errors}");
            // The default, as the config would have had it: NAME.pid beside NAME.toml.
            config_path.with_extension("pid")
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: test failed; signal not sent", config_path.display());
            return Ok(ExitCode::from(1));
        }
    };
    let text = std::fs::read_to_string(&pid_file).with_context(|| {
        format!(
            "no running gateway for {}: cannot read its pid file {}",
            config_path.display(),
            pid_file.display()
        )
    })?;
    let pid = text
        .trim()
        .parse::<i32>()
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .with_context(|| format!("{} does not hold a process id", pid_file.display()))?;
    if !is_mtls(pid.as_raw_nonzero().get()) {
        anyhow::bail!(
            "process {} (from {}) is not a running mtls gateway: a stale pid file? Not \
             signalled",
            pid.as_raw_nonzero(),
            pid_file.display()
        );
    }
    let (sig, word) = match signal {
        ServeSignal::Reload => (rustix::process::Signal::HUP, "reload (SIGHUP)"),
        ServeSignal::Stop => (rustix::process::Signal::TERM, "stop (SIGTERM)"),
    };
    rustix::process::kill_process(pid, sig).with_context(|| {
        format!(
            "cannot signal process {} from {} (is the gateway still running?)",
            pid.as_raw_nonzero(),
            pid_file.display()
        )
    })?;
    println!("sent {word} to process {}", pid.as_raw_nonzero());
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

const QUICKSTART_SERVER: &str = "localhost";
const QUICKSTART_CLIENT: &str = "demo-client";
const QUICKSTART_ADDR: &str = "127.0.0.1:8443";
const QUICKSTART_BACKEND: &str = "127.0.0.1:8444";
const QUICKSTART_BACKEND_NAME: &str = "backend";
const QUICKSTART_GATEWAY: &str = "gateway";

/// Make (or reuse) the quickstart PKI and config in `data`, print how to try it, and
/// return the config's path and the backend to start beside the gateway.
fn quickstart(data: &Path) -> Result<(PathBuf, mtls_gateway::echo::EchoSettings)> {
    let pki_dir = data.join("pki");
    let mut ca = if pki_dir.join("ca.crt").exists() {
        Ca::open(&pki_dir)
            .with_context(|| format!("opening the quickstart CA in {}", pki_dir.display()))?
    } else {
        Ca::init(
            &pki_dir,
            &InitOptions {
                common_name: "mtls quickstart CA".into(),
                key_type: KeyType::P256,
                days: 3650,
                intermediate: false,
                force: false,
            },
        )
        .with_context(|| format!("creating the quickstart CA in {}", pki_dir.display()))?
    };
    let layout = ca.layout().clone();
    for (name, profile, sans) in [
        (
            QUICKSTART_SERVER,
            Profile::Server,
            vec!["localhost", "127.0.0.1", "::1"],
        ),
        (QUICKSTART_CLIENT, Profile::Client, vec![]),
        (
            QUICKSTART_BACKEND_NAME,
            Profile::Server,
            vec!["localhost", "127.0.0.1"],
        ),
        (QUICKSTART_GATEWAY, Profile::Client, vec![]),
    ] {
        if layout.cert(name).exists() && layout.key(name).exists() {
            continue;
        }
        let sans = sans
            .iter()
            .map(|s| s.parse::<San>().map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<Result<Vec<_>>>()?;
        ca.issue(&IssueRequest {
            name: name.into(),
            subject: Subject::cn(name),
            sans,
            key_type: KeyType::P256,
            leaf: LeafOptions {
                profile,
                days: None,
                not_before: None,
                not_after: None,
                crl_urls: Vec::new(),
                ocsp_url: None,
            },
            force: true,
            key_password: None,
        })
        .with_context(|| format!("issuing the quickstart certificate {name}"))?;
    }
    let p12 = layout.p12(QUICKSTART_CLIENT);
    let password_file = p12.with_extension("p12.password");
    if !p12.exists() {
        let (mut chain, key) = ca.credentials(QUICKSTART_CLIENT)?;
        chain.push(ca.root().clone());
        let password = mtls_pki::names::random_password();
        let options = mtls_pki::p12::Pkcs12Options {
            legacy: false,
            alias: QUICKSTART_CLIENT.into(),
        };
        let what = layout.key(QUICKSTART_CLIENT).display().to_string();
        let credentials = mtls_pki::Credentials::new(&key, &what, chain, "the quickstart chain")?;
        let bundle = mtls_pki::p12::export(&credentials, &password, &options)?;
        pkifs::write_atomic(
            &password_file,
            format!("{password}\n").as_bytes(),
            Mode::Secret,
        )?;
        pkifs::write_atomic(&p12, &bundle, Mode::Secret)?;
    }

    let config = data.join("mtls.toml");
    if !config.exists() {
        pkifs::write_atomic(&config, quickstart_config().as_bytes(), Mode::Public)?;
    }
    let backend = mtls_gateway::echo::EchoSettings::tls(
        layout.chain(QUICKSTART_BACKEND_NAME),
        layout.key(QUICKSTART_BACKEND_NAME),
        vec![layout.ca_cert()],
        true,
    );
    let show = |p: PathBuf| p.display().to_string();
    println!(
        "mtls quickstart: https://{QUICKSTART_ADDR}/ requires a client certificate from {ca}\n\
         and proxies to a backend on https://{QUICKSTART_BACKEND} over mutual TLS:\n\
         \n    curl --> gateway {QUICKSTART_ADDR} (mTLS) --> backend {QUICKSTART_BACKEND} (mTLS)\n\
         \n  config   {config}  (edit it, or run `mtls serve -c FILE`)\n\
         \n  try it (the backend answers with what it received, as JSON):\n    curl --cacert {ca} --cert {cert} --key {key} https://{QUICKSTART_ADDR}/\n\
         \n  a greeting from the gateway itself:\n    curl --cacert {ca} --cert {cert} --key {key} https://{QUICKSTART_ADDR}/hello\n\
         \n  without a certificate the handshake is refused:\n    curl --cacert {ca} https://{QUICKSTART_ADDR}/\n\
         \n  in a browser: import {p12} (password in {pw})\n",
        ca = show(layout.ca_cert()),
        config = show(config.clone()),
        cert = show(layout.cert(QUICKSTART_CLIENT)),
        key = show(layout.key(QUICKSTART_CLIENT)),
        p12 = show(p12),
        pw = show(password_file),
    );
    Ok((config, backend))
}

fn quickstart_config() -> String {
    format!(
        r#"# The mtls quickstart: TLS on {QUICKSTART_ADDR} requiring a client certificate from the
# quickstart CA; / is proxied over mutual TLS to the backend that `mtls serve` starts beside
# the gateway (an `mtls echo-server` on {QUICKSTART_BACKEND}); /hello greets the client by its
# certificate. Paths are relative to this file. Edit freely: `mtls serve` reuses this file
# and the PKI next to it.

[[server]]
listen = ["{QUICKSTART_ADDR}"]
server_name = ["localhost", "127.0.0.1"]

[server.tls]
certificate = "pki/certs/{QUICKSTART_SERVER}.chain.pem"
key = "pki/private/{QUICKSTART_SERVER}.key"
client_ca = "pki/ca.crt"
verify_client = "on"

[[server.location]]
path = "/"
proxy_pass = "https://{QUICKSTART_BACKEND}"

[server.location.proxy_tls]
certificate = "pki/certs/{QUICKSTART_GATEWAY}.crt"   # the gateway's own client certificate
key = "pki/private/{QUICKSTART_GATEWAY}.key"
trusted_ca = "pki/ca.crt"                           # the backend must chain to this CA
server_name = "localhost"

[[server.location]]
path = "= /hello"
return = "200 Hello, $ssl_client_s_dn!\nYour certificate (serial $ssl_client_serial, issued by $ssl_client_i_dn) was verified: $ssl_client_verify.\nConnection: $ssl_protocol, $ssl_cipher.\n"
"#
    )
}

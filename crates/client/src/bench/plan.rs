//! `mtls bench`'s flags, checked into a [`BenchPlan`] before anything connects.
//!
//! The URL, certificate, header and body flags mean what they mean for `mtls get`, so
//! they go through the same conversion ([`GetRequest::try_from`]); what is left is the
//! shape of the load: mode, connections, streams, how long, how fast.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HOST};
use http::{HeaderValue, Request, Version};
use http_body_util::Full;
use serde::Serialize;

use mtls_tls::ProbeSettings;

use crate::request::{GetFlags, GetRequest, RequestError, Resolve, Scheme, Target};

/// The flags of `mtls bench` as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct BenchFlags {
    /// What to connect to and send, as `mtls get` takes it: the URL, `--ca`, `--cert` /
    /// `--key` or `--p12` / `--password-env`, `--insecure`, `--resolve`, `-X`, `-H` and the
    /// body (`--data`; `-d` is the duration here, as wrk has it). Its get-only flags
    /// (`-o`, `-L`, the timeouts, the HTTP version) are ignored.
    pub get: GetFlags,
    /// `--mode`.
    pub mode: Mode,
    /// `-c N`: connections (default 10).
    pub connections: Option<usize>,
    /// `-m N`: concurrent HTTP/2 streams per connection (default 1).
    pub streams: Option<usize>,
    /// `--http2`.
    pub http2: bool,
    /// `-d`: how long to measure, in seconds or with a unit (`500ms`, `10s`, `1m`).
    pub duration: Option<String>,
    /// `-n N`: how many requests to measure.
    pub requests: Option<u64>,
    /// `--threads T`: tokio worker threads (default: one per CPU).
    pub threads: Option<usize>,
    /// `--rate R`: requests per second, for the whole run.
    pub rate: Option<f64>,
    /// `--warmup`: run this long first without recording (default 1s with `-d`, 0 with
    /// `-n`; `0s` for none).
    pub warmup: Option<String>,
    /// `--timeout`: the limit on one request, its connection included (default 10s).
    pub timeout: Option<String>,
    /// Draw a progress line on stderr while running.
    pub progress: bool,
}

/// What to measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Keep-alive connections, requests one after another on each (or `-m` at once with
    /// HTTP/2).
    #[default]
    Requests,
    /// A new connection and a full TLS handshake for every request, resumption off.
    Handshakes,
    /// A new connection for every request, resuming a TLS session.
    Resume,
}

/// When the run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After measuring this long (after the warm-up).
    After(Duration),
    /// After this many requests were measured (answered or failed).
    Count(u64),
}

/// A checked load, ready for [`run`](super::run).
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// Where.
    pub target: Target,
    /// Fixed addresses instead of DNS.
    pub resolve: Vec<Resolve>,
    /// The TLS side: CAs, our identity, `--insecure`, ALPN.
    pub tls: ProbeSettings,
    /// What to measure.
    pub mode: Mode,
    /// HTTP/2 (ALPN `h2` only) rather than HTTP/1.1.
    pub http2: bool,
    /// Concurrent connections (`-c`).
    pub connections: usize,
    /// Concurrent streams per connection (`-m`, HTTP/2 in requests mode).
    pub streams: usize,
    /// When to stop.
    pub stop: Stop,
    /// tokio worker threads.
    pub threads: usize,
    /// Requests per second for the whole run, on a fixed schedule; `None`: as fast as
    /// the server answers.
    pub rate: Option<f64>,
    /// Run this long before recording.
    pub warmup: Duration,
    /// The limit on one request (its connection and handshake included).
    pub timeout: Duration,
    /// Draw a progress line on stderr.
    pub progress: bool,
    /// The request every connection sends, cloned for each.
    pub request: Request<Full<Bytes>>,
}

/// Connections when `-c` is not given (wrk's default).
pub const DEFAULT_CONNECTIONS: usize = 10;

impl Mode {
    /// `requests`, `handshakes` or `resume`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Requests => "requests",
            Mode::Handshakes => "handshakes",
            Mode::Resume => "resume",
        }
    }

    /// Whether every request has a connection of its own.
    pub fn connection_per_request(self) -> bool {
        self != Mode::Requests
    }
}

impl TryFrom<BenchFlags> for BenchPlan {
    type Error = RequestError;

    fn try_from(flags: BenchFlags) -> Result<BenchPlan, RequestError> {
        let get = GetRequest::try_from(GetFlags {
            http1_1: !flags.http2,
            http2: flags.http2,
            output: None,
            location: false,
            ..flags.get
        })
        .map_err(renamed_data_flag)?;
        if get.target.scheme != Scheme::Https {
            return Err(usage(
                "URL",
                format!(
                    "{}: mtls bench measures TLS; give an https:// URL",
                    get.target.url()
                ),
            ));
        }
        let connections = flags.connections.unwrap_or(DEFAULT_CONNECTIONS);
        if connections == 0 {
            return Err(usage("-c", "at least one connection".into()));
        }
        let streams = flags.streams.unwrap_or(1);
        if streams == 0 {
            return Err(usage("-m", "at least one stream per connection".into()));
        }
        if streams > 1 && !(flags.http2 && flags.mode == Mode::Requests) {
            return Err(usage(
                "-m",
                "concurrent streams need --http2 and --mode requests (a connection per \
                 request carries one)"
                    .into(),
            ));
        }
        let stop = match (&flags.duration, flags.requests) {
            (Some(_), Some(_)) => {
                return Err(usage(
                    "-n",
                    "give either -d (how long) or -n (how many)".into(),
                ));
            }
            (Some(text), None) => Stop::After(span(text).map_err(|m| usage("-d", m))?),
            (None, Some(0)) => return Err(usage("-n", "at least one request".into())),
            (None, Some(count)) => Stop::Count(count),
            (None, None) => Stop::After(Duration::from_secs(10)),
        };
        if let Stop::After(Duration::ZERO) = stop {
            return Err(usage("-d", "must be more than zero".into()));
        }
        let threads = match flags.threads {
            Some(0) => return Err(usage("--threads", "at least one thread".into())),
            Some(threads) => threads,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let rate = match flags.rate {
            Some(rate) if !(rate.is_finite() && rate > 0.0) => {
                return Err(usage("--rate", format!("{rate}: must be more than zero")));
            }
            rate => rate,
        };
        let warmup = match (&flags.warmup, stop) {
            (Some(text), _) => span(text).map_err(|m| usage("--warmup", m))?,
            (None, Stop::After(_)) => Duration::from_secs(1),
            (None, Stop::Count(_)) => Duration::ZERO,
        };
        let timeout = match &flags.timeout {
            Some(text) => span(text).map_err(|m| usage("--timeout", m))?,
            None => Duration::from_secs(10),
        };
        if timeout.is_zero() {
            return Err(usage("--timeout", "must be more than zero".into()));
        }
        let request = template(&get, flags.http2, flags.mode)?;
        Ok(BenchPlan {
            target: get.target,
            resolve: get.resolve,
            tls: get.tls,
            mode: flags.mode,
            http2: flags.http2,
            connections,
            streams,
            stop,
            threads,
            rate,
            warmup,
            timeout,
            progress: flags.progress,
            request,
        })
    }
}

impl BenchPlan {
    /// Lanes: sequences of requests one after another. One per connection, or `-m` per
    /// HTTP/2 connection in requests mode.
    pub fn lanes(&self) -> usize {
        self.connections * self.streams_per_connection()
    }

    /// Requests in flight at once on one connection.
    pub fn streams_per_connection(&self) -> usize {
        if self.http2 && self.mode == Mode::Requests {
            self.streams
        } else {
            1
        }
    }
}

/// The request of every connection, as `mtls get` makes it (defaults first, then `-H`):
/// origin-form with a Host header for HTTP/1.1, the whole URL for HTTP/2. With a connection
/// per request over HTTP/1.1 it says `Connection: close`, so the server closes first and
/// keeps the TIME_WAIT sockets, not the load generator's few thousand ports.
fn template(
    get: &GetRequest,
    http2: bool,
    mode: Mode,
) -> Result<Request<Full<Bytes>>, RequestError> {
    let mut headers = crate::request::request_headers(
        &get.target.authority(),
        concat!("mtls-bench/", env!("CARGO_PKG_VERSION")),
        get.body.as_ref(),
        &get.headers,
    );
    if mode.connection_per_request() && !http2 && !headers.contains_key(CONNECTION) {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if http2 {
        // HTTP/2 carries the host in :authority, and has no connection-specific headers.
        headers.remove(HOST);
        headers.remove(CONNECTION);
    }
    let (uri, version) = if http2 {
        (get.target.url(), Version::HTTP_2)
    } else {
        (get.target.path_and_query.clone(), Version::HTTP_11)
    };
    let mut builder = Request::builder()
        .method(get.method.clone())
        .uri(uri)
        .version(version);
    if let Some(map) = builder.headers_mut() {
        *map = headers;
    }
    builder
        .body(Full::new(get.body.clone().unwrap_or_default()))
        .map_err(|e| usage("URL", format!("cannot make a request of it: {e}")))
}

/// `mtls get` calls the body flag `-d`; here `-d` is the duration.
fn renamed_data_flag(error: RequestError) -> RequestError {
    match error {
        RequestError::Usage {
            flag: "-d",
            message,
        } => usage("--data", message),
        RequestError::File {
            flag: "-d",
            path,
            message,
        } => RequestError::File {
            flag: "--data",
            path,
            message,
        },
        other => other,
    }
}

/// Seconds (`5`, `2.5`) or a number with a unit (`500ms`, `2s`, `1m`); zero is allowed
/// (`--warmup 0s`), the callers refuse it where it makes no sense.
fn span(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected seconds (5, 2.5) or 500ms, 2s, 1m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s or m)")),
    };
    if !(seconds.is_finite() && seconds < 1e9) {
        return Err(format!("{text:?}: too long"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn usage(flag: &'static str, message: String) -> RequestError {
    RequestError::Usage { flag, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> BenchFlags {
        BenchFlags {
            get: GetFlags {
                url: "https://api.test:8443/x?y=1".into(),
                ca: vec!["ca.crt".into()],
                ..GetFlags::default()
            },
            ..BenchFlags::default()
        }
    }

    fn usage_flag(result: Result<BenchPlan, RequestError>) -> &'static str {
        match result {
            Err(RequestError::Usage { flag, .. }) => flag,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_wrk() {
        let plan = BenchPlan::try_from(flags()).expect("plan");
        assert_eq!(plan.mode, Mode::Requests);
        assert_eq!(plan.connections, DEFAULT_CONNECTIONS);
        assert_eq!(plan.stop, Stop::After(Duration::from_secs(10)));
        assert_eq!(plan.warmup, Duration::from_secs(1));
        assert_eq!(plan.tls.alpn, vec![b"http/1.1".to_vec()]);
        assert_eq!(plan.request.uri(), "/x?y=1");
        assert_eq!(plan.request.headers()[HOST], "api.test:8443");
        assert!(plan.request.headers().get(CONNECTION).is_none());

        let mut f = flags();
        f.requests = Some(5);
        let plan = BenchPlan::try_from(f).expect("plan");
        assert_eq!(plan.warmup, Duration::ZERO, "no warm-up with -n");
    }

    #[test]
    fn requests_per_mode_and_version() {
        let mut f = flags();
        f.mode = Mode::Handshakes;
        let plan = BenchPlan::try_from(f).expect("plan");
        assert_eq!(plan.request.headers()[CONNECTION], "close");

        let mut f = flags();
        f.http2 = true;
        f.streams = Some(8);
        f.get.data = Some("a=b".into());
        f.get.headers = vec!["X-A: 1".into(), "User-Agent:".into()];
        let plan = BenchPlan::try_from(f).expect("plan");
        assert_eq!(plan.tls.alpn, vec![b"h2".to_vec()]);
        assert_eq!(plan.request.uri(), "https://api.test:8443/x?y=1");
        assert!(plan.request.headers().get(HOST).is_none());
        assert!(
            plan.request
                .headers()
                .get(http::header::USER_AGENT)
                .is_none()
        );
        assert_eq!(plan.request.headers()["x-a"], "1");
        assert_eq!(plan.request.method(), http::Method::POST);
        assert_eq!(plan.lanes(), DEFAULT_CONNECTIONS * 8);
    }

    #[test]
    fn bad_flags_name_themselves() {
        let mut f = flags();
        f.streams = Some(4);
        assert_eq!(usage_flag(BenchPlan::try_from(f)), "-m");
        let mut f = flags();
        f.duration = Some("2s".into());
        f.requests = Some(3);
        assert_eq!(usage_flag(BenchPlan::try_from(f)), "-n");
        let mut f = flags();
        f.connections = Some(0);
        assert_eq!(usage_flag(BenchPlan::try_from(f)), "-c");
        let mut f = flags();
        f.rate = Some(0.0);
        assert_eq!(usage_flag(BenchPlan::try_from(f)), "--rate");
        let mut f = flags();
        f.duration = Some("0s".into());
        assert_eq!(usage_flag(BenchPlan::try_from(f)), "-d");
        let mut f = flags();
        f.get.url = "http://api.test/".into();
        assert_eq!(usage_flag(BenchPlan::try_from(f)), "URL");
        let mut f = flags();
        f.get.ca.clear();
        assert_eq!(usage_flag(BenchPlan::try_from(f)), "--ca");
        let mut f = flags();
        f.get.data = Some("@/nonexistent/file".into());
        match BenchPlan::try_from(f) {
            Err(RequestError::File { flag, .. }) => assert_eq!(flag, "--data"),
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    #[test]
    fn spans() {
        assert_eq!(span("0s").expect("zero"), Duration::ZERO);
        assert_eq!(span("250ms").expect("ms"), Duration::from_millis(250));
        assert_eq!(span("2").expect("s"), Duration::from_secs(2));
        assert_eq!(span("1m").expect("m"), Duration::from_secs(60));
        assert!(span("fast").is_err());
        assert!(span("1h").is_err());
    }
}

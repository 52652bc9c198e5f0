//! What a run found: per-task tallies while it runs, one [`BenchReport`] after.
//!
//! Each connection task keeps its own [`Stats`] (latency histogram, counts, errors by
//! kind) and they are merged once at the end, so no request waits on another task's lock.
//! A response that is not 2xx is never a success: it is counted under its status class
//! (`4xx`) among the errors, and [`BenchReport::warnings`] says so loudly.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use mtls_tls::ProbeError;

use super::plan::{BenchPlan, Mode};

/// Below this fraction of resumed handshakes, a `--mode resume` run failed.
pub const RESUMED_AT_LEAST: f64 = 0.9;

/// The result of a run, for people (the CLI's text) and scripts (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `requests`, `handshakes` or `resume`.
    pub mode: Mode,
    /// The URL.
    pub url: String,
    /// `HTTP/1.1` or `HTTP/2`.
    pub http: &'static str,
    /// Concurrent connections.
    pub connections: usize,
    /// Concurrent streams per connection.
    pub streams: usize,
    /// tokio worker threads.
    pub threads: usize,
    /// The requested rate, requests per second, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Seconds measured: from the end of the warm-up to the last request's end.
    pub duration_s: f64,
    /// Requests answered with a 2xx status.
    pub requests_ok: u64,
    /// `requests_ok` per second measured: only 2xx answers count.
    pub ops_per_s: f64,
    /// Latency of the 2xx answers, microseconds: from when each request was due (its
    /// place on the `--rate` schedule, or when it was sent) to the end of its body.
    pub latency_us: Latency,
    /// HTTP bytes read (after TLS decryption; handshakes not included).
    pub bytes_read: u64,
    /// HTTP bytes written.
    pub bytes_written: u64,
    /// Failed requests by kind: `connect`, `timeout`, a TLS alert's name
    /// (`certificate_required`), our verifier's check (`unknown_issuer`),
    /// `closed_after_no_certificate` (asked for a certificate, we had none, it hung up),
    /// `closed`, `reset`, `http`, or a status class (`4xx`, `5xx`).
    pub errors: BTreeMap<String, u64>,
    /// Every status answered, with its count.
    pub statuses: BTreeMap<u16, u64>,
    /// With a connection per request: the fraction of handshakes that resumed a session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_fraction: Option<f64>,
    /// The first error of each kind, in words.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub error_examples: BTreeMap<String, String>,
}

/// Latency percentiles, microseconds (HdrHistogram, 3 significant digits).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// The slowest.
    pub max: u64,
    /// The mean.
    pub mean: f64,
}

/// One task's tally.
#[derive(Debug)]
pub(super) struct Stats {
    latency: Histogram<u64>,
    ok: u64,
    statuses: Vec<(u16, u64)>,
    errors: Vec<ErrorCount>,
    bytes_read: u64,
    bytes_written: u64,
    handshakes: u64,
    resumed: u64,
    last_end: Option<Instant>,
}

#[derive(Debug)]
struct ErrorCount {
    kind: Cow<'static, str>,
    count: u64,
    example: String,
}

/// How a request ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The server answered with this status (and the body was read).
    Status(u16),
    /// It failed.
    Failed(Failure),
}

/// A failed request: a short stable kind, and a sentence for the first of its kind.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) kind: Cow<'static, str>,
    pub(super) message: String,
}

/// A task's running count, read by the progress line; aligned to keep tasks' counters on
/// cache lines of their own.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct Live {
    /// Requests finished, warm-up included.
    pub(super) done: AtomicU64,
    /// Requests finished and recorded.
    pub(super) measured: AtomicU64,
    /// Recorded requests that failed (or were not 2xx).
    pub(super) failed: AtomicU64,
}

impl BenchReport {
    /// Whether the run is a failure for a script: any error or non-2xx answer, nothing
    /// answered at all, or (`--mode resume`) too few resumed handshakes.
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
            || self.requests_ok == 0
            || self
                .resumed_fraction
                .is_some_and(|f| self.mode == Mode::Resume && f < RESUMED_AT_LEAST)
    }

    /// Sentences for everything that makes the run a failure, each starting `WARNING:`.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let answered: u64 = self.statuses.values().sum();
        for (status, count) in &self.statuses {
            if !(200..300).contains(status) {
                out.push(format!(
                    "WARNING: {count} of {answered} responses were {status}{} — this is not a \
                     success (counted under errors as {}, not in ops/s)",
                    reason(*status).map_or(String::new(), |r| format!(" {r}")),
                    status_class(*status)
                ));
            }
        }
        let attempts = self.requests_ok + self.errors.values().sum::<u64>();
        for (kind, count) in &self.errors {
            if is_status_class(kind) {
                continue;
            }
            let example = self
                .error_examples
                .get(kind)
                .map_or(String::new(), |e| format!(" (the first: {e})"));
            out.push(format!(
                "WARNING: {count} of {attempts} requests failed: {kind}{example}"
            ));
        }
        if self.requests_ok == 0 && out.is_empty() {
            out.push("WARNING: no request was answered with a 2xx status".into());
        }
        if let (Mode::Resume, Some(fraction)) = (self.mode, self.resumed_fraction)
            && fraction < RESUMED_AT_LEAST
        {
            out.push(format!(
                "WARNING: only {:.1}% of handshakes resumed a session (at least {:.0}% \
                 expected): does the server issue session tickets or keep a session cache?",
                fraction * 100.0,
                RESUMED_AT_LEAST * 100.0
            ));
        }
        out
    }
}

impl Stats {
    pub(super) fn new() -> Stats {
        Stats {
            // Auto-resizing from the smallest range: memory grows only with the slowest
            // latency seen, not with the number of tasks times an hour of range.
            latency: Histogram::new(3).expect("3 significant digits is within 0..=5"),
            ok: 0,
            statuses: Vec::new(),
            errors: Vec::new(),
            bytes_read: 0,
            bytes_written: 0,
            handshakes: 0,
            resumed: 0,
            last_end: None,
        }
    }

    /// A measured request: due at `due`, over at `end`, having moved `bytes` (read,
    /// written), with `resumed` telling how its handshake went when it made one.
    pub(super) fn record(
        &mut self,
        due: Instant,
        end: Instant,
        outcome: Outcome,
        bytes: (u64, u64),
        resumed: Option<bool>,
    ) {
        self.bytes_read += bytes.0;
        self.bytes_written += bytes.1;
        if let Some(resumed) = resumed {
            self.handshakes += 1;
            self.resumed += u64::from(resumed);
        }
        self.last_end = Some(self.last_end.map_or(end, |last| last.max(end)));
        match outcome {
            Outcome::Status(status) => {
                match self.statuses.iter_mut().find(|(s, _)| *s == status) {
                    Some((_, count)) => *count += 1,
                    None => self.statuses.push((status, 1)),
                }
                if (200..300).contains(&status) {
                    self.ok += 1;
                    let micros = end.saturating_duration_since(due).as_micros();
                    let micros = u64::try_from(micros).unwrap_or(u64::MAX);
                    // `record` grows the histogram; only a value beyond any range fails.
                    if self.latency.record(micros).is_err() {
                        self.latency.saturating_record(micros);
                    }
                } else {
                    self.error(Failure {
                        kind: Cow::Borrowed(status_class(status)),
                        message: format!("HTTP {status}"),
                    });
                }
            }
            Outcome::Failed(failure) => self.error(failure),
        }
    }

    fn error(&mut self, failure: Failure) {
        match self.errors.iter_mut().find(|e| e.kind == failure.kind) {
            Some(known) => known.count += 1,
            None => self.errors.push(ErrorCount {
                kind: failure.kind,
                count: 1,
                example: failure.message,
            }),
        }
    }

    /// Add another task's tally to this one.
    pub(super) fn merge(&mut self, other: Stats) {
        // Both histograms resize themselves, so adding cannot run out of range.
        if let Err(e) = self.latency.add(&other.latency) {
            tracing::warn!("latency histograms did not merge: {e}");
        }
        self.ok += other.ok;
        for (status, count) in other.statuses {
            match self.statuses.iter_mut().find(|(s, _)| *s == status) {
                Some((_, mine)) => *mine += count,
                None => self.statuses.push((status, count)),
            }
        }
        for error in other.errors {
            match self.errors.iter_mut().find(|e| e.kind == error.kind) {
                Some(mine) => mine.count += error.count,
                None => self.errors.push(error),
            }
        }
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.handshakes += other.handshakes;
        self.resumed += other.resumed;
        self.last_end = match (self.last_end, other.last_end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// A task that died (it cannot, short of a bug): its requests are lost, say so.
    pub(super) fn lost_task(&mut self, why: String) {
        self.error(Failure {
            kind: Cow::Borrowed("internal"),
            message: why,
        });
    }

    /// The report of a run measured from `record_from`.
    pub(super) fn report(self, plan: &BenchPlan, record_from: Instant) -> BenchReport {
        let duration = self.last_end.map_or(Duration::ZERO, |end| {
            end.saturating_duration_since(record_from)
        });
        let seconds = duration.as_secs_f64();
        let h = &self.latency;
        let latency = if h.is_empty() {
            Latency::default()
        } else {
            Latency {
                p50: h.value_at_quantile(0.50),
                p90: h.value_at_quantile(0.90),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
                mean: (h.mean() * 10.0).round() / 10.0,
            }
        };
        BenchReport {
            mode: plan.mode,
            url: plan.target.url(),
            http: if plan.http2 { "HTTP/2" } else { "HTTP/1.1" },
            connections: plan.connections,
            streams: plan.streams_per_connection(),
            threads: plan.threads,
            rate: plan.rate,
            duration_s: (seconds * 1000.0).round() / 1000.0,
            requests_ok: self.ok,
            ops_per_s: if seconds > 0.0 {
                (self.ok as f64 / seconds * 10.0).round() / 10.0
            } else {
                0.0
            },
            latency_us: latency,
            bytes_read: self.bytes_read,
            bytes_written: self.bytes_written,
            errors: self
                .errors
                .iter()
                .map(|e| (e.kind.to_string(), e.count))
                .collect(),
            statuses: self.statuses.iter().copied().collect(),
            resumed_fraction: (plan.mode.connection_per_request() && self.handshakes > 0)
                .then(|| self.resumed as f64 / self.handshakes as f64),
            error_examples: self
                .errors
                .into_iter()
                .filter(|e| !is_status_class(&e.kind))
                .map(|e| (e.kind.into_owned(), e.example))
                .collect(),
        }
    }
}

impl Failure {
    /// TCP could not connect.
    pub(super) fn connect(addr: SocketAddr, error: &io::Error) -> Failure {
        let message = if error.kind() == io::ErrorKind::ConnectionRefused {
            format!("connection refused by {addr}: nothing is listening there")
        } else {
            format!("cannot connect to {addr}: {error}")
        };
        Failure {
            kind: Cow::Borrowed("connect"),
            message,
        }
    }

    /// The TLS handshake failed, or the server's verdict on it came with a later read.
    pub(super) fn tls(error: ProbeError) -> Failure {
        let kind = match &error {
            ProbeError::CertificateRequired { alert, .. }
            | ProbeError::RefusedOurCertificate { alert, .. }
            | ProbeError::Alert { alert } => Cow::Owned(alert.clone()),
            ProbeError::Certificate { check, .. } => Cow::Borrowed(*check),
            ProbeError::Io(e) => Cow::Borrowed(io_kind(e)),
            other => Cow::Borrowed(other.check()),
        };
        Failure {
            kind,
            message: error.to_string(),
        }
    }

    /// `--http2` and the server chose otherwise.
    pub(super) fn no_http2() -> Failure {
        Failure {
            kind: Cow::Borrowed("no_http2"),
            message: "the server did not agree to HTTP/2 (ALPN); leave out --http2".into(),
        }
    }

    /// No answer in time.
    pub(super) fn timeout(limit: Duration) -> Failure {
        Failure {
            kind: Cow::Borrowed("timeout"),
            message: format!("no answer within the --timeout of {limit:?}"),
        }
    }

    /// A new connection closed before answering anything.
    pub(super) fn closed_unanswered() -> Failure {
        Failure {
            kind: Cow::Borrowed("closed"),
            message: "the server closed a new connection before answering".into(),
        }
    }

    /// hyper failed (the TLS error under it, when there was one, is taken first).
    pub(super) fn http(error: &hyper::Error) -> Failure {
        let message = mtls_tls::cause::describe(error);
        let io = mtls_tls::cause::find::<io::Error>(error).map(io_kind);
        let kind = if error.is_timeout() {
            "timeout"
        } else if let Some(kind) = io {
            kind
        } else if error.is_incomplete_message() || error.is_canceled() || error.is_closed() {
            "closed"
        } else if error.is_parse() {
            "http_parse"
        } else {
            "http"
        };
        Failure {
            kind: Cow::Borrowed(kind),
            message,
        }
    }
}

/// `1xx` ... `5xx` (`other` for a status outside 100..=599).
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other_status",
    }
}

/// Whether an error kind is a status class, which the status warnings already tell.
fn is_status_class(kind: &str) -> bool {
    matches!(kind, "1xx" | "2xx" | "3xx" | "4xx" | "5xx" | "other_status")
}

fn reason(status: u16) -> Option<&'static str> {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
}

fn io_kind(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::UnexpectedEof => "closed",
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => "reset",
        io::ErrorKind::TimedOut => "timeout",
        _ => "io",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::{BenchFlags, BenchPlan};

    fn plan() -> BenchPlan {
        BenchPlan::try_from(BenchFlags {
            get: crate::request::GetFlags {
                url: "https://a.test/".into(),
                ca: vec!["ca.crt".into()],
                ..crate::request::GetFlags::default()
            },
            requests: Some(10),
            ..BenchFlags::default()
        })
        .expect("plan")
    }

    #[test]
    fn non_2xx_is_never_a_success() {
        let t0 = Instant::now();
        let mut a = Stats::new();
        let mut b = Stats::new();
        for i in 0..3 {
            let end = t0 + Duration::from_micros(100 * (i + 1));
            a.record(t0, end, Outcome::Status(200), (10, 5), None);
        }
        // Far beyond the histogram's first range: it grows rather than clamps.
        b.record(
            t0,
            t0 + Duration::from_millis(250),
            Outcome::Status(200),
            (0, 0),
            None,
        );
        b.record(t0, t0, Outcome::Status(403), (7, 5), None);
        b.record(
            t0,
            t0 + Duration::from_secs(1),
            Outcome::Failed(Failure::timeout(Duration::from_secs(1))),
            (0, 0),
            None,
        );
        a.merge(b);
        let report = a.report(&plan(), t0);
        assert_eq!(report.requests_ok, 4);
        assert_eq!(report.errors["4xx"], 1);
        assert_eq!(report.errors["timeout"], 1);
        assert_eq!(report.statuses[&403], 1);
        assert_eq!(report.bytes_read, 37);
        assert_eq!(report.latency_us.p50, 200);
        assert!(
            report.latency_us.max.abs_diff(250_000) < 250,
            "{:?}",
            report.latency_us
        );
        assert_eq!(report.duration_s, 1.0);
        assert!(report.failed());
        let warnings = report.warnings().join("\n");
        assert!(
            warnings.contains("1 of 5 responses were 403 Forbidden — this is not a success"),
            "{warnings}"
        );
        assert!(warnings.contains("failed: timeout"), "{warnings}");
        assert!(!report.error_examples.contains_key("4xx"));
    }

    #[test]
    fn only_2xx_is_a_clean_run() {
        let t0 = Instant::now();
        let mut s = Stats::new();
        s.record(
            t0,
            t0 + Duration::from_millis(2),
            Outcome::Status(204),
            (0, 0),
            None,
        );
        let report = s.report(&plan(), t0);
        assert!(!report.failed());
        assert!(report.warnings().is_empty());
        assert_eq!(report.ops_per_s, 500.0);
        assert!(
            Stats::new().report(&plan(), t0).failed(),
            "nothing answered"
        );
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(101), "1xx");
        assert_eq!(status_class(302), "3xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(999), "other_status");
    }
}

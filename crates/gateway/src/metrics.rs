//! Counters an operator alerts on, served as OpenMetrics text on the `metrics` address.
//!
//! Every refusal is counted by the check that failed — the same `check=` name the log line
//! carries — so "why are clients being rejected?" is one query:
//! `sum by (check) (rate(mtls_tls_refusals_total[5m]))`. Label values are static strings,
//! so counting allocates nothing.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The gateway's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    handshakes: Family<HandshakeLabels, Counter>,
    tls_refusals: Family<CheckLabels, Counter>,
    requests: Family<StatusLabels, Counter>,
    request_refusals: Family<CheckLabels, Counter>,
    upstream_errors: Family<CheckLabels, Counter>,
    internal_errors: Family<CheckLabels, Counter>,
    connections: Gauge,
    waiting: Gauge,
    reading: Gauge,
    writing: Gauge,
    cap_reached: Counter,
    timed_out: Family<TimeoutLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    last_reload: Gauge,
    revoked_while_connected: Counter,
    resumptions_refused: Counter,
    certificate_expiry: Family<CertificateLabels, Gauge>,
    crl_next_update: Family<CrlLabels, Gauge>,
    crl_entries: Family<CrlLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    role: &'static str,
    file: String,
    subject: String,
    serial: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CrlLabels {
    file: String,
    issuer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeoutLabels {
    timeout: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandshakeLabels {
    protocol: &'static str,
    resumed: &'static str,
    client_verify: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    check: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    code: &'static str,
}

impl Metrics {
    pub(crate) fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("mtls");
        let handshakes = Family::<HandshakeLabels, Counter>::default();
        let tls_refusals = Family::<CheckLabels, Counter>::default();
        let requests = Family::<StatusLabels, Counter>::default();
        let request_refusals = Family::<CheckLabels, Counter>::default();
        let upstream_errors = Family::<CheckLabels, Counter>::default();
        let internal_errors = Family::<CheckLabels, Counter>::default();
        let connections = Gauge::default();
        let waiting = Gauge::default();
        let cap_reached = Counter::default();
        let reading = Gauge::default();
        let writing = Gauge::default();
        let timed_out = Family::<TimeoutLabels, Counter>::default();
        registry.register(
            "tls_handshakes",
            "Completed TLS handshakes",
            handshakes.clone(),
        );
        registry.register(
            "tls_refusals",
            "TLS handshakes refused, by the check that failed",
            tls_refusals.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by status class",
            requests.clone(),
        );
        registry.register(
            "http_refusals",
            "HTTP requests refused: a client-certificate rule (403), a Host/SNI mismatch (421), a bad path or Host (400)",
            request_refusals.clone(),
        );
        registry.register(
            "upstream_errors",
            "Failed attempts to reach an upstream (502/504), by reason",
            upstream_errors.clone(),
        );
        registry.register(
            "internal_errors",
            "Requests that failed through the gateway's own fault, by check",
            internal_errors.clone(),
        );
        registry.register(
            "connections_open",
            "Client connections open now",
            connections.clone(),
        );
        registry.register(
            "connections_waiting",
            "HTTP/1.1 keep-alive connections idle between requests, their buffers released (nginx's Waiting)",
            waiting.clone(),
        );
        registry.register(
            "connections_reading",
            "Connections whose request head is arriving (nginx's Reading; refreshed every 250 ms)",
            reading.clone(),
        );
        registry.register(
            "connections_writing",
            "Connections with a request in flight (nginx's Writing; refreshed every 250 ms)",
            writing.clone(),
        );
        registry.register(
            "connections_timed_out",
            "Connections closed by a deadline: client_header_timeout, send_timeout, keepalive_timeout, client_body_timeout",
            timed_out.clone(),
        );
        registry.register(
            "connections_cap_reached",
            "Times max_connections was reached and accepting paused until a connection closed",
            cap_reached.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        let last_reload = Gauge::default();
        let revoked_while_connected = Counter::default();
        registry.register(
            "reloads",
            "Reloads (SIGHUP, mtls serve -s reload, a watched file changed) by result: ok, or error (the previous configuration kept serving)",
            reloads.clone(),
        );
        registry.register(
            "last_reload_success_timestamp_seconds",
            "When the configuration last loaded, at start or by a reload (Unix time)",
            last_reload.clone(),
        );
        registry.register(
            "connections_closed_revoked",
            "Connections closed after their requests because a reload brought a CRL that revokes their client",
            revoked_while_connected.clone(),
        );
        let resumptions_refused = Counter::default();
        registry.register(
            "resumptions_refused_revoked",
            "Resumed sessions refused because their client certificate is revoked now",
            resumptions_refused.clone(),
        );
        let certificate_expiry = Family::<CertificateLabels, Gauge>::default();
        registry.register(
            "certificate_expiry_seconds",
            "Seconds until each certificate the gateway serves or trusts expires (role: server, client_ca, trusted_ca, proxy_client); negative once expired",
            certificate_expiry.clone(),
        );
        let crl_next_update = Family::<CrlLabels, Gauge>::default();
        registry.register(
            "crl_next_update_seconds",
            "Seconds until each CRL's nextUpdate; negative: the CRL has expired and its issuer's clients are refused",
            crl_next_update.clone(),
        );
        let crl_entries = Family::<CrlLabels, Gauge>::default();
        registry.register(
            "crl_entries",
            "Revoked certificates listed in each CRL",
            crl_entries.clone(),
        );
        last_reload.set(unix_now());
        Arc::new(Metrics {
            resumptions_refused,
            certificate_expiry,
            crl_next_update,
            crl_entries,
            reloads,
            last_reload,
            revoked_while_connected,
            registry,
            handshakes,
            tls_refusals,
            requests,
            request_refusals,
            upstream_errors,
            internal_errors,
            connections,
            waiting,
            reading,
            writing,
            cap_reached,
            timed_out,
        })
    }

    /// A reload ended: the new site serves (`ok`), or the old one still does.
    pub(crate) fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
        if ok {
            self.last_reload.set(unix_now());
        }
    }

    /// A resumed session was refused: its client is revoked now.
    pub(crate) fn resumption_refused_revoked(&self) {
        self.resumptions_refused.inc();
    }

    /// Set the expiry gauges from what the current site loaded, as of now (called before
    /// each scrape, so the seconds are fresh and a reload's old files are gone).
    pub(crate) fn inventory(&self, inventory: &crate::inventory::Inventory) {
        let now = unix_now();
        self.certificate_expiry.clear();
        for cert in &inventory.certificates {
            self.certificate_expiry
                .get_or_create(&CertificateLabels {
                    role: cert.role,
                    file: cert.file.display().to_string(),
                    subject: cert.subject.clone(),
                    serial: cert.serial.clone(),
                })
                .set(cert.not_after - now);
        }
        self.crl_next_update.clear();
        self.crl_entries.clear();
        for crl in &inventory.crls {
            let labels = CrlLabels {
                file: crl.file.display().to_string(),
                issuer: crl.issuer.clone(),
            };
            if let Some(next) = crl.next_update {
                self.crl_next_update.get_or_create(&labels).set(next - now);
            }
            self.crl_entries
                .get_or_create(&labels)
                .set(i64::try_from(crl.entries).unwrap_or(i64::MAX));
        }
    }

    /// A connection is closing because its client was revoked by a reload.
    pub(crate) fn revoked_while_connected(&self) {
        self.revoked_while_connected.inc();
    }

    /// The connection states the sweep counted.
    pub(crate) fn connection_states(&self, reading: i64, writing: i64) {
        self.reading.set(reading);
        self.writing.set(writing);
    }

    /// A connection (or request) ended by the deadline named `timeout`.
    pub(crate) fn timed_out(&self, timeout: &'static str) {
        self.timed_out
            .get_or_create(&TimeoutLabels { timeout })
            .inc();
    }

    pub(crate) fn cap_reached(&self) {
        self.cap_reached.inc();
    }

    pub(crate) fn handshake(&self, info: &mtls_tls::HandshakeInfo) {
        let client_verify = match info.verify {
            mtls_tls::VerifyStatus::Success => "SUCCESS",
            mtls_tls::VerifyStatus::Failed(_) => "FAILED",
            mtls_tls::VerifyStatus::None => "NONE",
        };
        self.handshakes
            .get_or_create(&HandshakeLabels {
                protocol: info.protocol,
                resumed: if info.resumed { "true" } else { "false" },
                client_verify,
            })
            .inc();
    }

    pub(crate) fn tls_refusal(&self, check: &'static str) {
        self.tls_refusals
            .get_or_create(&CheckLabels { check })
            .inc();
    }

    pub(crate) fn request(&self, status: http::StatusCode) {
        let code = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests.get_or_create(&StatusLabels { code }).inc();
    }

    pub(crate) fn request_refusal(&self, check: &'static str) {
        self.request_refusals
            .get_or_create(&CheckLabels { check })
            .inc();
    }

    pub(crate) fn internal_error(&self, check: &'static str) {
        self.internal_errors
            .get_or_create(&CheckLabels { check })
            .inc();
    }

    pub(crate) fn upstream_error(&self, check: &'static str) {
        self.upstream_errors
            .get_or_create(&CheckLabels { check })
            .inc();
    }

    /// Count a connection as open until the returned guard is dropped.
    pub(crate) fn open_connection(self: &Arc<Metrics>) -> ConnectionGuard {
        self.connections.inc();
        ConnectionGuard(self.clone())
    }

    /// Count a keep-alive connection as waiting (hibernating) until the guard is dropped.
    pub(crate) fn waiting_connection(self: &Arc<Metrics>) -> WaitingGuard {
        self.waiting.inc();
        WaitingGuard(self.clone())
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Keeps a connection counted in `mtls_connections_open`.
#[derive(Debug)]
pub(crate) struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// Keeps a connection counted in `mtls_connections_waiting`.
#[derive(Debug)]
pub(crate) struct WaitingGuard(Arc<Metrics>);

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.0.waiting.dec();
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

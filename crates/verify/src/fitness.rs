//! What clients will think of a server's certificate, known at load time: `mtls check`
//! and `mtls serve` warn of it before any client is refused.
//!
//! The chain is not validated here (the server does not hold its clients' trust
//! anchors); what is checked is what every client checks of the leaf itself, with the
//! same check names as [`crate::Check`].

use mtls_pki::db::human_time;
use mtls_pki::dn;
use mtls_pki::show::{describe_certificate, relative, subject_alt_names};
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::Check;
use crate::hostname::PeerName;

/// How much a [`Finding`] matters: an error stops `mtls check` and `mtls serve`; a warning
/// is printed and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Every client will refuse the certificate.
    Error,
    /// Some clients will refuse it, or all will soon.
    Warning,
}

/// One thing wrong with a certificate for the job it is configured for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// A short stable name, as in [`Check::name`].
    pub check: &'static str,
    /// One sentence: the certificate, what is wrong, what clients will do.
    pub message: String,
}

/// A server certificate is about to be warned of when it has fewer days left than this.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// What clients will think of `leaf` as the certificate of a server called `names`
/// (`server_name` values: `api.example.com` or `*.example.com`), at `at`: refused for
/// the wrong extended key usage (anyExtendedKeyUsage alone included), a keyUsage without
/// any TLS server usage (OpenSSL's rule), basicConstraints CA:TRUE (rustls's rule) or
/// outside its validity (errors), expiring within
/// [`EXPIRY_WARNING_DAYS`], without subjectAltName, or not naming a server name (warnings).
/// The chain is not validated here: the server does not hold the clients' trust anchors.
pub fn server_fitness(leaf: &[u8], names: &[String], at: OffsetDateTime) -> Vec<Finding> {
    let Ok((_, cert)) = X509Certificate::from_der(leaf) else {
        return Vec::new(); // Loading the certificate has already said why.
    };
    let mut findings = Vec::new();
    let subject = dn::display(cert.subject());
    let described = describe_certificate(leaf, at).ok();
    if let Ok(Some(eku)) = cert.extended_key_usage()
        && !eku.value.server_auth
    {
        findings.push(Finding {
            severity: Severity::Error,
            check: Check::WrongPurpose.name(),
            message: format!(
                "wrong purpose: certificate {subject} has extended key usage [{}], without \
                 serverAuth: TLS clients refuse it as a server's certificate; make one with \
                 `mtls pki issue server` or `mtls pki sign --profile server`",
                described
                    .as_ref()
                    .map(|i| i.extended_key_usage.join(", "))
                    .unwrap_or_default()
            ),
        });
    }
    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    if at < not_before || at > not_after {
        let (check, when) = if at < not_before {
            (
                Check::NotYetValid,
                format!("is not valid until {}", human_time(not_before)),
            )
        } else {
            (
                Check::Expired,
                format!(
                    "expired on {} ({})",
                    human_time(not_after),
                    relative(not_after, at)
                ),
            )
        };
        findings.push(Finding {
            severity: Severity::Error,
            check: check.name(),
            message: format!(
                "certificate {subject} (serial {}) {when}: every client refuses it",
                serial(&cert)
            ),
        });
    }
    if let Ok(Some(usage)) = cert.key_usage() {
        let usage = usage.value;
        // OpenSSL's sslserver purpose: any one of the three TLS key usages will do. webpki
        // does not look at keyUsage, so only OpenSSL clients refuse; that is most of them.
        if !(usage.digital_signature() || usage.key_encipherment() || usage.key_agreement()) {
            findings.push(Finding {
                severity: Severity::Error,
                check: "wrong_key_usage",
                message: format!(
                    "wrong key usage: certificate {subject} has key usage [{}], without \
                     digitalSignature, keyEncipherment or keyAgreement: OpenSSL clients \
                     (curl) refuse it as a server's certificate (\"unsuitable certificate \
                     purpose\"); make one with `mtls pki issue server` or `mtls pki sign \
                     --profile server`",
                    described
                        .as_ref()
                        .map(|i| i.key_usage.join(", "))
                        .unwrap_or_default()
                ),
            });
        }
    }
    if let Ok(Some(constraints)) = cert.basic_constraints()
        && constraints.value.ca
    {
        findings.push(Finding {
            severity: Severity::Error,
            check: "ca_as_leaf",
            message: format!(
                "CA certificate as the server's: certificate {subject} has basicConstraints \
                 CA:TRUE; rustls clients (mtls get, and every program built on rustls) refuse \
                 a CA certificate as an end entity (CaUsedAsEndEntity); serve a leaf \
                 certificate made with `mtls pki issue server`"
            ),
        });
    }
    let left = not_after - at;
    if left.is_positive() && left.whole_days() < EXPIRY_WARNING_DAYS {
        findings.push(Finding {
            severity: Severity::Warning,
            check: "expires_soon",
            message: format!(
                "certificate {subject} (serial {}) expires {} ({}): renew it",
                serial(&cert),
                relative(not_after, at),
                human_time(not_after)
            ),
        });
    }
    let sans = subject_alt_names(&cert);
    if sans.is_empty() {
        findings.push(Finding {
            severity: Severity::Warning,
            check: "no_subject_alt_name",
            message: format!(
                "certificate {subject} has no subjectAltName: browsers, Go, Java and rustls \
                 ignore the CN, so they refuse it for every name"
            ),
        });
    }
    for name in names {
        let covered = match name.strip_prefix("*.") {
            // A wildcard server_name is covered by the same wildcard, not by one host.
            Some(_) => sans.iter().any(|san| {
                san.strip_prefix("DNS:")
                    .is_some_and(|d| d.eq_ignore_ascii_case(name))
            }),
            None => name
                .parse::<PeerName>()
                .is_ok_and(|peer| crate::hostname::check(&cert, &peer, true).is_ok()),
        };
        if !covered && !sans.is_empty() {
            findings.push(Finding {
                severity: Severity::Warning,
                check: "name_mismatch",
                message: format!(
                    "server_name {name} is not among the names of certificate {subject} \
                     ({}): clients that connect as {name} refuse it",
                    sans.join(", ")
                ),
            });
        }
    }
    findings
}

fn serial(cert: &X509Certificate<'_>) -> String {
    crate::failure::serial_hex(cert.raw_serial())
}

#[cfg(test)]
mod tests {
    use mtls_pki::Profile;
    use mtls_test_support::TestCa;

    use super::*;

    struct Fixture(TestCa);

    impl Fixture {
        fn new() -> Fixture {
            Fixture(TestCa::new())
        }

        fn issue(&mut self, name: &str, profile: Profile, sans: &[&str]) -> Vec<Vec<u8>> {
            let issued = match profile {
                Profile::Server => self.0.server(name, sans),
                _ => self.0.client(name),
            };
            let pem = std::fs::read(issued.cert).expect("the certificate");
            mtls_pki::pem::certificates(&pem, "test")
                .expect("certificates")
                .into_iter()
                .map(|c| c.to_vec())
                .collect()
        }
    }

    #[test]
    fn server_fitness_names_what_clients_will_refuse() {
        let mut f = Fixture::new();
        let now = OffsetDateTime::now_utc();
        let checks = |leaf: &[u8], names: &[&str], at| -> Vec<(Severity, &'static str)> {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            server_fitness(leaf, &names, at)
                .into_iter()
                .map(|f| (f.severity, f.check))
                .collect()
        };
        let good = f.issue("api", Profile::Server, &["api.local", "*.apps.local"]);
        let names = ["api.local", "x.apps.local", "*.apps.local"];
        // Ten days of life: under the 30 that earn a warning; every name covered.
        assert_eq!(
            checks(&good[0], &names, now),
            vec![(Severity::Warning, "expires_soon")]
        );
        // Seen from 60 days before: nothing to say, except names it lacks (one host, one
        // wildcard that a single host name would not cover).
        let early = now - time::Duration::days(60);
        let not_yet = checks(&good[0], &names, early);
        assert_eq!(not_yet, vec![(Severity::Error, "not_yet_valid")]);
        assert_eq!(
            checks(&good[0], &["other.local", "*.web.local"], now)[1..],
            [
                (Severity::Warning, "name_mismatch"),
                (Severity::Warning, "name_mismatch"),
            ]
        );
        let expired_at = now + time::Duration::days(11);
        let found = server_fitness(&good[0], &[], expired_at);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].severity, found[0].check),
            (Severity::Error, "expired")
        );
        assert!(
            found[0].message.contains("every client refuses it"),
            "{found:?}"
        );

        let client = f.issue("alice", Profile::Client, &[]);
        let found = server_fitness(&client[0], &["alice".into()], now);
        assert_eq!(
            found.len(),
            3,
            "wrong purpose, expires soon, no subjectAltName: {found:?}"
        );
        assert_eq!(
            (found[0].severity, found[0].check),
            (Severity::Error, "wrong_purpose")
        );
        assert!(
            found[0].message.contains("mtls pki issue server"),
            "{found:?}"
        );
        assert!(server_fitness(b"garbage", &[], now).is_empty());
    }
}

//! The certificates and CRLs a site loaded, with the dates an operator alerts on: what
//! `mtls_certificate_expiry_seconds` and `mtls_crl_next_update_seconds` are made of.
//! Read from the files when a site is built, so a scrape costs no file access.

use std::path::PathBuf;

use crate::config::Config;

/// The certificates and CRLs a site loaded, with the dates an operator alerts on
/// (`mtls_certificate_expiry_seconds`, `mtls_crl_next_update_seconds`).
#[derive(Debug, Default)]
pub(crate) struct Inventory {
    pub(crate) certificates: Vec<TrackedCertificate>,
    pub(crate) crls: Vec<TrackedCrl>,
}

/// One certificate of a file the config names.
#[derive(Debug)]
pub(crate) struct TrackedCertificate {
    /// `server`, `client_ca`, `trusted_ca` or `proxy_client`.
    pub(crate) role: &'static str,
    pub(crate) file: PathBuf,
    pub(crate) subject: String,
    pub(crate) serial: String,
    /// notAfter, Unix seconds.
    pub(crate) not_after: i64,
}

/// One CRL of a `crl` file.
#[derive(Debug)]
pub(crate) struct TrackedCrl {
    pub(crate) file: PathBuf,
    pub(crate) issuer: String,
    /// nextUpdate, Unix seconds.
    pub(crate) next_update: Option<i64>,
    pub(crate) entries: usize,
}

impl Inventory {
    /// Describe every certificate and CRL file of `config`. The files loaded already (the
    /// site is built from them), so one that cannot be read now is left out, not an error.
    pub(crate) fn read(config: &Config) -> Inventory {
        let mut inventory = Inventory::default();
        let mut add = |role: &'static str, file: &PathBuf| {
            let Ok(data) = std::fs::read(file) else {
                return;
            };
            let what = file.display().to_string();
            if role == "crl" {
                // Walked, not described: `show` builds a record per revoked serial, which
                // for a large CRL is the memory the gateway's own loading avoids.
                let ders = if mtls_pki::pem::is_pem(&data) {
                    mtls_pki::pem::sections(&data, &what)
                        .map(|s| s.into_iter().map(|s| s.der).collect())
                        .unwrap_or_default()
                } else {
                    vec![data]
                };
                for summary in ders
                    .iter()
                    .filter_map(|der| mtls_verify::crl::summarize(der))
                {
                    inventory.crls.push(TrackedCrl {
                        file: file.clone(),
                        issuer: summary.issuer,
                        next_update: summary.next_update.and_then(|t| i64::try_from(t).ok()),
                        entries: summary.entries,
                    });
                }
                return;
            }
            let Ok(objects) = mtls_pki::show::describe(&data, &what, None) else {
                return;
            };
            for object in objects {
                if let mtls_pki::show::Object::Certificate(cert) = object {
                    inventory.certificates.push(TrackedCertificate {
                        role,
                        file: file.clone(),
                        subject: cert.subject,
                        serial: cert.serial,
                        not_after: cert.not_after.unix_timestamp(),
                    });
                }
            }
        };
        for server in &config.servers {
            if let Some(tls) = &server.tls {
                add("server", &tls.certificate.value);
                for ca in &tls.client_ca {
                    add("client_ca", &ca.value);
                }
                for ca in &tls.trusted_ca {
                    add("trusted_ca", &ca.value);
                }
                for crl in &tls.crl {
                    add("crl", &crl.value);
                }
            }
        }
        for tls in config.proxy_tls() {
            if let Some(cert) = &tls.certificate {
                add("proxy_client", &cert.value);
            }
        }
        inventory
    }
}

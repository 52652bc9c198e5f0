//! A throw-away CA for this crate's unit tests (the other crates use `mtls-test-support`,
//! which cannot be a dev-dependency here without two copies of every type).

use rustls_pki_types::CertificateDer;

use crate::ca::{Ca, InitOptions, IssueRequest, LeafOptions};
use crate::{KeyType, Profile, San, Subject, pem};

pub(crate) struct Fixture {
    _tmp: tempfile::TempDir,
    pub(crate) ca: Ca,
}

impl Fixture {
    /// A P-256 CA named `cn`, valid 100 days.
    pub(crate) fn new(cn: &str, intermediate: bool) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::init(
            &tmp.path().join("pki"),
            &InitOptions {
                common_name: cn.into(),
                key_type: KeyType::P256,
                days: 100,
                intermediate,
                force: false,
            },
        )
        .unwrap();
        Fixture { _tmp: tmp, ca }
    }

    /// Issue a 10-day certificate; returns its chain (leaf first).
    pub(crate) fn issue(
        &mut self,
        name: &str,
        profile: Profile,
        sans: &[&str],
    ) -> Vec<CertificateDer<'static>> {
        self.issue_with(
            name,
            sans,
            LeafOptions {
                profile,
                days: Some(10),
                not_before: None,
                not_after: None,
                crl_urls: vec![],
                ocsp_url: None,
            },
        )
    }

    /// Issue with explicit leaf options; returns the chain (leaf first).
    pub(crate) fn issue_with(
        &mut self,
        name: &str,
        sans: &[&str],
        leaf: LeafOptions,
    ) -> Vec<CertificateDer<'static>> {
        self.ca
            .issue(&IssueRequest {
                name: name.into(),
                subject: Subject::cn(name),
                sans: sans.iter().map(|s| s.parse::<San>().unwrap()).collect(),
                key_type: KeyType::P256,
                leaf,
                force: false,
                key_password: None,
            })
            .unwrap();
        self.ca.credentials(name).unwrap().0
    }

    /// The current CRL, DER.
    pub(crate) fn crl(&self) -> Vec<u8> {
        let text = std::fs::read(self.ca.layout().crl()).unwrap();
        pem::sections(&text, "crl").unwrap().remove(0).der
    }
}

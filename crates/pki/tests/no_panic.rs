//! Whatever bytes arrive — a file on disk, a CSR from a stranger, a .p12 from e-mail — the
//! parsers return an error, never panic. Random bytes, and valid objects with bytes flipped.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use proptest::prelude::*;

use mtls_pki::ca::{Ca, Csr, InitOptions};
use mtls_pki::verify::{VerifyOptions, verify};
use mtls_pki::{KeyType, db::Database, p12, pem, show};

fn sample_objects() -> Vec<Vec<u8>> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let ca = Ca::init(
        &dir,
        &InitOptions {
            common_name: "Fuzz CA".into(),
            key_type: KeyType::P256,
            days: 2,
            intermediate: false,
            force: false,
        },
    )
    .unwrap();
    let (_, csr) = mtls_pki::ca::make_csr(&mtls_pki::Subject::cn("x"), &[], KeyType::P256).unwrap();
    let crl = std::fs::read(ca.layout().crl()).unwrap();
    vec![
        ca.root().to_vec(),
        pem::sections(csr.as_bytes(), "csr").unwrap().remove(0).der,
        pem::sections(&crl, "crl").unwrap().remove(0).der,
        std::fs::read(ca.layout().ca_cert()).unwrap(),
    ]
}

fn exercise(data: &[u8]) {
    let _ = show::describe(data, "input", Some("pw"));
    let _ = show::describe(data, "input", None);
    let _ = pem::certificates(data, "input");
    let _ = pem::private_key(data, "input");
    let _ = Csr::parse(data, "input");
    let _ = p12::import(data, "pw", "input");
    let options = VerifyOptions {
        roots: vec![],
        untrusted: vec![],
        crls: vec![data.to_vec()],
        purpose: None,
        name: Some("x".into()),
        at: time::OffsetDateTime::now_utc(),
        max_depth: 4,
    };
    let _ = verify(data, &options);
    let _ = Database::parse(&String::from_utf8_lossy(data), Path::new("index.txt"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(&data);
    }

    #[test]
    fn flipped_bytes(which in 0usize..4, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut data = sample_objects().swap_remove(which);
        for (at, value) in flips {
            let len = data.len();
            data[at % len] = value;
        }
        exercise(&data);
    }

    #[test]
    fn truncated(which in 0usize..4, cut in any::<usize>()) {
        let data = sample_objects().swap_remove(which);
        exercise(&data[..cut % data.len()]);
    }
}

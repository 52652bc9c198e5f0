//! Whatever bytes arrive — a file on disk, a CSR from a stranger, a .p12 or .jks from
//! e-mail — the parsers return an error, never panic. Random bytes, and valid objects with
//! bytes flipped.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use proptest::prelude::*;

use mtls_pki::ca::{Ca, Csr, InitOptions};
use mtls_pki::verify::{VerifyOptions, verify};
use mtls_pki::{Credentials, KeyType, db::Database, jks, p12, pem, pkcs7, show};

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
    let ca_key = std::fs::read(ca.layout().ca_key()).unwrap();
    let credentials = Credentials::new(&ca_key, "ca.key", vec![ca.root().clone()], "ca").unwrap();
    let options = jks::JksOptions {
        alias: "ca".into(),
        trusted: vec![("root".into(), ca.root().clone())],
    };
    let keystore = jks::export(&credentials, "pw", &options).unwrap();
    // A certs-only SignedData around the root, as openssl crl2pkcs7 -nocrl writes it.
    let root = ca.root().to_vec();
    let tlv = |tag: u8, content: &[u8]| {
        let len = content.len();
        let mut out = vec![tag, 0x82, (len >> 8) as u8, len as u8];
        out.extend_from_slice(content);
        out
    };
    let signed = [
        &[0x02, 0x01, 0x01, 0x31, 0x00, 0x30, 0x0B, 0x06, 0x09][..],
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01],
        &tlv(0xA0, &root),
        &[0x31, 0x00],
    ]
    .concat();
    let p7b = tlv(
        0x30,
        &[
            &[
                0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02,
            ][..],
            &tlv(0xA0, &tlv(0x30, &signed)),
        ]
        .concat(),
    );
    assert_eq!(
        pkcs7::parse(&p7b, "p7b").unwrap().certificates,
        [ca.root().clone()]
    );
    vec![
        ca.root().to_vec(),
        pem::sections(csr.as_bytes(), "csr").unwrap().remove(0).der,
        pem::sections(&crl, "crl").unwrap().remove(0).der,
        std::fs::read(ca.layout().ca_cert()).unwrap(),
        keystore,
        p7b,
    ]
}

fn exercise(data: &[u8]) {
    let _ = show::describe(data, "input", Some("pw"));
    let _ = show::describe(data, "input", None);
    let _ = pem::certificates(data, "input");
    let _ = pem::private_key(data, "input");
    let _ = Csr::parse(data, "input");
    let _ = p12::import(data, "pw", "input");
    for password in [None, Some("pw")] {
        if let Ok(store) = jks::read(data, password, "input") {
            for entry in &store.entries {
                let _ = entry.key("pw", "input");
            }
            let _ = store.key_entry(None, "input");
        }
    }
    let _ = pkcs7::read(data, "input");
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
    fn flipped_bytes(which in 0usize..6, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut data = sample_objects().swap_remove(which);
        for (at, value) in flips {
            let len = data.len();
            data[at % len] = value;
        }
        exercise(&data);
    }

    #[test]
    fn truncated(which in 0usize..6, cut in any::<usize>()) {
        let data = sample_objects().swap_remove(which);
        exercise(&data[..cut % data.len()]);
    }
}

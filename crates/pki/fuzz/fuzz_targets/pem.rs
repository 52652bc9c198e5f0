//! Every loader of certificates, keys, CSRs, CRLs, PKCS#12, JKS and PKCS#7 files on arbitrary
//! bytes: `pem::sections`, `pem::certificates`, `key::private_key`, `key::load` and
//! `show::describe` (without a password, and with the password of the seed bundles). They all take PEM text
//! or raw DER, so one target covers both (the seeds, from ../seed-corpus.sh, hold both). None
//! may panic; what they return must be consistent, and rendering it (text, JSON) must not
//! panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_pki::{key, pem, show};

/// The password of the seed corpus's PKCS#12 bundles.
const PASSWORD: &str = "changeit";

fuzz_target!(|data: &[u8]| {
    if let Ok(sections) = pem::sections(data, "fuzz") {
        assert!(!sections.is_empty(), "Ok with no section");
    }
    if let Ok(certs) = pem::certificates(data, "fuzz") {
        assert!(!certs.is_empty(), "Ok with no certificate");
        if !pem::is_pem(data) {
            assert_eq!(certs.len(), 1, "one DER certificate");
            assert_eq!(certs[0].as_ref(), data, "a DER certificate is the input");
        }
    }
    let _ = key::private_key(data, "fuzz");
    if let Ok(key) = key::load(data, "fuzz") {
        let _ = key::describe(&key);
        let _ = key::public_key_info(&key);
    }
    for password in [None, Some(PASSWORD)] {
        match show::describe(data, "fuzz", password) {
            Ok(objects) => {
                assert!(!objects.is_empty(), "Ok with nothing described");
                for object in &objects {
                    let _ = object.to_string();
                }
                let _ = serde_json::to_string(&objects);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});

//! Whatever bytes arrive — a file on disk, a CSR from a stranger, a .p12 or .jks from
//! e-mail — the parsers return an error, never panic. Random bytes, and valid objects with
//! bytes flipped.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use proptest::prelude::*;

use mtls_pki::ca::{Ca, Csr, InitOptions};
use mtls_pki::{Credentials, KeyType, Password, db::Database, jks, key, p12, pem, pkcs7, show};

/// An EC key encrypted with password "pw" and one PBKDF2 iteration, so that flipped copies
/// are cheap to try: `openssl pkcs8 -topk8 -v2 aes-128-cbc -iter 1 -passout pass:pw
/// -outform DER`.
const PKCS8_ENCRYPTED: &str = "3081eb305606092a864886f70d01050d3049302806092a864886f70d01050c301b\
    0408864d548a5bed5bbe020101300c06082a864886f70d02090500301d0609608648016503040102041064a9\
    2e73576d02b0cbb3540630b15bf30481905a0fe8e91011a91b4dc58f835cf82b3c31d92e24f1ab93d027b316\
    dd044398c9fb5f1f19dfa0724d9d6a216e0595d79b6ed91c905d429bfc71f5245f30cf3a984185de7fdd1512\
    a66d59c32305992e8d4c5f782ee626ac271049a1aff2baa81d85fd3ce683d8c1b899750c7b9dbef3748bef0b\
    6ff1de135045895d85db6bb67ab9ff7f5df0b9117e3626c8ad0d25ff4a";

/// The same key in the traditional form, password "pw": `openssl pkey -aes128 -traditional`.
const TRADITIONAL_ENCRYPTED: &str = "-----BEGIN EC PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-128-CBC,7C913E821E09FE5CE4EA4CE5657B14C0

ZmeooMhHjOxnENSoyIdMf5zI4BukzkeazUBPT4maWWNvTMcI33NtMFgu+KCIUUBU
3jVxbJEUs7m069IQfZy3RtltlKuOAQva2UXz4oC6gz3Fo6uBf2SKFcR6tOMRMZH+
V+K8gRujZuuWzYfOoRBCbpYfjxM91kEcACErCZeTBAs=
-----END EC PRIVATE KEY-----
";

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
        hex::decode(PKCS8_ENCRYPTED).unwrap(),
        TRADITIONAL_ENCRYPTED.as_bytes().to_vec(),
    ]
}

#[test]
fn the_encrypted_samples_open_with_their_password() {
    let pw = [Password::new("pw")];
    for sample in [
        hex::decode(PKCS8_ENCRYPTED).unwrap(),
        TRADITIONAL_ENCRYPTED.into(),
    ] {
        let key = key::private_key_with(&sample, "sample", &pw).unwrap();
        assert!(mtls_pki::key::from_der(&key, "sample").is_ok());
    }
}

fn exercise(data: &[u8]) {
    let _ = show::describe(data, "input", Some("pw"));
    let _ = show::describe(data, "input", None);
    let _ = pem::certificates(data, "input");
    let _ = key::private_key(data, "input");
    let _ = key::private_key_with(data, "input", &[Password::new("pw")]);
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

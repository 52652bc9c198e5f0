//! What one verification costs, next to webpki's on the same chain (the verifier the
//! gateway used before `mtls-verify`): a client chain of three certificates (P-256 root,
//! intermediate, leaf), as `verify_client` meets it in every full handshake.
//!
//! `cargo run --release -p mtls-verify --example cost [ROUNDS]`. Alternates the two in
//! blocks and reports the median of each, in microseconds per verification.

use std::time::Instant;

use mtls_test_support::TestCa;
use mtls_verify::{Policy, Purpose, Verifier};
use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7);
    let mut ca = TestCa::with(true);
    let issued = ca.client("alice");
    let pem = std::fs::read(&issued.chain).expect("chain");
    let chain = mtls_pki::pem::certificates(&pem, "chain").expect("certificates");
    let root_pem = std::fs::read(ca.ca.layout().ca_cert()).expect("root");
    let root: CertificateDer<'static> = mtls_pki::pem::certificates(&root_pem, "root")
        .expect("root")
        .remove(0);
    let (leaf, intermediates) = chain.split_first().expect("a leaf");

    let ours =
        Verifier::new(Policy::new(vec![root.clone()], Some(Purpose::Client))).expect("verifier");
    let anchors = vec![
        webpki::anchor_from_trusted_cert(&root)
            .expect("anchor")
            .to_owned(),
    ];
    let algorithms = webpki::ALL_VERIFICATION_ALGS;

    let block = 2_000;
    let mut mtls = Vec::new();
    let mut webpki_times = Vec::new();
    for round in 0..rounds {
        // Alternate which goes first, so neither always meets a cold cache or a
        // frequency step.
        for turn in 0..2 {
            if (round + turn) % 2 == 0 {
                let start = Instant::now();
                for _ in 0..block {
                    let now = OffsetDateTime::now_utc();
                    ours.check(leaf, intermediates, None, now)
                        .expect("verifies");
                }
                mtls.push(start.elapsed().as_secs_f64() * 1e6 / block as f64);
            } else {
                let start = Instant::now();
                for _ in 0..block {
                    let cert = webpki::EndEntityCert::try_from(leaf).expect("parses");
                    cert.verify_for_usage(
                        algorithms,
                        &anchors,
                        intermediates,
                        UnixTime::now(),
                        webpki::KeyUsage::client_auth(),
                        None,
                        None,
                    )
                    .expect("verifies");
                }
                webpki_times.push(start.elapsed().as_secs_f64() * 1e6 / block as f64);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut mtls), median(&mut webpki_times));
    println!(
        "3-certificate client chain, median of {rounds} blocks of {block}:\n  mtls-verify {a:.1} us\n  webpki      {b:.1} us\n  ratio       {:.2}x",
        a / b
    );
}

//! Whatever a peer sends as its chain, and whatever a CRL file holds, verification answers
//! with a refusal, never a panic: random bytes, and real chains and CRLs with bytes flipped.

#![allow(clippy::unwrap_used)]

use mtls_pki::{Reason, RevokeTarget};
use mtls_test_support::TestCa;
use mtls_verify::{CrlScope, PeerName, Policy, Purpose, Verifier};
use proptest::prelude::*;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

struct Sample {
    root: CertificateDer<'static>,
    chain: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
}

/// One real chain and its CRLs, made once for every case.
static SAMPLE: std::sync::LazyLock<Sample> = std::sync::LazyLock::new(make_sample);

fn sample() -> &'static Sample {
    &SAMPLE
}

fn make_sample() -> Sample {
    let mut ca = TestCa::with(true);
    let issued = ca.server("web", &["web.test", "10.0.0.1"]);
    ca.client("gone");
    ca.ca
        .revoke(&RevokeTarget::Name("gone".into()), Reason::Superseded)
        .unwrap();
    let chain = mtls_pki::pem::certificates(&std::fs::read(issued.chain).unwrap(), "chain")
        .unwrap()
        .into_iter()
        .map(|c| c.to_vec())
        .collect();
    let crls = mtls_pki::pem::sections(&std::fs::read(ca.ca.layout().crl()).unwrap(), "crl")
        .unwrap()
        .into_iter()
        .map(|s| s.der)
        .collect();
    let root =
        mtls_pki::pem::certificates(&std::fs::read(ca.ca.layout().ca_cert()).unwrap(), "root")
            .unwrap()
            .remove(0);
    Sample { root, chain, crls }
}

fn exercise(root: &CertificateDer<'static>, chain: &[Vec<u8>], crls: Vec<Vec<u8>>) {
    let _ = mtls_verify::crl::summarize(crls.first().map_or(&[][..], Vec::as_slice));
    let mut policy = Policy::new(vec![root.clone()], Some(Purpose::Server));
    policy.crls = crls;
    policy.crl_scope = CrlScope::EndEntity;
    let Ok(verifier) = Verifier::new(policy) else {
        return;
    };
    let name: PeerName = "web.test".parse().unwrap();
    let (leaf, rest) = chain.split_first().unwrap();
    let _ = verifier.verify(leaf, rest, Some(&name), OffsetDateTime::now_utc());
    let _ = verifier.revoked(leaf, rest);
    let _ =
        mtls_verify::fitness::server_fitness(leaf, &["web.test".into()], OffsetDateTime::now_utc());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_chains(data in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 1..4)) {
        let s = sample();
        exercise(&s.root, &data, s.crls.clone());
    }

    #[test]
    fn flipped_chains_and_crls(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let s = sample();
        let mut chain = s.chain.clone();
        let mut crls = s.crls.clone();
        let target: &mut Vec<u8> = match which {
            0 | 1 => &mut chain[which],
            n => {
                let count = crls.len();
                &mut crls[(n - 2) % count]
            }
        };
        for (at, value) in flips {
            let len = target.len();
            target[at % len] = value;
        }
        exercise(&s.root, &chain, crls);
    }
}

//! The verifier on chains made by our own CA (`mtls pki`), as the gateway and the client
//! meet them: a root, an intermediate, leaves, CRLs.

use std::path::Path;

use mtls_pki::{Reason, RevokeTarget};
use mtls_test_support::TestCa;
use mtls_verify::{Check, CrlScope, Policy, Purpose, Verifier};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    let pem = std::fs::read(path).expect("reading a certificate file");
    mtls_pki::pem::certificates(&pem, "test").expect("certificates")
}

fn crl(path: &Path) -> Vec<Vec<u8>> {
    let pem = std::fs::read(path).expect("reading the CRL");
    mtls_pki::pem::sections(&pem, "crl")
        .expect("a PEM CRL")
        .into_iter()
        .map(|s| s.der)
        .collect()
}

struct Chain {
    leaf: CertificateDer<'static>,
    intermediates: Vec<CertificateDer<'static>>,
}

fn chain(path: &Path) -> Chain {
    let mut all = certs(path);
    let leaf = all.remove(0);
    Chain {
        leaf,
        intermediates: all,
    }
}

fn verifier(ca: &TestCa, purpose: Purpose) -> Verifier {
    Verifier::new(Policy::new(certs(&ca.ca.layout().ca_cert()), Some(purpose))).expect("a verifier")
}

#[test]
fn a_chain_through_an_intermediate_verifies_and_is_returned_whole() {
    let mut ca = TestCa::with(true);
    let client = chain(&ca.client("alice").chain);
    assert_eq!(client.intermediates.len(), 1);
    let verified = verifier(&ca, Purpose::Client)
        .verify(
            &client.leaf,
            &client.intermediates,
            None,
            OffsetDateTime::now_utc(),
        )
        .expect("verifies");
    let subjects: Vec<&str> = verified.chain.iter().map(|l| l.subject.as_str()).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert_eq!(subjects[0], "CN=alice");
    assert!(verified.chain[2].trusted);
    assert!(!verified.chain[1].trusted);
}

#[test]
fn the_intermediate_is_needed_and_its_absence_is_explained() {
    let mut ca = TestCa::with(true);
    let client = chain(&ca.client("alice").chain);
    let none: [&[u8]; 0] = [];
    let failure = verifier(&ca, Purpose::Client)
        .verify(&client.leaf, &none, None, OffsetDateTime::now_utc())
        .expect_err("refused");
    assert_eq!(failure.check, Check::UnknownIssuer);
    assert!(
        failure.sentence.contains("CN=alice"),
        "{}",
        failure.sentence
    );
    assert_eq!(failure.about.expect("about the leaf").position, 0);
}

#[test]
fn a_server_certificate_is_not_a_client_certificate() {
    let mut ca = TestCa::new();
    let server = chain(&ca.server("web", &["web.test"]).chain);
    let failure = verifier(&ca, Purpose::Client)
        .verify(
            &server.leaf,
            &server.intermediates,
            None,
            OffsetDateTime::now_utc(),
        )
        .expect_err("refused");
    assert_eq!(failure.check, Check::WrongPurpose, "{}", failure.sentence);
    assert!(
        failure.sentence.contains("TLS client"),
        "{}",
        failure.sentence
    );
}

#[test]
fn expiry_and_not_yet_valid_name_the_certificate_and_the_date() {
    let mut ca = TestCa::new();
    let client = chain(&ca.client("alice").chain);
    let v = verifier(&ca, Purpose::Client);
    let later = OffsetDateTime::now_utc() + Duration::days(8);
    let failure = v
        .verify(&client.leaf, &client.intermediates, None, later)
        .expect_err("expired");
    assert_eq!(failure.check, Check::Expired);
    assert!(
        failure.sentence.contains("CN=alice"),
        "{}",
        failure.sentence
    );
    let earlier = OffsetDateTime::now_utc() - Duration::days(2);
    let failure = v
        .verify(&client.leaf, &client.intermediates, None, earlier)
        .expect_err("not yet valid");
    assert_eq!(failure.check, Check::NotYetValid);
}

#[test]
fn a_revoked_client_is_refused_and_the_crl_is_required_in_chain_scope() {
    let mut ca = TestCa::with(true);
    let alice = chain(&ca.client("alice").chain);
    let bob = chain(&ca.client("bob").chain);
    ca.ca
        .revoke(&RevokeTarget::Name("alice".into()), Reason::KeyCompromise)
        .expect("revoking");
    let crls = crl(&ca.ca.layout().crl());
    assert_eq!(crls.len(), 2, "the intermediate's and the root's CRL");
    let mut policy = Policy::new(certs(&ca.ca.layout().ca_cert()), Some(Purpose::Client));
    policy.crls = crls.clone();
    let v = Verifier::new(policy.clone()).expect("verifier");
    let now = OffsetDateTime::now_utc();
    let failure = v
        .verify(&alice.leaf, &alice.intermediates, None, now)
        .expect_err("revoked");
    assert_eq!(failure.check, Check::Revoked, "{}", failure.sentence);
    assert!(
        failure.sentence.contains("keyCompromise"),
        "{}",
        failure.sentence
    );
    let ok = v
        .verify(&bob.leaf, &bob.intermediates, None, now)
        .expect("bob is fine");
    assert_eq!(ok.checked_crls, 2);
    assert!(v.revoked(&alice.leaf, &alice.intermediates).is_some());
    assert!(v.revoked(&bob.leaf, &bob.intermediates).is_none());

    // Only the root's CRL: in chain scope the intermediate's status is unknown.
    policy.crls = crls[1..].to_vec();
    let failure = Verifier::new(policy.clone())
        .expect("verifier")
        .verify(&bob.leaf, &bob.intermediates, None, now)
        .expect_err("fail closed");
    assert_eq!(failure.check, Check::CrlMissing, "{}", failure.sentence);
    policy.crl_scope = CrlScope::EndEntity;
    policy.crls = crls[..1].to_vec();
    Verifier::new(policy)
        .expect("verifier")
        .verify(&bob.leaf, &bob.intermediates, None, now)
        .expect("the leaf's issuer has its CRL");
}

#[test]
fn verify_depth_bounds_the_intermediates() {
    let mut ca = TestCa::with(true);
    let client = chain(&ca.client("alice").chain);
    let mut policy = Policy::new(certs(&ca.ca.layout().ca_cert()), Some(Purpose::Client));
    policy.max_intermediates = Some(0);
    let failure = Verifier::new(policy)
        .expect("verifier")
        .verify(
            &client.leaf,
            &client.intermediates,
            None,
            OffsetDateTime::now_utc(),
        )
        .expect_err("too deep");
    assert_eq!(failure.check, Check::ChainTooDeep, "{}", failure.sentence);
}

#[test]
fn garbage_is_refused_as_malformed_without_panicking() {
    let ca = TestCa::new();
    let v = verifier(&ca, Purpose::Client);
    for bytes in [
        &b""[..],
        b"\x30",
        b"\x30\x03\x02\x01\x00",
        b"not a certificate",
    ] {
        let failure = v
            .verify(bytes, &[bytes], None, OffsetDateTime::now_utc())
            .expect_err("garbage");
        assert_eq!(failure.check, Check::Malformed);
    }
}

#[test]
fn a_remembered_intermediate_signature_never_vouches_for_other_bytes() {
    let mut ca = TestCa::with(true);
    let client = chain(&ca.client("alice").chain);
    let v = verifier(&ca, Purpose::Client);
    let now = OffsetDateTime::now_utc();
    for _ in 0..2 {
        v.verify(&client.leaf, &client.intermediates, None, now)
            .expect("verifies, then verifies from the cache");
    }
    // The same intermediate with one byte of its signature changed: a new certificate to
    // the cache, whose signature fails.
    let mut forged = client.intermediates[0].to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    let failure = v
        .verify(&client.leaf, &[forged], None, now)
        .expect_err("a forged intermediate");
    assert_eq!(failure.check, Check::BadSignature, "{}", failure.sentence);
}

fn pem_crl(pem: &str) -> Vec<u8> {
    mtls_pki::pem::sections(pem.as_bytes(), "crl")
        .expect("a PEM CRL")
        .remove(0)
        .der
}

#[test]
fn of_two_crls_from_one_ca_the_newest_speaks_whatever_the_order() {
    use mtls_test_support::forge;
    let mut ca = TestCa::new();
    let issued = ca.client("alice");
    let alice = chain(&issued.chain);
    let layout = ca.ca.layout();
    let serial = forge::serial_of(&issued.cert);
    let now = OffsetDateTime::now_utc();
    let old = pem_crl(&forge::crl_pem_at(
        &layout.ca_cert(),
        &layout.ca_key(),
        &[],
        now - Duration::hours(2),
    ));
    let new = pem_crl(&forge::crl_pem_at(
        &layout.ca_cert(),
        &layout.ca_key(),
        &[serial],
        now - Duration::hours(1),
    ));
    for crls in [vec![old.clone(), new.clone()], vec![new, old]] {
        let mut policy = Policy::new(certs(&layout.ca_cert()), Some(Purpose::Client));
        policy.crls = crls;
        let failure = Verifier::new(policy)
            .expect("verifier")
            .verify(&alice.leaf, &alice.intermediates, None, now)
            .expect_err("the newer CRL revokes alice");
        assert_eq!(failure.check, Check::Revoked, "{}", failure.sentence);
    }
}

/// `data/crl-serial-not-der.pem`: an openssl-made CRL re-signed with one serial encoded
/// with a leading zero byte (`02 15 00 28 ae ...`), which openssl cannot read either.
#[test]
fn a_crl_whose_serial_is_not_der_is_refused_not_ignored() {
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/crl-serial-not-der.pem"),
    )
    .expect("the fixture");
    let mut policy = Policy::new(Vec::new(), Some(Purpose::Client));
    policy.crls = vec![pem_crl(&pem)];
    let failure = Verifier::new(policy).expect_err("a CRL that would fail open");
    assert_eq!(failure.check, Check::Malformed);
    assert!(
        failure.sentence.contains("leading zero"),
        "{}",
        failure.sentence
    );
}

#[test]
fn a_trusted_ca_presented_as_the_end_entity_is_named_as_such() {
    let ca = TestCa::new();
    let root = certs(&ca.ca.layout().ca_cert()).remove(0);
    let none: [&[u8]; 0] = [];
    let failure = verifier(&ca, Purpose::Server)
        .verify(&root, &none, None, OffsetDateTime::now_utc())
        .expect_err("a CA is no server");
    assert_eq!(failure.check, Check::CaAsLeaf);
    assert!(
        failure
            .sentence
            .contains("is itself one of the trusted CAs"),
        "{}",
        failure.sentence
    );
}

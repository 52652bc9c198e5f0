//! PKCS#7 certificate bundles (.p7b / .p7c): how Windows, IIS, Java's
//! `CertificateFactory.generateCertPath` and many public CAs hand out a certificate with
//! its chain. The file is a "certs-only" SignedData: a signature structure with nothing
//! signed, used as a box for certificates (and sometimes CRLs).
//!
//! ```text
//!   ContentInfo ::= SEQUENCE { contentType OID signedData (1.2.840.113549.1.7.2),
//!                              content [0] EXPLICIT SignedData }
//!   SignedData  ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo SEQUENCE,
//!                              certificates [0] IMPLICIT SET OF Certificate OPTIONAL,
//!                              crls [1] IMPLICIT SET OF CertificateList OPTIONAL,
//!                              signerInfos SET }
//! ```
//!
//! Only the boxes are walked; the certificates and CRLs inside are DER and are handed on
//! byte for byte. The walk accepts BER's indefinite lengths, which some Windows and Java
//! writers use for the outer layers. PEM files carry the label `PKCS7` (openssl
//! crl2pkcs7) or `CMS` (openssl cms).

use rustls_pki_types::CertificateDer;
use x509_parser::asn1_rs::Tag;

use crate::der;
use crate::error::{Error, Result};
use crate::pem;

/// The content bytes of OID 1.2.840.113549.1.7.2, PKCS#7 signedData.
const SIGNED_DATA_OID: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
/// The other PKCS#7 content types (1.2.840.113549.1.7.N), to name them when refused.
const PKCS7_ARC: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07];

/// What a PKCS#7 bundle held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs7 {
    /// The certificates, in file order (a DER SET has no meaningful order; see
    /// [`crate::credentials::as_one_chain`]).
    pub certificates: Vec<CertificateDer<'static>>,
    /// The CRLs, DER.
    pub crls: Vec<Vec<u8>>,
}

/// True when `data` is a PKCS#7 bundle: PEM with a `PKCS7` or `CMS` section, or a DER
/// (or BER) ContentInfo of type signedData.
pub fn looks_like_pkcs7(data: &[u8]) -> bool {
    if pem::is_pem(data) {
        return pem::sections(data, "")
            .is_ok_and(|sections| sections.iter().any(|s| is_pem_label(&s.label)));
    }
    let mut input = data;
    let Ok(info) = der::expect(&mut input, Tag::Sequence, true, "") else {
        return false;
    };
    let mut fields = info.any.data;
    der::expect(&mut fields, Tag::Oid, true, "").is_ok_and(|oid| oid.any.data == SIGNED_DATA_OID)
}

/// True for the PEM labels PKCS#7 bundles are written under.
pub fn is_pem_label(label: &str) -> bool {
    matches!(label, "PKCS7" | "CMS")
}

/// Read a bundle, PEM (every `PKCS7` / `CMS` section) or DER.
pub fn read(data: &[u8], what: &str) -> Result<Pkcs7> {
    if !pem::is_pem(data) {
        return parse(data, what);
    }
    let mut all = Pkcs7::default();
    let mut found = false;
    for section in pem::sections(data, what)? {
        if is_pem_label(&section.label) {
            let one = parse(&section.der, what)?;
            all.certificates.extend(one.certificates);
            all.crls.extend(one.crls);
            found = true;
        }
    }
    if !found {
        return Err(Error::malformed(what, "no PKCS7 section in the PEM"));
    }
    Ok(all)
}

/// Read one DER (or BER) ContentInfo holding a SignedData.
pub fn parse(data: &[u8], what: &str) -> Result<Pkcs7> {
    let mut input = data;
    let info = der::expect(&mut input, Tag::Sequence, true, what)?;
    if !input.is_empty() {
        return Err(Error::malformed(
            what,
            format!("{} bytes after the PKCS#7 structure", input.len()),
        ));
    }
    let mut fields = info.any.data;
    let oid = der::expect(&mut fields, Tag::Oid, true, what)?;
    if oid.any.data != SIGNED_DATA_OID {
        let kind = match oid.any.data.strip_prefix(PKCS7_ARC) {
            Some([1]) => "data",
            Some([3]) => "envelopedData",
            Some([5]) => "digestedData",
            Some([6]) => "encryptedData",
            _ => "",
        };
        let detail = if kind.is_empty() {
            "not a PKCS#7 SignedData (the certificate bundle type)".to_owned()
        } else {
            format!("a PKCS#7 {kind} message, not a certificate bundle (signedData)")
        };
        return Err(Error::malformed(what, detail));
    }
    let content = der::next(&mut fields, true, what)?;
    if !content.is_context(0) {
        return Err(Error::malformed(what, "the SignedData has no [0] content"));
    }
    let mut content = content.any.data;
    let signed = der::expect(&mut content, Tag::Sequence, true, what)?;
    let mut fields = signed.any.data;
    der::expect(&mut fields, Tag::Integer, true, what)?;
    der::expect(&mut fields, Tag::Set, true, what)?;
    der::expect(&mut fields, Tag::Sequence, true, what)?;
    let mut bundle = Pkcs7::default();
    while !fields.is_empty() {
        let field = der::next(&mut fields, true, what)?;
        if field.is_context(0) {
            let mut certs = field.any.data;
            while !certs.is_empty() {
                let n = bundle.certificates.len() + 1;
                let cert = der::next(&mut certs, true, what)?;
                // The other CertificateChoices ([0] extended, [1]/[2] attribute
                // certificates, [3] other) are not X.509 certificates: not ours to list.
                if !cert.is(Tag::Sequence) {
                    continue;
                }
                match x509_parser::parse_x509_certificate(cert.raw) {
                    Ok(([], _)) => bundle
                        .certificates
                        .push(CertificateDer::from(cert.raw.to_vec())),
                    Ok(_) => {
                        return Err(Error::malformed(
                            what,
                            format!("certificate #{n} has trailing bytes"),
                        ));
                    }
                    Err(e) => {
                        return Err(Error::malformed(
                            what,
                            format!("certificate #{n} does not parse: {e}"),
                        ));
                    }
                }
            }
        } else if field.is_context(1) {
            let mut crls = field.any.data;
            while !crls.is_empty() {
                let crl = der::next(&mut crls, true, what)?;
                if crl.is(Tag::Sequence) {
                    bundle.crls.push(crl.raw.to_vec());
                }
            }
        } else {
            // signerInfos: the signatures of a signed message, nothing of ours.
            break;
        }
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Profile;
    use crate::testing::Fixture;

    /// A certs-only SignedData around `certs` and `crls`, as openssl crl2pkcs7 writes it.
    fn bundle(certs: &[&[u8]], crls: &[&[u8]], indefinite: bool) -> Vec<u8> {
        let wrap = |tag: u8, content: &[u8]| {
            if indefinite {
                [&[tag, 0x80][..], content, &[0, 0]].concat()
            } else {
                der::tlv(tag, content)
            }
        };
        let mut signed = [
            der::tlv(0x02, &[1]),
            der::tlv(0x31, &[]),
            der::tlv(0x30, &der::tlv(0x06, &[PKCS7_ARC, &[1]].concat())),
            wrap(0xA0, &certs.concat()),
        ]
        .concat();
        if !crls.is_empty() {
            signed.extend(wrap(0xA1, &crls.concat()));
        }
        signed.extend(der::tlv(0x31, &[]));
        wrap(
            0x30,
            &[
                der::tlv(0x06, SIGNED_DATA_OID),
                wrap(0xA0, &wrap(0x30, &signed)),
            ]
            .concat(),
        )
    }

    #[test]
    fn certificates_and_crls_come_out_as_they_went_in() {
        let mut f = Fixture::new("P7 CA", true);
        let chain = f.issue("api", Profile::Server, &["api.local"]);
        let crl = f.crl();
        for indefinite in [false, true] {
            let der = bundle(&[&chain[0], &chain[1]], &[&crl], indefinite);
            assert!(looks_like_pkcs7(&der));
            let read_back = read(&der, "b.p7b").unwrap();
            assert_eq!(read_back.certificates, chain, "indefinite={indefinite}");
            assert_eq!(read_back.crls, std::slice::from_ref(&crl));
        }
        let der = bundle(&[&chain[0]], &[], false);
        let text = pem::encode("PKCS7", &der);
        assert_eq!(
            read(text.as_bytes(), "b.p7b").unwrap().certificates,
            chain[..1]
        );
        let err = read(pem::encode("CERTIFICATE", &chain[0]).as_bytes(), "c.pem").unwrap_err();
        assert!(err.to_string().contains("no PKCS7 section"), "{err}");
        assert!(looks_like_pkcs7(text.as_bytes()));
        assert!(!looks_like_pkcs7(&chain[0]));
        assert!(!looks_like_pkcs7(
            pem::encode("CERTIFICATE", &chain[0]).as_bytes()
        ));
    }

    #[test]
    fn other_messages_and_damage_are_named() {
        let mut f = Fixture::new("P7 CA", false);
        let chain = f.issue("api", Profile::Server, &["api.local"]);
        let enveloped = der::tlv(
            0x30,
            &[
                der::tlv(0x06, &[PKCS7_ARC, &[3]].concat()),
                der::tlv(0xA0, &[]),
            ]
            .concat(),
        );
        let err = parse(&enveloped, "e.p7m").unwrap_err().to_string();
        assert!(err.contains("envelopedData"), "{err}");
        let good = bundle(&[&chain[0]], &[], false);
        let err = parse(&good[..good.len() - 3], "cut.p7b")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cut.p7b: bad DER"), "{err}");
        let mut longer = good.clone();
        longer.push(0);
        let err = parse(&longer, "long.p7b").unwrap_err().to_string();
        assert!(err.contains("1 bytes after"), "{err}");
        // A SEQUENCE in the certificate set that is no certificate.
        let fake = der::tlv(0x30, &der::tlv(0x02, &[5]));
        let err = parse(&bundle(&[&fake], &[], false), "f.p7b")
            .unwrap_err()
            .to_string();
        assert!(err.contains("certificate #1 does not parse"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300), cut in any::<usize>()) {
            let _ = read(&data, "g");
            let _ = looks_like_pkcs7(&data);
            // Inside a well-formed envelope, too.
            let wrapped = bundle(&[&data], &[&data], cut % 2 == 0);
            let _ = parse(&wrapped, "g");
            let _ = parse(&wrapped[..cut % wrapped.len()], "g");
        }
    }
}

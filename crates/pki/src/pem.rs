//! Reading certificates, keys, CSRs and CRLs from PEM or DER, whichever the file holds.
//!
//! Users hand us files made by openssl, keytool exports, browsers and cloud consoles; the
//! same command must accept `-----BEGIN CERTIFICATE-----` text and raw DER alike. Errors
//! name the file and say what was expected, so "truncated PEM" is never a mystery.

use base64::Engine as _;
use rustls_pki_types::pem::{self, PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// One decoded PEM section (or a whole DER file, whose kind we had to guess).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The PEM label, e.g. `CERTIFICATE`, or `DER` for a binary file.
    pub label: String,
    /// The DER bytes.
    pub der: Vec<u8>,
}

/// True when `data` looks like PEM text rather than binary DER.
pub fn is_pem(data: &[u8]) -> bool {
    let trimmed = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&data[..0], |start| &data[start..]);
    // PEM files may carry explanatory text before the first section (openssl x509 -text).
    trimmed.starts_with(b"-----BEGIN ") || memchr_begin(data)
}

fn memchr_begin(data: &[u8]) -> bool {
    contains(data, b"-----BEGIN ")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every PEM section in `data`, in order. `what` names the input for error messages.
pub fn sections(data: &[u8], what: &str) -> Result<Vec<Section>> {
    let mut out = Vec::new();
    for item in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(data) {
        let (kind, der) = item.map_err(|e| Error::malformed(what, describe_pem_error(&e)))?;
        out.push(Section {
            label: label(kind).to_owned(),
            der,
        });
    }
    if out.is_empty() {
        return Err(Error::malformed(
            what,
            "no PEM section found (expected -----BEGIN ...-----)",
        ));
    }
    Ok(out)
}

/// All certificates in `data` (PEM with one or more sections, or a single DER certificate).
/// Each one is parsed, so garbage inside a well-formed PEM envelope is refused here.
pub fn certificates(data: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let ders: Vec<Vec<u8>> = if is_pem(data) {
        let sections = sections(data, what)?;
        let certs: Vec<Vec<u8>> = sections
            .into_iter()
            .filter(|s| s.label == "CERTIFICATE")
            .map(|s| s.der)
            .collect();
        if certs.is_empty() {
            return Err(Error::malformed(what, "no CERTIFICATE section in the PEM"));
        }
        certs
    } else {
        vec![data.to_vec()]
    };
    ders.into_iter()
        .enumerate()
        .map(|(i, der)| {
            let (rest, _) = x509_parser::parse_x509_certificate(&der).map_err(|e| {
                Error::malformed(what, format!("certificate #{} does not parse: {e}", i + 1))
            })?;
            if !rest.is_empty() {
                return Err(Error::malformed(
                    what,
                    format!("certificate #{} has {} trailing bytes", i + 1, rest.len()),
                ));
            }
            Ok(CertificateDer::from(der))
        })
        .collect()
}

/// The one private key in `data` (PKCS#8, SEC1 or PKCS#1; PEM or DER).
pub fn private_key(data: &[u8], what: &str) -> Result<PrivateKeyDer<'static>> {
    if is_pem(data) {
        if contains(data, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(Error::malformed(
                what,
                "the key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN.key)",
            ));
        }
        PrivateKeyDer::from_pem_slice(data).map_err(|e| match e {
            pem::Error::NoItemsFound => Error::malformed(what, "no PRIVATE KEY section in the PEM"),
            e => Error::malformed(what, describe_pem_error(&e)),
        })
    } else {
        PrivateKeyDer::try_from(data.to_vec())
            .map_err(|e| Error::malformed(what, format!("not a DER private key: {e}")))
    }
}

/// Encode DER as PEM with the given label, 64 columns, trailing newline.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Several certificates as one PEM bundle.
pub fn encode_certificates<'a>(certs: impl IntoIterator<Item = &'a CertificateDer<'a>>) -> String {
    certs
        .into_iter()
        .map(|c| encode("CERTIFICATE", c.as_ref()))
        .collect()
}

fn label(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "CERTIFICATE",
        SectionKind::PublicKey => "PUBLIC KEY",
        SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
        SectionKind::PrivateKey => "PRIVATE KEY",
        SectionKind::EcPrivateKey => "EC PRIVATE KEY",
        SectionKind::Crl => "X509 CRL",
        SectionKind::Csr => "CERTIFICATE REQUEST",
        _ => "UNKNOWN",
    }
}

fn describe_pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "truncated PEM: no closing {}",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => {
            format!("bad PEM header line {:?}", String::from_utf8_lossy(line))
        }
        pem::Error::Base64Decode(d) => format!("corrupt PEM body (base64: {d})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_pem_names_the_missing_end() {
        let data = b"-----BEGIN CERTIFICATE-----\nMIIB\n";
        let err = certificates(data, "x.crt").unwrap_err().to_string();
        assert!(err.contains("x.crt") && err.contains("truncated"), "{err}");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let err = certificates(b"\x30\x03\x01\x01\xff", "g.der")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not parse"), "{err}");
        let err = certificates(b"hello", "g.txt").unwrap_err().to_string();
        assert!(err.contains("g.txt"), "{err}");
    }

    #[test]
    fn pem_round_trip() {
        let der = (0..200u8).collect::<Vec<_>>();
        let text = encode("X509 CRL", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        let s = sections(text.as_bytes(), "t").unwrap();
        assert_eq!(
            s,
            vec![Section {
                label: "X509 CRL".into(),
                der
            }]
        );
    }
}

//! Reading certificates, keys, CSRs and CRLs from PEM or DER, whichever the file holds.
//!
//! Users hand us files made by openssl, keytool exports, browsers and cloud consoles; the
//! same command must accept `-----BEGIN CERTIFICATE-----` text and raw DER alike. Errors
//! name the file and say what was expected, so "truncated PEM" is never a mystery.

use base64::Engine as _;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem;

use crate::error::{Error, Result};

/// One decoded PEM section (or a whole DER file, whose kind we had to guess).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The PEM label, e.g. `CERTIFICATE`, or `DER` for a binary file.
    pub label: String,
    /// The DER bytes (for a traditional encrypted key, the encrypted bytes).
    pub der: Vec<u8>,
    /// RFC 1421 header lines as (name, value), e.g. `("DEK-Info", "AES-128-CBC,00..")`:
    /// what decrypts a traditional encrypted key.
    pub headers: Vec<(String, String)>,
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

/// Every PEM section in `data`, in order, whatever its label. `what` names the input for
/// error messages.
///
/// OpenSSL's legacy labels are read as today's (`NEW CERTIFICATE REQUEST`, which keytool
/// writes, and `X509 CERTIFICATE` as `CERTIFICATE REQUEST` and `CERTIFICATE`), and a label
/// we do not use (`ENCRYPTED PRIVATE KEY`, `PKCS7`) is kept as written, so the caller can
/// say what the file holds instead of "nothing found". RFC 1421 header lines (`Proc-Type:`,
/// `DEK-Info:`) are kept in [`Section::headers`]; a section they mark encrypted gets the
/// label `ENCRYPTED ...` (`ENCRYPTED RSA PRIVATE KEY`), as PKCS#8's encrypted form has its
/// own.
pub fn sections(data: &[u8], what: &str) -> Result<Vec<Section>> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = boundary(line, "-----BEGIN ") else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        let mut encrypted = false;
        let mut headers = Vec::new();
        for line in lines.by_ref() {
            let line = line.trim();
            if line == end {
                closed = true;
                break;
            }
            if line.starts_with("-----") {
                return Err(Error::malformed(
                    what,
                    format!("truncated PEM: no closing {end} before {line:?}"),
                ));
            }
            if let Some((name, value)) = line.split_once(':') {
                // An RFC 1421 header: `Proc-Type: 4,ENCRYPTED` marks a key encrypted in the
                // traditional form, whose body is no DER until decrypted.
                encrypted |= name == "Proc-Type" && value.contains("ENCRYPTED");
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
                continue;
            }
            body.push_str(line);
        }
        if !closed {
            return Err(Error::malformed(
                what,
                format!("truncated PEM: no closing {end}"),
            ));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| Error::malformed(what, format!("corrupt PEM body in {label} ({e})")))?;
        let label = modern_label(label);
        out.push(Section {
            label: if encrypted {
                format!("ENCRYPTED {label}")
            } else {
                label.to_owned()
            },
            der,
            headers,
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

/// `LABEL` of a `-----BEGIN LABEL-----` line (`prefix` is `-----BEGIN `).
fn boundary<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let label = line.trim().strip_prefix(prefix)?.strip_suffix("-----")?;
    (!label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ' || b == b'#'))
    .then_some(label)
}

/// OpenSSL's legacy PEM labels, read as the ones we use.
fn modern_label(label: &str) -> &str {
    match label {
        "NEW CERTIFICATE REQUEST" => "CERTIFICATE REQUEST",
        "X509 CERTIFICATE" => "CERTIFICATE",
        // RFC 7468 section 8: what some Windows and Java tools still write for a .p7b.
        "PKCS #7 SIGNED DATA" => "PKCS7",
        other => other,
    }
}

/// All certificates in `data` (PEM with one or more sections, or a single DER certificate).
/// Each one is parsed, so garbage inside a well-formed PEM envelope is refused here.
pub fn certificates(data: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::malformed(what, "the file is empty"));
    }
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

pub(crate) fn describe_pem_error(e: &pem::Error) -> String {
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
    fn legacy_labels_and_encrypted_keys_are_told_apart() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        let keytool = encode("NEW CERTIFICATE REQUEST", &der);
        let old = encode("X509 CERTIFICATE", &der);
        let p7 = encode("PKCS7", &der);
        let all = format!("{keytool}{old}{p7}");
        let labels: Vec<String> = sections(all.as_bytes(), "t")
            .unwrap()
            .into_iter()
            .map(|s| s.label)
            .collect();
        assert_eq!(labels, ["CERTIFICATE REQUEST", "CERTIFICATE", "PKCS7"]);
        let legacy = encode("PKCS #7 SIGNED DATA", &der);
        let read = super::sections(legacy.as_bytes(), "legacy.p7b").unwrap();
        assert_eq!(read[0].label, "PKCS7");
        let traditional = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                           DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nMAMCAQU=\n\
                           -----END RSA PRIVATE KEY-----\n";
        let s = sections(traditional.as_bytes(), "k").unwrap();
        assert_eq!(s[0].label, "ENCRYPTED RSA PRIVATE KEY");
        assert_eq!(
            s[0].headers,
            [
                ("Proc-Type".to_owned(), "4,ENCRYPTED".to_owned()),
                (
                    "DEK-Info".to_owned(),
                    "AES-128-CBC,00112233445566778899AABBCCDDEEFF".to_owned()
                )
            ]
        );
        let err = crate::key::private_key(traditional.as_bytes(), "k.key").unwrap_err();
        assert_eq!(err.to_string(), "k.key is encrypted: give its password");
        // A section that never ends, and one interrupted by another.
        let err = sections(b"-----BEGIN X509 CRL-----\nMAMC\n", "c").unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = sections(
            b"-----BEGIN CERTIFICATE-----\nMAMC\n-----BEGIN CERTIFICATE-----\n",
            "c",
        )
        .unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
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
                der,
                headers: Vec::new(),
            }]
        );
    }
}

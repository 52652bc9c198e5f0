//! OpenSSL cipher strings and protocol names, turned into what rustls implements.
//!
//! Users arrive with nginx's `ssl_ciphers` line (seed 001's list, or `HIGH:!aNULL:!MD5`)
//! and `ssl_protocols TLSv1.2 TLSv1.3`. We accept OpenSSL's syntax — `:`, `,` or space
//! separated items, `!X` / `-X` to remove, `+X` to move to the end, keywords such as
//! `HIGH`, `ECDHE`, `aECDSA`, `AESGCM`, `CHACHA20` — and both OpenSSL and IANA suite names.
//!
//! rustls implements only AEAD suites with ECDHE key exchange. A named suite it lacks (CBC,
//! RSA key exchange, DHE, 3DES, RC4, CCM...) is an error naming every such item and why,
//! never a silent drop: a config that says it allows a suite must mean it. Keywords that
//! only match suites rustls lacks (`!aNULL`, `!MD5`, `!RC4`) are accepted and select or
//! remove nothing.
//!
//! The provider these build is seeded here too ([`seed_random`]), when a server block or a
//! client is built, for the server and the client alike.
//!
//! TLS 1.3 suites follow OpenSSL's rule: a cipher string without any TLS 1.3 name leaves
//! all three TLS 1.3 suites enabled (nginx's `ssl_ciphers` never touches them); naming one
//! or more TLS 1.3 suites enables exactly those. Left implicit, they come in Mozilla's
//! order, AES-128-GCM first, not OpenSSL's (AES-256-GCM first): see [`DEFAULT_CIPHERS`].
//!
//! The server's order wins by default (`prefer_server_ciphers = true`), except for a client
//! whose first suite is ChaCha20-Poly1305 — a client without AES instructions, for which
//! ChaCha20 is the fast one — which then gets its own order ([`client_prefers_chacha`];
//! OpenSSL's `SSL_OP_PRIORITIZE_CHACHA`, which rustls lacks).

use std::fmt;

use rustls::crypto::aws_lc_rs::cipher_suite as cs;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

/// A cipher string or protocol list that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CipherError {
    /// Named suites that exist but rustls does not implement, each with the reason.
    #[error("{}", unsupported_message(.0))]
    Unsupported(Vec<(String, &'static str)>),
    /// Names that are neither suites nor keywords.
    #[error("unknown cipher name(s): {}", .0.join(", "))]
    Unknown(Vec<String>),
    /// The string selects nothing rustls implements.
    #[error("{0:?} selects no cipher suite that rustls implements (it has: {all})", all = names_of_all())]
    Empty(String),
    /// A protocol name we cannot honour.
    #[error("protocol {name}: {why}")]
    Protocol {
        /// As written.
        name: String,
        /// Why not.
        why: &'static str,
    },
}

/// One suite we implement, with every name it goes by and the keyword classes it is in.
struct Suite {
    suite: SupportedCipherSuite,
    openssl: &'static str,
    iana: &'static str,
    tls13: bool,
    /// OpenSSL keyword classes this suite belongs to.
    classes: &'static [&'static str],
}

/// Only their own class: OpenSSL keywords like `HIGH` select TLS 1.2 suites alone.
const TLS13_CLASSES: &[&str] = &["TLSv1.3"];

fn suites() -> [Suite; 9] {
    [
        Suite {
            suite: cs::TLS13_AES_128_GCM_SHA256,
            openssl: "TLS_AES_128_GCM_SHA256",
            iana: "TLS_AES_128_GCM_SHA256",
            tls13: true,
            classes: TLS13_CLASSES,
        },
        Suite {
            suite: cs::TLS13_AES_256_GCM_SHA384,
            openssl: "TLS_AES_256_GCM_SHA384",
            iana: "TLS_AES_256_GCM_SHA384",
            tls13: true,
            classes: TLS13_CLASSES,
        },
        Suite {
            suite: cs::TLS13_CHACHA20_POLY1305_SHA256,
            openssl: "TLS_CHACHA20_POLY1305_SHA256",
            iana: "TLS_CHACHA20_POLY1305_SHA256",
            tls13: true,
            classes: TLS13_CLASSES,
        },
        Suite {
            suite: cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
            iana: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            tls13: false,
            classes: &[
                "ALL", "DEFAULT", "HIGH", "TLSv1.2", "ECDHE", "EECDH", "kECDHE", "kEECDH",
                "aECDSA", "ECDSA", "AESGCM", "AES", "AES256", "SHA384",
            ],
        },
        Suite {
            suite: cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            openssl: "ECDHE-RSA-AES256-GCM-SHA384",
            iana: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            tls13: false,
            classes: &[
                "ALL", "DEFAULT", "HIGH", "TLSv1.2", "ECDHE", "EECDH", "kECDHE", "kEECDH", "aRSA",
                "RSA", "AESGCM", "AES", "AES256", "SHA384",
            ],
        },
        Suite {
            suite: cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
            iana: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            tls13: false,
            classes: &[
                "ALL", "DEFAULT", "HIGH", "TLSv1.2", "ECDHE", "EECDH", "kECDHE", "kEECDH",
                "aECDSA", "ECDSA", "CHACHA20", "SHA256",
            ],
        },
        Suite {
            suite: cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            openssl: "ECDHE-RSA-CHACHA20-POLY1305",
            iana: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            tls13: false,
            classes: &[
                "ALL", "DEFAULT", "HIGH", "TLSv1.2", "ECDHE", "EECDH", "kECDHE", "kEECDH", "aRSA",
                "RSA", "CHACHA20", "SHA256",
            ],
        },
        Suite {
            suite: cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
            iana: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            tls13: false,
            classes: &[
                "ALL", "DEFAULT", "HIGH", "TLSv1.2", "ECDHE", "EECDH", "kECDHE", "kEECDH",
                "aECDSA", "ECDSA", "AESGCM", "AES", "AES128", "SHA256",
            ],
        },
        Suite {
            suite: cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            openssl: "ECDHE-RSA-AES128-GCM-SHA256",
            iana: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            tls13: false,
            classes: &[
                "ALL", "DEFAULT", "HIGH", "TLSv1.2", "ECDHE", "EECDH", "kECDHE", "kEECDH", "aRSA",
                "RSA", "AESGCM", "AES", "AES128", "SHA256",
            ],
        },
    ]
}

/// The suites used when a config names none: Mozilla's "intermediate" list, in its order.
///
/// AES-128-GCM comes first because on the handshake the suite's hash is most of the cost
/// that the suite decides: TLS_AES_256_GCM_SHA384 runs the transcript hash and the key
/// schedule in SHA-384, which has no instructions on x86 (SHA-NI covers SHA-1 and SHA-256
/// only): a full mutual-TLS handshake cost the server 7–16 % more CPU with it than with
/// TLS_AES_128_GCM_SHA256 (322 against 298 µs; TLS 1.2 with ECDSA 6–8 %; `bench/compare
/// --only suites`, docs/serve.md). AES-128 and AES-256 are both far beyond brute force;
/// Mozilla, Go and BoringSSL all put 128 first.
pub const DEFAULT_CIPHERS: &str = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:\
TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305";

/// The suites a server offers, in its preference order: `spec` parsed, or
/// [`DEFAULT_CIPHERS`] when the config names none.
pub fn server_suites(spec: Option<&str>) -> Result<Vec<SupportedCipherSuite>, CipherError> {
    parse_cipher_string(spec.unwrap_or(DEFAULT_CIPHERS))
}

/// Whether a client's first suite (in a ClientHello) is a ChaCha20-Poly1305 suite: such a
/// client has no AES instructions and ChaCha20 is much faster for it, so a server that
/// otherwise imposes its own order lets this client's order decide.
pub fn client_prefers_chacha(client_suites: &[rustls::CipherSuite]) -> bool {
    use rustls::CipherSuite as C;
    matches!(
        client_suites.first(),
        Some(
            C::TLS13_CHACHA20_POLY1305_SHA256
                | C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                | C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        )
    )
}

/// Keywords that name only suites rustls lacks: accepted, they select or remove nothing.
const EMPTY_CLASSES: &[&str] = &[
    "aNULL",
    "eNULL",
    "NULL",
    "COMPLEMENTOFDEFAULT",
    "COMPLEMENTOFALL",
    "MD5",
    "RC4",
    "3DES",
    "DES",
    "EXP",
    "EXPORT",
    "LOW",
    "MEDIUM",
    "SSLv3",
    "TLSv1",
    "kRSA",
    "DHE",
    "EDH",
    "kDHE",
    "kEDH",
    "DH",
    "ADH",
    "AECDH",
    "PSK",
    "kPSK",
    "aPSK",
    "SRP",
    "kSRP",
    "CAMELLIA",
    "ARIA",
    "SEED",
    "IDEA",
    "DSS",
    "aDSS",
    "CBC",
    "SHA1",
    "SHA",
    "CCM",
    "CCM8",
    "AESCCM",
    "AESCCM8",
    "GOST",
    "kGOST",
    "aGOST",
];

/// Parse an OpenSSL cipher string into rustls suites, in preference order.
pub fn parse_cipher_string(spec: &str) -> Result<Vec<SupportedCipherSuite>, CipherError> {
    let table = suites();
    let mut chosen: Vec<usize> = Vec::new();
    let mut banned: Vec<usize> = Vec::new();
    let mut unsupported = Vec::new();
    let mut unknown = Vec::new();
    let mut names_tls13 = false;

    for item in spec
        .split([':', ',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (op, name) = match item.as_bytes()[0] {
            b'!' | b'-' | b'+' => (item.as_bytes()[0], &item[1..]),
            _ => (b' ', item),
        };
        if name.starts_with('@') {
            continue; // @STRENGTH, @SECLEVEL=n: ordering and security levels, not selection.
        }
        // `ECDHE+AESGCM`: the intersection of several classes.
        let parts: Vec<&str> = name.split('+').collect();
        let matches: Vec<usize> = match suite_index(&table, name) {
            Some(i) => vec![i],
            None if parts.iter().all(|p| is_class(&table, p)) => (0..table.len())
                .filter(|&i| parts.iter().all(|p| table[i].classes.contains(p)))
                .collect(),
            None => {
                if op == b' ' || op == b'+' {
                    match unsupported_reason(name) {
                        Some(why) => unsupported.push((name.to_owned(), why)),
                        None => unknown.push(name.to_owned()),
                    }
                } else if unsupported_reason(name).is_none() {
                    unknown.push(name.to_owned());
                }
                continue;
            }
        };
        match op {
            b'!' => {
                banned.extend(&matches);
                chosen.retain(|i| !matches.contains(i));
            }
            b'-' => chosen.retain(|i| !matches.contains(i)),
            b'+' => {
                let (moved, kept): (Vec<usize>, Vec<usize>) =
                    chosen.iter().partition(|i| matches.contains(i));
                chosen = kept.into_iter().chain(moved).collect();
            }
            _ => {
                names_tls13 |= matches.iter().any(|&i| table[i].tls13);
                for i in matches {
                    if !chosen.contains(&i) && !banned.contains(&i) {
                        chosen.push(i);
                    }
                }
            }
        }
    }
    if !unsupported.is_empty() {
        return Err(CipherError::Unsupported(unsupported));
    }
    if !unknown.is_empty() {
        return Err(CipherError::Unknown(unknown));
    }
    if chosen.is_empty() {
        return Err(CipherError::Empty(spec.to_owned()));
    }
    if !names_tls13 {
        // OpenSSL keeps its TLS 1.3 suites out of the cipher string's reach.
        let tls13 = (0..table.len()).filter(|&i| table[i].tls13);
        chosen = tls13.chain(chosen).collect();
    }
    Ok(chosen.into_iter().map(|i| table[i].suite).collect())
}

/// Parse `TLSv1.2` / `TLSv1.3` names (nginx's `ssl_protocols`).
pub fn parse_protocols<S: AsRef<str>>(
    names: &[S],
) -> Result<Vec<&'static SupportedProtocolVersion>, CipherError> {
    let mut out: Vec<&'static SupportedProtocolVersion> = Vec::new();
    for name in names {
        let name = name.as_ref();
        let version = match name {
            "TLSv1.2" => &rustls::version::TLS12,
            "TLSv1.3" => &rustls::version::TLS13,
            "SSLv2" | "SSLv3" | "TLSv1" | "TLSv1.0" | "TLSv1.1" => {
                return Err(CipherError::Protocol {
                    name: name.to_owned(),
                    why: "not implemented by rustls: it is broken or deprecated (RFC 7568, RFC 8996); use TLSv1.2 and TLSv1.3",
                });
            }
            _ => {
                return Err(CipherError::Protocol {
                    name: name.to_owned(),
                    why: "unknown protocol; expected TLSv1.2 or TLSv1.3",
                });
            }
        };
        if !out.iter().any(|v| v.version == version.version) {
            out.push(version);
        }
    }
    if out.is_empty() {
        return Err(CipherError::Protocol {
            name: String::new(),
            why: "the protocol list is empty; expected TLSv1.2 and/or TLSv1.3",
        });
    }
    Ok(out)
}

/// The OpenSSL name of a suite we implement (for logs: nginx's `$ssl_cipher`).
pub fn openssl_name(suite: SupportedCipherSuite) -> &'static str {
    suites()
        .into_iter()
        .find(|s| s.suite.suite() == suite.suite())
        .map_or("unknown", |s| s.openssl)
}

fn suite_index(table: &[Suite], name: &str) -> Option<usize> {
    table
        .iter()
        .position(|s| s.openssl.eq_ignore_ascii_case(name) || s.iana.eq_ignore_ascii_case(name))
}

fn is_class(table: &[Suite], name: &str) -> bool {
    EMPTY_CLASSES.contains(&name) || table.iter().any(|s| s.classes.contains(&name))
}

/// Why a real suite name is not available, judged from its OpenSSL or IANA spelling.
fn unsupported_reason(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_uppercase();
    let known_shape = n.contains("AES")
        || n.contains("CHACHA")
        || n.contains("DES")
        || n.contains("RC4")
        || n.contains("NULL")
        || n.contains("CAMELLIA")
        || n.contains("ARIA")
        || n.contains("SEED")
        || n.contains("IDEA")
        || n.starts_with("TLS_");
    if !known_shape {
        return None;
    }
    Some(if n.contains("RC4") {
        "RC4 is broken (RFC 7465)"
    } else if n.contains("NULL") {
        "it does not encrypt"
    } else if n.contains("DES") {
        "3DES/DES are weak (Sweet32) and not in rustls"
    } else if n.contains("CCM") {
        "AES-CCM is not implemented by rustls"
    } else if n.contains("CAMELLIA")
        || n.contains("ARIA")
        || n.contains("SEED")
        || n.contains("IDEA")
    {
        "rustls implements only AES-GCM and ChaCha20-Poly1305"
    } else if n.starts_with("DHE-") || n.starts_with("EDH-") || n.contains("_DHE_") {
        "finite-field DHE key exchange is not implemented by rustls (use ECDHE)"
    } else if n.contains("PSK") || n.contains("SRP") {
        "PSK/SRP key exchange is not implemented by rustls"
    } else if !n.contains("GCM") && !n.contains("CHACHA20") {
        "CBC mode: rustls implements only AEAD suites (GCM, ChaCha20-Poly1305)"
    } else if !n.contains("ECDHE") && !n.starts_with("TLS_AES") && !n.starts_with("TLS_CHACHA") {
        "RSA key exchange has no forward secrecy and is not implemented by rustls"
    } else {
        return None;
    })
}

fn unsupported_message(items: &[(String, &'static str)]) -> String {
    let list: Vec<String> = items
        .iter()
        .map(|(n, why)| format!("{n} ({why})"))
        .collect();
    format!(
        "cipher(s) rustls cannot honour: {}; remove them from the list",
        list.join("; ")
    )
}

fn names_of_all() -> String {
    suites()
        .iter()
        .map(|s| s.openssl)
        .collect::<Vec<_>>()
        .join(":")
}

impl fmt::Debug for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.openssl)
    }
}

/// Draw from the provider's random generator once, so that it is seeded now, while the
/// client is being built, rather than by the first handshake. AWS-LC seeds it on first use
/// from CPU jitter entropy, which takes tens of milliseconds (longer on a busy machine);
/// the first use would otherwise be the ClientHello's random, and `mtls get --timing`
/// would count that inside the TLS handshake (and `mtls bench` in its first request).
pub(crate) fn seed_random(provider: &rustls::crypto::CryptoProvider) {
    // A generator that fails here fails the handshake too, which says so in its own words.
    let _ = provider.secure_random.fill(&mut [0u8; 32]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(suites: &[SupportedCipherSuite]) -> Vec<&'static str> {
        suites.iter().map(|s| openssl_name(*s)).collect()
    }

    #[test]
    fn seed_001_list_names_each_cbc_suite() {
        let seed = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256";
        let err = parse_cipher_string(seed).unwrap_err();
        let CipherError::Unsupported(items) = &err else {
            panic!("{err}")
        };
        let named: Vec<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            named,
            [
                "ECDHE-ECDSA-AES256-SHA384",
                "ECDHE-RSA-AES256-SHA384",
                "ECDHE-ECDSA-AES128-SHA256",
                "ECDHE-RSA-AES128-SHA256"
            ]
        );
        assert!(err.to_string().contains("CBC mode"), "{err}");
        // The first six alone are fine, in that order, after the TLS 1.3 suites.
        let ok =
            parse_cipher_string(&seed.split(':').take(6).collect::<Vec<_>>().join(":")).unwrap();
        assert_eq!(
            names(&ok)[3..],
            [
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256"
            ]
        );
        assert_eq!(
            names(&ok)[..3],
            [
                "TLS_AES_128_GCM_SHA256",
                "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256"
            ]
        );
    }

    #[test]
    fn default_is_mozilla_intermediate_aes128_first() {
        let all = server_suites(None).unwrap();
        assert_eq!(all.len(), 9, "every suite rustls implements");
        assert_eq!(
            names(&all),
            [
                "TLS_AES_128_GCM_SHA256",
                "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-RSA-CHACHA20-POLY1305"
            ]
        );
        let named = server_suites(Some("ECDHE-RSA-AES256-GCM-SHA384")).unwrap();
        assert_eq!(names(&named).last(), Some(&"ECDHE-RSA-AES256-GCM-SHA384"));
    }

    #[test]
    fn chacha_first_clients_are_recognised() {
        use rustls::CipherSuite as C;
        assert!(client_prefers_chacha(&[
            C::TLS13_CHACHA20_POLY1305_SHA256,
            C::TLS13_AES_128_GCM_SHA256
        ]));
        assert!(client_prefers_chacha(&[
            C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        ]));
        assert!(!client_prefers_chacha(&[
            C::TLS13_AES_256_GCM_SHA384,
            C::TLS13_CHACHA20_POLY1305_SHA256
        ]));
        assert!(!client_prefers_chacha(&[]));
    }

    #[test]
    fn keywords_and_operators() {
        assert_eq!(
            parse_cipher_string("HIGH:!aNULL:!MD5").unwrap().len(),
            9,
            "6 TLS 1.2 + 3 TLS 1.3"
        );
        let ecdsa = parse_cipher_string("ECDHE+AESGCM:!aRSA").unwrap();
        assert_eq!(
            names(&ecdsa)[3..],
            [
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-AES128-GCM-SHA256"
            ]
        );
        let moved = parse_cipher_string(
            "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:+CHACHA20",
        )
        .unwrap();
        assert_eq!(
            names(&moved)[3..],
            ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"]
        );
        assert_eq!(
            parse_cipher_string("TLSv1.3").unwrap().len(),
            3,
            "no TLS 1.3 suite twice"
        );
        let only13 = parse_cipher_string("TLS_AES_128_GCM_SHA256").unwrap();
        assert_eq!(names(&only13), ["TLS_AES_128_GCM_SHA256"]);
        let iana = parse_cipher_string("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256").unwrap();
        assert_eq!(names(&iana).last(), Some(&"ECDHE-RSA-AES128-GCM-SHA256"));
    }

    #[test]
    fn unknown_unsupported_and_empty() {
        assert_eq!(
            parse_cipher_string("FOO-BAR").unwrap_err(),
            CipherError::Unknown(vec!["FOO-BAR".into()])
        );
        for (name, why) in [
            ("AES256-GCM-SHA384", "RSA key exchange"),
            ("DHE-RSA-AES128-GCM-SHA256", "DHE"),
            ("DES-CBC3-SHA", "3DES"),
            ("RC4-SHA", "RC4"),
            ("ECDHE-ECDSA-AES128-CCM", "CCM"),
        ] {
            let err = parse_cipher_string(name).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(why), "{name}: {err}");
        }
        assert!(matches!(
            parse_cipher_string("!HIGH"),
            Err(CipherError::Empty(_))
        ));
        assert!(matches!(
            parse_cipher_string("aNULL"),
            Err(CipherError::Empty(_))
        ));
    }

    #[test]
    fn protocols() {
        let v = parse_protocols(&["TLSv1.2", "TLSv1.3", "TLSv1.3"]).unwrap();
        assert_eq!(v.len(), 2);
        let err = parse_protocols(&["TLSv1", "TLSv1.2"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("TLSv1") && err.contains("RFC 8996"), "{err}");
        assert!(parse_protocols::<&str>(&[]).is_err());
        assert!(
            parse_protocols(&["tls1.2"])
                .unwrap_err()
                .to_string()
                .contains("unknown protocol")
        );
    }
}

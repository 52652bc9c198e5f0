//! TLS fingerprints of the hellos: JA3 and JA4 of the client, JA3S of the server.
//!
//! A fingerprint names the TLS library and configuration behind a connection (curl with
//! OpenSSL 3, a Go client, a browser) without decrypting anything, so `mtls trace` can say
//! which of two clients is the one that fails. Each function takes the body of one hello
//! message, without its 4-byte handshake header (what [`HandshakeMessage::length`] counts),
//! and returns `None` when that body does not parse; nothing here panics on peer data.
//!
//! ```text
//!  JA3  = MD5("771,4865-4866-…,0-11-10-…,29-23-…,0")    legacy_version, cipher suites,
//!                                                        extensions, groups, point formats
//!  JA3S = MD5("771,4865,43-51")                          legacy_version, suite, extensions
//!  JA4  = t13d1516h2_8daaf6152771_e5627efa2ab1           t(CP), version, d(omain)/i(P),
//!                                                        counts, ALPN; SHA-256 of sorted
//!                                                        suites; of sorted extensions and
//!                                                        signature algorithms
//! ```
//!
//! GREASE values (RFC 8701, `0x?a?a`) are left out everywhere, as both specifications say.
//! JA3 values are decimal in wire order; JA4 values are 4-digit lower-case hex.
//!
//! # Licences: which fingerprints, and why only these
//!
//! - JA3 and JA3S (Salesforce, <https://github.com/salesforce/ja3>) are BSD-3-Clause.
//! - JA4, the TLS *client* fingerprint, is BSD-3-Clause (FoxIO's `LICENSE-JA4` and
//!   "License FAQ.md" in <https://github.com/FoxIO-LLC/ja4>).
//! - The rest of the JA4+ family (JA4S, JA4H, JA4L, JA4X, JA4SSH, JA4T, ...) is under the
//!   FoxIO License 1.1, which allows non-commercial use only and is patent pending. So this
//!   module implements **only JA4** of that family: there is deliberately no JA4S for the
//!   server side (JA3S covers it), and none of the others should be added here.
//!
//! The implementation follows the published descriptions (Salesforce's README, FoxIO's
//! `technical_details/JA4.md`); no code was taken from either project.
//!
//! [`HandshakeMessage::length`]: crate::HandshakeMessage::length

use aws_lc_rs::digest;
use md5::{Digest, Md5};

use crate::handshake::{Decoded, Reader, u16_list};
use crate::names;

/// A JA3 or JA3S fingerprint, named as tshark names them (`tls.handshake.ja3_full` and
/// `tls.handshake.ja3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ja3 {
    /// The string that is hashed, e.g. `771,4865-4866,0-11-10,29-23,0`.
    pub full: String,
    /// Its MD5, 32 lower-case hex digits.
    pub hash: String,
}

/// JA3 of a ClientHello body: `legacy_version,suites,extensions,groups,point_formats`.
pub fn ja3(client_hello: &[u8]) -> Option<Ja3> {
    let hello = ClientHello::parse(client_hello).ok()?;
    let full = format!(
        "{},{},{},{},{}",
        hello.legacy_version,
        decimal(&hello.cipher_suites),
        decimal(&hello.extensions),
        decimal(&hello.supported_groups),
        decimal(&hello.ec_point_formats),
    );
    Some(Ja3::of(full))
}

/// The groups a ClientHello body offers (supported_groups, GREASE left out); empty when it
/// does not parse.
pub(crate) fn supported_groups(client_hello: &[u8]) -> Vec<u16> {
    ClientHello::parse(client_hello)
        .map(|hello| hello.supported_groups)
        .unwrap_or_default()
}

/// JA3S of a ServerHello body: `legacy_version,suite,extensions`.
///
/// The version is the legacy field, so every TLS 1.3 server says 771 (TLS 1.2) there, as in
/// the reference implementation and tshark; the extensions tell TLS 1.3 apart.
pub fn ja3s(server_hello: &[u8]) -> Option<Ja3> {
    let hello = ServerHello::parse(server_hello).ok()?;
    let full = format!(
        "{},{},{}",
        hello.legacy_version,
        hello.cipher_suite,
        decimal(&hello.extensions)
    );
    Some(Ja3::of(full))
}

/// JA4 of a ClientHello body sent over TCP, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`.
pub fn ja4(client_hello: &[u8]) -> Option<String> {
    let parts = Ja4Parts::of(client_hello)?;
    Some(format!(
        "{}_{}_{}",
        parts.a,
        truncated_sha256(&parts.suites),
        truncated_sha256(&parts.extensions)
    ))
}

/// JA4 before hashing (FoxIO's "JA4_r"): the sorted hex lists themselves, for seeing why
/// two fingerprints differ.
pub fn ja4_raw(client_hello: &[u8]) -> Option<String> {
    let parts = Ja4Parts::of(client_hello)?;
    Some(format!("{}_{}_{}", parts.a, parts.suites, parts.extensions))
}

impl Ja3 {
    fn of(full: String) -> Ja3 {
        let hash = names::hex(&Md5::digest(full.as_bytes()));
        Ja3 { full, hash }
    }
}

/// The JA4 sections: `a` in clear, and the two lists that are hashed for `b` and `c`.
struct Ja4Parts {
    a: String,
    suites: String,
    extensions: String,
}

impl Ja4Parts {
    fn of(client_hello: &[u8]) -> Option<Ja4Parts> {
        let hello = ClientHello::parse(client_hello).ok()?;
        let version = hello
            .supported_versions
            .iter()
            .max()
            .copied()
            .unwrap_or(hello.legacy_version);
        let sni = if hello.extensions.contains(&SERVER_NAME) {
            'd'
        } else {
            'i'
        };
        let a = format!(
            "t{}{sni}{:02}{:02}{}",
            ja4_version(version),
            hello.cipher_suites.len().min(99),
            hello.extensions.len().min(99),
            ja4_alpn(hello.first_alpn.as_deref().unwrap_or_default()),
        );
        let mut suites = hello.cipher_suites.clone();
        suites.sort_unstable();
        let mut extensions: Vec<u16> = hello
            .extensions
            .iter()
            .copied()
            .filter(|&e| e != SERVER_NAME && e != ALPN)
            .collect();
        extensions.sort_unstable();
        let mut extensions = hex_list(&extensions);
        // An empty extension list hashes to zeros whatever follows, so keep it empty.
        if !extensions.is_empty() && !hello.signature_algorithms.is_empty() {
            extensions.push('_');
            extensions.push_str(&hex_list(&hello.signature_algorithms));
        }
        Some(Ja4Parts {
            a,
            suites: hex_list(&suites),
            extensions,
        })
    }
}

const SERVER_NAME: u16 = 0x0000;
const SUPPORTED_GROUPS: u16 = 0x000a;
const EC_POINT_FORMATS: u16 = 0x000b;
const SIGNATURE_ALGORITHMS: u16 = 0x000d;
const ALPN: u16 = 0x0010;
const SUPPORTED_VERSIONS: u16 = 0x002b;

/// What the fingerprints read from a ClientHello, GREASE already left out.
#[derive(Debug, Default)]
struct ClientHello {
    legacy_version: u16,
    cipher_suites: Vec<u16>,
    /// Extension types in wire order.
    extensions: Vec<u16>,
    supported_groups: Vec<u16>,
    ec_point_formats: Vec<u16>,
    signature_algorithms: Vec<u16>,
    supported_versions: Vec<u16>,
    first_alpn: Option<Vec<u8>>,
}

/// What JA3S reads from a ServerHello.
#[derive(Debug)]
struct ServerHello {
    legacy_version: u16,
    cipher_suite: u16,
    extensions: Vec<u16>,
}

impl ClientHello {
    fn parse(body: &[u8]) -> Decoded<ClientHello> {
        let mut r = Reader::new(body);
        let mut hello = ClientHello {
            legacy_version: r.u16("legacy_version")?,
            ..ClientHello::default()
        };
        r.array32("random")?;
        r.vec8("legacy_session_id")?;
        hello.cipher_suites = without_grease(u16_list(r.vec16("cipher_suites")?, "suites")?);
        r.vec8("legacy_compression_methods")?;
        // SSL 3.0 and early TLS hellos may end here, without an extensions block.
        let mut extensions = Reader::new(if r.is_empty() {
            &[]
        } else {
            r.vec16("extensions")?
        });
        while !extensions.is_empty() {
            let ext_type = extensions.u16("extension type")?;
            let data = extensions.vec16("extension data")?;
            if is_grease(ext_type) {
                continue;
            }
            hello.extensions.push(ext_type);
            // A malformed list inside one extension leaves that list empty: the extension
            // type still counts, as it does for tshark and FoxIO.
            let mut data = Reader::new(data);
            match ext_type {
                SUPPORTED_GROUPS => hello.supported_groups = u16s(data.vec16("groups")),
                EC_POINT_FORMATS => {
                    hello.ec_point_formats = data
                        .vec8("formats")
                        .map(|f| f.iter().map(|&b| u16::from(b)).collect())
                        .unwrap_or_default();
                }
                SIGNATURE_ALGORITHMS => {
                    hello.signature_algorithms = u16s(data.vec16("signature algorithms"));
                }
                SUPPORTED_VERSIONS => hello.supported_versions = u16s(data.vec8("versions")),
                ALPN => {
                    hello.first_alpn = data
                        .vec16("protocols")
                        .and_then(|list| Reader::new(list).vec8("protocol"))
                        .ok()
                        .map(<[u8]>::to_vec);
                }
                _ => {}
            }
        }
        r.finish()?;
        Ok(hello)
    }
}

impl ServerHello {
    fn parse(body: &[u8]) -> Decoded<ServerHello> {
        let mut r = Reader::new(body);
        let legacy_version = r.u16("legacy_version")?;
        r.array32("random")?;
        r.vec8("legacy_session_id")?;
        let cipher_suite = r.u16("cipher_suite")?;
        r.u8("legacy_compression_method")?;
        let mut extensions = Reader::new(if r.is_empty() {
            &[]
        } else {
            r.vec16("extensions")?
        });
        let mut types = Vec::new();
        while !extensions.is_empty() {
            let ext_type = extensions.u16("extension type")?;
            extensions.vec16("extension data")?;
            if !is_grease(ext_type) {
                types.push(ext_type);
            }
        }
        r.finish()?;
        Ok(ServerHello {
            legacy_version,
            cipher_suite,
            extensions: types,
        })
    }
}

/// RFC 8701: 0x0a0a, 0x1a1a, ..., 0xfafa.
fn is_grease(value: u16) -> bool {
    let [high, low] = value.to_be_bytes();
    high == low && low & 0x0f == 0x0a
}

fn without_grease(values: Vec<u16>) -> Vec<u16> {
    values.into_iter().filter(|&v| !is_grease(v)).collect()
}

fn u16s(list: Decoded<&[u8]>) -> Vec<u16> {
    list.and_then(|data| u16_list(data, "list"))
        .map(without_grease)
        .unwrap_or_default()
}

fn decimal(values: &[u16]) -> String {
    let mut out = String::with_capacity(values.len() * 6);
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        names::push_decimal(&mut out, v);
    }
    out
}

fn hex_list(values: &[u16]) -> String {
    let mut out = String::with_capacity(values.len() * 5);
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        names::push_hex4(&mut out, v);
    }
    out
}

/// The first 12 hex digits of the SHA-256 of `list`, or twelve zeros for an empty list (so
/// "nothing" reads as nothing rather than as the hash of the empty string).
fn truncated_sha256(list: &str) -> String {
    if list.is_empty() {
        return "0".repeat(12);
    }
    let digest = digest::digest(&digest::SHA256, list.as_bytes());
    names::hex(digest.as_ref().get(..6).unwrap_or_default())
}

fn ja4_version(version: u16) -> &'static str {
    match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// The first and last characters of the first ALPN protocol; when either is not an ASCII
/// letter or digit, the first and last digits of the protocol's hex instead; `00` for none.
fn ja4_alpn(protocol: &[u8]) -> String {
    let (Some(&first), Some(&last)) = (protocol.first(), protocol.last()) else {
        return "00".to_owned();
    };
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        return [char::from(first), char::from(last)].iter().collect();
    }
    let hex = names::hex(&[first, last]);
    hex.chars().take(1).chain(hex.chars().last()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len16(data: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(data.len())
            .expect("test data is short")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(data);
        out
    }

    fn len8(data: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from(data.len()).expect("test data is short")];
        out.extend_from_slice(data);
        out
    }

    fn u16_bytes(values: &[u16]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    fn ext(ext_type: u16, data: &[u8]) -> Vec<u8> {
        let mut out = ext_type.to_be_bytes().to_vec();
        out.extend_from_slice(&len16(data));
        out
    }

    /// A ClientHello body; `extensions: None` leaves the extensions block out entirely.
    fn client_hello(version: u16, suites: &[u16], extensions: Option<&[Vec<u8>]>) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend_from_slice(&[0x42; 32]);
        body.extend_from_slice(&len8(&[7; 32]));
        body.extend_from_slice(&len16(&u16_bytes(suites)));
        body.extend_from_slice(&[1, 0]);
        if let Some(extensions) = extensions {
            body.extend_from_slice(&len16(&extensions.concat()));
        }
        body
    }

    /// An extension carrying only a body of the given type, with the right inner shape.
    fn ext_for(ext_type: u16) -> Vec<u8> {
        match ext_type {
            SERVER_NAME => ext(
                SERVER_NAME,
                &len16(&[&[0][..], &len16(b"example.com")].concat()),
            ),
            ALPN => ext(ALPN, &len16(&[len8(b"h2"), len8(b"http/1.1")].concat())),
            SUPPORTED_VERSIONS => ext(
                SUPPORTED_VERSIONS,
                &len8(&u16_bytes(&[0x3a3a, 0x0304, 0x0303])),
            ),
            SIGNATURE_ALGORITHMS => ext(
                SIGNATURE_ALGORITHMS,
                &len16(&u16_bytes(&[
                    0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
                ])),
            ),
            SUPPORTED_GROUPS => ext(
                SUPPORTED_GROUPS,
                &len16(&u16_bytes(&[0x8a8a, 0x001d, 0x0017])),
            ),
            other => ext(other, &[]),
        }
    }

    /// The worked example of FoxIO's technical_details/JA4.md, with GREASE added where a
    /// browser puts it.
    fn foxio_example(with_signature_algorithms: bool) -> Vec<u8> {
        let suites = [
            0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
            0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let order = [
            0x2a2a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
            0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0xfafa,
        ];
        let extensions: Vec<Vec<u8>> = order
            .iter()
            .filter(|&&e| with_signature_algorithms || e != SIGNATURE_ALGORITHMS)
            .map(|&e| ext_for(e))
            .collect();
        client_hello(0x0303, &suites, Some(&extensions))
    }

    #[test]
    fn ja4_of_the_foxio_example() {
        let hello = foxio_example(true);
        assert_eq!(
            ja4(&hello).as_deref(),
            Some("t13d1516h2_8daaf6152771_e5627efa2ab1")
        );
        assert_eq!(
            ja4_raw(&hello).as_deref(),
            Some(
                "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,\
                 cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,\
                 ff01_0403,0804,0401,0503,0805,0501,0806,0601"
            )
        );
    }

    #[test]
    fn ja4_without_signature_algorithms_has_no_underscore() {
        // The example's extensions without 000d: FoxIO gives 6d807ffa2a79 for the list
        // with 000d and no signature algorithms; without 000d it is another hash, but the
        // raw form must end at the extension list.
        let raw = ja4_raw(&foxio_example(false)).expect("parses");
        assert!(raw.ends_with(",4469,ff01"), "{raw}");
        assert_eq!(
            truncated_sha256(
                "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"
            ),
            "6d807ffa2a79"
        );
    }

    #[test]
    fn ja4_empty_lists_are_zeros() {
        let hello = client_hello(0x0301, &[], None);
        assert_eq!(
            ja4(&hello).as_deref(),
            Some("t10i000000_000000000000_000000000000")
        );
        // Only SNI and ALPN: counted in `a`, but the hashed list is empty.
        let hello = client_hello(
            0x0303,
            &[0x002f],
            Some(&[ext_for(SERVER_NAME), ext_for(ALPN)]),
        );
        let fingerprint = ja4(&hello).expect("parses");
        assert!(fingerprint.starts_with("t12d0102h2_"), "{fingerprint}");
        assert!(fingerprint.ends_with("_000000000000"), "{fingerprint}");
    }

    #[test]
    fn ja4_alpn_characters() {
        // The examples of FoxIO's technical_details/JA4.md.
        let cases: [(&[u8], &str); 11] = [
            (b"h2", "h2"),
            (b"http/1.1", "h1"),
            (b"h", "hh"),
            (b"", "00"),
            (&[0xab], "ab"),
            (&[0x20], "20"),
            (&[0xab, 0xcd], "ad"),
            (&[0x20, 0x61], "21"),
            (&[0x30, 0xab], "3b"),
            (&[0x61, 0x20], "60"),
            (&[0x30, 0xab, 0xcd, 0x31], "01"),
        ];
        for (protocol, expected) in cases {
            assert_eq!(ja4_alpn(protocol), expected, "{protocol:02x?}");
        }
        assert_eq!(ja4_alpn(&[0x30, 0x31, 0xab, 0xcd]), "3d");
    }

    #[test]
    fn ja3_salesforce_examples() {
        // Salesforce's README: the two example strings and their MD5s.
        let extensions = [
            ext(0, &len16(&[&[0][..], &len16(b"a.example")].concat())),
            ext(SUPPORTED_GROUPS, &len16(&u16_bytes(&[23, 24, 25]))),
            ext(EC_POINT_FORMATS, &len8(&[0])),
        ];
        let suites = [47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4];
        let hello = client_hello(769, &suites, Some(&extensions));
        let fingerprint = ja3(&hello).expect("parses");
        assert_eq!(
            fingerprint.full,
            "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
        );
        assert_eq!(fingerprint.hash, "ada70206e40642a3e4461f35503241d5");

        let hello = client_hello(769, &[4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99], None);
        let fingerprint = ja3(&hello).expect("parses");
        assert_eq!(fingerprint.full, "769,4-5-10-9-100-98-3-6-19-18-99,,,");
        assert_eq!(fingerprint.hash, "de350869b8c85de67a350c8d186f11e6");
    }

    #[test]
    fn ja3_leaves_grease_out() {
        let hello = foxio_example(true);
        let fingerprint = ja3(&hello).expect("parses");
        assert_eq!(
            fingerprint.full,
            "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,\
             27-0-51-16-17513-23-45-13-5-35-18-43-65281-11-10-21,29-23,"
        );
    }

    #[test]
    fn ja3s_of_a_server_hello() {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x11; 32]);
        body.extend_from_slice(&[0, 0x13, 0x01, 0]);
        body.extend_from_slice(&len16(
            &[ext(43, &[3, 4]), ext(51, &[0, 29, 0, 1, 9])].concat(),
        ));
        let fingerprint = ja3s(&body).expect("parses");
        assert_eq!(fingerprint.full, "771,4865,43-51");
        assert_eq!(
            fingerprint.hash,
            hex::encode(Md5::digest(b"771,4865,43-51"))
        );
        // A TLS 1.0 ServerHello without extensions.
        let mut old = vec![3, 1];
        old.extend_from_slice(&[0x11; 32]);
        old.extend_from_slice(&[0, 0, 0x2f, 0]);
        assert_eq!(ja3s(&old).map(|f| f.full).as_deref(), Some("769,47,"));
    }

    #[test]
    fn grease_values() {
        let grease: Vec<u16> = (0..16).map(|i| 0x0a0a | (i << 12) | (i << 4)).collect();
        assert!(grease.iter().all(|&v| is_grease(v)));
        assert_eq!(grease.first(), Some(&0x0a0a));
        assert_eq!(grease.last(), Some(&0xfafa));
        for value in [0x0a1a, 0x0000, 0x1301, 0xabab, 0x0a0b] {
            assert!(!is_grease(value), "{value:04x}");
        }
    }

    #[test]
    fn truncated_hellos_have_no_fingerprint() {
        let hello = foxio_example(true);
        for end in 0..hello.len() {
            let short = hello.get(..end).expect("in range");
            // Cutting exactly after the compression methods leaves a valid old-style hello.
            if ja4(short).is_some() {
                assert_eq!(ja3(short).map(|f| f.full.ends_with(",,,")), Some(true));
            }
        }
        assert_eq!(ja3s(&[3, 3, 0]), None);
    }
}

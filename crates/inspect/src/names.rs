//! Names for TLS code points, spelled as IANA registers them and Wireshark prints them.
//!
//! The trace is compared against `tshark -V` by people, so these tables follow Wireshark's
//! spelling (`x25519`, `ecdsa_secp256r1_sha256`, `application_layer_protocol_negotiation`)
//! rather than inventing our own. Cipher suite names come from tls-parser's IANA table.

use tls_parser::{TlsCipherKx, TlsCipherSuite};

/// `name (0x1234)` for a 16-bit code point; GREASE and unknown values are named as such.
/// Built by hand, not with `format!`: a ClientHello renders a hundred of these, and
/// `mtls trace` renders every ClientHello of a capture.
pub(crate) fn with_hex(name: Option<&str>, value: u16) -> String {
    let name = match name {
        Some(name) => name,
        None if is_grease(value) => "Reserved (GREASE)",
        None => "unknown",
    };
    let mut out = String::with_capacity(name.len() + 9);
    out.push_str(name);
    out.push_str(" (0x");
    push_hex4(&mut out, value);
    out.push(')');
    out
}

/// Four lower-case hex digits.
pub(crate) fn push_hex4(out: &mut String, value: u16) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in [12, 8, 4, 0] {
        out.push(char::from(DIGITS[usize::from((value >> shift) & 0xf)]));
    }
}

/// Lower-case hex of `bytes` (what `hex::encode` gives, without its per-char iterator).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// `name (12)` for an 8-bit code point.
pub(crate) fn with_dec(name: Option<&str>, value: u8) -> String {
    let name = name.unwrap_or("unknown");
    let mut out = String::with_capacity(name.len() + 6);
    out.push_str(name);
    out.push_str(" (");
    push_decimal(&mut out, u16::from(value));
    out.push(')');
    out
}

/// A number in decimal, without the formatting machinery.
pub(crate) fn push_decimal(out: &mut String, value: u16) {
    let mut digits = [0u8; 5];
    let mut n = value;
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// RFC 8701 GREASE values: 0x0a0a, 0x1a1a, ... 0xfafa.
pub(crate) fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// Protocol versions, e.g. `TLS 1.2 (0x0303)`.
pub(crate) fn version(value: u16) -> String {
    let name = match value {
        0x0200 => Some("SSL 2.0"),
        0x0300 => Some("SSL 3.0"),
        0x0301 => Some("TLS 1.0"),
        0x0302 => Some("TLS 1.1"),
        0x0303 => Some("TLS 1.2"),
        0x0304 => Some("TLS 1.3"),
        0xfeff => Some("DTLS 1.0"),
        0xfefd => Some("DTLS 1.2"),
        0xfefc => Some("DTLS 1.3"),
        0x7f00..=0x7fff => return format!("TLS 1.3 (draft {}) (0x{value:04x})", value & 0xff),
        _ => None,
    };
    with_hex(name, value)
}

/// Cipher suites by IANA name, e.g. `TLS_AES_128_GCM_SHA256 (0x1301)`.
pub(crate) fn cipher_suite(value: u16) -> String {
    with_hex(
        TlsCipherSuite::from_id(value).map(|suite| suite.name),
        value,
    )
}

/// Key exchange of a TLS 1.2 cipher suite, to know the shape of the key exchange messages.
pub(crate) fn key_exchange(value: u16) -> Option<TlsCipherKx> {
    TlsCipherSuite::from_id(value).map(|suite| suite.kx)
}

/// Record content types.
pub(crate) fn content_type(value: u8) -> std::borrow::Cow<'static, str> {
    match value {
        20 => "change_cipher_spec".into(),
        21 => "alert".into(),
        22 => "handshake".into(),
        23 => "application_data".into(),
        24 => "heartbeat".into(),
        25 => "tls12_cid".into(),
        other => format!("unknown ({other})").into(),
    }
}

/// Handshake message types, named as RFC 8446 section 4 names the structures.
pub(crate) fn handshake_type(value: u8) -> String {
    let name = match value {
        0 => "HelloRequest",
        1 => "ClientHello",
        2 => "ServerHello",
        3 => "HelloVerifyRequest",
        4 => "NewSessionTicket",
        5 => "EndOfEarlyData",
        6 => "HelloRetryRequest",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        21 => "CertificateURL",
        22 => "CertificateStatus",
        24 => "KeyUpdate",
        25 => "CompressedCertificate",
        254 => "MessageHash",
        other => return format!("unknown ({other})"),
    };
    name.into()
}

/// Extension types (IANA "TLS ExtensionType Values").
pub(crate) fn extension(value: u16) -> String {
    let name = match value {
        0 => "server_name",
        1 => "max_fragment_length",
        2 => "client_certificate_url",
        3 => "trusted_ca_keys",
        4 => "truncated_hmac",
        5 => "status_request",
        6 => "user_mapping",
        7 => "client_authz",
        8 => "server_authz",
        9 => "cert_type",
        10 => "supported_groups",
        11 => "ec_point_formats",
        12 => "srp",
        13 => "signature_algorithms",
        14 => "use_srtp",
        15 => "heartbeat",
        16 => "application_layer_protocol_negotiation",
        17 => "status_request_v2",
        18 => "signed_certificate_timestamp",
        19 => "client_certificate_type",
        20 => "server_certificate_type",
        21 => "padding",
        22 => "encrypt_then_mac",
        23 => "extended_master_secret",
        24 => "token_binding",
        25 => "cached_info",
        26 => "tls_lts",
        27 => "compress_certificate",
        28 => "record_size_limit",
        29 => "pwd_protect",
        30 => "pwd_clear",
        31 => "password_salt",
        32 => "ticket_pinning",
        33 => "tls_cert_with_extern_psk",
        34 => "delegated_credentials",
        35 => "session_ticket",
        36 => "TLMSP",
        37 => "TLMSP_proxying",
        38 => "TLMSP_delegate",
        39 => "supported_ekt_ciphers",
        41 => "pre_shared_key",
        42 => "early_data",
        43 => "supported_versions",
        44 => "cookie",
        45 => "psk_key_exchange_modes",
        47 => "certificate_authorities",
        48 => "oid_filters",
        49 => "post_handshake_auth",
        50 => "signature_algorithms_cert",
        51 => "key_share",
        52 => "transparency_info",
        53 => "connection_id (deprecated)",
        54 => "connection_id",
        55 => "external_id_hash",
        56 => "external_session_id",
        57 => "quic_transport_parameters",
        58 => "ticket_request",
        59 => "dnssec_chain",
        60 => "sequence_number_encryption_algorithms",
        61 => "rrc",
        0x4469 => "application_settings_old",
        0x44cd => "application_settings",
        0xfe0d => "encrypted_client_hello",
        0xff01 => "renegotiation_info",
        other if is_grease(other) => "Reserved (GREASE)",
        other => return format!("unknown (0x{other:04x})"),
    };
    name.into()
}

/// Named groups (IANA "TLS Supported Groups").
pub(crate) fn group(value: u16) -> String {
    let name = match value {
        1 => "sect163k1",
        2 => "sect163r1",
        3 => "sect163r2",
        4 => "sect193r1",
        5 => "sect193r2",
        6 => "sect233k1",
        7 => "sect233r1",
        8 => "sect239k1",
        9 => "sect283k1",
        10 => "sect283r1",
        11 => "sect409k1",
        12 => "sect409r1",
        13 => "sect571k1",
        14 => "sect571r1",
        15 => "secp160k1",
        16 => "secp160r1",
        17 => "secp160r2",
        18 => "secp192k1",
        19 => "secp192r1",
        20 => "secp224k1",
        21 => "secp224r1",
        22 => "secp256k1",
        23 => "secp256r1",
        24 => "secp384r1",
        25 => "secp521r1",
        26 => "brainpoolP256r1",
        27 => "brainpoolP384r1",
        28 => "brainpoolP512r1",
        29 => "x25519",
        30 => "x448",
        31 => "brainpoolP256r1tls13",
        32 => "brainpoolP384r1tls13",
        33 => "brainpoolP512r1tls13",
        34 => "GC256A",
        35 => "GC256B",
        36 => "GC256C",
        37 => "GC256D",
        38 => "GC512A",
        39 => "GC512B",
        40 => "GC512C",
        41 => "curveSM2",
        256 => "ffdhe2048",
        257 => "ffdhe3072",
        258 => "ffdhe4096",
        259 => "ffdhe6144",
        260 => "ffdhe8192",
        0x0200 => "MLKEM512",
        0x0201 => "MLKEM768",
        0x0202 => "MLKEM1024",
        0x11eb => "SecP256r1MLKEM768",
        0x11ec => "X25519MLKEM768",
        0x11ed => "SecP384r1MLKEM1024",
        0x6399 => "X25519Kyber768Draft00",
        0x639a => "SecP256r1Kyber768Draft00",
        0xff01 => "arbitrary_explicit_prime_curves",
        0xff02 => "arbitrary_explicit_char2_curves",
        _ => return with_hex(None, value),
    };
    with_hex(Some(name), value)
}

/// Signature schemes (RFC 8446) and TLS 1.2 hash/signature pairs (RFC 5246).
pub(crate) fn signature_scheme(value: u16) -> String {
    let name = match value {
        0x0101 => "rsa_pkcs1_md5",
        0x0201 => "rsa_pkcs1_sha1",
        0x0202 => "dsa_sha1",
        0x0203 => "ecdsa_sha1",
        0x0301 => "rsa_pkcs1_sha224",
        0x0302 => "dsa_sha224",
        0x0303 => "ecdsa_sha224",
        0x0401 => "rsa_pkcs1_sha256",
        0x0402 => "dsa_sha256",
        0x0403 => "ecdsa_secp256r1_sha256",
        0x0420 => "rsa_pkcs1_sha256_legacy",
        0x0501 => "rsa_pkcs1_sha384",
        0x0502 => "dsa_sha384",
        0x0503 => "ecdsa_secp384r1_sha384",
        0x0520 => "rsa_pkcs1_sha384_legacy",
        0x0601 => "rsa_pkcs1_sha512",
        0x0602 => "dsa_sha512",
        0x0603 => "ecdsa_secp521r1_sha512",
        0x0620 => "rsa_pkcs1_sha512_legacy",
        0x0704 => "eccsi_sha256",
        0x0705 => "iso_ibs1",
        0x0706 => "iso_ibs2",
        0x0707 => "iso_chinese_ibs",
        0x0708 => "sm2sig_sm3",
        0x0709 => "gostr34102012_256a",
        0x070a => "gostr34102012_256b",
        0x070b => "gostr34102012_256c",
        0x070c => "gostr34102012_256d",
        0x070d => "gostr34102012_512a",
        0x070e => "gostr34102012_512b",
        0x070f => "gostr34102012_512c",
        0x0804 => "rsa_pss_rsae_sha256",
        0x0805 => "rsa_pss_rsae_sha384",
        0x0806 => "rsa_pss_rsae_sha512",
        0x0807 => "ed25519",
        0x0808 => "ed448",
        0x0809 => "rsa_pss_pss_sha256",
        0x080a => "rsa_pss_pss_sha384",
        0x080b => "rsa_pss_pss_sha512",
        0x081a => "ecdsa_brainpoolP256r1tls13_sha256",
        0x081b => "ecdsa_brainpoolP384r1tls13_sha384",
        0x081c => "ecdsa_brainpoolP512r1tls13_sha512",
        0x0904 => "mldsa44",
        0x0905 => "mldsa65",
        0x0906 => "mldsa87",
        _ => return with_hex(None, value),
    };
    with_hex(Some(name), value)
}

/// Alert levels.
pub(crate) fn alert_level(value: u8) -> String {
    match value {
        1 => "warning".into(),
        2 => "fatal".into(),
        other => format!("unknown ({other})"),
    }
}

/// Alert descriptions (RFC 8446 section 6 and the IANA registry).
pub(crate) fn alert_description(value: u8) -> String {
    let name = match value {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        52 => "too_many_cids_requested",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        117 => "general_error",
        120 => "no_application_protocol",
        121 => "ech_required",
        other => return format!("unknown ({other})"),
    };
    name.into()
}

/// Compression methods.
pub(crate) fn compression_method(value: u8) -> String {
    let name = match value {
        0 => Some("null"),
        1 => Some("DEFLATE"),
        64 => Some("LZS"),
        _ => None,
    };
    with_dec(name, value)
}

/// EC point formats.
pub(crate) fn ec_point_format(value: u8) -> String {
    let name = match value {
        0 => Some("uncompressed"),
        1 => Some("ansiX962_compressed_prime"),
        2 => Some("ansiX962_compressed_char2"),
        _ => None,
    };
    with_dec(name, value)
}

/// PSK key exchange modes.
pub(crate) fn psk_mode(value: u8) -> String {
    let name = match value {
        0 => Some("psk_ke"),
        1 => Some("psk_dhe_ke"),
        _ => None,
    };
    with_dec(name, value)
}

/// Certificate compression algorithms (RFC 8879).
pub(crate) fn cert_compression(value: u16) -> String {
    let name = match value {
        1 => Some("zlib"),
        2 => Some("brotli"),
        3 => Some("zstd"),
        _ => None,
    };
    with_hex(name, value)
}

/// TLS 1.2 CertificateRequest certificate types.
pub(crate) fn client_certificate_type(value: u8) -> String {
    let name = match value {
        1 => Some("rsa_sign"),
        2 => Some("dss_sign"),
        3 => Some("rsa_fixed_dh"),
        4 => Some("dss_fixed_dh"),
        5 => Some("rsa_ephemeral_dh"),
        6 => Some("dss_ephemeral_dh"),
        20 => Some("fortezza_dms"),
        64 => Some("ecdsa_sign"),
        65 => Some("rsa_fixed_ecdh"),
        66 => Some("ecdsa_fixed_ecdh"),
        67 => Some("gost_sign256"),
        68 => Some("gost_sign512"),
        _ => None,
    };
    with_dec(name, value)
}

/// Certificate types of RFC 7250 (raw public keys).
pub(crate) fn certificate_type(value: u8) -> String {
    let name = match value {
        0 => Some("X509"),
        1 => Some("OpenPGP"),
        2 => Some("RawPublicKey"),
        _ => None,
    };
    with_dec(name, value)
}

/// Certificate status types.
pub(crate) fn status_type(value: u8) -> String {
    let name = match value {
        1 => Some("ocsp"),
        2 => Some("ocsp_multi"),
        _ => None,
    };
    with_dec(name, value)
}

/// KeyUpdate request values.
pub(crate) fn key_update_request(value: u8) -> String {
    let name = match value {
        0 => Some("update_not_requested"),
        1 => Some("update_requested"),
        _ => None,
    };
    with_dec(name, value)
}

/// ServerKeyExchange EC curve types.
pub(crate) fn ec_curve_type(value: u8) -> String {
    let name = match value {
        1 => Some("explicit_prime"),
        2 => Some("explicit_char2"),
        3 => Some("named_curve"),
        _ => None,
    };
    with_dec(name, value)
}

/// Server name types of the server_name extension.
pub(crate) fn server_name_type(value: u8) -> String {
    match value {
        0 => "host_name".into(),
        other => format!("unknown ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_wireshark() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && !is_grease(0x0a1a));
        assert_eq!(cipher_suite(0x1301), "TLS_AES_128_GCM_SHA256 (0x1301)");
        assert_eq!(cipher_suite(0x2a2a), "Reserved (GREASE) (0x2a2a)");
        assert_eq!(group(0x11ec), "X25519MLKEM768 (0x11ec)");
        assert_eq!(group(29), "x25519 (0x001d)");
        assert_eq!(signature_scheme(0x0403), "ecdsa_secp256r1_sha256 (0x0403)");
        assert_eq!(version(0x0303), "TLS 1.2 (0x0303)");
        assert_eq!(alert_description(116), "certificate_required");
        assert_eq!(extension(0x3a3a), "Reserved (GREASE)");
        assert_eq!(extension(0x1234), "unknown (0x1234)");
    }
}

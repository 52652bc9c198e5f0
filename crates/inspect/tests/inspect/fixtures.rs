//! The dissector against real handshakes recorded between `openssl s_client` and
//! `openssl s_server` (see `fixtures/regenerate.sh`), with and without their key logs.

use mtls_inspect::{Direction, Dissector, Event, Item, KeyLog, parse_handshake, parse_record};

use crate::util::{dissect, keylog, reads, summary};

const TLS13_MTLS: &[&str] = &[
    "→ ClientHello",
    "← ServerHello",
    "← ChangeCipherSpec",
    "← EncryptedExtensions*",
    "← CertificateRequest*",
    "← Certificate*",
    "← CertificateVerify*",
    "← Finished*",
    "→ ChangeCipherSpec",
    "→ Certificate*",
    "→ CertificateVerify*",
    "→ Finished*",
    "← NewSessionTicket*",
    "← NewSessionTicket*",
];

#[test]
fn tls13_mutual_tls_decrypts_every_message() {
    let events = dissect("tls13_mtls", keylog("tls13_mtls"));
    let summaries: Vec<String> = events.iter().map(summary).collect();
    let mut expected: Vec<&str> = TLS13_MTLS.to_vec();
    expected.extend([
        "→ KeyUpdate*",
        // The request, read with the key after the client's KeyUpdate.
        "→ application_data 18*",
        "← application_data*",
        "← alert warning close_notify*",
        "→ alert warning close_notify*",
    ]);
    assert_eq!(
        without_lengths(&summaries),
        without_lengths_str(&expected),
        "{summaries:#?}"
    );

    let request = message(&events, Direction::ServerToClient, "CertificateRequest");
    let cas = request
        .find("extension certificate_authorities")
        .expect("CA list");
    assert_eq!(cas.value, "CN=mtls CA");
    assert_eq!(
        request
            .find("certificate_request_context")
            .expect("ctx")
            .value,
        "(empty)"
    );

    let server = message(&events, Direction::ServerToClient, "Certificate");
    assert_eq!(subjects(server), ["O=mtls, CN=localhost", "CN=mtls CA"]);
    let leaf = server.find("certificate").expect("leaf");
    assert_eq!(leaf.find("issuer").expect("issuer").value, "CN=mtls CA");
    assert_eq!(
        leaf.find("subject_alt_names").expect("SAN").value,
        "DNS:localhost, IP:127.0.0.1"
    );
    let client = message(&events, Direction::ClientToServer, "Certificate");
    assert_eq!(subjects(client), ["O=mtls, CN=alice", "CN=mtls CA"]);

    let verify = message(&events, Direction::ServerToClient, "CertificateVerify");
    assert_eq!(
        verify.find("signature_algorithm").expect("alg").value,
        "ecdsa_secp256r1_sha256 (0x0403)"
    );
    let finished = message(&events, Direction::ServerToClient, "Finished");
    // TLS_AES_256_GCM_SHA384: verify_data is a SHA-384 HMAC.
    assert!(
        finished
            .find("verify_data")
            .expect("data")
            .value
            .ends_with("(48 bytes)")
    );
    assert!(
        events
            .iter()
            .all(|e| !matches!(e.item, Item::Malformed { .. }))
    );
}

#[test]
fn tls13_client_hello_fields() {
    let events = dissect("tls13_mtls", KeyLog::empty());
    let hello = message(&events, Direction::ClientToServer, "ClientHello");
    assert_eq!(
        hello.find("legacy_version").expect("version").value,
        "TLS 1.2 (0x0303)"
    );
    let suites = hello.find("cipher_suites").expect("suites");
    assert!(
        suites.name.starts_with("cipher_suites ("),
        "{}",
        suites.name
    );
    assert!(
        suites
            .value
            .starts_with("TLS_AES_256_GCM_SHA384 (0x1302), "),
        "{}",
        suites.value
    );
    assert_eq!(
        hello.find("extension server_name").expect("SNI").value,
        "localhost"
    );
    assert_eq!(hello.find("host_name").expect("host").value, "localhost");
    assert_eq!(
        hello
            .find("extension supported_versions")
            .expect("versions")
            .value,
        "TLS 1.3 (0x0304)"
    );
    assert!(
        hello
            .find("extension key_share")
            .expect("share")
            .value
            .contains("x25519 (0x001d)")
    );
    let server = message(&events, Direction::ServerToClient, "ServerHello");
    assert_eq!(
        server.find("cipher_suite").expect("suite").value,
        "TLS_AES_256_GCM_SHA384 (0x1302)"
    );

    let text = events[0].to_string();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("→ handshake record TLS 1.0 (0x0301), 238 bytes")
    );
    assert_eq!(lines.next(), Some("  ClientHello (234 bytes)"));
    assert_eq!(lines.next(), Some("    legacy_version: TLS 1.2 (0x0303)"));
    assert!(text.contains("\n    extension server_name: localhost\n      host_name: localhost\n"));
}

#[test]
fn tls13_without_secrets_shows_ciphertext() {
    let events = dissect("tls13_mtls", KeyLog::empty());
    let summaries: Vec<String> = events.iter().map(summary).collect();
    assert_eq!(
        &summaries[..3],
        ["→ ClientHello", "← ServerHello", "← ChangeCipherSpec"]
    );
    assert!(
        summaries[3..]
            .iter()
            .all(|s| s.ends_with("encrypted") || s.ends_with("ChangeCipherSpec"))
    );
    assert!(events[3..].iter().all(|e| !e.record.decrypted));
    assert_eq!(events[3].record.content_type, "application_data");
}

#[test]
fn tls13_chacha20() {
    let events = dissect("tls13_chacha_mtls", keylog("tls13_chacha_mtls"));
    let summaries: Vec<String> = events.iter().map(summary).collect();
    assert_eq!(
        without_lengths(&summaries[..TLS13_MTLS.len()]),
        without_lengths_str(TLS13_MTLS)
    );
    let server = message(&events, Direction::ServerToClient, "ServerHello");
    assert_eq!(
        server.find("cipher_suite").expect("suite").value,
        "TLS_CHACHA20_POLY1305_SHA256 (0x1303)"
    );
    assert!(
        summaries.contains(&"→ alert warning close_notify*".to_owned()),
        "{summaries:#?}"
    );
}

#[test]
fn tls13_hello_retry_request() {
    let events = dissect("tls13_hrr_mtls", keylog("tls13_hrr_mtls"));
    let summaries: Vec<String> = events.iter().map(summary).collect();
    assert_eq!(
        &summaries[..7],
        [
            "→ ClientHello",
            "← HelloRetryRequest",
            "← ChangeCipherSpec",
            "→ ChangeCipherSpec",
            "→ ClientHello",
            "← ServerHello",
            "← EncryptedExtensions*"
        ],
        "{summaries:#?}"
    );
    let retry = message(&events, Direction::ServerToClient, "HelloRetryRequest");
    assert_eq!(
        retry.find("extension key_share").expect("share").value,
        "selected_group secp256r1 (0x0017)"
    );
    assert!(summaries.contains(&"→ Finished*".to_owned()));
    assert!(
        events
            .iter()
            .all(|e| !matches!(e.item, Item::Malformed { .. }))
    );
}

#[test]
fn tls13_no_client_certificate() {
    let events = dissect("tls13_no_client_cert", keylog("tls13_no_client_cert"));
    let client = message(&events, Direction::ClientToServer, "Certificate");
    assert_eq!(
        client.find("certificate_list").expect("list").value,
        "0 certificates (none sent)"
    );
    let last = events.last().expect("events");
    assert_eq!(summary(last), "← alert fatal certificate_required*");
    assert!(matches!(&last.item, Item::Alert { code: 116, .. }));
    assert_eq!(
        last.to_string(),
        "← alert record, decrypted: fatal certificate_required (116)"
    );
}

#[test]
fn tls13_untrusted_client_certificate() {
    let events = dissect(
        "tls13_untrusted_client_cert",
        keylog("tls13_untrusted_client_cert"),
    );
    let client = message(&events, Direction::ClientToServer, "Certificate");
    assert_eq!(subjects(client), ["CN=mallory"]);
    assert_eq!(client.find("issuer").expect("issuer").value, "CN=other CA");
    let last = events.last().expect("events");
    assert!(
        matches!(&last.item, Item::Alert { description, code: 48, .. }
            if description == "unknown_ca")
    );
}

const TLS12_MTLS: &[&str] = &[
    "→ ClientHello",
    "← ServerHello",
    "← Certificate",
    "← ServerKeyExchange",
    "← CertificateRequest",
    "← ServerHelloDone",
    "→ Certificate",
    "→ ClientKeyExchange",
    "→ CertificateVerify",
    "→ ChangeCipherSpec",
    "→ Finished*",
    "← NewSessionTicket",
    "← ChangeCipherSpec",
    "← Finished*",
    "→ application_data 18*",
    "← application_data*",
    "← alert warning close_notify*",
    "→ alert warning close_notify*",
];

#[test]
fn tls12_mutual_tls_aes_gcm_and_chacha() {
    for (name, suite) in [
        (
            "tls12_aes128gcm_mtls",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xc02b)",
        ),
        (
            "tls12_chacha_mtls",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 (0xcca9)",
        ),
    ] {
        let events = dissect(name, keylog(name));
        let summaries: Vec<String> = events.iter().map(summary).collect();
        assert_eq!(
            without_lengths(&summaries),
            without_lengths_str(TLS12_MTLS),
            "{name}"
        );
        let hello = message(&events, Direction::ServerToClient, "ServerHello");
        assert_eq!(hello.find("cipher_suite").expect("suite").value, suite);

        let request = message(&events, Direction::ServerToClient, "CertificateRequest");
        assert_eq!(
            request.find("certificate_authorities").expect("CAs").value,
            "CN=mtls CA"
        );
        assert!(
            request
                .find("certificate_types")
                .expect("types")
                .value
                .contains("ecdsa_sign (64)")
        );

        let kx = message(&events, Direction::ServerToClient, "ServerKeyExchange");
        assert_eq!(
            kx.find("named_curve").expect("curve").value,
            "x25519 (0x001d)"
        );
        assert_eq!(kx.find("public_key").expect("key").value, "32 bytes");
        let ckx = message(&events, Direction::ClientToServer, "ClientKeyExchange");
        assert_eq!(ckx.find("public_key").expect("key").value, "32 bytes");

        assert_eq!(
            subjects(message(&events, Direction::ClientToServer, "Certificate"))[0],
            "O=mtls, CN=alice"
        );
        for direction in [Direction::ClientToServer, Direction::ServerToClient] {
            let finished = message(&events, direction, "Finished");
            assert!(
                finished
                    .find("verify_data")
                    .expect("data")
                    .value
                    .ends_with("(12 bytes)")
            );
        }
        let ticket = message(&events, Direction::ServerToClient, "NewSessionTicket");
        assert_eq!(
            ticket.find("ticket_lifetime_hint").expect("hint").value,
            "7200 seconds"
        );
    }
}

#[test]
fn tls12_without_secrets_and_without_client_certificate() {
    let events = dissect("tls12_aes128gcm_mtls", KeyLog::empty());
    let summaries: Vec<String> = events.iter().map(summary).collect();
    assert_eq!(summaries[10], "→ handshake encrypted");
    assert_eq!(summaries[13], "← handshake encrypted");
    assert_eq!(summaries[16], "← alert encrypted");

    // AES-256-GCM-SHA384: the PRF runs on SHA-384.
    let events = dissect("tls12_no_client_cert", keylog("tls12_no_client_cert"));
    let summaries: Vec<String> = events.iter().map(summary).collect();
    assert_eq!(
        summaries[6..],
        [
            "→ Certificate",
            "→ ClientKeyExchange",
            "→ ChangeCipherSpec",
            "→ Finished*",
            "← alert fatal handshake_failure"
        ]
    );
    let client = message(&events, Direction::ClientToServer, "Certificate");
    assert_eq!(
        client.find("certificate_list").expect("list").value,
        "0 certificates (none sent)"
    );
}

/// Feeding one byte at a time, or records re-cut into small records and merged into big
/// ones, gives the same messages.
#[test]
fn reassembly_does_not_depend_on_segmentation() {
    for name in ["tls13_mtls", "tls12_chacha_mtls", "tls13_hrr_mtls"] {
        let whole = dissect(name, keylog(name));
        let mut dissector = Dissector::new(keylog(name));
        let mut bytewise = Vec::new();
        for (direction, bytes) in reads(name) {
            for byte in bytes {
                bytewise.extend(dissector.feed(direction, &[byte]));
            }
        }
        assert_eq!(bytewise, whole, "{name}");
    }

    // The TLS 1.2 server flight is plaintext: cut it into 50-byte records, and then merge it
    // into a single record.
    let reads = reads("tls12_aes128gcm_mtls");
    let (_, flight) = &reads[1];
    let mut handshake = Vec::new();
    let mut rest = flight.as_slice();
    while let Ok((record, used)) = parse_record(rest) {
        assert_eq!(record.content_type, 22);
        handshake.extend_from_slice(record.fragment);
        rest = &rest[used..];
    }
    let kinds = |events: Vec<Event>| -> Vec<String> { events.iter().map(summary).collect() };
    let expected = &TLS12_MTLS[1..6];
    let mut small = Vec::new();
    for chunk in handshake.chunks(50) {
        small.extend_from_slice(&[22, 3, 3, 0, chunk.len() as u8]);
        small.extend_from_slice(chunk);
    }
    let mut dissector = Dissector::new(KeyLog::empty());
    dissector.feed(Direction::ClientToServer, &reads[0].1);
    assert_eq!(
        kinds(dissector.feed(Direction::ServerToClient, &small)),
        expected
    );
    let mut big = vec![22, 3, 3];
    big.extend_from_slice(&u16::try_from(handshake.len()).expect("fits").to_be_bytes());
    big.extend_from_slice(&handshake);
    let mut dissector = Dissector::new(KeyLog::empty());
    dissector.feed(Direction::ClientToServer, &reads[0].1);
    assert_eq!(
        kinds(dissector.feed(Direction::ServerToClient, &big)),
        expected
    );

    // parse_handshake on every strict prefix of a message asks for more bytes.
    let (_, used) = parse_handshake(&handshake, &Default::default()).expect("ServerHello");
    for end in 0..used {
        assert!(matches!(
            parse_handshake(&handshake[..end], &Default::default()),
            Err(mtls_inspect::ParseError::Incomplete { needed }) if needed > 0
        ));
    }
}

#[test]
fn key_log_given_after_the_hellos() {
    let name = "tls13_mtls";
    let reads = reads(name);
    let mut dissector = Dissector::new(KeyLog::empty());
    let mut events = Vec::new();
    for (index, (direction, bytes)) in reads.iter().enumerate() {
        // reads[1] holds the ServerHello and the start of the encrypted flight.
        if index == 1 {
            dissector.set_keylog(keylog(name));
        }
        events.extend(dissector.feed(*direction, bytes));
    }
    assert_eq!(events, dissect(name, keylog(name)));
}

#[test]
fn events_serialize_as_tagged_json() {
    let events = dissect("tls13_no_client_cert", keylog("tls13_no_client_cert"));
    let json = serde_json::to_value(&events[0]).expect("json");
    assert_eq!(json["direction"], "client_to_server");
    assert_eq!(json["record"]["content_type"], "handshake");
    assert_eq!(json["record"]["version"], 0x0301);
    assert_eq!(json["item"]["type"], "handshake");
    assert_eq!(json["item"]["kind"], "ClientHello");
    assert_eq!(json["item"]["fields"][0]["name"], "legacy_version");
    let json = serde_json::to_value(events.last().expect("alert")).expect("json");
    assert_eq!(json["item"]["type"], "alert");
    assert_eq!(json["item"]["description"], "certificate_required");
    assert_eq!(json["item"]["code"], 116);
    assert_eq!(json["record"]["decrypted"], true);
}

fn message<'a>(
    events: &'a [Event],
    direction: Direction,
    kind: &str,
) -> &'a mtls_inspect::HandshakeMessage {
    events
        .iter()
        .filter(|e| e.direction == direction)
        .find_map(|e| e.item.handshake().filter(|m| m.kind == kind))
        .unwrap_or_else(|| panic!("no {kind} {direction:?}"))
}

fn subjects(certificate: &mtls_inspect::HandshakeMessage) -> Vec<String> {
    certificate
        .find_all("subject")
        .iter()
        .map(|f| f.value.clone())
        .collect()
}

/// Application data lengths depend on the server's page; compare without them.
fn without_lengths(summaries: &[String]) -> Vec<String> {
    summaries
        .iter()
        .map(|s| match s.strip_prefix("← application_data ") {
            Some(_) => "← application_data*".to_owned(),
            None => s.clone(),
        })
        .collect()
}

fn without_lengths_str(summaries: &[&str]) -> Vec<String> {
    without_lengths(
        &summaries
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>(),
    )
}

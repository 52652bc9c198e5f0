//! Summaries and verdicts of the recorded handshakes, with and without their key logs.

use mtls_inspect::{
    Alert, CertificateRequest, ClientCertificate, Close, Conversation, Detail, Direction,
    Dissector, KeyLog, Outcome, Summary,
};

use crate::util::{dissect, keylog};

fn summarise(name: &str, keylog: KeyLog, close: Close) -> Summary {
    let mut conversation = Conversation::new();
    for event in dissect(name, keylog) {
        conversation.observe(&event);
    }
    conversation.tcp_closed(close);
    conversation.summary()
}

/// `mtls trace` without -V renders only what the summary reads ([`Detail::Summary`]): every
/// fixture, with and without its key log, must sum up exactly as with every field rendered.
#[test]
fn brief_rendering_sums_up_the_same() {
    for name in crate::util::FIXTURES {
        for with_keys in [true, false] {
            let keys = || {
                if with_keys {
                    keylog(name)
                } else {
                    KeyLog::empty()
                }
            };
            let full = summarise(name, keys(), SERVER_CLOSED);
            let mut dissector = Dissector::new(keys()).with_detail(Detail::Summary);
            let mut conversation = Conversation::new();
            for (direction, bytes) in crate::util::reads(name) {
                for event in dissector.feed(direction, &bytes) {
                    conversation.observe_owned(event);
                }
            }
            conversation.tcp_closed(SERVER_CLOSED);
            assert_eq!(conversation.summary(), full, "{name} with_keys={with_keys}");
        }
    }
}

fn client_cert(summary: &Summary) -> (&str, &str) {
    match &summary.client_certificate {
        ClientCertificate::Sent(cert) => (cert.subject.as_str(), cert.issuer.as_str()),
        other => panic!("no client certificate: {other:?}"),
    }
}

fn failed(summary: &Summary) -> (&str, Option<&Alert>, Direction) {
    match &summary.outcome {
        Outcome::Failed { verdict, alert, by } => (verdict.as_str(), alert.as_ref(), *by),
        other => panic!("not a failure: {other:?}"),
    }
}

const SERVER_CLOSED: Close = Close::Fin {
    by: Direction::ServerToClient,
};
const CLIENT_CLOSED: Close = Close::Fin {
    by: Direction::ClientToServer,
};
const TLS13_KEYLOG_HINT: &str = "the client certificate and the server's CertificateRequest are \
                                 encrypted in TLS 1.3; give --keylog to see them";

#[test]
fn tls13_mutual_tls_with_key_log() {
    let summary = summarise("tls13_mtls", keylog("tls13_mtls"), CLIENT_CLOSED);
    assert_eq!(summary.outcome, Outcome::Completed);
    assert_eq!(summary.sni.as_deref(), Some("localhost"));
    assert_eq!(summary.version.as_deref(), Some("TLS 1.3"));
    assert_eq!(summary.suite.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(summary.group.as_deref(), Some("x25519"));
    assert_eq!(summary.resumed, Some(false));
    assert_eq!(
        summary.certificate_request,
        CertificateRequest::Sent {
            authorities: vec!["CN=mtls CA".to_owned()]
        }
    );
    assert_eq!(client_cert(&summary), ("O=mtls, CN=alice", "CN=mtls CA"));
    let server = summary.server_certificate.as_ref().expect("server cert");
    assert_eq!(server.subject, "O=mtls, CN=localhost");
    assert!(
        server
            .serial
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_lowercase()),
        "{}",
        server.serial
    );
    assert!(summary.what_could_not_be_seen.is_empty(), "{summary:#?}");
    let line = summary.to_string();
    assert!(
        line.starts_with(
            "sni=localhost TLSv1.3 TLS_AES_256_GCM_SHA384 x25519 full \
             client-cert=O=mtls, CN=alice (CN=mtls CA, "
        ),
        "{line}"
    );
    assert!(
        line.contains(" server-cert=O=mtls, CN=localhost (CN=mtls CA, "),
        "{line}"
    );
    assert!(line.ends_with(" ok"), "{line}");

    let json = serde_json::to_value(&summary).expect("json");
    assert_eq!(json["outcome"]["status"], "completed");
    assert_eq!(json["client_certificate"]["type"], "sent");
    assert_eq!(json["client_certificate"]["subject"], "O=mtls, CN=alice");
}

#[test]
fn tls13_mutual_tls_without_key_log() {
    let summary = summarise("tls13_mtls", KeyLog::empty(), CLIENT_CLOSED);
    assert_eq!(summary.outcome, Outcome::Completed);
    assert_eq!(summary.version.as_deref(), Some("TLS 1.3"));
    assert_eq!(summary.suite.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(summary.client_certificate, ClientCertificate::Unknown);
    assert_eq!(summary.certificate_request, CertificateRequest::Unknown);
    assert_eq!(summary.server_certificate, None);
    assert_eq!(summary.what_could_not_be_seen, [TLS13_KEYLOG_HINT]);
    // The fingerprints are of the recorded openssl client and server; the oracle test
    // (fingerprint.rs) checks them against tshark on a fresh capture.
    let ja4 = summary.ja4.as_deref().expect("ja4");
    assert!(ja4.starts_with("t13d"), "{ja4}");
    assert!(
        summary
            .ja3s_full
            .as_deref()
            .is_some_and(|s| s.starts_with("771,4866,")),
        "{summary:?}"
    );
    assert_eq!(
        summary.to_string(),
        format!(
            "sni=localhost TLSv1.3 TLS_AES_256_GCM_SHA384 x25519 full client-cert=? ja3={} \
             ja3s={} ja4={ja4} ok",
            summary.ja3.as_deref().expect("ja3"),
            summary.ja3s.as_deref().expect("ja3s"),
        )
    );
}

#[test]
fn tls13_hello_retry_request_reports_the_final_group() {
    let summary = summarise("tls13_hrr_mtls", keylog("tls13_hrr_mtls"), CLIENT_CLOSED);
    assert_eq!(summary.outcome, Outcome::Completed);
    assert_eq!(summary.group.as_deref(), Some("secp256r1"));
}

#[test]
fn tls12_mutual_tls_everything_visible() {
    for keys in [keylog("tls12_aes128gcm_mtls"), KeyLog::empty()] {
        let summary = summarise("tls12_aes128gcm_mtls", keys, CLIENT_CLOSED);
        assert_eq!(summary.outcome, Outcome::Completed);
        assert_eq!(summary.version.as_deref(), Some("TLS 1.2"));
        assert_eq!(
            summary.suite.as_deref(),
            Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
        );
        assert_eq!(summary.group.as_deref(), Some("x25519"));
        assert_eq!(summary.resumed, Some(false));
        assert_eq!(client_cert(&summary), ("O=mtls, CN=alice", "CN=mtls CA"));
        assert!(summary.what_could_not_be_seen.is_empty(), "{summary:#?}");
        assert!(summary.to_string().ends_with(" ok"));
    }
}

#[test]
fn tls12_server_asked_and_client_sent_none() {
    for keys in [keylog("tls12_no_client_cert"), KeyLog::empty()] {
        let summary = summarise("tls12_no_client_cert", keys, SERVER_CLOSED);
        let (verdict, alert, by) = failed(&summary);
        assert_eq!(
            verdict,
            "the server asked for a client certificate (accepting CN=mtls CA) and the client \
             sent none"
        );
        assert_eq!(
            alert,
            Some(&Alert {
                name: "handshake_failure".to_owned(),
                code: 40
            })
        );
        assert_eq!(by, Direction::ServerToClient);
        assert_eq!(summary.client_certificate, ClientCertificate::None);
        let line = summary.to_string();
        assert!(
            line.starts_with(
                "sni=localhost TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 x25519 full \
                 client-cert=none server-cert=O=mtls, CN=localhost (CN=mtls CA, "
            ),
            "{line}"
        );
        assert!(line.ends_with(&format!(" FAILED: {verdict}")), "{line}");
    }
}

#[test]
fn tls13_server_asked_and_client_sent_none() {
    let summary = summarise(
        "tls13_no_client_cert",
        keylog("tls13_no_client_cert"),
        SERVER_CLOSED,
    );
    let (verdict, alert, _) = failed(&summary);
    assert_eq!(
        verdict,
        "the server asked for a client certificate (accepting CN=mtls CA) and the client sent \
         none"
    );
    assert_eq!(alert.map(|a| a.code), Some(116));
}

#[test]
fn tls13_server_refused_the_client_certificate() {
    let summary = summarise(
        "tls13_untrusted_client_cert",
        keylog("tls13_untrusted_client_cert"),
        SERVER_CLOSED,
    );
    let (verdict, alert, by) = failed(&summary);
    assert_eq!(
        verdict,
        "the server refused the client certificate CN=mallory (issued by CN=other CA) with \
         alert unknown_ca: the server accepts CN=mtls CA"
    );
    assert_eq!(alert.map(|a| a.name.as_str()), Some("unknown_ca"));
    assert_eq!(by, Direction::ServerToClient);
    assert_eq!(client_cert(&summary), ("CN=mallory", "CN=other CA"));
    let line = summary.to_string();
    assert!(
        line.contains(" client-cert=CN=mallory (CN=other CA, "),
        "{line}"
    );
    assert!(line.ends_with(&format!(" FAILED: {verdict}")), "{line}");
}

/// Without the key log the alert itself is encrypted; its size and the silence after it
/// are the evidence.
#[test]
fn tls13_refusal_without_key_log_is_probable() {
    for name in ["tls13_untrusted_client_cert", "tls13_no_client_cert"] {
        let summary = summarise(name, KeyLog::empty(), SERVER_CLOSED);
        let (verdict, alert, by) = failed(&summary);
        assert_eq!(
            verdict,
            "the server answered the client's certificate and Finished with one encrypted \
             record the size of an alert and nothing else: probably it refused the client \
             certificate (or its absence)",
            "{name}"
        );
        assert_eq!(alert, None);
        assert_eq!(by, Direction::ServerToClient);
        assert_eq!(summary.client_certificate, ClientCertificate::Unknown);
        assert_eq!(summary.what_could_not_be_seen, [TLS13_KEYLOG_HINT]);
    }
}

/// Bytes the capture lost: the dissector stops that direction (where the next record starts
/// is unknown), and a handshake not seen to end is incomplete, not guessed.
#[test]
fn a_gap_stops_the_direction_and_leaves_the_handshake_incomplete() {
    let name = "tls12_no_client_cert";
    let reads = crate::util::reads(name);
    let mut dissector = Dissector::new(keylog(name));
    let mut conversation = Conversation::new();
    let (first_direction, first) = &reads[0];
    assert_eq!(*first_direction, Direction::ClientToServer);
    for event in dissector.feed(*first_direction, first) {
        conversation.observe_owned(event);
    }
    let notice = dissector
        .gap(Direction::ServerToClient, 0, 100)
        .expect("the first gap of a direction is said");
    assert!(
        notice.to_string().contains("100 byte(s) missing"),
        "{notice}"
    );
    assert!(dissector.gap(Direction::ServerToClient, 200, 1).is_none());
    conversation.tcp_gap(Direction::ServerToClient, 0, 100);
    for (direction, bytes) in &reads[1..] {
        let events = dissector.feed(*direction, bytes);
        if *direction == Direction::ServerToClient {
            assert!(events.is_empty(), "{events:?}");
        }
        for event in events {
            conversation.observe_owned(event);
        }
    }
    conversation.tcp_closed(SERVER_CLOSED);
    let summary = conversation.summary();
    assert_eq!(
        summary.outcome,
        Outcome::Incomplete {
            verdict: "the capture misses 100 byte(s) from the server at stream offset 0, \
                      before the handshake finished"
                .to_owned()
        },
        "{summary:#?}"
    );
}

/// A TLS 1.3 client that sends its Finished and closes at once (`openssl s_client
/// </dev/null`): the server's certificate_required comes after the client's FIN and is
/// still the verdict, with the key log and, as a probable refusal, without it.
#[test]
fn a_refusal_after_the_clients_fin_is_still_the_verdict() {
    let name = "tls13_no_client_cert";
    let reads = crate::util::reads(name);
    let last_server = reads
        .iter()
        .rposition(|(d, _)| *d == Direction::ServerToClient)
        .expect("a server read");
    for keys in [keylog(name), KeyLog::empty()] {
        let mut dissector = Dissector::new(keys);
        let mut conversation = Conversation::new();
        for (i, (direction, bytes)) in reads.iter().enumerate() {
            if i == last_server {
                conversation.tcp_fin(Direction::ClientToServer);
            }
            for event in dissector.feed(*direction, bytes) {
                conversation.observe_owned(event);
            }
        }
        conversation.tcp_closed(CLIENT_CLOSED);
        let summary = conversation.summary();
        assert!(
            matches!(summary.outcome, Outcome::Failed { .. }),
            "{summary:#?}"
        );
    }
}

/// A server that closes (FIN) on a ClientHello, then resets when the client's alert
/// arrives: it closed the connection; the reset is its kernel answering the alert.
#[test]
fn a_reset_after_the_servers_fin_is_a_close() {
    let name = "tls12_no_client_cert";
    let reads = crate::util::reads(name);
    let mut dissector = Dissector::new(KeyLog::empty());
    let mut conversation = Conversation::new();
    for event in dissector.feed(reads[0].0, &reads[0].1) {
        conversation.observe_owned(event);
    }
    conversation.tcp_fin(Direction::ServerToClient);
    conversation.tcp_closed(Close::Reset {
        by: Direction::ServerToClient,
    });
    assert_eq!(
        conversation.summary().outcome,
        Outcome::Failed {
            verdict: "the server closed the connection after ClientHello, without an alert"
                .to_owned(),
            alert: None,
            by: Direction::ServerToClient,
        }
    );
}

/// A peer that sends message after message does not grow the conversation without bound:
/// 10,000 empty HelloRequests are kept as 256.
#[test]
fn a_flood_of_messages_is_kept_bounded() {
    let mut dissector = Dissector::new(KeyLog::empty());
    let mut conversation = Conversation::new();
    let name = "tls12_no_client_cert";
    let reads = crate::util::reads(name);
    for event in dissector.feed(reads[0].0, &reads[0].1) {
        conversation.observe_owned(event);
    }
    let body = [0u8; 4].repeat(4000);
    for _ in 0..3 {
        let mut record = vec![22, 3, 3];
        record.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        record.extend_from_slice(&body);
        for event in dissector.feed(Direction::ServerToClient, &record) {
            conversation.observe_owned(event);
        }
    }
    conversation.tcp_closed(SERVER_CLOSED);
    assert_eq!(conversation.summary().messages.len(), 256);
}

//! `mtls get --trace` against Wireshark as the oracle: the same connection is captured on
//! loopback with tshark, decrypted by tshark with the key log `mtls get --keylog` wrote,
//! and every handshake field tshark decodes — message types in order, record versions,
//! cipher suites, extensions, CertificateRequest CA names, certificate subjects — must be
//! what our trace says. One TLS 1.2 and one TLS 1.3 mutual-TLS handshake, with
//! `openssl s_server -Verify 1` as the server.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Work, free_port};

/// One handshake message as either side describes it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Message {
    /// True for client to server.
    from_client: bool,
    /// The handshake type number.
    kind: u8,
    /// Cipher suites by code, in order.
    suites: Vec<String>,
    /// Extension names, in order (Wireshark's spelling).
    extensions: Vec<String>,
    /// CertificateRequest CA names, as `CN=...`.
    ca_names: Vec<String>,
    /// Certificate subjects, as `CN=...`.
    subjects: Vec<String>,
}

/// Everything compared for one connection.
#[derive(Debug, Default, PartialEq, Eq)]
struct Handshake {
    messages: Vec<Message>,
    /// Record-layer versions per direction, consecutive repeats merged.
    client_record_versions: Vec<String>,
    server_record_versions: Vec<String>,
}

fn kind_number(name: &str) -> Option<u8> {
    Some(match name {
        "ClientHello" => 1,
        "ServerHello" | "HelloRetryRequest" => 2,
        "NewSessionTicket" => 4,
        "EncryptedExtensions" => 8,
        "Certificate" => 11,
        "ServerKeyExchange" => 12,
        "CertificateRequest" => 13,
        "ServerHelloDone" => 14,
        "CertificateVerify" => 15,
        "ClientKeyExchange" => 16,
        "Finished" => 20,
        "KeyUpdate" => 24,
        _ => return None,
    })
}

fn push_merged(list: &mut Vec<String>, version: String) {
    if list.last() != Some(&version) {
        list.push(version);
    }
}

/// Our side: the `--trace` events of `mtls get --json`.
fn ours(report: &Value) -> Handshake {
    let hop = report["hops"]
        .as_array()
        .and_then(|h| h.last())
        .unwrap_or(report);
    let events = hop["trace"]
        .as_array()
        .unwrap_or_else(|| panic!("no trace in {report}"));
    let mut out = Handshake::default();
    let mut last_record: Option<(bool, Value)> = None;
    for entry in events {
        let event = entry.get("event").unwrap_or(entry);
        let from_client = event["direction"] == "client_to_server";
        let record = event["record"].clone();
        // Several messages of one record repeat its header: count the record once.
        let same_record = last_record.as_ref() == Some(&(from_client, record.clone()))
            && record["content_type"] == "handshake";
        if !same_record {
            let version = format!("0x{:04x}", record["version"].as_u64().unwrap_or(0));
            let list = if from_client {
                &mut out.client_record_versions
            } else {
                &mut out.server_record_versions
            };
            push_merged(list, version);
        }
        last_record = Some((from_client, record));
        let item = &event["item"];
        if item["type"] != "handshake" {
            continue;
        }
        let Some(kind) = item["kind"].as_str().and_then(kind_number) else {
            continue;
        };
        let mut message = Message {
            from_client,
            kind,
            ..Message::default()
        };
        collect_fields(&item["fields"], &mut message);
        out.messages.push(message);
    }
    out
}

fn collect_fields(fields: &Value, message: &mut Message) {
    let Some(fields) = fields.as_array() else {
        return;
    };
    for field in fields {
        let name = field["name"].as_str().unwrap_or("");
        let value = field["value"].as_str().unwrap_or("");
        if name.starts_with("cipher_suites") || name == "cipher_suite" {
            // "TLS_AES_256_GCM_SHA384 (0x1302), TLS_AES_128_GCM_SHA256 (0x1301), ..."
            let mut text = value.to_owned();
            for child in field["children"].as_array().into_iter().flatten() {
                text.push_str(child["value"].as_str().unwrap_or(""));
            }
            for (at, _) in text.match_indices("(0x") {
                if let Some(code) = text.get(at + 3..at + 7) {
                    message
                        .suites
                        .push(format!("0x{}", code.to_ascii_lowercase()));
                }
            }
            continue;
        }
        if let Some(ext) = name.strip_prefix("extension ") {
            message.extensions.push(ext.to_owned());
            if ext == "certificate_authorities" {
                collect_names(field, &mut message.ca_names);
            }
            continue;
        }
        if name.starts_with("certificate_authorities") {
            collect_names(field, &mut message.ca_names);
            continue;
        }
        if name == "subject" {
            message.subjects.push(value.to_owned());
            continue;
        }
        collect_fields(&field["children"], message);
    }
}

fn collect_names(field: &Value, names: &mut Vec<String>) {
    let children = field["children"].as_array().cloned().unwrap_or_default();
    if children.is_empty() {
        let value = field["value"].as_str().unwrap_or("");
        names.extend(
            value
                .split("; ")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
    }
    for child in children {
        if child["children"].as_array().is_some_and(|c| !c.is_empty()) {
            collect_names(&child, names);
        } else if let Some(v) = child["value"].as_str() {
            names.push(v.to_owned());
        }
    }
}

/// tshark's side, from `tshark -V`.
fn theirs(text: &str, server_port: u16) -> Handshake {
    let mut out = Handshake::default();
    let mut from_client = false;
    let mut current: Option<Message> = None;
    let mut next_is_subject = false;
    let mut record_header = false;
    let port_line = "Source Port: ";
    for raw in text.lines() {
        let line = raw.trim();
        if raw.starts_with("Frame ") {
            if let Some(m) = current.take() {
                out.messages.push(m);
            }
            continue;
        }
        if let Some(port) = line.strip_prefix(port_line) {
            from_client = port.trim().parse::<u16>().ok() != Some(server_port);
            continue;
        }
        if line.starts_with("Content Type: ") || line.starts_with("Opaque Type: ") {
            record_header = true;
            continue;
        }
        if record_header && let Some(v) = line.strip_prefix("Version: ") {
            record_header = false;
            let code = v.rsplit('(').next().unwrap_or("").trim_end_matches(')');
            let list = if from_client {
                &mut out.client_record_versions
            } else {
                &mut out.server_record_versions
            };
            push_merged(list, code.to_owned());
            continue;
        }
        record_header = false;
        if let Some(kind) = line.strip_prefix("Handshake Type: ") {
            if let Some(m) = current.take() {
                out.messages.push(m);
            }
            let number = kind
                .rsplit('(')
                .next()
                .and_then(|n| n.trim_end_matches(')').parse::<u8>().ok())
                .unwrap_or(0);
            current = Some(Message {
                from_client,
                kind: number,
                ..Message::default()
            });
            continue;
        }
        let Some(message) = current.as_mut() else {
            continue;
        };
        if let Some(suite) = line.strip_prefix("Cipher Suite: ") {
            let code = suite.rsplit("(").next().unwrap_or("").trim_end_matches(')');
            message.suites.push(code.to_ascii_lowercase());
        } else if let Some(ext) = line.strip_prefix("Type: ") {
            // "Type: server_name (0)"
            if let Some((name, _)) = ext.rsplit_once(" (") {
                message.extensions.push(name.to_owned());
            }
        } else if let Some(dn) = line.strip_prefix("Distinguished Name: (") {
            message.ca_names.push(dn_words(dn.trim_end_matches(')')));
        } else if line.starts_with("subject: rdnSequence") {
            next_is_subject = true;
        } else if next_is_subject && line.starts_with("rdnSequence: ") {
            next_is_subject = false;
            if let Some(start) = line.find('(') {
                message
                    .subjects
                    .push(dn_words(line[start + 1..].trim_end_matches(')')));
            }
        }
    }
    if let Some(m) = current.take() {
        out.messages.push(m);
    }
    out
}

/// `id-at-commonName=mtls CA` as `CN=mtls CA`.
fn dn_words(tshark: &str) -> String {
    tshark
        .split(',')
        .map(|part| {
            part.replace("id-at-commonName=", "CN=")
                .replace("id-at-organizationName=", "O=")
                .replace("id-at-organizationalUnitName=", "OU=")
                .replace("id-at-countryName=", "C=")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

struct Capture {
    child: Child,
    file: std::path::PathBuf,
}

impl Capture {
    fn start(work: &Work, port: u16) -> Capture {
        let file = work.join(&format!("capture-{port}.pcapng"));
        let log = work.join(&format!("tshark-{port}.log"));
        let child = Command::new(mtls_test_support::require_peer("tshark"))
            .args(["-i", "lo", "-f", &format!("tcp port {port}"), "-w"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Capturing on")
        {
            assert!(
                Instant::now() < deadline,
                "tshark did not start capturing: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Capturing has begun once tshark says so; give the filter a moment.
        std::thread::sleep(Duration::from_millis(300));
        Capture { child, file }
    }

    fn stop(mut self) -> std::path::PathBuf {
        std::thread::sleep(Duration::from_millis(500));
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.file.clone()
    }
}

fn compare(version_flag: &str) {
    let work = Work::new();
    work.init_ca(false);
    work.ok(&["pki", "issue", "server", "localhost", "--san", "localhost"]);
    work.ok(&["pki", "issue", "client", "alice"]);
    let port = free_port();
    let accept = format!("127.0.0.1:{port}");
    let _server = work.spawn_peer(
        "s_server",
        port,
        "openssl",
        &[
            "s_server",
            "-accept",
            &accept,
            "-cert",
            "pki/certs/localhost.chain.pem",
            "-key",
            "pki/private/localhost.key",
            "-CAfile",
            "pki/ca.crt",
            "-Verify",
            "1",
            "-www",
            version_flag,
        ],
    );
    let capture = Capture::start(&work, port);
    let url = format!("https://localhost:{port}/");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let report = work.ok(&[
        "get",
        &url,
        "--resolve",
        &resolve,
        "--ca",
        "pki/ca.crt",
        "--cert",
        "pki/certs/alice.crt",
        "--key",
        "pki/private/alice.key",
        "--http1.1",
        "--keylog",
        "keys.log",
        "--trace",
        "--json",
    ]);
    let file = capture.stop();
    let report: Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    let keylog = format!("tls.keylog_file:{}", work.join("keys.log").display());
    let out = Command::new(mtls_test_support::require_peer("tshark"))
        .args(["-o", &keylog, "-V", "-Y", "tls", "-r"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let theirs = theirs(&text, port);
    let ours = ours(&report);
    assert!(
        theirs.messages.len() >= 8,
        "tshark saw the handshake ({version_flag}): {theirs:#?}\n{text}"
    );
    assert_eq!(
        ours.messages.len(),
        theirs.messages.len(),
        "messages: ours {ours:#?}\ntheirs {theirs:#?}"
    );
    for (a, b) in ours.messages.iter().zip(&theirs.messages) {
        assert_eq!(
            a, b,
            "{version_flag}: a message differs (ours, then tshark's)"
        );
    }
    assert_eq!(ours.client_record_versions, theirs.client_record_versions);
    assert_eq!(ours.server_record_versions, theirs.server_record_versions);
    // The mTLS essentials are really there.
    let request = ours
        .messages
        .iter()
        .find(|m| m.kind == 13)
        .expect("CertificateRequest");
    assert_eq!(request.ca_names, ["CN=mtls CA"]);
    let client_cert = ours
        .messages
        .iter()
        .find(|m| m.kind == 11 && m.from_client)
        .expect("client Certificate");
    assert_eq!(
        client_cert.subjects.first().map(String::as_str),
        Some("CN=alice")
    );
}

#[test]
fn tls13_mutual_handshake_matches_tshark() {
    compare("-tls1_3");
}

#[test]
fn tls12_mutual_handshake_matches_tshark() {
    compare("-tls1_2");
}

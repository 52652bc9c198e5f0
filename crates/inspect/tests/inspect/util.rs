//! Loading the recorded fixtures and summarising events for comparisons.

use std::path::PathBuf;

use mtls_inspect::{Direction, Dissector, Event, Item, KeyLog};

/// Every recorded fixture, by base name.
pub const FIXTURES: &[&str] = &[
    "tls13_mtls",
    "tls13_chacha_mtls",
    "tls13_hrr_mtls",
    "tls13_untrusted_client_cert",
    "tls13_no_client_cert",
    "tls12_aes128gcm_mtls",
    "tls12_chacha_mtls",
    "tls12_no_client_cert",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The recorded reads of one connection, in wire order.
pub fn reads(name: &str) -> Vec<(Direction, Vec<u8>)> {
    let text = std::fs::read_to_string(fixture(&format!("{name}.hex"))).expect("fixture");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (tag, hex) = line.split_once(' ').expect("`c <hex>` or `s <hex>`");
            let direction = match tag {
                "c" => Direction::ClientToServer,
                "s" => Direction::ServerToClient,
                other => panic!("bad direction {other}"),
            };
            (direction, hex::decode(hex).expect("hex"))
        })
        .collect()
}

/// The fixture's key log.
pub fn keylog(name: &str) -> KeyLog {
    let text = std::fs::read_to_string(fixture(&format!("{name}.keys"))).expect("key log");
    KeyLog::parse(&text).expect("valid key log")
}

/// All events of a fixture, fed read by read.
pub fn dissect(name: &str, keylog: KeyLog) -> Vec<Event> {
    let mut dissector = Dissector::new(keylog);
    reads(name)
        .iter()
        .flat_map(|(direction, bytes)| dissector.feed(*direction, bytes))
        .collect()
}

/// One line per event: `→ ClientHello`, `← Finished*` (`*` = decrypted),
/// `← alert fatal certificate_required*`, `→ application_data 18*`, `← handshake encrypted`.
pub fn summary(event: &Event) -> String {
    let arrow = match event.direction {
        Direction::ClientToServer => '→',
        Direction::ServerToClient => '←',
    };
    let star = if event.record.decrypted { "*" } else { "" };
    match &event.item {
        Item::Handshake(message) => format!("{arrow} {}{star}", message.kind),
        Item::ChangeCipherSpec => format!("{arrow} ChangeCipherSpec"),
        Item::Alert {
            level, description, ..
        } => format!("{arrow} alert {level} {description}{star}"),
        Item::ApplicationData { length } => format!("{arrow} application_data {length}{star}"),
        Item::Encrypted { .. } => format!("{arrow} {} encrypted", event.record.content_type),
        Item::Malformed { reason } => format!("{arrow} malformed: {reason}"),
    }
}

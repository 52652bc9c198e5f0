//! The trace text: each [`Event`] framed with when it crossed and which way, the one shape
//! that `mtls get --trace` and `mtls trace -V` both print.
//!
//! ```text
//! [     0.412 ms] client -> server
//!     → handshake record TLS 1.0 (0x0301), 252 bytes
//!       ClientHello (248 bytes)
//!         legacy_version: TLS 1.2 (0x0303)
//! ```
//!
//! The heading is a line of its own so that an event's lines line up whatever the time's
//! width, and the direction is spelled out for readers who grep the text.

use std::fmt;

use crate::dissector::{Direction, Event};

/// An [`Event`] as the trace shows it, from [`Event::framed`]: a heading with the time and
/// the direction, then the event's own lines indented by four spaces. No newline at the end.
#[derive(Debug, Clone, Copy)]
pub struct Framed<'a> {
    event: &'a Event,
    at_ms: f64,
}

impl Event {
    /// This event framed for the trace text, `at_ms` milliseconds after the connection began
    /// (for `mtls get`, the start of the hop; for `mtls trace`, the connection's first packet
    /// in the capture).
    pub fn framed(&self, at_ms: f64) -> Framed<'_> {
        Framed { event: self, at_ms }
    }
}

impl fmt::Display for Framed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let way = match self.event.direction {
            Direction::ClientToServer => "client -> server",
            Direction::ServerToClient => "server -> client",
        };
        write!(f, "[{:>10.3} ms] {way}\n    ", self.at_ms)?;
        // Written through the indenter, not via a String: `mtls trace -V` frames every
        // event of a capture.
        fmt::write(&mut Indent(f), format_args!("{}", self.event))
    }
}

/// Indents every line after the first by four spaces.
struct Indent<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for Indent<'_, '_> {
    fn write_str(&mut self, mut s: &str) -> fmt::Result {
        while let Some((line, rest)) = s.split_once('\n') {
            self.0.write_str(line)?;
            self.0.write_str("\n    ")?;
            s = rest;
        }
        self.0.write_str(s)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Direction, Dissector, KeyLog};

    #[test]
    fn an_event_is_framed_with_its_time_and_direction_and_indented() {
        let mut dissector = Dissector::new(KeyLog::empty());
        let alert = dissector.feed(Direction::ServerToClient, &[21, 3, 3, 0, 2, 2, 116]);
        assert_eq!(
            alert[0].framed(0.5).to_string(),
            "[     0.500 ms] server -> client\n    \
             ← alert record TLS 1.2 (0x0303), 2 bytes: fatal certificate_required (116)"
        );
        // A handshake message: every line of it is indented, the fields deeper.
        let hello = [
            22, 3, 1, 0, 45, // handshake record, 45 bytes
            1, 0, 0, 41, 3, 3, // ClientHello, 41 bytes, TLS 1.2
        ]
        .into_iter()
        .chain([0; 32]) // random
        .chain([0, 0, 2, 0x13, 0x01, 1, 0]) // no session id, one suite, null compression
        .collect::<Vec<u8>>();
        let events = dissector.feed(Direction::ClientToServer, &hello);
        let text = events[0].framed(12_345.0).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "[ 12345.000 ms] client -> server", "{text}");
        assert_eq!(
            lines[1], "    → handshake record TLS 1.0 (0x0301), 45 bytes",
            "{text}"
        );
        assert_eq!(lines[2], "      ClientHello (41 bytes)", "{text}");
        assert!(
            lines[3..].iter().all(|l| l.starts_with("        ")),
            "{text}"
        );
        assert!(!text.ends_with('\n'), "{text}");
    }
}

//! The log on stderr (`mtls serve`, `echo-server`, `get`): one event, one line, whatever it
//! holds.
//!
//! Names from certificates are escaped where they are printed (`mtls_pki::dn`), but a log
//! line also carries peer-chosen text that no one escaped (an SNI name in an error, an
//! upstream's message, a path). The writer below is the net under all of them: every
//! control character of an event except its final newline is written as `\xNN`, as the
//! access log does, so no event can fake another line or rewrite the terminal.
//!
//! ```text
//!   tracing event ─► fmt layer (one write per event) ─► OneLine ─► stderr
//!                                                       `\n` `\r` `\t` ... -> `\x0A` ...
//! ```
//!
//! Colour: on a terminal the fmt layer writes ANSI colour codes (ESC sequences) of its own,
//! so there ESC alone is let through; tracing-subscriber (0.3.20 and later) already escapes
//! ESC inside messages and fields. Everything else (newlines, carriage returns, C1 controls
//! such as NEL) is escaped on a terminal too. Off a terminal colour is off and ESC is
//! escaped like the rest.

use std::io::{self, Write};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Log to stderr at `MTLS_LOG` (default `default_level`), colour only on a terminal.
pub(crate) fn init(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MTLS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let ansi = io::IsTerminal::is_terminal(&io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(OneLine::new(io::stderr, ansi))
        .with_ansi(ansi)
        .event_format(Lines::default())
        .try_init();
}

/// The layout of a line: `TIME LEVEL message`, and for events of other crates (rustls'
/// warnings, through the `log` bridge) the fields of the spans they happened in, which
/// name the connection: `TIME WARN client=127.0.0.1:50514: Refusing renegotiation`. Our
/// own lines name the client in their message already; the gateway runs each connection
/// in a `connection` span (`client=`) for the others.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    time: SystemTime,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if self.time.format_time(&mut writer).is_err() {
            writer.write_str("-")?;
        }
        let level = *event.metadata().level();
        write!(writer, " {level:>5} ")?;
        let ours = event.metadata().target().starts_with("mtls");
        if !ours && let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{fields}: ")?;
                }
            }
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// A `MakeWriter` whose writers escape control characters (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct OneLine<M> {
    inner: M,
    /// Let ESC through, for the formatter's own colour codes.
    ansi: bool,
}

impl<M> OneLine<M> {
    /// Wrap `inner`; `ansi` lets ESC through.
    pub(crate) fn new(inner: M, ansi: bool) -> Self {
        OneLine { inner, ansi }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLine<M> {
    type Writer = OneLineWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter {
            inner: self.inner.make_writer(),
            ansi: self.ansi,
        }
    }
}

/// The writer of one event.
#[derive(Debug)]
pub(crate) struct OneLineWriter<W> {
    inner: W,
    ansi: bool,
}

impl<W: Write> Write for OneLineWriter<W> {
    /// The fmt layer hands over a whole event in one `write_all`, so `buf` ends with the
    /// event's newline; escaping is per call, never across calls.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_all(&escape(buf, self.ansi))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `buf` with every control character but a final newline as `\xNN`: C0, DEL, the C1
/// controls (U+0080..U+009F, two bytes in UTF-8) and U+2028/U+2029, which some viewers
/// break lines at. ESC stays when `ansi`.
fn escape(buf: &[u8], ansi: bool) -> Vec<u8> {
    let (body, newline) = match buf.split_last() {
        Some((b'\n', body)) => (body, true),
        _ => (buf, false),
    };
    let mut out = Vec::with_capacity(buf.len() + 16);
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        let width = match (b, body.get(i + 1), body.get(i + 2)) {
            (0x1b, _, _) if ansi => 0,
            (0..=0x1f | 0x7f, _, _) => 1,
            (0xc2, Some(0x80..=0x9f), _) => 2,
            (0xe2, Some(0x80), Some(0xa8 | 0xa9)) => 3,
            _ => 0,
        };
        if width == 0 {
            out.push(b);
            i += 1;
            continue;
        }
        for byte in &body[i..i + width] {
            out.extend_from_slice(format!("\\x{byte:02X}").as_bytes());
        }
        i += width;
    }
    if newline {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn an_event_stays_on_one_line() {
        assert_eq!(
            escape(b"refused CN=a\nFAKE line\r\t\x00\x7f\n", false),
            b"refused CN=a\\x0AFAKE line\\x0D\\x09\\x00\\x7F\n"
        );
        assert_eq!(
            escape(b"no newline at the end", false),
            b"no newline at the end"
        );
        assert_eq!(escape(b"two\n\n", false), b"two\\x0A\n");
        assert_eq!(
            escape("nel\u{85} ls\u{2028} é 日本\n".as_bytes(), false),
            "nel\\xC2\\x85 ls\\xE2\\x80\\xA8 é 日本\n".as_bytes()
        );
        assert_eq!(
            escape(b"cut \xc2", false),
            b"cut \xc2",
            "a cut sequence is left"
        );
    }

    #[test]
    fn colour_codes_survive_only_with_ansi() {
        let coloured = b"\x1b[33m WARN\x1b[0m refused\n";
        assert_eq!(escape(coloured, true), coloured);
        assert_eq!(escape(coloured, false), b"\\x1B[33m WARN\\x1B[0m refused\n");
        assert_eq!(escape(b"\x1b[0m a\nb\n", true), b"\x1b[0m a\\x0Ab\n");
    }

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn the_fmt_layer_writes_through_it() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(OneLine::new(buffer.clone(), false))
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!("TLS handshake refused: subject {}", "CN=x\nFAKE\rline");
            tracing::info!(peer = "a\nb", "second");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with("TLS handshake refused: subject CN=x\\x0AFAKE\\x0Dline"),
            "{text}"
        );
        assert!(lines[1].contains("second"), "{text}");
    }

    #[test]
    fn another_crates_warning_names_the_connection_it_happened_in() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(OneLine::new(buffer.clone(), false))
            .with_ansi(false)
            .event_format(Lines::default())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("connection", client = "127.0.0.1:50514");
            let _inside = span.enter();
            tracing::warn!(target: "rustls::server::hs", "Refusing renegotiation");
            tracing::info!("request refused: client=127.0.0.1:50514 check=x");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with(" WARN client=\"127.0.0.1:50514\": Refusing renegotiation"),
            "{text}"
        );
        assert!(
            lines[1].ends_with(" INFO request refused: client=127.0.0.1:50514 check=x"),
            "{text}"
        );
    }
}

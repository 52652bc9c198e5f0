//! The TLS record layer: 5-byte header (type, legacy version, length) and a fragment.
//!
//! Framing is the one thing that must be right before anything else can be shown, and a
//! TCP stream hands us records cut anywhere, so [`parse_record`] says how many more bytes it
//! needs ([`ParseError::Incomplete`]) distinctly from bytes that cannot be TLS at all
//! ([`ParseError::Malformed`]); the [`Dissector`](crate::Dissector) waits on the first and
//! gives up on the direction on the second.

/// Why bytes could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input stops early; at least `needed` more bytes are required.
    #[error("incomplete: at least {needed} more bytes needed")]
    Incomplete {
        /// How many more bytes are needed, at least (never 0).
        needed: usize,
    },
    /// The bytes cannot be what they claim to be.
    #[error("malformed: {0}")]
    Malformed(String),
}

/// One TLS record, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Content type byte: 20 change_cipher_spec, 21 alert, 22 handshake, 23 application_data.
    pub content_type: u8,
    /// Legacy record version, e.g. 0x0303 (TLS 1.3 records say 1.2 here too).
    pub version: u16,
    /// The 5-byte header as sent; TLS 1.3 and TLS 1.2 AEADs authenticate it.
    pub header: [u8; 5],
    /// The fragment (plaintext or ciphertext), `header` length bytes long.
    pub fragment: &'a [u8],
}

/// The length of a record header.
pub const HEADER_LEN: usize = 5;

/// The largest fragment RFC 5246 allows (2^14 plus 2048 bytes of expansion); anything
/// longer means we are not looking at TLS, or lost sync with the stream.
pub const MAX_FRAGMENT_LEN: usize = (1 << 14) + 2048;

/// Parses one record from the front of `input`; returns it and the bytes consumed.
pub fn parse_record(input: &[u8]) -> Result<(Record<'_>, usize), ParseError> {
    let Some(header) = input.first_chunk::<HEADER_LEN>() else {
        return Err(ParseError::Incomplete {
            needed: HEADER_LEN - input.len(),
        });
    };
    let [content_type, major, minor, len_hi, len_lo] = *header;
    if content_type & 0x80 != 0 {
        return Err(ParseError::Malformed(
            "an SSL 2.0 record header (SSLv2-compatible ClientHello), not dissected".into(),
        ));
    }
    if !(20..=24).contains(&content_type) {
        // The usual cause: one side speaks plaintext (an HTTP server on a TLS port).
        if header.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            let text = String::from_utf8_lossy(input.get(..input.len().min(16)).unwrap_or(&[]));
            return Err(ParseError::Malformed(format!(
                "not TLS: the bytes are plain text ({text:?}...), e.g. HTTP without TLS"
            )));
        }
        return Err(ParseError::Malformed(format!(
            "content type {content_type} is not a TLS record type (20 to 24): not TLS, or out \
             of sync with the stream"
        )));
    }
    if major != 3 {
        return Err(ParseError::Malformed(format!(
            "record version {major}.{minor} is not 3.x: not TLS, or out of sync with the stream"
        )));
    }
    let length = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    if length > MAX_FRAGMENT_LEN {
        return Err(ParseError::Malformed(format!(
            "record length {length} exceeds the TLS maximum of {MAX_FRAGMENT_LEN}"
        )));
    }
    let total = HEADER_LEN + length;
    let Some(fragment) = input.get(HEADER_LEN..total) else {
        return Err(ParseError::Incomplete {
            needed: total - input.len(),
        });
    };
    let record = Record {
        content_type,
        version: u16::from_be_bytes([major, minor]),
        header: *header,
        fragment,
    };
    Ok((record, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_records() {
        let bytes = [22, 3, 1, 0, 2, 0xaa, 0xbb, 23];
        let (record, used) = parse_record(&bytes).expect("a record");
        assert_eq!(used, 7);
        assert_eq!(record.content_type, 22);
        assert_eq!(record.version, 0x0301);
        assert_eq!(record.fragment, &[0xaa, 0xbb]);
        assert_eq!(
            parse_record(&bytes[..3]),
            Err(ParseError::Incomplete { needed: 2 })
        );
        assert_eq!(
            parse_record(&bytes[..6]),
            Err(ParseError::Incomplete { needed: 1 })
        );
        assert!(matches!(
            parse_record(b"GET / HTTP/1.1"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_record(&[23, 3, 3, 0xff, 0xff]),
            Err(ParseError::Malformed(_))
        ));
    }
}

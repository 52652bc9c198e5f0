//! The few DER steps the keystore and PKCS#7 code needs, on top of asn1-rs (which
//! x509-parser already brings): take the next element, check what it is, and write one.
//!
//! The structures involved (EncryptedPrivateKeyInfo, a certs-only SignedData) are three or
//! four levels deep, so walking them element by element is shorter and easier to audit than
//! declaring them as types. Every step returns an error naming the input, never panics:
//! these bytes come from files users were sent.

use x509_parser::asn1_rs::{Any, Class, FromBer, FromDer, Tag};

use crate::error::{Error, Result};

/// One element read from the front of a buffer.
#[derive(Debug)]
pub(crate) struct Element<'a> {
    /// Its header and content.
    pub(crate) any: Any<'a>,
    /// The whole element as it was encoded (header and content).
    pub(crate) raw: &'a [u8],
}

impl Element<'_> {
    /// True for a universal tag `tag`.
    pub(crate) fn is(&self, tag: Tag) -> bool {
        self.any.header.class() == Class::Universal && self.any.header.tag() == tag
    }

    /// True for a context-specific `[n]`.
    pub(crate) fn is_context(&self, n: u32) -> bool {
        self.any.header.class() == Class::ContextSpecific && self.any.header.tag() == Tag(n)
    }
}

/// Take the next element off `input`. `ber` also accepts BER's indefinite lengths, which
/// some PKCS#7 writers use; without it only DER is accepted.
pub(crate) fn next<'a>(input: &mut &'a [u8], ber: bool, what: &str) -> Result<Element<'a>> {
    let parsed = if ber {
        Any::from_ber(input)
    } else {
        Any::from_der(input)
    };
    let (rest, any) = parsed.map_err(|e| Error::malformed(what, format!("bad DER: {e}")))?;
    let used = input.len() - rest.len();
    let raw = &input[..used];
    *input = rest;
    Ok(Element { any, raw })
}

/// Take the next element off `input`, which must carry the universal tag `tag`.
pub(crate) fn expect<'a>(
    input: &mut &'a [u8],
    tag: Tag,
    ber: bool,
    what: &str,
) -> Result<Element<'a>> {
    let element = next(input, ber, what)?;
    if !element.is(tag) {
        return Err(Error::malformed(
            what,
            format!(
                "expected {tag} but found {} {}",
                element.any.header.class(),
                element.any.header.tag()
            ),
        ));
    }
    Ok(element)
}

/// Encode one element with a definite length: `tag`, length, `content`.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        // Fits the short form: one byte below 0x80.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        // At most size_of::<usize>() length bytes, far below 0x7f.
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_short_and_long_read_back() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let encoded = tlv(0x04, &content);
            let mut input = &encoded[..];
            let e = expect(&mut input, Tag::OctetString, false, "t").unwrap();
            assert_eq!(e.any.data, &content[..], "{len}");
            assert_eq!(e.raw, &encoded[..]);
            assert!(input.is_empty());
        }
    }

    #[test]
    fn the_wrong_tag_and_truncation_are_errors() {
        let encoded = tlv(0x30, &[1, 2, 3]);
        let err = expect(&mut &encoded[..], Tag::Set, false, "x.der").unwrap_err();
        assert!(err.to_string().starts_with("x.der: expected"), "{err}");
        let err = next(&mut &encoded[..3], false, "x.der").unwrap_err();
        assert!(err.to_string().contains("bad DER"), "{err}");
        // Indefinite length: BER only.
        let indefinite = [0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00];
        assert!(next(&mut &indefinite[..], false, "x").is_err());
        let e = next(&mut &indefinite[..], true, "x").unwrap();
        assert_eq!(e.any.data, [0x02, 0x01, 0x05]);
        assert_eq!(e.raw, &indefinite[..]);
    }
}

//! Distinguished names as text that no certificate can forge.
//!
//! Two printers, both escaping what RFC 4514 / RFC 2253 say must be escaped, so that a
//! value such as `Ops, OU=Payments, CN=carol` in a single O attribute can never print the
//! same as the three attributes it imitates, and no control character reaches a header or
//! a log line:
//!
//! ```text
//!   X509Name ─┬─ display          "CN=carol, OU=Payments, O=Ops"   our headers, logs, XFCC
//!             │                   (x509-parser's order, `, ` and names; values escaped)
//!             └─ openssl_rfc2253  "O=Ops,OU=Payments,CN=carol"     nginx's $ssl_client_s_dn
//!                                 (OpenSSL's X509_NAME_print_ex(XN_FLAG_RFC2253), byte for byte)
//! ```
//!
//! [`display`] keeps what x509-parser's `Display` printed for ordinary names, byte for byte
//! (the RDNs in certificate order, `, ` between them, ` + ` inside a multi-valued RDN,
//! x509-parser's names: `CN`, `O`, `OU`, `C`, `ST`, `L`, `DC`, `Email`, `serialNumber`,
//! `OID(1.2.3)` for unknown types), so upstreams that parse our identity headers keep
//! working. Only values change, and only where they hold a character that needs escaping:
//!
//! - `,` `+` `"` `\` `<` `>` `;` get a backslash; so do a leading `#` or space and a trailing
//!   space (RFC 4514 section 2.4);
//! - `=` is left alone: RFC 4514 allows but does not require escaping it, OpenSSL does not,
//!   and with `,` and `+` escaped it cannot start another attribute;
//! - control characters (C0, DEL, C1) and the Unicode line, paragraph and bidirectional
//!   override characters become `\XX` per UTF-8 byte, so a value stays on one line and
//!   reads in order;
//! - a value that is not a string (or, unlike before, an unknown-type one that x509-parser
//!   hex-dumped) is `#` and the hex of its DER encoding, which a string value cannot
//!   imitate (its own leading `#` is escaped); a UniversalString is now decoded as text;
//!   bytes that are not UTF-8 in a UTF-8 string become `\XX` (x509-parser printed a
//!   placeholder for the whole name).
//!
//! [`openssl_rfc2253`] follows OpenSSL's crypto/asn1/a_strex.c (`do_name_ex`,
//! `do_print_ex`, `do_buf`, `do_esc_char`) with `XN_FLAG_RFC2253`: RDNs last to first,
//! `,` between RDNs and `+` inside one, OpenSSL's short names, values escaped with
//! ESC_2253, ESC_CTRL and ESC_MSB (every byte of the UTF-8 form that is >= 0x80 prints as
//! `\XX`), and unknown attribute types or non-string values dumped as `#` + hex DER.

use std::fmt::Write as _;

use x509_parser::der_parser::asn1_rs::{Any, Class, Oid, Tag};
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Our text form of a DN: x509-parser's layout and names, values escaped per RFC 4514.
/// See the module documentation for the exact rules.
pub fn display(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    for (i, rdn) in name.iter_rdn().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push_str(" + ");
            }
            match oid2abbrev(attr.attr_type(), oid_registry()) {
                Ok(abbrev) => out.push_str(abbrev),
                Err(_) => {
                    let _ = write!(out, "{:?}", attr.attr_type());
                }
            }
            out.push('=');
            display_value(&mut out, attr.attr_value());
        }
    }
    out
}

/// A DN exactly as OpenSSL's `X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253)` prints
/// it, which is what nginx puts in `$ssl_client_s_dn` and `$ssl_client_i_dn`. `None` where
/// OpenSSL fails to print the name (a BMPString or UniversalString whose length is not a
/// whole number of characters; OpenSSL does not even parse such a certificate).
pub fn openssl_rfc2253(name: &X509Name<'_>) -> Option<String> {
    let entries: Vec<(usize, &AttributeTypeAndValue<'_>)> = name
        .iter_rdn()
        .enumerate()
        .flat_map(|(set, rdn)| rdn.iter().map(move |attr| (set, attr)))
        .collect();
    let mut out = String::new();
    let mut previous = None;
    for (set, attr) in entries.into_iter().rev() {
        if let Some(previous) = previous {
            out.push(if previous == set { '+' } else { ',' });
        }
        previous = Some(set);
        match openssl_short_name(attr.attr_type()) {
            Some(short) => {
                out.push_str(short);
                out.push('=');
                openssl_value(&mut out, attr.attr_value())?;
            }
            // XN_FLAG_DUMP_UNKNOWN_FIELDS: an unknown type is dotted, its value dumped.
            None => {
                out.push_str(&attr.attr_type().to_id_string());
                out.push('=');
                dump(&mut out, attr.attr_value());
            }
        }
    }
    Some(out)
}

/// Escape one attribute value the way [`display`] does.
pub fn escape_value(value: &str) -> String {
    let mut out = String::new();
    escape(&mut out, &value.chars().map(Ok).collect::<Vec<_>>());
    out
}

fn display_value(out: &mut String, value: &Any<'_>) {
    let universal = value.header.class() == Class::Universal && value.header.is_primitive();
    let data = value.data;
    let pieces: Vec<Result<char, u8>> = match value.header.tag() {
        _ if !universal => return dump(out, value),
        Tag::NumericString
        | Tag::VisibleString
        | Tag::PrintableString
        | Tag::GeneralString
        | Tag::ObjectDescriptor
        | Tag::GraphicString
        | Tag::T61String
        | Tag::VideotexString
        | Tag::Utf8String
        | Tag::Ia5String => {
            let mut pieces = Vec::with_capacity(data.len());
            for chunk in data.utf8_chunks() {
                pieces.extend(chunk.valid().chars().map(Ok));
                pieces.extend(chunk.invalid().iter().map(|b| Err(*b)));
            }
            pieces
        }
        Tag::BmpString if data.len().is_multiple_of(2) => {
            let units = data
                .chunks_exact(2)
                .map(|u| u16::from_be_bytes([u[0], u[1]]));
            char::decode_utf16(units)
                .flat_map(|c| match c {
                    Ok(c) => vec![Ok(c)],
                    Err(e) => e.unpaired_surrogate().to_be_bytes().map(Err).to_vec(),
                })
                .collect()
        }
        Tag::UniversalString if data.len().is_multiple_of(4) => data
            .chunks_exact(4)
            .flat_map(|c| {
                let code = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                match char::from_u32(code) {
                    Some(c) => vec![Ok(c)],
                    None => c.iter().map(|b| Err(*b)).collect(),
                }
            })
            .collect(),
        _ => return dump(out, value),
    };
    escape(out, &pieces);
}

/// RFC 4514 escaping of a value: characters, or bytes that were not UTF-8 (as `\XX`).
fn escape(out: &mut String, pieces: &[Result<char, u8>]) {
    let last = pieces.len().saturating_sub(1);
    for (i, piece) in pieces.iter().enumerate() {
        match *piece {
            Ok(c @ (',' | '+' | '"' | '\\' | '<' | '>' | ';')) => {
                out.push('\\');
                out.push(c);
            }
            Ok(c @ ('#' | ' ')) if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            Ok(' ') if i == last => out.push_str("\\ "),
            Ok(c) if breaks_text(c) => {
                let mut utf8 = [0; 4];
                for b in c.encode_utf8(&mut utf8).bytes() {
                    let _ = write!(out, "\\{b:02X}");
                }
            }
            Ok(c) => out.push(c),
            Err(b) => {
                let _ = write!(out, "\\{b:02X}");
            }
        }
    }
}

/// Characters that would break a line or reorder what a reader sees.
fn breaks_text(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `do_print_ex` with `ASN1_STRFLGS_RFC2253` for a known attribute type.
fn openssl_value(out: &mut String, value: &Any<'_>) -> Option<()> {
    let data = value.data;
    // a_strex.c's tag2nbyte: 0 is UTF-8, N is N bytes per character, None is dumped.
    let width = if value.header.class() == Class::Universal && value.header.is_primitive() {
        match value.header.tag() {
            Tag::Utf8String => Some(0),
            Tag::NumericString
            | Tag::PrintableString
            | Tag::T61String
            | Tag::Ia5String
            | Tag::UtcTime
            | Tag::GeneralizedTime
            | Tag::VisibleString => Some(1),
            Tag::UniversalString => Some(4),
            Tag::BmpString => Some(2),
            _ => None,
        }
    } else {
        None
    };
    let Some(width) = width else {
        dump(out, value);
        return Some(());
    };
    if width == 0 {
        // UTF8_CONVERT of a UTF8String: its bytes go out one by one, unchecked.
        let last = data.len().saturating_sub(1);
        for (i, b) in data.iter().enumerate() {
            openssl_escape_byte(out, *b, i == 0, i == last);
        }
        return Some(());
    }
    if !data.len().is_multiple_of(width) {
        return None;
    }
    let count = data.len() / width;
    for (i, unit) in data.chunks_exact(width).enumerate() {
        let code = unit.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        // UTF8_putc refuses surrogates and code points past U+10FFFF; do_buf then writes
        // nothing for that character.
        let Some(c) = char::from_u32(code) else {
            continue;
        };
        let mut utf8 = [0; 4];
        // do_buf: the last character's flag replaces the first's (a one-character value
        // is "last", so a lone `#` is not escaped).
        let (first, last) = (i == 0 && i + 1 != count, i + 1 == count);
        for b in c.encode_utf8(&mut utf8).bytes() {
            openssl_escape_byte(out, b, first, last);
        }
    }
    Some(())
}

/// `do_esc_char` with ESC_2253 | ESC_CTRL | ESC_MSB, for one byte of the UTF-8 form.
fn openssl_escape_byte(out: &mut String, b: u8, first: bool, last: bool) {
    // As in do_buf, the last-character flag replaces the first-character one.
    let first = first && !last;
    match b {
        0x80.. | 0..=0x1f | 0x7f => {
            let _ = write!(out, "\\{b:02X}");
        }
        b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' => {
            out.push('\\');
            out.push(char::from(b));
        }
        b' ' if first || last => out.push_str("\\ "),
        b'#' if first => out.push_str("\\#"),
        _ => out.push(char::from(b)),
    }
}

/// `#` and the upper-case hex of the value's DER encoding (`do_dump` with DUMP_DER).
fn dump(out: &mut String, value: &Any<'_>) {
    out.push('#');
    for b in der(value) {
        let _ = write!(out, "{b:02X}");
    }
}

/// The value's DER encoding: identifier octets, definite length, contents.
fn der(value: &Any<'_>) -> Vec<u8> {
    let header = &value.header;
    let mut der = Vec::with_capacity(value.data.len() + 8);
    let class = (header.class() as u8) << 6;
    let constructed = if header.is_constructed() { 0x20 } else { 0 };
    let tag = header.tag().0;
    if tag < 31 {
        // Checked just above: fits in the low five bits.
        der.push(class | constructed | tag as u8);
    } else {
        der.push(class | constructed | 0x1f);
        let mut groups = Vec::new();
        let mut rest = tag;
        loop {
            groups.push((rest & 0x7f) as u8);
            rest >>= 7;
            if rest == 0 {
                break;
            }
        }
        let count = groups.len();
        for (i, group) in groups.into_iter().rev().enumerate() {
            der.push(if i + 1 < count { group | 0x80 } else { group });
        }
    }
    let len = value.data.len();
    if len < 0x80 {
        // Checked: below 128.
        der.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        der.push(0x80 | (bytes.len() - skip) as u8);
        der.extend_from_slice(&bytes[skip..]);
    }
    der.extend_from_slice(value.data);
    der
}

/// OpenSSL's short name (`OBJ_nid2sn`) of the attribute types a DN carries; `None` for
/// the others, which OpenSSL prints as dotted numbers.
fn openssl_short_name(oid: &Oid<'_>) -> Option<&'static str> {
    let arcs: Vec<u64> = oid.iter()?.collect();
    OPENSSL_SHORT_NAMES
        .iter()
        .find(|(known, _)| *known == arcs.as_slice())
        .map(|(_, name)| *name)
}

/// OpenSSL 3.0's objects.txt entries for attribute types: X.520 (2.5.4.*), PKCS #9
/// (1.2.840.113549.1.9.*), the pilot attributes (0.9.2342.19200300.100.1.*: DC, UID,
/// mail...), EV jurisdiction, RFC 3739 personal data and the Russian registration numbers.
/// Other types OpenSSL knows (algorithm and extension OIDs) do not appear in names.
const OPENSSL_SHORT_NAMES: &[(&[u64], &str)] = &[
    (&[0, 9, 2342, 19200300, 100, 1, 1], "UID"),
    (&[0, 9, 2342, 19200300, 100, 1, 2], "textEncodedORAddress"),
    (&[0, 9, 2342, 19200300, 100, 1, 3], "mail"),
    (&[0, 9, 2342, 19200300, 100, 1, 4], "info"),
    (&[0, 9, 2342, 19200300, 100, 1, 5], "favouriteDrink"),
    (&[0, 9, 2342, 19200300, 100, 1, 6], "roomNumber"),
    (&[0, 9, 2342, 19200300, 100, 1, 7], "photo"),
    (&[0, 9, 2342, 19200300, 100, 1, 8], "userClass"),
    (&[0, 9, 2342, 19200300, 100, 1, 9], "host"),
    (&[0, 9, 2342, 19200300, 100, 1, 10], "manager"),
    (&[0, 9, 2342, 19200300, 100, 1, 11], "documentIdentifier"),
    (&[0, 9, 2342, 19200300, 100, 1, 12], "documentTitle"),
    (&[0, 9, 2342, 19200300, 100, 1, 13], "documentVersion"),
    (&[0, 9, 2342, 19200300, 100, 1, 14], "documentAuthor"),
    (&[0, 9, 2342, 19200300, 100, 1, 15], "documentLocation"),
    (&[0, 9, 2342, 19200300, 100, 1, 20], "homeTelephoneNumber"),
    (&[0, 9, 2342, 19200300, 100, 1, 21], "secretary"),
    (&[0, 9, 2342, 19200300, 100, 1, 22], "otherMailbox"),
    (&[0, 9, 2342, 19200300, 100, 1, 23], "lastModifiedTime"),
    (&[0, 9, 2342, 19200300, 100, 1, 24], "lastModifiedBy"),
    (&[0, 9, 2342, 19200300, 100, 1, 25], "DC"),
    (&[0, 9, 2342, 19200300, 100, 1, 26], "aRecord"),
    (&[0, 9, 2342, 19200300, 100, 1, 27], "pilotAttributeType27"),
    (&[0, 9, 2342, 19200300, 100, 1, 28], "mXRecord"),
    (&[0, 9, 2342, 19200300, 100, 1, 29], "nSRecord"),
    (&[0, 9, 2342, 19200300, 100, 1, 30], "sOARecord"),
    (&[0, 9, 2342, 19200300, 100, 1, 31], "cNAMERecord"),
    (&[0, 9, 2342, 19200300, 100, 1, 37], "associatedDomain"),
    (&[0, 9, 2342, 19200300, 100, 1, 38], "associatedName"),
    (&[0, 9, 2342, 19200300, 100, 1, 39], "homePostalAddress"),
    (&[0, 9, 2342, 19200300, 100, 1, 40], "personalTitle"),
    (&[0, 9, 2342, 19200300, 100, 1, 41], "mobileTelephoneNumber"),
    (&[0, 9, 2342, 19200300, 100, 1, 42], "pagerTelephoneNumber"),
    (&[0, 9, 2342, 19200300, 100, 1, 43], "friendlyCountryName"),
    (&[0, 9, 2342, 19200300, 100, 1, 44], "uid"),
    (&[0, 9, 2342, 19200300, 100, 1, 45], "organizationalStatus"),
    (&[0, 9, 2342, 19200300, 100, 1, 46], "janetMailbox"),
    (&[0, 9, 2342, 19200300, 100, 1, 47], "mailPreferenceOption"),
    (&[0, 9, 2342, 19200300, 100, 1, 48], "buildingName"),
    (&[0, 9, 2342, 19200300, 100, 1, 49], "dSAQuality"),
    (&[0, 9, 2342, 19200300, 100, 1, 50], "singleLevelQuality"),
    (&[0, 9, 2342, 19200300, 100, 1, 51], "subtreeMinimumQuality"),
    (&[0, 9, 2342, 19200300, 100, 1, 52], "subtreeMaximumQuality"),
    (&[0, 9, 2342, 19200300, 100, 1, 53], "personalSignature"),
    (&[0, 9, 2342, 19200300, 100, 1, 54], "dITRedirect"),
    (&[0, 9, 2342, 19200300, 100, 1, 55], "audio"),
    (&[0, 9, 2342, 19200300, 100, 1, 56], "documentPublisher"),
    (&[1, 2, 643, 3, 131, 1, 1], "INN"),
    (&[1, 2, 643, 100, 1], "OGRN"),
    (&[1, 2, 643, 100, 3], "SNILS"),
    (&[1, 2, 643, 100, 5], "OGRNIP"),
    (&[1, 2, 643, 100, 111], "subjectSignTool"),
    (&[1, 2, 643, 100, 112], "issuerSignTool"),
    (&[1, 2, 643, 100, 113], "classSignTool"),
    (&[1, 2, 840, 113549, 1, 9, 1], "emailAddress"),
    (&[1, 2, 840, 113549, 1, 9, 2], "unstructuredName"),
    (&[1, 2, 840, 113549, 1, 9, 3], "contentType"),
    (&[1, 2, 840, 113549, 1, 9, 4], "messageDigest"),
    (&[1, 2, 840, 113549, 1, 9, 5], "signingTime"),
    (&[1, 2, 840, 113549, 1, 9, 6], "countersignature"),
    (&[1, 2, 840, 113549, 1, 9, 7], "challengePassword"),
    (&[1, 2, 840, 113549, 1, 9, 8], "unstructuredAddress"),
    (
        &[1, 2, 840, 113549, 1, 9, 9],
        "extendedCertificateAttributes",
    ),
    (&[1, 2, 840, 113549, 1, 9, 14], "extReq"),
    (&[1, 2, 840, 113549, 1, 9, 15], "SMIME-CAPS"),
    (&[1, 2, 840, 113549, 1, 9, 16], "SMIME"),
    (&[1, 2, 840, 113549, 1, 9, 20], "friendlyName"),
    (&[1, 2, 840, 113549, 1, 9, 21], "localKeyID"),
    (&[1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 1], "jurisdictionL"),
    (&[1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 2], "jurisdictionST"),
    (&[1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3], "jurisdictionC"),
    (&[1, 3, 6, 1, 5, 5, 7, 9, 1], "id-pda-dateOfBirth"),
    (&[1, 3, 6, 1, 5, 5, 7, 9, 2], "id-pda-placeOfBirth"),
    (&[1, 3, 6, 1, 5, 5, 7, 9, 3], "id-pda-gender"),
    (&[1, 3, 6, 1, 5, 5, 7, 9, 4], "id-pda-countryOfCitizenship"),
    (&[1, 3, 6, 1, 5, 5, 7, 9, 5], "id-pda-countryOfResidence"),
    (&[2, 5, 4, 3], "CN"),
    (&[2, 5, 4, 4], "SN"),
    (&[2, 5, 4, 5], "serialNumber"),
    (&[2, 5, 4, 6], "C"),
    (&[2, 5, 4, 7], "L"),
    (&[2, 5, 4, 8], "ST"),
    (&[2, 5, 4, 9], "street"),
    (&[2, 5, 4, 10], "O"),
    (&[2, 5, 4, 11], "OU"),
    (&[2, 5, 4, 12], "title"),
    (&[2, 5, 4, 13], "description"),
    (&[2, 5, 4, 14], "searchGuide"),
    (&[2, 5, 4, 15], "businessCategory"),
    (&[2, 5, 4, 16], "postalAddress"),
    (&[2, 5, 4, 17], "postalCode"),
    (&[2, 5, 4, 18], "postOfficeBox"),
    (&[2, 5, 4, 19], "physicalDeliveryOfficeName"),
    (&[2, 5, 4, 20], "telephoneNumber"),
    (&[2, 5, 4, 21], "telexNumber"),
    (&[2, 5, 4, 22], "teletexTerminalIdentifier"),
    (&[2, 5, 4, 23], "facsimileTelephoneNumber"),
    (&[2, 5, 4, 24], "x121Address"),
    (&[2, 5, 4, 25], "internationaliSDNNumber"),
    (&[2, 5, 4, 26], "registeredAddress"),
    (&[2, 5, 4, 27], "destinationIndicator"),
    (&[2, 5, 4, 28], "preferredDeliveryMethod"),
    (&[2, 5, 4, 29], "presentationAddress"),
    (&[2, 5, 4, 30], "supportedApplicationContext"),
    (&[2, 5, 4, 31], "member"),
    (&[2, 5, 4, 32], "owner"),
    (&[2, 5, 4, 33], "roleOccupant"),
    (&[2, 5, 4, 34], "seeAlso"),
    (&[2, 5, 4, 35], "userPassword"),
    (&[2, 5, 4, 36], "userCertificate"),
    (&[2, 5, 4, 37], "cACertificate"),
    (&[2, 5, 4, 38], "authorityRevocationList"),
    (&[2, 5, 4, 39], "certificateRevocationList"),
    (&[2, 5, 4, 40], "crossCertificatePair"),
    (&[2, 5, 4, 41], "name"),
    (&[2, 5, 4, 42], "GN"),
    (&[2, 5, 4, 43], "initials"),
    (&[2, 5, 4, 44], "generationQualifier"),
    (&[2, 5, 4, 45], "x500UniqueIdentifier"),
    (&[2, 5, 4, 46], "dnQualifier"),
    (&[2, 5, 4, 47], "enhancedSearchGuide"),
    (&[2, 5, 4, 48], "protocolInformation"),
    (&[2, 5, 4, 49], "distinguishedName"),
    (&[2, 5, 4, 50], "uniqueMember"),
    (&[2, 5, 4, 51], "houseIdentifier"),
    (&[2, 5, 4, 52], "supportedAlgorithms"),
    (&[2, 5, 4, 53], "deltaRevocationList"),
    (&[2, 5, 4, 54], "dmdName"),
    (&[2, 5, 4, 65], "pseudonym"),
    (&[2, 5, 4, 72], "role"),
    (&[2, 5, 4, 97], "organizationIdentifier"),
    (&[2, 5, 4, 98], "c3"),
    (&[2, 5, 4, 99], "n3"),
    (&[2, 5, 4, 100], "dnsName"),
];

#[cfg(test)]
mod tests {
    use x509_parser::prelude::FromDer;

    use super::*;

    const CN: &[u8] = &[0x55, 4, 3];
    const O: &[u8] = &[0x55, 4, 10];
    const OU: &[u8] = &[0x55, 4, 11];
    const C: &[u8] = &[0x55, 4, 6];
    const SERIAL: &[u8] = &[0x55, 4, 5];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 9, 1];
    const DC: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 1, 25];
    /// 1.3.6.1.4.1.55555.7, which nobody knows.
    const UNKNOWN: &[u8] = &[0x2b, 6, 1, 4, 1, 0x83, 0xb2, 0x03, 7];
    const UTF8: u8 = 0x0c;
    const PRINTABLE: u8 = 0x13;
    const IA5: u8 = 0x16;
    const BMP: u8 = 0x1e;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 128, "short form only");
        let mut out = vec![tag, content.len() as u8];
        out.extend_from_slice(content);
        out
    }

    /// One attribute: type OID contents, string tag, value bytes.
    type Attribute<'a> = (&'a [u8], u8, &'a [u8]);

    /// The DER of a Name made of these RDNs.
    fn name(rdns: &[&[Attribute<'_>]]) -> Vec<u8> {
        let mut seq = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, tag, value) in *rdn {
                set.extend(tlv(0x30, &[tlv(6, oid), tlv(*tag, value)].concat()));
            }
            seq.extend(tlv(0x31, &set));
        }
        tlv(0x30, &seq)
    }

    fn both(der: &[u8]) -> (String, String) {
        let (_, parsed) = X509Name::from_der(der).unwrap();
        (display(&parsed), openssl_rfc2253(&parsed).unwrap())
    }

    #[test]
    fn ordinary_names_print_as_x509_parser_did() {
        let names = [
            name(&[&[(CN, UTF8, b"alice")]]),
            name(&[
                &[(C, PRINTABLE, b"FR")],
                &[(O, UTF8, b"Acme")],
                &[(OU, UTF8, b"Payments")],
                &[(CN, UTF8, "Zoë 日本".as_bytes())],
            ]),
            name(&[
                &[(DC, IA5, b"com")],
                &[(DC, IA5, b"example")],
                &[(EMAIL, IA5, b"a@example.com")],
                &[(SERIAL, PRINTABLE, b"0042")],
                &[(UNKNOWN, UTF8, b"x")],
            ]),
            name(&[
                &[(O, UTF8, b"Acme")],
                &[(OU, UTF8, b"a"), (CN, UTF8, b"b=c")],
            ]),
            name(&[&[(CN, BMP, &[0, b'b', 0, b'o', 0, b'b'])]]),
        ];
        for der in names {
            let (_, parsed) = X509Name::from_der(&der).unwrap();
            assert_eq!(display(&parsed), parsed.to_string());
        }
        let (ours, _) = both(&name(&[
            &[(DC, IA5, b"com")],
            &[(EMAIL, IA5, b"a@example.com")],
            &[(UNKNOWN, UTF8, b"x")],
            &[(OU, UTF8, b"a"), (CN, UTF8, b"b")],
        ]));
        assert_eq!(
            ours,
            "DC=com, Email=a@example.com, OID(1.3.6.1.4.1.55555.7)=x, OU=a + CN=b"
        );
    }

    #[test]
    fn a_value_cannot_imitate_other_attributes() {
        let forged = name(&[&[(O, UTF8, b"Ops, OU=Payments, CN=carol")]]);
        let real = name(&[
            &[(O, UTF8, b"Ops")],
            &[(OU, UTF8, b"Payments")],
            &[(CN, UTF8, b"carol")],
        ]);
        let (ours, nginx) = both(&forged);
        assert_eq!(ours, r"O=Ops\, OU=Payments\, CN=carol");
        assert_eq!(nginx, r"O=Ops\, OU=Payments\, CN=carol");
        assert_eq!(
            both(&real),
            (
                "O=Ops, OU=Payments, CN=carol".to_owned(),
                "CN=carol,OU=Payments,O=Ops".to_owned()
            )
        );
        let (ours, nginx) = both(&name(&[&[(CN, UTF8, b"a + OU=b")]]));
        assert_eq!(ours, r"CN=a \+ OU=b");
        assert_eq!(nginx, r"CN=a \+ OU=b");
    }

    #[test]
    fn specials_spaces_and_hashes_are_escaped() {
        let (ours, nginx) = both(&name(&[
            &[(O, UTF8, br#"a,b+c"d\e<f>g;h=i"#)],
            &[(OU, UTF8, b"#x")],
            &[(CN, UTF8, b" lead trail ")],
        ]));
        assert_eq!(
            ours,
            r#"O=a\,b\+c\"d\\e\<f\>g\;h=i, OU=\#x, CN=\ lead trail\ "#
        );
        assert_eq!(
            nginx,
            r#"CN=\ lead trail\ ,OU=\#x,O=a\,b\+c\"d\\e\<f\>g\;h=i"#
        );
        // OpenSSL's quirk: a one-character value is "last", never "first".
        let (ours, nginx) = both(&name(&[&[(O, UTF8, b"#")], &[(CN, UTF8, b" ")]]));
        assert_eq!(ours, r"O=\#, CN=\ ");
        assert_eq!(nginx, r"CN=\ ,O=#");
    }

    #[test]
    fn control_characters_never_reach_the_text() {
        let (ours, nginx) = both(&name(&[&[(
            CN,
            UTF8,
            "a\nb\r\x00\x1b[2K\x7f\u{85}\u{2028}\u{202e}é".as_bytes(),
        )]]));
        assert_eq!(ours, r"CN=a\0Ab\0D\00\1B[2K\7F\C2\85\E2\80\A8\E2\80\AEé");
        assert_eq!(
            nginx,
            r"CN=a\0Ab\0D\00\1B[2K\7F\C2\85\E2\80\A8\E2\80\AE\C3\A9"
        );
        assert!(escape_value("x\ny").lines().count() == 1);
        assert_eq!(escape_value(" a\tb "), r"\ a\09b\ ");
    }

    #[test]
    fn non_strings_and_unknown_types_are_hex_dumped() {
        // An OCTET STRING value: not a string for anyone.
        let (ours, nginx) = both(&name(&[&[(CN, 0x04, &[0xde, 0xad])]]));
        assert_eq!(ours, "CN=#0402DEAD");
        assert_eq!(nginx, "CN=#0402DEAD");
        let (_, nginx) = both(&name(&[&[(UNKNOWN, UTF8, b"x,y")]]));
        assert_eq!(nginx, "1.3.6.1.4.1.55555.7=#0C03782C79");
    }

    #[test]
    fn broken_strings_print_what_they_hold() {
        let (ours, nginx) = both(&name(&[&[(CN, UTF8, &[b'a', 0xff, b'b'])]]));
        assert_eq!(ours, r"CN=a\FFb");
        assert_eq!(nginx, r"CN=a\FFb");
        let odd = name(&[&[(CN, BMP, &[0, b'a', 0])]]);
        let (_, parsed) = X509Name::from_der(&odd).unwrap();
        assert_eq!(openssl_rfc2253(&parsed), None, "OpenSSL fails too");
        assert_eq!(display(&parsed), "CN=#1E03006100");
    }

    #[test]
    fn der_headers_are_re_encoded() {
        let long = vec![b'x'; 200];
        let value = Any::from_tag_and_data(Tag::Utf8String, &long);
        let der = der(&value);
        assert_eq!(&der[..3], &[0x0c, 0x81, 200]);
        assert_eq!(der.len(), 203);
    }
}

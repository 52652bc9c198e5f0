//! Handshake messages: the 4-byte header (type, 24-bit length) and every body we know,
//! decoded into a tree of named [`Field`]s.
//!
//! The output is for people reading a trace, so values are rendered strings (names as
//! Wireshark prints them, lengths, hex) rather than typed structs; a typed model of every
//! TLS message would be a second rustls. A body that does not parse still frames (the
//! header says how long it is), so the [`Dissector`](crate::Dissector) reports it and moves
//! on to the next message; [`parse_handshake`] reports it as [`ParseError::Malformed`].
//!
//! A few message shapes depend on what was negotiated earlier (TLS 1.3 Certificate has a
//! request context and per-entry extensions, a TLS 1.2 ServerKeyExchange depends on the
//! cipher suite), which [`HandshakeContext`] carries.

use serde::Serialize;
use tls_parser::TlsCipherKx;
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::oid::Oid;
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid_registry, oid2sn};
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;
use x509_parser::x509::X509Name;

use crate::names;
use crate::record::ParseError;

/// A decoded handshake message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandshakeMessage {
    /// Message name: "ClientHello", "ServerHello", "HelloRetryRequest", "Certificate", ...
    pub kind: String,
    /// Body length in bytes (the 4-byte header excluded).
    pub length: usize,
    /// Decoded fields, in wire order.
    pub fields: Vec<Field>,
    /// The body of a ClientHello or ServerHello as it came, for the
    /// [`fingerprint`](crate::fingerprint)s; empty for other messages, whose bodies can be
    /// large (certificates) and are not needed. Not serialised: the fields say it for people.
    #[serde(skip)]
    pub(crate) hello_body: Vec<u8>,
}

/// A named, rendered value with optional children, e.g. `extension server_name: localhost`
/// with a child `host_name: localhost`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// Field name, e.g. "cipher_suites (3)", "extension key_share", "certificate".
    pub name: String,
    /// Rendered value; may be empty when the name says it all.
    pub value: String,
    /// Sub-fields (left out of JSON when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Field>,
}

/// What is known about the connection when a message is parsed, and how much of it to
/// render.
///
/// `Default` knows nothing: TLS 1.2 shapes are assumed, every field is rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeContext {
    /// The version the ServerHello selected (0x0304 for TLS 1.3), once seen.
    pub version: Option<u16>,
    /// The cipher suite the ServerHello selected, once seen.
    pub cipher_suite: Option<u16>,
    /// How much of each message to render.
    pub detail: Detail,
}

/// How much of a handshake message is rendered into [`Field`]s.
///
/// Rendering is most of the cost of reading a capture (a ClientHello names a hundred code
/// points), and the one-line summary reads a handful of fields. `mtls trace` without `-V`
/// asks for [`Detail::Summary`]; what it leaves out is exactly what
/// [`Conversation`](crate::Conversation) never reads, and a test feeds the same captures
/// both ways and requires the same summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detail {
    /// Every field (`mtls get --trace`, `mtls trace -V`, `--json` of messages).
    #[default]
    Full,
    /// Every message framed and its body checked, but of the ClientHello only the version,
    /// cipher suites, server_name, ALPN and supported_versions are rendered, randoms and
    /// session ids are not, and of each certificate only subject, issuer and serial.
    Summary,
}

/// The ClientHello extensions [`Detail::Summary`] renders: server_name, ALPN,
/// supported_versions (the ones [`Conversation`](crate::Conversation) reads).
const SUMMARY_CLIENT_EXTENSIONS: [u16; 3] = [0, 16, 43];

/// The random a HelloRetryRequest carries instead of a real one (RFC 8446 section 4.1.3).
pub const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Parses one handshake message from the front of `input`; returns it and the bytes used.
///
/// [`ParseError::Incomplete`] when the header or body is not all there yet,
/// [`ParseError::Malformed`] when the body does not decode as its type says.
pub fn parse_handshake(
    input: &[u8],
    ctx: &HandshakeContext,
) -> Result<(HandshakeMessage, usize), ParseError> {
    let parsed = parse_framed(input, ctx)?;
    match parsed.error {
        None => Ok((parsed.message, parsed.consumed)),
        Some(reason) => Err(ParseError::Malformed(format!(
            "{}: {reason}",
            parsed.message.kind
        ))),
    }
}

impl Field {
    /// A field without children.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Field {
        Field {
            name: name.into(),
            value: value.into(),
            children: Vec::new(),
        }
    }

    /// A field with children.
    pub fn with_children(
        name: impl Into<String>,
        value: impl Into<String>,
        children: Vec<Field>,
    ) -> Field {
        Field {
            name: name.into(),
            value: value.into(),
            children,
        }
    }

    /// The first field named `name` among the children and their descendants, depth first.
    /// A name matches exactly or with a parenthesised suffix (`cipher_suites` finds
    /// `cipher_suites (3)`).
    pub fn find(&self, name: &str) -> Option<&Field> {
        find_in(&self.children, name)
    }

    /// Whether this field is called `name`, exactly or with a parenthesised suffix.
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name
            || self
                .name
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(" ("))
    }
}

impl HandshakeMessage {
    /// The first field named `name` anywhere in the message, depth first (see
    /// [`Field::find`] for how names match).
    pub fn find(&self, name: &str) -> Option<&Field> {
        find_in(&self.fields, name)
    }

    /// Every field named `name` anywhere in the message, depth first.
    pub fn find_all<'a>(&'a self, name: &str) -> Vec<&'a Field> {
        let mut found = Vec::new();
        collect(&self.fields, name, &mut found);
        found
    }
}

/// A message whose header was complete, with what the dissector needs to follow the
/// connection. `error` is set when the body did not decode; `message` then holds the
/// fields decoded before the error.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) message: HandshakeMessage,
    pub(crate) consumed: usize,
    pub(crate) error: Option<String>,
    pub(crate) meta: Meta,
}

/// Values that drive the dissector's state machine.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    pub(crate) msg_type: u8,
    /// The random of a ClientHello or a (real) ServerHello.
    pub(crate) random: Option<[u8; 32]>,
    pub(crate) cipher_suite: Option<u16>,
    /// ServerHello: supported_versions if present, else legacy_version.
    pub(crate) selected_version: Option<u16>,
    pub(crate) hello_retry: bool,
    /// KeyUpdate: whether the peer was asked to update too.
    pub(crate) key_update_requested: Option<bool>,
}

pub(crate) const CLIENT_HELLO: u8 = 1;
pub(crate) const SERVER_HELLO: u8 = 2;
pub(crate) const FINISHED: u8 = 20;
pub(crate) const KEY_UPDATE: u8 = 24;

/// Frames one message and decodes its body; `Err` only for an incomplete message.
pub(crate) fn parse_framed(input: &[u8], ctx: &HandshakeContext) -> Result<Parsed, ParseError> {
    let Some(&[msg_type, l0, l1, l2]) = input.first_chunk::<4>() else {
        return Err(ParseError::Incomplete {
            needed: 4 - input.len(),
        });
    };
    let length = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
    let total = 4 + length;
    let Some(body) = input.get(4..total) else {
        return Err(ParseError::Incomplete {
            needed: total - input.len(),
        });
    };
    let mut fields = Vec::new();
    let mut meta = Meta {
        msg_type,
        ..Meta::default()
    };
    let result = decode_body(msg_type, body, ctx, &mut fields, &mut meta);
    let kind = if meta.hello_retry {
        "HelloRetryRequest".to_owned()
    } else {
        names::handshake_type(msg_type)
    };
    Ok(Parsed {
        message: HandshakeMessage {
            kind,
            length,
            fields,
            hello_body: match msg_type {
                CLIENT_HELLO | SERVER_HELLO => body.to_vec(),
                _ => Vec::new(),
            },
        },
        consumed: total,
        error: result.err(),
        meta,
    })
}

pub(crate) type Decoded<T> = Result<T, String>;

fn decode_body(
    msg_type: u8,
    body: &[u8],
    ctx: &HandshakeContext,
    fields: &mut Vec<Field>,
    meta: &mut Meta,
) -> Decoded<()> {
    let mut r = Reader::new(body);
    match msg_type {
        CLIENT_HELLO => client_hello(&mut r, ctx.detail, fields, meta)?,
        SERVER_HELLO => server_hello(&mut r, ctx.detail, fields, meta)?,
        4 if ctx.version == Some(TLS13) => new_session_ticket_13(&mut r, fields)?,
        4 => {
            fields.push(Field::new(
                "ticket_lifetime_hint",
                seconds(r.u32("lifetime")?),
            ));
            fields.push(Field::new("ticket", bytes_len(r.vec16("ticket")?)));
        }
        8 => fields.extend(extensions(&mut r, ExtContext::EncryptedExtensions)?),
        11 => certificate(&mut r, ctx, fields)?,
        12 => server_key_exchange(&mut r, ctx, fields)?,
        13 if ctx.version == Some(TLS13) => {
            fields.push(Field::new(
                "certificate_request_context",
                hex_or_empty(r.vec8("ctx")?),
            ));
            fields.extend(extensions(&mut r, ExtContext::CertificateRequest)?);
        }
        13 => certificate_request_12(&mut r, ctx, fields)?,
        15 => {
            if ctx.version.is_none_or(|v| v >= 0x0303) {
                let scheme = r.u16("signature algorithm")?;
                fields.push(Field::new(
                    "signature_algorithm",
                    names::signature_scheme(scheme),
                ));
            }
            fields.push(Field::new("signature", bytes_len(r.vec16("signature")?)));
        }
        16 => client_key_exchange(&mut r, ctx, fields)?,
        FINISHED => {
            let verify_data = r.rest();
            let value = format!("{} ({} bytes)", names::hex(verify_data), verify_data.len());
            fields.push(Field::new("verify_data", value));
        }
        22 => {
            fields.push(Field::new(
                "status_type",
                names::status_type(r.u8("status type")?),
            ));
            fields.push(Field::new("ocsp_response", bytes_len(r.vec24("response")?)));
        }
        KEY_UPDATE => {
            let request = r.u8("request_update")?;
            meta.key_update_requested = Some(request == 1);
            fields.push(Field::new(
                "request_update",
                names::key_update_request(request),
            ));
        }
        25 => {
            let algorithm = r.u16("algorithm")?;
            fields.push(Field::new("algorithm", names::cert_compression(algorithm)));
            fields.push(Field::new(
                "uncompressed_length",
                r.u24("length")?.to_string(),
            ));
            fields.push(Field::new(
                "compressed_certificate_message",
                bytes_len(r.vec24("body")?),
            ));
        }
        254 => fields.push(Field::new("hash", names::hex(r.rest()))),
        // HelloRequest, EndOfEarlyData, ServerHelloDone: empty bodies.
        0 | 5 | 14 => {}
        _ => fields.push(Field::new("body", bytes_len(r.rest()))),
    }
    r.finish()
}

const TLS13: u16 = 0x0304;

fn client_hello(
    r: &mut Reader<'_>,
    detail: Detail,
    fields: &mut Vec<Field>,
    meta: &mut Meta,
) -> Decoded<()> {
    let full = detail == Detail::Full;
    fields.push(Field::new(
        "legacy_version",
        names::version(r.u16("legacy_version")?),
    ));
    let random = r.array32("random")?;
    meta.random = Some(random);
    let session_id = r.vec8("session_id")?;
    if full {
        fields.push(Field::new("random", names::hex(&random)));
        fields.push(Field::new("session_id", hex_or_empty(session_id)));
    }
    let suites = u16_list(r.vec16("cipher_suites")?, "cipher_suites")?;
    fields.push(Field::new(
        format!("cipher_suites ({})", suites.len()),
        join(suites.iter().map(|&s| names::cipher_suite(s))),
    ));
    let methods = r.vec8("compression_methods")?;
    if full {
        fields.push(Field::new(
            format!("compression_methods ({})", methods.len()),
            join(methods.iter().map(|&m| names::compression_method(m))),
        ));
    }
    // Extensions are optional in hellos (SSL 3.0 and some TLS 1.0 clients send none).
    if !r.is_empty() {
        let mut list = Reader::new(r.vec16("extensions")?);
        let raw = raw_extensions(&mut list)?;
        fields.extend(
            raw.iter()
                .filter(|(ext_type, _)| full || SUMMARY_CLIENT_EXTENSIONS.contains(ext_type))
                .map(|&(ext_type, data)| extension(ext_type, data, ExtContext::ClientHello)),
        );
    }
    Ok(())
}

fn server_hello(
    r: &mut Reader<'_>,
    detail: Detail,
    fields: &mut Vec<Field>,
    meta: &mut Meta,
) -> Decoded<()> {
    let legacy_version = r.u16("legacy_version")?;
    fields.push(Field::new("legacy_version", names::version(legacy_version)));
    let random = r.array32("random")?;
    meta.hello_retry = random == HELLO_RETRY_REQUEST_RANDOM;
    let mut random_field = Field::new("random", names::hex(&random));
    if meta.hello_retry {
        random_field.value.push_str(" (HelloRetryRequest)");
    } else {
        meta.random = Some(random);
        // RFC 8446 section 4.1.3: a TLS 1.3 server that negotiated an older version says so.
        match random.last_chunk::<8>() {
            Some(b"DOWNGRD\x01") => random_field.value.push_str(" (downgrade to TLS 1.2)"),
            Some(b"DOWNGRD\x00") => random_field.value.push_str(" (downgrade to TLS 1.1)"),
            _ => {}
        }
    }
    let session_id = r.vec8("session_id")?;
    if detail == Detail::Full {
        fields.push(random_field);
        fields.push(Field::new("session_id", hex_or_empty(session_id)));
    }
    let suite = r.u16("cipher_suite")?;
    meta.cipher_suite = Some(suite);
    fields.push(Field::new("cipher_suite", names::cipher_suite(suite)));
    let method = r.u8("compression_method")?;
    fields.push(Field::new(
        "compression_method",
        names::compression_method(method),
    ));
    meta.selected_version = Some(legacy_version);
    if !r.is_empty() {
        let context = if meta.hello_retry {
            ExtContext::HelloRetryRequest
        } else {
            ExtContext::ServerHello
        };
        let mut list = Reader::new(r.vec16("extensions")?);
        let raw = raw_extensions(&mut list)?;
        for &(ext_type, data) in &raw {
            if ext_type == 43
                && let Some(&[hi, lo]) = data.first_chunk::<2>()
            {
                meta.selected_version = Some(u16::from_be_bytes([hi, lo]));
            }
        }
        fields.extend(raw.iter().map(|&(t, d)| extension(t, d, context)));
    }
    Ok(())
}

fn new_session_ticket_13(r: &mut Reader<'_>, fields: &mut Vec<Field>) -> Decoded<()> {
    fields.push(Field::new(
        "ticket_lifetime",
        seconds(r.u32("ticket_lifetime")?),
    ));
    fields.push(Field::new(
        "ticket_age_add",
        r.u32("ticket_age_add")?.to_string(),
    ));
    fields.push(Field::new(
        "ticket_nonce",
        hex_or_empty(r.vec8("ticket_nonce")?),
    ));
    fields.push(Field::new("ticket", bytes_len(r.vec16("ticket")?)));
    fields.extend(extensions(r, ExtContext::NewSessionTicket)?);
    Ok(())
}

fn certificate(r: &mut Reader<'_>, ctx: &HandshakeContext, fields: &mut Vec<Field>) -> Decoded<()> {
    let tls13 = ctx.version == Some(TLS13);
    if tls13 {
        fields.push(Field::new(
            "certificate_request_context",
            hex_or_empty(r.vec8("ctx")?),
        ));
    }
    let mut list = Reader::new(r.vec24("certificate_list")?);
    let mut certificates = Vec::new();
    while !list.is_empty() {
        let der = list.vec24("certificate")?;
        let mut field = certificate_field(der, ctx.detail);
        if tls13 {
            field
                .children
                .extend(extensions(&mut list, ExtContext::CertificateEntry)?);
        }
        certificates.push(field);
    }
    let count = match certificates.len() {
        0 => "0 certificates (none sent)".to_owned(),
        1 => "1 certificate".to_owned(),
        n => format!("{n} certificates"),
    };
    fields.push(Field::new("certificate_list", count));
    fields.extend(certificates);
    Ok(())
}

fn certificate_request_12(
    r: &mut Reader<'_>,
    ctx: &HandshakeContext,
    fields: &mut Vec<Field>,
) -> Decoded<()> {
    let types = r.vec8("certificate_types")?;
    fields.push(Field::new(
        "certificate_types",
        join(types.iter().map(|&t| names::client_certificate_type(t))),
    ));
    if ctx.version.is_none_or(|v| v >= 0x0303) {
        let schemes = u16_list(r.vec16("signature_algorithms")?, "signature_algorithms")?;
        fields.push(Field::new(
            "signature_algorithms",
            join(schemes.iter().map(|&s| names::signature_scheme(s))),
        ));
    }
    fields.push(distinguished_names(
        "certificate_authorities",
        r.vec16("authorities")?,
    )?);
    Ok(())
}

fn server_key_exchange(
    r: &mut Reader<'_>,
    ctx: &HandshakeContext,
    fields: &mut Vec<Field>,
) -> Decoded<()> {
    let kx = ctx.cipher_suite.and_then(names::key_exchange);
    let ecdhe = match kx {
        Some(TlsCipherKx::Ecdhe) => true,
        Some(TlsCipherKx::Dhe) => false,
        // Without a known suite, guess from the first byte (3 = named_curve).
        None => r.peek_u8() == Some(3),
        Some(_) => {
            fields.push(Field::new("params", bytes_len(r.rest())));
            return Ok(());
        }
    };
    if ecdhe {
        let curve_type = r.u8("curve_type")?;
        fields.push(Field::new("curve_type", names::ec_curve_type(curve_type)));
        if curve_type != 3 {
            fields.push(Field::new("params", bytes_len(r.rest())));
            return Ok(());
        }
        fields.push(Field::new(
            "named_curve",
            names::group(r.u16("named_curve")?),
        ));
        fields.push(Field::new("public_key", bytes_len(r.vec8("public key")?)));
    } else {
        let p = r.vec16("dh_p")?;
        fields.push(Field::new(
            "dh_p",
            format!("{} bytes ({} bits)", p.len(), p.len() * 8),
        ));
        fields.push(Field::new("dh_g", bytes_len(r.vec16("dh_g")?)));
        fields.push(Field::new("dh_Ys", bytes_len(r.vec16("dh_Ys")?)));
    }
    // Anonymous suites send no signature.
    if !r.is_empty() {
        if ctx.version.is_none_or(|v| v >= 0x0303) {
            let scheme = r.u16("signature algorithm")?;
            fields.push(Field::new(
                "signature_algorithm",
                names::signature_scheme(scheme),
            ));
        }
        fields.push(Field::new("signature", bytes_len(r.vec16("signature")?)));
    }
    Ok(())
}

fn client_key_exchange(
    r: &mut Reader<'_>,
    ctx: &HandshakeContext,
    fields: &mut Vec<Field>,
) -> Decoded<()> {
    let kx = ctx.cipher_suite.and_then(names::key_exchange);
    match kx {
        Some(TlsCipherKx::Ecdhe | TlsCipherKx::Ecdh) => {
            fields.push(Field::new("public_key", bytes_len(r.vec8("public key")?)));
        }
        Some(TlsCipherKx::Rsa) => {
            let secret = r.vec16("encrypted_pre_master_secret")?;
            fields.push(Field::new("encrypted_pre_master_secret", bytes_len(secret)));
        }
        Some(TlsCipherKx::Dhe | TlsCipherKx::Dh) => {
            fields.push(Field::new("dh_Yc", bytes_len(r.vec16("dh_Yc")?)));
        }
        // Unknown suite: an ECDHE point if the first byte is the rest's length.
        None if r.peek_u8().map(usize::from) == Some(r.remaining().saturating_sub(1)) => {
            fields.push(Field::new("public_key", bytes_len(r.vec8("public key")?)));
        }
        _ => fields.push(Field::new("exchange_keys", bytes_len(r.rest()))),
    }
    Ok(())
}

/// Which message an extension block belongs to; several extensions change shape with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtContext {
    ClientHello,
    ServerHello,
    HelloRetryRequest,
    EncryptedExtensions,
    CertificateRequest,
    CertificateEntry,
    NewSessionTicket,
}

/// A `vec16` of extensions, each rendered as an `extension <name>` field.
fn extensions(r: &mut Reader<'_>, context: ExtContext) -> Decoded<Vec<Field>> {
    let mut list = Reader::new(r.vec16("extensions")?);
    let raw = raw_extensions(&mut list)?;
    Ok(raw
        .iter()
        .map(|&(ext_type, data)| extension(ext_type, data, context))
        .collect())
}

fn raw_extensions<'a>(list: &mut Reader<'a>) -> Decoded<Vec<(u16, &'a [u8])>> {
    let mut raw = Vec::new();
    while !list.is_empty() {
        let ext_type = list.u16("extension type")?;
        let data = list.vec16("extension data")?;
        raw.push((ext_type, data));
    }
    Ok(raw)
}

/// One extension; a body that does not decode is shown as such rather than failing the
/// message, since the rest of the message is still worth seeing.
fn extension(ext_type: u16, data: &[u8], context: ExtContext) -> Field {
    let name = names::extension(ext_type);
    let name = {
        let mut full = String::with_capacity(10 + name.len());
        full.push_str("extension ");
        full.push_str(&name);
        full
    };
    let mut r = Reader::new(data);
    let decoded = extension_body(ext_type, &mut r, context).and_then(|field| {
        r.finish()?;
        Ok(field)
    });
    match decoded {
        Ok((value, children)) => Field::with_children(name, value, children),
        Err(reason) => Field::new(name, format!("malformed: {reason} ({} bytes)", data.len())),
    }
}

fn extension_body(
    ext_type: u16,
    r: &mut Reader<'_>,
    context: ExtContext,
) -> Decoded<(String, Vec<Field>)> {
    use ExtContext::*;
    let empty = (String::new(), Vec::new());
    let value = |v: String| Ok((v, Vec::new()));
    if r.is_empty() && matches!(ext_type, 0 | 5 | 18 | 22 | 23 | 42 | 49) {
        // Flags and acknowledgements (server_name and status_request from a server, ...).
        return Ok(empty);
    }
    match ext_type {
        0 => {
            let mut list = Reader::new(r.vec16("server_name_list")?);
            let mut children = Vec::new();
            while !list.is_empty() {
                let name_type = list.u8("name_type")?;
                let name = String::from_utf8_lossy(list.vec16("host_name")?).into_owned();
                children.push(Field::new(names::server_name_type(name_type), name));
            }
            Ok((join(children.iter().map(|c| c.value.clone())), children))
        }
        1 => {
            let code = r.u8("max_fragment_length")?;
            let size = match code {
                1..=4 => format!("{} ({code})", 256usize << code),
                _ => format!("unknown ({code})"),
            };
            value(size)
        }
        5 if context == CertificateEntry => {
            let status_type = names::status_type(r.u8("status_type")?);
            value(format!(
                "{status_type}, OCSP response {}",
                bytes_len(r.vec24("response")?)
            ))
        }
        5 => {
            let status_type = names::status_type(r.u8("status_type")?);
            let responders = r.vec16("responder_id_list")?;
            let request_extensions = r.vec16("request_extensions")?;
            let children = vec![
                Field::new("responder_id_list", bytes_len(responders)),
                Field::new("request_extensions", bytes_len(request_extensions)),
            ];
            Ok((status_type, children))
        }
        10 => {
            let groups = u16_list(r.vec16("named_group_list")?, "named_group_list")?;
            value(join(groups.iter().map(|&g| names::group(g))))
        }
        11 => value(join(
            r.vec8("ec_point_format_list")?
                .iter()
                .map(|&f| names::ec_point_format(f)),
        )),
        13 | 50 => {
            let schemes = u16_list(r.vec16("supported_signature_algorithms")?, "algorithms")?;
            value(join(schemes.iter().map(|&s| names::signature_scheme(s))))
        }
        15 => {
            let mode = match r.u8("mode")? {
                1 => "peer_allowed_to_send (1)".to_owned(),
                2 => "peer_not_allowed_to_send (2)".to_owned(),
                other => format!("unknown ({other})"),
            };
            value(mode)
        }
        16 => {
            let mut list = Reader::new(r.vec16("protocol_name_list")?);
            let mut protocols = Vec::new();
            while !list.is_empty() {
                protocols.push(String::from_utf8_lossy(list.vec8("protocol_name")?).into_owned());
            }
            value(protocols.join(", "))
        }
        18 => value(format!(
            "{} of SCTs",
            bytes_len(r.vec16("signed_certificate_timestamp_list")?)
        )),
        19 | 20 if context == ClientHello => value(join(
            r.vec8("certificate_types")?
                .iter()
                .map(|&t| names::certificate_type(t)),
        )),
        19 | 20 => value(names::certificate_type(r.u8("certificate_type")?)),
        21 => value(bytes_len(r.rest())),
        27 => {
            let algorithms = u16_list(r.vec8("algorithms")?, "algorithms")?;
            value(join(algorithms.iter().map(|&a| names::cert_compression(a))))
        }
        28 => value(r.u16("record_size_limit")?.to_string()),
        35 => value(bytes_len(r.rest())),
        41 if context == ClientHello => pre_shared_key_offer(r),
        41 => value(format!("selected_identity {}", r.u16("selected_identity")?)),
        42 => value(format!(
            "max_early_data_size {}",
            r.u32("max_early_data_size")?
        )),
        43 if context == ClientHello => {
            let versions = u16_list(r.vec8("versions")?, "versions")?;
            value(join(versions.iter().map(|&v| names::version(v))))
        }
        43 => value(names::version(r.u16("selected_version")?)),
        44 => value(bytes_len(r.vec16("cookie")?)),
        45 => value(join(
            r.vec8("ke_modes")?.iter().map(|&m| names::psk_mode(m)),
        )),
        47 => {
            let field = distinguished_names("authorities", r.vec16("authorities")?)?;
            Ok((field.value, field.children))
        }
        51 if context == ClientHello => {
            // The value lists the groups; each entry (with its key length) is a child.
            let mut list = Reader::new(r.vec16("client_shares")?);
            let mut groups = Vec::new();
            let mut children = Vec::new();
            while !list.is_empty() {
                let (group, entry) = key_share_entry(&mut list)?;
                groups.push(group);
                children.push(entry);
            }
            Ok((groups.join(", "), children))
        }
        51 if context == HelloRetryRequest => value(format!(
            "selected_group {}",
            names::group(r.u16("selected_group")?)
        )),
        51 => value(key_share_entry(r)?.1.value),
        0xff01 => value(bytes_len(r.vec8("renegotiated_connection")?)),
        _ => value(bytes_len(r.rest())),
    }
}

/// A KeyShareEntry: the group name, and a field with the group and the key length.
fn key_share_entry(r: &mut Reader<'_>) -> Decoded<(String, Field)> {
    let group = names::group(r.u16("group")?);
    let key = r.vec16("key_exchange")?;
    let entry = Field::new(
        "key_share_entry",
        format!("{group}, key_exchange {}", bytes_len(key)),
    );
    Ok((group, entry))
}

fn pre_shared_key_offer(r: &mut Reader<'_>) -> Decoded<(String, Vec<Field>)> {
    let mut identities = Reader::new(r.vec16("identities")?);
    let mut children = Vec::new();
    while !identities.is_empty() {
        let identity = identities.vec16("identity")?;
        let age = identities.u32("obfuscated_ticket_age")?;
        children.push(Field::new(
            "identity",
            format!("{}, obfuscated_ticket_age {age}", bytes_len(identity)),
        ));
    }
    let identity_count = children.len();
    let mut binders = Reader::new(r.vec16("binders")?);
    while !binders.is_empty() {
        children.push(Field::new("binder", names::hex(binders.vec8("binder")?)));
    }
    let binder_count = children.len() - identity_count;
    Ok((
        format!("{identity_count} identities, {binder_count} binders"),
        children,
    ))
}

/// A `vec16` list of DER distinguished names, rendered like `CN=mtls CA`.
fn distinguished_names(name: &str, data: &[u8]) -> Decoded<Field> {
    let mut list = Reader::new(data);
    let mut children = Vec::new();
    while !list.is_empty() {
        children.push(Field::new(
            "distinguished_name",
            distinguished_name(list.vec16("DN")?),
        ));
    }
    let value = match children.len() {
        0 => "(none: any CA)".to_owned(),
        _ => children
            .iter()
            .map(|c| c.value.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    };
    Ok(Field::with_children(name, value, children))
}

fn distinguished_name(der: &[u8]) -> String {
    match X509Name::from_der(der) {
        Ok((_, name)) => name.to_string(),
        Err(_) => format!("unparsable name ({} bytes)", der.len()),
    }
}

/// One certificate: the fields people check when mutual TLS fails.
fn certificate_field(der: &[u8], detail: Detail) -> Field {
    let mut children = Vec::new();
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => {
            children.push(Field::new("subject", cert.subject().to_string()));
            children.push(Field::new("issuer", cert.issuer().to_string()));
            children.push(Field::new("serial", cert.raw_serial_as_string()));
            if detail == Detail::Summary {
                return Field::with_children("certificate", bytes_len(der), children);
            }
            children.push(Field::new("not_before", time(&cert.validity().not_before)));
            children.push(Field::new("not_after", time(&cert.validity().not_after)));
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                let names = san.value.general_names.iter().map(general_name);
                children.push(Field::new("subject_alt_names", join(names)));
            }
            if cert.is_ca() {
                children.push(Field::new("basic_constraints", "CA:TRUE"));
            }
            children.push(Field::new("public_key", public_key(&cert)));
            let algorithm = oid_name(&cert.signature_algorithm.algorithm);
            children.push(Field::new("signature_algorithm", algorithm));
        }
        Err(e) => children.push(Field::new(
            "error",
            format!("not an X.509 certificate: {e}"),
        )),
    }
    Field::with_children("certificate", bytes_len(der), children)
}

fn public_key(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    let mut text = oid_name(&spki.algorithm.algorithm);
    if let Some(curve) = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| Oid::try_from(p.clone()).ok())
    {
        text = format!("{text} {}", oid_name(&curve));
    }
    if let Ok(key) = spki.parsed() {
        let bits = key.key_size();
        if bits > 0 {
            text = format!("{text}, {bits} bits");
        }
    }
    text
}

fn oid_name(oid: &Oid<'_>) -> String {
    oid2sn(oid, oid_registry()).map_or_else(|_| oid.to_id_string(), str::to_owned)
}

fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
        GeneralName::RFC822Name(email) => format!("email:{email}"),
        GeneralName::URI(uri) => format!("URI:{uri}"),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 | 16 => {
                let ip = <[u8; 4]>::try_from(*bytes)
                    .map(std::net::IpAddr::from)
                    .or_else(|_| <[u8; 16]>::try_from(*bytes).map(std::net::IpAddr::from));
                ip.map_or_else(
                    |_| format!("IP:{}", names::hex(bytes)),
                    |ip| format!("IP:{ip}"),
                )
            }
            _ => format!("IP:{}", names::hex(bytes)),
        },
        GeneralName::DirectoryName(dn) => format!("DirName:{dn}"),
        other => format!("{other:?}"),
    }
}

fn time(t: &ASN1Time) -> String {
    let t = t.to_datetime();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub(crate) fn u16_list(data: &[u8], what: &str) -> Decoded<Vec<u16>> {
    let (pairs, rest) = data.as_chunks::<2>();
    if !rest.is_empty() {
        return Err(format!("{what} has an odd length {}", data.len()));
    }
    Ok(pairs.iter().map(|&pair| u16::from_be_bytes(pair)).collect())
}

fn join(items: impl Iterator<Item = String>) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item);
    }
    out
}

fn bytes_len(data: &[u8]) -> String {
    match data.len() {
        1 => "1 byte".to_owned(),
        n => format!("{n} bytes"),
    }
}

fn hex_or_empty(data: &[u8]) -> String {
    match data.len() {
        0 => "(empty)".to_owned(),
        n => format!("{} ({n} bytes)", names::hex(data)),
    }
}

fn seconds(value: u32) -> String {
    format!("{value} seconds")
}

fn find_in<'a>(fields: &'a [Field], name: &str) -> Option<&'a Field> {
    fields.iter().find_map(|f| {
        if f.is_named(name) {
            Some(f)
        } else {
            f.find(name)
        }
    })
}

fn collect<'a>(fields: &'a [Field], name: &str, found: &mut Vec<&'a Field>) {
    for field in fields {
        if field.is_named(name) {
            found.push(field);
        }
        collect(&field.children, name, found);
    }
}

/// A cursor over a length-bounded body; every read checks bounds and names what it read,
/// so a truncated message says where it broke.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn remaining(&self) -> usize {
        self.data.len()
    }

    fn peek_u8(&self) -> Option<u8> {
        self.data.first().copied()
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Decoded<&'a [u8]> {
        match self.data.split_at_checked(n) {
            Some((head, tail)) => {
                self.data = tail;
                Ok(head)
            }
            None => Err(format!(
                "truncated {what}: needs {n} bytes, {} left",
                self.data.len()
            )),
        }
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Decoded<u8> {
        let [b] = *self.array::<1>(what)?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self, what: &str) -> Decoded<u16> {
        Ok(u16::from_be_bytes(*self.array::<2>(what)?))
    }

    fn u24(&mut self, what: &str) -> Decoded<usize> {
        let [a, b, c] = *self.array::<3>(what)?;
        Ok(usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c))
    }

    fn u32(&mut self, what: &str) -> Decoded<u32> {
        Ok(u32::from_be_bytes(*self.array::<4>(what)?))
    }

    pub(crate) fn array32(&mut self, what: &str) -> Decoded<[u8; 32]> {
        Ok(*self.array::<32>(what)?)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Decoded<&'a [u8; N]> {
        let bytes = self.take(N, what)?;
        // `take` returned exactly N bytes, so this cannot fail; the error is unreachable.
        bytes
            .try_into()
            .map_err(|_| format!("{what}: internal length mismatch"))
    }

    pub(crate) fn vec8(&mut self, what: &str) -> Decoded<&'a [u8]> {
        let n = usize::from(self.u8(what)?);
        self.take(n, what)
    }

    pub(crate) fn vec16(&mut self, what: &str) -> Decoded<&'a [u8]> {
        let n = usize::from(self.u16(what)?);
        self.take(n, what)
    }

    fn vec24(&mut self, what: &str) -> Decoded<&'a [u8]> {
        let n = self.u24(what)?;
        self.take(n, what)
    }

    pub(crate) fn finish(&self) -> Decoded<()> {
        match self.data.len() {
            0 => Ok(()),
            n => Err(format!("{n} unexpected trailing bytes")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_hello_bytes(random: [u8; 32]) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&random);
        body.extend_from_slice(&[0, 0x13, 0x01, 0]); // no session id, suite, null compression
        // extensions: supported_versions TLS 1.3, key_share x25519 (HRR form: group only)
        body.extend_from_slice(&[0, 12, 0, 43, 0, 2, 3, 4, 0, 51, 0, 2, 0, 29]);
        let mut message = vec![2, 0, 0, u8::try_from(body.len()).expect("short")];
        message.extend_from_slice(&body);
        message
    }

    #[test]
    fn detects_hello_retry_request() {
        let bytes = server_hello_bytes(HELLO_RETRY_REQUEST_RANDOM);
        let (message, used) =
            parse_handshake(&bytes, &HandshakeContext::default()).expect("parses");
        assert_eq!(used, bytes.len());
        assert_eq!(message.kind, "HelloRetryRequest");
        let key_share = message.find("extension key_share").expect("key_share");
        assert_eq!(key_share.value, "selected_group x25519 (0x001d)");
        let versions = message
            .find("extension supported_versions")
            .expect("versions");
        assert_eq!(versions.value, "TLS 1.3 (0x0304)");
    }

    #[test]
    fn incomplete_is_not_malformed() {
        let bytes = server_hello_bytes([7; 32]);
        let ctx = HandshakeContext::default();
        assert_eq!(
            parse_handshake(&bytes[..2], &ctx),
            Err(ParseError::Incomplete { needed: 2 })
        );
        assert_eq!(
            parse_handshake(&bytes[..10], &ctx),
            Err(ParseError::Incomplete {
                needed: bytes.len() - 10
            })
        );
        // A header that claims fewer bytes than the body needs: malformed, not incomplete.
        let mut short = bytes.clone();
        short[3] = 20;
        let err = parse_handshake(&short, &ctx).expect_err("truncated body");
        assert!(matches!(&err, ParseError::Malformed(m) if m.starts_with("ServerHello: ")));
    }

    fn ext(ext_type: u16, data: &[u8]) -> Vec<u8> {
        let mut out = ext_type.to_be_bytes().to_vec();
        out.extend_from_slice(&u16::try_from(data.len()).expect("short").to_be_bytes());
        out.extend_from_slice(data);
        out
    }

    fn with_len16(data: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(data.len())
            .expect("short")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(data);
        out
    }

    /// A browser-like ClientHello with the extensions the openssl fixtures lack.
    #[test]
    fn client_hello_extensions_by_name() {
        let mut key_shares = vec![0x0a, 0x0a, 0, 1, 0];
        key_shares.extend_from_slice(&[0x11, 0xec, 0x04, 0xc0]);
        key_shares.extend_from_slice(&[0x42; 1216]);
        key_shares.extend_from_slice(&[0, 29, 0, 32]);
        key_shares.extend_from_slice(&[0x43; 32]);
        let mut psk = with_len16(&[0, 3, 1, 2, 3, 0, 0, 0, 9]);
        psk.extend_from_slice(&with_len16(&[4, 0xde, 0xad, 0xbe, 0xef]));
        let extensions = [
            ext(0x0a0a, &[]),
            ext(
                0,
                &with_len16(&[
                    0, 0, 9, b'l', b'o', b'c', b'a', b'l', b'h', b'o', b's', b't',
                ]),
            ),
            ext(16, &with_len16(b"\x02h2\x08http/1.1")),
            ext(5, &[1, 0, 0, 0, 0]),
            ext(18, &[]),
            ext(27, &[2, 0, 2]),
            ext(28, &[0x40, 0x01]),
            ext(10, &with_len16(&[0x1a, 0x1a, 0x11, 0xec, 0, 29, 0, 23])),
            ext(51, &with_len16(&key_shares)),
            ext(43, &[3, 3, 4, 3]), // odd list length: malformed, message still shown
            ext(44, &with_len16(&[1, 2, 3, 4, 5])),
            ext(49, &[]),
            ext(42, &[]),
            ext(0x1234, &[1, 2, 3]),
            ext(21, &[0; 10]),
            ext(45, &[1, 1]),
            ext(41, &psk),
        ]
        .concat();
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x11; 32]);
        body.extend_from_slice(&[0, 0, 4, 0x2a, 0x2a, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&with_len16(&extensions));
        let mut bytes = vec![1, 0];
        bytes.extend_from_slice(&u16::try_from(body.len()).expect("short").to_be_bytes());
        bytes.extend_from_slice(&body);

        let (message, _) = parse_handshake(&bytes, &HandshakeContext::default()).expect("parses");
        let value = |name: &str| message.find(name).map(|f| f.value.as_str()).unwrap_or("?");
        assert_eq!(
            value("cipher_suites"),
            "Reserved (GREASE) (0x2a2a), TLS_AES_128_GCM_SHA256 (0x1301)"
        );
        assert_eq!(value("extension Reserved (GREASE)"), "0 bytes");
        assert_eq!(value("extension server_name"), "localhost");
        assert_eq!(
            value("extension application_layer_protocol_negotiation"),
            "h2, http/1.1"
        );
        assert_eq!(value("extension status_request"), "ocsp (1)");
        assert_eq!(value("extension signed_certificate_timestamp"), "");
        assert_eq!(value("extension compress_certificate"), "brotli (0x0002)");
        assert_eq!(value("extension record_size_limit"), "16385");
        assert_eq!(
            value("extension supported_groups"),
            "Reserved (GREASE) (0x1a1a), X25519MLKEM768 (0x11ec), x25519 (0x001d), \
             secp256r1 (0x0017)"
        );
        assert_eq!(
            value("extension key_share"),
            "Reserved (GREASE) (0x0a0a), X25519MLKEM768 (0x11ec), x25519 (0x001d)"
        );
        let shares = message.find_all("key_share_entry");
        assert_eq!(
            shares[1].value,
            "X25519MLKEM768 (0x11ec), key_exchange 1216 bytes"
        );
        assert!(value("extension supported_versions").starts_with("malformed: "));
        assert_eq!(value("extension cookie"), "5 bytes");
        assert_eq!(value("extension post_handshake_auth"), "");
        assert_eq!(value("extension early_data"), "");
        assert_eq!(value("extension unknown (0x1234)"), "3 bytes");
        assert_eq!(value("extension padding"), "10 bytes");
        assert_eq!(value("extension psk_key_exchange_modes"), "psk_dhe_ke (1)");
        assert_eq!(value("extension pre_shared_key"), "1 identities, 1 binders");
        assert_eq!(value("identity"), "3 bytes, obfuscated_ticket_age 9");
        assert_eq!(value("binder"), "deadbeef");
    }
}

//! The raw shapes serde reads before anything is checked.
//!
//! Tables are structs with `deny_unknown_fields`, so a misspelt key is an error at its
//! position. Leaves are [`Value`]s that take any TOML type: a value of the wrong type then
//! becomes one error among many in the conversion instead of ending the parse, and every
//! value (every list item too) keeps its span.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// An optional leaf key.
pub(super) type Leaf = Option<Spanned<Value>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub server: Option<Vec<Spanned<RawServer>>>,
    pub access_log: Leaf,
    pub workers: Leaf,
    pub metrics: Leaf,
    pub upstream: Option<Vec<Spanned<RawUpstream>>>,
    pub max_connections: Leaf,
    pub worker_rlimit_nofile: Leaf,
    pub ssl_handshake_timeout: Leaf,
    pub client_header_timeout: Leaf,
    pub client_body_timeout: Leaf,
    pub send_timeout: Leaf,
    pub keepalive_timeout: Leaf,
    pub pid: Leaf,
}

/// One `[[upstream]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub name: Leaf,
    pub servers: Leaf,
    pub fail_timeout: Leaf,
    pub keepalive_timeout: Leaf,
    pub tls: Option<Spanned<RawProxyTls>>,
}

/// `[server.location.proxy_tls]` / `[upstream.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxyTls {
    pub certificate: Leaf,
    pub key: Leaf,
    pub key_password_file: Leaf,
    pub trusted_ca: Leaf,
    pub verify: Leaf,
    pub server_name: Leaf,
    pub sni: Leaf,
    pub session_reuse: Leaf,
    pub common_name_fallback: Leaf,
    pub protocols: Leaf,
    pub ciphers: Leaf,
}

/// `[server.location.header_names]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderNames {
    pub verify: Leaf,
    pub subject: Leaf,
    pub issuer: Leaf,
    pub serial: Leaf,
    pub fingerprint: Leaf,
    pub cert: Leaf,
}

/// One `[[server]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: Leaf,
    pub server_name: Leaf,
    pub underscores_in_headers: Leaf,
    pub client_max_body_size: Leaf,
    pub large_client_header_buffers: Leaf,
    pub client_header_timeout: Leaf,
    pub client_body_timeout: Leaf,
    pub send_timeout: Leaf,
    pub keepalive_timeout: Leaf,
    pub tls: Option<Spanned<RawTls>>,
    pub location: Option<Vec<Spanned<RawLocation>>>,
}

/// `[server.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub certificate: Leaf,
    pub key: Leaf,
    pub key_password_file: Leaf,
    pub client_ca: Leaf,
    pub trusted_ca: Leaf,
    pub verify_client: Leaf,
    pub crl: Leaf,
    pub verify_depth: Leaf,
    pub protocols: Leaf,
    pub ciphers: Leaf,
    pub prefer_server_ciphers: Leaf,
    pub session_cache: Leaf,
    pub session_timeout: Leaf,
    pub session_tickets: Leaf,
    pub session_ticket_key: Leaf,
    pub keylog: Leaf,
}

/// One `[[server.location]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocation {
    pub path: Leaf,
    pub root: Leaf,
    pub index: Leaf,
    #[serde(rename = "return")]
    pub ret: Leaf,
    pub client_auth: Leaf,
    pub allow: Option<Spanned<RawAllow>>,
    pub client_max_body_size: Leaf,
    pub proxy_pass: Leaf,
    pub proxy_tls: Option<Spanned<RawProxyTls>>,
    pub connect_timeout: Leaf,
    pub read_timeout: Leaf,
    pub send_timeout: Leaf,
    pub max_header_size: Leaf,
    pub identity_headers: Leaf,
    pub xfcc: Leaf,
    pub header_names: Option<Spanned<RawHeaderNames>>,
    pub forward_raw_path: Leaf,
}

/// `[server.location.allow]` or an inline `allow = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAllow {
    pub cn: Leaf,
    pub ou: Leaf,
    pub san_dns: Leaf,
    pub san_uri: Leaf,
    pub san_email: Leaf,
    pub fingerprint: Leaf,
}

/// Any TOML value, with the spans of list items kept.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime,
    Array(Vec<Spanned<Value>>),
    Table,
}

impl Value {
    /// The type's name for "expected X, found Y".
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime => "a date-time",
            Value::Array(_) => "a list",
            Value::Table => "a table",
        }
    }
}

/// The key toml uses to hand a date-time to serde as a one-entry map.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        // TOML integers are i64; a larger one cannot come from the parser.
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Integer))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // No leaf takes a table; drain it so the error is ours ("expected a string, found a
        // table") rather than serde's.
        let mut datetime = false;
        while let Some(key) = map.next_key::<String>()? {
            datetime |= key == TOML_DATETIME_KEY;
            map.next_value::<IgnoredAny>()?;
        }
        Ok(if datetime {
            Value::Datetime
        } else {
            Value::Table
        })
    }
}

//! nginx's small value languages: addresses, names, paths, `return`, times and sizes.
//!
//! Each parser takes the text of one value and returns what it means or a sentence saying
//! why not; the caller adds the file, position and key.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::{Listen, PathMatch, ServerName, SessionCache};

/// nginx's `ssl_session_cache` sizing: about 4000 sessions per megabyte.
const SESSIONS_PER_MEGABYTE: u64 = 4000;

/// `"127.0.0.1:8443"`, `"[::]:8443"`, `"8443"`, each optionally followed by `default_server`.
pub(super) fn listen(text: &str) -> Result<Listen, String> {
    let mut words = text.split_whitespace();
    let Some(address) = words.next() else {
        return Err("empty address; expected IP:PORT, [IPv6]:PORT or PORT".to_owned());
    };
    let addr = if address.bytes().all(|b| b.is_ascii_digit()) {
        let port = address
            .parse::<u16>()
            .map_err(|_| format!("port {address} is out of range 0..=65535"))?;
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
    } else if let Some(port) = address.strip_prefix("*:") {
        // nginx's spelling of "every IPv4 address".
        let port = port.parse::<u16>().map_err(|_| {
            format!("{address:?} is not an address; expected IP:PORT, [IPv6]:PORT or PORT")
        })?;
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
    } else {
        address.parse::<SocketAddr>().map_err(|_| {
            format!(
                "{address:?} is not an address; expected IP:PORT, [IPv6]:PORT or PORT \
                 (host names are not resolved)"
            )
        })?
    };
    let mut default_server = false;
    for word in words {
        match word {
            "default_server" | "default" => default_server = true,
            "ssl" => {
                return Err(
                    "`ssl` is not a listen parameter here: a server with [server.tls] is TLS"
                        .to_owned(),
                );
            }
            _ => {
                return Err(format!(
                    "unknown listen parameter `{word}`; expected default_server"
                ));
            }
        }
    }
    Ok(Listen {
        addr,
        default_server,
    })
}

/// `listen = 8000`: a bare port as a TOML integer.
pub(super) fn listen_port(port: i64) -> Result<Listen, String> {
    let port = u16::try_from(port).map_err(|_| format!("port {port} is out of range 0..=65535"))?;
    Ok(Listen {
        addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        default_server: false,
    })
}

/// `"api.example.com"`, `"*.example.com"`, or nginx's `".example.com"` (both of those).
pub(super) fn server_name(text: &str) -> Result<Vec<ServerName>, String> {
    if text.is_empty() {
        return Err("empty name; leave server_name out for a catch-all server".to_owned());
    }
    if text.starts_with('~') {
        return Err("regular-expression server names are not supported".to_owned());
    }
    if text.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err("not a host name (one name per item)".to_owned());
    }
    if text.contains(':') {
        return Err("a server name has no port; the port belongs in listen".to_owned());
    }
    let name = text.to_ascii_lowercase();
    let (star, rest) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name.strip_prefix('.').unwrap_or(&name)),
    };
    if rest.is_empty() || rest.starts_with('.') || rest.contains("..") {
        return Err("not a host name".to_owned());
    }
    if rest.contains('*') {
        return Err("only a leading `*.` wildcard is supported".to_owned());
    }
    let suffix = format!(".{rest}");
    Ok(if star {
        vec![ServerName::Wildcard(suffix)]
    } else if name.starts_with('.') {
        vec![
            ServerName::Exact(rest.to_owned()),
            ServerName::Wildcard(suffix),
        ]
    } else {
        vec![ServerName::Exact(name)]
    })
}

/// `"/img/"` (prefix) or `"= /x"` (exact).
pub(super) fn path_match(text: &str) -> Result<PathMatch, String> {
    let text = text.trim();
    let (exact, path) = if let Some(rest) = text.strip_prefix('=') {
        (true, rest.trim_start())
    } else if let Some(rest) = text.strip_prefix("^~") {
        // nginx's "prefix, and skip the regexes": we have no regexes, so a plain prefix.
        (false, rest.trim_start())
    } else if text.starts_with('~') {
        return Err(
            "regular-expression locations are not supported; use a prefix \"/x/\" or \"= /x\""
                .to_owned(),
        );
    } else if text.starts_with('@') {
        return Err("named locations are not supported".to_owned());
    } else {
        (false, text)
    };
    if !path.starts_with('/') {
        return Err(format!(
            "{text:?} does not start with /; expected \"/prefix/\" or \"= /exact\""
        ));
    }
    let path = path.to_owned();
    Ok(if exact {
        PathMatch::Exact(path)
    } else {
        PathMatch::Prefix(path)
    })
}

/// nginx's `return`: `"301 https://$host$request_uri"`, `"404"`, `"200 some text"`, or a
/// bare URL (a 302).
pub(super) fn return_action(text: &str) -> Result<(u16, Option<String>), String> {
    // A text body keeps its trailing whitespace (a final newline is usually wanted); a URL
    // does not.
    let text = text.trim_start();
    if ["http://", "https://", "$scheme"]
        .iter()
        .any(|p| text.starts_with(p))
    {
        return Ok((302, Some(text.trim_end().to_owned())));
    }
    let (code, rest) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(c, r)| (c, r.trim_start()));
    let code = code
        .trim_end()
        .parse::<i64>()
        .map_err(|_| format!("{text:?}: expected \"CODE [URL or text]\" or a URL"))?;
    let rest = if (300..400).contains(&code) {
        rest.trim_end()
    } else {
        rest
    };
    let target = (!rest.trim().is_empty()).then(|| rest.to_owned());
    return_status(code, target)
}

/// The status of `return` (also `return = 404` as a TOML integer), with its target.
pub(super) fn return_status(
    code: i64,
    target: Option<String>,
) -> Result<(u16, Option<String>), String> {
    let status = u16::try_from(code)
        .ok()
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| format!("status {code} is not in 100..=599"))?;
    if (300..400).contains(&status) && target.is_none() {
        return Err(format!(
            "{status} is a redirect and needs a URL, e.g. \"{status} https://$host$request_uri\""
        ));
    }
    Ok((status, target))
}

/// nginx's time syntax: `"300"` (seconds), `"300s"`, `"5m"`, `"1h 30m"`, `"500ms"`; units
/// ms, s, m, h, d, w, M (30 days), y (365 days).
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    const SYNTAX: &str = "expected a time such as \"300\" (seconds), \"300s\", \"5m\", \"1h 30m\"";
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(format!("empty time; {SYNTAX}"));
    }
    let mut rest = compact.as_str();
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("{text:?}: {SYNTAX}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?} is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "" | "s" => 1000,
            "m" => 60 * 1000,
            "h" => 60 * 60 * 1000,
            "d" => 24 * 60 * 60 * 1000,
            "w" => 7 * 24 * 60 * 60 * 1000,
            "M" => 30 * 24 * 60 * 60 * 1000,
            "y" => 365 * 24 * 60 * 60 * 1000,
            unit => {
                return Err(format!(
                    "{text:?}: unknown unit {unit:?}; expected ms, s, m, h, d, w, M or y"
                ));
            }
        };
        rest = &rest[unit_len..];
        total_ms = number
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("{text:?} is too large"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// nginx's size syntax: `"1024"` (bytes), `"512k"`, `"10m"`, `"1g"`, in bytes.
pub(super) fn size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, ' '),
    };
    let multiplier: u64 = match unit {
        ' ' => 1,
        'k' | 'K' => 1 << 10,
        'm' | 'M' => 1 << 20,
        'g' | 'G' => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?}; expected k, m or g"
            ));
        }
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?}: expected a size such as \"512k\" or \"10m\""
        ));
    }
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// nginx's `large_client_header_buffers "NUMBER SIZE"` (`"4 8k"`), as the total size the
/// request head may take. At least 8k in all: hyper's read buffer cannot be smaller.
pub(super) fn header_buffers(text: &str) -> Result<usize, String> {
    let mut words = text.split_whitespace();
    let (Some(number), Some(each), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!(
            "{text:?}: expected \"NUMBER SIZE\" such as \"4 8k\""
        ));
    };
    let number: u64 = number
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("{text:?}: {number:?} is not a number of buffers"))?;
    let each = size(each)?;
    let total = number
        .checked_mul(each)
        .and_then(|t| usize::try_from(t).ok())
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if total < 8 * 1024 {
        return Err(format!(
            "{text:?}: {total} bytes in all; at least 8k is needed"
        ));
    }
    Ok(total)
}

/// `"off"`, `"none"`, a size (`"10m"`), or nginx's `"shared:SSL:10m"`.
pub(super) fn session_cache(text: &str) -> Result<SessionCache, String> {
    let text = text.trim();
    if text == "off" || text == "none" {
        return Ok(SessionCache::Off);
    }
    let size_text = match text.strip_prefix("shared:") {
        Some(rest) => match rest.split_once(':') {
            Some((name, size)) if !name.is_empty() => size,
            _ => return Err(format!("{text:?}: expected \"shared:NAME:SIZE\"")),
        },
        None => text,
    };
    let bytes = size(size_text).map_err(|why| {
        format!("{why}; session_cache is \"off\", \"none\" or a size such as \"10m\"")
    })?;
    let sessions = u128::from(bytes) * u128::from(SESSIONS_PER_MEGABYTE) / (1 << 20);
    match usize::try_from(sessions) {
        Ok(0) => Err(format!(
            "{text:?} holds no session (about 4000 per megabyte); use \"off\" to disable the cache"
        )),
        Ok(n) => Ok(SessionCache::Sessions(n)),
        Err(_) => Err(format!("{text:?} is too large")),
    }
}

/// A fingerprint as compared: hex digits, lower case, no `:`.
pub(super) fn normalize_fingerprint(text: &str) -> String {
    text.chars()
        .filter(|&c| c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `*` matches any run of characters, `?` exactly one; everything else itself.
pub(super) fn glob(pattern: &[char], value: &[char]) -> bool {
    let (mut p, mut v) = (0, 0);
    // Where the last `*` was and how much of the value it has eaten: on a mismatch it eats
    // one more, which keeps this linear in practice without recursion.
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, v));
                p += 1;
            }
            Some(&c) if c == '?' || c == value[v] => {
                p += 1;
                v += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    p = sp + 1;
                    v = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

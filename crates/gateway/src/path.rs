//! The request path, made once per request before anything looks at it.
//!
//! Routing, `client_auth` and `allow` rules, `return`'s `$uri`, static files and the path
//! forwarded to an upstream must all see the same path. If any of them decoded or merged
//! differently from the router, a request could be routed as one location and served as
//! another: `//private/x`, `/%70rivate/x` or `/pub/../private/x` would match `/` (no client
//! certificate needed) and then open `private/x`. So [`NormalPath::parse`] is the only place
//! a path is interpreted, and everything downstream takes a [`NormalPath`]:
//!
//! ```text
//!   raw "/pub/%2E%2e//private/./x"  --percent-decode (once)-->  "/pub/..//private/./x"
//!       --merge "//", drop ".", resolve ".."-->  "/private/x"  (what every component sees)
//! ```
//!
//! What is refused (400), because no single reading of it is safe:
//! * an escape that decodes to `/` or `\` (`%2F`, `%5C`): decoding would create a separator
//!   the router did not see, and upstreams disagree on whether it is one (nginx merges it,
//!   Tomcat refuses it, IIS treats `\` as `/`); a raw `\` for the same reason;
//! * NUL and other control characters (C0, DEL and C1), encoded or raw: no file or route
//!   has them, and they end strings in C upstreams or break log lines;
//! * a malformed escape, or bytes that are not UTF-8 once decoded (overlong forms such as
//!   `%c0%ae` are not UTF-8);
//! * a `..` that climbs above `/`.
//!
//! Decoding happens exactly once: `%252e` is a segment literally named `%2e`, never a dot.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// A request path, percent-decoded once and normalised: starts with `/`, no empty, `.` or
/// `..` segment, no control character, `/` only as a separator. A trailing slash is kept,
/// since `/dir` and `/dir/` route and answer differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalPath<'a> {
    path: Cow<'a, str>,
}

/// Why a request path was refused; every case is a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// It does not start with `/` (`*`, or an empty path).
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    MalformedEscape,
    /// `%2F` or `%5C` (or a raw `\`): a separator hidden from the router.
    EncodedSeparator,
    /// A NUL or another control character, encoded or raw.
    ControlCharacter,
    /// The decoded bytes are not UTF-8 (overlong encodings included).
    NotUtf8,
    /// A `..` that would climb above `/`.
    AboveRoot,
}

impl PathError {
    /// A stable name for logs and metrics.
    pub fn check(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "path_not_absolute",
            PathError::MalformedEscape => "path_malformed_escape",
            PathError::EncodedSeparator => "path_encoded_separator",
            PathError::ControlCharacter => "path_control_character",
            PathError::NotUtf8 => "path_not_utf8",
            PathError::AboveRoot => "path_above_root",
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotAbsolute => "The request path must start with a slash.",
            PathError::MalformedEscape => "The request path has a malformed percent-escape.",
            PathError::EncodedSeparator => {
                "The request path has an encoded slash or backslash (%2F, %5C) or a backslash; \
                 send the path unencoded."
            }
            PathError::ControlCharacter => {
                "The request path contains a NUL or another control character."
            }
            PathError::NotUtf8 => "The request path is not valid UTF-8 once decoded.",
            PathError::AboveRoot => "The request path climbs above the root with \"..\".",
        })
    }
}

impl std::error::Error for PathError {}

impl<'a> NormalPath<'a> {
    /// Decode and normalise `raw`, the path of a request target exactly as received
    /// (without the query). A path that is already normal is borrowed, not copied.
    pub fn parse(raw: &'a str) -> Result<NormalPath<'a>, PathError> {
        if !raw.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        if is_normal(raw.as_bytes()) {
            return Ok(NormalPath {
                path: Cow::Borrowed(raw),
            });
        }
        let decoded = decode(raw.as_bytes())?;
        let decoded = String::from_utf8(decoded).map_err(|_| PathError::NotUtf8)?;
        // The C1 controls (U+0080 to U+009F; NEL is a line break to some log readers and
        // Java) are two bytes in UTF-8, so only the decoded text can show them.
        if decoded.chars().any(char::is_control) {
            return Err(PathError::ControlCharacter);
        }
        Ok(NormalPath {
            path: Cow::Owned(resolve(decoded.split('/').skip(1))?),
        })
    }

    /// The path as Java servers route it, when it has `;`: Tomcat, Jetty and Spring cut
    /// each segment at its first `;` ("path parameters", `;jsessionid=...`) before they
    /// match, so to them `/api/..;/admin/x` is `/admin/x` and `/admin;x/y` is `/admin/y`.
    /// The handler refuses a path whose form here picks another location than its own.
    /// `None` when the path has no `;`.
    pub fn without_parameters(&self) -> Option<Result<NormalPath<'static>, PathError>> {
        if !self.path.contains(';') {
            return None;
        }
        let segments = self
            .path
            .split('/')
            .skip(1)
            .map(|segment| segment.split(';').next().unwrap_or(segment));
        Some(resolve(segments).map(|path| NormalPath {
            path: Cow::Owned(path),
        }))
    }

    /// The decoded, normalised path: what routes match and files are named by.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The segments between slashes (none for `/`).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path.split('/').filter(|s| !s.is_empty())
    }

    /// Whether the path ends with `/` (a directory is asked for).
    pub fn has_trailing_slash(&self) -> bool {
        self.path.ends_with('/')
    }

    /// The path percent-encoded again, for a request line or a `Location`: characters that
    /// would end or change the meaning of a path (`%`, `?`, `#`, space, quotes, ...) and
    /// every non-ASCII byte are escaped, so [`NormalPath::parse`] of the result gives this
    /// path back.
    pub fn encoded(&self) -> Cow<'_, str> {
        encode_path(&self.path)
    }

    /// The same path with a lifetime of its own.
    pub fn into_owned(self) -> NormalPath<'static> {
        NormalPath {
            path: Cow::Owned(self.path.into_owned()),
        }
    }
}

impl fmt::Display for NormalPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

/// Percent-encode a decoded path (or a tail of one) for a request line or a `Location`;
/// see [`NormalPath::encoded`].
pub fn encode_path(decoded: &str) -> Cow<'_, str> {
    utf8_percent_encode(decoded, PATH_ESCAPE).into()
}

/// Merge empty and `.` segments and resolve `..`, keeping a trailing slash.
fn resolve<'s>(decoded: impl Iterator<Item = &'s str>) -> Result<String, PathError> {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded {
        trailing_slash = matches!(segment, "" | "." | "..");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
            }
            _ => segments.push(segment),
        }
    }
    let mut path = String::new();
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// What [`encode_path`] escapes: controls, space, non-ASCII (via `CONTROLS`' rule for
/// bytes >= 0x80), and the characters that would end a path or be read as syntax.
const PATH_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The common case, checked without allocating: no escape, no backslash, no control or
/// non-ASCII byte, no `//`, and no `.` or `..` segment.
fn is_normal(raw: &[u8]) -> bool {
    if raw
        .iter()
        .any(|&b| b == b'%' || b == b'\\' || !(0x20..0x7f).contains(&b))
    {
        return false;
    }
    // `raw` starts with '/'; every segment after it must be a plain name, except that the
    // last may be empty (a trailing slash).
    let mut segments = raw[1..].split(|&b| b == b'/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if segment == b"." || segment == b".." || (segment.is_empty() && !last) {
            return false;
        }
    }
    true
}

/// Percent-decode once, refusing what would hide a separator or a control character.
fn decode(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        let byte = if b == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or(PathError::MalformedEscape)?;
            let value = (hex_value(hex[0]).ok_or(PathError::MalformedEscape)? << 4)
                | hex_value(hex[1]).ok_or(PathError::MalformedEscape)?;
            if value == b'/' || value == b'\\' {
                return Err(PathError::EncodedSeparator);
            }
            i += 3;
            value
        } else {
            if b == b'\\' {
                return Err(PathError::EncodedSeparator);
            }
            i += 1;
            b
        };
        if byte < 0x20 || byte == 0x7f {
            return Err(PathError::ControlCharacter);
        }
        out.push(byte);
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(raw: &str) -> String {
        NormalPath::parse(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
            .as_str()
            .to_owned()
    }

    fn refused(raw: &str) -> PathError {
        NormalPath::parse(raw).expect_err(raw)
    }

    #[test]
    fn ordinary_paths_are_borrowed_as_they_are() {
        for raw in [
            "/",
            "/a",
            "/a/",
            "/a/b.txt",
            "/a.b/c..d/.e/f.",
            "/~user/x-y_z",
        ] {
            let path = NormalPath::parse(raw).expect(raw);
            assert!(matches!(path.path, Cow::Borrowed(_)), "{raw}");
            assert_eq!(path.as_str(), raw);
        }
    }

    #[test]
    fn every_spelling_of_one_path_is_the_same_path() {
        for raw in [
            "/private/secret.txt",
            "//private/secret.txt",
            "/%70rivate/secret.txt",
            "/./private/secret.txt",
            "/pub/../private/secret.txt",
            "/pub/%2e%2e/private/secret.txt",
            "/pub/%2E%2e/private/secret.txt",
            "/pub/.%2E/private/secret.txt",
            "/pub/x/../../private/secret.txt",
            "/private/./secret.txt",
            "///private///secret.txt",
        ] {
            assert_eq!(normal(raw), "/private/secret.txt", "{raw}");
        }
    }

    #[test]
    fn trailing_slashes_are_kept() {
        assert_eq!(normal("/a/b/"), "/a/b/");
        assert_eq!(normal("/a/b/."), "/a/b/");
        assert_eq!(normal("/a/b/c/.."), "/a/b/");
        assert_eq!(normal("/a//"), "/a/");
        assert_eq!(normal("/a/.."), "/");
        assert_eq!(normal("/."), "/");
        assert_eq!(normal("//"), "/");
        assert_eq!(normal("/a/b"), "/a/b");
    }

    #[test]
    fn decoding_happens_once() {
        assert_eq!(normal("/%252e%252e/x"), "/%2e%2e/x");
        assert_eq!(normal("/a%20b"), "/a b");
        assert_eq!(normal("/caf%C3%A9"), "/café");
        assert_eq!(normal("/a%3Fb%23c"), "/a?b#c");
    }

    #[test]
    fn hidden_separators_controls_and_bad_bytes_are_refused() {
        use PathError::*;
        for (raw, why) in [
            ("/a%2fb", EncodedSeparator),
            ("/a%2Fb", EncodedSeparator),
            ("/..%2f", EncodedSeparator),
            ("/a%5cb", EncodedSeparator),
            ("/a\\b", EncodedSeparator),
            ("/a%00b", ControlCharacter),
            ("/a%0d%0ab", ControlCharacter),
            ("/a%7f", ControlCharacter),
            ("/a\tb", ControlCharacter),
            ("/a%C2%85b", ControlCharacter),
            ("/a\u{9a}/c..d/..bf.", ControlCharacter),
            ("/%c0%ae%c0%ae/x", NotUtf8),
            ("/%ff", NotUtf8),
            ("/%zz", MalformedEscape),
            ("/a%", MalformedEscape),
            ("/a%4", MalformedEscape),
            ("/..", AboveRoot),
            ("/../x", AboveRoot),
            ("/a/../../x", AboveRoot),
            ("/%2e%2e/x", AboveRoot),
            ("*", NotAbsolute),
            ("", NotAbsolute),
            ("a/b", NotAbsolute),
        ] {
            assert_eq!(refused(raw), why, "{raw}");
        }
    }

    #[test]
    fn encoding_again_gives_the_same_path_back() {
        for raw in [
            "/a b/c",
            "/%252e",
            "/caf%C3%A9/%E6%97%A5",
            "/a%3Fb%23c%25d",
            "/x/%22%3C%3E%5B%5D%5E%60%7B%7C%7D",
            "/dir/",
            "/",
        ] {
            let path = NormalPath::parse(raw).expect(raw);
            let again = path.encoded();
            assert_eq!(NormalPath::parse(&again).expect(&again), path, "{raw}");
        }
    }

    #[test]
    fn path_parameters_as_java_servers_read_them() {
        let without = |raw: &str| {
            NormalPath::parse(raw)
                .expect(raw)
                .without_parameters()
                .map(|p| p.map(|p| p.as_str().to_owned()))
        };
        assert_eq!(without("/a/b"), None);
        assert_eq!(without("/api/..;/admin/x"), Some(Ok("/admin/x".into())));
        assert_eq!(without("/admin;x/y"), Some(Ok("/admin/y".into())));
        assert_eq!(without("/cars;color=red/"), Some(Ok("/cars/".into())));
        assert_eq!(without("/..;/x"), Some(Err(PathError::AboveRoot)));
    }

    #[test]
    fn segments_and_slash() {
        let path = NormalPath::parse("/a//b/./c/").expect("path");
        assert_eq!(path.segments().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(path.has_trailing_slash());
        assert_eq!(NormalPath::parse("/").expect("root").segments().count(), 0);
    }
}

//! Static files: nginx's `root` and `index`, with validators and ranges.
//!
//! The request path in seed 004 ends at nginx looking up `root /var/www/html/` and answering
//! `/` with the first of `index index.html index.htm`. [`StaticFiles`] is that lookup, done the
//! way nginx does it and no worse:
//!
//! * The path is the request's [`NormalPath`], the one routing chose the location by: decoded
//!   and normalised once, so it cannot climb above the root. Opening it, symlinks included,
//!   must stay inside the (canonical) root, or it is a 404. The client never learns whether
//!   something exists outside the root.
//! * A directory without a trailing slash is redirected (301) so relative links in its index
//!   page resolve; with the slash the first existing index file is served, and a directory
//!   with none is a 403 (there is no autoindex).
//! * Every file carries `Last-Modified` and an `ETag` in nginx's form,
//!   `"{mtime_secs_hex}-{len_hex}"`, so caches that already talked to nginx in front of the
//!   same files keep their validators. The seed's `If-Modified-Since` then answers 304
//!   without a body, and `If-None-Match` does the same with the stronger validator. The order
//!   of the checks is RFC 9110 section 13.2.2.
//! * `Range` is honoured (single ranges, and several as `multipart/byteranges`, like nginx);
//!   a malformed one is ignored, as RFC 9110 allows, and overlapping sets larger than the file
//!   are answered in full instead of amplifying the response.
//! * Bodies stream from disk in 64 KiB chunks; a file that shrinks while it is being sent
//!   ends the body with an error rather than a short response that matches its length header.
//!
//! [`error_page`] is the small HTML page the whole gateway uses for its error statuses.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::io::{self, SeekFrom};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt, future, stream};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, Take};
use tokio_util::io::ReaderStream;

use crate::body::{self, Body};
use crate::path::NormalPath;

/// Where a location's files live: nginx's `root` and `index` directives.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    /// The document root, canonical (absolute, symlinks resolved) so containment checks
    /// compare like with like.
    root: PathBuf,
    /// The root, open: files are opened relative to it with `openat2(RESOLVE_BENEATH)`.
    root_dir: Arc<std::fs::File>,
    /// Index file names tried in order for a request that names a directory.
    index: Vec<String>,
}

impl StaticFiles {
    /// Serves files below `root`, answering directory requests with the first existing file
    /// of `index` (nginx's `index index.html index.htm`).
    ///
    /// Fails if `root` does not exist or is not a directory.
    pub fn new(root: &Path, index: Vec<String>) -> io::Result<StaticFiles> {
        let root = std::fs::canonicalize(root)?;
        if !std::fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        let root_dir = Arc::new(std::fs::File::open(&root)?);
        Ok(StaticFiles {
            root,
            root_dir,
            index,
        })
    }

    /// Answers one request for a file.
    ///
    /// `path` is the request's normalised path (the whole of it, as nginx's `root` takes
    /// it); `headers` supplies the conditional (`If-*`) and `Range` fields.
    /// Only GET and HEAD are allowed; a HEAD response has GET's headers and an empty body.
    pub async fn serve(
        &self,
        method: &Method,
        path: &NormalPath<'_>,
        headers: &HeaderMap,
    ) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            let mut response = error_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Static files answer GET and HEAD only.",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let response = self.respond(path, headers).await;
        if method == Method::HEAD {
            // The headers, Content-Length included, stay those of GET.
            response.map(|_| body::empty())
        } else {
            response
        }
    }

    async fn respond(&self, path: &NormalPath<'_>, headers: &HeaderMap) -> Response<Body> {
        // The Content-Type comes from the name asked for (or the index name), like nginx, not
        // from wherever a symlink leads.
        let relative: PathBuf = path.segments().collect();
        let mut named = self.root.join(&relative);
        let (mut file, mut meta) = match self.open(&relative) {
            Ok(Some(found)) => found,
            Ok(None) => return not_found(),
            Err(response) => return *response,
        };
        if meta.is_dir() {
            if !path.has_trailing_slash() {
                // Built from the normalised path, which starts with a single `/`, so it
                // cannot become `//host` (an open redirect).
                return redirect(&format!("{}/", path.encoded()));
            }
            match self.index_file(&relative) {
                Ok(Some((index, index_file, index_meta))) => {
                    (named, file, meta) = (self.root.join(index), index_file, index_meta);
                }
                Ok(None) => {
                    return error_page(
                        StatusCode::FORBIDDEN,
                        "Directory listing is not allowed here.",
                    );
                }
                Err(response) => return *response,
            }
        }
        if !meta.is_file() {
            // Devices, FIFOs, sockets: nginx refuses them too.
            return not_found();
        }
        send_file(file, &meta, &named, content_type(&named), headers).await
    }

    /// Opens `relative` below the root, following symlinks only while they stay inside it.
    ///
    /// One `openat2(RESOLVE_BENEATH)` call does what `realpath` + a prefix check + `open`
    /// would (realpath alone costs a `readlink` per path component): the kernel refuses any
    /// step out of the root, including `..` and symlinks, and the check cannot race with
    /// the open. On kernels without openat2 (before 5.6), and for absolute symlinks, the
    /// path is resolved with canonicalize first. Validators come from the open file, so they describe the bytes
    /// we send even if the path is replaced meanwhile.
    fn open(&self, relative: &Path) -> Lookup<(std::fs::File, std::fs::Metadata)> {
        let target = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        let opened = rustix::fs::openat2(
            &*self.root_dir,
            target,
            // NONBLOCK: opening a FIFO must not wait for a writer (it is refused later).
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        );
        let file = match opened {
            Ok(fd) => std::fs::File::from(fd),
            // No openat2; or an absolute symlink, which BENEATH refuses even when it points
            // inside the root (nginx follows those): resolve it the slow way, which still
            // refuses anything outside.
            Err(rustix::io::Errno::NOSYS | rustix::io::Errno::XDEV) => {
                return self.open_resolved(&self.root.join(relative));
            }
            // Missing, a path through a file, or a loop.
            Err(
                rustix::io::Errno::NOENT
                | rustix::io::Errno::NOTDIR
                | rustix::io::Errno::LOOP
                | rustix::io::Errno::NAMETOOLONG,
            ) => return Ok(None),
            Err(errno) => {
                let error = io::Error::from(errno);
                return Err(Box::new(io_error_response(
                    &error,
                    &self.root.join(relative),
                )));
            }
        };
        match file.metadata() {
            Ok(meta) => Ok(Some((file, meta))),
            Err(error) => Err(Box::new(io_error_response(
                &error,
                &self.root.join(relative),
            ))),
        }
    }

    /// The slow way: resolve, check containment, then open.
    fn open_resolved(&self, target: &Path) -> Lookup<(std::fs::File, std::fs::Metadata)> {
        let Some((path, _)) = self.locate(target)? else {
            return Ok(None);
        };
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(OFlags::NONBLOCK.bits() as i32)
            .open(&path);
        let file = match opened {
            Ok(file) => file,
            Err(error) if is_missing(&error) => return Ok(None),
            Err(error) => return Err(Box::new(io_error_response(&error, &path))),
        };
        match file.metadata() {
            Ok(meta) => Ok(Some((file, meta))),
            Err(error) => Err(Box::new(io_error_response(&error, &path))),
        }
    }

    /// Resolves `target` through symlinks and checks that it stays inside the root.
    /// `Ok(None)` means "treat as missing".
    fn locate(&self, target: &Path) -> Lookup<(PathBuf, std::fs::Metadata)> {
        let canonical = match std::fs::canonicalize(target) {
            Ok(canonical) => canonical,
            Err(error) if is_missing(&error) => return Ok(None),
            Err(error) => return Err(Box::new(io_error_response(&error, target))),
        };
        if !canonical.starts_with(&self.root) {
            tracing::debug!(
                path = %target.display(),
                resolved = %canonical.display(),
                "static file resolves outside the root"
            );
            return Ok(None);
        }
        match std::fs::metadata(&canonical) {
            Ok(meta) => Ok(Some((canonical, meta))),
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(Box::new(io_error_response(&error, &canonical))),
        }
    }

    /// The first index file of the directory `relative` that exists and is a regular file:
    /// its path as asked for (relative to the root), the open file and its metadata.
    fn index_file(&self, relative: &Path) -> Lookup<(PathBuf, std::fs::File, std::fs::Metadata)> {
        for name in &self.index {
            if name.is_empty() || name == "/" {
                continue;
            }
            // nginx lets the last index be absolute ("index /index.html"); here a leading
            // slash means "from the root" so a config can never point outside it.
            let candidate = match name.strip_prefix('/') {
                Some(from_root) => PathBuf::from(from_root),
                None => relative.join(name),
            };
            if let Some((file, meta)) = self.open(&candidate)?
                && meta.is_file()
            {
                return Ok(Some((candidate, file, meta)));
            }
        }
        Ok(None)
    }
}

/// A small HTML page for an error (or redirect) status: the status line as title and heading,
/// then `detail` (HTML-escaped) as a paragraph. Used by the whole gateway.
pub fn error_page(status: StatusCode, detail: &str) -> Response<Body> {
    let title = match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_str()),
        None => status.as_str().to_owned(),
    };
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n"
    );
    if !detail.is_empty() {
        html.push_str("<p>");
        push_escaped(&mut html, detail);
        html.push_str("</p>\n");
    }
    html.push_str("<hr><p>mtls</p>\n</body>\n</html>\n");

    let mut response = Response::new(body::empty());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(html.len()));
    response.map(|_| body::full(html))
}

/// Read size for file bodies.
const CHUNK: usize = 64 * 1024;

/// More ranges than this in one request are answered with the whole file: real clients ask
/// for a handful, and thousands of tiny ranges only cost us per-part overhead.
const MAX_RANGES: usize = 16;

/// How the conditional headers decided.
#[derive(Debug, PartialEq, Eq)]
enum Condition {
    Proceed,
    NotModified,
    PreconditionFailed,
}

/// One satisfiable byte range, `end` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ByteRange {
    start: u64,
    end: u64,
}

impl ByteRange {
    fn len(self) -> u64 {
        self.end - self.start + 1
    }
}

/// What to do with a `Range` header.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// Malformed, or not worth honouring: send the whole file.
    Ignore,
    /// Well formed, but no range overlaps the file: 416.
    Unsatisfiable,
    /// At least one satisfiable range, in the order asked.
    Ranges(Vec<ByteRange>),
}

/// A regular file's validators, computed once.
#[derive(Debug)]
struct Validators {
    /// `"{mtime_hex}-{len_hex}"`, when the modification time is known.
    etag: Option<String>,
    /// Seconds since the epoch, the precision of an HTTP date.
    mtime: Option<u64>,
}

/// What a file lookup found: `Ok(None)` is "treat as missing"; `Err` is the response to
/// send instead (boxed: it is much larger than the rest).
type Lookup<T> = Result<Option<T>, Box<Response<Body>>>;

/// Builds the response for an open regular file.
async fn send_file(
    mut file: std::fs::File,
    meta: &std::fs::Metadata,
    path: &Path,
    content_type: HeaderValue,
    headers: &HeaderMap,
) -> Response<Body> {
    let len = meta.len();
    let mtime = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_secs());
    let validators = Validators {
        etag: mtime.map(|secs| format!("\"{secs:x}-{len:x}\"")),
        mtime,
    };

    // Sized for every header below; the values take the formatted strings without a copy.
    let mut base = HeaderMap::with_capacity(8);
    if let Some(secs) = validators.mtime {
        let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
        if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(date)) {
            base.insert(header::LAST_MODIFIED, value);
        }
    }
    if let Some(etag) = &validators.etag
        && let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(etag.clone()))
    {
        base.insert(header::ETAG, value);
    }

    match evaluate_conditions(headers, &validators) {
        Condition::Proceed => {}
        Condition::NotModified => {
            let mut response = Response::new(body::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            *response.headers_mut() = base;
            return response;
        }
        Condition::PreconditionFailed => {
            return error_page(
                StatusCode::PRECONDITION_FAILED,
                "The file does not match the request's preconditions.",
            );
        }
    }

    base.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let ranges = match single_value(headers, &header::RANGE) {
        Some(range) if if_range_holds(headers, &validators) => parse_range(range, len),
        _ => RangeRequest::Ignore,
    };

    let mut response = Response::new(body::empty());
    match ranges {
        RangeRequest::Ignore => {
            base.insert(header::CONTENT_TYPE, content_type);
            base.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            let body = match small_body(&mut file, len) {
                Some(Ok(body)) => body,
                Some(Err(error)) => return io_error_response(&error, path),
                None => inline_body(file, len),
            };
            response = response.map(|_| body);
        }
        RangeRequest::Unsatisfiable => {
            let mut response = error_page(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "The requested range is not inside the file.",
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
        RangeRequest::Ranges(ranges) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let [range] = ranges[..] {
                if let Err(error) = std::io::Seek::seek(&mut file, SeekFrom::Start(range.start)) {
                    return io_error_response(&error, path);
                }
                let content_range = format!("bytes {}-{}/{len}", range.start, range.end);
                if let Ok(value) = HeaderValue::from_str(&content_range) {
                    base.insert(header::CONTENT_RANGE, value);
                }
                base.insert(header::CONTENT_TYPE, content_type);
                base.insert(header::CONTENT_LENGTH, HeaderValue::from(range.len()));
                let body = match small_body(&mut file, range.len()) {
                    Some(Ok(body)) => body,
                    Some(Err(error)) => return io_error_response(&error, path),
                    None => inline_body(file, range.len()),
                };
                response = response.map(|_| body);
            } else {
                let multipart = Multipart::new(&ranges, len, &content_type);
                let Ok(multipart_type) = HeaderValue::from_str(&format!(
                    "multipart/byteranges; boundary={}",
                    multipart.boundary
                )) else {
                    return internal_error(path, "multipart boundary is not a header value");
                };
                base.insert(header::CONTENT_TYPE, multipart_type);
                base.insert(
                    header::CONTENT_LENGTH,
                    HeaderValue::from(multipart.content_length()),
                );
                response = response.map(|_| multipart.into_body(File::from_std(file)));
            }
        }
    }
    *response.headers_mut() = base;
    response
}

/// RFC 9110 section 13.2.2: If-Match, else If-Unmodified-Since; then If-None-Match, else
/// If-Modified-Since. An If-Modified-Since date in the future is ignored (RFC 7232 called it
/// invalid): a client with a fast clock must not pin a stale copy in its cache.
fn evaluate_conditions(headers: &HeaderMap, validators: &Validators) -> Condition {
    let etag = validators.etag.as_deref();
    if headers.contains_key(header::IF_MATCH) {
        if !etag_list_matches(headers, &header::IF_MATCH, etag, Comparison::Strong) {
            return Condition::PreconditionFailed;
        }
    } else if let (Some(date), Some(mtime)) = (
        header_date(headers, &header::IF_UNMODIFIED_SINCE),
        validators.mtime,
    ) && mtime > date
    {
        return Condition::PreconditionFailed;
    }

    if headers.contains_key(header::IF_NONE_MATCH) {
        if etag_list_matches(headers, &header::IF_NONE_MATCH, etag, Comparison::Weak) {
            return Condition::NotModified;
        }
    } else if let (Some(date), Some(mtime)) = (
        header_date(headers, &header::IF_MODIFIED_SINCE),
        validators.mtime,
    ) && mtime <= date
        && date <= now_secs()
    {
        return Condition::NotModified;
    }
    Condition::Proceed
}

/// Whether `If-Range` (if any) lets the `Range` header apply: a strong entity tag equal to
/// ours, or a date equal to our Last-Modified. Anything else means "send it all".
fn if_range_holds(headers: &HeaderMap, validators: &Validators) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return match (parse_etag_list(value), validators.etag.as_deref()) {
            (Some(EtagList::Tags(tags)), Some(ours)) => {
                tags.len() == 1 && tags[0].matches(ours, Comparison::Strong)
            }
            _ => false,
        };
    }
    match (parse_date(value), validators.mtime) {
        (Some(date), Some(mtime)) => date == mtime,
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Strong,
    Weak,
}

#[derive(Debug)]
enum EtagList<'a> {
    Any,
    Tags(Vec<EntityTag<'a>>),
}

#[derive(Debug)]
struct EntityTag<'a> {
    weak: bool,
    /// With its double quotes, as in our own `ETag` value.
    quoted: &'a str,
}

impl EntityTag<'_> {
    fn matches(&self, ours: &str, comparison: Comparison) -> bool {
        // Ours is always strong, so only the other side's weakness matters.
        (comparison == Comparison::Weak || !self.weak) && self.quoted == ours
    }
}

/// Whether any instance of an entity-tag list header (`If-Match`, `If-None-Match`) matches our
/// tag. A malformed list matches nothing: If-Match then fails, If-None-Match sends the file.
fn etag_list_matches(
    headers: &HeaderMap,
    name: &header::HeaderName,
    ours: Option<&str>,
    comparison: Comparison,
) -> bool {
    headers.get_all(name).iter().any(|value| {
        match value.to_str().ok().and_then(parse_etag_list) {
            // "*" matches any current representation, and we only get here with a file.
            Some(EtagList::Any) => true,
            Some(EtagList::Tags(tags)) => {
                ours.is_some_and(|ours| tags.iter().any(|tag| tag.matches(ours, comparison)))
            }
            None => false,
        }
    })
}

/// `*` or `#entity-tag` (RFC 9110 section 8.8.3); `None` if malformed.
fn parse_etag_list(value: &str) -> Option<EtagList<'_>> {
    let value = value.trim();
    if value == "*" {
        return Some(EtagList::Any);
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (weak, tail) = match rest.strip_prefix("W/") {
            Some(tail) => (true, tail),
            None => (false, rest),
        };
        let inner = tail.strip_prefix('"')?;
        let close = inner.find('"')?;
        let quoted = tail.get(..close + 2)?;
        if !quoted[1..quoted.len() - 1]
            .bytes()
            .all(|byte| byte == 0x21 || (0x23..=0x7e).contains(&byte) || byte >= 0x80)
        {
            return None;
        }
        tags.push(EntityTag { weak, quoted });
        rest = &tail[close + 2..];
        // Tags are separated by commas (with optional whitespace), nothing else.
        let after = rest.trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with(',')) {
            return None;
        }
    }
    if tags.is_empty() {
        None
    } else {
        Some(EtagList::Tags(tags))
    }
}

/// The current time in seconds since the epoch.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// An HTTP date header as seconds since the epoch; absent or invalid dates are ignored.
fn header_date(headers: &HeaderMap, name: &header::HeaderName) -> Option<u64> {
    parse_date(single_value(headers, name)?)
}

fn parse_date(value: &str) -> Option<u64> {
    let time = httpdate::parse_http_date(value.trim()).ok()?;
    time.duration_since(UNIX_EPOCH)
        .ok()
        .map(|since| since.as_secs())
}

/// The value of a header that must appear once; several instances count as none.
fn single_value<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

/// Parses `Range: bytes=...` against a file of `len` bytes (RFC 9110 section 14.1).
fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some((unit, set)) = value.split_once('=') else {
        return RangeRequest::Ignore;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Ignore;
    }
    let specs: Vec<&str> = set
        .split(',')
        .map(|spec| spec.trim_matches([' ', '\t']))
        .filter(|spec| !spec.is_empty())
        .collect();
    if specs.is_empty() || specs.len() > MAX_RANGES {
        return RangeRequest::Ignore;
    }
    let mut ranges = Vec::new();
    for spec in specs {
        let Some((first, last)) = spec.split_once('-') else {
            return RangeRequest::Ignore;
        };
        let range = if first.is_empty() {
            // bytes=-n: the last n bytes.
            let Some(suffix) = parse_digits(last) else {
                return RangeRequest::Ignore;
            };
            (suffix > 0 && len > 0).then(|| ByteRange {
                start: len.saturating_sub(suffix),
                end: len - 1,
            })
        } else {
            let Some(start) = parse_digits(first) else {
                return RangeRequest::Ignore;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match parse_digits(last) {
                    Some(end) if end >= start => end,
                    // last < first makes the whole header invalid, not just unsatisfiable.
                    _ => return RangeRequest::Ignore,
                }
            };
            (start < len).then(|| ByteRange {
                start,
                end: end.min(len - 1),
            })
        };
        ranges.extend(range);
    }
    if ranges.is_empty() {
        return RangeRequest::Unsatisfiable;
    }
    // Like nginx: overlapping ranges adding up to more than the file get the file once.
    let total = ranges
        .iter()
        .fold(0u64, |total, range| total.saturating_add(range.len()));
    if ranges.len() > 1 && total > len {
        return RangeRequest::Ignore;
    }
    RangeRequest::Ranges(ranges)
}

/// ASCII digits as a number; more than fits in a u64 saturates (it is past any file's end).
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// A `multipart/byteranges` body: one part per range, each with its own Content-Range.
#[derive(Debug)]
struct Multipart {
    boundary: String,
    /// Each part's header block and its range.
    parts: Vec<(Bytes, ByteRange)>,
    closing: Bytes,
}

impl Multipart {
    fn new(ranges: &[ByteRange], len: u64, content_type: &HeaderValue) -> Multipart {
        let boundary = random_boundary();
        let content_type = content_type.to_str().unwrap_or("application/octet-stream");
        let parts = ranges
            .iter()
            .map(|range| {
                let head = format!(
                    "\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\
                     Content-Range: bytes {}-{}/{len}\r\n\r\n",
                    range.start, range.end
                );
                (Bytes::from(head), *range)
            })
            .collect();
        let closing = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        Multipart {
            boundary,
            parts,
            closing,
        }
    }

    fn content_length(&self) -> u64 {
        self.parts
            .iter()
            .map(|(head, range)| head.len() as u64 + range.len())
            .sum::<u64>()
            + self.closing.len() as u64
    }

    fn into_body(self, file: File) -> Body {
        let file = Arc::new(file);
        let parts = stream::iter(self.parts).flat_map(move |(head, range)| {
            let file = Arc::clone(&file);
            // Each part reads through its own handle, seeking absolutely, so the parts never
            // depend on where the previous one left the shared file offset.
            let data = stream::once(async move {
                let mut part = file.try_clone().await?;
                part.seek(SeekFrom::Start(range.start)).await?;
                Ok::<_, io::Error>(ExactStream::new(part, range.len()))
            })
            .try_flatten();
            stream::once(future::ready(Ok(head))).chain(data)
        });
        let body = parts.chain(stream::once(future::ready(Ok(self.closing))));
        BodyExt::boxed(StreamBody::new(body.map_ok(Frame::data)))
    }
}

/// A boundary no file is likely to contain: 128 random bits. `RandomState` is seeded from
/// the OS, which saves a dependency on a random number crate for this one use.
fn random_boundary() -> String {
    let mut boundary = String::with_capacity(32);
    for _ in 0..2 {
        let _ = write!(boundary, "{:016x}", RandomState::new().hash_one(0u8));
    }
    boundary
}

/// Streams the next `len` bytes of `file` (already positioned).
/// A body of at most one chunk, read now: for a small file on a local disk (in the page
/// cache, as a served file almost always is), open + fstat + read are a few microseconds,
/// while handing each of them to tokio's blocking pool costs a thread switch apiece. nginx
/// makes the same trade (blocking file I/O in the event loop unless `aio threads`). Larger
/// bodies stream through tokio's file, chunk by chunk. `None` means "stream it".
fn small_body(file: &mut std::fs::File, len: u64) -> Option<io::Result<Body>> {
    let small = usize::try_from(len).ok().filter(|&n| n <= CHUNK)?;
    let mut buffer = Vec::with_capacity(small);
    let read = std::io::Read::read_to_end(&mut std::io::Read::take(&mut *file, len), &mut buffer);
    Some(match read {
        Ok(n) if n == small => Ok(body::full(buffer)),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file shrank while it was being read",
        )),
        Err(error) => Err(error),
    })
}

/// A larger file, read chunk by chunk as hyper asks for the next one, on the runtime thread
/// (the trade [`small_body`] explains; nginx's default too). A chunk is a few microseconds
/// from the page cache; a trip to tokio's blocking pool per chunk cost more than that.
fn inline_body(file: std::fs::File, len: u64) -> Body {
    BodyExt::boxed(InlineFile {
        file,
        remaining: len,
        buffer: BytesMut::new(),
    })
}

/// See [`inline_body`]. Fails (rather than sending a short body) if the file shrinks.
#[derive(Debug)]
struct InlineFile {
    file: std::fs::File,
    remaining: u64,
    /// Chunks are split off this buffer; once hyper has sent one and dropped it, the next
    /// `reserve` takes the same memory back. A fresh 64 KiB allocation per chunk made glibc
    /// grow and trim its heap (a `brk` and fresh zeroed pages per chunk) — a third of the
    /// CPU of a download on a single-threaded runtime.
    buffer: BytesMut,
}

impl http_body::Body for InlineFile {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = usize::try_from(this.remaining.min(CHUNK as u64)).unwrap_or(CHUNK);
        this.buffer.reserve(n);
        this.buffer.resize(n, 0);
        match std::io::Read::read_exact(&mut this.file, &mut this.buffer[..n]) {
            Ok(()) => {
                this.remaining -= n as u64;
                let chunk = this.buffer.split_to(n).freeze();
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Err(error) => {
                this.remaining = 0;
                let error = if error.kind() == io::ErrorKind::UnexpectedEof {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while it was being sent",
                    )
                } else {
                    error
                };
                Poll::Ready(Some(Err(error)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// Exactly `len` bytes of a file in chunks of up to [`CHUNK`]; an error instead of a silent
/// short body if the file ends early (it was truncated after we sent Content-Length).
#[derive(Debug)]
struct ExactStream {
    inner: ReaderStream<Take<File>>,
    remaining: u64,
    done: bool,
}

impl ExactStream {
    fn new(file: File, len: u64) -> ExactStream {
        let capacity = usize::try_from(len).map_or(CHUNK, |len| len.clamp(1, CHUNK));
        ExactStream {
            inner: ReaderStream::with_capacity(file.take(len), capacity),
            remaining: len,
            done: false,
        }
    }
}

impl Stream for ExactStream {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.done = true;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                this.done = true;
                if this.remaining > 0 {
                    Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while it was being sent",
                    ))))
                } else {
                    Poll::Ready(None)
                }
            }
        }
    }
}

/// The Content-Type for a file name: mime_guess, text types marked UTF-8, and nginx's
/// `default_type application/octet-stream` for the rest.
/// The Content-Type for a file name, remembered per extension: mime_guess's table lookup
/// and the formatting cost more than the rest of a small file's headers together.
fn content_type(path: &Path) -> HeaderValue {
    static BY_EXTENSION: std::sync::OnceLock<std::sync::RwLock<HashMap<String, HeaderValue>>> =
        std::sync::OnceLock::new();
    let Some(extension) = path.extension().and_then(|e| e.to_str()) else {
        return guess_content_type(path);
    };
    let cache = BY_EXTENSION.get_or_init(Default::default);
    if let Ok(known) = cache.read()
        && let Some(value) = known.get(extension)
    {
        return value.clone();
    }
    let value = guess_content_type(path);
    // Only files that exist get here, so the names on disk bound the map; cap it anyway.
    if let Ok(mut known) = cache.write()
        && known.len() < 1024
    {
        known.insert(extension.to_owned(), value.clone());
    }
    value
}

fn guess_content_type(path: &Path) -> HeaderValue {
    let Some(mime) = mime_guess::from_path(path).first() else {
        return HeaderValue::from_static("application/octet-stream");
    };
    let textual =
        mime.type_() == mime_guess::mime::TEXT || mime.essence_str() == "application/javascript";
    let value = if textual && mime.get_param(mime_guess::mime::CHARSET).is_none() {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::InvalidFilename
    )
}

/// nginx's mapping: missing -> 404, permission denied -> 403, anything else -> 500.
fn io_error_response(error: &io::Error, path: &Path) -> Response<Body> {
    if is_missing(error) {
        return not_found();
    }
    if error.kind() == io::ErrorKind::PermissionDenied {
        tracing::debug!(path = %path.display(), %error, "static file forbidden");
        return error_page(
            StatusCode::FORBIDDEN,
            "You do not have permission to read this file.",
        );
    }
    internal_error(path, &error.to_string())
}

fn internal_error(path: &Path, reason: &str) -> Response<Body> {
    tracing::warn!(path = %path.display(), reason, "static file failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The file could not be read.",
    )
}

fn not_found() -> Response<Body> {
    error_page(StatusCode::NOT_FOUND, "The requested file was not found.")
}

fn redirect(location: &str) -> Response<Body> {
    let Ok(value) = HeaderValue::from_str(location) else {
        return internal_error(Path::new(location), "redirect is not a header value");
    };
    let mut response = error_page(StatusCode::MOVED_PERMANENTLY, "");
    response.headers_mut().insert(header::LOCATION, value);
    response
}

/// `text` with `& < > " '` replaced by entities, for anything that goes into HTML.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text);
    out
}

fn push_escaped(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::header::HeaderName;
    use tempfile::TempDir;

    use super::*;

    struct Site {
        dir: TempDir,
        files: StaticFiles,
    }

    const HELLO: &str = "hello, mutual tls\n";

    fn site() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("www");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::create_dir_all(root.join("empty")).expect("mkdir");
        std::fs::create_dir_all(root.join("a b")).expect("mkdir");
        std::fs::write(root.join("index.html"), "<h1>home</h1>").expect("write");
        std::fs::write(root.join("hello.txt"), HELLO).expect("write");
        std::fs::write(root.join("sub/index.htm"), "sub index").expect("write");
        std::fs::write(root.join("sub/page.html"), "sub page").expect("write");
        std::fs::write(dir.path().join("secret.txt"), "outside").expect("write");
        let files = StaticFiles::new(&root, vec!["index.html".to_owned(), "index.htm".to_owned()])
            .expect("root");
        Site { dir, files }
    }

    impl Site {
        fn root(&self) -> PathBuf {
            self.dir.path().join("www")
        }

        async fn request(
            &self,
            method: Method,
            path: &str,
            headers: &[(&str, &str)],
        ) -> (StatusCode, HeaderMap, Bytes) {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(
                    HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    HeaderValue::from_str(value).expect("value"),
                );
            }
            // The handler's part: the path is normalised first, and refused with a 400.
            let Ok(path) = NormalPath::parse(path) else {
                return (StatusCode::BAD_REQUEST, HeaderMap::new(), Bytes::new());
            };
            let response = self.files.serve(&method, &path, &map).await;
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.expect("body").to_bytes();
            (parts.status, parts.headers, bytes)
        }

        async fn get(
            &self,
            path: &str,
            headers: &[(&str, &str)],
        ) -> (StatusCode, HeaderMap, Bytes) {
            self.request(Method::GET, path, headers).await
        }

        async fn etag(&self, path: &str) -> String {
            let (_, headers, _) = self.get(path, &[]).await;
            header_str(&headers, header::ETAG).to_owned()
        }
    }

    fn header_str(headers: &HeaderMap, name: HeaderName) -> &str {
        headers
            .get(&name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    #[test]
    fn new_rejects_missing_root_and_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(StaticFiles::new(&dir.path().join("nope"), vec![]).is_err());
        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        assert!(StaticFiles::new(&file, vec![]).is_err());
    }

    #[tokio::test]
    async fn serves_a_file_with_validators() {
        let site = site();
        let (status, headers, body) = site.get("/hello.txt", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, HELLO);
        assert_eq!(
            header_str(&headers, header::CONTENT_TYPE),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            header_str(&headers, header::CONTENT_LENGTH),
            HELLO.len().to_string()
        );
        assert_eq!(header_str(&headers, header::ACCEPT_RANGES), "bytes");

        let meta = std::fs::metadata(site.root().join("hello.txt")).expect("meta");
        let mtime = meta
            .modified()
            .expect("mtime")
            .duration_since(UNIX_EPOCH)
            .expect("after epoch")
            .as_secs();
        let etag = format!("\"{mtime:x}-{:x}\"", HELLO.len());
        assert_eq!(header_str(&headers, header::ETAG), etag);
        let last_modified = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(mtime));
        assert_eq!(header_str(&headers, header::LAST_MODIFIED), last_modified);
    }

    #[tokio::test]
    async fn content_types() {
        let site = site();
        let cases = [
            ("page.html", "text/html; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("data.json", "application/json"),
            ("logo.png", "image/png"),
            ("logo.svg", "image/svg+xml"),
            ("archive.tar.gz", "application/gzip"),
            ("README", "application/octet-stream"),
            ("blob.unknownext", "application/octet-stream"),
        ];
        for (name, expected) in cases {
            std::fs::write(site.root().join(name), "x").expect("write");
            let (status, headers, _) = site.get(&format!("/{name}"), &[]).await;
            assert_eq!(status, StatusCode::OK, "{name}");
            assert_eq!(
                header_str(&headers, header::CONTENT_TYPE),
                expected,
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn index_files_in_order() {
        let site = site();
        let (status, headers, body) = site.get("/", &[]).await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"<h1>home</h1>"[..]));
        assert_eq!(
            header_str(&headers, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        // index.html is missing in sub/, so the second name is used.
        let (status, _, body) = site.get("/sub/", &[]).await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"sub index"[..]));
        // "." and ".." segments that stay inside the root are normalised away.
        let (status, _, body) = site.get("/sub/./../sub/.", &[]).await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"sub index"[..]));
    }

    #[tokio::test]
    async fn index_may_not_point_outside_the_root() {
        let site = site();
        let files = StaticFiles::new(&site.root(), vec!["../secret.txt".to_owned()]).expect("root");
        let response = files
            .serve(
                &Method::GET,
                &NormalPath::parse("/").expect("path"),
                &HeaderMap::new(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let files = StaticFiles::new(&site.root(), vec!["/hello.txt".to_owned()]).expect("root");
        let response = files
            .serve(
                &Method::GET,
                &NormalPath::parse("/sub/").expect("path"),
                &HeaderMap::new(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn directory_without_slash_redirects() {
        let site = site();
        let (status, headers, _) = site.get("/sub", &[]).await;
        assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(header_str(&headers, header::LOCATION), "/sub/");
        let (_, headers, _) = site.get("/a%20b", &[]).await;
        assert_eq!(header_str(&headers, header::LOCATION), "/a%20b/");
        // Never a protocol-relative "//host/" redirect.
        let (_, headers, _) = site.get("//sub", &[]).await;
        assert_eq!(header_str(&headers, header::LOCATION), "/sub/");
    }

    #[tokio::test]
    async fn directory_without_index_is_forbidden() {
        let site = site();
        let (status, headers, body) = site.get("/empty/", &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            header_str(&headers, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert!(String::from_utf8_lossy(&body).contains("403 Forbidden"));
    }

    #[tokio::test]
    async fn missing_is_not_found() {
        let site = site();
        for path in ["/nope.txt", "/hello.txt/more", "/sub/nope/", "/nope/"] {
            let (status, _, _) = site.get(path, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
        let long = format!("/{}", "x".repeat(5000));
        assert_eq!(site.get(&long, &[]).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn traversal_is_refused() {
        let site = site();
        for path in [
            "/../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E/secret.txt",
            "/..%2fsecret.txt",
            "/sub/..%2f..%2fsecret.txt",
            "/sub/../../secret.txt",
            "/.%2e/secret.txt",
        ] {
            let (status, _, body) = site.get(path, &[]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
            assert!(
                !String::from_utf8_lossy(&body).contains("outside"),
                "{path}"
            );
        }
        // An encoded slash is refused: decoding it would create a separator that the
        // router never saw.
        let (status, _, _) = site.get("/sub%2fpage.html", &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn bad_encodings_are_bad_requests() {
        let site = site();
        for path in [
            "/%ff.txt",
            "/a%00b",
            "/%zz",
            "/trailing%",
            "/short%4",
            "hello.txt",
            "",
        ] {
            let (status, _, _) = site.get(path, &[]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path:?}");
        }
        std::fs::write(site.root().join("é.txt"), "accent").expect("write");
        let (status, _, body) = site.get("/%C3%A9.txt", &[]).await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"accent"[..]));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlinks_may_not_escape_the_root() {
        let site = site();
        let root = site.root();
        std::os::unix::fs::symlink("/etc", root.join("etc")).expect("symlink");
        std::os::unix::fs::symlink(site.dir.path().join("secret.txt"), root.join("secret.txt"))
            .expect("symlink");
        std::os::unix::fs::symlink(root.join("hello.txt"), root.join("alias.txt"))
            .expect("symlink");
        std::os::unix::fs::symlink("/etc/passwd", root.join("sub/index.html")).expect("symlink");
        for path in ["/etc/passwd", "/etc/", "/etc", "/secret.txt"] {
            let (status, _, _) = site.get(path, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
        // The escaping index.html is skipped; index.htm is next.
        let (status, _, body) = site.get("/sub/", &[]).await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"sub index"[..]));
        // Symlinks that stay inside the root are followed.
        let (status, _, body) = site.get("/alias.txt", &[]).await;
        assert_eq!((status, &body[..]), (StatusCode::OK, HELLO.as_bytes()));
        // ... and the type comes from the name asked for, as in nginx.
        std::os::unix::fs::symlink(root.join("index.html"), root.join("home.bin"))
            .expect("symlink");
        let (_, headers, _) = site.get("/home.bin", &[]).await;
        assert_eq!(
            header_str(&headers, header::CONTENT_TYPE),
            "application/octet-stream"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn unreadable_is_forbidden() {
        use std::os::unix::fs::PermissionsExt;
        let site = site();
        let path = site.root().join("locked.txt");
        std::fs::write(&path, "locked").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        if std::fs::File::open(&path).is_ok() {
            return; // running as root: permissions do not apply
        }
        let (status, _, _) = site.get("/locked.txt", &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn fifo_is_not_served() {
        let site = site();
        let fifo = site.root().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|status| status.success()) {
            return;
        }
        let (status, _, _) = site.get("/pipe", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn head_has_get_headers_and_no_body() {
        let site = site();
        let (get_status, get_headers, _) = site.get("/hello.txt", &[]).await;
        let (status, headers, body) = site.request(Method::HEAD, "/hello.txt", &[]).await;
        assert_eq!(status, get_status);
        assert_eq!(headers, get_headers);
        assert!(body.is_empty());
        assert_eq!(
            header_str(&headers, header::CONTENT_LENGTH),
            HELLO.len().to_string()
        );
        let (status, headers, body) = site.request(Method::HEAD, "/nope", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_ne!(header_str(&headers, header::CONTENT_LENGTH), "0");
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn other_methods_are_not_allowed() {
        let site = site();
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            let (status, headers, _) = site.request(method, "/hello.txt", &[]).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(header_str(&headers, header::ALLOW), "GET, HEAD");
        }
    }

    #[tokio::test]
    async fn if_none_match_gives_304() {
        let site = site();
        let etag = site.etag("/hello.txt").await;
        let weak = format!("W/{etag}");
        let listed = format!("\"other\", {etag}");
        for value in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
            let (status, headers, body) = site.get("/hello.txt", &[("if-none-match", value)]).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{value}");
            assert_eq!(header_str(&headers, header::ETAG), etag);
            assert!(headers.contains_key(header::LAST_MODIFIED));
            assert!(!headers.contains_key(header::CONTENT_LENGTH));
            assert!(body.is_empty());
        }
        for value in ["\"other\"", "garbage", "\"unterminated"] {
            let (status, _, _) = site.get("/hello.txt", &[("if-none-match", value)]).await;
            assert_eq!(status, StatusCode::OK, "{value}");
        }
        // Index files have validators too.
        let etag = site.etag("/").await;
        let (status, _, _) = site.get("/", &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
    }

    #[tokio::test]
    async fn if_modified_since_gives_304() {
        let site = site();
        let (_, headers, _) = site.get("/hello.txt", &[]).await;
        let last_modified = header_str(&headers, header::LAST_MODIFIED).to_owned();
        let (status, _, body) = site
            .get("/hello.txt", &[("if-modified-since", &last_modified)])
            .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        // A date in the future is no validator.
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        let (status, _, _) = site
            .get("/hello.txt", &[("if-modified-since", &later)])
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = site
            .get(
                "/hello.txt",
                &[("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = site
            .get("/hello.txt", &[("if-modified-since", "not a date")])
            .await;
        assert_eq!(status, StatusCode::OK);
        // If-None-Match wins over If-Modified-Since.
        let (status, _, _) = site
            .get(
                "/hello.txt",
                &[
                    ("if-none-match", "\"other\""),
                    ("if-modified-since", &last_modified),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn failed_preconditions_give_412() {
        let site = site();
        let etag = site.etag("/hello.txt").await;
        let weak = format!("W/{etag}");
        for (name, value) in [
            ("if-match", "\"other\""),
            ("if-match", weak.as_str()),
            ("if-match", "garbage"),
            ("if-unmodified-since", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ] {
            let (status, _, _) = site.get("/hello.txt", &[(name, value)]).await;
            assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{name}: {value}");
        }
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        for (name, value) in [
            ("if-match", etag.as_str()),
            ("if-match", "*"),
            ("if-unmodified-since", later.as_str()),
        ] {
            let (status, _, _) = site.get("/hello.txt", &[(name, value)]).await;
            assert_eq!(status, StatusCode::OK, "{name}: {value}");
        }
        // If-Match is checked before If-None-Match.
        let (status, _, _) = site
            .get(
                "/hello.txt",
                &[("if-match", "\"other\""), ("if-none-match", &etag)],
            )
            .await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    }

    #[tokio::test]
    async fn single_ranges() {
        let site = site();
        let len = HELLO.len();
        let cases = [
            ("bytes=0-4", "hello", format!("bytes 0-4/{len}")),
            (
                "bytes=7-",
                &HELLO[7..],
                format!("bytes 7-{}/{len}", len - 1),
            ),
            (
                "bytes=-4",
                &HELLO[len - 4..],
                format!("bytes {}-{}/{len}", len - 4, len - 1),
            ),
            ("bytes=-1000", HELLO, format!("bytes 0-{}/{len}", len - 1)),
            (
                "bytes=5-100000",
                &HELLO[5..],
                format!("bytes 5-{}/{len}", len - 1),
            ),
            ("Bytes = 0-0 ", "h", format!("bytes 0-0/{len}")),
            (
                "bytes=0-99999999999999999999999",
                HELLO,
                format!("bytes 0-{}/{len}", len - 1),
            ),
        ];
        for (range, expected, content_range) in cases {
            let (status, headers, body) = site.get("/hello.txt", &[("range", range)]).await;
            assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
            assert_eq!(body, expected.as_bytes(), "{range}");
            assert_eq!(
                header_str(&headers, header::CONTENT_RANGE),
                content_range,
                "{range}"
            );
            assert_eq!(
                header_str(&headers, header::CONTENT_LENGTH),
                expected.len().to_string(),
                "{range}"
            );
            assert_eq!(
                header_str(&headers, header::CONTENT_TYPE),
                "text/plain; charset=utf-8"
            );
        }
        let (status, headers, body) = site
            .request(Method::HEAD, "/hello.txt", &[("range", "bytes=0-4")])
            .await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(header_str(&headers, header::CONTENT_LENGTH), "5");
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn unsatisfiable_ranges_give_416() {
        let site = site();
        let len = HELLO.len();
        for range in [
            format!("bytes={len}-"),
            "bytes=1000-2000".to_owned(),
            "bytes=-0".to_owned(),
        ] {
            let (status, headers, _) = site.get("/hello.txt", &[("range", &range)]).await;
            assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
            assert_eq!(
                header_str(&headers, header::CONTENT_RANGE),
                format!("bytes */{len}")
            );
        }
        std::fs::write(site.root().join("empty.txt"), "").expect("write");
        let (status, _, _) = site.get("/empty.txt", &[("range", "bytes=0-")]).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    }

    #[tokio::test]
    async fn malformed_ranges_are_ignored() {
        let site = site();
        for range in [
            "bytes=5-2",
            "items=0-1",
            "bytes=abc",
            "bytes=1",
            "bytes=",
            "bytes=--1",
            "bytes=0-1-2",
            "bytes=+1-2",
            "0-4",
        ] {
            let (status, headers, body) = site.get("/hello.txt", &[("range", range)]).await;
            assert_eq!(status, StatusCode::OK, "{range}");
            assert_eq!(body, HELLO, "{range}");
            assert!(!headers.contains_key(header::CONTENT_RANGE), "{range}");
        }
        // Two Range fields are as good as none.
        let (status, _, _) = site
            .get(
                "/hello.txt",
                &[("range", "bytes=0-1"), ("range", "bytes=2-3")],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn if_range() {
        let site = site();
        let (_, headers, _) = site.get("/hello.txt", &[]).await;
        let etag = header_str(&headers, header::ETAG).to_owned();
        let last_modified = header_str(&headers, header::LAST_MODIFIED).to_owned();
        let weak = format!("W/{etag}");
        for if_range in [etag.as_str(), last_modified.as_str()] {
            let (status, _, body) = site
                .get(
                    "/hello.txt",
                    &[("range", "bytes=0-4"), ("if-range", if_range)],
                )
                .await;
            assert_eq!(
                (status, &body[..]),
                (StatusCode::PARTIAL_CONTENT, &b"hello"[..])
            );
        }
        for stale in [
            "\"1-2\"",
            weak.as_str(),
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "garbage",
        ] {
            let (status, _, body) = site
                .get("/hello.txt", &[("range", "bytes=0-4"), ("if-range", stale)])
                .await;
            assert_eq!(
                (status, &body[..]),
                (StatusCode::OK, HELLO.as_bytes()),
                "{stale}"
            );
        }
    }

    #[tokio::test]
    async fn multiple_ranges_are_multipart() {
        let site = site();
        let len = HELLO.len();
        let (status, headers, body) = site.get("/hello.txt", &[("range", "bytes=0-4, -4")]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        let content_type = header_str(&headers, header::CONTENT_TYPE);
        let boundary = content_type
            .strip_prefix("multipart/byteranges; boundary=")
            .expect("multipart");
        assert_eq!(boundary.len(), 32);
        let expected = format!(
            "\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Range: bytes 0-4/{len}\r\n\r\nhello\
             \r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Range: bytes {}-{}/{len}\r\n\r\n{}\
             \r\n--{boundary}--\r\n",
            len - 4,
            len - 1,
            &HELLO[len - 4..]
        );
        assert_eq!(String::from_utf8_lossy(&body), expected);
        assert_eq!(
            header_str(&headers, header::CONTENT_LENGTH),
            body.len().to_string()
        );
        assert!(!headers.contains_key(header::CONTENT_RANGE));

        // One satisfiable range among unsatisfiable ones is a plain 206.
        let (status, headers, body) = site
            .get("/hello.txt", &[("range", "bytes=1000-, 0-4")])
            .await;
        assert_eq!(
            (status, &body[..]),
            (StatusCode::PARTIAL_CONTENT, &b"hello"[..])
        );
        assert_eq!(
            header_str(&headers, header::CONTENT_RANGE),
            format!("bytes 0-4/{len}")
        );

        // Overlaps adding up to more than the file, or too many ranges: the whole file.
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        for range in ["bytes=0-, 0-", many.as_str()] {
            let (status, _, body) = site.get("/hello.txt", &[("range", range)]).await;
            assert_eq!((status, &body[..]), (StatusCode::OK, HELLO.as_bytes()));
        }
    }

    #[tokio::test]
    async fn big_file_streams_intact() {
        let site = site();
        let data: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(site.root().join("big.bin"), &data).expect("write");
        let response = site
            .files
            .serve(
                &Method::GET,
                &NormalPath::parse("/big.bin").expect("path"),
                &HeaderMap::new(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header_str(response.headers(), header::CONTENT_LENGTH),
            data.len().to_string()
        );
        let mut body = response.into_body();
        let mut received = Vec::new();
        let mut chunks = 0;
        while let Some(frame) = body.frame().await {
            let chunk = frame.expect("frame").into_data().expect("data");
            assert!(chunk.len() <= CHUNK);
            received.extend_from_slice(&chunk);
            chunks += 1;
        }
        assert!(chunks >= 16, "{chunks} chunks");
        assert!(received == data);

        let (status, _, body) = site
            .get("/big.bin", &[("range", "bytes=1000000-1000009, 5-6")])
            .await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("Content-Range: bytes 1000000-1000009/1048576"));
        assert!(body.contains("Content-Range: bytes 5-6/1048576"));
    }

    #[tokio::test]
    async fn shrinking_file_ends_the_body_with_an_error() {
        let site = site();
        let path = site.root().join("shrink.bin");
        std::fs::write(&path, vec![7u8; 200_000]).expect("write");
        let response = site
            .files
            .serve(
                &Method::GET,
                &NormalPath::parse("/shrink.bin").expect("path"),
                &HeaderMap::new(),
            )
            .await;
        std::fs::write(&path, vec![7u8; 10]).expect("truncate");
        assert!(response.into_body().collect().await.is_err());
    }

    #[test]
    fn error_page_escapes_detail() {
        let response = error_page(StatusCode::NOT_FOUND, "<script>&\"'");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            header_str(response.headers(), header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        let body = futures_util::FutureExt::now_or_never(response.into_body().collect())
            .expect("ready")
            .expect("body")
            .to_bytes();
        let html = String::from_utf8_lossy(&body);
        assert!(html.contains("<title>404 Not Found</title>"));
        assert!(html.contains("&lt;script&gt;&amp;&quot;&#39;"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn range_parsing() {
        let range = |start, end| ByteRange { start, end };
        assert_eq!(
            parse_range("bytes=0-0", 1),
            RangeRequest::Ranges(vec![range(0, 0)])
        );
        assert_eq!(
            parse_range("bytes=-5", 3),
            RangeRequest::Ranges(vec![range(0, 2)])
        );
        assert_eq!(parse_range("bytes=0-", 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-1", 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=3-1", 10), RangeRequest::Ignore);
        assert_eq!(
            parse_range("bytes=0-1,,4-5", 10),
            RangeRequest::Ranges(vec![range(0, 1), range(4, 5)])
        );
    }

    #[test]
    fn etag_list_parsing() {
        assert!(matches!(parse_etag_list(" * "), Some(EtagList::Any)));
        let Some(EtagList::Tags(tags)) = parse_etag_list("W/\"a,b\" , \"c\"") else {
            panic!("tags");
        };
        assert_eq!(tags.len(), 2);
        assert!(tags[0].weak && tags[0].quoted == "\"a,b\"");
        assert!(!tags[1].weak && tags[1].quoted == "\"c\"");
        for bad in ["", "abc", "\"a\" \"b\"", "\"a", "W/", "\"a b\"", "*, \"a\""] {
            assert!(parse_etag_list(bad).is_none(), "{bad}");
        }
    }
}

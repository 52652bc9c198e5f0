//! The small HTML pages the gateway answers with: error statuses, redirects, and what the
//! client sent, always HTML-escaped on the way in.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode, Version};

use crate::body::{self, Body};

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

/// 413 for a request body over `client_max_body_size`. HTTP/1 connections are closed after
/// it (the rest of the body is not read), as nginx does.
pub(crate) fn body_too_large(limit: u64, version: Version) -> Response<Body> {
    let mut response = error_page(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "The request body is larger than this location takes ({limit} bytes, client_max_body_size)."
        ),
    );
    if version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// 408 for a request body that stalled past `client_body_timeout`; the connection is closed
/// after it, as nginx does.
pub(crate) fn body_timed_out(timeout: std::time::Duration, version: Version) -> Response<Body> {
    let mut response = error_page(
        StatusCode::REQUEST_TIMEOUT,
        &format!("The request body stopped arriving for {timeout:?} (client_body_timeout)."),
    );
    if version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
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

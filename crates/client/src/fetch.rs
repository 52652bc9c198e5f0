//! Fetch one small document over HTTP or HTTPS: a CRL from its distribution point today,
//! an OCSP response or an issuer certificate (AIA) next.
//!
//! Whatever answers is a stranger: the whole exchange has one deadline, the body a size
//! cap (checked against Content-Length before reading, and while reading), and only a 200
//! is a document. Redirects are not followed (openssl's `-crl_download` does not either);
//! the error names where it pointed. HTTPS verifies the server against the CA files given,
//! since mtls has no system root store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use mtls_tls::{ClientTlsSettings, TlsClient, UpstreamTlsError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How to fetch: a deadline, a size cap and, for HTTPS, whom to trust.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The whole exchange (DNS, connect, TLS, request, body) must end within this.
    pub timeout: Duration,
    /// The largest body accepted.
    pub max_bytes: usize,
    /// CA files that may sign an HTTPS server's certificate.
    pub trusted_ca: Vec<PathBuf>,
}

impl Default for Fetch {
    /// 10 seconds and 10 MiB: a CRL of 200,000 entries is about 7 MiB.
    fn default() -> Fetch {
        Fetch {
            timeout: Duration::from_secs(10),
            max_bytes: 10 << 20,
            trusted_ca: Vec::new(),
        }
    }
}

/// Why a fetch failed; each message is one sentence that names the URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Not an absolute http:// or https:// URL.
    #[error("{url}: {why}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The host name did not resolve.
    #[error("{url}: cannot resolve {host}: {error}")]
    Resolve {
        /// The URL.
        url: String,
        /// The host.
        host: String,
        /// The resolver's words.
        error: std::io::Error,
    },
    /// No TCP connection.
    #[error("{url}: cannot connect to {addr}: {error}")]
    Connect {
        /// The URL.
        url: String,
        /// The address tried last.
        addr: SocketAddr,
        /// The operating system's words.
        error: std::io::Error,
    },
    /// HTTPS without a CA to verify the server with, or the TLS handshake failed.
    #[error("{url}: {why}")]
    Tls {
        /// The URL.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// The HTTP exchange failed (the server closed, or sent something that is not HTTP).
    #[error("{url}: {why}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// An answer other than 200.
    #[error("{url}: the server answered {status}{}", location.as_ref().map(|l| format!(" (redirect to {l}, not followed)")).unwrap_or_default())]
    Status {
        /// The URL.
        url: String,
        /// Its status.
        status: StatusCode,
        /// Where a redirect pointed.
        location: Option<String>,
    },
    /// The body is over the cap.
    #[error("{url}: the document is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        limit: usize,
    },
    /// The deadline passed.
    #[error("{url}: no complete answer within {}", humanize(*.after))]
    Timeout {
        /// The URL.
        url: String,
        /// The deadline.
        after: Duration,
    },
}

fn humanize(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Whether `s` is an http:// or https:// URL (as opposed to a file name).
pub fn is_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// GET `url` and return the body of its 200 answer.
pub async fn fetch(url: &str, options: &Fetch) -> Result<Bytes, FetchError> {
    match tokio::time::timeout(options.timeout, exchange(url, options)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout {
            url: url.to_owned(),
            after: options.timeout,
        }),
    }
}

async fn exchange(url: &str, options: &Fetch) -> Result<Bytes, FetchError> {
    let bad = |why| FetchError::Url {
        url: url.to_owned(),
        why,
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a valid URL"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(bad("only http:// and https:// URLs can be fetched")),
    };
    let host = uri.host().ok_or_else(|| bad("the URL has no host"))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad("user names and passwords in URLs are not sent"));
    }
    if https && options.trusted_ca.is_empty() {
        return Err(FetchError::Tls {
            url: url.to_owned(),
            why: "an https URL needs a CA to verify the server with (mtls has no system root \
                  store); or fetch it over http, as CRL distribution points usually are"
                .to_owned(),
        });
    }
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = connect(url, bare_host, port).await?;
    let request = Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(header::HOST, uri.authority().map_or(host, |a| a.as_str()))
        .header(
            header::USER_AGENT,
            concat!("mtls/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())
        .map_err(|_| bad("not a valid URL"))?;
    if !https {
        return send(url, tcp, request, options.max_bytes).await;
    }
    let tls_error = |why: String| FetchError::Tls {
        url: url.to_owned(),
        why,
    };
    let client = TlsClient::build(&ClientTlsSettings {
        certificate: None,
        key: None,
        key_password_file: None,
        trusted_ca: options.trusted_ca.clone(),
        verify: true,
        protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
        ciphers: None,
        session_reuse: false,
        sni: true,
        alpn: vec![b"http/1.1".to_vec()],
        // A CRL or OCSP URL is fetched like curl fetches it: by its subjectAltName.
        common_name_fallback: false,
    })
    .map_err(|e| tls_error(e.to_string()))?;
    let (stream, _) = client
        .connect(tcp, bare_host)
        .await
        .map_err(|e: UpstreamTlsError| tls_error(e.to_string()))?;
    send(url, stream, request, options.max_bytes).await
}

async fn connect(url: &str, host: &str, port: u16) -> Result<TcpStream, FetchError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| FetchError::Resolve {
            url: url.to_owned(),
            host: host.to_owned(),
            error,
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(error) => last = Some((addr, error)),
        }
    }
    Err(match last {
        Some((addr, error)) => FetchError::Connect {
            url: url.to_owned(),
            addr,
            error,
        },
        None => FetchError::Resolve {
            url: url.to_owned(),
            host: host.to_owned(),
            error: std::io::Error::other("no address"),
        },
    })
}

async fn send<IO>(
    url: &str,
    io: IO,
    request: Request<Empty<Bytes>>,
    max_bytes: usize,
) -> Result<Bytes, FetchError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = |e: &dyn std::fmt::Display| FetchError::Http {
        url: url.to_owned(),
        why: e.to_string(),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| http(&e))?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|e| http(&e));
    let result = match response {
        Ok(response) => read(url, response, max_bytes).await,
        Err(e) => Err(e),
    };
    driver.abort();
    result
}

async fn read(
    url: &str,
    response: http::Response<hyper::body::Incoming>,
    max_bytes: usize,
) -> Result<Bytes, FetchError> {
    let status = response.status();
    if status != StatusCode::OK {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .filter(|_| status.is_redirection())
            .map(|l| l.chars().take(200).collect());
        return Err(FetchError::Status {
            url: url.to_owned(),
            status,
            location,
        });
    }
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit: max_bytes,
    };
    let declared = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_bytes as u64) {
        return Err(too_large());
    }
    match Limited::new(response.into_body(), max_bytes)
        .collect()
        .await
    {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(FetchError::Http {
            url: url.to_owned(),
            why: format!("the body was cut short: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-shot HTTP server on 127.0.0.1 that reads the request head and answers
    /// `answer`, then holds the connection open for `linger`.
    async fn answering(answer: Vec<u8>, linger: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = socket.write_all(&answer).await;
            tokio::time::sleep(linger).await;
        });
        format!("http://{addr}/crl.crl")
    }

    fn quick() -> Fetch {
        Fetch {
            timeout: Duration::from_millis(500),
            max_bytes: 100,
            trusted_ca: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_200_is_the_document() {
        let url = answering(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            Duration::ZERO,
        )
        .await;
        assert_eq!(&fetch(&url, &quick()).await.unwrap()[..], b"hello");
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused_whether_declared_or_not() {
        let declared = answering(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec(),
            Duration::from_secs(1),
        )
        .await;
        let err = fetch(&declared, &quick()).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: 100, .. }),
            "{err}"
        );
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..20 {
            chunked.extend_from_slice(b"a\r\n0123456789\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let undeclared = answering(chunked, Duration::ZERO).await;
        let err = fetch(&undeclared, &quick()).await.unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_meets_the_deadline() {
        let url = answering(Vec::new(), Duration::from_secs(5)).await;
        let started = std::time::Instant::now();
        let err = fetch(&url, &quick()).await.unwrap_err();
        assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(err.to_string().contains("within 0.5 s"), "{err}");
    }

    #[tokio::test]
    async fn redirects_and_errors_are_named_not_followed() {
        let url = answering(
            b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/crl\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
            Duration::ZERO,
        )
        .await;
        let err = fetch(&url, &quick()).await.unwrap_err().to_string();
        assert!(
            err.contains("302")
                && err.contains("http://elsewhere/crl")
                && err.contains("not followed"),
            "{err}"
        );
        let garbage = answering(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec(), Duration::ZERO).await;
        let err = fetch(&garbage, &quick()).await.unwrap_err();
        assert!(matches!(err, FetchError::Http { .. }), "{err}");
    }

    #[tokio::test]
    async fn only_http_urls_with_a_host_are_fetched() {
        for (url, words) in [
            ("ftp://x/crl", "only http:// and https://"),
            ("http://user:pw@x/crl", "passwords"),
            ("https://127.0.0.1:1/crl", "needs a CA"),
        ] {
            let err = fetch(url, &quick()).await.unwrap_err().to_string();
            assert!(err.contains(words), "{url}: {err}");
        }
        assert!(is_url("HTTP://x") && is_url("https://x") && !is_url("crl.pem"));
    }
}

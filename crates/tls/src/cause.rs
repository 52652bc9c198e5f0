//! Walking an error's chain of causes, in one place for every crate.
//!
//! hyper wraps io errors, which wrap rustls errors, which the gateway, `mtls get` and
//! `mtls bench` each need to find again: by type (`downcast_ref` on each cause), never by
//! matching the words of a message. The words are for people, and [`describe`] joins them,
//! without the documentation links some libraries append (rustls ends its "peer closed
//! connection without sending TLS close_notify" with a docs.rs URL): a library's manual says
//! nothing about the user's server.

/// `error`, then its source, then the source's source, and so on. An `io::Error` that
/// wraps another error yields it too (io's `source` is the wrapped error's source, so
/// without this the wrapped error itself would be skipped).
pub fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| next(*e))
}

fn next<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        let inner: &(dyn std::error::Error + 'static) = inner;
        return Some(inner);
    }
    error.source()
}

/// Every message of the chain, joined with `: ` (consecutive repeats once: an io error
/// displays as the error it wraps), without documentation links.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut words = String::new();
    let mut last = String::new();
    for cause in chain(error) {
        let text = without_doc_links(&cause.to_string());
        if text == last || text.is_empty() {
            continue;
        }
        if !words.is_empty() {
            words.push_str(": ");
        }
        words.push_str(&text);
        last = text;
    }
    words
}

/// `text` without its links to docs.rs, and without the `: ` that led to one at the end.
fn without_doc_links(text: &str) -> String {
    let is_link = |word: &&str| word.starts_with("https://docs.rs/");
    if !text.split(' ').any(|word| is_link(&word)) {
        return text.to_owned();
    }
    let kept: Vec<&str> = text.split(' ').filter(|word| !is_link(word)).collect();
    kept.join(" ").trim_end_matches([' ', ':']).to_owned()
}

/// The first cause of type `T` in `error`'s chain.
pub fn find<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    chain(error).find_map(|cause| cause.downcast_ref::<T>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("marker")]
    struct Marker;

    #[test]
    fn the_chain_goes_through_an_io_error_to_what_it_wraps() {
        let error = Outer(std::io::Error::other(Marker));
        assert!(find::<Marker>(&error).is_some());
        assert_eq!(describe(&error), "outer: marker");
        assert_eq!(chain(&error).count(), 3);
    }

    #[test]
    fn documentation_links_are_left_out() {
        // rustls' words for a read that met the end without close_notify.
        let error = Outer(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify: \
             https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof",
        ));
        assert_eq!(
            describe(&error),
            "outer: peer closed connection without sending TLS close_notify"
        );
        assert_eq!(without_doc_links("a: b"), "a: b");
    }

    #[test]
    fn a_plain_io_error_ends_the_chain() {
        let error = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        assert!(find::<Marker>(&error).is_none());
        assert_eq!(describe(&error), "slow");
    }
}

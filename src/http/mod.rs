//! Small HTTP helpers the hosted-API clients (GitHub, OCI registries) share: `Link` paging,
//! bounded body reads and error text without the request's address; and [`feed`], the client
//! of package feeds and indexes that serve files under one root.

pub mod feed;

use bytes::Bytes;
use futures_util::TryStreamExt;

/// The `rel="next"` target of a `Link` header (`<https://x/y?page=2>; rel="next", <...>;
/// rel="last"`), as written. Anything malformed is no next page.
pub fn next_link(header: &str) -> Option<&str> {
    let mut rest = header;
    loop {
        let (_, after_open) = rest.split_once('<')?;
        let (target, after_close) = after_open.split_once('>')?;
        // Parameters run up to the next link, which starts with `<`.
        let params = after_close
            .split('<')
            .next()
            .unwrap_or("")
            .trim_end()
            .trim_end_matches(',');
        let is_next = params.split(';').any(|param| {
            let Some((key, value)) = param.split_once('=') else {
                return false;
            };
            key.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        let target = target.trim();
        if is_next && !target.is_empty() {
            return Some(target);
        }
        rest = after_close;
    }
}

/// Why a bounded read stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The body is larger than the cap.
    #[error("an answer over {0} bytes")]
    TooBig(usize),
    /// The connection failed part-way.
    #[error("{}", describe(.0))]
    Transport(reqwest::Error),
}

/// Reads a response body of at most `cap` bytes; a larger one is an error, not a download.
pub async fn read_capped(response: reqwest::Response, cap: usize) -> Result<Bytes, ReadError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(ReadError::TooBig(cap));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.try_next().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(ReadError::TooBig(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// An error and its causes on one line, without the request's address (which may carry a
/// query the user did not write), each cause once (layers often repeat their cause's text).
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        let cause = inner.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        source = inner.source();
    }
    text
}

/// An HTTP client builder with the TLS provider installed and shipit's user agent set.
pub fn builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().user_agent(concat!("shipit/", env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_finds_rel_next_among_others() {
        let github = r#"<https://api.github.com/repositories/1/releases?page=1>; rel="prev", <https://api.github.com/repositories/1/releases?page=3>; rel="next", <https://api.github.com/repositories/1/releases?page=5>; rel="last""#;
        assert_eq!(
            next_link(github),
            Some("https://api.github.com/repositories/1/releases?page=3")
        );
        assert_eq!(
            next_link(r#"</v2/x/tags/list?n=2&last=b>; rel="next""#),
            Some("/v2/x/tags/list?n=2&last=b")
        );
        assert_eq!(next_link("</a>; rel=next"), Some("/a"));
        assert_eq!(next_link(r#"</a>; rel="last next""#), Some("/a"));
    }

    #[test]
    fn next_link_is_none_for_last_pages_and_malformed_headers() {
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="first""#), None);
        assert_eq!(next_link(r#"<>; rel="next""#), None);
        assert_eq!(next_link("<https://x/"), None);
        assert_eq!(next_link(r#"rel="next""#), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link(r#"<a>; relation="next""#), None);
    }
}

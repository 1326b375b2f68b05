//! The intake's rules for a reported URL, shared by `POST /api/v1/reports`, the staff's
//! report form and the public report form, so a URL one accepts the others accept too.

/// Why a reported URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlRefusal {
    #[error("not a valid URL ({0})")]
    Unparsable(url::ParseError),
    #[error("only http and https URLs with a host")]
    NotHttp,
    #[error("longer than {max} bytes")]
    TooLong { max: usize },
    #[error("contains a control character")]
    Control,
}

/// The URL as the intake records it (trimmed, otherwise as sent: evidence keeps what the
/// reporter sent), or why it is refused. Private and loopback addresses are accepted here:
/// whether the crawler may reach them is its SSRF guard's decision, not the intake's.
pub fn reported_url(text: &str) -> Result<&str, UrlRefusal> {
    let text = text.trim();
    let parsed = url::Url::parse(text).map_err(UrlRefusal::Unparsable)?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(UrlRefusal::NotHttp);
    }
    Ok(text)
}

/// [`reported_url`] with the forms' own limits: at most `max` bytes and no control
/// characters (the store refuses both; a form names the line instead).
pub fn form_url(text: &str, max: usize) -> Result<&str, UrlRefusal> {
    let url = reported_url(text)?;
    if url.len() > max {
        return Err(UrlRefusal::TooLong { max });
    }
    if url.chars().any(char::is_control) {
        return Err(UrlRefusal::Control);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_reported() {
        assert_eq!(
            reported_url("  https://a.example/x \n"),
            Ok("https://a.example/x")
        );
        assert_eq!(reported_url("http://10.0.0.1/"), Ok("http://10.0.0.1/"));
        assert_eq!(reported_url("ftp://a.example/"), Err(UrlRefusal::NotHttp));
        assert_eq!(
            reported_url("javascript:alert(1)"),
            Err(UrlRefusal::NotHttp)
        );
        assert!(matches!(
            reported_url("a.example"),
            Err(UrlRefusal::Unparsable(_))
        ));
        assert!(matches!(
            reported_url("http://"),
            Err(UrlRefusal::Unparsable(_))
        ));
        assert_eq!(
            form_url("https://a.example/aaaa", 20),
            Err(UrlRefusal::TooLong { max: 20 })
        );
        assert_eq!(
            form_url("https://a.example/a\u{7f}b", 100),
            Err(UrlRefusal::Control)
        );
    }
}

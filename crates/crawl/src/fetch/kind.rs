//! What a fetched body is, from its bytes: media magic first, then a light HTML check.
//!
//! Never decided by a Content-Type or an extension alone: hosts lie about both (a known photo
//! labelled `text/html`, HTML labelled `image/jpeg`).

use aranea_hash::MediaKind;

/// What a body is, judged from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// Magic bytes of a media type.
    Media(MediaKind),
    /// Text that looks like HTML.
    Html,
    /// Anything else (including empty).
    Other,
}

/// The body's type from its bytes: magic numbers first, then a light HTML check. The claimed
/// Content-Type only helps for text that is plainly not binary.
pub fn body_kind(body: &[u8], claimed_type: Option<&str>) -> BodyKind {
    if let Some(kind) = aranea_hash::sniff(body) {
        return BodyKind::Media(kind);
    }
    let head = body.get(..1024).unwrap_or(body);
    if looks_like_html(head) {
        return BodyKind::Html;
    }
    let claims_html = claimed_type.is_some_and(|t| {
        let t = t.trim_start().to_ascii_lowercase();
        t.starts_with("text/html") || t.starts_with("application/xhtml")
    });
    if claims_html && !head.is_empty() && !head.contains(&0) && head.contains(&b'<') {
        return BodyKind::Html;
    }
    BodyKind::Other
}

/// WHATWG-style sniffing: after whitespace (and a BOM), a tag that only HTML starts with.
fn looks_like_html(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let rest = head.get(start..).unwrap_or_default();
    const TAGS: [&[u8]; 17] = [
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<script",
        b"<iframe",
        b"<h1",
        b"<div",
        b"<font",
        b"<table",
        b"<a",
        b"<style",
        b"<title",
        b"<b",
        b"<body",
        b"<br",
        b"<p",
        b"<!--",
    ];
    TAGS.iter().any(|tag| {
        rest.len() > tag.len()
            && rest
                .get(..tag.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(tag))
            && rest
                .get(tag.len())
                .is_some_and(|&b| b == b' ' || b == b'>' || tag == b"<!--")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_recognised_by_its_leading_tag_not_its_label() {
        assert_eq!(body_kind(b"  <!DOCTYPE html><p>x", None), BodyKind::Html);
        assert_eq!(
            body_kind(b"<html><body>", Some("image/jpeg")),
            BodyKind::Html
        );
        assert_eq!(body_kind(b"\xEF\xBB\xBF<html>", None), BodyKind::Html);
        assert_eq!(
            body_kind(b"{\"json\": 1}", Some("text/html")),
            BodyKind::Other
        );
        assert_eq!(
            body_kind(b"\0\0<binary", Some("text/html")),
            BodyKind::Other
        );
        assert_eq!(body_kind(b"", Some("text/html")), BodyKind::Other);
        assert_eq!(body_kind(b"<abbr>x", None), BodyKind::Other);
        assert_eq!(
            body_kind(b"hello <b>x</b>", Some("text/html")),
            BodyKind::Html
        );
    }

    #[test]
    fn media_magic_wins_over_an_html_label() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0];
        assert_eq!(
            body_kind(&jpeg, Some("text/html")),
            BodyKind::Media(MediaKind::Jpeg)
        );
    }
}

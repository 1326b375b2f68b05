//! Which character encoding a page is in, as browsers decide it: a byte-order mark, then the
//! HTTP `charset`, then a `<meta>` declaration in the first 1,024 bytes, then a statistical
//! guess (chardetng). Only decides; decoding is `encoding_rs`'s job.

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// How far into the body the `<meta>` prescan looks (the HTML standard's figure).
const PRESCAN_BYTES: usize = 1024;
/// How much of the body the statistical detector reads.
const DETECT_BYTES: usize = 64 * 1024;

/// The encoding of `body`, given the HTTP `Content-Type` it came with.
pub fn detect(body: &[u8], content_type: Option<&str>) -> &'static Encoding {
    if let Some((encoding, _)) = Encoding::for_bom(body) {
        return encoding;
    }
    if let Some(encoding) = content_type.and_then(charset_param).and_then(from_label) {
        return encoding;
    }
    let head = body.get(..PRESCAN_BYTES).unwrap_or(body);
    if let Some(encoding) = meta_charset(head).and_then(from_label) {
        return encoding;
    }
    let sample = body.get(..DETECT_BYTES).unwrap_or(body);
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(sample, sample.len() == body.len());
    detector.guess(None, Utf8Detection::Allow)
}

/// An encoding from a label, with the HTML standard's substitutions for labels a page cannot
/// truly declare in itself (UTF-16 in a meta tag means UTF-8, x-user-defined means 1252).
fn from_label(label: &[u8]) -> Option<&'static Encoding> {
    let encoding = Encoding::for_label(label)?;
    if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
        return Some(UTF_8);
    }
    if encoding == encoding_rs::X_USER_DEFINED {
        return Some(WINDOWS_1252);
    }
    Some(encoding)
}

/// The `charset=` parameter of a Content-Type value.
fn charset_param(content_type: &str) -> Option<&[u8]> {
    let lower = content_type.to_ascii_lowercase();
    let at = lower.find("charset=")?;
    let value = content_type.get(at + "charset=".len()..)?;
    let value = value.trim_start().trim_start_matches(['"', '\'']);
    let end = value
        .find(|c: char| c == ';' || c == '"' || c == '\'' || c.is_ascii_whitespace())
        .unwrap_or(value.len());
    value
        .get(..end)
        .map(str::as_bytes)
        .filter(|v| !v.is_empty())
}

/// A charset declared by `<meta charset=…>` or `<meta http-equiv … content="…charset=…">`,
/// found by a byte scan (the prescan does not need a parser).
fn meta_charset(head: &[u8]) -> Option<&[u8]> {
    let lower: Vec<u8> = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(offset) = find(lower.get(from..)?, b"<meta") {
        let start = from + offset;
        let end = lower
            .get(start..)
            .and_then(|rest| rest.iter().position(|&b| b == b'>'))
            .map_or(lower.len(), |e| start + e);
        let tag = lower.get(start..end)?;
        if let Some(at) = find(tag, b"charset=") {
            let value_start = start + at + b"charset=".len();
            let value = head.get(value_start..end)?;
            let value = trim_quotes(value);
            let len = value
                .iter()
                .position(|&b| matches!(b, b'"' | b'\'' | b';' | b' ' | b'/' | b'\t' | b'\n'))
                .unwrap_or(value.len());
            let label = value.get(..len)?;
            if !label.is_empty() {
                return Some(label);
            }
        }
        from = end;
    }
    None
}

fn trim_quotes(value: &[u8]) -> &[u8] {
    let skip = value
        .iter()
        .position(|&b| !matches!(b, b'"' | b'\'' | b' '))
        .unwrap_or(value.len());
    value.get(skip..).unwrap_or_default()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_beats_header_beats_meta_beats_guess() {
        assert_eq!(
            detect(b"\xEF\xBB\xBF<p>", Some("text/html; charset=iso-8859-2")),
            UTF_8
        );
        assert_eq!(
            detect(
                b"<meta charset=utf-8>",
                Some("text/html; charset=ISO-8859-2")
            )
            .name(),
            "ISO-8859-2"
        );
        assert_eq!(
            detect(
                b"<html><head><meta charset=\"shift_jis\">",
                Some("text/html")
            )
            .name(),
            "Shift_JIS"
        );
        assert_eq!(
            detect(
                b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1251\">",
                None
            )
            .name(),
            "windows-1251"
        );
        assert_eq!(detect(b"<meta charset=utf-16>", None), UTF_8);
    }

    #[test]
    fn unlabelled_text_is_guessed() {
        let cyrillic = encoding_rs::WINDOWS_1251
            .encode(
                "<p>Привет, как дела? Это простой текст на русском языке, довольно длинный.</p>",
            )
            .0;
        assert_eq!(detect(&cyrillic, None).name(), "windows-1251");
        assert_eq!(detect("<p>héllo wörld</p>".as_bytes(), None), UTF_8);
    }

    #[test]
    fn hostile_declarations_do_not_panic() {
        for body in [
            &b"<meta charset="[..],
            b"<meta charset=>",
            b"<meta charset=\"",
            b"<meta content=\"charset=\">",
            b"<meta",
            b"<meta charset=nonsense-encoding>",
        ] {
            let _ = detect(body, Some("text/html; charset="));
        }
        assert_eq!(detect(b"", Some("text/html; charset=\"utf-8\"")), UTF_8);
    }
}

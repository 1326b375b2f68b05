//! The two attribute syntaxes that hold several URLs: `srcset` candidate lists and CSS
//! `url(…)` references. Tolerant by design: malformed input yields fewer URLs, never a panic.

/// The URLs of a `srcset` value (`a.jpg 1x, b.jpg 2x, c.jpg 480w`), descriptors dropped.
pub fn srcset_urls(value: &str) -> Vec<&str> {
    let mut urls = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let end = rest
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let (candidate, after) = rest.split_at(end);
        // A URL ending in commas ends its candidate (no descriptors follow).
        let url = candidate.trim_end_matches(',');
        if !url.is_empty() {
            urls.push(url);
        }
        rest = if url.len() < candidate.len() {
            after
        } else {
            skip_descriptors(after)
        };
    }
    urls
}

/// Skips a candidate's descriptors up to the comma that ends it (commas inside parentheses
/// belong to the descriptor).
fn skip_descriptors(text: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => return text.get(i + 1..).unwrap_or_default(),
            _ => {}
        }
    }
    ""
}

/// The URLs in CSS `url(…)` references (quoted or not), in order.
pub fn css_urls(css: &str) -> Vec<String> {
    let mut urls = Vec::new();
    let lower = css.to_ascii_lowercase();
    let mut from = 0;
    while let Some(offset) = lower.get(from..).and_then(|rest| rest.find("url(")) {
        let start = from + offset + "url(".len();
        let Some(inner) = css.get(start..) else { break };
        let inner = inner.trim_start();
        let consumed_ws = css.len() - start - inner.len();
        let (url, used) = match inner.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let body = inner.get(1..).unwrap_or_default();
                let end = body.find(quote).unwrap_or(body.len());
                (body.get(..end).unwrap_or_default(), 1 + end + 1)
            }
            _ => {
                let end = inner.find(')').unwrap_or(inner.len());
                (inner.get(..end).unwrap_or_default().trim_end(), end)
            }
        };
        let url = url.replace("\\", "");
        if !url.is_empty() {
            urls.push(url);
        }
        from = start + consumed_ws + used.min(inner.len());
        if from >= css.len() {
            break;
        }
    }
    urls
}

/// A reference found by [`tag_soup_refs`]: `true` for media, and the raw attribute value.
pub type SoupRef<'a> = (bool, &'a str);

/// A forgiving scan for `href`/`src` attributes of link and media tags, for documents a
/// standards parser reads as nearly empty (an unclosed `<title>` or `<textarea>` swallows the
/// rest of the page as text; browsers agree, but a crawler wants the links). Comments are
/// skipped; an unterminated comment ends the scan, as it ends the document.
pub fn tag_soup_refs(html: &str) -> Vec<SoupRef<'_>> {
    let mut refs = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let Some(tag) = rest.get(open + 1..) else {
            break;
        };
        if let Some(comment) = tag.strip_prefix("!--") {
            match comment.find("-->") {
                Some(end) => rest = comment.get(end + 3..).unwrap_or_default(),
                None => break,
            }
            continue;
        }
        let name_len = tag
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(tag.len());
        let name = tag.get(..name_len).unwrap_or_default().to_ascii_lowercase();
        let end = tag.find('>').unwrap_or(tag.len());
        let attrs = tag.get(name_len..end).unwrap_or_default();
        let wanted: &[(&str, bool)] = match name.as_str() {
            "a" | "area" => &[("href", false)],
            "iframe" | "frame" => &[("src", false)],
            "img" | "video" | "source" => &[("src", true)],
            _ => &[],
        };
        for &(attr, media) in wanted {
            if let Some(value) = attribute(attrs, attr) {
                refs.push((media, value));
            }
        }
        rest = tag.get(end..).unwrap_or_default();
    }
    refs
}

/// The value of `name=` in a tag's attribute text, quoted or not.
fn attribute<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let lower = attrs.to_ascii_lowercase();
    let mut from = 0;
    while let Some(offset) = lower.get(from..)?.find(name) {
        let at = from + offset;
        from = at + name.len();
        let before_ok = at == 0
            || lower
                .as_bytes()
                .get(at - 1)
                .is_some_and(|b| b.is_ascii_whitespace() || *b == b'"' || *b == b'\'');
        let after = attrs.get(at + name.len()..)?.trim_start();
        let Some(value) = after.strip_prefix('=') else {
            continue;
        };
        if !before_ok {
            continue;
        }
        let value = value.trim_start();
        return match value.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let inner = value.get(1..)?;
                inner.get(..inner.find(quote).unwrap_or(inner.len()))
            }
            _ => value.get(
                ..value
                    .find(|c: char| c.is_ascii_whitespace())
                    .unwrap_or(value.len()),
            ),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srcset_candidates_lose_their_descriptors() {
        assert_eq!(srcset_urls("a.jpg 1x, b.jpg 2x"), ["a.jpg", "b.jpg"]);
        assert_eq!(srcset_urls("  a.jpg 480w ,b.jpg  800w"), ["a.jpg", "b.jpg"]);
        // A comma inside a URL does not split it (only trailing commas end a candidate).
        assert_eq!(srcset_urls("a.jpg,b.jpg"), ["a.jpg,b.jpg"]);
        assert_eq!(srcset_urls("a.jpg, b.jpg"), ["a.jpg", "b.jpg"]);
        assert_eq!(
            srcset_urls("https://cdn.example/img,w_300/x.jpg 300w, y.jpg 600w"),
            ["https://cdn.example/img,w_300/x.jpg", "y.jpg"]
        );
        assert_eq!(
            srcset_urls("a.jpg (max-width: 1px, 2px) 1x, b.jpg"),
            ["a.jpg", "b.jpg"]
        );
        assert!(srcset_urls("").is_empty());
        assert!(srcset_urls(" , ,, ").is_empty());
    }

    #[test]
    fn css_urls_quoted_and_bare() {
        assert_eq!(
            css_urls("background: URL( 'a.png' ) no-repeat; x: url(b.jpg); y: url(\"c d.gif\")"),
            ["a.png", "b.jpg", "c d.gif"]
        );
        assert_eq!(css_urls("url(unterminated"), ["unterminated"]);
        assert_eq!(css_urls("url('unterminated"), ["unterminated"]);
        assert!(css_urls("url()").is_empty());
        assert!(css_urls("url(").is_empty());
        assert_eq!(css_urls("url(ü.png)url(é.png)"), ["ü.png", "é.png"]);
    }

    #[test]
    fn tag_soup_finds_links_a_strict_parser_swallows() {
        let html = "<title>x<title></head><a href=/u>x</a><A HREF='/q' ><img alt=1 src=\"/i.jpg\" <b>\
            <a data-href=\"/no\" href=\"/yes\"\" class=><!-- c <a href=/c> --><iframe src=/f>\
            <!-- open <a href=/hidden>";
        assert_eq!(
            tag_soup_refs(html),
            [
                (false, "/u"),
                (false, "/q"),
                (true, "/i.jpg"),
                (false, "/yes"),
                (false, "/f")
            ]
        );
        assert!(tag_soup_refs("<a href=").iter().all(|(_, v)| v.is_empty()));
        assert!(tag_soup_refs("<<<<a").is_empty());
        assert!(tag_soup_refs("<img src='unterminated").len() == 1);
    }
}

/// Decodes the character references an attribute value may hold (`&amp;`, `&quot;`,
/// `&#38;`, `&#x26;`, …): the streaming parser hands attribute values over raw, and a link
/// written `?a=1&amp;b=2` means `?a=1&b=2`. Unknown or malformed references stay as written,
/// as browsers leave them.
pub fn decode_char_refs(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains('&') {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(rest.get(..at).unwrap_or(""));
        let tail = rest.get(at..).unwrap_or("");
        // A reference's `;` is at most 12 bytes in, so no further is searched: looking through
        // the whole rest for every `&` made a value of a million `&` cost 10^12 steps.
        let end = tail.bytes().take(13).position(|b| b == b';');
        match end.and_then(|end| {
            let name = tail.get(1..end)?;
            Some((char_ref(name)?, end + 1))
        }) {
            Some((ch, used)) => {
                out.push(ch);
                rest = tail.get(used..).unwrap_or("");
            }
            None => {
                out.push('&');
                rest = tail.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn char_ref(name: &str) -> Option<char> {
    let number = |digits: &str, radix| u32::from_str_radix(digits, radix).ok();
    let code = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        number(hex, 16)?
    } else if let Some(dec) = name.strip_prefix('#') {
        number(dec, 10)?
    } else {
        return match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => None,
        };
    };
    char::from_u32(code).filter(|c| *c != '\0')
}

#[cfg(test)]
mod char_ref_tests {
    use super::decode_char_refs;

    #[test]
    fn references_in_attribute_values_are_decoded() {
        assert_eq!(decode_char_refs("?C=M&amp;O=D"), "?C=M&O=D");
        assert_eq!(decode_char_refs("a&#38;b&#x26;c&quot;"), "a&b&c\"");
        assert_eq!(decode_char_refs("plain"), "plain");
    }

    #[test]
    fn malformed_references_stay_as_written() {
        assert_eq!(decode_char_refs("a&b=1&c"), "a&b=1&c");
        assert_eq!(decode_char_refs("&#0;&#xZZ;&bogus;&"), "&#0;&#xZZ;&bogus;&");
        assert_eq!(decode_char_refs("&#99999999999;"), "&#99999999999;");
    }
}

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
        let end = rest.find(|c: char| c.is_ascii_whitespace()).unwrap_or(rest.len());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srcset_candidates_lose_their_descriptors() {
        assert_eq!(srcset_urls("a.jpg 1x, b.jpg 2x"), ["a.jpg", "b.jpg"]);
        assert_eq!(srcset_urls("  a.jpg 480w ,b.jpg  800w"), ["a.jpg", "b.jpg"]);
        assert_eq!(srcset_urls("a.jpg,b.jpg"), ["a.jpg", "b.jpg"]);
        assert_eq!(
            srcset_urls("https://cdn.example/img,w_300/x.jpg 300w, y.jpg 600w"),
            ["https://cdn.example/img,w_300/x.jpg", "y.jpg"]
        );
        assert_eq!(srcset_urls("a.jpg (max-width: 1px, 2px) 1x, b.jpg"), ["a.jpg", "b.jpg"]);
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
}

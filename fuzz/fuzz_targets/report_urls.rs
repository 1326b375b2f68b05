//! Any text as the URLs of a report: the URL check the native intake API (`reported_url`, one
//! URL) and both report forms (`lines_to_urls` over `form_url`, one URL a line) share, exposed
//! as `aranea_server::fuzzing`. The first byte picks the form's caps (URLs per submission,
//! bytes per URL), the rest is the text (invalid UTF-8 replaced, as the form reader does).
//!
//! Checked, never a panic: an accepted URL is its line trimmed, parses as an absolute http(s)
//! URL with a host, is within the byte cap and holds no control character; the URLs come in
//! the order of their first line, each once, at least one and at most the cap. A refusal is
//! exactly: the refused non-blank lines, each named `line N: why` (N counted over every line,
//! the reason the first of unparsable, not http(s), too long, control character that holds),
//! up to 20 and then `… and maybe more`; then a count over the cap; or `no URL given` for a
//! text of blank lines. The API's check accepts exactly the lines the forms' rules accept
//! before their byte cap and control check, as the same trimmed text.
#![no_main]

use aranea_server::fuzzing::{UrlRefusal, form_url, lines_to_urls, reported_url};
use libfuzzer_sys::fuzz_target;

/// (URLs per submission, bytes per URL): the public form's default and ceiling, the staff
/// form's (`MAX_STAFF_URLS`, the store's `MAX_URL_BYTES`), and small ones the fuzzer can reach.
const CAPS: [(usize, usize); 6] = [
    (10, 2048),
    (100, 2048),
    (500, 16 * 1024),
    (1, 2048),
    (2, 24),
    (3, 40),
];
const MAX_PROBLEM_LINES: usize = 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let (max_urls, max_url_bytes) = CAPS[usize::from(selector) % CAPS.len()];
    let text = String::from_utf8_lossy(text);

    let mut expected_urls: Vec<&str> = Vec::new();
    let mut expected_problems: Vec<String> = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let why = why_refused(trimmed, max_url_bytes);
        check_single(line, trimmed, max_url_bytes, why.as_deref());
        match why {
            None if expected_urls.contains(&trimmed) => {}
            None => expected_urls.push(trimmed),
            Some(why) => expected_problems.push(format!("line {}: {why}", index + 1)),
        }
        if expected_problems.len() >= MAX_PROBLEM_LINES {
            expected_problems.push("… and maybe more".to_owned());
            break;
        }
    }
    if expected_urls.len() > max_urls {
        expected_problems.push(format!(
            "{} URLs: at most {max_urls} at once",
            expected_urls.len()
        ));
    }
    if expected_urls.is_empty() && expected_problems.is_empty() {
        expected_problems.push("no URL given".to_owned());
    }

    match lines_to_urls(&text, max_urls, max_url_bytes) {
        Ok(urls) => {
            assert!(
                expected_problems.is_empty(),
                "accepted despite {expected_problems:?}"
            );
            assert_eq!(urls, expected_urls);
            assert!(!urls.is_empty() && urls.len() <= max_urls);
            for (at, url) in urls.iter().enumerate() {
                assert!(!urls[..at].contains(url), "{url:?} twice");
                assert_acceptable(url, max_url_bytes);
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            assert_eq!(problems, expected_problems);
        }
    }
});

/// Why the forms refuse a trimmed, non-blank line, in their words, written out from what the
/// rules say (the URL crate's parse error is its own).
fn why_refused(trimmed: &str, max_url_bytes: usize) -> Option<String> {
    let url = match url::Url::parse(trimmed) {
        Ok(url) => url,
        Err(error) => return Some(format!("not a valid URL ({error})")),
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Some("only http and https URLs with a host".to_owned());
    }
    if trimmed.len() > max_url_bytes {
        return Some(format!("longer than {max_url_bytes} bytes"));
    }
    if trimmed.chars().any(char::is_control) {
        return Some("contains a control character".to_owned());
    }
    None
}

/// The one-URL checks on a line: the API's and the forms'.
fn check_single(line: &str, trimmed: &str, max_url_bytes: usize, why: Option<&str>) {
    match form_url(line, max_url_bytes) {
        Ok(url) => {
            assert_eq!(why, None, "{line:?} accepted");
            assert_eq!(url, trimmed);
            assert_acceptable(url, max_url_bytes);
        }
        Err(refusal) => assert_eq!(Some(refusal.to_string().as_str()), why, "{line:?}"),
    }
    let api_refuses = matches!(
        why_refused(trimmed, usize::MAX),
        Some(why) if why != "contains a control character"
    );
    match reported_url(line) {
        Ok(url) => {
            assert!(!api_refuses, "the API took {line:?}");
            assert_eq!(url, trimmed);
            let parsed = url::Url::parse(url).expect("an accepted URL parses");
            assert!(matches!(parsed.scheme(), "http" | "https"));
            assert!(parsed.host_str().is_some_and(|host| !host.is_empty()));
        }
        Err(refusal) => {
            assert!(api_refuses, "the API refused {line:?}: {refusal}");
            assert!(matches!(
                refusal,
                UrlRefusal::Unparsable(_) | UrlRefusal::NotHttp
            ));
        }
    }
}

fn assert_acceptable(url: &str, max_url_bytes: usize) {
    assert!(url.len() <= max_url_bytes && !url.is_empty());
    assert_eq!(url.trim(), url);
    assert!(!url.chars().any(char::is_control), "{url:?}");
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url:?} accepted: {e}"));
    assert!(matches!(parsed.scheme(), "http" | "https"), "{url:?}");
    assert!(
        parsed.host_str().is_some_and(|host| !host.is_empty()),
        "{url:?}"
    );
}

use super::*;

fn canon(text: &str) -> String {
    canonicalize_str(text, &CanonicalConfig::default())
        .unwrap()
        .to_string()
}

#[test]
fn equivalent_spellings_share_one_canonical_form() {
    let expected = "http://example.com/a/c?x=1";
    for spelling in [
        "http://example.com/a/c?x=1",
        "HTTP://EXAMPLE.COM/a/c?x=1",
        "http://example.com:80/a/c?x=1",
        "http://example.com/a/b/../c?x=1",
        "http://example.com/a/./c?x=1#section",
        "http://example.com./a/c?x=1",
        "http://example.com/a/c?x=1&sid=abc123",
        "http://example.com/a/c?PHPSESSID=zz&x=1",
        "http://example.com/a/c;jsessionid=0123ABC?x=1",
    ] {
        assert_eq!(canon(spelling), expected, "{spelling}");
    }
    assert_eq!(canon("https://example.com:443/"), "https://example.com/");
    assert_eq!(
        canon("https://example.com:8443/"),
        "https://example.com:8443/"
    );
}

#[test]
fn empty_and_session_only_queries_disappear() {
    assert_eq!(canon("http://e.com/p?"), "http://e.com/p");
    assert_eq!(canon("http://e.com/p?sid=1&jsessionid=2"), "http://e.com/p");
}

#[test]
fn query_order_is_kept_unless_sorting_is_configured() {
    assert_eq!(canon("http://e.com/?b=2&a=1"), "http://e.com/?b=2&a=1");
    let sorted = CanonicalConfig {
        sort_query: true,
        ..CanonicalConfig::default()
    };
    assert_eq!(
        canonicalize_str("http://e.com/?b=2&a=1&b=0", &sorted)
            .unwrap()
            .as_str(),
        "http://e.com/?a=1&b=2&b=0"
    );
}

#[test]
fn paths_keep_their_case_and_other_matrix_params() {
    assert_eq!(canon("http://e.com/Foo/Bar"), "http://e.com/Foo/Bar");
    assert_eq!(canon("http://e.com/a;v=1/b"), "http://e.com/a;v=1/b");
}

#[test]
fn non_http_and_hostless_and_huge_urls_are_refused() {
    let config = CanonicalConfig::default();
    assert!(matches!(
        canonicalize_str("ftp://e.com/", &config),
        Err(CanonicalError::NotHttp { .. })
    ));
    assert!(matches!(
        canonicalize_str("javascript:alert(1)", &config),
        Err(CanonicalError::NotHttp { .. })
    ));
    assert!(matches!(
        canonicalize_str("not a url", &config),
        Err(CanonicalError::Parse(_))
    ));
    let huge = format!("http://e.com/{}", "a".repeat(100_000));
    assert!(matches!(
        canonicalize_str(&huge, &config),
        Err(CanonicalError::TooLong { .. })
    ));
    let long = format!("http://e.com/{}", "a".repeat(5_000));
    assert!(matches!(
        canonicalize_str(&long, &config),
        Err(CanonicalError::TooLong { .. })
    ));
}

#[test]
fn hostile_input_never_panics() {
    let config = CanonicalConfig::default();
    let inputs = [
        "http://",
        "http://./",
        "http://.../",
        "http://[::1",
        "http://e.com/;;;;;",
        "http://e.com/;=;sid=;/",
        "http://e.com/?&&&=&=",
        "http://e.com/%ff%fe?%ff=%fe#%00",
        "http://\u{0}e.com/",
        "http://xn--/",
        "http://e.com/\u{202e}\u{fffd}",
        "http://e.com/?sid",
    ];
    for input in inputs {
        let _ = canonicalize_str(input, &config);
    }
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let _ = canonicalize_str(&String::from_utf8_lossy(&binary), &config);
}

#[test]
fn registrable_domain_follows_the_public_suffix_list() {
    let domain = |u: &str| registrable_domain(&Url::parse(u).unwrap());
    assert_eq!(
        domain("http://a.b.example.co.uk/").as_deref(),
        Some("example.co.uk")
    );
    assert_eq!(
        domain("http://www.example.com/").as_deref(),
        Some("example.com")
    );
    assert_eq!(
        domain("http://user.github.io/").as_deref(),
        Some("user.github.io")
    );
    assert_eq!(
        domain("http://www.sunny-gallery.sim/").as_deref(),
        Some("sunny-gallery.sim")
    );
    assert_eq!(domain("http://8.8.8.8/").as_deref(), Some("8.8.8.8"));
    assert_eq!(domain("http://co.uk/"), None);
}

/// The error and its sources joined as a chain printer (anyhow's `{:#}`) joins them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

#[test]
fn an_unparsable_url_names_the_parsers_complaint_once() {
    let error = canonicalize_str("http://[::1", &CanonicalConfig::default()).unwrap_err();
    let complaint = url::Url::parse("http://[::1").unwrap_err().to_string();
    // The message alone is what a refused URL keeps as its reason: it must say why.
    assert!(error.to_string().contains(&complaint), "{error}");
    assert_eq!(
        chain(&error).matches(&complaint).count(),
        1,
        "{}",
        chain(&error)
    );
}

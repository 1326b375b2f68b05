use super::*;

fn page() -> Url {
    Url::parse("http://site.example/dir/page.html").unwrap()
}

fn run(html: &str) -> Extracted {
    extract(
        html.as_bytes(),
        &page(),
        Some("text/html"),
        &ExtractConfig::default(),
    )
}

fn strings(urls: &[Url]) -> Vec<&str> {
    urls.iter().map(Url::as_str).collect()
}

#[test]
fn every_kind_of_reference_is_found_and_sorted_by_role() {
    let html = r#"<!doctype html><html><head>
        <meta property="og:image" content="/og.jpg">
        <meta name="OG:IMAGE" content="og-name.jpg">
        <meta name="description" content="not-a-url.jpg">
        <link rel="image_src" href="linked.jpg"><link rel="stylesheet" href="s.css">
        </head><body>
        <a href="next.html#frag">next</a><a href="mailto:x@y">mail</a><a href="javascript:void(0)">js</a>
        <area href="/map-target">
        <iframe src="//other.example/frame"></iframe>
        <img src="a.jpg" srcset="a-2x.jpg 2x, a-3x.jpg 3x"><img data-src="lazy.jpg">
        <picture><source srcset="p.webp 1x, p2.webp 2x"><img src="p.jpg"></picture>
        <video src="v.mp4" poster="poster.jpg"><source src="v.webm"></video>
        <div style="background-image: url('bg.png')">x</div>
        <style>.hero { background: url(/css-hero.jpg) } .x { background: url("css-x.png") }</style>
        </body></html>"#;
    let out = run(html);
    assert_eq!(
        strings(&out.page_links),
        [
            "http://site.example/dir/next.html",
            "http://site.example/map-target",
            "http://other.example/frame",
        ]
    );
    let expected_media = [
        "og.jpg",
        "dir/og-name.jpg",
        "dir/linked.jpg",
        "dir/a.jpg",
        "dir/a-2x.jpg",
        "dir/a-3x.jpg",
        "dir/lazy.jpg",
        "dir/p.webp",
        "dir/p2.webp",
        "dir/p.jpg",
        "dir/v.mp4",
        "dir/poster.jpg",
        "dir/v.webm",
        "dir/bg.png",
        "css-hero.jpg",
        "dir/css-x.png",
    ]
    .map(|p| format!("http://site.example/{p}"));
    assert_eq!(strings(&out.media_links), expected_media);
    assert!(!out.truncated);
    assert_eq!(out.stopped, None);
}

#[test]
fn base_href_applies_to_links_before_and_after_it() {
    let out = run(
        r#"<a href="early.html"></a><base href="http://cdn.example/root/"><img src="x.jpg"><base href="/ignored/">"#,
    );
    assert_eq!(
        strings(&out.page_links),
        ["http://cdn.example/root/early.html"]
    );
    assert_eq!(strings(&out.media_links), ["http://cdn.example/root/x.jpg"]);
    let relative = run(r#"<base href="../up/"><img src="y.jpg">"#);
    assert_eq!(
        strings(&relative.media_links),
        ["http://site.example/up/y.jpg"]
    );
    let bogus = run(r#"<base href="javascript:alert(1)"><img src="z.jpg">"#);
    assert_eq!(
        strings(&bogus.media_links),
        ["http://site.example/dir/z.jpg"]
    );
}

#[test]
fn duplicates_collapse_and_caps_hold() {
    let out =
        run(r#"<a href="a">1</a><a href="a#x">2</a><a href="./a">3</a><img src="a"><img src="a">"#);
    assert_eq!(out.page_links.len(), 1);
    assert_eq!(out.media_links.len(), 1);
    let many: String = (0..100)
        .map(|i| format!("<a href=\"/p{i}\"></a><img src=\"/i{i}\">"))
        .collect();
    let config = ExtractConfig {
        max_page_links: 10,
        max_media_links: 5,
        ..ExtractConfig::default()
    };
    let capped = extract(many.as_bytes(), &page(), None, &config);
    assert_eq!(capped.page_links.len(), 10);
    assert_eq!(capped.media_links.len(), 5);
    assert!(capped.truncated);
}

#[test]
fn legacy_charsets_are_decoded_before_resolving() {
    let html = encoding_rs::WINDOWS_1251
        .encode("<meta charset=windows-1251><a href=\"/новости\">x</a>")
        .0;
    let out = extract(&html, &page(), None, &ExtractConfig::default());
    assert_eq!(out.encoding, "windows-1251");
    assert_eq!(
        strings(&out.page_links),
        ["http://site.example/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8"]
    );
    let by_header = encoding_rs::SHIFT_JIS.encode("<img src=\"画像.jpg\">").0;
    let out = extract(
        &by_header,
        &page(),
        Some("text/html; charset=Shift_JIS"),
        &ExtractConfig::default(),
    );
    assert_eq!(out.encoding, "Shift_JIS");
    assert_eq!(
        strings(&out.media_links),
        ["http://site.example/dir/%E7%94%BB%E5%83%8F.jpg"]
    );
}

#[test]
fn utf16_pages_with_a_bom_are_decoded() {
    let mut body = vec![0xFF, 0xFE];
    for unit in "<a href=\"/utf16\">x</a>".encode_utf16() {
        body.extend_from_slice(&unit.to_le_bytes());
    }
    let out = extract(
        &body,
        &page(),
        Some("text/html; charset=windows-1252"),
        &ExtractConfig::default(),
    );
    assert_eq!(out.encoding, "UTF-16LE");
    assert_eq!(strings(&out.page_links), ["http://site.example/utf16"]);
}

#[test]
fn broken_html_still_yields_its_links() {
    let html = "<html><head><title>broken<title></head><body><div><p>unclosed <b>bold <i>italic</b>\n\
        <a href=/quirks/>unquoted</a><a href='/' >single</a><img src=\"/i.jpg\" alt=\"x\" <table><tr><td>cell\n\
        <a href=\"/chain\"\" class=>dq</a><!-- unterminated <a href=\"/hidden\">\n&bogus; &#xZZ; \u{0}\u{1}";
    let out = run(html);
    let pages = strings(&out.page_links);
    assert!(pages.contains(&"http://site.example/quirks/"), "{pages:?}");
    assert!(pages.contains(&"http://site.example/"), "{pages:?}");
    assert!(pages.contains(&"http://site.example/chain"), "{pages:?}");
    assert!(
        !pages.contains(&"http://site.example/hidden"),
        "comment content is not a link"
    );
    assert_eq!(strings(&out.media_links), ["http://site.example/i.jpg"]);
    // The unclosed <title> swallows the page for a standards parser; the soup scan rescued it.
    assert!(out.tag_soup);
    assert!(!run("<a href=/x>x</a>").tag_soup);
}

#[test]
fn hostile_bodies_end_with_bounded_results() {
    let config = ExtractConfig::default();
    let binary: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    let out = extract(&binary, &page(), Some("text/html"), &config);
    assert!(out.page_links.len() <= config.max_page_links);

    let endless_tag = format!("<a href=\"{}", "x".repeat(4 << 20));
    let small_memory = ExtractConfig {
        max_parser_memory: 256 * 1024,
        ..ExtractConfig::default()
    };
    let out = extract(endless_tag.as_bytes(), &page(), None, &small_memory);
    assert_eq!(
        out.stopped,
        Some(ExtractError::MemoryLimit { limit: 256 * 1024 })
    );
    assert!(out.page_links.is_empty());

    // An unterminated value of ampersands reaches the tag-soup scan whole (the parser stops at
    // its memory limit first): its character references are decoded in one pass, not one
    // search of the rest per `&` (hours at this size).
    let ampersands = format!("<a href=\"{}", "&".repeat(4 << 20));
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let out = extract(ampersands.as_bytes(), &page(), None, &small_memory);
        let _ = done.send(out.page_links.len());
    });
    assert_eq!(
        finished.recv_timeout(std::time::Duration::from_secs(60)),
        Ok(0),
        "4 MiB of '&' in an attribute must be decoded in linear time"
    );
    assert_eq!(syntax::decode_char_refs("a&&amp;b&#x26;&;&x"), "a&&b&&;&x");

    let huge_attr = format!(
        "<a href=\"/{}\">x</a><a href=\"/ok\">y</a>",
        "y".repeat(10_000)
    );
    assert_eq!(
        strings(&run(&huge_attr).page_links),
        ["http://site.example/ok"]
    );

    let nested = "<div>".repeat(10_000) + "<a href=\"/deep\">d</a>";
    let out = run(&nested);
    assert_eq!(out.stopped, None);
    assert_eq!(strings(&out.page_links), ["http://site.example/deep"]);
    // Far deeper nesting exhausts the parser's memory budget: a typed stop, not a crash.
    let abyss = "<div>".repeat(400_000);
    assert_eq!(
        run(&abyss).stopped,
        Some(ExtractError::MemoryLimit {
            limit: 8 * 1024 * 1024
        })
    );

    let million: String = "<a href=\"/same\"></a>".repeat(200_000);
    let out = run(&million);
    assert_eq!(out.page_links.len(), 1);
    assert!(
        !out.truncated,
        "repeats of one link are not a reason to drop others"
    );

    let _ = run("");
    let _ = run("<");
    let _ = run("<img srcset=\", , ,\" src=\"http://[::1\">");
    let _ = run("<a href=\"http://\">x</a><a href=\"https:///\">y</a>");
}

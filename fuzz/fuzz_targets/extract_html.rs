//! Any bytes as an HTML page (with a claimed Content-Type picked by the first byte): extraction
//! must return links within its caps, absolute and with a host, and never panic.
#![no_main]

use aranea_crawl::extract::{ExtractConfig, extract};
use libfuzzer_sys::fuzz_target;
use url::Url;

const TYPES: [Option<&str>; 4] = [
    None,
    Some("text/html"),
    Some("text/html; charset=shift_jis"),
    Some("text/html; charset=utf-16le"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let config = ExtractConfig {
        max_page_links: 100,
        max_media_links: 100,
        max_parser_memory: 1 << 20,
        max_url_length: 2048,
    };
    let page = Url::parse("http://fuzz.sim/dir/page.html?x=1").unwrap();
    let claimed = TYPES[usize::from(selector) % TYPES.len()];
    let found = extract(body, &page, claimed, &config);
    assert!(found.page_links.len() <= config.max_page_links);
    assert!(found.media_links.len() <= config.max_media_links);
    // As documented: absolute http(s) URLs with a host and without fragments.
    for link in found.page_links.iter().chain(&found.media_links) {
        assert!(matches!(link.scheme(), "http" | "https"), "{link}");
        assert!(link.has_host(), "{link}");
        assert!(link.fragment().is_none(), "{link}");
    }
});

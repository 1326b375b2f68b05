//! Any bytes as robots.txt: parsing must give a policy (or the unparsable fallback), answer for
//! any URL, and keep Crawl-delay within its cap, never panicking.
#![no_main]

use std::time::Duration;

use aranea_crawl::robots::{Robots, RobotsConfig};
use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let config = RobotsConfig {
        max_bytes: 64 << 10,
        max_crawl_delay: Duration::from_secs(30),
        ..RobotsConfig::default()
    };
    let robots = Robots::parse(data, &config);
    if let Some(delay) = robots.crawl_delay() {
        assert!(delay <= config.max_crawl_delay + Duration::from_millis(1));
    }
    assert!(robots.sitemaps().len() <= 64);
    for url in [
        "http://fuzz.sim/",
        "http://fuzz.sim/private/a.jpg?x=1",
        "http://fuzz.sim/%E2%82%AC/$/*",
    ] {
        let _ = robots.allows(&Url::parse(url).unwrap());
    }
    // The fuzzed text as a path too (lossily), since rules and paths meet in the matcher.
    let path = String::from_utf8_lossy(data.get(..256).unwrap_or(data));
    if let Ok(url) = Url::parse("http://fuzz.sim/").and_then(|b| b.join(&path)) {
        let _ = robots.allows(&url);
    }
});

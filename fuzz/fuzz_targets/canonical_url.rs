//! Any text as a URL: canonicalisation must accept or refuse with a typed error, respect its
//! length limit, be idempotent, and never panic; the registrable domain must not panic either.
#![no_main]

use aranea_crawl::canonical::{
    CanonicalConfig, canonicalize, canonicalize_str, registrable_domain,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let config = CanonicalConfig {
        sort_query: data.first().is_some_and(|b| b & 1 == 1),
        ..CanonicalConfig::default()
    };
    if let Ok(url) = canonicalize_str(&text, &config) {
        assert!(url.as_str().len() <= config.max_length);
        assert!(matches!(url.scheme(), "http" | "https"));
        let again = canonicalize(&url, &config).expect("a canonical URL canonicalises again");
        assert_eq!(again.as_str(), url.as_str(), "not idempotent");
        let _ = registrable_domain(&url);
    }
});

//! Any bytes as an IANA RDAP bootstrap file (RFC 9224), which comes from outside: parsing must
//! give a registry or a typed error, never panic. A registry read has at least one prefix, and
//! for any address (those the file names and a few others) it answers with at most 16 distinct
//! http(s) base URLs, each with a host, no query or fragment, ending in `/`, HTTPS first.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use aranea_notice::rdap_bootstrap::{Bootstrap, BootstrapError};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let bootstrap = match Bootstrap::parse(Path::new("fuzz.json"), data) {
        Ok(bootstrap) => bootstrap,
        Err(BootstrapError::NotJson { .. } | BootstrapError::WrongShape { .. }) => return,
        Err(other) => panic!("parsing bytes cannot fail to read them: {other}"),
    };
    assert!(!bootstrap.is_empty());
    // Each prefix is a JSON string of at least `"::/0"`.
    assert!(bootstrap.len() * 6 <= data.len());
    let mut addresses = vec![
        IpAddr::V4(Ipv4Addr::new(41, 1, 2, 3)),
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0x200, 0, 0, 0, 0, 0, 1)),
    ];
    if let Ok(json) = serde_json::from_slice::<Value>(data) {
        collect_prefixes(&json, &mut addresses);
    }
    for ip in addresses {
        check_urls(bootstrap.base_urls(ip));
    }
});

/// The first and last address of every prefix the file names, so lookups hit its entries.
fn collect_prefixes(json: &Value, addresses: &mut Vec<IpAddr>) {
    match json {
        Value::String(text) => {
            if let Ok(net) = text.parse::<IpNet>() {
                addresses.extend([net.network(), net.broadcast()]);
            }
        }
        Value::Array(items) => items
            .iter()
            .take(64)
            .for_each(|item| collect_prefixes(item, addresses)),
        Value::Object(object) => object
            .values()
            .take(64)
            .for_each(|item| collect_prefixes(item, addresses)),
        _ => {}
    }
}

fn check_urls(urls: &[String]) {
    assert!(urls.len() <= 16, "{} URLs", urls.len());
    for url in urls {
        assert!(url.ends_with('/'), "{url}");
        let parsed = Url::parse(url).expect("a base URL parses");
        assert!(matches!(parsed.scheme(), "https" | "http"), "{url}");
        assert!(parsed.host_str().is_some());
        assert!(
            parsed.query().is_none() && parsed.fragment().is_none(),
            "{url}"
        );
    }
    let first_http = urls
        .iter()
        .position(|u| u.starts_with("http:"))
        .unwrap_or(urls.len());
    assert!(
        urls[first_http..].iter().all(|u| u.starts_with("http:")),
        "HTTPS after HTTP: {urls:?}"
    );
    for (index, url) in urls.iter().enumerate() {
        assert!(!urls[..index].contains(url), "{url} twice in {urls:?}");
    }
}

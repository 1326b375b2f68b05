//! The IANA RDAP bootstrap registry for IP addresses (RFC 9224): which registry's RDAP
//! service answers for an address, read from the `ipv4.json` / `ipv6.json` files IANA
//! publishes, whose paths come from configuration (fetch them with the operator's own tools;
//! this crate never downloads them).
//!
//! The files are outside input: size, entry and URL counts are bounded, malformed entries
//! are skipped (a CIDR that does not parse, a base URL that is not http(s)), and a file with
//! no usable entry is an error. Lookup is by longest matching prefix, as RFC 9224 §5.1
//! requires, and HTTPS base URLs come before HTTP ones (§3). Must not fetch anything.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_json::Value;

/// Larger files are refused: IANA's are a few KiB.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Services, prefixes per service and URLs per service read at most.
const MAX_SERVICES: usize = 10_000;
const MAX_ENTRIES_PER_SERVICE: usize = 10_000;
const MAX_URLS_PER_SERVICE: usize = 16;

/// Why a bootstrap file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapError {
    #[error("cannot read the RDAP bootstrap file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("the RDAP bootstrap file {path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("the RDAP bootstrap file {path} is not JSON: {message}")]
    NotJson { path: PathBuf, message: String },
    #[error("the RDAP bootstrap file {path} is not an RFC 9224 registry: {message}")]
    WrongShape { path: PathBuf, message: String },
}

/// Prefix → RDAP base URLs, from one or more bootstrap files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bootstrap {
    entries: Vec<(IpNet, Vec<String>)>,
}

impl Bootstrap {
    /// Reads the files (typically IANA's `ipv4.json` and `ipv6.json`).
    pub fn open(paths: &[PathBuf]) -> Result<Bootstrap, BootstrapError> {
        let mut bootstrap = Bootstrap::default();
        for path in paths {
            bootstrap.entries.extend(read_file(path)?);
        }
        Ok(bootstrap)
    }

    /// [`Bootstrap::open`] for [`crate::reload::Reloading`]: the error as text.
    pub fn load(paths: &[PathBuf]) -> Result<Bootstrap, String> {
        Bootstrap::open(paths).map_err(|e| e.to_string())
    }

    /// Parses one file's text; `path` only names it in errors.
    pub fn parse(path: &Path, text: &[u8]) -> Result<Bootstrap, BootstrapError> {
        Ok(Bootstrap {
            entries: parse_services(path, text)?,
        })
    }

    /// The base URLs (each ending in `/`) of the service for `ip`, by longest prefix;
    /// empty when no entry covers it.
    pub fn base_urls(&self, ip: IpAddr) -> &[String] {
        self.entries
            .iter()
            .filter(|(net, _)| net.contains(&ip))
            .max_by_key(|(net, _)| net.prefix_len())
            .map_or(&[], |(_, urls)| urls.as_slice())
    }

    /// How many prefixes were read.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn read_file(path: &Path) -> Result<Vec<(IpNet, Vec<String>)>, BootstrapError> {
    use std::io::Read;
    let read_error = |e: std::io::Error| BootstrapError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut text = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(BootstrapError::TooLarge {
            path: path.to_owned(),
            limit: MAX_FILE_BYTES,
        });
    }
    parse_services(path, &text)
}

fn parse_services(path: &Path, text: &[u8]) -> Result<Vec<(IpNet, Vec<String>)>, BootstrapError> {
    let shape = |message: &str| BootstrapError::WrongShape {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    let json: Value = serde_json::from_slice(text).map_err(|e| BootstrapError::NotJson {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let services = json
        .get("services")
        .and_then(Value::as_array)
        .ok_or_else(|| shape("no \"services\" array"))?;
    let mut entries = Vec::new();
    for service in services.iter().take(MAX_SERVICES) {
        // Each service is [[entries…], [URLs…]].
        let Some([prefixes, urls]) = service.as_array().map(Vec::as_slice) else {
            continue;
        };
        let urls = base_urls(urls);
        if urls.is_empty() {
            continue;
        }
        let Some(prefixes) = prefixes.as_array() else {
            continue;
        };
        for prefix in prefixes.iter().take(MAX_ENTRIES_PER_SERVICE) {
            if let Some(net) = prefix.as_str().and_then(|p| p.parse::<IpNet>().ok()) {
                entries.push((net.trunc(), urls.clone()));
            }
        }
    }
    if entries.is_empty() {
        return Err(shape(
            "no service with a valid prefix and an http(s) base URL",
        ));
    }
    Ok(entries)
}

/// The http(s) URLs of a service, HTTPS first, each ending in `/`.
fn base_urls(urls: &Value) -> Vec<String> {
    let mut found: Vec<String> = urls
        .as_array()
        .map(|a| a.iter().take(MAX_URLS_PER_SERVICE).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(Value::as_str)
        .filter_map(|u| url::Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
        .filter(|u| u.query().is_none() && u.fragment().is_none())
        .map(|u| {
            let text = u.to_string();
            if text.ends_with('/') {
                text
            } else {
                format!("{text}/")
            }
        })
        .collect();
    // Stable: HTTPS before HTTP, otherwise the registry's order. Each URL once, wherever
    // its copies were: at most 16 of them, so a linear search is enough.
    found.sort_by_key(|u| !u.starts_with("https:"));
    let mut distinct: Vec<String> = Vec::with_capacity(found.len());
    for url in found {
        if !distinct.contains(&url) {
            distinct.push(url);
        }
    }
    distinct
}

#[cfg(test)]
mod tests {
    use super::*;

    const IANA_LIKE: &str = r#"{
      "description": "RDAP bootstrap file for IPv4 address allocations",
      "publication": "2026-01-01T00:00:00Z",
      "version": "1.0",
      "services": [
        [["41.0.0.0/8", "102.0.0.0/8"], ["https://rdap.afrinic.net/rdap/", "http://rdap.afrinic.net/rdap/"]],
        [["1.0.0.0/8", "27.0.0.0/8"], ["http://rdap.apnic.net", "https://rdap.apnic.net/"]],
        [["27.64.0.0/12"], ["https://rdap.example-nir.net/"]],
        [["2001:200::/23"], ["https://rdap.apnic.net/"]]
      ]
    }"#;

    fn parse(text: &str) -> Result<Bootstrap, BootstrapError> {
        Bootstrap::parse(Path::new("test.json"), text.as_bytes())
    }

    #[test]
    fn the_longest_prefix_wins_and_https_comes_first() {
        let b = parse(IANA_LIKE).unwrap();
        assert_eq!(b.len(), 6);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            b.base_urls(ip("41.1.2.3")),
            [
                "https://rdap.afrinic.net/rdap/",
                "http://rdap.afrinic.net/rdap/"
            ]
        );
        assert_eq!(
            b.base_urls(ip("27.1.1.1")),
            ["https://rdap.apnic.net/", "http://rdap.apnic.net/"]
        );
        assert_eq!(
            b.base_urls(ip("27.70.0.1")),
            ["https://rdap.example-nir.net/"]
        );
        assert_eq!(b.base_urls(ip("2001:200::1")), ["https://rdap.apnic.net/"]);
        assert!(b.base_urls(ip("8.8.8.8")).is_empty());
    }

    #[test]
    fn hostile_files_are_typed_errors_or_skipped_entries_never_panics() {
        for text in [
            "",
            "{",
            "[1,2,3]",
            "\"services\"",
            "{\"services\": 5}",
            "{\"services\": []}",
            "{\"services\": [[[\"1.0.0.0/8\"]]]}",
            "{\"services\": [[[\"not a cidr\", 7, null], [\"https://rdap.example/\"]]]}",
            "{\"services\": [[[\"1.0.0.0/8\"], [\"file:///etc/passwd\", \"javascript:x\", 3]]]}",
            "{\"services\": [[{\"a\": 1}, [\"https://rdap.example/\"]]]}",
        ] {
            assert!(
                matches!(
                    parse(text),
                    Err(BootstrapError::NotJson { .. } | BootstrapError::WrongShape { .. })
                ),
                "{text:?}: {:?}",
                parse(text)
            );
        }
        // Bad entries next to good ones are skipped, the good ones kept.
        let mixed = parse(
            r#"{"services": [
                [["999.0.0.0/8", "10.0.0.0/33"], ["https://bad.example/"]],
                [["1.0.0.0/8"], ["ftp://x.example/", "https://ok.example/rdap?x=1", "https://ok.example/rdap"]],
                "garbage", [], [[], []], [["2.0.0.0/8"], "not a list"]
            ]}"#,
        )
        .unwrap();
        assert_eq!(mixed.len(), 1);
        assert_eq!(
            mixed.base_urls("1.2.3.4".parse().unwrap()),
            ["https://ok.example/rdap/"]
        );
    }

    #[test]
    fn a_huge_or_missing_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("aranea-bootstrap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let huge = dir.join("huge.json");
        let mut text = String::from(
            "{\"services\": [[[\"1.0.0.0/8\"], [\"https://a.example/\"]]], \"pad\": \"",
        );
        text.push_str(&"a".repeat(usize::try_from(MAX_FILE_BYTES).unwrap()));
        text.push_str("\"}");
        std::fs::write(&huge, text).unwrap();
        assert!(matches!(
            Bootstrap::open(std::slice::from_ref(&huge)),
            Err(BootstrapError::TooLarge { .. })
        ));
        assert!(matches!(
            Bootstrap::open(&[dir.join("missing.json")]),
            Err(BootstrapError::Read { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Found by the `rdap_bootstrap` fuzz target: a URL listed twice, with another between the
    /// two, was kept twice (only neighbours were deduplicated), so a failing registry would be
    /// asked twice in a row.
    #[test]
    fn a_base_url_listed_twice_is_kept_once() {
        let b = parse(
            r#"{"services": [[["192.0.2.0/24"], ["https://a.example/", "http://c.example/",
                "https://b.example/", "https://a.example", "http://c.example/"]]]}"#,
        )
        .unwrap();
        assert_eq!(
            b.base_urls("192.0.2.1".parse().unwrap()),
            [
                "https://a.example/",
                "https://b.example/",
                "http://c.example/"
            ]
        );
    }
}

//! The deny-list: services that show other sites' content under their own address (reverse
//! image search, web proxies, web translation, web archives, "fetch this URL" and link
//! expanders), which a crawler would otherwise record as the host of the material.
//!
//! A [`DenyList`] answers one question, [`DenyList::denies`], from a URL alone (no network, no
//! state). Patterns name a host and everything under it, optionally any public suffix
//! (`google.*`), a path prefix (`bing.com/images`) and a required query pair
//! (`google.*/search?tbm=isch`). Well-known proxy scripts (Glype, PHProxy, CGIProxy) are denied on
//! any host when they carry another URL. Where a denied URL embeds the URL it stands for
//! (`?url=http…`, `/web/2020/http://…`, base64 in a proxy's query), the answer carries it, so the
//! caller can consider the real address instead (through the same checks: it is not vetted
//! here).
//!
//! This module must not decide what a site hosts, and must not fetch anything.

use serde::Deserialize;
use url::Url;

/// What kind of service a denied URL belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// Reverse image search and image-search result pages and thumbnails.
    ImageSearch,
    /// Web proxies and image proxies.
    Proxy,
    /// Web-page translation.
    Translation,
    /// Web archives and caches.
    WebArchive,
    /// Services that fetch a URL given to them (link expanders, validators, screenshots).
    UrlFetcher,
    /// An entry of the operator's configuration.
    Configured,
}

/// Why a URL is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyReason {
    /// The kind of service.
    pub service: ServiceKind,
    /// The pattern that matched, as written (built-in or configured).
    pub pattern: String,
    /// The URL the denied one stands for, when it embeds one. Not checked against anything.
    pub embedded: Option<Url>,
}

/// The `deny` part of the crawl configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DenyConfig {
    /// Whether the built-in list ([`BUILTIN`]) applies. Default true.
    pub defaults: bool,
    /// Further patterns to deny, as `host[/path][?key=value]` (`host` may end in `.*` for any
    /// public suffix, or be `*` for any host). Default none.
    pub extra: Vec<String>,
    /// Patterns exempted from the list, checked first (to crawl one service on purpose).
    /// Default none.
    pub except: Vec<String>,
}

impl Default for DenyConfig {
    fn default() -> Self {
        Self {
            defaults: true,
            extra: Vec::new(),
            except: Vec::new(),
        }
    }
}

/// A pattern the configuration could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenyListError {
    #[error("deny-list pattern {pattern:?}: {problem}")]
    BadPattern {
        pattern: String,
        problem: &'static str,
    },
}

/// The built-in patterns, by kind of service.
pub const BUILTIN: &[(ServiceKind, &[&str])] = &[
    (
        ServiceKind::ImageSearch,
        &[
            "images.google.*",
            "lens.google.com",
            "lens.google",
            "google.*/searchbyimage",
            "google.*/imghp",
            "google.*/imgres",
            "google.*/search?tbm=isch",
            "google.*/search?udm=2",
            "encrypted-tbn0.gstatic.com",
            "encrypted-tbn1.gstatic.com",
            "encrypted-tbn2.gstatic.com",
            "encrypted-tbn3.gstatic.com",
            "tineye.com",
            "yandex.*/images",
            "ya.ru/images",
            "bing.com/images",
            "bing.com/visualsearch",
            "mm.bing.net",
            "images.search.yahoo.com",
            "image.baidu.com",
            "graph.baidu.com",
            "pic.sogou.com",
            "duckduckgo.com/?ia=images",
            "saucenao.com",
            "iqdb.org",
            "ascii2d.net",
            "trace.moe",
            "pimeyes.com",
            "facecheck.id",
            "search4faces.com",
            "findclone.ru",
            "karmadecay.com",
            "lenso.ai",
            "copyseeker.net",
            "imgops.com",
        ],
    ),
    (
        ServiceKind::Translation,
        &[
            "translate.google.*",
            "translate.goog",
            "translate.googleusercontent.com",
            "translate.yandex.*",
            "translate.yandex.net",
            "bing.com/translator",
            "microsofttranslator.com",
            "translatetheweb.com",
            "papago.naver.com",
            "papago.naver.net",
            "deepl.com/translator",
            "fanyi.baidu.com",
            "fanyi.youdao.com",
            "translate.weblio.jp",
        ],
    ),
    (
        ServiceKind::WebArchive,
        &[
            "web.archive.org",
            "wayback.archive.org",
            "archive.org/wayback",
            "archive.today",
            "archive.ph",
            "archive.is",
            "archive.li",
            "archive.vn",
            "archive.md",
            "archive.fo",
            "webcache.googleusercontent.com",
            "cachedview.nl",
            "timetravel.mementoweb.org",
            "arquivo.pt/wayback",
            "webarchive.org.uk",
            "ghostarchive.org",
            "perma.cc",
            "webcitation.org",
        ],
    ),
    (
        ServiceKind::Proxy,
        &[
            "hide.me",
            "hidester.com",
            "proxysite.com",
            "croxyproxy.com",
            "croxy.network",
            "kproxy.com",
            "hidemyass.com/proxy",
            "4everproxy.com",
            "proxyium.com",
            "blockaway.net",
            "plainproxies.com",
            "whoer.net/webproxy",
            "camo.githubusercontent.com",
            "external-content.duckduckgo.com",
            "proxy.duckduckgo.com",
            "images.weserv.nl",
            "wsrv.nl",
        ],
    ),
    (
        ServiceKind::UrlFetcher,
        &[
            "unshorten.it",
            "unshorten.me",
            "checkshorturl.com",
            "expandurl.net",
            "urlex.org",
            "wheregoes.com",
            "redirectdetective.com",
            "linkexpander.com",
            "getlinkinfo.com",
            "validator.w3.org",
            "validator.nu",
            "web-sniffer.net",
            "urlscan.io",
            "virustotal.com",
            "sitecheck.sucuri.net",
            "screenshotmachine.com",
            "s.wordpress.com/mshots",
            "image.thum.io",
            "r.jina.ai",
            "12ft.io",
            "removepaywall.com",
        ],
    ),
];

/// The [`DenyReason::pattern`] of a well-known proxy script found on an unlisted host.
pub const PROXY_SCRIPT_PATTERN: &str = "(proxy script)";

/// One parsed pattern.
#[derive(Debug, Clone)]
struct Rule {
    text: String,
    service: ServiceKind,
    /// Empty for any host.
    host: String,
    any_suffix: bool,
    path: Option<String>,
    query: Option<(String, String)>,
}

impl Rule {
    fn parse(text: &str, service: ServiceKind) -> Result<Rule, DenyListError> {
        let bad = |problem| DenyListError::BadPattern {
            pattern: text.to_owned(),
            problem,
        };
        let trimmed = text.trim();
        let trimmed = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"))
            .unwrap_or(trimmed);
        let (rest, query) = match trimmed.split_once('?') {
            Some((rest, q)) => {
                let (k, v) = q.split_once('=').ok_or(bad("query must be key=value"))?;
                (rest, Some((k.to_owned(), v.to_owned())))
            }
            None => (trimmed, None),
        };
        let (host, path) = match rest.find('/') {
            Some(at) => (&rest[..at], Some(&rest[at..])),
            None => (rest, None),
        };
        let host = host.to_ascii_lowercase();
        let host = host
            .strip_prefix("*.")
            .unwrap_or(&host)
            .trim_end_matches('.');
        let (host, any_suffix) = match host.strip_suffix(".*") {
            Some(stem) => (stem, true),
            None => (host, false),
        };
        let host = if host == "*" { "" } else { host };
        if host
            .split('.')
            .any(|label| label.is_empty() || label.contains('*'))
            && !host.is_empty()
        {
            return Err(bad(
                "a host is dot-separated labels, optionally ending in .*",
            ));
        }
        if host.is_empty() && path.is_none() && query.is_none() {
            return Err(bad("a pattern for any host needs a path or query"));
        }
        let path = path.map(|p| p.trim_end_matches('/').to_owned());
        Ok(Rule {
            text: text.to_owned(),
            service,
            host: host.to_owned(),
            any_suffix,
            path: path.filter(|p| !p.is_empty()),
            query,
        })
    }

    fn matches(&self, host: &str, url: &Url) -> bool {
        self.host_matches(host) && self.path_matches(url.path()) && self.query_matches(url)
    }

    fn host_matches(&self, host: &str) -> bool {
        if self.host.is_empty() {
            return true;
        }
        if host.is_empty() {
            return false;
        }
        let host = if self.any_suffix {
            let Some(suffix) = psl::suffix_str(host) else {
                return false;
            };
            match host.strip_suffix(suffix).and_then(|h| h.strip_suffix('.')) {
                Some(stem) => stem,
                None => return false,
            }
        } else {
            host
        };
        host == self.host
            || host
                .strip_suffix(self.host.as_str())
                .is_some_and(|sub| sub.ends_with('.'))
    }

    fn path_matches(&self, path: &str) -> bool {
        let Some(prefix) = &self.path else {
            return true;
        };
        path.strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    fn query_matches(&self, url: &Url) -> bool {
        let Some((key, value)) = &self.query else {
            return true;
        };
        url.query_pairs().any(|(k, v)| k == *key && v == *value)
    }
}

/// The services the crawler keeps off, built once from a [`DenyConfig`].
#[derive(Debug, Clone)]
pub struct DenyList {
    rules: Vec<Rule>,
    except: Vec<Rule>,
    proxy_scripts: bool,
}

impl Default for DenyList {
    fn default() -> Self {
        Self::builtin()
    }
}

impl DenyList {
    /// The built-in list alone.
    pub fn builtin() -> DenyList {
        let rules = BUILTIN
            .iter()
            .flat_map(|(service, patterns)| patterns.iter().map(move |p| (*service, *p)))
            .filter_map(|(service, pattern)| Rule::parse(pattern, service).ok())
            .collect();
        DenyList {
            rules,
            except: Vec::new(),
            proxy_scripts: true,
        }
    }

    /// The list a configuration asks for.
    pub fn new(config: &DenyConfig) -> Result<DenyList, DenyListError> {
        let mut list = if config.defaults {
            DenyList::builtin()
        } else {
            DenyList {
                rules: Vec::new(),
                except: Vec::new(),
                proxy_scripts: false,
            }
        };
        for pattern in &config.extra {
            list.rules
                .push(Rule::parse(pattern, ServiceKind::Configured)?);
        }
        for pattern in &config.except {
            list.except
                .push(Rule::parse(pattern, ServiceKind::Configured)?);
        }
        Ok(list)
    }

    /// Why the crawler must not fetch `url`, or `None` when it may (as far as this list knows).
    /// Only http and https URLs with a host name are ever denied.
    pub fn denies(&self, url: &Url) -> Option<DenyReason> {
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        // IP-literal hosts match no name pattern but may still run a proxy script.
        let host = url
            .domain()
            .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_default();
        if self.except.iter().any(|rule| rule.matches(&host, url)) {
            return None;
        }
        if let Some(rule) = self.rules.iter().find(|rule| rule.matches(&host, url)) {
            return Some(DenyReason {
                service: rule.service,
                pattern: rule.text.clone(),
                embedded: embedded_url(url),
            });
        }
        if self.proxy_scripts && is_proxy_script(url) {
            return Some(DenyReason {
                service: ServiceKind::Proxy,
                pattern: PROXY_SCRIPT_PATTERN.to_owned(),
                embedded: embedded_url(url),
            });
        }
        None
    }
}

/// Well-known proxy scripts, on any host: Glype (`browse.php?u=`), PHProxy (`index.php?q=` with
/// a base64 URL) and CGIProxy (`nph-proxy.cgi/…`). Narrow on purpose: an ordinary site's own
/// `index.php?url=…` must not be taken for a proxy.
fn is_proxy_script(url: &Url) -> bool {
    let Some(segments) = url.path_segments() else {
        return false;
    };
    let segments: Vec<String> = segments.map(|s| s.to_ascii_lowercase()).collect();
    let last = segments.last().map(String::as_str).unwrap_or_default();
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    match last {
        "browse.php" => param("u").is_some_and(|v| !v.is_empty()),
        "index.php" => param("q").is_some_and(|v| base64_url(&v).is_some()),
        _ => segments
            .iter()
            .any(|s| matches!(s.as_str(), "nph-proxy.cgi" | "nph-proxy.pl" | "nph-proxy")),
    }
}

/// The http(s) URL that `url` carries: a query value (plain or base64), or the rest of the path
/// after an `http:/` or `https:/` inside it (web archives, CGIProxy).
pub fn embedded_url(url: &Url) -> Option<Url> {
    for (_, value) in url.query_pairs() {
        if let Some(found) = absolute_http(&value) {
            return Some(found);
        }
        if let Some(found) = base64_url(&value) {
            return Some(found);
        }
    }
    let path = url.path();
    let lower = path.to_ascii_lowercase();
    let at = lower.find("/http:/").or_else(|| lower.find("/https:/"))?;
    let rest = path.get(at + 1..)?;
    // Archives collapse `//` to `/` (`/web/2020/http:/example.com/`): restore it.
    let (scheme, tail) = rest.split_once(':')?;
    let tail = tail.trim_start_matches('/');
    let mut text = format!("{scheme}://{tail}");
    if let Some(query) = url.query() {
        text.push('?');
        text.push_str(query);
    }
    absolute_http(&text)
}

fn absolute_http(text: &str) -> Option<Url> {
    let lower = text.get(..8)?.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    Url::parse(text)
        .ok()
        .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()))
}

/// A base64 (standard or URL-safe, padding optional) http(s) URL, as PHProxy writes them.
fn base64_url(text: &str) -> Option<Url> {
    // "http" encodes to "aHR0c": anything else is not worth decoding.
    if !text.starts_with("aHR0c") || text.len() > 8192 {
        return None;
    }
    let mut bits = 0u32;
    let mut nbits = 0u32;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    absolute_http(std::str::from_utf8(&out).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(list: &DenyList, url: &str) -> Option<DenyReason> {
        list.denies(&Url::parse(url).unwrap())
    }

    fn service(list: &DenyList, url: &str) -> Option<ServiceKind> {
        denied(list, url).map(|r| r.service)
    }

    fn embedded(list: &DenyList, url: &str) -> Option<String> {
        denied(list, url)
            .unwrap_or_else(|| panic!("{url} not denied"))
            .embedded
            .map(String::from)
    }

    #[test]
    fn builtin_patterns_all_parse() {
        let count: usize = BUILTIN.iter().map(|(_, p)| p.len()).sum();
        assert_eq!(DenyList::builtin().rules.len(), count);
    }

    #[test]
    fn reverse_image_search_is_denied_by_host_path_and_query() {
        let list = DenyList::builtin();
        let found = denied(&list, "https://images.google.co.uk/?q=x").unwrap();
        assert_eq!(found.service, ServiceKind::ImageSearch);
        assert_eq!(found.pattern, "images.google.*");
        for url in [
            "https://lens.google.com/uploadbyurl?url=x",
            "https://www.google.de/search?q=cat&tbm=isch",
            "https://tineye.com/search?url=x",
            "https://yandex.com.tr/images/search?rpt=imageview",
            "https://www.bing.com/images/search?q=x",
            "https://tse1.mm.bing.net/th?id=OIP.abc",
            "https://encrypted-tbn0.gstatic.com/images?q=tbn:abc",
            "https://saucenao.com/search.php",
        ] {
            assert_eq!(service(&list, url), Some(ServiceKind::ImageSearch), "{url}");
        }
        for url in [
            "https://www.google.com/search?q=cat",
            "https://yandex.ru/maps/",
            "https://www.bing.com/",
            "https://www.bing.com/imagesfoo",
        ] {
            assert_eq!(service(&list, url), None, "{url}");
        }
    }

    #[test]
    fn look_alike_hosts_are_not_denied() {
        let list = DenyList::builtin();
        for url in [
            "http://images.google.evil.sim/a.jpg",
            "http://tineye.com.evil.sim/",
            "http://mytineye.com/",
            "http://notgoogle.com/searchbyimage",
            "http://archive.org/details/some-upload",
            "http://translate.example.sim/",
        ] {
            assert_eq!(denied(&list, url), None, "{url}");
        }
        assert!(denied(&list, "http://TinEye.COM./x").is_some());
        assert!(denied(&list, "ftp://tineye.com/x").is_none());
    }

    #[test]
    fn translation_archive_and_fetcher_services_are_denied() {
        let list = DenyList::builtin();
        for (url, kind) in [
            (
                "https://translate.google.fr/translate?u=x",
                ServiceKind::Translation,
            ),
            (
                "https://www-example-com.translate.goog/a?_x_tr_sl=auto",
                ServiceKind::Translation,
            ),
            (
                "https://web.archive.org/web/2020/http://x.sim/",
                ServiceKind::WebArchive,
            ),
            ("https://archive.ph/AbCdE", ServiceKind::WebArchive),
            (
                "https://archive.org/wayback/available?url=x",
                ServiceKind::WebArchive,
            ),
            (
                "https://webcache.googleusercontent.com/search?q=cache:x",
                ServiceKind::WebArchive,
            ),
            ("https://www.croxyproxy.com/", ServiceKind::Proxy),
            (
                "https://camo.githubusercontent.com/abc/def",
                ServiceKind::Proxy,
            ),
            ("https://unshorten.it/?url=x", ServiceKind::UrlFetcher),
            (
                "https://s.wordpress.com/mshots/v1/http%3A%2F%2Fx.sim",
                ServiceKind::UrlFetcher,
            ),
        ] {
            assert_eq!(service(&list, url), Some(kind), "{url}");
        }
    }

    #[test]
    fn embedded_urls_are_recovered_from_queries_paths_and_base64() {
        let list = DenyList::builtin();
        assert_eq!(
            embedded(
                &list,
                "https://www.google.com/searchbyimage?image_url=http%3A%2F%2Fvictim.sim%2Fa.jpg&x=1"
            )
            .as_deref(),
            Some("http://victim.sim/a.jpg")
        );
        assert_eq!(
            embedded(
                &list,
                "https://translate.google.com/translate?sl=auto&u=https://victim.sim/page?id=3"
            )
            .as_deref(),
            Some("https://victim.sim/page?id=3")
        );
        assert_eq!(
            embedded(
                &list,
                "https://web.archive.org/web/2020im_/https:/victim.sim/a.jpg?size=2"
            )
            .as_deref(),
            Some("https://victim.sim/a.jpg?size=2")
        );
        assert_eq!(
            embedded(
                &list,
                "https://web.archive.org/web/2020/http://victim.sim/g/"
            )
            .as_deref(),
            Some("http://victim.sim/g/")
        );
        assert_eq!(embedded(&list, "https://archive.ph/AbCdE"), None);
    }

    #[test]
    fn proxy_scripts_are_denied_on_any_host_but_ordinary_redirects_are_not() {
        let list = DenyList::builtin();
        let glype = denied(
            &list,
            "http://free-proxy.sim/browse.php?u=http%3A%2F%2Fvictim.sim%2F&b=4",
        )
        .unwrap();
        assert_eq!(glype.service, ServiceKind::Proxy);
        assert_eq!(glype.pattern, PROXY_SCRIPT_PATTERN);
        assert_eq!(
            glype.embedded.map(String::from).as_deref(),
            Some("http://victim.sim/")
        );
        let phproxy = "http://10.1.2.3/px/index.php?q=aHR0cDovL3ZpY3RpbS5zaW0vYS5qcGc&hl=1";
        assert_eq!(
            embedded(&list, phproxy).as_deref(),
            Some("http://victim.sim/a.jpg")
        );
        let cgi = "http://proxy.sim/cgi-bin/nph-proxy.cgi/010110A/http/victim.sim/a.jpg";
        assert_eq!(service(&list, cgi), Some(ServiceKind::Proxy));
        for url in [
            "http://shop.sim/index.php?url=http://other.sim/",
            "http://shop.sim/index.php?q=shoes",
            "http://blog.sim/out?url=http://other.sim/",
            "http://blog.sim/browse.php",
        ] {
            assert_eq!(denied(&list, url), None, "{url}");
        }
    }

    #[test]
    fn configuration_adds_exempts_and_drops_defaults() {
        let config = DenyConfig {
            defaults: true,
            extra: vec!["evil-proxy.sim".into(), "*/fetch?mode=proxy".into()],
            except: vec!["web.archive.org".into()],
        };
        let list = DenyList::new(&config).unwrap();
        assert_eq!(
            service(&list, "http://a.evil-proxy.sim/x"),
            Some(ServiceKind::Configured)
        );
        assert_eq!(
            service(&list, "http://any.sim/fetch?mode=proxy&u=1"),
            Some(ServiceKind::Configured)
        );
        assert_eq!(service(&list, "http://any.sim/fetch?mode=direct"), None);
        assert_eq!(
            denied(&list, "https://web.archive.org/web/2020/http://x.sim/"),
            None
        );
        assert!(denied(&list, "https://tineye.com/").is_some());

        let bare = DenyList::new(&DenyConfig {
            defaults: false,
            ..DenyConfig::default()
        })
        .unwrap();
        assert_eq!(denied(&bare, "https://tineye.com/"), None);
        assert_eq!(
            denied(&bare, "http://p.sim/browse.php?u=http://x.sim/"),
            None
        );
    }

    #[test]
    fn bad_patterns_are_refused_with_the_pattern_named() {
        for pattern in [
            "",
            "*",
            "foo..bar",
            "*.*",
            "go*gle.com",
            "host.sim/?novalue",
        ] {
            let config = DenyConfig {
                extra: vec![pattern.into()],
                ..DenyConfig::default()
            };
            match DenyList::new(&config) {
                Err(DenyListError::BadPattern { pattern: p, .. }) => assert_eq!(p, pattern),
                Ok(_) => panic!("{pattern:?} accepted"),
            }
        }
    }
}

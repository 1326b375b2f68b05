//! A site's robots.txt turned into a policy: may this URL be fetched, how long to wait
//! between requests, which sitemaps it names.
//!
//! Built from the fetch of `/robots.txt` (see [`robots_url`]; fetch it with
//! [`Fetcher::fetch_prefix`](crate::fetch::Fetcher::fetch_prefix) and
//! [`RobotsConfig::max_bytes`] so a huge file is cut, not refused) following RFC 9309's reading of
//! failures: a 4xx means no rules (allow all), a 5xx or an unreachable server means "assume
//! everything is disallowed for now" (the frontier retries later). Garbage is tolerated (lines
//! that are not rules are ignored), huge files are cut at a line boundary, and Crawl-delay is
//! capped. This module must not fetch anything itself and must not decide whether robots.txt
//! applies to a URL (for reported URLs the operator chooses): it only answers what it says.

use std::time::Duration;

use url::Url;

use crate::fetch::{Fetch, FetchError};

/// Robots policy settings.
#[derive(Debug, Clone)]
pub struct RobotsConfig {
    /// The product token matched against `User-agent` lines. Default: `aranea`.
    pub user_agent: String,
    /// Bytes of robots.txt read; the rest is ignored. Default: 500 KiB (RFC 9309's minimum).
    pub max_bytes: usize,
    /// Longest Crawl-delay honoured; longer ones are cut to this. Default: 30 s.
    pub max_crawl_delay: Duration,
}

impl Default for RobotsConfig {
    fn default() -> Self {
        RobotsConfig {
            user_agent: "aranea".to_owned(),
            max_bytes: 500 * 1024,
            max_crawl_delay: Duration::from_secs(30),
        }
    }
}

/// Where a policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RobotsSource {
    /// A robots.txt was read (perhaps truncated, perhaps mostly garbage).
    Parsed { truncated: bool },
    /// 4xx: the site has no robots.txt; everything is allowed.
    NoFile { status: u16 },
    /// 5xx or other unexpected status: everything is disallowed until it is fetched again.
    ServerError { status: u16 },
    /// The fetch failed: everything is disallowed until it is fetched again.
    Unreachable { error: FetchError },
    /// The parser gave up on the text: treated as no rules.
    Unparsable,
}

#[derive(Debug)]
enum Rules {
    AllowAll,
    DisallowAll,
    Parsed(Box<texting_robots::Robot>),
}

/// What one site's robots.txt allows.
#[derive(Debug)]
pub struct Robots {
    rules: Rules,
    crawl_delay: Option<Duration>,
    sitemaps: Vec<String>,
    source: RobotsSource,
}

/// The robots.txt URL for the site of `url` (same scheme, host and port).
pub fn robots_url(url: &Url) -> Option<Url> {
    let mut robots = url.clone();
    if robots.cannot_be_a_base() || robots.host().is_none() {
        return None;
    }
    robots.set_path("/robots.txt");
    robots.set_query(None);
    robots.set_fragment(None);
    let _ = robots.set_username("");
    let _ = robots.set_password(None);
    Some(robots)
}

impl Robots {
    /// The policy from the fetch of a robots.txt URL.
    pub fn from_fetch(fetch: &Fetch, config: &RobotsConfig) -> Robots {
        match &fetch.outcome {
            Ok(response) => {
                // A body the fetch cut at the size limit ends mid-line as often as not.
                let body = if response.truncated {
                    complete_lines(&response.body)
                } else {
                    &response.body
                };
                let mut robots = Robots::from_response(response.status, body, config);
                if response.truncated
                    && let RobotsSource::Parsed { truncated } = &mut robots.source
                {
                    *truncated = true;
                }
                robots
            }
            Err(error) => Robots::blocked(RobotsSource::Unreachable {
                error: error.clone(),
            }),
        }
    }

    /// The policy from a robots.txt response's status and body.
    pub fn from_response(status: u16, body: &[u8], config: &RobotsConfig) -> Robots {
        match status {
            200..=299 => Robots::parse(body, config),
            400..=499 => Robots {
                rules: Rules::AllowAll,
                crawl_delay: None,
                sitemaps: Vec::new(),
                source: RobotsSource::NoFile { status },
            },
            _ => Robots::blocked(RobotsSource::ServerError { status }),
        }
    }

    /// The policy when robots.txt cannot be had: nothing allowed for now.
    pub fn blocked(source: RobotsSource) -> Robots {
        Robots {
            rules: Rules::DisallowAll,
            crawl_delay: None,
            sitemaps: Vec::new(),
            source,
        }
    }

    /// Parses robots.txt text, tolerating garbage and cutting huge files at a line boundary.
    pub fn parse(body: &[u8], config: &RobotsConfig) -> Robots {
        let truncated = body.len() > config.max_bytes;
        let text = if truncated {
            complete_lines(body.get(..config.max_bytes).unwrap_or(body))
        } else {
            body
        };
        match texting_robots::Robot::new(&config.user_agent, text) {
            Ok(robot) => {
                let crawl_delay = robot
                    .delay
                    .filter(|d| d.is_finite() && *d > 0.0)
                    .map(|d| Duration::from_secs_f32(d.min(config.max_crawl_delay.as_secs_f32())));
                let sitemaps = robot.sitemaps.iter().take(64).cloned().collect();
                Robots {
                    rules: Rules::Parsed(Box::new(robot)),
                    crawl_delay,
                    sitemaps,
                    source: RobotsSource::Parsed { truncated },
                }
            }
            Err(_) => Robots {
                rules: Rules::AllowAll,
                crawl_delay: None,
                sitemaps: Vec::new(),
                source: RobotsSource::Unparsable,
            },
        }
    }

    /// Whether robots.txt lets the crawler fetch `url` (path and query are matched).
    pub fn allows(&self, url: &Url) -> bool {
        match &self.rules {
            Rules::AllowAll => true,
            Rules::DisallowAll => false,
            Rules::Parsed(robot) => robot.allowed(url.as_str()),
        }
    }

    /// Crawl-delay for this agent, capped by [`RobotsConfig::max_crawl_delay`].
    pub fn crawl_delay(&self) -> Option<Duration> {
        self.crawl_delay
    }

    /// Sitemap URLs named (at most 64).
    pub fn sitemaps(&self) -> &[String] {
        &self.sitemaps
    }

    pub fn source(&self) -> &RobotsSource {
        &self.source
    }
}

/// `head` up to the end of its last complete line, so no rule of a cut file is read half-way
/// (`Allow: /private/xy-public` cut to `Allow: /private/xy` would allow more than written).
fn complete_lines(head: &[u8]) -> &[u8] {
    let end = head.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    head.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(path: &str) -> Url {
        Url::parse(&format!("http://e.com{path}")).unwrap()
    }

    fn parse(text: &str) -> Robots {
        Robots::parse(text.as_bytes(), &RobotsConfig::default())
    }

    #[test]
    fn rules_for_our_agent_apply_and_others_do_not() {
        let robots = parse(
            "User-agent: other\nDisallow: /\n\nUser-agent: aranea\nDisallow: /private/\nAllow: /private/ok\nCrawl-delay: 2\nSitemap: http://e.com/s.xml\n",
        );
        assert!(robots.allows(&url("/")));
        assert!(!robots.allows(&url("/private/x")));
        assert!(robots.allows(&url("/private/ok")));
        assert_eq!(robots.crawl_delay(), Some(Duration::from_secs(2)));
        assert_eq!(robots.sitemaps(), ["http://e.com/s.xml"]);
    }

    #[test]
    fn crawl_delay_is_capped_and_nonsense_delays_ignored() {
        assert_eq!(
            parse("User-agent: *\nCrawl-delay: 86400\n").crawl_delay(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse("User-agent: *\nCrawl-delay: -5\n").crawl_delay(),
            None
        );
        assert_eq!(
            parse("User-agent: *\nCrawl-delay: soon\n").crawl_delay(),
            None
        );
    }

    #[test]
    fn status_decides_when_there_is_no_file() {
        let config = RobotsConfig::default();
        let missing = Robots::from_response(404, b"Disallow: /", &config);
        assert!(missing.allows(&url("/anything")));
        let forbidden = Robots::from_response(403, b"", &config);
        assert!(forbidden.allows(&url("/anything")));
        let failing = Robots::from_response(503, b"", &config);
        assert!(!failing.allows(&url("/")));
        assert_eq!(failing.source(), &RobotsSource::ServerError { status: 503 });
    }

    #[test]
    fn garbage_binary_and_html_are_tolerated() {
        let html = parse("<html><body><h1>Welcome</h1><p>Disallow nothing</p></body></html>");
        assert!(html.allows(&url("/a")));
        let binary: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let robots = Robots::parse(&binary, &RobotsConfig::default());
        let _ = robots.allows(&url("/a"));
        let weird = parse("User-agent: *\nDisallow: /*$*$**\nDisallow: \u{0}\nAllow: ((((\n");
        let _ = weird.allows(&url("/x"));
    }

    #[test]
    fn huge_files_are_cut_at_a_line_boundary() {
        let config = RobotsConfig {
            max_bytes: 1000,
            ..RobotsConfig::default()
        };
        let mut text = String::from("User-agent: *\nDisallow: /early\n");
        while text.len() < 5000 {
            text.push_str("# filler comment line\n");
        }
        text.push_str("Disallow: /late\n");
        let robots = Robots::parse(text.as_bytes(), &config);
        assert!(!robots.allows(&url("/early")));
        assert!(robots.allows(&url("/late")));
        assert_eq!(robots.source(), &RobotsSource::Parsed { truncated: true });
    }

    #[test]
    fn a_body_the_fetch_cut_loses_its_partial_last_line() {
        // What `fetch_prefix` keeps of a longer file: exactly its limit, ending mid-rule.
        let kept = "User-agent: *\nDisallow: /private/\nAllow: /private/xy";
        let fetch = Fetch {
            requested: url("/robots.txt"),
            redirects: Vec::new(),
            outcome: Ok(crate::fetch::Response {
                final_url: url("/robots.txt"),
                status: 200,
                server_ip: None,
                http_version: crate::fetch::HttpVersion::Http1,
                content_type: Some("text/plain".into()),
                retry_after: None,
                etag: None,
                last_modified: None,
                body: bytes::Bytes::from_static(kept.as_bytes()),
                truncated: true,
                kind: crate::fetch::BodyKind::Other,
                tls: crate::fetch::TlsStatus::None,
            }),
            elapsed: Duration::ZERO,
        };
        let robots = Robots::from_fetch(&fetch, &RobotsConfig::default());
        assert_eq!(robots.source(), &RobotsSource::Parsed { truncated: true });
        assert!(!robots.allows(&url("/private/xyz")));
        assert!(robots.allows(&url("/public")));
    }

    #[test]
    fn robots_url_keeps_scheme_host_and_port_only() {
        let u = Url::parse("https://user:pw@e.com:8443/a/b?q=1#f").unwrap();
        assert_eq!(
            robots_url(&u).unwrap().as_str(),
            "https://e.com:8443/robots.txt"
        );
    }
}

//! The scenario file: what an operator writes to describe a simulated internet (TOML).
//!
//! A scenario lists providers and sites explicitly and/or asks for generated ones; the world
//! is then a pure function of (scenario, seed). This module only parses and validates; it
//! must not generate anything (see `world`). The format is documented in `docs/simweb.md`.

use std::net::Ipv4Addr;
use std::path::Path;

use serde::Deserialize;

use crate::error::SimWebError;

/// The `small` scenario shipped with the crate.
pub const SMALL: &str = include_str!("../scenarios/small.toml");
/// The `demo` scenario shipped with the crate.
pub const DEMO: &str = include_str!("../scenarios/demo.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Top-level domains that the DNS server is authoritative for.
    #[serde(default = "default_tlds")]
    pub tlds: Vec<String>,
    /// Simulated seconds per real second for provider behaviour (3600: an hour per second).
    #[serde(default = "default_time_scale")]
    pub time_scale: f64,
    /// How many corpus images the world declares "known" (chosen by the seed).
    #[serde(default)]
    pub known_images: usize,
    /// Corpus files declared known in addition, by file name (e.g. `img-0001.jpg`).
    #[serde(default)]
    pub known_files: Vec<String>,
    #[serde(default, rename = "provider")]
    pub providers: Vec<ProviderSpec>,
    #[serde(default, rename = "site")]
    pub sites: Vec<SiteSpec>,
    #[serde(default)]
    pub generate: Option<GenerateSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub name: String,
    pub country: String,
    pub asn: u32,
    /// IPv4 CIDR blocks inside 127.0.0.0/8.
    pub blocks: Vec<String>,
    /// Abuse mailbox; default `abuse@<slug>.<first tld>`.
    #[serde(default)]
    pub abuse_email: Option<String>,
    /// Whether the provider also takes notices by webhook (JSON POST).
    #[serde(default)]
    pub webhook: bool,
    /// A CDN fronts other providers' sites with its own addresses and abuse contact.
    #[serde(default)]
    pub cdn: bool,
    #[serde(default)]
    pub on_notice: Action,
    #[serde(default)]
    pub serving: Serving,
}

/// What a provider does with a notice naming URLs it hosts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Take down the URLs named (`scope = "named"`) or every item of the sites named (`"site"`).
    Remove {
        delay_hours: Delay,
        #[serde(default)]
        scope: RemoveScope,
    },
    /// Do nothing.
    Ignore,
    /// Take the named items down, then put the same image (or a re-encoded copy) up again
    /// on another site of the same provider.
    Reupload {
        delay_hours: Delay,
        reupload_after_hours: Delay,
        #[serde(default)]
        reencode: bool,
    },
    /// Move every site named to another provider (DNS changes; content stays up).
    MoveSite { delay_hours: Delay, to: String },
    /// Answer 200 with a placeholder image instead of the item.
    Placeholder { delay_hours: Delay },
    /// A CDN passes the notice on to the origin provider after a delay.
    Forward { delay_hours: Delay },
}

impl Default for Action {
    fn default() -> Self {
        Action::Remove {
            delay_hours: Delay::Fixed(24.0),
            scope: RemoveScope::Named,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RemoveScope {
    #[default]
    Named,
    Site,
}

/// A delay distribution in simulated hours.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Delay {
    Fixed(f64),
    Uniform { min: f64, max: f64 },
    Exponential { mean: f64 },
}

/// How a provider's servers answer, notice or not.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Serving {
    /// Extra latency before every response, in real milliseconds.
    #[serde(default)]
    pub slow_ms: u64,
    /// Requests per real second per host above which the provider answers 429 with Retry-After.
    #[serde(default)]
    pub rate_limit_per_second: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteKind {
    Gallery,
    Forum,
    Directory,
    Imageboard,
    /// An unrelated site with nothing of interest.
    Plain,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RobotsVariant {
    #[default]
    Allow,
    DisallowAll,
    DisallowPrivate,
    CrawlDelay,
    Garbage,
    Missing,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trap {
    /// Endless months under `/calendar/`.
    Calendar,
    /// A fresh session id in every link under `/shop/`.
    SessionId,
    /// Relative links that repeat the path ever deeper under `/topics/`.
    DeepPath,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    pub host: String,
    pub provider: String,
    pub kind: SiteKind,
    /// A CDN provider fronting this site (DNS then points at the CDN).
    #[serde(default)]
    pub behind_cdn: Option<String>,
    #[serde(default = "default_pages")]
    pub pages: u32,
    #[serde(default = "default_images_per_page")]
    pub images_per_page: u32,
    /// Share of images drawn from the known set (0 for none).
    #[serde(default)]
    pub known_share: f64,
    #[serde(default)]
    pub robots: RobotsVariant,
    /// Serve the misbehaviour endpoints (`/quirks/...`).
    #[serde(default)]
    pub hostile: bool,
    #[serde(default)]
    pub traps: Vec<Trap>,
    /// Photos in the pool every trap page shows (0: trap pages show none).
    #[serde(default)]
    pub trap_images: u32,
    /// Serve over TLS (HTTP/2 or HTTP/1.1 by ALPN) on the HTTPS port; plain HTTP redirects there.
    #[serde(default)]
    pub https: bool,
    /// Names under this host that are CNAMEs of it (e.g. `www`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Archives of photos (`.zip`, `.tar.gz` alternately) linked from the site's first page.
    #[serde(default)]
    pub archives: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSpec {
    pub providers: u32,
    pub countries: Vec<String>,
    pub sites: u32,
    pub pages_per_site: [u32; 2],
    pub images_per_page: [u32; 2],
    /// Share of generated sites that carry known images at all.
    #[serde(default = "default_interesting")]
    pub interesting_share: f64,
    /// Share of known images on an interesting site.
    #[serde(default = "default_known_share")]
    pub known_share: f64,
    /// Share of generated sites fronted by a CDN (needs a provider with `cdn = true`).
    #[serde(default)]
    pub cdn_share: f64,
    /// Share of generated sites served over HTTPS.
    #[serde(default)]
    pub https_share: f64,
    /// How many generated sites serve the misbehaviour endpoints.
    #[serde(default)]
    pub hostile_sites: u32,
    /// Share of generated non-plain sites that serve one or two photo archives (default 0).
    #[serde(default)]
    pub archive_share: f64,
}

fn default_tlds() -> Vec<String> {
    vec!["sim".to_owned()]
}
fn default_time_scale() -> f64 {
    3600.0
}
fn default_pages() -> u32 {
    6
}
fn default_images_per_page() -> u32 {
    4
}
fn default_interesting() -> f64 {
    0.5
}
fn default_known_share() -> f64 {
    0.2
}

/// A parsed CIDR block inside 127.0.0.0/8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Block {
    pub fn parse(text: &str) -> Result<Block, SimWebError> {
        let bad = || {
            SimWebError::Scenario(format!(
                "bad IP block {text:?}: want a.b.c.d/n inside 127.0.0.0/8"
            ))
        };
        let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) || addr.octets()[0] != 127 {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - u32::from(prefix));
        Ok(Block {
            base: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    /// Usable host addresses (network and broadcast excluded).
    pub fn hosts(&self) -> u32 {
        (1u32 << (32 - u32::from(self.prefix))).saturating_sub(2)
    }

    /// The `n`-th usable address (wrapping).
    pub fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1 + n % self.hosts().max(1))
    }

    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) | (u32::MAX >> u32::from(self.prefix)))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - u32::from(self.prefix));
        u32::from(ip) & mask == u32::from(self.base)
    }
}

/// Which scenario to load: a shipped one by name, or a file.
pub fn load(name_or_path: &str) -> Result<Scenario, SimWebError> {
    let text = match name_or_path {
        "small" => SMALL.to_owned(),
        "demo" => DEMO.to_owned(),
        path => std::fs::read_to_string(Path::new(path)).map_err(|source| SimWebError::Io {
            what: format!("reading scenario {path}"),
            source,
        })?,
    };
    parse(&text)
}

pub fn parse(text: &str) -> Result<Scenario, SimWebError> {
    let scenario: Scenario =
        toml::from_str(text).map_err(|e| SimWebError::Scenario(e.to_string()))?;
    validate(&scenario)?;
    Ok(scenario)
}

fn validate(s: &Scenario) -> Result<(), SimWebError> {
    let fail = |m: String| Err(SimWebError::Scenario(m));
    if !(s.time_scale.is_finite() && s.time_scale > 0.0) {
        return fail(format!("time_scale must be positive, got {}", s.time_scale));
    }
    if s.tlds.is_empty() {
        return fail("at least one TLD is needed".into());
    }
    for p in &s.providers {
        if p.blocks.is_empty() {
            return fail(format!("provider {:?} has no IP block", p.name));
        }
        for b in &p.blocks {
            Block::parse(b)?;
        }
        if let Action::MoveSite { to, .. } = &p.on_notice
            && !s.providers.iter().any(|q| &q.name == to)
        {
            return fail(format!(
                "provider {:?} moves sites to unknown provider {to:?}",
                p.name
            ));
        }
    }
    for site in &s.sites {
        if !s.providers.iter().any(|p| p.name == site.provider) {
            return fail(format!(
                "site {:?} names unknown provider {:?}",
                site.host, site.provider
            ));
        }
        if let Some(cdn) = &site.behind_cdn
            && !s.providers.iter().any(|p| &p.name == cdn && p.cdn)
        {
            return fail(format!(
                "site {:?} is behind {cdn:?}, which is not a CDN provider",
                site.host
            ));
        }
        if !s.tlds.iter().any(|t| site.host.ends_with(&format!(".{t}"))) {
            return fail(format!(
                "site {:?} is not under one of the TLDs {:?}",
                site.host, s.tlds
            ));
        }
    }
    if let Some(g) = &s.generate {
        if g.countries.is_empty()
            || g.pages_per_site[0] == 0
            || g.pages_per_site[0] > g.pages_per_site[1]
        {
            return fail("generate: countries must be non-empty and pages_per_site a range [lo, hi], lo >= 1".into());
        }
        if g.images_per_page[0] > g.images_per_page[1] {
            return fail("generate: images_per_page must be a range [lo, hi]".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenarios_parse() {
        let small = parse(SMALL).unwrap();
        assert_eq!(small.name, "small");
        let demo = parse(DEMO).unwrap();
        assert!(demo.generate.is_some());
    }

    #[test]
    fn hostile_scenarios_are_rejected_not_panicked() {
        for text in [
            "",
            "name = 1",
            "name = \"x\"\ntime_scale = -1",
            "name = \"x\"\n[[provider]]\nname=\"a\"\ncountry=\"NL\"\nasn=1\nblocks=[\"10.0.0.0/8\"]",
            "name = \"x\"\n[[provider]]\nname=\"a\"\ncountry=\"NL\"\nasn=1\nblocks=[\"127.0.0.0/99\"]",
            "name = \"x\"\n[[site]]\nhost=\"a.sim\"\nprovider=\"nobody\"\nkind=\"gallery\"",
            "name = \"x\"\nunknown_field = true",
        ] {
            assert!(parse(text).is_err(), "accepted {text:?}");
        }
    }

    #[test]
    fn blocks_parse_and_stay_in_loopback() {
        let b = Block::parse("127.10.1.77/24").unwrap();
        assert_eq!(b.base, Ipv4Addr::new(127, 10, 1, 0));
        assert_eq!(b.host(0), Ipv4Addr::new(127, 10, 1, 1));
        assert_eq!(b.last(), Ipv4Addr::new(127, 10, 1, 255));
        assert!(b.contains(Ipv4Addr::new(127, 10, 1, 200)));
        assert!(Block::parse("192.168.0.0/16").is_err());
    }
}

//! The `[notice]` configuration table: who the platform is, where attribution data comes
//! from, overrides, CDNs, routing, delivery, schedules and the escalation ladder. Every field
//! has a default, so an empty table runs (sending to nobody until RDAP answers).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The id routing gives the platform's own hotline.
pub const OWN_HOTLINE: &str = "own";

/// The notice worker's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoticeConfig {
    /// The hotline this platform acts as. Default: "Aranea hotline".
    pub hotline: HotlineConfig,
    /// Other hotlines, by id, that routing may name.
    pub hotlines: BTreeMap<String, HotlineConfig>,
    /// Hosting country (ISO alpha-2) → hotline id. Unlisted countries go to `hotline`.
    pub routing: BTreeMap<String, String>,
    /// iptoasn-format TSV (`start end asn country description`). Default: none (no ASN step).
    pub ip_to_asn_path: Option<PathBuf>,
    /// RDAP base URLs tried in order for IP networks (each ends with `/`); the first that
    /// answers wins. Default: the five RIRs.
    pub rdap_base_urls: Vec<String>,
    /// RFC 9224 bootstrap files (IANA's `ipv4.json`, `ipv6.json`): an address inside one of
    /// their prefixes is looked up at that registry only (longest prefix); others go to
    /// `rdap_base_urls`. Default: none.
    pub rdap_bootstrap_files: Vec<PathBuf>,
    /// RDAP answers are kept this long. Default: 24 h.
    pub rdap_cache_secs: u64,
    /// RDAP `links` followed at most (referrals between registries). Default: 3.
    pub rdap_max_referrals: usize,
    /// Largest RDAP body read. Default: 256 KiB.
    pub rdap_max_bytes: u64,
    /// Overrides by `asn:N`, `domain:NAME` or `provider:NAME`: the contact to use instead.
    pub overrides: BTreeMap<String, OverrideConfig>,
    /// CDNs: their ASNs and ranges; a host answering inside them is fronted by a CDN.
    pub cdns: Vec<CdnConfig>,
    /// Upstream network abuse contact per ASN (`"64501" = "abuse@transit.example"`), for the
    /// escalation ladder.
    pub upstreams: BTreeMap<String, String>,
    /// Webhook endpoints per provider name, used before email when present.
    pub webhooks: BTreeMap<String, WebhookConfig>,
    /// Items of one provider seen within this window go out in one notice. Default: 0 (next
    /// pass).
    pub batch_window_secs: u64,
    /// Re-checks after a notice, in seconds from the first notice. Default: 1 h, 6 h; then
    /// every `recheck_every_secs`.
    pub recheck_after_secs: Vec<u64>,
    /// Default: 24 h.
    pub recheck_every_secs: u64,
    /// A first "removed" observation is confirmed this much later. Default: 6 h — longer
    /// than common DNS TTLs, so a site that moved (its old address answering 404 while
    /// resolvers still hold the old answer) is not mistaken for a removal.
    pub confirm_after_secs: u64,
    /// Still present: notify again this long after the last notice. Default: 24 h.
    pub renotify_secs: u64,
    /// Unanswered notices before the next escalation step. Default: 2.
    pub escalate_after: u32,
    /// The ladder, in order: `second_contact`, `upstream`, `country_hotline`, `police`.
    pub escalation_ladder: Vec<String>,
    /// The police contact for the `police` step. Default: none (step skipped).
    pub police_contact: Option<String>,
    /// Removed URLs stay watched: re-fetched this often. Default: 24 h.
    pub watch_every_secs: u64,
    /// At each watch of a removed item, the crawler is sent back to at most this many
    /// known hosts served from the removed copy's neighbourhood (its address's /24, or /120
    /// for IPv6) that attribute to the same provider, where a re-upload under a new URL
    /// would be (docs/notices.md, "Re-uploads"). 0 turns it off. Default: 20.
    pub revisit_hosts: u32,
    /// Done pages of each such host queued again, those fetched longest ago first.
    /// Default: 50.
    pub revisit_pages_per_host: u32,
    /// A host is sent back to the crawler at most this often, however many removals name
    /// it. Default: 24 h.
    pub revisit_host_every_secs: u64,
    /// PDQ distance at or under which a re-check or re-upload counts as the same media.
    /// Default: 31.
    pub pdq_threshold: u32,
    /// Delivery.
    pub smtp: SmtpConfig,
    /// First retry after this many seconds, doubling per attempt. Default: 60.
    pub retry_base_secs: u64,
    /// Attempts per contact before trying the next. Default: 5.
    pub max_attempts: u32,
    /// A bounced contact is skipped this long. Default: 24 h.
    pub dead_contact_secs: u64,
    /// Notice language when the hosting country has none listed. Default: `en`.
    pub default_language: String,
    /// Country → language (`FR = "fr"`). Default: FR, BE, CH, LU, CA → fr.
    pub languages: BTreeMap<String, String>,
    /// Directory with `{lang}.subject.txt`, `{lang}.txt`, `{lang}.html` overriding the
    /// built-in templates. Default: none.
    pub templates_dir: Option<PathBuf>,
    /// Base URL of the acknowledge/dispute page (the server's handler). Default:
    /// `http://localhost:8080/notice/respond`.
    pub respond_base_url: String,
    /// HMAC key for the signed links (hex or text). Default: empty — links are then signed
    /// with a random key made once and kept in the database, shared by every process using
    /// it (see [`crate::link_secret`]).
    pub link_secret: String,
    /// Signed links expire after this. Default: 30 days.
    pub link_ttl_secs: u64,
    /// Mark every notice as a drill (XARF test flag, subject prefix).
    pub test: bool,
    /// CIDR blocks the SSRF guard admits although not public (re-checks, RDAP, webhooks).
    /// Default: none. The demo names the simulated web's blocks.
    pub allow_cidrs: Vec<String>,
    /// DNS servers (`IP:PORT`); default: the system's.
    pub name_servers: Vec<std::net::SocketAddr>,
    /// Extra root certificates (PEM files) for re-checks and webhooks.
    pub ca_files: Vec<PathBuf>,
    /// Seconds between worker passes. Default: 60.
    pub interval_secs: u64,
}

impl Default for NoticeConfig {
    fn default() -> Self {
        NoticeConfig {
            hotline: HotlineConfig::default(),
            hotlines: BTreeMap::new(),
            routing: BTreeMap::new(),
            ip_to_asn_path: None,
            rdap_base_urls: vec![
                "https://rdap.arin.net/registry/".to_owned(),
                "https://rdap.db.ripe.net/".to_owned(),
                "https://rdap.apnic.net/".to_owned(),
                "https://rdap.lacnic.net/rdap/".to_owned(),
                "https://rdap.afrinic.net/rdap/".to_owned(),
            ],
            rdap_bootstrap_files: Vec::new(),
            rdap_cache_secs: 24 * 3600,
            rdap_max_referrals: 3,
            rdap_max_bytes: 256 * 1024,
            overrides: BTreeMap::new(),
            cdns: Vec::new(),
            upstreams: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            batch_window_secs: 0,
            recheck_after_secs: vec![3600, 6 * 3600],
            recheck_every_secs: 24 * 3600,
            confirm_after_secs: 6 * 3600,
            renotify_secs: 24 * 3600,
            escalate_after: 2,
            escalation_ladder: vec![
                "second_contact".to_owned(),
                "upstream".to_owned(),
                "country_hotline".to_owned(),
            ],
            police_contact: None,
            watch_every_secs: 24 * 3600,
            revisit_hosts: 20,
            revisit_pages_per_host: 50,
            revisit_host_every_secs: 24 * 3600,
            pdq_threshold: 31,
            smtp: SmtpConfig::default(),
            retry_base_secs: 60,
            max_attempts: 5,
            dead_contact_secs: 24 * 3600,
            default_language: "en".to_owned(),
            languages: ["FR", "BE", "CH", "LU", "CA"]
                .into_iter()
                .map(|c| (c.to_owned(), "fr".to_owned()))
                .collect(),
            templates_dir: None,
            respond_base_url: "http://localhost:8080/notice/respond".to_owned(),
            link_secret: String::new(),
            link_ttl_secs: 30 * 24 * 3600,
            test: false,
            allow_cidrs: Vec::new(),
            name_servers: Vec::new(),
            ca_files: Vec::new(),
            interval_secs: 60,
        }
    }
}

/// A hotline: the sender of notices, or a routing target.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HotlineConfig {
    pub name: String,
    /// Sender address of notices, and the XARF reporter contact.
    pub email: String,
    /// The XARF reporter domain.
    pub domain: String,
    pub country: String,
    /// The law under which the hotline acts, quoted in every notice.
    pub legal_basis: String,
    /// `send` (the platform sends notices to providers on its behalf) or `forward` (notices
    /// for its country go to the hotline's own address, for it to act on or pass to the
    /// police). Default: send.
    pub mode: String,
}

impl Default for HotlineConfig {
    fn default() -> Self {
        HotlineConfig {
            name: "Aranea hotline".to_owned(),
            email: "notices@aranea.invalid".to_owned(),
            domain: "aranea.invalid".to_owned(),
            country: "NL".to_owned(),
            legal_basis: "Directive 2011/93/EU art. 25; Regulation (EU) 2022/2065 art. 16"
                .to_owned(),
            mode: "send".to_owned(),
        }
    }
}

/// An operator override: who receives notices for this ASN, domain or provider.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct OverrideConfig {
    /// Provider name to record.
    pub provider: Option<String>,
    /// Abuse addresses, in order.
    pub emails: Vec<String>,
    /// A webhook URL (e.g. the provider's abuse form API).
    pub webhook: Option<String>,
}

/// A CDN: notices for hosts behind it go to its abuse channel, asking it to pass them on.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CdnConfig {
    pub name: String,
    pub asns: Vec<u32>,
    /// CIDR ranges.
    pub ranges: Vec<String>,
    /// Abuse address; default: the RDAP abuse contact of the CDN's network.
    pub email: Option<String>,
}

/// A provider's webhook.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// HMAC-SHA256 key shared with the provider.
    pub secret: String,
}

/// The SMTP relay notices leave through.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host. Default: none — each contact's domain MX is not looked up; without a
    /// relay, email contacts fail (recorded, retried).
    pub host: Option<String>,
    /// Default: 587.
    pub port: u16,
    /// `starttls` (required), `tls` (implicit TLS) or `none` (tests, loopback relays).
    /// Default: starttls.
    pub tls: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// DKIM: selector, signing domain and a PEM (PKCS#1 RSA) key file.
    pub dkim: Option<DkimConfig>,
    /// Seconds for the whole SMTP exchange. Default: 60.
    pub timeout_secs: u64,
    /// Extra root certificates (PEM files) trusted for the relay's TLS certificate, e.g. a
    /// private CA. Default: none.
    pub ca_files: Vec<PathBuf>,
    /// Trust the system's roots as well as `ca_files`. Default: true; false trusts
    /// `ca_files` only.
    pub system_roots: bool,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: 587,
            tls: "starttls".to_owned(),
            username: None,
            password: None,
            dkim: None,
            timeout_secs: 60,
            ca_files: Vec::new(),
            system_roots: true,
        }
    }
}

/// DKIM signing.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DkimConfig {
    pub selector: String,
    pub domain: String,
    pub private_key_path: PathBuf,
}

impl NoticeConfig {
    /// The fetcher configuration for re-checks, RDAP and webhooks: the crawler's defaults
    /// with this table's allowlist, name servers and roots.
    pub fn fetch_config(&self) -> Result<aranea_crawl::fetch::FetchConfig, crate::NoticeError> {
        use aranea_crawl::ssrf::NameServers;
        let setup = |message: String| crate::NoticeError::Setup { message };
        let mut fetch = aranea_crawl::fetch::FetchConfig::default();
        for cidr in &self.allow_cidrs {
            fetch.guard.allow_cidrs.push(
                cidr.parse()
                    .map_err(|e| setup(format!("allow_cidrs {cidr:?}: {e}")))?,
            );
        }
        if !self.name_servers.is_empty() {
            fetch.guard.name_servers = NameServers::Servers(self.name_servers.clone());
        }
        for path in &self.ca_files {
            fetch.tls.extra_roots_pem.push(
                std::fs::read_to_string(path)
                    .map_err(|e| setup(format!("CA file {}: {e}", path.display())))?,
            );
        }
        fetch.user_agent = concat!("aranea-notice/", env!("CARGO_PKG_VERSION")).to_owned();
        Ok(fetch)
    }

    /// The hotline responsible for a hosting country, and its id ([`OWN_HOTLINE`] for the
    /// platform's own).
    pub fn hotline_for(&self, country: Option<&str>) -> (String, &HotlineConfig) {
        country
            .and_then(|c| self.routing.get(&c.to_ascii_uppercase()))
            .and_then(|id| self.hotlines.get(id).map(|h| (id.clone(), h)))
            .unwrap_or_else(|| (OWN_HOTLINE.to_owned(), &self.hotline))
    }

    /// The notice language for a hosting country.
    pub fn language_for(&self, country: Option<&str>) -> String {
        country
            .and_then(|c| self.languages.get(&c.to_ascii_uppercase()))
            .cloned()
            .unwrap_or_else(|| self.default_language.clone())
    }
}

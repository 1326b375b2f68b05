//! The crawler's configuration: the `[crawl]` table of `--config`, one serde type with a
//! documented default for every field, turned into the per-piece configurations (fetch,
//! robots, extraction, canonicalisation) the worker hands to them.
//!
//! This module must not read files other than the CA files it is told to read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::archive::ArchiveLimits;
use crate::canonical::CanonicalConfig;
use crate::extract::ExtractConfig;
use crate::fetch::{FetchConfig, TlsConfig};
use crate::robots::RobotsConfig;
use crate::scope::{DenyConfig, DenyListError};
use crate::ssrf::{GuardConfig, NameServers};

/// Whether robots.txt applies to reported and seeded URLs (discovered links always obey it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RobotsForReported {
    /// Reported URLs obey robots.txt like any other. The default.
    #[default]
    Obey,
    /// Reported URLs are fetched even where robots.txt disallows them (evidence collection);
    /// rate limits still apply.
    Ignore,
}

/// Delays between requests to one host.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolitenessConfig {
    /// Least time between the end of one request and the start of the next to the same
    /// host, in ms. Default: 1,000.
    pub min_delay_ms: u64,
    /// Longest regular delay, in ms (robots Crawl-delay and response-time scaling stop
    /// here). Default: 30,000.
    pub max_delay_ms: u64,
    /// Longest robots.txt Crawl-delay honoured, in ms. Default: 30,000.
    pub crawl_delay_cap_ms: u64,
    /// The delay is at least this multiple of the last response time (slow hosts get
    /// slower visits). Default: 0 (off).
    pub response_time_factor: f64,
    /// First back-off after an error, in ms; doubled per consecutive error. Default: 5,000.
    pub error_backoff_ms: u64,
    /// Longest back-off after errors, in ms. Default: 600,000 (10 min).
    pub max_backoff_ms: u64,
    /// Longest Retry-After (429/503) honoured, in ms. Default: 3,600,000 (1 h).
    pub retry_after_cap_ms: u64,
}

impl Default for PolitenessConfig {
    fn default() -> Self {
        PolitenessConfig {
            min_delay_ms: 1_000,
            max_delay_ms: 30_000,
            crawl_delay_cap_ms: 30_000,
            response_time_factor: 0.0,
            error_backoff_ms: 5_000,
            max_backoff_ms: 600_000,
            retry_after_cap_ms: 3_600_000,
        }
    }
}

/// Limits against traps and runaway sites.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Deepest link followed from a reported or seeded URL (media of a page at the limit are
    /// still fetched). Default: 8.
    pub max_depth: u32,
    /// Most requests to one host (`scheme://host:port`). Default: 20,000.
    pub max_fetches_per_host: i64,
    /// Most requests to all hosts of one registrable domain. Default: 50,000.
    pub max_fetches_per_domain: i64,
    /// Most URLs attempted under one path prefix of a host. Default: 2,000.
    pub max_fetches_per_path_prefix: i64,
    /// How many leading path segments make the prefix (`/calendar/2024/` with 1 →
    /// `/calendar/`). Default: 1.
    pub path_prefix_segments: usize,
    /// Stop following a site's links after this many pages in a row where nothing matched.
    /// Default: 50.
    pub quiet_pages: i64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            max_depth: 8,
            max_fetches_per_host: 20_000,
            max_fetches_per_domain: 50_000,
            max_fetches_per_path_prefix: 2_000,
            path_prefix_segments: 1,
            quiet_pages: 50,
        }
    }
}

/// The `[crawl]` configuration table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrawlConfig {
    /// CIDR blocks the SSRF guard admits although they are not public. Default: none.
    /// The simulated web's blocks (e.g. `127.10.0.0/16`) in tests and the demo.
    pub allow_cidrs: Vec<IpNet>,
    /// DNS servers (`ip:port`); empty: the system resolver. Default: empty.
    pub name_servers: Vec<SocketAddr>,
    /// Trust the operating system's root certificates. Default: true.
    pub system_roots: bool,
    /// Extra root certificates (PEM files). Default: none.
    pub ca_files: Vec<PathBuf>,
    /// Hosts whose certificate problems are recorded but do not stop the fetch. Default: none.
    pub accept_invalid_certs_for: Vec<String>,
    /// Sent as `User-Agent`. Default: `aranea-crawler/VERSION`.
    pub user_agent: String,
    /// Robots.txt product token. Default: `aranea`.
    pub robots_token: String,
    /// Robots.txt for reported and seeded URLs. Default: `obey`.
    pub robots_for_reported: RobotsForReported,
    /// How long a robots.txt answer is used, ms, also by a worker that holds the host the
    /// whole time. Default: 86,400,000 (a day).
    pub robots_ttl_ms: u64,
    /// Connect timeout, ms. Default: 10,000.
    pub connect_timeout_ms: u64,
    /// Longest silence while reading, ms. Default: 15,000.
    pub read_timeout_ms: u64,
    /// Deadline for a whole fetch (redirects and body), ms. Default: 30,000.
    pub total_timeout_ms: u64,
    /// Largest body, after decompression. Default: 32 MiB.
    pub max_body_bytes: u64,
    /// Redirects followed per fetch. Default: 10.
    pub max_redirects: usize,
    /// Attempts at one URL before it is given up (transient errors, 429/503, 5xx).
    /// Default: 3.
    pub max_attempts: i64,
    pub politeness: PolitenessConfig,
    pub budgets: BudgetConfig,
    /// Hosts leased at once by this worker (each has at most one request in flight).
    /// Default: 64.
    pub max_hosts: u32,
    /// Lease length, ms; renewed while working. A dead worker's hosts are taken over this
    /// long after its last renewal. Must exceed twice `total_timeout_ms`. Default: 120,000.
    pub lease_ms: i64,
    /// How often to look for claimable hosts and new reports, ms. Default: 1,000.
    pub claim_interval_ms: u64,
    /// URLs taken from a leased host per store round trip. Default: 16.
    pub url_batch: u32,
    /// Threads hashing media (and parsing pages) at once; 0: one per CPU. Default: 0.
    pub hash_workers: usize,
    /// PDQ hashes under this quality are not matched (digests still are). Default: 50.
    pub min_pdq_quality: u8,
    /// Also match the 8 rotations and flips of each PDQ hash. Default: false.
    pub pdq_dihedral: bool,
    /// Banks matched (by name); empty: every enabled bank. Allow-lists always apply.
    pub banks: Vec<String>,
    /// Services never crawled (reverse image search, proxies, translators, URL fetchers).
    pub deny: DenyConfig,
    /// Bounds on archive bodies (members, unpacked bytes, nesting).
    pub archive: ArchiveLimits,
    /// Longest time to probe, decode and hash one video, ms; the decoder child is killed
    /// then and the video recorded as unreadable. Capped so that a fetch and a video fit in
    /// half a lease (see [`CrawlConfig::video_wall`]). Default: 30,000.
    pub video_max_wall_ms: u64,
    /// Largest unknown media kept in memory per page until the page's verdict, bytes (so it
    /// can go to review if the page matches). Default: 64 MiB.
    pub max_held_bytes: u64,
}

impl Default for CrawlConfig {
    fn default() -> Self {
        CrawlConfig {
            allow_cidrs: Vec::new(),
            name_servers: Vec::new(),
            system_roots: true,
            ca_files: Vec::new(),
            accept_invalid_certs_for: Vec::new(),
            user_agent: concat!("aranea-crawler/", env!("CARGO_PKG_VERSION")).to_owned(),
            robots_token: "aranea".to_owned(),
            robots_for_reported: RobotsForReported::Obey,
            robots_ttl_ms: 24 * 3600 * 1000,
            connect_timeout_ms: 10_000,
            read_timeout_ms: 15_000,
            total_timeout_ms: 30_000,
            max_body_bytes: 32 * 1024 * 1024,
            max_redirects: 10,
            max_attempts: 3,
            politeness: PolitenessConfig::default(),
            budgets: BudgetConfig::default(),
            max_hosts: 64,
            lease_ms: 120_000,
            claim_interval_ms: 1_000,
            url_batch: 16,
            hash_workers: 0,
            min_pdq_quality: 50,
            pdq_dihedral: false,
            banks: Vec::new(),
            max_held_bytes: 64 * 1024 * 1024,
            video_max_wall_ms: 30_000,
            deny: DenyConfig::default(),
            archive: ArchiveLimits::default(),
        }
    }
}

/// A configuration that cannot be used. A variant that wraps another error names it as its
/// source and leaves it out of its own message: the binary prints the chain (`{:#}`), so
/// naming it in both would print the cause twice.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading CA file {path}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("crawl.deny")]
    Deny(#[from] DenyListError),
    #[error("{field} must be {rule}")]
    OutOfRange {
        field: &'static str,
        rule: &'static str,
    },
}

impl CrawlConfig {
    /// The time one video may take: `video_max_wall_ms`, but never so long that its fetch and
    /// its decoding outlast half a lease, when the step would no longer hold its host.
    pub fn video_wall(&self) -> Duration {
        let half_lease = u64::try_from(self.lease_ms / 2).unwrap_or(0);
        let room = half_lease.saturating_sub(self.total_timeout_ms).max(1_000);
        Duration::from_millis(self.video_max_wall_ms.min(room))
    }

    /// Checks the values that would make the crawler misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // A step renews its lease when half is left, so that half must cover a whole fetch.
        let fetch_fits = u64::try_from(self.lease_ms / 2).unwrap_or(0) > self.total_timeout_ms;
        let rules: [(bool, &'static str, &'static str); 6] = [
            (self.max_hosts >= 1, "max_hosts", "at least 1"),
            (self.lease_ms >= 1_000, "lease_ms", "at least 1,000"),
            (fetch_fits, "lease_ms", "more than twice total_timeout_ms"),
            (
                (1..=10_000).contains(&self.url_batch),
                "url_batch",
                "1 to 10,000",
            ),
            (self.max_attempts >= 1, "max_attempts", "at least 1"),
            (
                self.politeness.min_delay_ms <= self.politeness.max_delay_ms,
                "politeness.min_delay_ms",
                "at most politeness.max_delay_ms",
            ),
        ];
        match rules.iter().find(|(ok, _, _)| !ok) {
            Some((_, field, rule)) => Err(ConfigError::OutOfRange { field, rule }),
            None => Ok(()),
        }
    }

    /// The fetcher's configuration (reads `ca_files`).
    pub fn fetch_config(&self) -> Result<FetchConfig, ConfigError> {
        let mut extra_roots_pem = Vec::new();
        for path in &self.ca_files {
            let pem = std::fs::read_to_string(path).map_err(|source| ConfigError::CaFile {
                path: path.clone(),
                source,
            })?;
            extra_roots_pem.push(pem);
        }
        Ok(FetchConfig {
            guard: GuardConfig {
                allow_cidrs: self.allow_cidrs.clone(),
                name_servers: if self.name_servers.is_empty() {
                    NameServers::System
                } else {
                    NameServers::Servers(self.name_servers.clone())
                },
                ..GuardConfig::default()
            },
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            read_timeout: Duration::from_millis(self.read_timeout_ms),
            total_timeout: Duration::from_millis(self.total_timeout_ms),
            max_body_bytes: self.max_body_bytes,
            max_redirects: self.max_redirects,
            user_agent: self.user_agent.clone(),
            tls: TlsConfig {
                system_roots: self.system_roots,
                extra_roots_pem,
                accept_invalid_certs_for: self.accept_invalid_certs_for.clone(),
            },
            // Each hop is a request like any other: the target becomes a frontier entry,
            // fetched under its host's lease and pace; dedup ends redirect loops.
            redirects_to_caller: true,
        })
    }

    pub fn robots_config(&self) -> RobotsConfig {
        RobotsConfig {
            user_agent: self.robots_token.clone(),
            max_crawl_delay: Duration::from_millis(self.politeness.crawl_delay_cap_ms),
            ..RobotsConfig::default()
        }
    }

    pub fn extract_config(&self) -> ExtractConfig {
        ExtractConfig::default()
    }

    pub fn canonical_config(&self) -> CanonicalConfig {
        CanonicalConfig::default()
    }
}

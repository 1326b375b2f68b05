//! A small simulated internet and fetchers pointed at it.
#![allow(dead_code)]

use std::time::Duration;

use aranea_crawl::fetch::{FetchConfig, Fetcher, TlsConfig};
use aranea_crawl::ssrf::{GuardConfig, NameServers};
use aranea_simweb::{RunningWorld, SimWeb, scenario};
use url::Url;

/// The `small` scenario's provider blocks all sit in 127.10.0.0/16; the world's DNS, RDAP and
/// SMTP (127.0.53.1) and 127.0.0.1 stay outside it.
pub const SIMWEB_BLOCKS: &str = "127.10.0.0/16";

pub fn world() -> RunningWorld {
    SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap()
}

/// Limits small enough that hostile endpoints fail fast.
pub fn config(world: &RunningWorld) -> FetchConfig {
    FetchConfig {
        guard: GuardConfig {
            allow_cidrs: vec![SIMWEB_BLOCKS.parse().unwrap()],
            name_servers: NameServers::Servers(vec![world.dns_addr()]),
            dns_timeout: Duration::from_secs(2),
            ..GuardConfig::default()
        },
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        total_timeout: Duration::from_secs(20),
        max_body_bytes: 2 * 1024 * 1024,
        max_redirects: 8,
        tls: TlsConfig {
            system_roots: false,
            extra_roots_pem: world.ca_cert_pem().map(str::to_owned).into_iter().collect(),
            accept_invalid_certs_for: Vec::new(),
        },
        ..FetchConfig::default()
    }
}

pub fn fetcher(world: &RunningWorld) -> Fetcher {
    Fetcher::new(config(world)).unwrap()
}

pub fn url(world: &RunningWorld, host: &str, path: &str) -> Url {
    Url::parse(&world.url(host, path)).unwrap()
}

/// The hostile site of the `small` scenario.
pub const HOSTILE: &str = "odd-corner.sim";

//! The simulated internet, a store, a notice configuration pointing at both, the world's
//! accelerated clock, and a stand-in for the crawl worker that records sightings and matches
//! of the world's known images exactly as the crawler would (real fetch, real hashes).
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aranea_crawl::fetch::{FetchConfig, Fetcher, TlsConfig};
use aranea_crawl::ssrf::{GuardConfig, NameServers};
use aranea_notice::config::{CdnConfig, HotlineConfig, WebhookConfig};
use aranea_notice::{Clock, NoticeConfig, UnixMillis};
use aranea_simweb::{EPOCH_UNIX, ItemStatus, RunningWorld, SimWeb, scenario};
use aranea_store::{BankMatch, NewSighting, NewUrl, Priority, Store, UrlSource};

pub const HOUR_MS: i64 = 3_600_000;

pub fn world(seed: u64) -> Arc<RunningWorld> {
    Arc::new(SimWeb::start_with(scenario::load("small").unwrap(), seed).unwrap())
}

/// The `small` world plus a slow French provider (removes 30–60 h after a notice).
pub fn world_with_slow_provider(seed: u64) -> Arc<RunningWorld> {
    let small = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../simweb/scenarios/small.toml"
    ))
    .unwrap();
    let text = format!(
        "{small}\n[[provider]]\nname = \"Tortoise Hosting\"\ncountry = \"FR\"\nasn = 64506\n\
         blocks = [\"127.10.7.0/24\"]\n\
         on_notice = {{ action = \"remove\", delay_hours = {{ min = 30.0, max = 60.0 }} }}\n\n\
         [[site]]\nhost = \"tortoise-pics.sim\"\nprovider = \"Tortoise Hosting\"\n\
         kind = \"gallery\"\npages = 3\nimages_per_page = 4\nknown_share = 0.6\n"
    );
    Arc::new(SimWeb::start_with(scenario::parse(&text).unwrap(), seed).unwrap())
}

/// The world's clock as Unix milliseconds.
pub struct WorldClock(pub Arc<RunningWorld>);

impl Clock for WorldClock {
    fn now(&self) -> UnixMillis {
        let sim = i64::try_from(self.0.sim_now().as_millis()).unwrap();
        i64::try_from(EPOCH_UNIX).unwrap() * 1000 + sim
    }
}

/// Simulated time (since world start) of a Unix-millisecond instant.
pub fn sim_of(at: UnixMillis) -> Duration {
    Duration::from_millis(u64::try_from(at - i64::try_from(EPOCH_UNIX).unwrap() * 1000).unwrap())
}

/// What a worker needs to know of the world, passable to a child process as JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Addrs {
    pub dns: std::net::SocketAddr,
    pub rdap: String,
    pub smtp: std::net::SocketAddr,
    pub asn_path: std::path::PathBuf,
    pub webhooks: Vec<(String, String)>,
    pub ca: Option<String>,
}

impl Addrs {
    pub fn of(world: &RunningWorld) -> Addrs {
        Addrs {
            dns: world.dns_addr(),
            rdap: world.rdap_base_url(),
            smtp: world.smtp_addr(),
            asn_path: world.ip_to_asn_path().to_path_buf(),
            webhooks: ["Quickhost", "EdgeShield"]
                .iter()
                .map(|p| (p.to_string(), world.webhook_url(p).unwrap()))
                .collect(),
            ca: world.ca_cert_pem().map(str::to_owned),
        }
    }
}

pub fn fetch_config(world: &Addrs) -> FetchConfig {
    FetchConfig {
        guard: GuardConfig {
            // The providers' blocks, and the world's RDAP and webhook server.
            allow_cidrs: vec![
                "127.10.0.0/16".parse().unwrap(),
                "127.0.53.0/24".parse().unwrap(),
            ],
            name_servers: NameServers::Servers(vec![world.dns]),
            dns_timeout: Duration::from_secs(2),
            ..GuardConfig::default()
        },
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        total_timeout: Duration::from_secs(10),
        max_body_bytes: 4 * 1024 * 1024,
        tls: TlsConfig {
            system_roots: false,
            extra_roots_pem: world.ca.clone().into_iter().collect(),
            accept_invalid_certs_for: Vec::new(),
        },
        ..FetchConfig::default()
    }
}

pub fn notice_config(world: &Addrs) -> NoticeConfig {
    let mut config = NoticeConfig {
        hotline: HotlineConfig {
            name: "Test Hotline".into(),
            email: "notices@hotline.example".into(),
            domain: "hotline.example".into(),
            country: "NL".into(),
            ..HotlineConfig::default()
        },
        ip_to_asn_path: Some(world.asn_path.clone()),
        rdap_base_urls: vec![world.rdap.clone()],
        respond_base_url: "https://hotline.example/notice/respond".into(),
        link_secret: "test-secret".into(),
        ..NoticeConfig::default()
    };
    config.smtp.host = Some(world.smtp.ip().to_string());
    config.smtp.port = world.smtp.port();
    config.smtp.tls = "none".into();
    config.smtp.timeout_secs = 10;
    config.cdns = vec![CdnConfig {
        name: "EdgeShield".into(),
        asns: vec![64510],
        ..CdnConfig::default()
    }];
    for (provider, url) in &world.webhooks {
        config.webhooks.insert(
            provider.clone(),
            WebhookConfig {
                url: url.clone(),
                secret: format!("{provider}-secret"),
            },
        );
    }
    // Slowpoke's transit: another provider's mailbox, so the sink accepts the escalation.
    config
        .upstreams
        .insert("64502".into(), "noc@harbor-networks.sim".into());
    config.hotlines.insert(
        "de".into(),
        HotlineConfig {
            name: "DE hotline".into(),
            email: "hotline@de-hotline.example".into(),
            domain: "de-hotline.example".into(),
            country: "DE".into(),
            ..HotlineConfig::default()
        },
    );
    config.routing.insert("DE".into(), "de".into());
    config.retry_base_secs = 1;
    config
}

/// Removes a test's directory when dropped, so a failing assertion leaks nothing either.
pub struct RemoveOnDrop(pub std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_sqlite(name: &str) -> (String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "aranea-notice-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    (format!("sqlite://{}", dir.join("aranea.db").display()), dir)
}

/// The bank entry the stand-in matches media against: one per media, as a bank built from
/// reviewed media holds (so an appeal can withdraw one media's matches).
pub fn entry_of(sha256: &[u8; 32]) -> i64 {
    i64::from(u32::from_be_bytes([
        sha256[0], sha256[1], sha256[2], sha256[3],
    ]))
}

/// Records what the crawl worker would: every live known image URL of the world becomes a
/// sighting with a bank match, hashed from the bytes really served.
pub struct CrawlStandIn {
    pub fetcher: Fetcher,
    pub seen: HashSet<String>,
}

impl CrawlStandIn {
    pub fn new(world: &RunningWorld) -> CrawlStandIn {
        CrawlStandIn {
            fetcher: Fetcher::new(fetch_config(&Addrs::of(world))).unwrap(),
            seen: HashSet::new(),
        }
    }

    /// Records sightings of known images live now; returns how many were new.
    pub async fn crawl(&mut self, world: &RunningWorld, store: &Store, now: UnixMillis) -> usize {
        let live: Vec<_> = world
            .images_at(world.sim_now())
            .into_iter()
            .filter(|i| i.known && i.status == ItemStatus::Live)
            .collect();
        let mut new = 0;
        for image in live {
            if !self.seen.insert(image.url.clone()) {
                continue;
            }
            let url = url::Url::parse(&image.url).unwrap();
            let fetched = self.fetcher.fetch(&url).await;
            let Ok(response) = fetched.outcome else {
                continue;
            };
            let Ok(hashes) =
                aranea_hash::hash_media(&response.body, &aranea_hash::Limits::default())
            else {
                continue;
            };
            let media = aranea_crawl::pipeline::media_record(&hashes);
            store.media().record(&media, now).await.unwrap();
            record_match(store, hashes.sha256, &image.url, now).await;
            new += 1;
        }
        new
    }
}

/// A sighting at `url` of media already recorded, with its match in the bank of known media
/// ([`entry_of`]), as the crawler records one.
pub async fn record_match(store: &Store, sha256: [u8; 32], url: &str, now: UnixMillis) {
    let host = url::Url::parse(url).unwrap().host_str().unwrap().to_owned();
    let new_url = NewUrl::new(url, &host, &host, UrlSource::Link, Priority::Ordinary, now);
    let enqueued = store
        .frontier()
        .enqueue_urls(&[new_url], now)
        .await
        .unwrap();
    let sighting = store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: sha256,
            url: enqueued[0].id,
            page: None,
            member_path: None,
            seen_at: now,
            server_ip: None,
        })
        .await
        .unwrap();
    let hit = BankMatch {
        bank_id: 1,
        bank_name: "known".into(),
        entry_id: entry_of(&sha256),
        signal_type: "pdq".into(),
        distance: 0,
        classification: "A1".into(),
    };
    store
        .media()
        .record_matches(sighting, &[hit], now)
        .await
        .unwrap();
}

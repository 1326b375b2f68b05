//! A crawler pointed at a simulated internet, its banks made from the world's known photos,
//! and the world's ground truth turned into what the crawl rules should reach.
#![allow(dead_code)]

pub mod loopback;
pub mod reports;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aranea_crawl::config::{BudgetConfig, PolitenessConfig};
use aranea_crawl::{CrawlConfig, CrawlProgress, Crawler, DiscardMedia};
use aranea_index::import::{ImportInto, ImportOptions, ListFormat};
use aranea_index::{BankSpec, BankStore, LiveIndex, Origin, Provenance};
use aranea_simweb::RunningWorld;
use aranea_simweb::scenario::RobotsVariant;
use aranea_store::Store;
use ipnet::IpNet;
use url::Url;

/// 52 generated sites of 36–42 pages with 1–3 images each: > 2,000 pages, > 3,000 images.
pub const BIG: &str = r#"
name = "crawl-acceptance"
tlds = ["sim", "test"]
known_images = 40
[generate]
providers = 8
countries = ["NL", "DE", "US", "FR"]
sites = 52
pages_per_site = [36, 42]
images_per_page = [1, 3]
interesting_share = 0.4
known_share = 0.25
hostile_sites = 1
"#;

/// The provider blocks of the world: what the SSRF guard may admit, and nothing else.
pub fn provider_blocks(world: &RunningWorld) -> Vec<IpNet> {
    world
        .world()
        .providers
        .iter()
        .flat_map(|p| p.blocks.iter())
        .map(|b| format!("{}/{}", b.base, b.prefix).parse().unwrap())
        .collect()
}

/// Fast but polite: `delay_ms` between requests to a host, Crawl-delay capped there too.
pub fn config(world: &RunningWorld, delay_ms: u64) -> CrawlConfig {
    CrawlConfig {
        allow_cidrs: provider_blocks(world),
        name_servers: vec![world.dns_addr()],
        system_roots: false,
        ca_files: world
            .ca_cert_path()
            .map(Path::to_path_buf)
            .into_iter()
            .collect(),
        connect_timeout_ms: 3_000,
        read_timeout_ms: 3_000,
        total_timeout_ms: 5_000,
        max_body_bytes: 4 * 1024 * 1024,
        politeness: PolitenessConfig {
            min_delay_ms: delay_ms,
            max_delay_ms: delay_ms.max(200),
            crawl_delay_cap_ms: delay_ms,
            error_backoff_ms: 200,
            max_backoff_ms: 1_000,
            retry_after_cap_ms: 2_000,
            ..PolitenessConfig::default()
        },
        budgets: BudgetConfig {
            max_depth: 20,
            max_fetches_per_path_prefix: 300,
            quiet_pages: 1_000,
            ..BudgetConfig::default()
        },
        lease_ms: 20_000,
        claim_interval_ms: 100,
        ..CrawlConfig::default()
    }
}

/// A crawler under `worker` with `config` and the world's banks (in `banks_dir`), whose
/// media are hashed and dropped.
pub fn crawler(
    store: &Store,
    world: &RunningWorld,
    banks_dir: &Path,
    config: CrawlConfig,
    worker: &str,
) -> Crawler {
    Crawler::with_worker_name(
        store.clone(),
        banks(world, banks_dir),
        config,
        Arc::new(DiscardMedia),
        worker,
    )
    .unwrap()
}

/// Runs `crawler` until the store holds nothing queued; a minute at the most.
pub async fn crawl_until_idle(crawler: &Crawler) -> CrawlProgress {
    tokio::time::timeout(Duration::from_secs(60), crawler.run_until_idle())
        .await
        .expect("crawl did not finish in time")
        .unwrap()
}

/// A bank `known` holding the world's known photos, in `dir`.
pub fn banks(world: &RunningWorld, dir: &Path) -> Arc<LiveIndex> {
    banks_from_list(world.bank_path(), dir)
}

/// A bank `known` holding the signals of an HMA CSV list, in `dir`; a list the index would
/// not import whole fails the test.
pub fn banks_from_list(list: &Path, dir: &Path) -> Arc<LiveIndex> {
    let mut store = BankStore::open(dir).unwrap();
    let provenance = Provenance {
        added_by: "test".into(),
        added_at: 0,
        origin: Origin::Import {
            file: list.display().to_string(),
        },
    };
    store
        .import_list(
            ImportInto::NewBank(BankSpec::new("known", "simweb", "csam")),
            &mut || std::fs::File::open(list),
            &ImportOptions::new(ListFormat::HmaCsv),
            provenance,
        )
        .unwrap();
    store.publish().unwrap();
    store.live()
}

pub async fn sqlite(dir: &Path) -> Store {
    Store::open(&format!("sqlite://{}", dir.join("aranea.db").display()))
        .await
        .unwrap()
}

/// A new empty database `name` on the PostgreSQL server at `server` (a URL ending in
/// `/DATABASE`, where the user may CREATE DATABASE; one left by an earlier run is dropped);
/// returns its URL.
pub async fn fresh_postgres_database(server: &str, name: &str) -> String {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    admin.close().await.unwrap();
    let (base, _) = server
        .rsplit_once('/')
        .expect("a server URL ending in /DATABASE");
    format!("{base}/{name}")
}

/// A store on a new database of the PostgreSQL server named by `ARANEA_TEST_POSTGRES`,
/// named after `test` (short: a database name is at most 63 bytes).
pub async fn postgres(test: &str) -> Store {
    let server = std::env::var("ARANEA_TEST_POSTGRES").expect(
        "ARANEA_TEST_POSTGRES is not set: run scripts/test, which starts a throwaway PostgreSQL",
    );
    let name = format!(
        "aranea_crawl_{test}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    Store::open(&fresh_postgres_database(&server, &name).await)
        .await
        .unwrap()
}

/// Two tests of `$test` (an `async fn(Store, &Path)` given a store and a folder for its
/// banks): `$sqlite` on a SQLite file, `$postgres` on a new PostgreSQL database named after
/// `$short`.
#[macro_export]
macro_rules! on_both {
    ($sqlite:ident, $postgres:ident, $test:ident, $short:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let dir = tempfile::tempdir().unwrap();
            $test(
                $crate::support::sqlite(dir.path()).await,
                &dir.path().join("banks"),
            )
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let dir = tempfile::tempdir().unwrap();
            $test(
                $crate::support::postgres($short).await,
                &dir.path().join("banks"),
            )
            .await;
        }
    };
}

/// The home page of every site.
pub fn home_pages(world: &RunningWorld) -> Vec<Url> {
    world
        .world()
        .sites
        .iter()
        .map(|s| Url::parse(&world.url(&s.host, "/")).unwrap())
        .collect()
}

fn robots_allows(variant: &RobotsVariant, path: &str) -> bool {
    let private = ["/private/", "/files/", "/b/"];
    match variant {
        RobotsVariant::DisallowAll => false,
        RobotsVariant::DisallowPrivate => !private.iter().any(|p| path.starts_with(p)),
        RobotsVariant::CrawlDelay => !path.starts_with("/private/"),
        _ => true,
    }
}

/// What the crawl rules reach from the home pages: pages fetched, image URLs fetched, and
/// those among them that the bank matches under the crawler's rules (an exact digest, or a
/// PDQ within 31 of a known photo with a quality of at least `min_pdq_quality`).
#[derive(Debug, Default)]
pub struct Reach {
    pub pages: BTreeSet<String>,
    pub images: BTreeSet<String>,
    pub matching: BTreeSet<String>,
    /// Unknown images on pages where something matched.
    pub unknown_on_matching: BTreeSet<String>,
    /// A page each image is on.
    pub page_of: BTreeMap<String, String>,
    /// The page each page was first linked from.
    pub linked_from: BTreeMap<String, String>,
    /// Images within PDQ 31 of a known photo that the quality floor keeps from matching.
    pub below_quality: BTreeSet<String>,
}

/// The exact digests (MD5, SHA-256) in the world's bank.
fn known_digests(world: &RunningWorld) -> BTreeSet<String> {
    let bank = std::fs::read_to_string(world.bank_path()).unwrap();
    bank.lines()
        .filter_map(|line| line.split_once(','))
        .filter(|(signal, _)| matches!(*signal, "md5" | "sha256"))
        .map(|(_, hex)| hex.to_owned())
        .collect()
}

/// The truth about one image: (matches, close in PDQ but below the quality floor). Simweb
/// says how far its rendering is from the bank; only a close one is fetched (as served, the
/// crawler has had it rendered) and hashed here for its PDQ quality and digests. A close image
/// that cannot be fetched after several tries fails the test rather than count as unknown.
async fn judge(
    world: &RunningWorld,
    fetcher: &aranea_crawl::fetch::Fetcher,
    digests: &BTreeSet<String>,
    url: &str,
    min_pdq_quality: u8,
) -> (bool, bool) {
    if world.pdq_distance_to_bank(url).is_none_or(|d| d > 31) {
        return (false, false);
    }
    for _ in 0..20 {
        let fetched = fetcher.fetch(&url.parse().unwrap()).await;
        let Some(body) = fetched
            .outcome
            .ok()
            .filter(|r| r.is_success())
            .map(|r| r.body)
        else {
            // Rate-limited or slow providers: ask again a little later.
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            continue;
        };
        let hashes = aranea_hash::hash_media(&body, &aranea_hash::Limits::default()).unwrap();
        if digests.contains(&hashes.md5_hex()) || digests.contains(&hashes.sha256_hex()) {
            return (true, false);
        }
        let good = hashes
            .pdq
            .as_ref()
            .is_some_and(|p| p.quality >= min_pdq_quality);
        return (good, !good);
    }
    panic!("{url}: close to a known photo but never fetched for the ground truth");
}

/// Breadth-first over the world's pages by the crawler's scope rules: links are followed
/// from seeds and from pages where an image matched, robots.txt obeyed, up to `max_depth`.
/// Fetches every image close to a known photo once more: take the world's request log
/// before calling this.
pub async fn reach(world: &RunningWorld, max_depth: u32, min_pdq_quality: u8) -> Reach {
    let w = world.world();
    let digests = known_digests(world);
    let fetcher =
        aranea_crawl::fetch::Fetcher::new(config(world, 0).fetch_config().unwrap()).unwrap();
    let mut reach = Reach::default();
    let mut queue: VecDeque<(usize, String, u32, bool)> = VecDeque::new();
    let mut seen = BTreeSet::new();
    for site in &w.sites {
        if seen.insert((site.id, "/".to_owned())) {
            queue.push_back((site.id, "/".to_owned(), 0, true));
        }
    }
    let mut judged: BTreeMap<String, bool> = BTreeMap::new();
    while let Some((site_id, path, depth, seed)) = queue.pop_front() {
        let site = &w.sites[site_id];
        if !robots_allows(&site.robots, &path) {
            continue;
        }
        let Some(page) = w.page(site_id, &path) else {
            continue;
        };
        let page_url = world.url(&site.host, &path);
        reach.pages.insert(page_url.clone());
        let mut matched = false;
        let mut unknown = Vec::new();
        for item in page.items.iter().filter_map(|id| w.items.get(*id)) {
            if !robots_allows(&site.robots, &item.path) {
                continue;
            }
            let url = world.url(&site.host, &item.path);
            let hit = match judged.get(&url) {
                Some(hit) => *hit,
                None => {
                    let (hit, below) =
                        judge(world, &fetcher, &digests, &url, min_pdq_quality).await;
                    if below {
                        reach.below_quality.insert(url.clone());
                    }
                    judged.insert(url.clone(), hit);
                    hit
                }
            };
            reach.images.insert(url.clone());
            reach.page_of.insert(url.clone(), page_url.clone());
            if hit {
                matched = true;
                reach.matching.insert(url);
            } else {
                unknown.push(url);
            }
        }
        if matched {
            reach.unknown_on_matching.extend(unknown);
        }
        if !(seed || matched) || depth >= max_depth {
            continue;
        }
        let base = Url::parse(&page_url).unwrap();
        for link in &page.links {
            let Ok(target) = base.join(link) else {
                continue;
            };
            let Some(host) = target.host_str() else {
                continue;
            };
            let Some(target_site) = w.site_by_host(host) else {
                continue;
            };
            let mut path = target.path().to_owned();
            if let Some(q) = target.query() {
                path = format!("{path}?{q}");
            }
            if seen.insert((target_site.id, path.clone())) {
                reach
                    .linked_from
                    .insert(world.url(&target_site.host, &path), page_url.clone());
                queue.push_back((target_site.id, path, depth + 1, false));
            }
        }
    }
    reach
}

//! Crawler traps whose every page shows a known photo, so matching keeps them in scope: an
//! endless calendar, an ever deeper path and a shop with a session id in every link. Only the
//! budgets (per path prefix, per host, per registrable domain) and URL canonicalisation end
//! them, within the configured numbers, while the known photos on real pages are still found.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use aranea_crawl::config::BudgetConfig;
use aranea_crawl::{Crawler, ReviewMediaSink};
use aranea_simweb::{RunningWorld, SimWeb, scenario};
use aranea_store::Store;

/// Keeps nothing: this test is about where the crawl goes, not review.
struct Discard;

impl ReviewMediaSink for Discard {
    fn keep(&self, _sha256: &[u8; 32], _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

const WORLD: &str = r#"
name = "traps"
tlds = ["sim"]
known_images = 12

[[provider]]
name = "Trapworks"
country = "NL"
asn = 64501
blocks = ["127.10.9.0/24", "127.10.10.0/24"]

# The path budget ends the calendar.
[[site]]
host = "cal.alpha.sim"
provider = "Trapworks"
kind = "gallery"
pages = 2
known_share = 0.5
traps = ["calendar"]
trap_images = 2

# Two traps of one host: the host budget ends them before their path budgets do.
[[site]]
host = "many.beta.sim"
provider = "Trapworks"
kind = "gallery"
pages = 2
known_share = 0.5
traps = ["calendar", "deep_path"]
trap_images = 2

# Two hosts of one registrable domain: the domain budget ends them.
[[site]]
host = "a.gamma.sim"
provider = "Trapworks"
kind = "gallery"
pages = 2
known_share = 0.5
traps = ["calendar"]
trap_images = 2

[[site]]
host = "b.gamma.sim"
provider = "Trapworks"
kind = "gallery"
pages = 2
known_share = 0.5
traps = ["deep_path"]
trap_images = 2

# Session ids: canonical URLs make the endless shop a handful of pages.
[[site]]
host = "shop.delta.sim"
provider = "Trapworks"
kind = "gallery"
pages = 2
known_share = 0.5
traps = ["session_id"]
trap_images = 2

# Real sites beside the traps.
[[site]]
host = "photos.real.sim"
provider = "Trapworks"
kind = "gallery"
pages = 10
images_per_page = 2
known_share = 0.4

[[site]]
host = "board.other.sim"
provider = "Trapworks"
kind = "forum"
pages = 10
images_per_page = 2
known_share = 0.4
"#;

const PATH_BUDGET: i64 = 25;
const HOST_BUDGET: i64 = 40;
const DOMAIN_BUDGET: i64 = 50;

fn requests_by_host(world: &RunningWorld) -> BTreeMap<String, Vec<String>> {
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in world.requests() {
        by_host.entry(r.host.clone()).or_default().push(r.target);
    }
    by_host
}

fn under(targets: &[String], prefix: &str) -> i64 {
    targets.iter().filter(|t| t.starts_with(prefix)).count() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_pages_that_match_are_ended_by_the_budgets_and_canonical_urls() {
    let world = SimWeb::new(scenario::parse(WORLD).unwrap())
        .seed(5)
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Store = support::sqlite(dir.path()).await;
    let banks = support::banks(&world, &dir.path().join("banks"));
    let mut config = support::config(&world, 20);
    let config_quality = config.min_pdq_quality;
    config.budgets = BudgetConfig {
        max_depth: 20,
        max_fetches_per_host: HOST_BUDGET,
        max_fetches_per_domain: DOMAIN_BUDGET,
        max_fetches_per_path_prefix: PATH_BUDGET,
        path_prefix_segments: 1,
        quiet_pages: 1_000,
    };
    let crawler = Crawler::with_worker_name(
        store.clone(),
        banks,
        config,
        std::sync::Arc::new(Discard),
        "w1",
    )
    .unwrap();
    crawler
        .enqueue_seeds(&support::home_pages(&world))
        .await
        .unwrap();
    let progress = tokio::time::timeout(Duration::from_secs(120), crawler.run_until_idle())
        .await
        .expect("the traps held the crawl")
        .unwrap();
    eprintln!("{progress:?}");
    let by_host = requests_by_host(&world);
    for (host, targets) in &by_host {
        eprintln!(
            "{host}: {} requests, calendar {}, topics {}, shop {}",
            targets.len(),
            under(targets, "/calendar/"),
            under(targets, "/topics/"),
            under(targets, "/shop/")
        );
    }
    let requests = |host: &str| by_host.get(host).cloned().unwrap_or_default();

    // The path budget: the calendar got exactly its budget (it had far more to offer).
    let alpha = requests("cal.alpha.sim");
    assert_eq!(under(&alpha, "/calendar/"), PATH_BUDGET, "{alpha:?}");
    assert!((alpha.len() as i64) < HOST_BUDGET, "{}", alpha.len());

    // The host budget: two traps together stop at it (the seed is fetched whatever the
    // budget says, so it may come on top).
    let beta = requests("many.beta.sim");
    let (calendar, topics) = (under(&beta, "/calendar/"), under(&beta, "/topics/"));
    assert!(calendar <= PATH_BUDGET && topics <= PATH_BUDGET);
    assert!(calendar + topics > PATH_BUDGET, "both traps were walked");
    assert!(
        (HOST_BUDGET - 2..=HOST_BUDGET + 1).contains(&(beta.len() as i64)),
        "{} requests to many.beta.sim",
        beta.len()
    );

    // The domain budget: two hosts of gamma.sim together (leased at once, each within its own
    // host budget). Their robots.txt requests come on top, and the two may each pass the
    // check on the last request of the budget.
    let gamma = requests("a.gamma.sim").len() + requests("b.gamma.sim").len();
    assert!(
        (DOMAIN_BUDGET..=DOMAIN_BUDGET + 3).contains(&(gamma as i64)),
        "{gamma} requests to gamma.sim"
    );
    for host in ["a.gamma.sim", "b.gamma.sim"] {
        assert!((requests(host).len() as i64) < HOST_BUDGET + 1, "{host}");
    }

    // Canonical URLs: the shop's session ids (sid, PHPSESSID, ;jsessionid=) make no new pages:
    // its index and five items, each fetched once.
    let shop = requests("shop.delta.sim");
    let shop_pages: Vec<&String> = shop.iter().filter(|t| t.starts_with("/shop/")).collect();
    assert_eq!(shop_pages.len(), 6, "{shop_pages:?}");

    // Every known trap photo was matched (which is what kept the traps in scope), and so was
    // every known photo the rules reach on real pages.
    let expected = support::reach(&world, 20, config_quality).await;
    let trap_photos: Vec<String> = world
        .images_at(Duration::ZERO)
        .into_iter()
        .filter(|i| i.known && i.url.contains("/media/events/"))
        .map(|i| i.url)
        .collect();
    assert!(trap_photos.len() >= 5, "{trap_photos:?}");
    assert!(expected.matching.len() >= 8, "{:?}", expected.matching);
    let facts = store.crawl_facts();
    for url in trap_photos.iter().chain(&expected.matching) {
        let id = store.frontier().url_id(url).await.unwrap();
        let id = id.unwrap_or_else(|| panic!("{url} never queued"));
        let media = facts.media_at_url(id).await.unwrap();
        let sha = media
            .first()
            .unwrap_or_else(|| panic!("{url} not recorded"));
        let mut matched = false;
        for s in store.media().sightings_of(sha).await.unwrap() {
            matched |= !store.media().matches_of(s.id).await.unwrap().is_empty();
        }
        assert!(matched, "{url} not matched");
    }
}

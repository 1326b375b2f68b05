//! A photo embedded by pages on two hosts is sighted, with its match, on both pages whatever
//! order the crawl reaches them in: the page on the photo's own host queues it and the page on
//! another host is mined before the photo is fetched (that page cannot wait for a URL another
//! lease fetches: its sighting comes from the recorded embed), or the other host's page
//! queues the photo, which is fetched before its own host's page embeds it.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aranea_crawl::{Crawler, DiscardMedia};
use aranea_simweb::{RunningWorld, SimWeb, scenario};
use aranea_store::Store;

/// The photo's host and the other host (fixed sites of the `small` scenario). The photo's
/// host asks for 2 s between requests (robots.txt Crawl-delay), the other host for none.
const HOME: &str = "oak-forum.sim";
const OTHER: &str = "bounce-board.test";
const PHOTO: &str = "img-0001.jpg";

fn photo() -> Vec<u8> {
    std::fs::read(
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus"
        ))
        .join(PHOTO),
    )
    .unwrap()
}

fn page(photo_url: &str) -> Vec<u8> {
    format!("<html><body><p>shared</p><img src=\"{photo_url}\"></body></html>").into_bytes()
}

/// The world with the photo at `HOME/e/photo.jpg` and a page embedding it on each host.
fn world() -> RunningWorld {
    // The pages need the photo's absolute URL, whose port is only known once a world has
    // started: start it once to learn its ports, then again on them with the files.
    let probe = SimWeb::new(scenario::load("small").unwrap())
        .seed(7)
        .start()
        .unwrap();
    let photo_url = probe.url(HOME, "/e/photo.jpg");
    let (http, https) = (probe.http_port(), probe.https_port());
    probe.shutdown();
    let mut web = SimWeb::new(scenario::load("small").unwrap())
        .seed(7)
        .http_port(http);
    if let Some(port) = https {
        web = web.https_port(port);
    }
    let world = web
        .extra_file(HOME, "/e/photo.jpg", "image/jpeg", photo())
        .extra_file(HOME, "/e/home.html", "text/html", page(&photo_url))
        .extra_file(OTHER, "/e/other.html", "text/html", page(&photo_url))
        .start()
        .unwrap();
    assert_eq!(world.url(HOME, "/e/photo.jpg"), photo_url);
    world
}

/// A bank holding the photo's MD5.
fn banks(dir: &Path) -> Arc<aranea_index::LiveIndex> {
    let list = dir.join("known.csv");
    let md5 = aranea_hash::crypto_hashes(&photo()).md5;
    let hex: String = md5.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&list, format!("signal_type,signal_value\nmd5,{hex}\n")).unwrap();
    support::banks_from_list(&list, &dir.join("banks"))
}

fn crawler(world: &RunningWorld, store: &Store, banks: &Arc<aranea_index::LiveIndex>) -> Crawler {
    let mut config = support::config(world, 50);
    config.politeness.crawl_delay_cap_ms = 2_000;
    config.politeness.max_delay_ms = 2_000;
    Crawler::with_worker_name(
        store.clone(),
        Arc::clone(banks),
        config,
        Arc::new(DiscardMedia),
        "embeds",
    )
    .unwrap()
}

fn seeds(pages: &[&str]) -> Vec<url::Url> {
    pages.iter().map(|p| p.parse().unwrap()).collect()
}

async fn crawl(
    world: &RunningWorld,
    store: &Store,
    banks: &Arc<aranea_index::LiveIndex>,
    pages: &[&str],
) {
    let crawler = crawler(world, store, banks);
    crawler.enqueue_seeds(&seeds(pages)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(40), crawler.run_until_idle())
        .await
        .expect("crawl did not finish in time")
        .unwrap();
}

/// When the simulated web answered the first request for `path` on `host`.
fn requested_at(world: &RunningWorld, host: &str, path: &str) -> u64 {
    world
        .requests()
        .iter()
        .filter(|r| r.host == host && r.target == path)
        .map(|r| r.unix_millis)
        .min()
        .unwrap_or_else(|| panic!("{host}{path} never requested"))
}

/// Every page the photo was sighted on, each with whether that sighting matched.
async fn sighted_on(world: &RunningWorld, store: &Store) -> Vec<(String, bool)> {
    let photo_url = world.url(HOME, "/e/photo.jpg");
    let id = store.frontier().url_id(&photo_url).await.unwrap().unwrap();
    let shas = store.crawl_facts().media_at_url(id).await.unwrap();
    let sha = shas.first().expect("the photo was recorded");
    let mut on = Vec::new();
    for s in store.media().sightings_of(sha).await.unwrap() {
        let page = store.frontier().url(s.page).await.unwrap().unwrap().url;
        let matched = !store.media().matches_of(s.id).await.unwrap().is_empty();
        on.push((page, matched));
    }
    on.sort();
    on
}

fn expected(world: &RunningWorld) -> Vec<(String, bool)> {
    let mut both = vec![
        (world.url(HOME, "/e/home.html"), true),
        (world.url(OTHER, "/e/other.html"), true),
    ];
    both.sort();
    both
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_embedded_on_two_hosts_is_sighted_on_both_pages_in_either_order() {
    let world = world();
    let (home, other) = (
        world.url(HOME, "/e/home.html"),
        world.url(OTHER, "/e/other.html"),
    );

    // The photo's own page first; the other host's page is seeded once the photo is queued
    // and is mined while the photo waits out its host's Crawl-delay.
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite(dir.path()).await;
    let crawler = crawler(&world, &store, &banks(dir.path()));
    crawler.enqueue_seeds(&seeds(&[&home])).await.unwrap();
    let photo_url = world.url(HOME, "/e/photo.jpg");
    let late = async {
        while store.frontier().url_id(&photo_url).await.unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        crawler.enqueue_seeds(&seeds(&[&other])).await.unwrap();
    };
    let both = async { tokio::join!(crawler.run_until_idle(), late).0 };
    tokio::time::timeout(Duration::from_secs(40), both)
        .await
        .expect("crawl did not finish in time")
        .unwrap();
    assert!(
        requested_at(&world, OTHER, "/e/other.html") < requested_at(&world, HOME, "/e/photo.jpg"),
        "the other host's page was to be mined before the photo was fetched"
    );
    assert_eq!(
        sighted_on(&world, &store).await,
        expected(&world),
        "own page first"
    );

    // The other host's page first, the photo fetched for it; its own host's page after.
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite(dir.path()).await;
    let known = banks(dir.path());
    crawl(&world, &store, &known, &[&other]).await;
    crawl(&world, &store, &known, &[&home]).await;
    assert_eq!(
        sighted_on(&world, &store).await,
        expected(&world),
        "other page first"
    );
    world.shutdown();
}

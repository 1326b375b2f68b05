//! The order a host's URLs are fetched in, and what a host's requests wait for: a page's
//! media are fetched right after the page, before the host's other pages already handed out,
//! and a host's next request does not wait for the hashing of the media it just fetched
//! (up to a few media per host), while politeness still allows one request at a time.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aranea_crawl::{Crawler, DiscardMedia};
use aranea_simweb::{RunningWorld, SimWeb, scenario};
use aranea_store::Store;

/// A host of the `small` scenario without a Crawl-delay.
const HOST: &str = "bounce-board.test";
const PAGES: usize = 20;
const PER_PAGE: usize = 2;
/// `JOBS_PER_HOST` in the crawler: media hashing at once per host.
const JOBS_PER_HOST: usize = 4;

fn page_path(page: usize) -> String {
    format!("/o/p{page:02}.html")
}

fn image_path(page: usize, nth: usize) -> String {
    format!("/o/p{page:02}-{nth}.jpg")
}

/// The `n`th JPEG photo of the corpus.
fn photo(n: usize) -> Vec<u8> {
    let corpus = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ));
    let mut jpegs: Vec<_> = std::fs::read_dir(corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    jpegs.sort();
    std::fs::read(&jpegs[n]).unwrap()
}

/// `PAGES` pages on `HOST`, each embedding `PER_PAGE` photos of its own (relative URLs).
fn world() -> RunningWorld {
    let mut web = SimWeb::new(scenario::load("small").unwrap()).seed(7);
    for page in 0..PAGES {
        let mut html = String::from("<html><body>");
        for nth in 0..PER_PAGE {
            let name = image_path(page, nth);
            let name = name.rsplit('/').next().unwrap();
            html.push_str(&format!("<img src=\"{name}\">"));
            web = web.extra_file(
                HOST,
                &image_path(page, nth),
                "image/jpeg",
                photo(page * PER_PAGE + nth),
            );
        }
        html.push_str("</body></html>");
        web = web.extra_file(HOST, &page_path(page), "text/html", html.into_bytes());
    }
    web.start().unwrap()
}

async fn crawler(world: &RunningWorld, dir: &Path) -> (Arc<Crawler>, Store) {
    let store = support::sqlite(dir).await;
    let banks = support::banks(world, &dir.join("banks"));
    let crawler = Crawler::with_worker_name(
        store.clone(),
        banks,
        support::config(world, 0),
        Arc::new(DiscardMedia),
        "order",
    )
    .unwrap();
    let seeds: Vec<url::Url> = (0..PAGES)
        .map(|p| world.url(HOST, &page_path(p)).parse().unwrap())
        .collect();
    crawler.enqueue_seeds(&seeds).await.unwrap();
    (Arc::new(crawler), store)
}

/// The paths requested on `HOST` under `/o/`, in the order they were answered.
fn requested(world: &RunningWorld) -> Vec<String> {
    world
        .requests()
        .into_iter()
        .filter(|r| r.host == HOST && r.target.starts_with("/o/"))
        .map(|r| r.target)
        .collect()
}

fn images_in(paths: &[String]) -> usize {
    paths.iter().filter(|p| p.ends_with(".jpg")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pages_media_are_fetched_before_the_hosts_other_pages() {
    let world = world();
    let dir = tempfile::tempdir().unwrap();
    let (crawler, _store) = crawler(&world, dir.path()).await;
    let progress = tokio::time::timeout(Duration::from_secs(40), crawler.run_until_idle())
        .await
        .expect("crawl did not finish in time")
        .unwrap();
    assert_eq!(progress.media, (PAGES * PER_PAGE) as u64);
    let order = requested(&world);
    assert_eq!(order.len(), PAGES * (1 + PER_PAGE), "{order:?}");
    // Each page is followed by its own media, then the next page.
    for chunk in order.chunks(1 + PER_PAGE) {
        let page = chunk[0].trim_end_matches(".html");
        assert!(chunk[0].ends_with(".html"), "{order:?}");
        for image in &chunk[1..] {
            assert!(image.starts_with(&format!("{page}-")), "{order:?}");
        }
    }
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_requests_do_not_wait_for_hashing() {
    let world = world();
    let dir = tempfile::tempdir().unwrap();
    let (crawler, store) = crawler(&world, dir.path()).await;
    let held = crawler.hold_hashing().await;
    let crawl = tokio::spawn({
        let crawler = Arc::clone(&crawler);
        async move { crawler.run_until_idle().await }
    });
    // With hashing held, the host goes on fetching until it has its most media hashing.
    let deadline = Instant::now() + Duration::from_secs(20);
    while images_in(&requested(&world)) < JOBS_PER_HOST {
        assert!(
            Instant::now() < deadline,
            "the host stopped fetching while its media waited for hashing: {:?}",
            requested(&world)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(crawler.progress().media, 0, "hashing was held");
    // And no further: the media held are bounded per host.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(images_in(&requested(&world)), JOBS_PER_HOST);
    drop(held);
    let progress = tokio::time::timeout(Duration::from_secs(40), crawl)
        .await
        .expect("crawl did not finish in time")
        .unwrap()
        .unwrap();
    assert_eq!(progress.media, (PAGES * PER_PAGE) as u64);
    assert_eq!(
        images_in(&requested(&world)),
        PAGES * PER_PAGE,
        "each image fetched once"
    );
    // Every image is sighted on its page.
    for page in 0..PAGES {
        let page_id = store
            .frontier()
            .url_id(&world.url(HOST, &page_path(page)))
            .await
            .unwrap()
            .unwrap();
        for nth in 0..PER_PAGE {
            let id = store
                .frontier()
                .url_id(&world.url(HOST, &image_path(page, nth)))
                .await
                .unwrap()
                .unwrap();
            let shas = store.crawl_facts().media_at_url(id).await.unwrap();
            let sightings = store.media().sightings_of(&shas[0]).await.unwrap();
            assert!(sightings.iter().any(|s| s.page == page_id), "page {page}");
        }
    }
    world.shutdown();
}

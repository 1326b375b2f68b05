//! The crawler meets hostile responses (bombs, lying lengths, drips, endless bodies, redirect
//! loops, forbidden redirects, broken HTML): each ends in a recorded outcome within bounded
//! time, and the rest of the crawl goes on.

mod support;

use std::time::{Duration, Instant};

use aranea_crawl::{Crawler, DiscardMedia};
use aranea_simweb::{SimWeb, scenario};
use aranea_store::UrlState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_responses_end_in_recorded_errors_and_the_crawl_goes_on() {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite(dir.path()).await;
    let banks = support::banks(&world, &dir.path().join("banks"));
    let config = support::config(&world, 20);
    let crawler = Crawler::with_worker_name(
        store.clone(),
        banks,
        config,
        std::sync::Arc::new(DiscardMedia),
        "h",
    )
    .unwrap();
    crawler
        .enqueue_seeds(&support::home_pages(&world))
        .await
        .unwrap();
    let started = Instant::now();
    let watch = async {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            eprintln!("{:?}", crawler.progress());
        }
    };
    let progress = tokio::select! {
        done = tokio::time::timeout(Duration::from_secs(60), crawler.run_until_idle()) => done,
        _ = watch => unreachable!(),
    };
    if progress.is_err() {
        for host in ["odd-corner.sim"] {
            for r in world.requests_for(host).iter().rev().take(10) {
                eprintln!("{} {} {}", r.unix_millis, r.target, r.status);
            }
        }
    }
    let progress = progress.expect("crawl did not finish").unwrap();
    eprintln!("{progress:?} in {:?}", started.elapsed());

    let host = "odd-corner.sim";
    let expect_error = [
        ("/quirks/length-lie.jpg", ""),
        ("/quirks/short-body.jpg", "ended after"),
        ("/quirks/drip.html", "deadline"),
        ("/quirks/endless.html", "larger than"),
        ("/quirks/gzip-bomb.html", "larger than"),
        ("/quirks/redirect/private", "refused"),
        ("/quirks/redirect/metadata", "refused"),
        ("/quirks/redirect/loopback", "refused"),
    ];
    for (path, error) in expect_error {
        let url = world.url(host, path);
        let id = store
            .frontier()
            .url_id(&url)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{url} never queued"));
        let record = store.frontier().url(id).await.unwrap().unwrap();
        let fetches = store.frontier().fetches(id).await.unwrap();
        eprintln!("{url}: {:?} {fetches:?}", record.state);
        assert_ne!(record.state, UrlState::Queued, "{url}");
        let last = fetches
            .last()
            .unwrap_or_else(|| panic!("{url}: no fetch recorded"));
        let text = last.error.clone().unwrap_or_default();
        assert!(text.contains(error), "{url}: {text:?}");
    }
    // Loops end by dedup: each URL of the loop was fetched once.
    for path in ["/quirks/redirect/loop-a", "/quirks/redirect/loop-b"] {
        let url = world.url(host, path);
        let id = store.frontier().url_id(&url).await.unwrap().unwrap();
        assert_eq!(
            store.frontier().fetches(id).await.unwrap().len(),
            1,
            "{url}"
        );
    }
    // The crawl went on: the known photos served under lying types were matched too, and
    // the other sites were crawled.
    assert!(progress.matches >= 3, "{progress:?}");
}

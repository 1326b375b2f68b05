//! Every report the crawler queues ends `crawled` or `rejected`: a reported URL fetched is
//! crawled, one the crawler's own rules keep it from asking for (robots.txt obeyed for
//! reports, the SSRF guard) is rejected, and none stays `queued` once the crawl is idle.
//! On SQLite and on PostgreSQL (`ARANEA_TEST_POSTGRES`, a new database per test).

mod support;

use std::sync::Arc;
use std::time::Duration;

use aranea_crawl::config::RobotsForReported;
use aranea_crawl::{Crawler, DiscardMedia};
use aranea_simweb::{SimWeb, scenario};
use aranea_store::{NewReport, ReportId, ReportStatus, Store};

/// A site of the `small` scenario whose robots.txt disallows everything.
const DISALLOW_ALL: &str = "members-only.test";
/// A site of the `small` scenario whose robots.txt allows its home page.
const OPEN: &str = "bounce-board.test";

async fn report(store: &Store, url: &str) -> ReportId {
    let report = NewReport {
        url: url.to_owned(),
        reporter: "test".into(),
        hotline: "nl".into(),
        notes: String::new(),
    };
    store.reports().add(&report, 0).await.unwrap()
}

async fn status(store: &Store, id: ReportId) -> ReportStatus {
    store.reports().get(id).await.unwrap().unwrap().status
}

/// Reports three URLs (one robots.txt disallows, one the SSRF guard refuses, one open) and
/// crawls until idle under `robots`.
async fn reports_end_crawled_or_rejected(
    store: Store,
    banks_dir: &std::path::Path,
    robots: RobotsForReported,
) {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let config = aranea_crawl::CrawlConfig {
        robots_for_reported: robots,
        ..support::config(&world, 0)
    };
    let crawler = Crawler::with_worker_name(
        store.clone(),
        support::banks(&world, banks_dir),
        config,
        Arc::new(DiscardMedia),
        "reports",
    )
    .unwrap();
    let disallowed = report(&store, &world.url(DISALLOW_ALL, "/")).await;
    // Loopback outside the world's provider blocks: the SSRF guard refuses it unasked.
    let private = report(&store, &world.url("127.0.0.1", "/")).await;
    let open = report(&store, &world.url(OPEN, "/")).await;
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 3);
    for id in [disallowed, private, open] {
        assert_eq!(status(&store, id).await, ReportStatus::Queued);
    }
    tokio::time::timeout(Duration::from_secs(60), crawler.run_until_idle())
        .await
        .expect("crawl did not finish in time")
        .unwrap();
    let (robots_says, fetched) = match robots {
        RobotsForReported::Obey => (ReportStatus::Rejected, false),
        RobotsForReported::Ignore => (ReportStatus::Crawled, true),
    };
    assert_eq!(
        status(&store, disallowed).await,
        robots_says,
        "a reported URL robots.txt disallows"
    );
    assert_eq!(
        status(&store, private).await,
        ReportStatus::Rejected,
        "a reported URL the SSRF guard refuses"
    );
    assert_eq!(status(&store, open).await, ReportStatus::Crawled);
    assert_eq!(
        world
            .requests()
            .iter()
            .any(|r| r.host == DISALLOW_ALL && r.target != "/robots.txt"),
        fetched,
        "robots.txt obeyed or ignored as configured"
    );
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_report_the_crawler_may_not_fetch_ends_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite(dir.path()).await;
    reports_end_crawled_or_rejected(store, &dir.path().join("banks"), RobotsForReported::Obey)
        .await;
}

/// With robots.txt ignored for reports, the private URL reaches the fetcher, whose SSRF guard
/// refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_report_the_ssrf_guard_refuses_ends_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::sqlite(dir.path()).await;
    reports_end_crawled_or_rejected(store, &dir.path().join("banks"), RobotsForReported::Ignore)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_report_the_crawler_may_not_fetch_ends_rejected() {
    let server = std::env::var("ARANEA_TEST_POSTGRES").expect(
        "ARANEA_TEST_POSTGRES is not set: run scripts/test, which starts a throwaway PostgreSQL",
    );
    let name = format!(
        "aranea_crawl_reports_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let store = Store::open(&support::fresh_postgres_database(&server, &name).await)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    reports_end_crawled_or_rejected(store, &dir.path().join("banks"), RobotsForReported::Obey)
        .await;
}

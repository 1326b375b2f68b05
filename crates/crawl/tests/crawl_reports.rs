//! Every report the crawler queues ends `crawled` or `rejected`: a reported URL fetched is
//! crawled, one the crawler's own rules keep it from asking for (robots.txt obeyed for
//! reports, the SSRF guard) or that fails for good is rejected, a fetch that will be retried
//! leaves its report `queued`, and none stays `queued` once the crawl is idle.
//! A URL reported many times settles every report of it; one reported after it was
//! crawled or failed is fetched again for the new report.
//! On SQLite and on PostgreSQL (`ARANEA_TEST_POSTGRES`, a new database per test).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aranea_crawl::config::RobotsForReported;
use aranea_simweb::{SimWeb, scenario};
use aranea_store::{ReportId, ReportStatus, Store};
use support::loopback::{self, response};
use support::reports;

/// A site of the `small` scenario whose robots.txt disallows everything.
const DISALLOW_ALL: &str = "members-only.test";
/// A site of the `small` scenario whose robots.txt allows its home page.
const OPEN: &str = "bounce-board.test";

async fn report(store: &Store, url: &str) -> ReportId {
    reports::file(store, url, "nl").await
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
    let crawler = support::crawler(&store, &world, banks_dir, config, "reports");
    let disallowed = report(&store, &world.url(DISALLOW_ALL, "/")).await;
    // Loopback outside the world's provider blocks: the SSRF guard refuses it unasked.
    let private = report(&store, &world.url("127.0.0.1", "/")).await;
    let open = report(&store, &world.url(OPEN, "/")).await;
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 3);
    for id in [disallowed, private, open] {
        assert_eq!(reports::status(&store, id).await, ReportStatus::Queued);
    }
    support::crawl_until_idle(&crawler).await;
    let (robots_says, fetched) = match robots {
        RobotsForReported::Obey => (ReportStatus::Rejected, false),
        RobotsForReported::Ignore => (ReportStatus::Crawled, true),
    };
    assert_eq!(
        reports::status(&store, disallowed).await,
        robots_says,
        "a reported URL robots.txt disallows"
    );
    assert_eq!(
        reports::status(&store, private).await,
        ReportStatus::Rejected,
        "a reported URL the SSRF guard refuses"
    );
    assert_eq!(reports::status(&store, open).await, ReportStatus::Crawled);
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
    let store = support::postgres("reports_rejected").await;
    let dir = tempfile::tempdir().unwrap();
    reports_end_crawled_or_rejected(store, &dir.path().join("banks"), RobotsForReported::Obey)
        .await;
}

/// A one-host web server on loopback whose `/page` answers 500 for its first `failures`
/// requests and 200 after; `/robots.txt` is 404. On each request for `/page` it notes
/// the report's status at that moment, so a test sees what the report was between two
/// attempts (the attempt before is written before the next one is made: one request in
/// flight per host).
struct FlakyServer {
    server: loopback::Server,
    seen: Arc<Mutex<Vec<ReportStatus>>>,
}

impl FlakyServer {
    async fn start(
        store: Store,
        report: Arc<Mutex<Option<ReportId>>>,
        failures: usize,
    ) -> FlakyServer {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let noted = Arc::clone(&seen);
        let pages = Arc::new(AtomicUsize::new(0));
        let server = loopback::Server::start(move |_, path| {
            let (store, report) = (store.clone(), Arc::clone(&report));
            let (noted, pages) = (Arc::clone(&noted), Arc::clone(&pages));
            async move {
                if path != "/page" {
                    return response("404 Not Found", &[("content-type", "text/html")], "none");
                }
                let id = report
                    .lock()
                    .unwrap()
                    .expect("report recorded before the crawl");
                let now = reports::status(&store, id).await;
                noted.lock().unwrap().push(now);
                let html = [("content-type", "text/html")];
                if pages.fetch_add(1, Ordering::SeqCst) < failures {
                    response("500 Internal Server Error", &html, "down")
                } else {
                    response("200 OK", &html, "<html><body>up</body></html>")
                }
            }
        })
        .await;
        FlakyServer { server, seen }
    }

    fn url(&self) -> String {
        self.server.url("/page")
    }

    fn seen(&self) -> Vec<ReportStatus> {
        self.seen.lock().unwrap().clone()
    }
}

/// A crawler for the `small` world that may also reach loopback (where [`FlakyServer`]
/// listens), with three attempts per URL.
fn crawler_with_loopback(
    store: &Store,
    world: &aranea_simweb::RunningWorld,
    banks_dir: &std::path::Path,
) -> aranea_crawl::Crawler {
    loopback::crawler(store, world, banks_dir, "reports", |_| {})
}

/// Reports `/page` of a [`FlakyServer`] that fails `failures` times and crawls until idle;
/// returns the report's status before each request for the page, and at the end.
async fn report_of_a_flaky_page(
    store: Store,
    banks_dir: &std::path::Path,
    failures: usize,
) -> (Vec<ReportStatus>, ReportStatus) {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let crawler = crawler_with_loopback(&store, &world, banks_dir);
    let slot = Arc::new(Mutex::new(None));
    let server = FlakyServer::start(store.clone(), Arc::clone(&slot), failures).await;
    let id = report(&store, &server.url()).await;
    *slot.lock().unwrap() = Some(id);
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    support::crawl_until_idle(&crawler).await;
    let end = reports::status(&store, id).await;
    let seen = server.seen();
    world.shutdown();
    (seen, end)
}

async fn a_retried_fetch_leaves_its_report_queued(store: Store, banks_dir: &std::path::Path) {
    let (seen, end) = report_of_a_flaky_page(store, banks_dir, 1).await;
    assert_eq!(
        seen,
        [ReportStatus::Queued, ReportStatus::Queued],
        "the report while its URL waits for a retry"
    );
    assert_eq!(
        end,
        ReportStatus::Crawled,
        "the report once the retry got the page"
    );
}

async fn a_url_that_fails_for_good_rejects_its_report(store: Store, banks_dir: &std::path::Path) {
    let (seen, end) = report_of_a_flaky_page(store, banks_dir, usize::MAX).await;
    assert_eq!(
        seen,
        [ReportStatus::Queued; 3],
        "the report between attempts"
    );
    assert_eq!(
        end,
        ReportStatus::Rejected,
        "the report once the URL failed for good"
    );
}

/// A URL that failed for good (its report rejected) is fetched again for a new report,
/// which settles from that fetch.
async fn a_url_that_failed_is_fetched_again_for_a_new_report(
    store: Store,
    banks_dir: &std::path::Path,
) {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let crawler = crawler_with_loopback(&store, &world, banks_dir);
    let slot = Arc::new(Mutex::new(None));
    let server = FlakyServer::start(store.clone(), Arc::clone(&slot), 3).await;
    let url = server.url();
    let first = report(&store, &url).await;
    *slot.lock().unwrap() = Some(first);
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    support::crawl_until_idle(&crawler).await;
    assert_eq!(reports::status(&store, first).await, ReportStatus::Rejected);
    let again = reports::file(&store, &url, "be").await;
    *slot.lock().unwrap() = Some(again);
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    support::crawl_until_idle(&crawler).await;
    assert_eq!(
        server.seen().len(),
        4,
        "three attempts, then one for the new report"
    );
    assert_eq!(
        reports::status(&store, again).await,
        ReportStatus::Crawled,
        "the new report"
    );
    assert_eq!(
        reports::status(&store, first).await,
        ReportStatus::Rejected,
        "the first report stays as it settled"
    );
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_retried_fetch_leaves_its_report_queued_until_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    a_retried_fetch_leaves_its_report_queued(
        support::sqlite(dir.path()).await,
        &dir.path().join("banks"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    a_url_that_fails_for_good_rejects_its_report(
        support::sqlite(dir.path()).await,
        &dir.path().join("banks"),
    )
    .await;
}

on_both!(
    on_sqlite_a_url_that_failed_is_fetched_again_for_a_new_report,
    on_postgres_a_url_that_failed_is_fetched_again_for_a_new_report,
    a_url_that_failed_is_fetched_again_for_a_new_report,
    "reports_failed_again"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_retried_fetch_leaves_its_report_queued_until_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    a_retried_fetch_leaves_its_report_queued(
        support::postgres("reports_retried").await,
        &dir.path().join("banks"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    a_url_that_fails_for_good_rejects_its_report(
        support::postgres("reports_failed").await,
        &dir.path().join("banks"),
    )
    .await;
}

/// A URL reported by two hotlines at once, then again after it was crawled: every report
/// ends `crawled`, and the report after the crawl has the URL fetched again.
async fn every_report_of_a_url_settles(store: Store, banks_dir: &std::path::Path) {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let crawler = support::crawler(
        &store,
        &world,
        banks_dir,
        support::config(&world, 0),
        "reports",
    );
    let url = world.url(OPEN, "/");
    let first = reports::file(&store, &url, "nl").await;
    let second = reports::file(&store, &url, "be").await;
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 2);
    for id in [first, second] {
        assert_eq!(reports::status(&store, id).await, ReportStatus::Queued);
    }
    support::crawl_until_idle(&crawler).await;
    for id in [first, second] {
        assert_eq!(
            reports::status(&store, id).await,
            ReportStatus::Crawled,
            "each report of a URL reported twice"
        );
    }
    let home_fetches = || {
        world
            .requests()
            .iter()
            .filter(|r| r.host == OPEN && r.target == "/")
            .count()
    };
    assert_eq!(home_fetches(), 1, "one URL, one fetch for both reports");
    let later = reports::file(&store, &url, "nl").await;
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    assert_eq!(reports::status(&store, later).await, ReportStatus::Queued);
    support::crawl_until_idle(&crawler).await;
    assert_eq!(
        reports::status(&store, later).await,
        ReportStatus::Crawled,
        "a report of a URL crawled before"
    );
    assert_eq!(home_fetches(), 2, "a new report has the URL fetched again");
    world.shutdown();
}

on_both!(
    on_sqlite_every_report_of_a_url_settles,
    on_postgres_every_report_of_a_url_settles,
    every_report_of_a_url_settles,
    "reports_again"
);

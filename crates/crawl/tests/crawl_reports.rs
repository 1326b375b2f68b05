//! Every report the crawler queues ends `crawled` or `rejected`: a reported URL fetched is
//! crawled, one the crawler's own rules keep it from asking for (robots.txt obeyed for
//! reports, the SSRF guard) or that fails for good is rejected, a fetch that will be retried
//! leaves its report `queued`, and none stays `queued` once the crawl is idle.
//! A URL reported many times settles every report of it; one reported after it was
//! crawled or failed is fetched again for the new report.
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
    report_by(store, url, "nl").await
}

async fn report_by(store: &Store, url: &str, hotline: &str) -> ReportId {
    let report = NewReport {
        url: url.to_owned(),
        reporter: "test".into(),
        hotline: hotline.into(),
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

/// A one-host web server on loopback whose `/page` answers 500 for its first `failures`
/// requests and 200 after; `/robots.txt` is 404. On each request for `/page` it notes
/// the report's status at that moment, so a test sees what the report was between two
/// attempts (the attempt before is written before the next one is made: one request in
/// flight per host).
struct FlakyServer {
    addr: std::net::SocketAddr,
    seen: Arc<std::sync::Mutex<Vec<ReportStatus>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyServer {
    async fn start(
        store: Store,
        report: Arc<std::sync::Mutex<Option<ReportId>>>,
        failures: usize,
    ) -> FlakyServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let noted = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut pages = 0;
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let (status, body) = if line.starts_with("GET /page ") {
                    let id = report
                        .lock()
                        .unwrap()
                        .expect("report recorded before the crawl");
                    let now = store.reports().get(id).await.unwrap().unwrap().status;
                    noted.lock().unwrap().push(now);
                    pages += 1;
                    if pages <= failures {
                        ("500 Internal Server Error", "down")
                    } else {
                        ("200 OK", "<html><body>up</body></html>")
                    }
                } else {
                    ("404 Not Found", "none")
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        FlakyServer { addr, seen, task }
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
) -> Crawler {
    let mut config = support::config(world, 0);
    config.allow_cidrs.push("127.0.0.1/32".parse().unwrap());
    config.max_attempts = 3;
    Crawler::with_worker_name(
        store.clone(),
        support::banks(world, banks_dir),
        config,
        Arc::new(DiscardMedia),
        "reports",
    )
    .unwrap()
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
    let slot = Arc::new(std::sync::Mutex::new(None));
    let server = FlakyServer::start(store.clone(), Arc::clone(&slot), failures).await;
    let id = report(&store, &format!("http://{}/page", server.addr)).await;
    *slot.lock().unwrap() = Some(id);
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    tokio::time::timeout(Duration::from_secs(60), crawler.run_until_idle())
        .await
        .expect("crawl did not finish in time")
        .unwrap();
    let end = status(&store, id).await;
    let seen = server.seen();
    server.task.abort();
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
    let slot = Arc::new(std::sync::Mutex::new(None));
    let server = FlakyServer::start(store.clone(), Arc::clone(&slot), 3).await;
    let url = format!("http://{}/page", server.addr);
    let idle = || tokio::time::timeout(Duration::from_secs(60), crawler.run_until_idle());
    let first = report(&store, &url).await;
    *slot.lock().unwrap() = Some(first);
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    idle().await.expect("crawl did not finish in time").unwrap();
    assert_eq!(status(&store, first).await, ReportStatus::Rejected);
    let again = report_by(&store, &url, "be").await;
    *slot.lock().unwrap() = Some(again);
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    idle().await.expect("crawl did not finish in time").unwrap();
    assert_eq!(
        server.seen().len(),
        4,
        "three attempts, then one for the new report"
    );
    assert_eq!(
        status(&store, again).await,
        ReportStatus::Crawled,
        "the new report"
    );
    assert_eq!(
        status(&store, first).await,
        ReportStatus::Rejected,
        "the first report stays as it settled"
    );
    server.task.abort();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_url_that_failed_is_fetched_again_for_a_new_report() {
    let dir = tempfile::tempdir().unwrap();
    a_url_that_failed_is_fetched_again_for_a_new_report(
        support::sqlite(dir.path()).await,
        &dir.path().join("banks"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_url_that_failed_is_fetched_again_for_a_new_report() {
    let dir = tempfile::tempdir().unwrap();
    a_url_that_failed_is_fetched_again_for_a_new_report(
        postgres("failed_again").await,
        &dir.path().join("banks"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_retried_fetch_leaves_its_report_queued_until_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    a_retried_fetch_leaves_its_report_queued(postgres("retried").await, &dir.path().join("banks"))
        .await;
    let dir = tempfile::tempdir().unwrap();
    a_url_that_fails_for_good_rejects_its_report(
        postgres("failed").await,
        &dir.path().join("banks"),
    )
    .await;
}

/// A store on a new database of the PostgreSQL server named by `ARANEA_TEST_POSTGRES`.
async fn postgres(test: &str) -> Store {
    let server = std::env::var("ARANEA_TEST_POSTGRES").expect(
        "ARANEA_TEST_POSTGRES is not set: run scripts/test, which starts a throwaway PostgreSQL",
    );
    let name = format!(
        "aranea_crawl_reports_{test}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    Store::open(&support::fresh_postgres_database(&server, &name).await)
        .await
        .unwrap()
}

/// A URL reported by two hotlines at once, then again after it was crawled: every report
/// ends `crawled`, and the report after the crawl has the URL fetched again.
async fn every_report_of_a_url_settles(store: Store, banks_dir: &std::path::Path) {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let crawler = Crawler::with_worker_name(
        store.clone(),
        support::banks(&world, banks_dir),
        support::config(&world, 0),
        Arc::new(DiscardMedia),
        "reports",
    )
    .unwrap();
    let url = world.url(OPEN, "/");
    let first = report_by(&store, &url, "nl").await;
    let second = report_by(&store, &url, "be").await;
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 2);
    for id in [first, second] {
        assert_eq!(status(&store, id).await, ReportStatus::Queued);
    }
    let idle = || tokio::time::timeout(Duration::from_secs(60), crawler.run_until_idle());
    idle().await.expect("crawl did not finish in time").unwrap();
    for id in [first, second] {
        assert_eq!(
            status(&store, id).await,
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
    let later = report_by(&store, &url, "nl").await;
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    assert_eq!(status(&store, later).await, ReportStatus::Queued);
    idle().await.expect("crawl did not finish in time").unwrap();
    assert_eq!(
        status(&store, later).await,
        ReportStatus::Crawled,
        "a report of a URL crawled before"
    );
    assert_eq!(home_fetches(), 2, "a new report has the URL fetched again");
    world.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_every_report_of_a_url_settles() {
    let dir = tempfile::tempdir().unwrap();
    every_report_of_a_url_settles(support::sqlite(dir.path()).await, &dir.path().join("banks"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_every_report_of_a_url_settles() {
    let dir = tempfile::tempdir().unwrap();
    every_report_of_a_url_settles(postgres("again").await, &dir.path().join("banks")).await;
}

//! A reported URL that redirects (a URL shortener, http → https) settles by the end of the
//! chain, not by the redirect: `crawled` once the target is fetched (the report linked to
//! it too), `rejected` with a reason when the target fails for good or is refused, when the
//! chain loops or runs past the crawler's redirect limit. And a link reported while the
//! worker holds it is judged as the reported URL it has become: a host budget spent does
//! not reject its report. Real sockets: a web server on loopback.
//! On SQLite and on PostgreSQL (`ARANEA_TEST_POSTGRES`, a new database per test).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aranea_crawl::{Crawler, DiscardMedia};
use aranea_simweb::{SimWeb, scenario};
use aranea_store::{NewReport, Report, ReportId, ReportStatus, Store};
use tokio::sync::Notify;

/// What the server answers on a path.
#[derive(Clone)]
enum Answer {
    /// 301 to this path on the same server, or to this absolute URL.
    Redirect(String),
    /// 200 with an HTML page linking to these paths.
    Page(Vec<&'static str>),
    /// 500, every time.
    Broken,
}

/// Holds the answer to the first request for one of `paths` until released: `started` is
/// notified when it arrives (`held` then names it), the answer goes out once `release` is
/// notified.
struct Hold {
    paths: [&'static str; 2],
    held: Arc<Mutex<Option<String>>>,
    started: Arc<Notify>,
    release: Arc<Notify>,
}

/// A path asked for, with the watched report's status at that moment.
type Request = (String, Option<ReportStatus>);

/// A one-host web server on loopback answering from a table; `/robots.txt` and unknown
/// paths are 404. Notes every path asked for, with the status of the watched report at
/// that moment (the attempt before is written before the next request: one request in
/// flight per host).
struct Site {
    addr: SocketAddr,
    watched: Arc<Mutex<Option<ReportId>>>,
    seen: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    async fn start(store: Store, routes: Vec<(&'static str, Answer)>, hold: Option<Hold>) -> Site {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: HashMap<&'static str, Answer> = routes.into_iter().collect();
        let watched = Arc::new(Mutex::new(None));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (watching, noted) = (Arc::clone(&watched), Arc::clone(&seen));
        let task = tokio::spawn(async move {
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
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                let report = *watching.lock().unwrap();
                let status = match report {
                    Some(id) => Some(store.reports().get(id).await.unwrap().unwrap().status),
                    None => None,
                };
                noted.lock().unwrap().push((path.clone(), status));
                let first_held = hold.as_ref().filter(|h| {
                    let mut held = h.held.lock().unwrap();
                    let first = h.paths.contains(&path.as_str()) && held.is_none();
                    if first {
                        *held = Some(path.clone());
                    }
                    first
                });
                if let Some(hold) = first_held {
                    hold.started.notify_one();
                    hold.release.notified().await;
                }
                let answer = match routes.get(path.as_str()) {
                    Some(Answer::Redirect(to)) => {
                        let location = if to.starts_with("http") {
                            to.clone()
                        } else {
                            format!("http://{addr}{to}")
                        };
                        format!(
                            "HTTP/1.1 301 Moved Permanently\r\nlocation: {location}\r\n\
                             content-length: 0\r\nconnection: close\r\n\r\n"
                        )
                    }
                    Some(Answer::Page(links)) => {
                        let links: String = links
                            .iter()
                            .map(|l| format!("<a href=\"{l}\">{l}</a> "))
                            .collect();
                        let body = format!("<html><body>{links}</body></html>");
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    Some(Answer::Broken) => "HTTP/1.1 500 Internal Server Error\r\n\
                        content-length: 4\r\nconnection: close\r\n\r\ndown"
                        .to_owned(),
                    None => "HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\
                        connection: close\r\n\r\nnone"
                        .to_owned(),
                };
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        Site {
            addr,
            watched,
            seen,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn watch(&self, id: ReportId) {
        *self.watched.lock().unwrap() = Some(id);
    }

    /// The watched report's status at each request for `path`.
    fn seen_at(&self, path: &str) -> Vec<Option<ReportStatus>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, status)| *status)
            .collect()
    }
}

/// A crawler for the `small` world that may also reach 127.0.0.1 (where [`Site`] listens),
/// with three attempts per URL, `max_redirects` and a host budget of `host_budget`.
fn crawler(
    store: &Store,
    world: &aranea_simweb::RunningWorld,
    banks_dir: &std::path::Path,
    max_redirects: usize,
    host_budget: i64,
) -> Crawler {
    let mut config = support::config(world, 0);
    config.allow_cidrs.push("127.0.0.1/32".parse().unwrap());
    config.max_attempts = 3;
    config.max_redirects = max_redirects;
    config.budgets.max_fetches_per_host = host_budget;
    Crawler::with_worker_name(
        store.clone(),
        support::banks(world, banks_dir),
        config,
        Arc::new(DiscardMedia),
        "redirects",
    )
    .unwrap()
}

async fn file_report(store: &Store, url: &str) -> ReportId {
    let report = NewReport {
        url: url.to_owned(),
        reporter: "test".into(),
        hotline: "nl".into(),
        notes: String::new(),
    };
    store.reports().add(&report, 0).await.unwrap()
}

async fn settled(store: &Store, id: ReportId) -> Report {
    store.reports().get(id).await.unwrap().unwrap()
}

/// Reports `path` of `site` (watched from now on) and crawls until idle.
async fn crawl_report_of(crawler: &Crawler, store: &Store, site: &Site, path: &str) -> ReportId {
    let id = file_report(store, &site.url(path)).await;
    site.watch(id);
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    tokio::time::timeout(Duration::from_secs(60), crawler.run_until_idle())
        .await
        .expect("crawl did not finish in time")
        .unwrap();
    id
}

fn redirect(to: &str) -> Answer {
    Answer::Redirect(to.to_owned())
}

/// 301 → a page: the report waits through the redirect, is linked to the page one
/// redirect on, and is crawled once the page is.
async fn a_redirect_to_a_page_is_crawled_once_the_page_is(store: Store, banks: &std::path::Path) {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let routes = vec![
        ("/short", redirect("/page")),
        ("/page", Answer::Page(vec![])),
    ];
    let crawler = crawler(&store, &world, banks, 3, 20_000);
    let site = Site::start(store.clone(), routes, None).await;
    let id = crawl_report_of(&crawler, &store, &site, "/short").await;
    assert_eq!(
        site.seen_at("/page"),
        [Some(ReportStatus::Queued)],
        "the report while the page behind the redirect is fetched"
    );
    let report = settled(&store, id).await;
    assert_eq!(report.status, ReportStatus::Crawled);
    assert_eq!(report.reason, None);
    let page = store
        .frontier()
        .url_id(&site.url("/page"))
        .await
        .unwrap()
        .expect("the target is in the frontier");
    let links = store.reports().links(id).await.unwrap();
    assert_eq!(
        links.iter().map(|l| (l.url, l.redirects)).next_back(),
        Some((page, 1)),
        "the report is linked to the page, one redirect from the URL reported: {links:?}"
    );
    assert_eq!(links.len(), 2, "{links:?}");
    site.task.abort();
    world.shutdown();
}

/// 301 → a URL that answers 500 every time, then 301 → an address the SSRF guard refuses:
/// both reports rejected, with the reason the target's fetch gave.
async fn a_redirect_to_a_url_that_fails_is_rejected(store: Store, banks: &std::path::Path) {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    // 127.0.0.2 is loopback outside the allow-list: refused by the guard, never asked.
    let private = "http://127.0.0.2/inside";
    let routes = vec![
        ("/to-broken", redirect("/broken")),
        ("/broken", Answer::Broken),
        ("/to-private", redirect(private)),
    ];
    let crawler = crawler(&store, &world, banks, 3, 20_000);
    let site = Site::start(store.clone(), routes, None).await;
    let broken = crawl_report_of(&crawler, &store, &site, "/to-broken").await;
    assert_eq!(
        site.seen_at("/broken").len(),
        3,
        "three attempts at the target"
    );
    let report = settled(&store, broken).await;
    assert_eq!(report.status, ReportStatus::Rejected);
    let reason = report.reason.unwrap_or_default();
    assert!(reason.contains("500"), "the target's failure: {reason}");

    let refused = crawl_report_of(&crawler, &store, &site, "/to-private").await;
    let report = settled(&store, refused).await;
    assert_eq!(report.status, ReportStatus::Rejected, "{:?}", report.reason);
    assert!(report.reason.is_some(), "rejected with a reason");

    // Not a URL at all: rejected before the frontier, with a reason too.
    let unusable = file_report(&store, "not a url").await;
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    let report = settled(&store, unusable).await;
    assert_eq!(report.status, ReportStatus::Rejected);
    let reason = report.reason.unwrap_or_default();
    assert!(reason.starts_with("not crawlable"), "{reason}");
    site.task.abort();
    world.shutdown();
}

/// A → B → A: rejected as a loop. A chain one redirect longer than the limit: rejected.
async fn a_redirect_loop_or_too_long_a_chain_is_rejected(store: Store, banks: &std::path::Path) {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let routes = vec![
        ("/loop-a", redirect("/loop-b")),
        ("/loop-b", redirect("/loop-a")),
        ("/r1", redirect("/r2")),
        ("/r2", redirect("/r3")),
        ("/r3", redirect("/r4")),
        ("/r4", redirect("/r5")),
        ("/r5", Answer::Page(vec![])),
    ];
    let crawler = crawler(&store, &world, banks, 3, 20_000);
    let site = Site::start(store.clone(), routes, None).await;
    let looped = crawl_report_of(&crawler, &store, &site, "/loop-a").await;
    let report = settled(&store, looped).await;
    assert_eq!(report.status, ReportStatus::Rejected);
    let reason = report.reason.unwrap_or_default();
    assert!(reason.contains("loop"), "{reason}");

    // The crawler's limit is 3 redirects: /r5 is four from /r1.
    let long = crawl_report_of(&crawler, &store, &site, "/r1").await;
    let report = settled(&store, long).await;
    assert_eq!(report.status, ReportStatus::Rejected);
    let reason = report.reason.unwrap_or_default();
    assert!(reason.contains("more than 3 redirects"), "{reason}");
    site.task.abort();
    world.shutdown();
}

/// `/index` links to `/x` and `/y`, handed out together; the one not asked for first is
/// reported while the other is being fetched, so the worker holds it as the link it was.
/// The host budget (robots.txt, `/index`, the first) is then spent: a link is skipped by it,
/// a reported URL is not, so the second is fetched after all and its report crawled.
async fn a_link_reported_while_held_is_not_rejected_by_a_budget(
    store: Store,
    banks: &std::path::Path,
) {
    let world = SimWeb::start_with(scenario::load("small").unwrap(), 7).unwrap();
    let crawler = crawler(&store, &world, banks, 3, 3);
    let hold = Hold {
        paths: ["/x", "/y"],
        held: Arc::new(Mutex::new(None)),
        started: Arc::new(Notify::new()),
        release: Arc::new(Notify::new()),
    };
    let held = Arc::clone(&hold.held);
    let (started, release) = (Arc::clone(&hold.started), Arc::clone(&hold.release));
    let routes = vec![
        ("/index", Answer::Page(vec!["/x", "/y"])),
        ("/x", Answer::Page(vec![])),
        ("/y", Answer::Page(vec![])),
    ];
    let site = Site::start(store.clone(), routes, Some(hold)).await;
    file_report(&store, &site.url("/index")).await;
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    let mut later = None;
    let drive = async {
        started.notified().await;
        let first = held.lock().unwrap().clone().unwrap_or_default();
        let other = if first == "/x" { "/y" } else { "/x" };
        let id = file_report(&store, &site.url(other)).await;
        assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
        assert_eq!(settled(&store, id).await.status, ReportStatus::Queued);
        later = Some((id, other));
        release.notify_one();
    };
    let (crawled, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(crawler.run_until_idle(), drive)
    })
    .await
    .expect("crawl did not finish in time");
    crawled.unwrap();
    let (id, other) = later.expect("reported while the first link was fetched");
    let report = settled(&store, id).await;
    assert_eq!(
        report.status,
        ReportStatus::Crawled,
        "rejected: {:?}",
        report.reason
    );
    assert_eq!(
        site.seen_at(other).len(),
        1,
        "fetched once, as a reported URL"
    );
    site.task.abort();
    world.shutdown();
}

/// A store on a new database of the PostgreSQL server named by `ARANEA_TEST_POSTGRES`.
async fn postgres(test: &str) -> Store {
    let server = std::env::var("ARANEA_TEST_POSTGRES").expect(
        "ARANEA_TEST_POSTGRES is not set: run scripts/test, which starts a throwaway PostgreSQL",
    );
    let name = format!(
        "aranea_report_redirects_{test}_{}_{}",
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

macro_rules! on_both {
    ($sqlite:ident, $postgres:ident, $test:ident, $short:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let dir = tempfile::tempdir().unwrap();
            $test(support::sqlite(dir.path()).await, &dir.path().join("banks")).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let dir = tempfile::tempdir().unwrap();
            $test(postgres($short).await, &dir.path().join("banks")).await;
        }
    };
}

on_both!(
    on_sqlite_a_redirect_to_a_page_is_crawled_once_the_page_is,
    on_postgres_a_redirect_to_a_page_is_crawled_once_the_page_is,
    a_redirect_to_a_page_is_crawled_once_the_page_is,
    "page"
);
on_both!(
    on_sqlite_a_redirect_to_a_url_that_fails_is_rejected,
    on_postgres_a_redirect_to_a_url_that_fails_is_rejected,
    a_redirect_to_a_url_that_fails_is_rejected,
    "fails"
);
on_both!(
    on_sqlite_a_redirect_loop_or_too_long_a_chain_is_rejected,
    on_postgres_a_redirect_loop_or_too_long_a_chain_is_rejected,
    a_redirect_loop_or_too_long_a_chain_is_rejected,
    "loop"
);
on_both!(
    on_sqlite_a_link_reported_while_held_is_not_rejected_by_a_budget,
    on_postgres_a_link_reported_while_held_is_not_rejected_by_a_budget,
    a_link_reported_while_held_is_not_rejected_by_a_budget,
    "held"
);

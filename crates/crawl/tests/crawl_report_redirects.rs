//! A reported URL that redirects (a URL shortener, http → https) settles by the end of the
//! chain, not by the redirect: `crawled` once the target is fetched (the report linked to
//! it too), `rejected` with a reason when the target fails for good or is refused, when the
//! chain loops or runs past the crawler's redirect limit. And a link reported while the
//! worker holds it is judged as the reported URL it has become: a host budget spent does
//! not reject its report. Real sockets: a web server on loopback.
//! On SQLite and on PostgreSQL (`ARANEA_TEST_POSTGRES`, a new database per test).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aranea_crawl::Crawler;
use aranea_simweb::{SimWeb, scenario};
use aranea_store::{ReportId, ReportStatus, Store};
use support::loopback::{self, response};
use support::reports;
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

impl Answer {
    /// The whole response, from the server at `addr`.
    fn response(&self, addr: std::net::SocketAddr) -> String {
        match self {
            Answer::Redirect(to) => {
                let location = if to.starts_with("http") {
                    to.clone()
                } else {
                    format!("http://{addr}{to}")
                };
                response("301 Moved Permanently", &[("location", &location)], "")
            }
            Answer::Page(links) => {
                let links: String = links
                    .iter()
                    .map(|l| format!("<a href=\"{l}\">{l}</a> "))
                    .collect();
                let body = format!("<html><body>{links}</body></html>");
                response("200 OK", &[("content-type", "text/html")], &body)
            }
            Answer::Broken => response("500 Internal Server Error", &[], "down"),
        }
    }
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

impl Hold {
    /// Whether `path` is the one held: the first request for one of the paths.
    fn takes(&self, path: &str) -> bool {
        let mut held = self.held.lock().unwrap();
        let first = self.paths.contains(&path) && held.is_none();
        if first {
            *held = Some(path.to_owned());
        }
        first
    }
}

/// A path asked for, with the watched report's status at that moment.
type Request = (String, Option<ReportStatus>);

/// A one-host web server on loopback answering from a table; `/robots.txt` and unknown
/// paths are 404. Notes every path asked for, with the status of the watched report at
/// that moment (the attempt before is written before the next request: one request in
/// flight per host).
struct Site {
    server: loopback::Server,
    watched: Arc<Mutex<Option<ReportId>>>,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Site {
    async fn start(store: Store, routes: Vec<(&'static str, Answer)>, hold: Option<Hold>) -> Site {
        let routes: Arc<HashMap<&'static str, Answer>> = Arc::new(routes.into_iter().collect());
        let hold = hold.map(Arc::new);
        let watched = Arc::new(Mutex::new(None));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (watching, noted) = (Arc::clone(&watched), Arc::clone(&seen));
        let server = loopback::Server::start(move |addr, path| {
            let (store, routes, hold) = (store.clone(), Arc::clone(&routes), hold.clone());
            let (watching, noted) = (Arc::clone(&watching), Arc::clone(&noted));
            async move {
                let report = *watching.lock().unwrap();
                let status = match report {
                    Some(id) => Some(reports::status(&store, id).await),
                    None => None,
                };
                noted.lock().unwrap().push((path.clone(), status));
                if let Some(hold) = hold.filter(|h| h.takes(&path)) {
                    hold.started.notify_one();
                    hold.release.notified().await;
                }
                match routes.get(path.as_str()) {
                    Some(answer) => answer.response(addr),
                    None => response("404 Not Found", &[], "none"),
                }
            }
        })
        .await;
        Site {
            server,
            watched,
            seen,
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    fn watch(&self, id: ReportId) {
        *self.watched.lock().unwrap() = Some(id);
    }

    /// How many requests were made.
    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
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
    loopback::crawler(store, world, banks_dir, "redirects", |config| {
        config.max_redirects = max_redirects;
        config.budgets.max_fetches_per_host = host_budget;
    })
}

/// Reports `path` of `site` (watched from now on) and crawls until idle.
async fn crawl_report_of(crawler: &Crawler, store: &Store, site: &Site, path: &str) -> ReportId {
    let id = reports::file(store, &site.url(path), "nl").await;
    site.watch(id);
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    support::crawl_until_idle(crawler).await;
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
    let report = reports::get(&store, id).await;
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
    let reason = reports::rejection(&store, broken).await;
    assert!(reason.contains("500"), "the target's failure: {reason}");

    let refused = crawl_report_of(&crawler, &store, &site, "/to-private").await;
    reports::rejection(&store, refused).await;

    // Not a URL at all: rejected before the frontier, with a reason too.
    let unusable = reports::file(&store, "not a url", "nl").await;
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    let reason = reports::rejection(&store, unusable).await;
    assert!(reason.starts_with("not crawlable"), "{reason}");
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
    let reason = reports::rejection(&store, looped).await;
    assert!(reason.contains("loop"), "{reason}");

    // The crawler's limit is 3 redirects: /r5 is four from /r1.
    let long = crawl_report_of(&crawler, &store, &site, "/r1").await;
    let reason = reports::rejection(&store, long).await;
    assert!(reason.contains("more than 3 redirects"), "{reason}");
    world.shutdown();
}

/// `/index` links to `/x` and `/y`, handed out together; the one not asked for first is
/// reported while the other is being fetched, so the worker holds it as the link it was.
/// The host budget (robots.txt, `/index`, the first) is then spent: a link is skipped by it,
/// a reported URL is not, so the second is fetched after all and its report crawled. The
/// crawl's counters count that URL fetched, not skipped.
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
    reports::file(&store, &site.url("/index"), "nl").await;
    assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
    let mut later = None;
    let drive = async {
        started.notified().await;
        let first = held.lock().unwrap().clone().unwrap_or_default();
        let other = if first == "/x" { "/y" } else { "/x" };
        let id = reports::file(&store, &site.url(other), "nl").await;
        assert_eq!(crawler.queue_reports(10).await.unwrap(), 1);
        assert_eq!(reports::status(&store, id).await, ReportStatus::Queued);
        later = Some((id, other));
        release.notify_one();
    };
    let (crawled, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(crawler.run_until_idle(), drive)
    })
    .await
    .expect("crawl did not finish in time");
    let progress = crawled.unwrap();
    let (id, other) = later.expect("reported while the first link was fetched");
    let report = reports::get(&store, id).await;
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
    // Queued again for its report, then fetched: counted once, as fetched, not as skipped.
    assert_eq!(progress.skipped, 0, "{progress:?}");
    assert_eq!(progress.pages, 3, "/index, /x and /y: {progress:?}");
    assert_eq!(
        progress.fetched,
        site.requests() as u64,
        "every request made, robots.txt's too: {progress:?}"
    );
    world.shutdown();
}

on_both!(
    on_sqlite_a_redirect_to_a_page_is_crawled_once_the_page_is,
    on_postgres_a_redirect_to_a_page_is_crawled_once_the_page_is,
    a_redirect_to_a_page_is_crawled_once_the_page_is,
    "redirects_page"
);
on_both!(
    on_sqlite_a_redirect_to_a_url_that_fails_is_rejected,
    on_postgres_a_redirect_to_a_url_that_fails_is_rejected,
    a_redirect_to_a_url_that_fails_is_rejected,
    "redirects_fails"
);
on_both!(
    on_sqlite_a_redirect_loop_or_too_long_a_chain_is_rejected,
    on_postgres_a_redirect_loop_or_too_long_a_chain_is_rejected,
    a_redirect_loop_or_too_long_a_chain_is_rejected,
    "redirects_loop"
);
on_both!(
    on_sqlite_a_link_reported_while_held_is_not_rejected_by_a_budget,
    on_postgres_a_link_reported_while_held_is_not_rejected_by_a_budget,
    a_link_reported_while_held_is_not_rejected_by_a_budget,
    "redirects_held"
);

//! A reported URL that redirects: `complete_redirect` links its waiting reports to the
//! target (made a reported URL) in the transaction that completes it, and they settle by
//! the end of the chain; a target refused, a loop, or a chain past the limit rejects them
//! with a reason. And migration 9, which adds what that needs, on a database of an older
//! build.

#[macro_use]
mod common;

use aranea_store::{
    FetchOutcome, NewReport, NewUrl, Priority, RedirectTarget, ReportId, ReportLink, ReportStatus,
    SCHEMA_VERSION, Store, UrlId, UrlNext, UrlSource, UrlState,
};
use common::{NOW, TestDb};
use sqlx::Connection;

contract_tests!(
    a_report_follows_a_redirect_and_settles_by_its_target,
    a_refused_target_a_loop_or_one_redirect_too_many_rejects_the_report,
    a_database_of_an_older_build_gains_report_links_and_reasons,
);

async fn report(store: &Store, path: &str) -> (ReportId, UrlId) {
    let new = NewReport {
        url: format!("https://r.example{path}"),
        reporter: "test".into(),
        hotline: "nl".into(),
        notes: String::new(),
    };
    let id = store.reports().add(&new, NOW).await.unwrap();
    let url = store
        .frontier()
        .enqueue_reported(id, &common::url("r.example", path), NOW)
        .await
        .unwrap()
        .expect("a received report is queued")
        .id;
    (id, url)
}

fn moved() -> FetchOutcome {
    FetchOutcome::fetched(301, 0, UrlNext::Done)
}

/// The redirect's target as the crawler hands it: a link of the URL that redirected.
fn target(host: &str, path: &str) -> NewUrl {
    common::url(host, path)
}

async fn a_report_follows_a_redirect_and_settles_by_its_target(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let (id, short) = report(&store, "/short").await;
    // The target known already, as a link fetched before: fetched again for the report.
    let page = frontier
        .enqueue_urls(&[target("t.example", "/page")], NOW)
        .await
        .unwrap()[0]
        .id;
    let leased = common::leased::lease(&store, 2).await;
    frontier
        .complete_url(
            leased.lease("t.example"),
            page,
            &FetchOutcome::fetched(200, 1, UrlNext::Done),
            NOW,
        )
        .await
        .unwrap();
    let to = target("t.example", "/page");
    frontier
        .complete_redirect(
            leased.lease("r.example"),
            short,
            &moved(),
            RedirectTarget::Followed(&to),
            10,
            NOW + 1,
        )
        .await
        .unwrap();
    let waiting = store.reports().get(id).await.unwrap().unwrap();
    assert_eq!(
        waiting.status,
        ReportStatus::Queued,
        "not settled by the 301"
    );
    assert_eq!(
        store.reports().links(id).await.unwrap(),
        [
            ReportLink {
                url: short,
                redirects: 0
            },
            ReportLink {
                url: page,
                redirects: 1
            }
        ]
    );
    let record = frontier.url(page).await.unwrap().unwrap();
    assert_eq!(
        record.state,
        UrlState::Queued,
        "fetched again for the report"
    );
    assert_eq!(record.source, UrlSource::Report);
    assert_eq!(record.priority, Priority::Reported);
    assert_eq!(
        frontier.url(short).await.unwrap().unwrap().state,
        UrlState::Done
    );
    let lease = leased.lease("t.example");
    let urls = frontier.next_urls(lease, 10, NOW + 2).await.unwrap();
    assert_eq!(urls.iter().map(|u| u.id).collect::<Vec<_>>(), [page]);
    frontier
        .complete_url(
            lease,
            page,
            &FetchOutcome::fetched(200, 1, UrlNext::Done),
            NOW + 3,
        )
        .await
        .unwrap();
    let crawled = store.reports().get(id).await.unwrap().unwrap();
    assert_eq!(crawled.status, ReportStatus::Crawled);
    assert_eq!(crawled.reason, None);
}

async fn a_refused_target_a_loop_or_one_redirect_too_many_rejects_the_report(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let (refused, off) = report(&store, "/off").await;
    let (looped, a) = report(&store, "/a").await;
    let (long, first) = report(&store, "/r0").await;
    let leased = common::leased::lease(&store, 1).await;
    let lease = leased.lease("r.example");
    let status = |id: ReportId| {
        let store = &store;
        async move { store.reports().get(id).await.unwrap().unwrap() }
    };

    frontier
        .complete_redirect(
            lease,
            off,
            &moved(),
            RedirectTarget::Refused("redirected (301) to ftp://x, not followed: not http(s)"),
            10,
            NOW,
        )
        .await
        .unwrap();
    let report = status(refused).await;
    assert_eq!(report.status, ReportStatus::Rejected);
    assert_eq!(
        report.reason.as_deref(),
        Some("redirected (301) to ftp://x, not followed: not http(s)")
    );

    // /a → /b (same host, handed out under the same lease), /b → /a.
    let b = target("r.example", "/b");
    frontier
        .complete_redirect(lease, a, &moved(), RedirectTarget::Followed(&b), 10, NOW)
        .await
        .unwrap();
    let b_id = frontier.url_id(&b.url).await.unwrap().unwrap();
    assert_eq!(frontier.next_urls(lease, 10, NOW).await.unwrap().len(), 1);
    let back = target("r.example", "/a");
    frontier
        .complete_redirect(
            lease,
            b_id,
            &moved(),
            RedirectTarget::Followed(&back),
            10,
            NOW,
        )
        .await
        .unwrap();
    let report = status(looped).await;
    assert_eq!(report.status, ReportStatus::Rejected);
    assert!(report.reason.unwrap_or_default().contains("loop"));

    // A limit of 2: /r0 → /r1 → /r2 followed, /r2 → /r3 is one too many.
    let mut at = first;
    for hop in 1..=3 {
        let next = target("r.example", &format!("/r{hop}"));
        frontier
            .complete_redirect(lease, at, &moved(), RedirectTarget::Followed(&next), 2, NOW)
            .await
            .unwrap();
        at = frontier.url_id(&next.url).await.unwrap().unwrap();
        frontier.next_urls(lease, 10, NOW).await.unwrap();
        let expected = if hop < 3 {
            ReportStatus::Queued
        } else {
            ReportStatus::Rejected
        };
        assert_eq!(status(long).await.status, expected, "after redirect {hop}");
    }
    let report = status(long).await;
    assert_eq!(report.reason.as_deref(), Some("more than 2 redirects"));
    assert_eq!(store.reports().links(long).await.unwrap().len(), 3);
}

/// A report linked and one rejected by a build before migration 9, which had no hops nor
/// reasons: after it, the link is the URL reported (0 redirects) and the reason unknown.
async fn a_database_of_an_older_build_gains_report_links_and_reasons(db: &TestDb) {
    let store = db.open().await;
    let (id, url) = report(&store, "/page").await;
    store.close().await;
    macro_rules! as_before_migration_9 {
        ($conn:expr) => {{
            let mut tx = $conn.begin().await.unwrap();
            for sql in [
                "ALTER TABLE report_urls DROP COLUMN hops",
                "ALTER TABLE reports DROP COLUMN reason",
                "DELETE FROM aranea_migrations WHERE version = 9",
            ] {
                sqlx::query(sql).execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }};
    }
    if db.url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        as_before_migration_9!(conn);
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        as_before_migration_9!(conn);
    }
    let store = db.open().await;
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(
        store.reports().links(id).await.unwrap(),
        [ReportLink { url, redirects: 0 }]
    );
    let report = store.reports().get(id).await.unwrap().unwrap();
    assert_eq!((report.status, report.reason), (ReportStatus::Queued, None));
}

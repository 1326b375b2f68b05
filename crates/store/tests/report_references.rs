//! Reports' public references: random, unique, of the documented shape, and a report found
//! by one; migration 13 gives every report of an older build one. And what came of a
//! report counts the pages the crawler reached from it by links (`urls.report_id`, indexed
//! by migration 13), once each.

#[macro_use]
mod common;

use aranea_store::{
    NewReport, NewUrl, Priority, ReportId, ReportReference, SCHEMA_VERSION, Store, UrlSource,
};
use common::{NOW, TestDb};
use sqlx::Connection;

contract_tests!(
    each_report_gets_its_own_random_reference_and_is_found_by_it,
    a_database_of_an_older_build_gains_references,
    what_came_of_a_report_counts_the_pages_it_led_to_once,
);

fn new_report(url: &str) -> NewReport {
    NewReport {
        url: url.into(),
        reporter: "public form".into(),
        hotline: "nl".into(),
        notes: String::new(),
    }
}

/// Crockford's base32 in three groups of four: `XXXX-XXXX-XXXX`.
fn has_the_documented_shape(reference: &str) -> bool {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let groups: Vec<&str> = reference.split('-').collect();
    groups.len() == 3
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.chars().all(|c| ALPHABET.contains(c)))
}

async fn each_report_gets_its_own_random_reference_and_is_found_by_it(db: &TestDb) {
    let store = db.open().await;
    let mut seen = Vec::new();
    for n in 0..5 {
        let (id, reference) = store
            .reports()
            .add_with_reference(&new_report(&format!("https://r.example/{n}")), NOW)
            .await
            .unwrap();
        assert!(has_the_documented_shape(reference.as_str()), "{reference}");
        let report = store.reports().get(id).await.unwrap().unwrap();
        assert_eq!(report.reference, reference);
        // Staff find it by the reference as a reporter might type it.
        let typed = reference.as_str().to_lowercase().replace('-', " ");
        let found = store
            .reports()
            .by_reference(&ReportReference::parse(&typed).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, id);
        seen.push(reference);
    }
    let mut distinct = seen.clone();
    distinct.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    distinct.dedup();
    assert_eq!(distinct.len(), seen.len(), "{seen:?}");
    // Not a counter in disguise: consecutive reports share no common prefix of half the
    // reference (a sequence would differ only at the end).
    assert!(
        seen.windows(2)
            .filter(|w| w[0].as_str()[..7] == w[1].as_str()[..7])
            .count()
            < 2,
        "{seen:?}"
    );
    let unknown = ReportReference::parse("0000-0000-0000").unwrap();
    assert!(seen.iter().all(|r| *r != unknown));
    assert_eq!(store.reports().by_reference(&unknown).await.unwrap(), None);
    // The plain `add` draws one too.
    let id = store
        .reports()
        .add(&new_report("https://r.example/plain"), NOW)
        .await
        .unwrap();
    let report = store.reports().get(id).await.unwrap().unwrap();
    assert!(has_the_documented_shape(report.reference.as_str()));
    assert!(!seen.contains(&report.reference));
}

/// Reports recorded by a build before migration 13 (no reference, no index on
/// `urls.report_id`): after it, each has a reference of its own and keeps its id.
async fn a_database_of_an_older_build_gains_references(db: &TestDb) {
    let store = db.open().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let new = new_report(&format!("https://old.example/{n}"));
        ids.push(store.reports().add(&new, NOW).await.unwrap());
    }
    store.close().await;
    macro_rules! as_before_migration_13 {
        ($conn:expr) => {{
            let mut tx = $conn.begin().await.unwrap();
            for sql in [
                "DROP INDEX reports_by_reference",
                "DROP INDEX urls_by_report",
                "ALTER TABLE reports DROP COLUMN reference",
                "DELETE FROM aranea_migrations WHERE version = 13",
            ] {
                sqlx::query(sql).execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }};
    }
    if db.url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        as_before_migration_13!(conn);
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        as_before_migration_13!(conn);
    }
    let store = db.open().await;
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    let mut references = Vec::new();
    for id in &ids {
        let report = store.reports().get(*id).await.unwrap().unwrap();
        assert!(has_the_documented_shape(report.reference.as_str()));
        let found = store
            .reports()
            .by_reference(&report.reference)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, *id);
        references.push(report.reference.as_str().to_string());
    }
    references.sort();
    references.dedup();
    assert_eq!(references.len(), ids.len());
}

fn url_on(path: &str, source: UrlSource, report: Option<ReportId>) -> NewUrl {
    NewUrl {
        report_id: report,
        ..NewUrl::new(
            &format!("https://forum.example{path}"),
            "https://forum.example",
            "forum.example",
            source,
            Priority::Ordinary,
            NOW,
        )
    }
}

async fn fetched(db: &TestDb, store: &Store, path: &str) {
    let id = store
        .frontier()
        .url_id(&format!("https://forum.example{path}"))
        .await
        .unwrap()
        .unwrap();
    let sql = format!(
        "UPDATE urls SET state = 'done', last_status = 200, last_fetched_at = {NOW} WHERE id = {}",
        id.get()
    );
    if db.url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// A reported thread linking to a post page (which carries the report, as the crawler's
/// links do), another page reached from elsewhere: the report's counts hold the thread
/// and the post, each once, and not the other page.
async fn what_came_of_a_report_counts_the_pages_it_led_to_once(db: &TestDb) {
    let store = db.open().await;
    let report = store
        .reports()
        .add(&new_report("https://forum.example/thread"), NOW)
        .await
        .unwrap();
    store
        .frontier()
        .enqueue_reported(
            report,
            &url_on("/thread", UrlSource::Report, Some(report)),
            NOW,
        )
        .await
        .unwrap()
        .unwrap();
    store
        .frontier()
        .enqueue_urls(
            &[
                url_on("/post/2", UrlSource::Link, Some(report)),
                url_on("/elsewhere", UrlSource::Link, None),
            ],
            NOW,
        )
        .await
        .unwrap();
    for path in ["/thread", "/post/2", "/elsewhere"] {
        fetched(db, &store, path).await;
    }
    let outcome = store.reports().outcome(report).await.unwrap();
    assert_eq!(outcome.fetched, 2, "{outcome:?}");
}

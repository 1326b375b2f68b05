//! Migration 8 rewrites every URL's key (origin first: the frontier's `url_hash`) in a
//! database an older build keyed by the plain SHA-256 of each URL. Without it, a URL known
//! under its old key would be enqueued a second time and `url_id` would not find it.

#[macro_use]
mod common;

use aranea_store::SCHEMA_VERSION;
use common::{NOW, TestDb, url};
use sha2::{Digest, Sha256};
use sqlx::Connection;

contract_tests!(urls_keyed_by_an_older_build_are_rekeyed_and_still_deduplicated);

/// More URLs than the runner rewrites per page, over several hosts.
const URLS: usize = 2_500;

async fn urls_keyed_by_an_older_build_are_rekeyed_and_still_deduplicated(db: &TestDb) {
    let batch: Vec<_> = (0..URLS)
        .map(|i| url(&format!("h{}.example", i % 7), &format!("/p/{i}")))
        .collect();
    let store = db.open().await;
    for chunk in batch.chunks(500) {
        store.frontier().enqueue_urls(chunk, NOW).await.unwrap();
    }
    store.close().await;

    key_as_before_migration_8(db).await;

    let store = db.open().await;
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    for chunk in batch.chunks(500) {
        let again = store.frontier().enqueue_urls(chunk, NOW).await.unwrap();
        assert!(
            again.iter().all(|u| !u.inserted),
            "a URL known before the migration was enqueued again"
        );
    }
    assert_eq!(store.counts().await.unwrap().urls, URLS as i64);
    for u in batch.iter().step_by(97) {
        assert!(
            store.frontier().url_id(&u.url).await.unwrap().is_some(),
            "{} not found by its URL after the migration",
            u.url
        );
    }
    store.close().await;
}

/// What a build before migration 8 left: every key the SHA-256 of the URL, and migration 8
/// not applied.
async fn key_as_before_migration_8(db: &TestDb) {
    macro_rules! rewrite {
        ($conn:expr) => {{
            let rows = sqlx::query_as::<_, (i64, String)>("SELECT id, url FROM urls")
                .fetch_all(&mut $conn)
                .await
                .unwrap();
            assert_eq!(rows.len(), URLS);
            let mut tx = $conn.begin().await.unwrap();
            for (id, url) in rows {
                sqlx::query("UPDATE urls SET url_hash = $1 WHERE id = $2")
                    .bind(Sha256::digest(url.as_bytes()).to_vec())
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            sqlx::query("DELETE FROM aranea_migrations WHERE version = 8")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }};
    }
    if db.url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        rewrite!(conn);
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        rewrite!(conn);
    }
}

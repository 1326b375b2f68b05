//! What differs between the back-ends: opening by URL, SQLite's file set-up, and
//! PostgreSQL's SKIP LOCKED, which lets a claimer pass a locked host by without waiting.

mod common;

use std::time::Duration;

use aranea_store::{BackendKind, NewUrl, Priority, Store, StoreError, StoreOptions, UrlSource};
use common::{NOW, TestDb};
use sqlx::Connection;

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in [
        "mysql://x/y",
        "",
        "sqlite://",
        "sqlite::memory:",
        "sqlite://x.db?mode=ro",
    ] {
        match Store::open(url).await {
            Err(StoreError::UnsupportedUrl { .. }) => {}
            other => panic!("{url:?}: {other:?}"),
        }
    }
    let quick = StoreOptions {
        acquire_timeout: Duration::from_secs(1),
        ..StoreOptions::default()
    };
    match Store::open_with("postgres://me:secret@127.0.0.1:1/x", &quick).await {
        Err(error @ StoreError::Connect(_)) => assert!(!error.to_string().contains("secret")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sqlite_creates_its_directory_and_uses_wal() {
    let db = TestDb::sqlite().await;
    let store = db.open().await;
    assert_eq!(store.kind(), BackendKind::Sqlite);
    let path = db.url.strip_prefix("sqlite://").unwrap();
    assert!(std::path::Path::new(path).is_file());
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode.0, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_claims_skip_a_locked_host_without_waiting() {
    let db = TestDb::postgres().await;
    let store = db.open().await;
    assert_eq!(store.kind(), BackendKind::Postgres);
    let batch: Vec<NewUrl> = ["a", "b"]
        .iter()
        .map(|h| {
            NewUrl::new(
                &format!("https://{h}.example/"),
                &format!("https://{h}.example"),
                &format!("{h}.example"),
                UrlSource::Seed,
                Priority::Reported,
                NOW,
            )
        })
        .collect();
    store.frontier().enqueue_urls(&batch, NOW).await.unwrap();
    let locked = store
        .frontier()
        .host_by_key("https://a.example")
        .await
        .unwrap()
        .unwrap();

    // Another session holds host a's row lock (as a claimer mid-transaction would).
    let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("SELECT id FROM hosts WHERE id = $1 FOR UPDATE")
        .bind(locked.id.get())
        .fetch_one(&mut *tx)
        .await
        .unwrap();

    let claimed = tokio::time::timeout(
        Duration::from_secs(10),
        store.frontier().claim_hosts("w", 10, 60_000, NOW),
    )
    .await
    .expect("claim waited for the lock instead of skipping it")
    .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|c| c.host.key.as_str())
            .collect::<Vec<_>>(),
        ["https://b.example"]
    );

    tx.rollback().await.unwrap();
    let after = store
        .frontier()
        .claim_hosts("w", 10, 60_000, NOW)
        .await
        .unwrap();
    assert_eq!(
        after
            .iter()
            .map(|c| c.host.key.as_str())
            .collect::<Vec<_>>(),
        ["https://a.example"]
    );
}

//! A fresh database per test: a SQLite file in its own temporary directory, or a new
//! database on the PostgreSQL server named by `ARANEA_TEST_POSTGRES` (scripts/test starts a
//! throwaway one). No test is skipped for want of a server: without it, PostgreSQL tests fail.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use aranea_store::{NewUrl, Priority, Store, UrlSource};
use sqlx::Connection;

pub mod leased;

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub const NOW: i64 = 1_700_000_000_000;

/// A link-priority URL on `host` discovered at `NOW`.
pub fn url(host: &str, path: &str) -> NewUrl {
    url_due(host, path, NOW)
}

/// A link-priority URL on `host`, not to be fetched before `next_fetch_at`.
pub fn url_due(host: &str, path: &str, next_fetch_at: i64) -> NewUrl {
    NewUrl::new(
        &format!("https://{host}{path}"),
        &format!("https://{host}"),
        host,
        UrlSource::Link,
        Priority::Ordinary,
        next_fetch_at,
    )
}

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "aranea_t{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A throwaway database; the SQLite directory is removed on drop.
pub struct TestDb {
    pub url: String,
    dir: Option<PathBuf>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(unique_name());
        // A nested path checks that open creates the parent directories.
        let url = format!("sqlite://{}", dir.join("nested/aranea.db").display());
        TestDb {
            url,
            dir: Some(dir),
        }
    }

    pub fn postgres_server() -> String {
        match std::env::var("ARANEA_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => url,
            _ => panic!(
                "ARANEA_TEST_POSTGRES is not set: the store's contract tests need a PostgreSQL \
                 server (run scripts/test, which starts a throwaway cluster, or set it to \
                 postgres://USER@HOST:PORT/postgres of a server where the user may CREATE DATABASE)"
            ),
        }
    }

    pub async fn postgres() -> TestDb {
        let server = Self::postgres_server();
        let name = unique_name();
        let mut conn = sqlx::PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to ARANEA_TEST_POSTGRES={server}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        TestDb {
            url: with_database(&server, &name),
            dir: None,
        }
    }

    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }
}

/// The server URL with its database path replaced by `name`.
pub fn with_database(server: &str, name: &str) -> String {
    let (scheme, rest) = server.split_once("://").expect("URL with ://");
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

/// Instantiates each `async fn NAME(db: &TestDb)` contract test once per back-end, as
/// `on_sqlite::NAME` and `on_postgres::NAME`, on a multi-threaded runtime so concurrent
/// tests really run in parallel.
#[allow(unused_macros)]
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = crate::common::TestDb::sqlite().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = crate::common::TestDb::postgres().await;
                    super::$name(&db).await;
                }
            )*
        }
    };
}

/// Records a media (every digest `seed` repeated, PDQ too) seen at
/// `https://files.example{path}` at `at`, and its match in bank 1 (`known`, entry `seed`,
/// classification `A1`); returns the sighting's id. The notice and statistics tests start
/// from such a detection.
pub async fn matched_sighting(store: &Store, path: &str, seed: u8, at: i64) -> i64 {
    use aranea_store::{BankMatch, MediaRecord, NewSighting};
    let done = store
        .frontier()
        .enqueue_urls(&[url("files.example", path)], at)
        .await
        .unwrap();
    let media = MediaRecord {
        sha256: [seed; 32],
        md5: [seed; 16],
        sha1: [seed; 20],
        pdq: Some([seed; 32]),
        pdq_quality: Some(90),
        size: 1000,
        kind: "jpeg".into(),
        width: Some(10),
        height: Some(10),
    };
    store.media().record(&media, at).await.unwrap();
    let sighting = store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: [seed; 32],
            url: done[0].id,
            page: None,
            member_path: None,
            seen_at: at,
            server_ip: None,
        })
        .await
        .unwrap();
    let hit = BankMatch {
        bank_id: 1,
        bank_name: "known".into(),
        entry_id: i64::from(seed),
        signal_type: "sha256".into(),
        distance: 0,
        classification: "A1".into(),
    };
    store
        .media()
        .record_matches(sighting, &[hit], at)
        .await
        .unwrap();
    sighting.get()
}

/// Returns once some session of `watch`'s database waits for a lock (the statement under
/// test has reached a row another transaction holds); panics with `what` after 10 s.
pub async fn until_a_session_waits_for_a_lock(watch: &mut sqlx::PgConnection, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *watch)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

//! Known hosts crawled again for re-uploads (the notice worker's revisits): the hosts served
//! from given addresses are found, a host's done pages (not its media) go back to the queue
//! at the priority asked, those fetched longest ago first, at most once per interval per
//! host, and workers asking at once make one revisit. The hosts' addresses are recorded
//! once each however many fetches (and by migration 14 for the fetches before it), and both
//! reads are served by indexes.

#[macro_use]
mod common;

use aranea_store::{
    FetchOutcome, HostRevisit, MediaRecord, NewSighting, Priority, SCHEMA_VERSION, Store, UrlId,
    UrlNext, UrlSource, UrlState, revisit_reads,
};
use common::leased::lease;
use common::{NOW, TestDb, url, url_due};
use sqlx::Connection;

const HOUR: i64 = 3_600_000;

/// `a.example`'s three pages and one photo, and `b.example`'s page, fetched and done: the
/// pages of a at `NOW`, `NOW + 1`, `NOW + 2` from 192.0.2.10, the photo (sighted) from
/// there too, b from 198.51.100.7.
async fn crawled(store: &Store) -> Vec<UrlId> {
    let frontier = store.frontier();
    let urls = [
        url("a.example", "/1"),
        url("a.example", "/2"),
        url("a.example", "/3"),
        url("a.example", "/photo.jpg"),
        url("b.example", "/"),
    ];
    let ids: Vec<UrlId> = frontier
        .enqueue_urls(&urls, NOW)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    let leased = lease(store, 10).await;
    for (i, id) in ids.iter().enumerate() {
        let (host, ip) = if i < 4 {
            ("a.example", "192.0.2.10")
        } else {
            ("b.example", "198.51.100.7")
        };
        let outcome = FetchOutcome {
            server_ip: Some(ip.to_owned()),
            ..FetchOutcome::fetched(200, 10, UrlNext::Done)
        };
        frontier
            .complete_url(leased.lease(host), *id, &outcome, NOW + i as i64)
            .await
            .unwrap();
    }
    let photo = MediaRecord {
        sha256: [7; 32],
        md5: [7; 16],
        sha1: [7; 20],
        pdq: None,
        pdq_quality: None,
        size: 10,
        kind: "jpeg".into(),
        width: None,
        height: None,
    };
    store.media().record(&photo, NOW).await.unwrap();
    store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: [7; 32],
            url: ids[3],
            page: Some(ids[0]),
            member_path: None,
            seen_at: NOW,
            server_ip: Some("192.0.2.10".into()),
        })
        .await
        .unwrap();
    ids
}

fn revisit(at: i64, pages: u32) -> HostRevisit<'static> {
    HostRevisit {
        host_key: "https://a.example",
        at,
        min_interval_ms: HOUR,
        fetch_at: NOW + 5,
        pages,
        priority: Priority::Recheck,
    }
}

async fn states(store: &Store, ids: &[UrlId]) -> Vec<(UrlState, Priority)> {
    let mut states = Vec::new();
    for id in ids {
        let url = store.frontier().url(*id).await.unwrap().unwrap();
        states.push((url.state, url.priority));
    }
    states
}

async fn a_hosts_done_pages_are_queued_again_at_most_once_per_interval(db: &TestDb) {
    let store = db.open().await;
    let ids = crawled(&store).await;
    let frontier = store.frontier();
    let around: Vec<String> = (0..=255).map(|d| format!("192.0.2.{d}")).collect();
    assert_eq!(
        frontier.hosts_served_from(&around, 10, NOW).await.unwrap(),
        ["https://a.example"]
    );
    assert!(
        frontier
            .hosts_served_from(&["203.0.113.1".to_owned()], 10, NOW)
            .await
            .unwrap()
            .is_empty()
    );

    // Two of the three pages, the ones fetched first; not the photo.
    assert_eq!(
        frontier.revisit_host(&revisit(NOW, 2)).await.unwrap(),
        Some(2)
    );
    let done = (UrlState::Done, Priority::Ordinary);
    let queued = (UrlState::Queued, Priority::Recheck);
    assert_eq!(
        states(&store, &ids).await,
        [queued, queued, done, done, done]
    );
    let page = frontier.url(ids[0]).await.unwrap().unwrap();
    assert_eq!(page.next_fetch_at, NOW + 5);

    // Too soon: nothing more, however often asked.
    assert_eq!(
        frontier
            .revisit_host(&revisit(NOW + HOUR - 1, 2))
            .await
            .unwrap(),
        None
    );
    assert_eq!(states(&store, &ids).await[2], done);
    // An interval later, the page left (the two others are queued already).
    assert_eq!(
        frontier
            .revisit_host(&revisit(NOW + HOUR, 2))
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(states(&store, &ids).await[2], queued);
    // A host the crawler never saw: nothing.
    let unknown = HostRevisit {
        host_key: "https://c.example",
        ..revisit(NOW, 2)
    };
    assert_eq!(frontier.revisit_host(&unknown).await.unwrap(), None);
    store.close().await;
}

async fn workers_revisiting_one_host_at_once_make_one_revisit(db: &TestDb) {
    let store = db.open().await;
    crawled(&store).await;
    const WORKERS: usize = 6;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(WORKERS));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let store = db.open().await;
        let start = start.clone();
        workers.push(tokio::spawn(async move {
            start.wait().await;
            let done = store.frontier().revisit_host(&revisit(NOW, 10)).await;
            store.close().await;
            done.unwrap()
        }));
    }
    let mut answers = Vec::new();
    for worker in workers {
        answers.push(worker.await.unwrap());
    }
    answers.sort();
    let mut expected = vec![None; WORKERS - 1];
    expected.push(Some(3));
    assert_eq!(answers, expected);
    store.close().await;
}

/// Fetches `paths` of `https://{host}` at `at`, each answered from `ip` (none: the crawler
/// recorded no address), as a crawl worker would: queued, leased, handed out, completed done.
async fn fetch_from(store: &Store, host: &str, paths: &[String], ip: Option<&str>, at: i64) {
    let frontier = store.frontier();
    let batch: Vec<_> = paths.iter().map(|p| url_due(host, p, at)).collect();
    frontier.enqueue_urls(&batch, at).await.unwrap();
    let key = format!("https://{host}");
    let leased = frontier.claim_hosts("w", 100, 60_000, at).await.unwrap();
    let lease = &leased
        .iter()
        .find(|l| l.host.key == key)
        .unwrap_or_else(|| panic!("{key} not leased"))
        .lease;
    let urls = frontier.next_urls(lease, 10_000, at).await.unwrap();
    assert_eq!(urls.len(), paths.len());
    let outcome = FetchOutcome {
        server_ip: ip.map(str::to_owned),
        ..FetchOutcome::fetched(200, 10, UrlNext::Done)
    };
    let done: Vec<_> = urls.iter().map(|u| (u.id, &outcome)).collect();
    frontier.complete_urls(lease, &done, at).await.unwrap();
    for host in &leased {
        frontier.release(&host.lease, at).await.unwrap();
    }
}

fn paths(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("/{prefix}{i}")).collect()
}

/// The database's own connection, for what the store's API does not show.
macro_rules! with_connection {
    ($db:expr, |$conn:ident| $body:expr) => {{
        if $db.url.starts_with("sqlite") {
            let mut $conn = sqlx::SqliteConnection::connect(&$db.url).await.unwrap();
            $body
        } else {
            let mut $conn = sqlx::PgConnection::connect(&$db.url).await.unwrap();
            $body
        }
    }};
}

/// Every recorded (address, host key, first seen, last seen), in address order.
async fn host_addresses(db: &TestDb) -> Vec<(String, String, i64, i64)> {
    const SQL: &str = "SELECT a.server_ip, h.key, a.first_seen_at, a.last_seen_at \
        FROM host_addresses a JOIN hosts h ON h.id = a.host_id ORDER BY a.server_ip, h.key";
    with_connection!(db, |conn| sqlx::query_as(SQL)
        .fetch_all(&mut conn)
        .await
        .unwrap())
}

fn around(prefix: &str) -> Vec<String> {
    (0..=255).map(|d| format!("{prefix}.{d}")).collect()
}

const MINUTE: i64 = 60_000;

/// Hundreds of fetches of a host from two addresses make two rows; a host moving to
/// another address keeps its old one and gains the new; a fetch without an address makes
/// none. A known row's last time moves only once it is an hour old.
async fn each_address_a_host_was_fetched_from_is_recorded_once(db: &TestDb) {
    let store = db.open().await;
    fetch_from(
        &store,
        "a.example",
        &paths("p", 150),
        Some("192.0.2.10"),
        NOW,
    )
    .await;
    fetch_from(
        &store,
        "b.example",
        &paths("p", 1),
        Some("198.51.100.7"),
        NOW,
    )
    .await;
    fetch_from(&store, "c.example", &paths("p", 3), None, NOW).await;
    let later = NOW + 10 * MINUTE;
    fetch_from(
        &store,
        "a.example",
        &paths("q", 150),
        Some("192.0.2.11"),
        later,
    )
    .await;
    fetch_from(
        &store,
        "a.example",
        &paths("r", 2),
        Some("192.0.2.10"),
        later,
    )
    .await;
    // Seen again ten minutes later: the row is left as it is.
    assert_eq!(
        host_addresses(db).await[0],
        (
            "192.0.2.10".to_owned(),
            "https://a.example".to_owned(),
            NOW,
            NOW
        )
    );
    let moved = NOW + 2 * HOUR;
    fetch_from(
        &store,
        "b.example",
        &paths("moved", 1),
        Some("192.0.2.20"),
        moved,
    )
    .await;
    fetch_from(
        &store,
        "a.example",
        &paths("s", 1),
        Some("192.0.2.10"),
        moved,
    )
    .await;

    assert_eq!(store.counts().await.unwrap().fetches, 308);
    let (a, b) = (
        "https://a.example".to_owned(),
        "https://b.example".to_owned(),
    );
    assert_eq!(
        host_addresses(db).await,
        [
            ("192.0.2.10".to_owned(), a.clone(), NOW, moved),
            ("192.0.2.11".to_owned(), a.clone(), later, later),
            ("192.0.2.20".to_owned(), b.clone(), moved, moved),
            ("198.51.100.7".to_owned(), b.clone(), NOW, NOW),
        ]
    );
    let frontier = store.frontier();
    assert_eq!(
        frontier
            .hosts_served_from(&around("192.0.2"), 10, moved)
            .await
            .unwrap(),
        [a.clone(), b.clone()]
    );
    assert_eq!(
        frontier
            .hosts_served_from(&around("198.51.100"), 10, moved)
            .await
            .unwrap(),
        std::slice::from_ref(&b)
    );
    assert_eq!(
        frontier
            .hosts_served_from(&around("192.0.2"), 1, moved)
            .await
            .unwrap(),
        [a]
    );
    store.close().await;
}

/// A host revisited after the time given is left out, so the next hosts around take its
/// place in the limit, and it is back once its revisit is that old.
async fn hosts_revisited_lately_are_left_out_of_the_hosts_served_around(db: &TestDb) {
    let store = db.open().await;
    for host in ["a.example", "b.example", "c.example"] {
        fetch_from(&store, host, &paths("p", 2), Some("192.0.2.10"), NOW).await;
    }
    let frontier = store.frontier();
    let served = |after: i64, limit: u32| {
        let frontier = store.frontier();
        async move {
            frontier
                .hosts_served_from(&around("192.0.2"), limit, after)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        served(NOW - HOUR, 2).await,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(
        frontier.revisit_host(&revisit(NOW, 10)).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        served(NOW - HOUR, 2).await,
        ["https://b.example", "https://c.example"]
    );
    assert_eq!(
        served(NOW, 3).await,
        [
            "https://a.example",
            "https://b.example",
            "https://c.example"
        ]
    );
    store.close().await;
}

/// A URL queued as an embed is media to the crawler (it never reads one as a page), so a
/// revisit leaves it alone even when nothing was sighted at it.
async fn urls_queued_as_embeds_are_not_revisited_as_pages(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let mut banner = url("a.example", "/banner.gif");
    banner.source = UrlSource::Embed;
    let ids: Vec<UrlId> = frontier
        .enqueue_urls(&[banner, url("a.example", "/page")], NOW)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    let leased = lease(&store, 10).await;
    for id in &ids {
        frontier
            .complete_url(
                leased.lease("a.example"),
                *id,
                &FetchOutcome::fetched(200, 10, UrlNext::Done),
                NOW,
            )
            .await
            .unwrap();
    }
    assert_eq!(
        frontier.revisit_host(&revisit(NOW, 10)).await.unwrap(),
        Some(1)
    );
    let states = states(&store, &ids).await;
    assert_eq!(
        states,
        [
            (UrlState::Done, Priority::Ordinary),
            (UrlState::Queued, Priority::Recheck)
        ]
    );
    store.close().await;
}

/// A database migrated from before migration 14 knows its hosts' addresses from the fetches
/// recorded until then, and finds the hosts around as before.
async fn addresses_of_earlier_fetches_are_recorded_by_the_migration(db: &TestDb) {
    let store = db.open().await;
    fetch_from(&store, "a.example", &paths("p", 3), Some("192.0.2.10"), NOW).await;
    fetch_from(&store, "b.example", &paths("p", 1), Some("192.0.2.77"), NOW).await;
    fetch_from(&store, "c.example", &paths("p", 1), None, NOW).await;
    let later = NOW + 5 * MINUTE;
    fetch_from(
        &store,
        "a.example",
        &paths("q", 2),
        Some("192.0.2.10"),
        later,
    )
    .await;
    fetch_from(
        &store,
        "b.example",
        &paths("q", 1),
        Some("203.0.113.5"),
        later,
    )
    .await;
    store.close().await;

    with_connection!(db, |conn| {
        for sql in [
            "DROP TABLE host_addresses",
            "DROP TABLE notice_link_keys_retired",
            "DROP INDEX urls_done_by_fetch",
            "CREATE INDEX fetches_by_server_ip ON fetches (server_ip)",
            "DELETE FROM aranea_migrations WHERE version = 14",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    });

    let store = db.open().await;
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    let (a, b) = (
        "https://a.example".to_owned(),
        "https://b.example".to_owned(),
    );
    assert_eq!(
        host_addresses(db).await,
        [
            ("192.0.2.10".to_owned(), a.clone(), NOW, later),
            ("192.0.2.77".to_owned(), b.clone(), NOW, NOW),
            ("203.0.113.5".to_owned(), b.clone(), later, later),
        ]
    );
    assert_eq!(
        store
            .frontier()
            .hosts_served_from(&around("192.0.2"), 10, later)
            .await
            .unwrap(),
        [a, b]
    );
    store.close().await;
}

/// The revisits' reads go through their indexes: the done pages in the order asked, with no
/// sort of the host's URLs (the read stops after the pages asked for), and the hosts around
/// looked up by address, never the fetches. PostgreSQL is told to avoid sequential scans
/// (and sorts, for the pages), as it would on tables of millions of rows: what it still
/// scans or sorts, no index serves.
async fn the_revisits_reads_are_served_by_indexes(db: &TestDb) {
    let store = db.open().await;
    crawled(&store).await;
    store.close().await;
    let [done_pages, served_from] = revisit_reads(256);
    let addresses = around("192.0.2");
    let plans: Vec<String> = with_connection!(db, |conn| {
        let sqlite = db.url.starts_with("sqlite");
        if !sqlite {
            for sql in [
                "SET enable_seqscan = off",
                "SET enable_sort = off",
                "SET enable_bitmapscan = off",
            ] {
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
        let explain = if sqlite {
            "EXPLAIN QUERY PLAN "
        } else {
            "EXPLAIN "
        };
        let column = if sqlite { 3 } else { 0 };
        let mut plans = Vec::new();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{explain}{done_pages}")))
            .bind(1_i64)
            .bind(50_i64)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        plans.push(plan_text(&rows, column));
        // The hosts found are few and sorted by id: a sort is what PostgreSQL should do.
        if !sqlite {
            sqlx::query("SET enable_sort = on")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("{explain}{served_from}")))
            .bind(20_i64)
            .bind(NOW);
        for address in &addresses {
            query = query.bind(address);
        }
        plans.push(plan_text(
            &query.fetch_all(&mut conn).await.unwrap(),
            column,
        ));
        plans
    });
    let (pages, served) = (&plans[0], &plans[1]);
    assert!(pages.contains("urls_done_by_fetch"), "{pages}");
    assert!(!pages.contains("TEMP B-TREE"), "{pages}");
    assert!(!pages.contains("Sort"), "{pages}");
    assert!(!pages.contains("Seq Scan on urls"), "{pages}");
    assert!(served.contains("host_addresses"), "{served}");
    assert!(!served.contains("fetches"), "{served}");
    // Looked up by address (PostgreSQL: `Index Cond: (server_ip = ANY …)`; SQLite:
    // `SEARCH a USING … (server_ip=?)`), and no table read whole.
    assert!(
        served.contains("Index Cond: (server_ip") || served.contains("(server_ip=?)"),
        "{served}"
    );
    assert!(!served.contains("Seq Scan"), "{served}");
    assert!(!served.contains("SCAN "), "{served}");
}

fn plan_text<R: sqlx::Row>(rows: &[R], column: usize) -> String
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|row| row.get::<String, _>(column))
        .collect::<Vec<_>>()
        .join("\n")
}

contract_tests!(
    a_hosts_done_pages_are_queued_again_at_most_once_per_interval,
    workers_revisiting_one_host_at_once_make_one_revisit,
    each_address_a_host_was_fetched_from_is_recorded_once,
    hosts_revisited_lately_are_left_out_of_the_hosts_served_around,
    urls_queued_as_embeds_are_not_revisited_as_pages,
    addresses_of_earlier_fetches_are_recorded_by_the_migration,
    the_revisits_reads_are_served_by_indexes,
);

//! The frontier's contract on both back-ends: migrations, enqueue dedup, the claim →
//! next_urls → complete → release cycle, due times, re-checks and priorities.

#[macro_use]
mod common;

use aranea_store::{
    Completion, FetchOutcome, HostPolicy, PageSettlement, Priority, RobotsCache, SCHEMA_VERSION,
    Store, StoreError, UrlNext, UrlSource, UrlState,
};
use common::{NOW, TestDb, url};

contract_tests!(
    migrations_are_idempotent,
    concurrent_opens_migrate_once,
    an_edited_migration_is_refused,
    enqueue_dedups_on_the_canonical_url,
    claim_next_complete_release_cycle,
    hosts_are_claimed_only_when_due,
    retry_requeues_the_url_for_later,
    robots_and_policy_are_stored_under_the_lease,
    rechecks_and_raised_priorities_reorder_known_urls,
);

async fn migrations_are_idempotent(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store
        .frontier()
        .enqueue_urls(&[url("a.example", "/")], NOW)
        .await
        .unwrap();
    store.close().await;
    // A second open migrates nothing and keeps the data.
    let again = db.open().await;
    assert_eq!(again.migrate().await.unwrap(), 0);
    assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(again.counts().await.unwrap().urls, 1);
}

/// Workers started together on a new database file: every open succeeds (a lost race for
/// the WAL switch is retried), and the schema is migrated once.
async fn concurrent_opens_migrate_once(db: &TestDb) {
    let opens: Vec<_> = (0..12)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { Store::open(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().unwrap());
    }
    for store in &stores {
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert_eq!(store.migrate().await.unwrap(), 0);
    }
}

async fn an_edited_migration_is_refused(db: &TestDb) {
    db.open().await.close().await;
    // Simulate a database migrated by a build whose migration 1 differed.
    let tamper = "UPDATE aranea_migrations SET checksum = $1 WHERE version = 1";
    if db.url.starts_with("sqlite") {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url)
            .await
            .unwrap();
        sqlx::query(tamper)
            .bind(vec![0u8; 32])
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
            .await
            .unwrap();
        sqlx::query(tamper)
            .bind(vec![0u8; 32])
            .execute(&mut conn)
            .await
            .unwrap();
    }
    match Store::open(&db.url).await {
        Err(StoreError::MigrationChanged { version: 1 }) => {}
        other => panic!("edited migration not refused: {other:?}"),
    }
}

async fn enqueue_dedups_on_the_canonical_url(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let batch = [
        url("b.example", "/2"),
        url("a.example", "/1"),
        url("b.example", "/2"), // a duplicate within the batch
        url("a.example", "/3"),
    ];
    let first = frontier.enqueue_urls(&batch, NOW).await.unwrap();
    assert_eq!(first.len(), 4);
    assert_eq!(
        first.iter().map(|e| e.inserted).collect::<Vec<_>>(),
        [true, true, false, true]
    );
    assert_eq!(first[0].id, first[2].id, "same URL, same id");
    assert_eq!(first[1].host_id, first[3].host_id);
    assert_ne!(first[0].host_id, first[1].host_id);

    let again = frontier
        .enqueue_urls(&[url("a.example", "/1"), url("a.example", "/4")], NOW)
        .await
        .unwrap();
    assert!(!again[0].inserted);
    assert_eq!(again[0].id, first[1].id);
    assert!(again[1].inserted);

    let counts = store.counts().await.unwrap();
    assert_eq!((counts.hosts, counts.urls, counts.urls_queued), (2, 4, 4));
    let host = frontier.host(first[1].host_id).await.unwrap().unwrap();
    assert_eq!(host.key, "https://a.example");
    assert_eq!(host.urls_known, 3);
    assert_eq!(host.due_at, Some(NOW));
    let record = frontier.url(first[3].id).await.unwrap().unwrap();
    assert_eq!(record.url, "https://a.example/3");
    assert_eq!(record.state, UrlState::Queued);
    assert_eq!(
        frontier.url_id("https://a.example/3").await.unwrap(),
        Some(first[3].id)
    );
    assert_eq!(frontier.url_id("https://a.example/9").await.unwrap(), None);
    assert_eq!(
        frontier
            .urls_under(first[1].host_id, "https://a.example/")
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        frontier
            .urls_under(first[1].host_id, "https://a.example/4")
            .await
            .unwrap(),
        1
    );
}

async fn claim_next_complete_release_cycle(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let mut reported = url("a.example", "/reported");
    reported.priority = Priority::Reported;
    reported.source = UrlSource::Report;
    let enqueued = frontier
        .enqueue_urls(
            &[url("a.example", "/x"), reported, url("a.example", "/y")],
            NOW,
        )
        .await
        .unwrap();

    let claimed = frontier.claim_hosts("w1", 5, 60_000, NOW).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let lease = claimed[0].lease.clone();
    assert_eq!(lease.owner(), "w1");
    assert_eq!(lease.until(), NOW + 60_000);
    assert_eq!(claimed[0].host.lease_owner.as_deref(), Some("w1"));
    // Claimed: nobody else gets it.
    assert!(
        frontier
            .claim_hosts("w2", 5, 60_000, NOW)
            .await
            .unwrap()
            .is_empty()
    );

    let batch = frontier.next_urls(&lease, 2, NOW).await.unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(
        batch[0].url, "https://a.example/reported",
        "reported URLs first"
    );
    assert_eq!(batch[0].id, enqueued[1].id);
    // Handed out URLs are not handed out again under the same lease.
    let rest = frontier.next_urls(&lease, 10, NOW).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert!(batch.iter().all(|u| u.id != rest[0].id));
    assert!(
        frontier
            .next_urls(&lease, 10, NOW)
            .await
            .unwrap()
            .is_empty()
    );

    let mut outcome = FetchOutcome::fetched(200, 1234, UrlNext::Done);
    outcome.server_ip = Some("127.0.0.9".into());
    outcome.etag = Some("\"v1\"".into());
    let done = frontier
        .complete_url(&lease, batch[0].id, &outcome, NOW + 10)
        .await
        .unwrap();
    assert_eq!(done, Completion::Recorded);
    // Repeating the completion (a retry after a lost reply) writes nothing.
    let again = frontier
        .complete_url(&lease, batch[0].id, &outcome, NOW + 20)
        .await
        .unwrap();
    assert_eq!(again, Completion::AlreadyRecorded);
    let fetches = frontier.fetches(batch[0].id).await.unwrap();
    assert_eq!(fetches.len(), 1);
    assert_eq!(fetches[0].status, Some(200));
    assert_eq!(fetches[0].bytes, 1234);
    assert_eq!(fetches[0].server_ip.as_deref(), Some("127.0.0.9"));
    assert_eq!(fetches[0].fetched_at, NOW + 10);
    let record = frontier.url(batch[0].id).await.unwrap().unwrap();
    assert_eq!(record.state, UrlState::Done);
    assert_eq!(record.attempts, 1);
    assert_eq!(record.last_status, Some(200));
    assert_eq!(record.etag.as_deref(), Some("\"v1\""));

    let failed = FetchOutcome::failed("connect timeout", UrlNext::Failed);
    frontier
        .complete_url(&lease, batch[1].id, &failed, NOW + 30)
        .await
        .unwrap();
    let skipped = FetchOutcome::not_fetched(UrlNext::Skipped);
    frontier
        .complete_url(&lease, rest[0].id, &skipped, NOW + 40)
        .await
        .unwrap();
    assert_eq!(
        frontier.fetches(rest[0].id).await.unwrap().len(),
        0,
        "no request, no fetch row"
    );
    assert_eq!(
        frontier.fetches(batch[1].id).await.unwrap()[0]
            .error
            .as_deref(),
        Some("connect timeout")
    );

    frontier.release(&lease, NOW + 5_000).await.unwrap();
    let host = frontier.host(lease.host_id()).await.unwrap().unwrap();
    assert_eq!(host.lease_owner, None);
    assert_eq!(host.next_allowed_at, NOW + 5_000);
    assert_eq!(host.due_at, None, "nothing left queued");
    assert_eq!(host.pages_fetched, 2);
    assert_eq!(host.bytes_fetched, 1234);
    // Released twice: the second is refused, the lease is gone.
    assert!(matches!(
        frontier.release(&lease, NOW).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(
        frontier
            .claim_hosts("w2", 5, 60_000, NOW + 10_000)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn hosts_are_claimed_only_when_due(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let mut later = url("later.example", "/");
    later.next_fetch_at = NOW + 1_000;
    frontier
        .enqueue_urls(&[later, url("now.example", "/")], NOW)
        .await
        .unwrap();
    let claimed = frontier.claim_hosts("w", 10, 60_000, NOW).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].host.key, "https://now.example");
    // Politeness: the released host is not due before next_allowed_at even with work left.
    let lease = &claimed[0].lease;
    frontier
        .enqueue_urls(&[url("now.example", "/2")], NOW)
        .await
        .unwrap();
    let one = frontier.next_urls(lease, 1, NOW).await.unwrap();
    frontier
        .complete_url(
            lease,
            one[0].id,
            &FetchOutcome::fetched(200, 1, UrlNext::Done),
            NOW,
        )
        .await
        .unwrap();
    frontier.release(lease, NOW + 3_000).await.unwrap();
    let at_2s = frontier
        .claim_hosts("w", 10, 60_000, NOW + 2_000)
        .await
        .unwrap();
    assert_eq!(at_2s.len(), 1);
    assert_eq!(at_2s[0].host.key, "https://later.example");
    let at_3s = frontier
        .claim_hosts("w", 10, 60_000, NOW + 3_000)
        .await
        .unwrap();
    assert_eq!(at_3s.len(), 1);
    assert_eq!(at_3s[0].host.key, "https://now.example");
    assert_eq!(at_3s[0].host.next_allowed_at, NOW + 3_000);
}

async fn retry_requeues_the_url_for_later(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let id = frontier
        .enqueue_urls(&[url("a.example", "/")], NOW)
        .await
        .unwrap()[0]
        .id;
    let lease = frontier.claim_hosts("w", 1, 60_000, NOW).await.unwrap()[0]
        .lease
        .clone();
    let handed = frontier.next_urls(&lease, 1, NOW).await.unwrap();
    let mut outcome = FetchOutcome::fetched(503, 0, UrlNext::RetryAt(NOW + 30_000));
    outcome.error = Some("Retry-After: 30".into());
    frontier
        .complete_url(&lease, handed[0].id, &outcome, NOW)
        .await
        .unwrap();
    let record = frontier.url(id).await.unwrap().unwrap();
    assert_eq!(record.state, UrlState::Queued);
    assert_eq!(record.next_fetch_at, NOW + 30_000);
    assert_eq!(record.attempts, 1);
    assert_eq!(record.last_status, Some(503));
    // Not due yet under this lease either.
    assert!(
        frontier
            .next_urls(&lease, 1, NOW + 1)
            .await
            .unwrap()
            .is_empty()
    );
    frontier.release(&lease, NOW + 1_000).await.unwrap();
    let host = frontier.host(lease.host_id()).await.unwrap().unwrap();
    assert_eq!(host.due_at, Some(NOW + 30_000));
    assert!(
        frontier
            .claim_hosts("w", 1, 60_000, NOW + 29_999)
            .await
            .unwrap()
            .is_empty()
    );
    let again = frontier
        .claim_hosts("w", 1, 60_000, NOW + 30_000)
        .await
        .unwrap();
    let urls = frontier
        .next_urls(&again[0].lease, 5, NOW + 30_000)
        .await
        .unwrap();
    assert_eq!(urls.len(), 1);
    assert_eq!(urls[0].attempts, 1);
}

async fn robots_and_policy_are_stored_under_the_lease(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    frontier
        .enqueue_urls(&[url("a.example", "/")], NOW)
        .await
        .unwrap();
    let lease = frontier.claim_hosts("w", 1, 60_000, NOW).await.unwrap()[0]
        .lease
        .clone();
    let robots = RobotsCache {
        status: Some(200),
        body: b"User-agent: *\nCrawl-delay: 2\n\xff\x00binary".to_vec(),
        fetched_at: NOW,
        expires_at: NOW + 86_400_000,
    };
    frontier.store_robots(&lease, &robots, NOW).await.unwrap();
    let policy = HostPolicy {
        delay_ms: 2_000,
        crawl_delay_ms: Some(2_000),
        error_streak: 3,
        quiet_pages: 7,
    };
    frontier.update_host(&lease, &policy, NOW).await.unwrap();
    let huge = RobotsCache {
        body: vec![b'#'; 2 * 1024 * 1024],
        ..robots.clone()
    };
    frontier.store_robots(&lease, &huge, NOW).await.unwrap();
    let host = frontier.host(lease.host_id()).await.unwrap().unwrap();
    assert_eq!(
        host.robots.as_ref().unwrap().body.len(),
        512 * 1024,
        "cut at 512 KiB"
    );
    frontier.store_robots(&lease, &robots, NOW).await.unwrap();
    frontier.release(&lease, NOW + 2_000).await.unwrap();
    let host = frontier
        .host_by_key("https://a.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(host.robots, Some(robots));
    assert_eq!(host.delay_ms, 2_000);
    assert_eq!(host.crawl_delay_ms, Some(2_000));
    assert_eq!(host.error_streak, 3);
    assert_eq!(host.quiet_pages, 7);
    assert_eq!(frontier.domain_pages_fetched("a.example").await.unwrap(), 0);
}

async fn rechecks_and_raised_priorities_reorder_known_urls(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let batch = [
        url("a.example", "/1"),
        url("a.example", "/2"),
        url("a.example", "/3"),
    ];
    let ids: Vec<_> = frontier
        .enqueue_urls(&batch, NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let lease = frontier.claim_hosts("w", 1, 60_000, NOW).await.unwrap()[0]
        .lease
        .clone();
    // Same priority and time: the lowest id goes first. It is the page; the others its links.
    let page = frontier.next_urls(&lease, 1, NOW).await.unwrap()[0].id;
    let mut links: Vec<_> = ids.iter().copied().filter(|&id| id != page).collect();
    links.sort();
    let (early, late) = (links[0], links[1]);
    let done = FetchOutcome::fetched(200, 1, UrlNext::Done);
    // The page matched: settling it with its links raises those already known, so its
    // link `late` jumps the queue; `early`, which it does not name, keeps its place.
    let late_url = batch[ids.iter().position(|&id| id == late).unwrap()].clone();
    let settled = frontier
        .settle_pages(
            &[PageSettlement {
                lease: lease.clone(),
                seen: Vec::new(),
                completions: vec![(page, done.clone())],
                links: vec![late_url],
                raise_known_to: Some(Priority::MatchLink),
                requeue_if_matched: None,
            }],
            NOW,
        )
        .await
        .unwrap();
    let links = &settled[0].as_ref().unwrap().links;
    assert_eq!((links[0].id, links[0].inserted), (late, false));
    // A queued URL cannot be re-checked; a done one can.
    assert!(
        !frontier
            .schedule_recheck(early, NOW, Priority::Recheck)
            .await
            .unwrap()
    );
    let next = frontier.next_urls(&lease, 1, NOW).await.unwrap();
    assert_eq!(next[0].id, late);
    assert_eq!(next[0].priority, Priority::MatchLink);
    frontier
        .complete_url(&lease, late, &done, NOW)
        .await
        .unwrap();
    frontier.release(&lease, NOW + 1_000).await.unwrap();

    // A day later, the page is due for a re-check and goes before the ordinary link.
    let day = 86_400_000;
    assert!(
        frontier
            .schedule_recheck(page, NOW + day, Priority::Recheck)
            .await
            .unwrap()
    );
    let record = frontier.url(page).await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.next_fetch_at),
        (UrlState::Queued, NOW + day)
    );
    let lease = frontier
        .claim_hosts("w", 1, 60_000, NOW + day)
        .await
        .unwrap()[0]
        .lease
        .clone();
    let batch = frontier.next_urls(&lease, 5, NOW + day).await.unwrap();
    assert_eq!(
        batch.iter().map(|u| u.id).collect::<Vec<_>>(),
        [page, early]
    );
    assert_eq!(batch[0].attempts, 1);
}

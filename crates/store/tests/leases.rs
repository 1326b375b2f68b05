//! Leases on both back-ends: expiry and takeover, stale workers refused, and many workers
//! claiming and completing concurrently without ever sharing a host or fetching twice.

#[macro_use]
mod common;

use std::collections::HashSet;

use aranea_store::{Completion, FetchOutcome, HostPolicy, NewUrl, Store, StoreError, UrlNext};
use common::{NOW, TestDb, url};

contract_tests!(
    expired_lease_is_taken_over_and_the_stale_worker_refused,
    expired_lease_refuses_writes_even_without_takeover,
    renewed_lease_keeps_the_host,
    complete_refuses_urls_of_another_host,
    concurrent_claims_never_hand_a_host_twice,
    concurrent_workers_fetch_every_url_exactly_once,
    urls_enqueued_taken_are_handed_out_under_that_lease_only,
);

async fn expired_lease_is_taken_over_and_the_stale_worker_refused(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    frontier
        .enqueue_urls(&[url("a.example", "/1"), url("a.example", "/2")], NOW)
        .await
        .unwrap();
    let stale = frontier.claim_hosts("stale", 1, 1_000, NOW).await.unwrap();
    let stale_lease = stale[0].lease.clone();
    let handed = frontier.next_urls(&stale_lease, 10, NOW).await.unwrap();
    assert_eq!(handed.len(), 2);
    // Before expiry nobody else can claim it; at expiry they can.
    assert!(
        frontier
            .claim_hosts("fresh", 1, 60_000, NOW + 999)
            .await
            .unwrap()
            .is_empty()
    );
    let fresh = frontier
        .claim_hosts("fresh", 1, 60_000, NOW + 1_000)
        .await
        .unwrap();
    assert_eq!(fresh.len(), 1);
    let fresh_lease = fresh[0].lease.clone();
    assert_eq!(fresh_lease.epoch(), stale_lease.epoch() + 1);

    // The stale worker wakes up: every write with its lease is refused.
    let outcome = FetchOutcome::fetched(200, 10, UrlNext::Done);
    for result in [
        frontier
            .complete_url(&stale_lease, handed[0].id, &outcome, NOW + 500)
            .await
            .map(|_| ()),
        frontier
            .complete_url(&stale_lease, handed[0].id, &outcome, NOW + 1_500)
            .await
            .map(|_| ()),
        frontier
            .renew(&stale_lease, 60_000, NOW + 500)
            .await
            .map(|_| ()),
        frontier
            .next_urls(&stale_lease, 1, NOW + 500)
            .await
            .map(|_| ()),
        frontier.release(&stale_lease, NOW).await,
        frontier
            .update_host(&stale_lease, &HostPolicy::default(), NOW + 500)
            .await,
    ] {
        match result {
            Err(StoreError::LeaseLost { host_id, owner }) => {
                assert_eq!(host_id, stale_lease.host_id().get());
                assert_eq!(owner, "stale");
            }
            other => panic!("stale write not refused: {other:?}"),
        }
    }
    assert_eq!(frontier.fetches(handed[0].id).await.unwrap().len(), 0);

    // What the dead worker had been handed is handed to the new holder.
    let retaken = frontier
        .next_urls(&fresh_lease, 10, NOW + 1_000)
        .await
        .unwrap();
    assert_eq!(retaken.len(), 2);
    for u in &retaken {
        let done = frontier
            .complete_url(&fresh_lease, u.id, &outcome, NOW + 1_100)
            .await
            .unwrap();
        assert_eq!(done, Completion::Recorded);
    }
    frontier.release(&fresh_lease, NOW + 2_000).await.unwrap();
    assert_eq!(store.counts().await.unwrap().fetches, 2);
}

async fn expired_lease_refuses_writes_even_without_takeover(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    frontier
        .enqueue_urls(&[url("a.example", "/")], NOW)
        .await
        .unwrap();
    let lease = frontier.claim_hosts("w", 1, 1_000, NOW).await.unwrap()[0]
        .lease
        .clone();
    let handed = frontier.next_urls(&lease, 1, NOW).await.unwrap();
    let outcome = FetchOutcome::fetched(200, 10, UrlNext::Done);
    assert!(matches!(
        frontier
            .complete_url(&lease, handed[0].id, &outcome, NOW + 1_000)
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        frontier.renew(&lease, 1_000, NOW + 1_000).await,
        Err(StoreError::LeaseLost { .. })
    ));
    // Giving the host back is still accepted: nobody else holds it.
    frontier.release(&lease, NOW + 1_000).await.unwrap();
    let host = frontier.host(lease.host_id()).await.unwrap().unwrap();
    assert_eq!(
        host.due_at,
        Some(NOW + 1_000),
        "the unfetched URL keeps the host due"
    );
}

async fn renewed_lease_keeps_the_host(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    frontier
        .enqueue_urls(&[url("a.example", "/")], NOW)
        .await
        .unwrap();
    let lease = frontier.claim_hosts("w", 1, 1_000, NOW).await.unwrap()[0]
        .lease
        .clone();
    let renewed = frontier.renew(&lease, 5_000, NOW + 900).await.unwrap();
    assert_eq!(renewed.until(), NOW + 5_900);
    assert_eq!(renewed.epoch(), lease.epoch());
    assert!(
        frontier
            .claim_hosts("other", 1, 1_000, NOW + 2_000)
            .await
            .unwrap()
            .is_empty()
    );
    let handed = frontier.next_urls(&renewed, 1, NOW + 2_000).await.unwrap();
    assert_eq!(handed.len(), 1);
    assert!(
        frontier
            .claim_hosts("other", 1, 1_000, NOW + 5_900)
            .await
            .unwrap()
            .len()
            == 1
    );
}

async fn complete_refuses_urls_of_another_host(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let ids = frontier
        .enqueue_urls(&[url("a.example", "/"), url("b.example", "/")], NOW)
        .await
        .unwrap();
    let claimed = frontier.claim_hosts("w", 2, 60_000, NOW).await.unwrap();
    let lease_a = claimed
        .iter()
        .find(|c| c.host.key == "https://a.example")
        .unwrap()
        .lease
        .clone();
    let outcome = FetchOutcome::fetched(200, 1, UrlNext::Done);
    assert!(matches!(
        frontier
            .complete_url(&lease_a, ids[1].id, &outcome, NOW)
            .await,
        Err(StoreError::UrlNotInLease { .. })
    ));
    assert!(matches!(
        frontier
            .complete_url(
                &lease_a,
                aranea_store::UrlId::from_raw(987_654),
                &outcome,
                NOW
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Several workers, each with its own pool, claim in a loop until nothing is left; the
/// leases are long, so a host handed out twice would be a bug, not an expiry.
async fn concurrent_claims_never_hand_a_host_twice(db: &TestDb) {
    const HOSTS: usize = 60;
    let store = db.open().await;
    let batch: Vec<NewUrl> = (0..HOSTS)
        .map(|i| url(&format!("h{i}.example"), "/"))
        .collect();
    store.frontier().enqueue_urls(&batch, NOW).await.unwrap();
    // Every worker connected before any starts, then all start together.
    let mut stores = Vec::new();
    for _ in 0..6 {
        stores.push(Store::open(&db.url).await.unwrap());
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(stores.len()));
    let mut workers = Vec::new();
    for (w, store) in stores.into_iter().enumerate() {
        let start = start.clone();
        workers.push(tokio::spawn(async move {
            start.wait().await;
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .frontier()
                    .claim_hosts(&format!("w{w}"), 3, 3_600_000, NOW)
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    break;
                }
                mine.extend(claimed.into_iter().map(|c| c.lease.host_id()));
                // Let the others in between claims, so claims interleave.
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            mine
        }));
    }
    let mut all = Vec::new();
    let mut busy_workers = 0;
    for worker in workers {
        let mine = worker.await.unwrap();
        busy_workers += usize::from(!mine.is_empty());
        all.extend(mine);
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), HOSTS, "every host claimed once: {all:?}");
    assert_eq!(distinct.len(), HOSTS);
    assert!(busy_workers >= 2, "claims were not concurrent");
}

/// Workers run the whole cycle concurrently; every URL must be fetched exactly once.
async fn concurrent_workers_fetch_every_url_exactly_once(db: &TestDb) {
    const HOSTS: usize = 12;
    const PER_HOST: usize = 6;
    let store = db.open().await;
    let mut batch = Vec::new();
    for h in 0..HOSTS {
        for p in 0..PER_HOST {
            batch.push(url(&format!("h{h}.example"), &format!("/{p}")));
        }
    }
    store.frontier().enqueue_urls(&batch, NOW).await.unwrap();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Store::open(&db.url).await.unwrap());
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(stores.len()));
    let mut workers = Vec::new();
    for (w, store) in stores.into_iter().enumerate() {
        let start = start.clone();
        workers.push(tokio::spawn(async move {
            start.wait().await;
            let frontier = store.frontier();
            let worker = format!("w{w}");
            let mut fetched = 0;
            loop {
                let claimed = frontier
                    .claim_hosts(&worker, 2, 3_600_000, NOW)
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    break;
                }
                for leased in claimed {
                    // Two URLs per lease, then the host goes back to the pool.
                    let urls = frontier.next_urls(&leased.lease, 2, NOW).await.unwrap();
                    for u in urls {
                        let outcome = FetchOutcome::fetched(200, 100, UrlNext::Done);
                        let done = frontier
                            .complete_url(&leased.lease, u.id, &outcome, NOW)
                            .await
                            .unwrap();
                        assert_eq!(done, Completion::Recorded);
                        fetched += 1;
                    }
                    frontier.release(&leased.lease, NOW).await.unwrap();
                }
            }
            fetched
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    assert_eq!(total, HOSTS * PER_HOST);
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.fetches, (HOSTS * PER_HOST) as i64);
    assert_eq!(counts.urls_queued, 0);
    for h in 0..HOSTS {
        let host = store
            .frontier()
            .host_by_key(&format!("https://h{h}.example"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(host.pages_fetched, PER_HOST as i64);
        assert_eq!(host.due_at, None);
    }
}

/// A page's media enqueued by the host's holder are its to fetch at once: not handed out
/// again under the same lease, completed under it, and the next holder's after expiry. URLs
/// of other hosts and known URLs are not taken.
async fn urls_enqueued_taken_are_handed_out_under_that_lease_only(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    frontier
        .enqueue_urls(&[url("a.example", "/page")], NOW)
        .await
        .unwrap();
    let lease = frontier.claim_hosts("w", 1, 1_000, NOW).await.unwrap()[0]
        .lease
        .clone();
    let page = frontier.next_urls(&lease, 10, NOW).await.unwrap();
    assert_eq!(page.len(), 1);
    let batch = [
        url("a.example", "/m1"),
        url("a.example", "/m2"),
        url("b.example", "/x"),
        url("a.example", "/page"),
    ];
    let done = frontier
        .enqueue_urls_taken(std::slice::from_ref(&lease), &batch, NOW)
        .await
        .unwrap();
    let inserted: Vec<bool> = done.iter().map(|d| d.inserted).collect();
    assert_eq!(inserted, [true, true, true, false]);
    assert!(done[0].host_id == lease.host_id() && done[2].host_id != lease.host_id());
    assert!(
        frontier
            .next_urls(&lease, 10, NOW)
            .await
            .unwrap()
            .is_empty(),
        "taken URLs are not handed out again under the lease"
    );
    let outcome = FetchOutcome::fetched(200, 10, UrlNext::Done);
    let completed = frontier
        .complete_url(&lease, done[0].id, &outcome, NOW + 10)
        .await
        .unwrap();
    assert_eq!(completed, Completion::Recorded);
    // The other host's URL was only queued.
    let other = frontier.claim_hosts("v", 1, 1_000, NOW).await.unwrap();
    assert_eq!(other.len(), 1);
    let handed = frontier.next_urls(&other[0].lease, 10, NOW).await.unwrap();
    assert_eq!(
        handed.iter().map(|u| u.id).collect::<Vec<_>>(),
        [done[2].id]
    );
    // Two hosts' pages enqueued together: each host's new URLs taken under its own lease.
    let leases = [lease.clone(), other[0].lease.clone()];
    let both = frontier
        .enqueue_urls_taken(
            &leases,
            &[url("b.example", "/y"), url("a.example", "/m3")],
            NOW,
        )
        .await
        .unwrap();
    assert!(both.iter().all(|d| d.inserted));
    for held in &leases {
        assert!(frontier.next_urls(held, 10, NOW).await.unwrap().is_empty());
    }
    let completed = frontier
        .complete_url(&other[0].lease, both[0].id, &outcome, NOW + 10)
        .await
        .unwrap();
    assert_eq!(completed, Completion::Recorded);
    // The holder dies: the next one is handed the page and the medium not completed.
    let next = frontier
        .claim_hosts("fresh", 5, 1_000, NOW + 1_000)
        .await
        .unwrap();
    let next = next
        .iter()
        .find(|h| h.lease.host_id() == lease.host_id())
        .expect("a.example taken over");
    let mut retaken: Vec<_> = frontier
        .next_urls(&next.lease, 10, NOW + 1_000)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    retaken.sort();
    let mut expected = vec![page[0].id, done[1].id, both[1].id];
    expected.sort();
    assert_eq!(retaken, expected);
}

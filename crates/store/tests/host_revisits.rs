//! Known hosts crawled again for re-uploads (the notice worker's revisits): the hosts served
//! from given addresses are found, a host's done pages (not its media) go back to the queue
//! at the priority asked, those fetched longest ago first, at most once per interval per
//! host, and workers asking at once make one revisit.

#[macro_use]
mod common;

use aranea_store::{
    FetchOutcome, HostRevisit, MediaRecord, NewSighting, Priority, Store, UrlId, UrlNext, UrlState,
};
use common::leased::lease;
use common::{NOW, TestDb, url};

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
        frontier.hosts_served_from(&around, 10).await.unwrap(),
        ["https://a.example"]
    );
    assert!(
        frontier
            .hosts_served_from(&["203.0.113.1".to_owned()], 10)
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

contract_tests!(
    a_hosts_done_pages_are_queued_again_at_most_once_per_interval,
    workers_revisiting_one_host_at_once_make_one_revisit,
);

//! The crawler's read-only questions (`crawl_facts`) on both back-ends: matches on a page,
//! unmatched media on a page, media at a URL, attempts under a path prefix, queued work.

#[macro_use]
mod common;

use aranea_store::{BankMatch, FetchOutcome, MediaRecord, NewSighting, Store, UrlId, UrlNext};
use common::{NOW, TestDb, url};

contract_tests!(
    a_page_matches_once_any_media_on_it_matched,
    attempts_under_a_prefix_and_queued_work_are_counted,
);

fn media(seed: u8) -> MediaRecord {
    MediaRecord {
        sha256: [seed; 32],
        md5: [seed; 16],
        sha1: [seed; 20],
        pdq: None,
        pdq_quality: None,
        size: 10,
        kind: "jpeg".into(),
        width: None,
        height: None,
    }
}

async fn sight(store: &Store, seed: u8, at: UrlId, page: UrlId) -> aranea_store::SightingId {
    store.media().record(&media(seed), NOW).await.unwrap();
    store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: [seed; 32],
            url: at,
            page: Some(page),
            member_path: None,
            seen_at: NOW,
            server_ip: None,
        })
        .await
        .unwrap()
}

async fn a_page_matches_once_any_media_on_it_matched(db: &TestDb) {
    let store = db.open().await;
    let batch = [
        url("a.example", "/page"),
        url("a.example", "/1.jpg"),
        url("a.example", "/2.jpg"),
    ];
    let ids: Vec<UrlId> = store
        .frontier()
        .enqueue_urls(&batch, NOW)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let (page, one, two) = (ids[0], ids[1], ids[2]);
    let facts = store.crawl_facts();
    assert!(!facts.page_has_match(page).await.unwrap());
    let first = sight(&store, 1, one, page).await;
    sight(&store, 2, two, page).await;
    assert!(!facts.page_has_match(page).await.unwrap());
    assert_eq!(facts.unmatched_on_page(page).await.unwrap().len(), 2);
    let hit = BankMatch {
        bank_id: 0,
        bank_name: "known".into(),
        entry_id: 7,
        signal_type: "md5".into(),
        distance: 0,
        classification: "csam".into(),
    };
    store
        .media()
        .record_matches(first, &[hit], NOW)
        .await
        .unwrap();
    assert!(facts.page_has_match(page).await.unwrap());
    let unmatched = facts.unmatched_on_page(page).await.unwrap();
    assert_eq!(unmatched.len(), 1);
    assert_eq!(unmatched[0].media_sha256, [2; 32]);
    assert_eq!(unmatched[0].url, two);
    assert_eq!(facts.media_at_url(one).await.unwrap(), vec![[1; 32]]);
    assert!(facts.media_at_url(page).await.unwrap().is_empty());
}

async fn attempts_under_a_prefix_and_queued_work_are_counted(db: &TestDb) {
    let store = db.open().await;
    let batch = [
        url("b.example", "/calendar/1"),
        url("b.example", "/calendar/2"),
        url("b.example", "/other"),
    ];
    let done = store.frontier().enqueue_urls(&batch, NOW).await.unwrap();
    let facts = store.crawl_facts();
    assert_eq!(facts.queued().await.unwrap(), 3);
    assert_eq!(facts.queued_due(NOW - 1).await.unwrap(), 0);
    assert_eq!(facts.queued_due(NOW).await.unwrap(), 3);
    let host = done[0].host_id;
    assert_eq!(
        facts
            .attempted_under(host, "https://b.example/calendar/")
            .await
            .unwrap(),
        0
    );
    let leased = store
        .frontier()
        .claim_hosts("w", 1, 60_000, NOW)
        .await
        .unwrap();
    let lease = &leased[0].lease;
    let urls = store.frontier().next_urls(lease, 10, NOW).await.unwrap();
    for u in urls.iter().filter(|u| u.url.contains("/calendar/")) {
        let outcome = FetchOutcome::fetched(200, 10, UrlNext::Done);
        store
            .frontier()
            .complete_url(lease, u.id, &outcome, NOW)
            .await
            .unwrap();
    }
    assert_eq!(
        facts
            .attempted_under(host, "https://b.example/calendar/")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        facts
            .attempted_under(host, "https://b.example/")
            .await
            .unwrap(),
        2
    );
    assert_eq!(facts.queued().await.unwrap(), 1);
}

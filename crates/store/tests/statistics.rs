//! Statistics aggregates on both back-ends: notices per provider by kind, item facts in a
//! window with their first notice, per-bucket series, hotline filters, windows that exclude,
//! test notices never counted, and bad windows refused.

#[macro_use]
mod common;

use aranea_store::{
    CheckRecord, ItemId, NewItem, NewNotice, NewReport, ProviderNotices, Series, Store, StoreError,
};
use common::{NOW, TestDb, matched_sighting};

contract_tests!(
    notices_per_provider_count_each_kind_in_the_window,
    item_facts_carry_the_first_notice_and_removal,
    series_count_events_per_bucket,
    bad_windows_and_buckets_are_refused,
    latest_event_is_the_newest_notice_removal_or_item_opened,
);

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn item(url: &str, provider: &str, hotline: &str, at: i64) -> NewItem {
    NewItem {
        sighting_id: None,
        url: url.into(),
        host: "files.example".into(),
        sha256: "aa".repeat(32),
        md5: "bb".repeat(16),
        sha1: "cc".repeat(20),
        pdq: None,
        media_kind: "jpeg".into(),
        classification: "A1".into(),
        first_seen_at: at,
        provider_key: format!("provider:{provider}"),
        provider_name: provider.into(),
        asn: None,
        prefix: None,
        country: Some("NL".into()),
        hotline: hotline.into(),
        via_cdn: None,
        method: "rdap_abuse".into(),
        confidence_pct: 90,
        contacts: "[]".into(),
        upstream_contact: None,
        notice_due_at: at,
        reupload_of: None,
    }
}

/// Composes a notice and takes it through a lease to `sent` at `at`.
async fn send(store: &Store, key: &str, provider: &str, kind: &str, items: &[ItemId], at: i64) {
    send_as(store, key, provider, "nl", kind, items, at, false).await;
}

#[allow(clippy::too_many_arguments)]
async fn send_as(
    store: &Store,
    key: &str,
    provider: &str,
    hotline: &str,
    kind: &str,
    items: &[ItemId],
    at: i64,
    test: bool,
) {
    let notice = NewNotice {
        report_id: format!("r-{key}"),
        idempotency_key: key.into(),
        provider_key: format!("provider:{provider}"),
        provider_name: provider.into(),
        hotline: hotline.into(),
        kind: kind.into(),
        escalation_step: None,
        via_cdn: None,
        channel: "smtp".into(),
        recipient: "abuse@example.org".into(),
        contacts: "[]".into(),
        contact_index: 0,
        language: "en".into(),
        subject: "s".into(),
        body_text: "t".into(),
        body_html: "<p>t</p>".into(),
        xarf: "[]".into(),
        parent_id: None,
        test,
    };
    let n = store.notices();
    let (id, _) = n.create_notice(&notice, items, at).await.unwrap();
    let claimed = n.claim_notice("w", at, at + 1000).await.unwrap().unwrap();
    assert_eq!(claimed.id, id.0);
    assert!(n.mark_committing(id, "w").await.unwrap());
    assert!(n.mark_sent(id, "w", at, "250 ok", HOUR).await.unwrap());
}

async fn remove(store: &Store, item: ItemId, at: i64) {
    let check = CheckRecord {
        at,
        outcome: "gone".into(),
        http_status: Some(404),
        detail: String::new(),
        next_check_at: None,
        pending: None,
        removed: Some(("gone".into(), at)),
    };
    store.notices().record_check(item, &check).await.unwrap();
}

async fn open(store: &Store, url: &str, provider: &str, hotline: &str, at: i64) -> ItemId {
    let new = item(url, provider, hotline, at);
    store.notices().open_item(&new, at).await.unwrap().unwrap()
}

/// Quickhost (hotline nl): two items, an initial notice, a re-notice and an escalation;
/// one removed after 2 h, the other after 49 h. Slowhost (hotline ca): one item, one
/// notice, never removed, plus a test notice and a retraction that must not count. Reports
/// and matches on days 0 and 1.
async fn history(store: &Store) -> (ItemId, ItemId, ItemId) {
    let a1 = open(store, "http://q.example/1", "Quickhost", "nl", NOW).await;
    let a2 = open(store, "http://q.example/2", "Quickhost", "nl", NOW).await;
    let b1 = open(
        store,
        "http://s.example/1",
        "Slowhost",
        "ca",
        NOW + 2 * HOUR,
    )
    .await;
    send(
        store,
        "q-initial",
        "Quickhost",
        "initial",
        &[a1, a2],
        NOW + HOUR,
    )
    .await;
    send_as(
        store,
        "s-initial",
        "Slowhost",
        "ca",
        "initial",
        &[b1],
        NOW + 2 * HOUR,
        false,
    )
    .await;
    send_as(
        store,
        "s-test",
        "Slowhost",
        "ca",
        "initial",
        &[b1],
        NOW + 2 * HOUR,
        true,
    )
    .await;
    // A retraction (an appeal withdrew the decision) is a message, not a removal notice.
    send_as(
        store,
        "s-withdrawal",
        "Slowhost",
        "ca",
        "withdrawal",
        &[b1],
        NOW + 3 * HOUR,
        false,
    )
    .await;
    remove(store, a1, NOW + 3 * HOUR).await;
    send(
        store,
        "q-renotice",
        "Quickhost",
        "renotice",
        &[a2],
        NOW + 25 * HOUR,
    )
    .await;
    send(
        store,
        "q-escalation",
        "Quickhost",
        "escalation",
        &[a2],
        NOW + 49 * HOUR,
    )
    .await;
    remove(store, a2, NOW + 50 * HOUR).await;
    let report = |hotline: &str| NewReport {
        url: "https://reported.example/".into(),
        reporter: "tester".into(),
        hotline: hotline.into(),
        notes: String::new(),
    };
    store.reports().add(&report("nl"), NOW).await.unwrap();
    store
        .reports()
        .add(&report("nl"), NOW + 30 * HOUR)
        .await
        .unwrap();
    store
        .reports()
        .add(&report("ca"), NOW + 31 * HOUR)
        .await
        .unwrap();
    matched_sighting(store, "/m1.jpg", 1, NOW).await;
    matched_sighting(store, "/m2.jpg", 2, NOW + DAY + 1).await;
    (a1, a2, b1)
}

async fn notices_per_provider_count_each_kind_in_the_window(db: &TestDb) {
    let store = db.open().await;
    history(&store).await;
    let stats = store.statistics();
    let all = stats
        .notices_by_provider(None, NOW, NOW + 3 * DAY)
        .await
        .unwrap();
    let quick = ProviderNotices {
        provider_name: "Quickhost".into(),
        initial: 1,
        renotice: 1,
        escalation: 1,
        reupload: 0,
    };
    let slow = ProviderNotices {
        provider_name: "Slowhost".into(),
        initial: 1,
        ..ProviderNotices::default()
    };
    assert_eq!(all, [quick.clone(), slow.clone()]);
    let ca = stats
        .notices_by_provider(Some("ca"), NOW, NOW + 3 * DAY)
        .await
        .unwrap();
    assert_eq!(ca, [slow]);
    // The window is half-open: the escalation at NOW + 49 h is outside [NOW, NOW + 49 h).
    let early = stats
        .notices_by_provider(Some("nl"), NOW, NOW + 49 * HOUR)
        .await
        .unwrap();
    assert_eq!(early[0].escalation, 0);
    assert_eq!(early[0].renotice, 1);
    assert!(
        stats
            .notices_by_provider(None, NOW + 4 * DAY, NOW + 5 * DAY)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn item_facts_carry_the_first_notice_and_removal(db: &TestDb) {
    let store = db.open().await;
    let (a1, a2, b1) = history(&store).await;
    let facts = store
        .statistics()
        .item_facts(None, NOW, NOW + DAY)
        .await
        .unwrap();
    let ids: Vec<i64> = facts.iter().map(|f| f.id).collect();
    assert_eq!(ids, [a1.0, a2.0, b1.0]);
    assert_eq!(facts[1].first_notice_at, Some(NOW + HOUR));
    assert_eq!(facts[1].removed_at, Some(NOW + 50 * HOUR));
    assert_eq!(facts[2].first_notice_at, Some(NOW + 2 * HOUR));
    assert_eq!(facts[2].state, "open");
    let nl = store
        .statistics()
        .item_facts(Some("nl"), NOW + HOUR, NOW + DAY)
        .await
        .unwrap();
    assert!(nl.is_empty(), "items created at NOW are outside the window");
}

async fn series_count_events_per_bucket(db: &TestDb) {
    let store = db.open().await;
    history(&store).await;
    let stats = store.statistics();
    let series = |s, h| stats.series(s, h, NOW, NOW + 3 * DAY, DAY);
    assert_eq!(
        series(Series::NoticesSent, None).await.unwrap(),
        [(0, 2), (1, 1), (2, 1)]
    );
    assert_eq!(
        series(Series::NoticesSent, Some("ca")).await.unwrap(),
        [(0, 1)]
    );
    assert_eq!(
        series(Series::Removals, None).await.unwrap(),
        [(0, 1), (2, 1)]
    );
    assert_eq!(
        series(Series::Reports, Some("nl")).await.unwrap(),
        [(0, 1), (1, 1)]
    );
    assert_eq!(
        series(Series::Reports, None).await.unwrap(),
        [(0, 1), (1, 2)]
    );
    assert_eq!(
        series(Series::Matches, Some("nl")).await.unwrap(),
        [(0, 1), (1, 1)]
    );
    let hourly = stats
        .series(Series::Removals, None, NOW, NOW + DAY, HOUR)
        .await
        .unwrap();
    assert_eq!(hourly, [(3, 1)]);
}

async fn bad_windows_and_buckets_are_refused(db: &TestDb) {
    let store = db.open().await;
    let stats = store.statistics();
    for (from, to) in [(NOW, NOW), (NOW + 1, NOW)] {
        assert!(matches!(
            stats.notices_by_provider(None, from, to).await,
            Err(StoreError::OutOfRange { .. })
        ));
        assert!(matches!(
            stats.item_facts(None, from, to).await,
            Err(StoreError::OutOfRange { .. })
        ));
    }
    for bucket in [0, -5] {
        assert!(matches!(
            stats
                .series(Series::Matches, None, NOW, NOW + DAY, bucket)
                .await,
            Err(StoreError::OutOfRange { .. })
        ));
    }
    // Extreme but ordered windows are answered, not overflowed.
    assert!(
        stats
            .series(Series::NoticesSent, None, i64::MIN / 2, i64::MAX / 2, DAY)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn latest_event_is_the_newest_notice_removal_or_item_opened(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(
        store.statistics().latest_event_at(None).await.unwrap(),
        None
    );
    assert_eq!(
        store.statistics().latest_notice_record_at().await.unwrap(),
        None
    );
    history(&store).await;
    let stats = store.statistics();
    // Every notice sent and removal recorded is in the timeline, so its newest record is
    // no older than the newest of them.
    let recorded = stats.latest_notice_record_at().await.unwrap();
    assert!(
        recorded >= Some(NOW + 50 * HOUR),
        "{recorded:?} against {}",
        NOW + 50 * HOUR
    );
    assert_eq!(
        stats.latest_event_at(None).await.unwrap(),
        Some(NOW + 50 * HOUR)
    );
    assert_eq!(
        stats.latest_event_at(Some("ca")).await.unwrap(),
        Some(NOW + 2 * HOUR)
    );
    assert_eq!(stats.latest_event_at(Some("xx")).await.unwrap(), None);
    // An item opened after every notice and removal (not noticed yet) is the newest event:
    // its age must not come out negative.
    open(
        &store,
        "http://s.example/2",
        "Slowhost",
        "ca",
        NOW + 60 * HOUR,
    )
    .await;
    for hotline in [None, Some("ca")] {
        assert_eq!(
            stats.latest_event_at(hotline).await.unwrap(),
            Some(NOW + 60 * HOUR)
        );
    }
    assert_eq!(
        stats.latest_event_at(Some("nl")).await.unwrap(),
        Some(NOW + 50 * HOUR)
    );
}

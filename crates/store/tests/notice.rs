//! Notice tables on both back-ends: matched sightings become items once, a notice is composed
//! once per key, leases give exactly-once delivery across crashes, checks confirm removal,
//! withdrawals and responses, and hostile text is refused.

#[macro_use]
mod common;

use aranea_store::{
    CheckRecord, ItemId, NewItem, NewNotice, NoticeFilter, NoticeId, NoticeState, ProviderResponse,
    StoreError,
};
use common::{NOW, TestDb, matched_sighting};

contract_tests!(
    matched_sightings_become_items_once,
    notice_is_composed_once_per_key_and_delivered_under_a_lease,
    crashed_sends_are_requeued_resent_with_the_same_key_then_marked_uncertain,
    failures_retry_then_free_items_and_dead_contacts_are_remembered,
    two_step_removal_and_responses,
    hostile_notice_text_is_refused,
    notices_page_newest_first_by_cursor,
    an_escalation_restarts_the_unanswered_count_and_ladder_levels_never_drop,
);

fn item(sighting: Option<i64>, url: &str) -> NewItem {
    NewItem {
        sighting_id: sighting,
        url: url.into(),
        host: "files.example".into(),
        sha256: "aa".repeat(32),
        md5: "bb".repeat(16),
        sha1: "cc".repeat(20),
        pdq: None,
        media_kind: "jpeg".into(),
        classification: "A1".into(),
        first_seen_at: NOW,
        provider_key: "asn:64501".into(),
        provider_name: "Quickhost".into(),
        asn: Some(64501),
        prefix: Some("127.10.1.0/24".into()),
        country: Some("NL".into()),
        hotline: String::from("nl"),
        via_cdn: None,
        method: "rdap_abuse".into(),
        confidence_pct: 90,
        contacts: r#"[{"channel":"smtp","address":"abuse@q.example","role":"abuse"}]"#.into(),
        upstream_contact: None,
        notice_due_at: NOW,
        reupload_of: None,
    }
}

fn notice(key: &str) -> NewNotice {
    NewNotice {
        report_id: format!("r-{key}"),
        idempotency_key: key.into(),
        provider_key: "asn:64501".into(),
        provider_name: "Quickhost".into(),
        hotline: "nl".into(),
        kind: "initial".into(),
        escalation_step: None,
        via_cdn: None,
        channel: "smtp".into(),
        recipient: "abuse@q.example".into(),
        contacts: "[]".into(),
        contact_index: 0,
        language: "en".into(),
        subject: "s".into(),
        body_text: "t".into(),
        body_html: "<p>t</p>".into(),
        xarf: "[]".into(),
        parent_id: None,
        test: false,
    }
}

async fn matched_sightings_become_items_once(db: &TestDb) {
    let store = db.open().await;
    let a = matched_sighting(&store, "/a.jpg", 1, NOW).await;
    let _b = matched_sighting(&store, "/b.jpg", 2, NOW).await;
    let pending = store.notices().unnoticed_matches(0, 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].classification, "A1");
    assert_eq!(pending[0].sha256, [1; 32]);
    let first = store
        .notices()
        .open_item(&item(Some(a), &pending[0].url), NOW)
        .await
        .unwrap();
    assert!(first.is_some());
    // The same URL cannot be open twice.
    let again = store
        .notices()
        .open_item(&item(None, &pending[0].url), NOW)
        .await
        .unwrap();
    assert_eq!(again, None);
    let left = store.notices().unnoticed_matches(0, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].url, pending[1].url);
}

async fn notice_is_composed_once_per_key_and_delivered_under_a_lease(db: &TestDb) {
    let store = db.open().await;
    let n = store.notices();
    let id = n
        .open_item(&item(None, "http://x.example/1"), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.items_due_notice(NOW, 10).await.unwrap().len(), 1);
    let (notice_id, new) = n.create_notice(&notice("k1"), &[id], NOW).await.unwrap();
    assert!(new);
    let (same, new) = n.create_notice(&notice("k1"), &[id], NOW).await.unwrap();
    assert_eq!((same, new), (notice_id, false));
    assert!(n.items_due_notice(NOW, 10).await.unwrap().is_empty());
    let claimed = n
        .claim_notice("w1", NOW, NOW + 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.id, claimed.state, claimed.attempts),
        (notice_id.0, NoticeState::Sending, 1)
    );
    assert!(
        n.claim_notice("w2", NOW, NOW + 1000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !n.mark_committing(notice_id, "w2").await.unwrap(),
        "not the owner"
    );
    assert!(n.mark_committing(notice_id, "w1").await.unwrap());
    assert!(
        n.mark_sent(notice_id, "w1", NOW + 5, "250 OK", 3_600_000)
            .await
            .unwrap()
    );
    let sent = n.notice(notice_id).await.unwrap().unwrap();
    assert_eq!(
        (sent.state, sent.sent_at),
        (NoticeState::Sent, Some(NOW + 5))
    );
    let it = n.item(id).await.unwrap().unwrap();
    assert_eq!((it.notices_sent, it.unanswered), (1, 1));
    assert_eq!(it.next_check_at, Some(NOW + 5 + 3_600_000));
    assert_eq!(n.items_of_notice(notice_id).await.unwrap().len(), 1);
    let kinds: Vec<String> = n
        .timeline(notice_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["opened", "composed", "sent"]);
    let listed = n
        .list_notices(&NoticeFilter {
            state: Some(NoticeState::Sent),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}

async fn crashed_sends_are_requeued_resent_with_the_same_key_then_marked_uncertain(db: &TestDb) {
    let store = db.open().await;
    let n = store.notices();
    let a = n
        .open_item(&item(None, "http://x.example/a"), NOW)
        .await
        .unwrap()
        .unwrap();
    let b = n
        .open_item(&item(None, "http://x.example/b"), NOW)
        .await
        .unwrap()
        .unwrap();
    let (na, _) = n.create_notice(&notice("ka"), &[a], NOW).await.unwrap();
    let (nb, _) = n.create_notice(&notice("kb"), &[b], NOW).await.unwrap();
    // Worker 1 dies before transmitting a, and while transmitting b.
    n.claim_notice("w1", NOW, NOW + 100).await.unwrap().unwrap();
    n.claim_notice("w1", NOW, NOW + 100).await.unwrap().unwrap();
    assert!(n.mark_committing(nb, "w1").await.unwrap());
    assert_eq!(
        n.recover_expired(NOW + 50, 1000, 2).await.unwrap(),
        0,
        "leases still held"
    );
    assert_eq!(n.recover_expired(NOW + 101, 1000, 2).await.unwrap(), 2);
    for id in [na, nb] {
        assert_eq!(
            n.notice(id).await.unwrap().unwrap().state,
            NoticeState::Queued
        );
    }
    let kinds: Vec<String> = n
        .timeline(nb)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("resend"));
    assert_eq!(n.item(b).await.unwrap().unwrap().notices_sent, 0);
    // Both are claimed again, b under the same key; worker 2 dies while transmitting b too,
    // which spends b's two attempts: it is left uncertain and never claimed again.
    let mut again = Vec::new();
    while let Some(next) = n.claim_notice("w2", NOW + 200, NOW + 300).await.unwrap() {
        again.push((next.id, next.idempotency_key, next.attempts));
    }
    again.sort();
    assert_eq!(
        again,
        [(na.0, "ka".to_owned(), 2), (nb.0, "kb".to_owned(), 2)]
    );
    assert!(n.mark_committing(nb, "w2").await.unwrap());
    assert_eq!(n.recover_expired(NOW + 301, 1000, 2).await.unwrap(), 2);
    let uncertain = n.notice(nb).await.unwrap().unwrap();
    assert_eq!(uncertain.state, NoticeState::Uncertain);
    assert_eq!(n.item(b).await.unwrap().unwrap().notices_sent, 1);
    let claimed = n
        .claim_notice("w3", NOW + 400, NOW + 500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, na.0);
    assert!(
        n.claim_notice("w3", NOW + 400, NOW + 500)
            .await
            .unwrap()
            .is_none()
    );
}

async fn failures_retry_then_free_items_and_dead_contacts_are_remembered(db: &TestDb) {
    let store = db.open().await;
    let n = store.notices();
    let a = n
        .open_item(&item(None, "http://x.example/a"), NOW)
        .await
        .unwrap()
        .unwrap();
    let (id, _) = n.create_notice(&notice("k"), &[a], NOW).await.unwrap();
    n.claim_notice("w", NOW, NOW + 100).await.unwrap().unwrap();
    assert!(
        n.mark_attempt_failed(
            id,
            "w",
            NOW,
            "421 try later",
            Some(NOW + 60),
            Some((1, "smtp", "noc@q.example")),
            NOW + 9
        )
        .await
        .unwrap()
    );
    let queued = n.notice(id).await.unwrap().unwrap();
    assert_eq!(
        (queued.state, queued.next_attempt_at),
        (NoticeState::Queued, NOW + 60)
    );
    assert_eq!(
        (queued.recipient.as_str(), queued.contact_index),
        ("noc@q.example", 1)
    );
    assert_eq!(
        queued.attempts, 0,
        "the next contact starts with its own attempts"
    );
    assert!(
        n.claim_notice("w", NOW + 59, NOW + 100)
            .await
            .unwrap()
            .is_none(),
        "backing off"
    );
    let second = n
        .claim_notice("w", NOW + 60, NOW + 200)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.attempts, 1);
    // A retry at the same contact keeps counting.
    assert!(
        n.mark_attempt_failed(
            id,
            "w",
            NOW + 61,
            "421 busy",
            Some(NOW + 62),
            None,
            NOW + 999
        )
        .await
        .unwrap()
    );
    let third = n
        .claim_notice("w", NOW + 62, NOW + 200)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.attempts, 2);
    assert!(
        n.mark_attempt_failed(id, "w", NOW + 63, "550 no such user", None, None, NOW + 999)
            .await
            .unwrap()
    );
    assert_eq!(
        n.notice(id).await.unwrap().unwrap().state,
        NoticeState::Failed
    );
    let freed = n.item(a).await.unwrap().unwrap();
    assert_eq!(
        (freed.pending_notice_id, freed.notice_due_at),
        (None, Some(NOW + 999))
    );
    n.mark_contact_dead("abuse@q.example", NOW + 1000, "550", NOW)
        .await
        .unwrap();
    assert_eq!(n.dead_contacts(NOW).await.unwrap(), ["abuse@q.example"]);
    assert!(n.dead_contacts(NOW + 1000).await.unwrap().is_empty());
}

async fn two_step_removal_and_responses(db: &TestDb) {
    let store = db.open().await;
    let n = store.notices();
    let a = n
        .open_item(&item(None, "http://x.example/a"), NOW)
        .await
        .unwrap()
        .unwrap();
    let (id, _) = n.create_notice(&notice("k"), &[a], NOW).await.unwrap();
    n.claim_notice("w", NOW, NOW + 100).await.unwrap().unwrap();
    n.mark_committing(id, "w").await.unwrap();
    n.mark_sent(id, "w", NOW, "ok", 10).await.unwrap();
    let check = |outcome: &str, at, pending: Option<(String, i64)>, removed| CheckRecord {
        at,
        outcome: outcome.into(),
        http_status: Some(404),
        detail: String::new(),
        next_check_at: Some(at + 10),
        pending,
        removed,
    };
    n.record_check(
        a,
        &check("gone", NOW + 10, Some(("gone".into(), NOW + 10)), None),
    )
    .await
    .unwrap();
    assert_eq!(n.item(a).await.unwrap().unwrap().state, "open");
    n.record_check(
        a,
        &check("gone", NOW + 20, None, Some(("gone".into(), NOW + 10))),
    )
    .await
    .unwrap();
    let removed = n.item(a).await.unwrap().unwrap();
    assert_eq!(
        (removed.state.as_str(), removed.removed_at),
        ("removed", Some(NOW + 10))
    );
    assert_eq!(n.checks_of_item(a).await.unwrap().len(), 2);
    assert_eq!(n.watched_items().await.unwrap().len(), 1);
    // The URL may open again (a re-upload) now that the first item is closed.
    assert!(
        n.open_item(&item(None, "http://x.example/a"), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        n.respond(id, ProviderResponse::Disputed, "not ours", NOW + 30)
            .await
            .unwrap()
    );
    assert!(
        !n.respond(id, ProviderResponse::Acknowledged, "", NOW + 31)
            .await
            .unwrap(),
        "first answer wins"
    );
    assert_eq!(
        n.notice(id).await.unwrap().unwrap().response.as_deref(),
        Some("disputed")
    );
    let facts = n.item_facts().await.unwrap();
    let fact = facts.iter().find(|f| f.id == a.0).unwrap();
    assert_eq!(
        (fact.first_notice_at, fact.removed_at),
        (Some(NOW), Some(NOW + 10))
    );
    let copy = n.resend_notice(id, NOW + 40).await.unwrap();
    let resent = n.notice(copy).await.unwrap().unwrap();
    assert_eq!(
        (resent.state, resent.parent_id),
        (NoticeState::Queued, Some(id.0))
    );
    assert_eq!(n.items_of_notice(copy).await.unwrap().len(), 1);
    assert_ne!(n.resend_notice(id, NOW + 41).await.unwrap(), copy);
    assert!(matches!(
        n.resend_notice(NoticeId(999_999), NOW).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(n.notice(NoticeId(999_999)).await.unwrap().is_none());
    assert!(n.item(ItemId(999_999)).await.unwrap().is_none());
}

async fn hostile_notice_text_is_refused(db: &TestDb) {
    let store = db.open().await;
    let n = store.notices();
    let mut bad = item(None, "http://x.example/\0");
    assert!(matches!(
        n.open_item(&bad, NOW).await,
        Err(StoreError::NulInText { .. })
    ));
    bad = item(None, &format!("http://x.example/{}", "a".repeat(10_000)));
    assert!(matches!(
        n.open_item(&bad, NOW).await,
        Err(StoreError::TooLong { .. })
    ));
    bad = item(None, "http://x.example/ok");
    bad.confidence_pct = 101;
    assert!(matches!(
        n.open_item(&bad, NOW).await,
        Err(StoreError::OutOfRange { .. })
    ));
    let mut nn = notice("k");
    nn.recipient = String::new();
    assert!(matches!(
        n.create_notice(&nn, &[], NOW).await,
        Err(StoreError::Empty { .. })
    ));
    nn = notice("k");
    nn.body_text = "x".repeat(5 * 1024 * 1024);
    assert!(matches!(
        n.create_notice(&nn, &[], NOW).await,
        Err(StoreError::TooLong { .. })
    ));
}

async fn notices_page_newest_first_by_cursor(db: &TestDb) {
    let store = db.open().await;
    let n = store.notices();
    let mut ids = Vec::new();
    for k in 0..5 {
        let mut new = notice(&format!("page-{k}"));
        if k == 2 {
            new.provider_key = "asn:64502".into();
        }
        ids.push(n.create_notice(&new, &[], NOW).await.unwrap().0);
    }
    let filter = NoticeFilter {
        limit: Some(2),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = n.list_notices_page(&filter, cursor).await.unwrap();
        pages += 1;
        seen.extend(page.iter().map(|x| NoticeId(x.id)));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    let newest_first: Vec<NoticeId> = ids.iter().rev().copied().collect();
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3);
    // A notice added while paging does not shift the later pages.
    let (first, next) = n.list_notices_page(&filter, None).await.unwrap();
    n.create_notice(&notice("page-late"), &[], NOW)
        .await
        .unwrap();
    let (second, _) = n.list_notices_page(&filter, next).await.unwrap();
    assert_eq!(first.last().unwrap().id - 1, second[0].id);
    // Filters apply within pages; an exact last page says there is more to ask for, and the
    // next ask returns nothing and no cursor.
    let only = NoticeFilter {
        provider_key: Some("asn:64501".into()),
        limit: Some(5),
        ..Default::default()
    };
    let (page, next) = n.list_notices_page(&only, None).await.unwrap();
    assert_eq!(page.len(), 5);
    assert!(page.iter().all(|x| x.provider_key == "asn:64501"));
    let (rest, none) = n.list_notices_page(&only, next).await.unwrap();
    assert!(rest.is_empty() && none.is_none());
    let zero = NoticeFilter {
        limit: Some(0),
        ..Default::default()
    };
    assert_eq!(
        n.list_notices_page(&zero, None).await.unwrap(),
        (vec![], None)
    );
}

async fn an_escalation_restarts_the_unanswered_count_and_ladder_levels_never_drop(db: &TestDb) {
    let store = db.open().await;
    let n = store.notices();
    let a = n
        .open_item(&item(None, "http://x.example/esc"), NOW)
        .await
        .unwrap()
        .unwrap();
    let mut step = 0;
    for kind in ["initial", "renotice", "escalation", "renotice"] {
        let mut new = notice(&format!("esc-{step}"));
        new.kind = kind.into();
        let (id, _) = n.create_notice(&new, &[a], NOW).await.unwrap();
        n.claim_notice("w", NOW, NOW + 100).await.unwrap().unwrap();
        assert!(n.mark_committing(id, "w").await.unwrap());
        assert!(n.mark_sent(id, "w", NOW, "ok", 1000).await.unwrap());
        step += 1;
        let it = n.item(a).await.unwrap().unwrap();
        let expected = match kind {
            "initial" => 1,
            "escalation" => 0,
            _ => {
                if step == 2 {
                    2
                } else {
                    1
                }
            }
        };
        assert_eq!(it.unanswered, expected, "after {kind}");
    }
    n.pass_escalation_steps(&[a], 3).await.unwrap();
    n.pass_escalation_steps(&[a], 1).await.unwrap();
    assert_eq!(n.item(a).await.unwrap().unwrap().escalation_level, 3);
}

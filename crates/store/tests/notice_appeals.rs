//! Appeals reaching the notice tables, on both back-ends: an item whose matches an appeal
//! withdrew stops (queued notices naming it are withdrawn, their other items freed), each
//! recipient of a sent notice naming it is owed one retraction until one is composed, a sent
//! retraction marks the notices it retracts, and withdrawn matches open no new item.

#[macro_use]
mod common;

use aranea_store::{
    BankEntryRef, DecisionKind, Facts, ItemId, ItemState, NewDecision, NewHotline, NewItem,
    NewNotice, NoticeId, NoticeState, ReviewReason, Store,
};
use common::{NOW, TestDb, matched_sighting};

contract_tests!(an_appeal_withdraws_items_and_owes_one_retraction_per_recipient,);

fn item(sighting: i64, path: &str) -> NewItem {
    NewItem {
        sighting_id: Some(sighting),
        url: format!("https://files.example{path}"),
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
        prefix: None,
        country: Some("NL".into()),
        hotline: "own".into(),
        via_cdn: None,
        method: "rdap_abuse".into(),
        confidence_pct: 90,
        contacts: "[]".into(),
        upstream_contact: None,
        notice_due_at: NOW,
        reupload_of: None,
    }
}

fn notice(key: &str, kind: &str, recipient: &str) -> NewNotice {
    NewNotice {
        report_id: format!("r-{key}"),
        idempotency_key: key.into(),
        provider_key: "asn:64501".into(),
        provider_name: "Quickhost".into(),
        hotline: "own".into(),
        kind: kind.into(),
        escalation_step: None,
        via_cdn: None,
        channel: "smtp".into(),
        recipient: recipient.into(),
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

/// Composes and delivers a notice naming `items`.
async fn sent(store: &Store, new: &NewNotice, items: &[ItemId], at: i64) -> NoticeId {
    let n = store.notices();
    let (id, _) = n.create_notice(new, items, at).await.unwrap();
    let claimed = n.claim_notice("w", at, at + 1000).await.unwrap().unwrap();
    assert_eq!(claimed.id, id.0);
    assert!(n.mark_committing(id, "w").await.unwrap());
    assert!(n.mark_sent(id, "w", at, "250 OK", 60_000).await.unwrap());
    id
}

/// What the review room records when an appeal reverses the positive decision on `seed`'s
/// media: the decision's bank entry disabled, its matches withdrawn.
async fn appeal(store: &Store, seed: u8) {
    let desk = store.review_desk();
    let hotline = NewHotline {
        code: format!("h{seed}"),
        name: "H".into(),
        country: "NL".into(),
        languages: vec!["en".into()],
        jurisdiction: "NL".into(),
        shares_review_pool: true,
        shares_banks: true,
        daily_cap: 50,
    };
    desk.add_hotline(&hotline, NOW).await.unwrap();
    store
        .review()
        .enqueue(&[seed; 32], None, ReviewReason::OnMatchingPage, 1, NOW)
        .await
        .unwrap();
    let queued = desk.unassigned_queued_media(100).await.unwrap();
    let media = queued.iter().find(|q| q.sha256 == [seed; 32]).unwrap();
    let review_item = desk.open_item(media, NOW).await.unwrap();
    let decision = |kind, positive: bool| NewDecision {
        kind,
        decided_by: None,
        facts: Facts {
            age_band: "3-6".into(),
            severity: "A".into(),
            harmful_context: false,
            not_relevant: !positive,
        },
        classification: if positive { "csam" } else { "none" }.into(),
        positive,
        note: String::new(),
    };
    let desk = &desk;
    let settle = |from: ItemState, d: NewDecision| async move {
        desk.settle(review_item, &[from], ItemState::Decided, Some(&d), NOW)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    let first = settle(ItemState::Open, decision(DecisionKind::Consensus, true)).await;
    let entry = BankEntryRef {
        bank_id: 1,
        entry_id: i64::from(seed),
        media_sha256: [seed; 32],
        signal_type: "sha256".into(),
        disabled_at: None,
    };
    desk.record_bank_entries(first, &[entry]).await.unwrap();
    let reversed = settle(ItemState::Decided, decision(DecisionKind::Appeal, false)).await;
    assert!(
        desk.withdraw_bank_entries(first, reversed, NOW)
            .await
            .unwrap()
            > 0
    );
}

async fn unnoticed(store: &Store, after: i64) -> Vec<i64> {
    let matches = store.notices().unnoticed_matches(after, 100).await.unwrap();
    matches.iter().map(|m| m.sighting_id).collect()
}

/// `retracted` events in the notice's own timeline.
async fn retracted(store: &Store, id: NoticeId) -> usize {
    let timeline = store.notices().timeline(id).await.unwrap();
    timeline
        .iter()
        .filter(|e| e.kind == "retracted" && e.notice_id == Some(id.0))
        .count()
}

async fn an_appeal_withdraws_items_and_owes_one_retraction_per_recipient(db: &TestDb) {
    let store = db.open().await;
    let n = store.notices();
    let s1 = matched_sighting(&store, "/w1.jpg", 7, NOW).await;
    let s2 = matched_sighting(&store, "/w2.jpg", 8, NOW).await;
    let a = n
        .open_item(&item(s1, "/w1.jpg"), NOW)
        .await
        .unwrap()
        .unwrap();
    let b = n
        .open_item(&item(s2, "/w2.jpg"), NOW)
        .await
        .unwrap()
        .unwrap();
    let abuse = sent(
        &store,
        &notice("k1", "initial", "abuse@q.example"),
        &[a, b],
        NOW,
    )
    .await;
    let upstream = sent(
        &store,
        &notice("k2", "escalation", "noc@up.example"),
        &[a],
        NOW,
    )
    .await;
    let (queued, _) = n
        .create_notice(&notice("k3", "renotice", "abuse@q.example"), &[a, b], NOW)
        .await
        .unwrap();
    // The same media at another URL, not yet an item.
    let s3 = matched_sighting(&store, "/w3.jpg", 7, NOW).await;
    assert_eq!(unnoticed(&store, s2).await, [s3]);
    assert!(n.withdraw_appealed(NOW, 100).await.unwrap().is_empty());
    assert!(n.retractions_due(100).await.unwrap().is_empty());

    appeal(&store, 7).await;
    assert!(
        unnoticed(&store, s2).await.is_empty(),
        "withdrawn matches open no item"
    );
    assert_eq!(n.withdraw_appealed(NOW + 5, 100).await.unwrap(), [a]);
    assert!(n.withdraw_appealed(NOW + 6, 100).await.unwrap().is_empty());
    let withdrawn = n.item(a).await.unwrap().unwrap();
    assert_eq!(withdrawn.state, "withdrawn");
    assert_eq!(
        (withdrawn.next_check_at, withdrawn.notice_due_at),
        (None, None)
    );
    let other = n.item(b).await.unwrap().unwrap();
    assert_eq!(other.state, "open");
    assert_eq!(
        (other.pending_notice_id, other.notice_due_at),
        (None, Some(NOW + 5)),
        "freed from the withdrawn notice, due at once"
    );
    assert_eq!(
        n.notice(queued).await.unwrap().unwrap().state,
        NoticeState::Withdrawn
    );

    let owed = n.retractions_due(100).await.unwrap();
    let pairs: Vec<(i64, i64, &str)> = owed
        .iter()
        .map(|o| (o.item_id, o.notice_id, o.recipient.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            (a.0, abuse.0, "abuse@q.example"),
            (a.0, upstream.0, "noc@up.example")
        ]
    );
    assert_eq!(owed[0].report_id, "r-k1");
    let retraction = notice("k4", "withdrawal", "abuse@q.example");
    let (w, new) = n.create_notice(&retraction, &[a], NOW + 7).await.unwrap();
    assert!(new);
    assert_eq!(n.item(a).await.unwrap().unwrap().pending_notice_id, None);
    let owed = n.retractions_due(100).await.unwrap();
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].recipient, "noc@up.example");

    let claimed = n
        .claim_notice("w", NOW + 8, NOW + 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, w.0);
    assert!(n.mark_committing(w, "w").await.unwrap());
    assert!(
        n.mark_sent(w, "w", NOW + 9, "250 OK", 60_000)
            .await
            .unwrap()
    );
    assert_eq!(retracted(&store, abuse).await, 1);
    assert_eq!(retracted(&store, upstream).await, 0, "another recipient");
    assert_eq!(n.retractions_of(abuse).await.unwrap(), [w]);
    assert!(n.retractions_of(upstream).await.unwrap().is_empty());
    let item_after = n.item(a).await.unwrap().unwrap();
    assert_eq!(
        item_after.notices_sent, withdrawn.notices_sent,
        "not a notice about it"
    );
    let facts = n.item_facts().await.unwrap();
    assert_eq!(
        facts.iter().find(|f| f.id == a.0).unwrap().state,
        "withdrawn"
    );
}

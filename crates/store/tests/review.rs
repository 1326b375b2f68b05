//! Contract tests of the review room's tables (0004_review) on both back-ends: accounts,
//! sessions, second-factor reset, one vote per analyst, one settlement per item, vault
//! purge (bytes and thumbnail), audit chain.

#[macro_use]
mod common;

use aranea_store::{
    Attach, AuditEntry, AuditRecord, DecisionKind, Facts, ItemState, MediaRecord, NewDecision,
    NewHotline, NewSighting, NewUser, ReviewReason, Session, Settlement, Store, UserRole, Vote,
    VoteCast,
};
use common::{NOW, TestDb, url};

contract_tests!(
    hotlines_users_and_sessions,
    failed_logins_count_and_lock,
    queued_media_becomes_an_item_served_once_per_user,
    one_vote_per_user_and_one_settlement_per_item,
    racing_voters_are_all_counted_or_refused,
    vault_keeps_ciphertext_until_purged,
    vault_thumbnail_is_kept_once_and_purged_with_the_bytes,
    totp_reset_clears_the_secret_requires_enrolment_and_ends_sessions,
    audit_rows_chain_and_head_follows,
);

fn hotline(code: &str, shares: bool) -> NewHotline {
    NewHotline {
        code: code.into(),
        name: format!("Hotline {code}"),
        country: "GB".into(),
        languages: vec!["en".into(), "cy".into()],
        jurisdiction: "GB".into(),
        shares_review_pool: shares,
        shares_banks: true,
        daily_cap: 50,
    }
}

fn user(hotline: aranea_store::HotlineId, name: &str) -> NewUser {
    NewUser {
        hotline,
        username: name.into(),
        display_name: name.into(),
        role: UserRole::Analyst,
        password_hash: "$argon2id$placeholder".into(),
    }
}

fn facts(severity: &str) -> Facts {
    Facts {
        age_band: "3-6".into(),
        severity: severity.into(),
        harmful_context: false,
        not_relevant: false,
    }
}

/// Records media with one sighting on a fetched page and queues it for review.
async fn queued_media(store: &Store, n: u8) -> [u8; 32] {
    let sha = [n; 32];
    let record = MediaRecord {
        sha256: sha,
        md5: [n; 16],
        sha1: [n; 20],
        pdq: Some([n; 32]),
        pdq_quality: Some(90),
        size: 10,
        kind: "jpeg".into(),
        width: Some(1),
        height: Some(1),
    };
    store.media().record(&record, NOW).await.unwrap();
    let urls = store
        .frontier()
        .enqueue_urls(
            &[
                url("a.example", &format!("/p{n}")),
                url("a.example", &format!("/m{n}.jpg")),
            ],
            NOW,
        )
        .await
        .unwrap();
    let page = store
        .frontier()
        .url_id(&format!("https://a.example/p{n}"))
        .await
        .unwrap()
        .unwrap();
    let media_url = store
        .frontier()
        .url_id(&format!("https://a.example/m{n}.jpg"))
        .await
        .unwrap()
        .unwrap();
    let _ = urls;
    let sighting = store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: sha,
            url: media_url,
            page: Some(page),
            member_path: None,
            seen_at: NOW,
            server_ip: Some("192.0.2.1".into()),
        })
        .await
        .unwrap();
    store
        .review()
        .enqueue(&sha, Some(sighting), ReviewReason::OnMatchingPage, 1, NOW)
        .await
        .unwrap();
    sha
}

async fn hotlines_users_and_sessions(db: &TestDb) {
    let store = db.open().await;
    let desk = store.review_desk();
    let a = desk.add_hotline(&hotline("gb-a", true), NOW).await.unwrap();
    assert!(
        desk.add_hotline(&hotline("gb-a", true), NOW).await.is_err(),
        "codes are unique"
    );
    let h = desk.hotline(a).await.unwrap().unwrap();
    assert_eq!(h.languages, vec!["en", "cy"]);
    assert_eq!(desk.hotline_by_code("gb-a").await.unwrap().unwrap().id, a);
    desk.set_hotline_sharing(a, false, false, 7).await.unwrap();
    let h = desk.hotline(a).await.unwrap().unwrap();
    assert!(!h.shares_review_pool && !h.shares_banks && h.daily_cap == 7);

    let u = desk.add_user(&user(a, "ana"), NOW).await.unwrap();
    assert!(
        desk.add_user(&user(a, "ana"), NOW).await.is_err(),
        "usernames are unique"
    );
    assert_eq!(desk.user_by_name("ana").await.unwrap().unwrap().id, u);
    assert_eq!(desk.users(Some(a)).await.unwrap().len(), 1);

    let token = [9u8; 32];
    let session = Session {
        user: u,
        csrf_token: "csrf".into(),
        source: "198.51.100.7".into(),
        created_at: NOW,
        expires_at: NOW + 1000,
    };
    desk.create_session(&token, &session).await.unwrap();
    assert_eq!(
        desk.session(&token, NOW + 1).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        desk.session(&token, NOW + 1000).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(desk.session(&[8u8; 32], NOW).await.unwrap(), None);
    desk.set_user_disabled(u, true).await.unwrap();
    assert_eq!(
        desk.session(&token, NOW + 1).await.unwrap(),
        None,
        "disabling ends sessions"
    );
    assert!(desk.user(u).await.unwrap().unwrap().disabled);
}

async fn failed_logins_count_and_lock(db: &TestDb) {
    let store = db.open().await;
    let desk = store.review_desk();
    let a = desk.add_hotline(&hotline("gb-a", true), NOW).await.unwrap();
    let u = desk.add_user(&user(a, "ana"), NOW).await.unwrap();
    assert_eq!(desk.record_failed_login(u, 0).await.unwrap(), 1);
    assert_eq!(desk.record_failed_login(u, NOW + 500).await.unwrap(), 2);
    // A shorter lock never shortens a longer one.
    desk.record_failed_login(u, NOW + 100).await.unwrap();
    let row = desk.user(u).await.unwrap().unwrap();
    assert_eq!((row.failed_logins, row.locked_until), (3, NOW + 500));
    desk.record_successful_login(u).await.unwrap();
    let row = desk.user(u).await.unwrap().unwrap();
    assert_eq!((row.failed_logins, row.locked_until), (0, 0));
}

async fn queued_media_becomes_an_item_served_once_per_user(db: &TestDb) {
    let store = db.open().await;
    let desk = store.review_desk();
    let a = desk.add_hotline(&hotline("gb-a", true), NOW).await.unwrap();
    let u = desk.add_user(&user(a, "ana"), NOW).await.unwrap();
    let sha = queued_media(&store, 1).await;
    let pending = desk.unassigned_queued_media(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    let item = desk.open_item(&pending[0], NOW).await.unwrap();
    assert_eq!(
        desk.open_item(&pending[0], NOW).await.unwrap(),
        item,
        "idempotent"
    );
    assert!(desk.unassigned_queued_media(10).await.unwrap().is_empty());
    let row = desk.item(item).await.unwrap().unwrap();
    assert_eq!((row.pages, row.sites, row.providers), (1, 1, 1));
    assert_eq!(row.lead_sha256, sha);

    let other = queued_media(&store, 2).await;
    assert_eq!(
        desk.attach_media(item, &other, 3, NOW).await.unwrap(),
        Attach::Joined
    );
    assert_eq!(
        desk.attach_media(item, &other, 3, NOW).await.unwrap(),
        Attach::AlreadyHeld
    );
    assert_eq!(desk.item_media(item).await.unwrap().len(), 2);
    assert_eq!(desk.item(item).await.unwrap().unwrap().pages, 2);

    assert_eq!(
        desk.serve_next_item(u, "gb-a", true, NOW).await.unwrap(),
        Some(item)
    );
    assert_eq!(
        desk.serve_next_item(u, "gb-a", true, NOW).await.unwrap(),
        None,
        "never twice"
    );
    assert_eq!(desk.served_at(item, u).await.unwrap(), Some(NOW));
    assert_eq!(desk.served_unvoted(u).await.unwrap(), vec![item]);
    // Another hotline that does not share the pool does not see it.
    let b = desk
        .add_hotline(&hotline("gb-b", false), NOW)
        .await
        .unwrap();
    let v = desk.add_user(&user(b, "bo"), NOW).await.unwrap();
    assert_eq!(
        desk.serve_next_item(v, "gb-b", false, NOW).await.unwrap(),
        None
    );
    assert_eq!(desk.served_since(u, NOW).await.unwrap(), vec![NOW]);
}

async fn one_vote_per_user_and_one_settlement_per_item(db: &TestDb) {
    let store = db.open().await;
    let desk = store.review_desk();
    let a = desk.add_hotline(&hotline("gb-a", true), NOW).await.unwrap();
    let u = desk.add_user(&user(a, "ana"), NOW).await.unwrap();
    queued_media(&store, 1).await;
    let pending = desk.unassigned_queued_media(10).await.unwrap();
    let item = desk.open_item(&pending[0], NOW).await.unwrap();
    assert!(voted(&desk, item, u, a, "A").await);
    assert!(!voted(&desk, item, u, a, "B").await, "one vote each");
    assert_eq!(desk.votes_on(item).await.unwrap()[0].facts, facts("A"));

    let decision = NewDecision {
        kind: DecisionKind::Consensus,
        decided_by: None,
        facts: facts("A"),
        classification: "csam".into(),
        positive: true,
        note: String::new(),
    };
    let first = desk
        .settle(
            item,
            &[ItemState::Open],
            ItemState::Decided,
            Some(&decision),
            NOW,
        )
        .await
        .unwrap();
    assert!(matches!(first, Some(Some(_))));
    let again = desk
        .settle(
            item,
            &[ItemState::Open],
            ItemState::Decided,
            Some(&decision),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(again, None, "settled once");
    // A decided item takes no more media: a near-duplicate must find another item.
    let late = queued_media(&store, 3).await;
    assert_eq!(
        desk.attach_media(item, &late, 2, NOW).await.unwrap(),
        Attach::ItemDecided
    );
    assert_eq!(desk.item_media(item).await.unwrap().len(), 1);
    assert_eq!(desk.unassigned_queued_media(10).await.unwrap().len(), 1);
    assert_eq!(desk.decisions_on(item).await.unwrap().len(), 1);
    let v = desk.add_user(&user(a, "vi"), NOW).await.unwrap();
    assert!(
        !voted(&desk, item, v, a, "A").await,
        "closed items take no votes"
    );
    let queue = store
        .review()
        .get(&pending[0].sha256)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queue.state, aranea_store::ReviewState::Decided);

    let appeal = NewDecision {
        kind: DecisionKind::Appeal,
        positive: false,
        classification: "none".into(),
        ..decision
    };
    let second = desk
        .settle(
            item,
            &[ItemState::Decided],
            ItemState::Decided,
            Some(&appeal),
            NOW + 1,
        )
        .await
        .unwrap()
        .flatten()
        .unwrap();
    let all = desk.decisions_on(item).await.unwrap();
    assert_eq!(all[0].superseded_by, Some(second));
    assert_eq!(
        desk.standing_decision(item).await.unwrap().unwrap().id,
        second
    );
    assert_eq!(desk.unapplied_decisions().await.unwrap().len(), 2);
    desk.mark_applied(second, NOW).await.unwrap();
    assert_eq!(desk.unapplied_decisions().await.unwrap().len(), 1);
}

async fn vault_keeps_ciphertext_until_purged(db: &TestDb) {
    let store = db.open().await;
    let desk = store.review_desk();
    let sha = [3u8; 32];
    assert!(
        desk.vault_put(&sha, b"sealed", 6, NOW, NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        !desk
            .vault_put(&sha, b"other", 5, NOW, NOW + 10)
            .await
            .unwrap()
    );
    assert_eq!(
        desk.vault_ciphertext(&sha).await.unwrap(),
        Some(b"sealed".to_vec())
    );
    assert!(desk.vault_expired(NOW + 9, 10).await.unwrap().is_empty());
    assert_eq!(desk.vault_expired(NOW + 10, 10).await.unwrap(), vec![sha]);
    assert!(desk.vault_purge(&sha, "retention", NOW + 10).await.unwrap());
    assert!(!desk.vault_purge(&sha, "retention", NOW + 10).await.unwrap());
    assert_eq!(desk.vault_ciphertext(&sha).await.unwrap(), None);
    assert!(
        !desk
            .vault_put(&sha, b"sealed", 6, NOW, NOW + 10)
            .await
            .unwrap(),
        "purged stays purged"
    );
    let record = desk.vault_record(&sha).await.unwrap().unwrap();
    assert_eq!(record.purge_reason.as_deref(), Some("retention"));
}

async fn vault_thumbnail_is_kept_once_and_purged_with_the_bytes(db: &TestDb) {
    let store = db.open().await;
    let desk = store.review_desk();
    let sha = [4u8; 32];
    assert!(
        !desk.vault_put_thumbnail(&sha, b"thumb").await.unwrap(),
        "no vault row, no thumbnail"
    );
    desk.vault_put(&sha, b"sealed", 6, NOW, NOW + 10)
        .await
        .unwrap();
    assert_eq!(desk.vault_thumbnail(&sha).await.unwrap(), None);
    assert!(desk.vault_put_thumbnail(&sha, b"thumb").await.unwrap());
    assert!(
        !desk.vault_put_thumbnail(&sha, b"other").await.unwrap(),
        "the first thumbnail stays"
    );
    assert_eq!(
        desk.vault_thumbnail(&sha).await.unwrap(),
        Some(b"thumb".to_vec())
    );
    assert!(desk.vault_purge(&sha, "decided", NOW).await.unwrap());
    assert_eq!(desk.vault_thumbnail(&sha).await.unwrap(), None);
    assert!(!desk.vault_put_thumbnail(&sha, b"thumb").await.unwrap());
    assert_eq!(desk.vault_thumbnail(&sha).await.unwrap(), None);
}

async fn totp_reset_clears_the_secret_requires_enrolment_and_ends_sessions(db: &TestDb) {
    let store = db.open().await;
    let desk = store.review_desk();
    let a = desk.add_hotline(&hotline("gb-a", true), NOW).await.unwrap();
    let u = desk.add_user(&user(a, "ana"), NOW).await.unwrap();
    let other = desk.add_user(&user(a, "bob"), NOW).await.unwrap();
    desk.set_totp_pending(u, Some(b"secret")).await.unwrap();
    assert!(desk.confirm_totp(u, 7).await.unwrap());
    let session = |user| Session {
        user,
        csrf_token: "csrf".into(),
        source: String::new(),
        created_at: NOW,
        expires_at: NOW + 1000,
    };
    desk.create_session(&[1u8; 32], &session(u)).await.unwrap();
    desk.create_session(&[2u8; 32], &session(other))
        .await
        .unwrap();
    assert!(!desk.user(u).await.unwrap().unwrap().totp_enrol_required);

    desk.reset_totp(u).await.unwrap();
    let row = desk.user(u).await.unwrap().unwrap();
    assert_eq!((row.totp_secret, row.totp_pending), (None, None));
    assert!(row.totp_enrol_required);
    assert_eq!(row.totp_last_step, 7, "old codes stay used up");
    assert_eq!(desk.session(&[1u8; 32], NOW).await.unwrap(), None);
    assert!(desk.session(&[2u8; 32], NOW).await.unwrap().is_some());
    assert!(!desk.user(other).await.unwrap().unwrap().totp_enrol_required);

    // Enrolling again lifts the requirement.
    desk.set_totp_pending(u, Some(b"new secret")).await.unwrap();
    assert!(desk.confirm_totp(u, 8).await.unwrap());
    let row = desk.user(u).await.unwrap().unwrap();
    assert_eq!(row.totp_secret.as_deref(), Some(&b"new secret"[..]));
    assert!(!row.totp_enrol_required);
    assert!(
        desk.reset_totp(aranea_store::UserId(999_999))
            .await
            .is_err()
    );
}

async fn audit_rows_chain_and_head_follows(db: &TestDb) {
    let store = db.open().await;
    let desk = store.review_desk();
    let record = |n: i64| AuditRecord {
        at: NOW + n,
        user_id: Some(n),
        actor: "ana".into(),
        hotline: "gb-a".into(),
        action: "view".into(),
        subject: format!("item:{n}"),
        detail: String::new(),
        source: "198.51.100.7".into(),
    };
    // Concurrent appends must not fork the chain.
    let mut tasks = Vec::new();
    for n in 0..20 {
        let store = store.clone();
        let r = record(n);
        tasks.push(tokio::spawn(async move {
            store.review_desk().audit_append(&r).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = desk.audit_entries(0, 100, None).await.unwrap();
    assert_eq!(rows.len(), 20);
    let mut prev: Vec<u8> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.seq, i as i64 + 1);
        assert_eq!(row.prev_hash, prev);
        assert_eq!(
            row.hash,
            AuditEntry::chain_hash(&prev, row.seq, &row.record).to_vec()
        );
        prev = row.hash.clone();
    }
    assert_eq!(desk.audit_head().await.unwrap(), Some((20, prev)));
    assert_eq!(
        desk.audit_entries(0, 100, Some("other"))
            .await
            .unwrap()
            .len(),
        0
    );
}

/// Casts a vote that never settles the item; whether it was recorded.
async fn voted(
    desk: &aranea_store::ReviewDesk<'_>,
    item: aranea_store::ReviewItemId,
    user: aranea_store::UserId,
    hotline: aranea_store::HotlineId,
    severity: &str,
) -> bool {
    let cast = desk
        .cast_vote(item, user, hotline, &facts(severity), NOW, |_| None)
        .await
        .unwrap();
    matches!(cast, VoteCast::Recorded { .. })
}

/// The rule the racing voters apply: any disagreement disputes, three agreeing decide.
fn three_agree(votes: &[Vote]) -> Option<Settlement> {
    let first = &votes.first()?.facts;
    if votes.iter().any(|v| v.facts != *first) {
        return Some(Settlement {
            to: ItemState::Disputed,
            decision: None,
        });
    }
    (votes.len() >= 3).then(|| Settlement {
        to: ItemState::Decided,
        decision: Some(NewDecision {
            kind: DecisionKind::Consensus,
            decided_by: None,
            facts: first.clone(),
            classification: "csam".into(),
            positive: true,
            note: String::new(),
        }),
    })
}

async fn racing_voters_are_all_counted_or_refused(db: &TestDb) {
    let store = db.open().await;
    let desk = store.review_desk();
    let a = desk.add_hotline(&hotline("gb-a", true), NOW).await.unwrap();
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(
            desk.add_user(&user(a, &format!("u{i}")), NOW)
                .await
                .unwrap(),
        );
    }
    for round in 0..6u8 {
        queued_media(&store, 10 + round).await;
        let pending = desk.unassigned_queued_media(10).await.unwrap();
        let item = desk.open_item(&pending[0], NOW).await.unwrap();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(users.len()));
        let mut tasks = Vec::new();
        for (i, &u) in users.iter().enumerate() {
            let (store, start) = (store.clone(), start.clone());
            // Odd rounds have one dissenter among the racers.
            let severity = if round % 2 == 1 && i == 7 { "B" } else { "A" };
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                store
                    .review_desk()
                    .cast_vote(item, u, a, &facts(severity), NOW, three_agree)
                    .await
                    .unwrap()
            }));
        }
        let mut recorded = 0;
        let mut settling_tallies = Vec::new();
        for task in tasks {
            let cast = tokio::time::timeout(std::time::Duration::from_secs(30), task)
                .await
                .expect("a vote finishes")
                .unwrap();
            if let VoteCast::Recorded { votes, settled, .. } = cast {
                recorded += 1;
                if settled.is_some() {
                    settling_tallies.push(votes);
                }
            }
        }
        let votes = desk.votes_on(item).await.unwrap();
        assert_eq!(votes.len(), recorded, "every recorded vote was reported");
        assert_eq!(settling_tallies.len(), 1, "settled exactly once");
        assert_eq!(
            settling_tallies[0], votes,
            "round {round}: the settling tally saw every vote ever recorded"
        );
        let state = desk.item(item).await.unwrap().unwrap().state;
        assert_eq!(Some(state), three_agree(&votes).map(|s| s.to));
    }
}

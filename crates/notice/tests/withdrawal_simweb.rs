//! An appeal reverses the decision behind two noticed media: their items stop (no re-check,
//! re-notice or escalation), every recipient that got a notice naming them gets exactly one
//! retraction — by email to the provider and its upstream, by a `withdrawn` webhook event to
//! a webhook provider — across a worker restart, and statistics stop counting them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aranea_notice::{NoticeEngine, stats};
use aranea_store::{
    BankEntryRef, DecisionKind, Facts, ItemId, ItemState, NewDecision, NewHotline, NoticeItem,
    NoticeState, ReviewReason, Store,
};
use common::*;

fn decision(kind: DecisionKind, positive: bool) -> NewDecision {
    NewDecision {
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
    }
}

/// What the review room does when a senior analyst's appeal reverses a positive decision on
/// `sha256` (decided, banked as the stand-in's entry, then appealed negative): the bank
/// entries are disabled and their matches recorded in `match_withdrawals`.
async fn appeal(store: &Store, sha256: [u8; 32], now: i64) -> u64 {
    let desk = store.review_desk();
    store
        .review()
        .enqueue(&sha256, None, ReviewReason::OnMatchingPage, 1, now)
        .await
        .unwrap();
    let queued = desk.unassigned_queued_media(1000).await.unwrap();
    let media = queued.iter().find(|q| q.sha256 == sha256).unwrap();
    let item = desk.open_item(media, now).await.unwrap();
    let desk = &desk;
    let settle = |from: ItemState, d: NewDecision| async move {
        desk.settle(item, &[from], ItemState::Decided, Some(&d), now)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    let first = settle(ItemState::Open, decision(DecisionKind::Consensus, true)).await;
    let entry = BankEntryRef {
        bank_id: 1,
        entry_id: entry_of(&sha256),
        media_sha256: sha256,
        signal_type: "pdq".into(),
        disabled_at: None,
    };
    desk.record_bank_entries(first, &[entry]).await.unwrap();
    let reversed = settle(ItemState::Decided, decision(DecisionKind::Appeal, false)).await;
    desk.withdraw_bank_entries(first, reversed, now)
        .await
        .unwrap()
}

fn sha_of(item: &NoticeItem) -> [u8; 32] {
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&item.sha256[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

async fn passes(engine: &NoticeEngine, world: &aranea_simweb::RunningWorld, hours: u64) {
    for _ in 0..hours / 3 {
        tokio::time::timeout(Duration::from_secs(60), engine.run_once())
            .await
            .expect("a pass finishes within a minute")
            .unwrap();
        world.advance(Duration::from_secs(3 * 3600));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appeal_stops_the_items_and_retracts_each_notice_once_across_a_restart() {
    let world = world(21);
    let (db, dir) = temp_sqlite("withdrawal");
    let _dir = RemoveOnDrop(dir.clone());
    let store = Store::open(&db).await.unwrap();
    store
        .review_desk()
        .add_hotline(
            &NewHotline {
                code: "nl".into(),
                name: "NL".into(),
                country: "NL".into(),
                languages: vec!["en".into()],
                jurisdiction: "NL".into(),
                shares_review_pool: true,
                shares_banks: true,
                daily_cap: 50,
            },
            0,
        )
        .await
        .unwrap();
    let clock = Arc::new(WorldClock(world.clone()));
    let addrs = Addrs::of(&world);
    let engine = |worker: &str| {
        NoticeEngine::new(
            store.clone(),
            notice_config(&addrs),
            fetch_config(&addrs),
            clock.clone(),
            worker,
        )
        .unwrap()
    };
    let first_worker = engine("worker-1");
    let mut crawler = CrawlStandIn::new(&world);
    let now = aranea_notice::Clock::now(clock.as_ref());
    assert!(crawler.crawl(&world, &store, now).await > 0);
    // Three days: Slowpoke ignores its notices and is escalated to its upstream; Quickhost
    // removes within hours.
    passes(&first_worker, &world, 72).await;

    let n = store.notices();
    let items = n.list_items(None, 10_000).await.unwrap();
    let slow: Vec<&NoticeItem> = items
        .iter()
        .filter(|i| i.provider_name == "Slowpoke Hosting" && i.state == "open")
        .collect();
    assert!(!slow.is_empty(), "ignored items");
    let quick = items
        .iter()
        .find(|i| i.provider_name == "Quickhost" && i.state == "removed")
        .expect("a removed Quickhost item");
    let appealed = slow[0];
    let untouched = *slow
        .iter()
        .find(|i| i.sha256 != appealed.sha256)
        .expect("another media at Slowpoke");
    let appealed_notices = n.notices_of_item(ItemId(appealed.id)).await.unwrap();
    let mut recipients: Vec<String> = appealed_notices
        .iter()
        .filter(|x| x.state == NoticeState::Sent)
        .map(|x| x.recipient.clone())
        .collect();
    recipients.sort();
    recipients.dedup();
    assert!(
        recipients.len() >= 2,
        "the provider and its upstream were told: {recipients:?}"
    );
    let outstanding = |facts: &[aranea_store::ItemFact]| {
        stats::compute(facts, now)
            .into_iter()
            .find(|r| r.dimension == "provider" && r.key == "Slowpoke Hosting")
            .map(|r| (r.items, r.outstanding))
            .unwrap()
    };
    let before = outstanding(&n.item_facts().await.unwrap());

    let now = aranea_notice::Clock::now(clock.as_ref());
    let appealed_at = world.sim_now();
    assert!(appeal(&store, sha_of(appealed), now).await > 0);
    assert!(appeal(&store, sha_of(quick), now).await > 0);
    // The worker that saw the appeal withdraws the items and dies before composing any
    // retraction; a new worker owes them all the same.
    let withdrawn = n.withdraw_appealed(now, 100).await.unwrap();
    assert!(withdrawn.contains(&ItemId(appealed.id)) && withdrawn.contains(&ItemId(quick.id)));
    drop(first_worker);
    let second_worker = engine("worker-2");
    let checks_then = n.checks_of_item(ItemId(appealed.id)).await.unwrap().len();
    let notices_then = appealed_notices.len();
    passes(&second_worker, &world, 72).await;

    // One retraction per recipient, delivered once, naming the URL and its references.
    let received = world.notices();
    let retractions: Vec<_> = received
        .iter()
        .filter(|r| r.raw.contains("withdraw"))
        .collect();
    for recipient in &recipients {
        let to_it: Vec<_> = retractions
            .iter()
            .filter(|r| r.to.iter().any(|t| t == recipient))
            .collect();
        assert_eq!(to_it.len(), 1, "{recipient}: {to_it:#?}");
        // The text part is quoted-printable: undo its soft line breaks.
        let unfolded = to_it[0].raw.replace("=\r\n", "").replace("=\n", "");
        let mail = &unfolded;
        assert!(
            mail.contains(&format!("We withdraw our report of {}", appealed.url)),
            "{mail}"
        );
        for notice in appealed_notices
            .iter()
            .filter(|x| &x.recipient == recipient)
        {
            assert!(mail.contains(&notice.report_id), "{mail}");
        }
        assert!(
            !mail.contains("xarf-reports.json"),
            "no XARF in a retraction"
        );
        assert!(!mail.contains(&untouched.url), "only withdrawn URLs");
    }
    let hook: Vec<_> = retractions
        .iter()
        .filter(|r| r.raw.contains("\"event\":\"withdrawn\""))
        .collect();
    assert_eq!(hook.len(), 1, "{hook:#?}");
    let event: serde_json::Value = serde_json::from_str(&hook[0].raw).unwrap();
    let withdraws = event["withdraws"].as_array().unwrap();
    assert!(
        withdraws
            .iter()
            .any(|w| w["url"] == quick.url.as_str() && w["references"][0].is_string()),
        "{event}"
    );
    assert!(event.get("reports").is_none());
    assert!(retractions.iter().all(|r| r.duplicate_of.is_none()));

    // The items stopped: no re-check, notice or escalation after the appeal.
    let item = n.item(ItemId(appealed.id)).await.unwrap().unwrap();
    assert_eq!(item.state, "withdrawn");
    assert_eq!(
        n.checks_of_item(ItemId(appealed.id)).await.unwrap().len(),
        checks_then
    );
    let after = n.notices_of_item(ItemId(appealed.id)).await.unwrap();
    let new: Vec<_> = after
        .iter()
        .filter(|x| !appealed_notices.iter().any(|y| y.id == x.id))
        .collect();
    assert_eq!(new.len(), recipients.len(), "only retractions: {new:#?}");
    assert!(
        new.iter()
            .all(|x| x.kind == "withdrawal" && x.state == NoticeState::Sent)
    );
    assert_eq!(after.len(), notices_then + recipients.len());
    let since = |url: &str| {
        received
            .iter()
            .filter(|r| r.received_at > appealed_at && r.urls.iter().any(|u| u == url))
            .count()
    };
    assert_eq!(since(&appealed.url), recipients.len(), "retractions only");
    assert!(
        since(&untouched.url) > 0,
        "the other item is still re-notified"
    );
    // The notices' timelines say they were retracted.
    for notice in appealed_notices
        .iter()
        .filter(|x| x.state == NoticeState::Sent)
    {
        let timeline = n.timeline(aranea_store::NoticeId(notice.id)).await.unwrap();
        assert!(
            timeline.iter().any(|e| e.kind == "retracted"),
            "notice {}: {timeline:?}",
            notice.id
        );
        assert!(timeline.iter().any(|e| e.kind == "withdrawn"));
    }
    // Statistics: the appealed media's items (the same media may sit at several URLs) are
    // neither counted nor outstanding any more.
    let same_media = slow.iter().filter(|i| i.sha256 == appealed.sha256).count();
    let (items_after, outstanding_after) = outstanding(&n.item_facts().await.unwrap());
    assert_eq!(
        (items_after, outstanding_after),
        (before.0 - same_media, before.1 - same_media)
    );
    drop(store);
}

//! The review queue end to end on both back-ends: intake, grouping, priority, serving,
//! consensus across hotlines, disputes, appeal, the daily cap, isolation and recovery.

#[macro_use]
mod common;

use aranea_index::{BankFilter, Signal, SignalType};
use aranea_review::{Classification, Review, ReviewConfig, ReviewError, Schemes, VoteOutcome};
use aranea_store::{ItemState, UserRole};
use common::{Backend, NOW, World};
use sha2::{Digest, Sha256};

both_backends!(
    three_analysts_of_two_hotlines_make_media_known,
    disagreement_goes_to_a_senior_who_settles_it,
    appeal_disables_the_bank_entry_and_withdraws_matches,
    appeal_to_another_category_reclassifies_entries_and_matches,
    a_failing_decision_holds_back_the_appeal_on_its_item,
    an_appeal_carries_out_the_unapplied_decision_it_replaces_first,
    racing_analysts_are_counted_or_refused,
    near_duplicates_join_one_item_and_are_banked_together,
    most_exposed_media_is_served_first,
    daily_cap_stops_the_queue,
    hotlines_outside_the_pool_see_nothing_and_ids_cannot_be_probed,
    interrupted_decisions_are_finished_later,
);

fn csam() -> Classification {
    Classification::new("7-10", "B", false, false).unwrap()
}

fn bank_hits(w: &World, sha: &[u8; 32]) -> usize {
    let banks = w.banks.lock().unwrap();
    let signal = Signal::from_bytes(SignalType::Sha256, sha).unwrap();
    banks
        .live()
        .load()
        .match_signal(&signal, &BankFilter::All)
        .hits
        .len()
}

async fn matches_of(w: &World, sha: &[u8; 32]) -> Vec<aranea_store::BankMatch> {
    let mut out = Vec::new();
    for s in w.store.media().sightings_of(sha).await.unwrap() {
        out.extend(w.store.media().matches_of(s.id).await.unwrap());
    }
    out
}

async fn three_analysts_of_two_hotlines_make_media_known(backend: Backend) {
    let w = World::new(backend).await;
    let sha = w
        .queue_photo(1, &["https://one.example/a", "https://two.example/b"])
        .await;
    let report = w.review.intake(NOW).await.unwrap();
    assert_eq!((report.opened, report.grouped), (1, 0));
    assert_eq!(
        w.review.intake(NOW).await.unwrap().opened,
        0,
        "intake is idempotent"
    );
    let analysts = [
        w.actor(w.gb, "gb1", UserRole::Analyst).await,
        w.actor(w.gb, "gb2", UserRole::Analyst).await,
        w.actor(w.ca, "ca1", UserRole::Analyst).await,
    ];
    let mut outcomes = Vec::new();
    for (i, a) in analysts.iter().enumerate() {
        let item = w
            .review
            .next_item(a, NOW + i as i64)
            .await
            .unwrap()
            .unwrap();
        let view = w.review.item_for(a, item, NOW).await.unwrap();
        assert_eq!(view.my_vote, None);
        assert!(view.all_votes.is_empty(), "analysts never see other votes");
        assert_eq!(view.sightings.len(), 2);
        let (thumb, kind) = w.review.media_for(a, item, &sha, false, NOW).await.unwrap();
        assert_eq!(kind, "image/png");
        assert!(thumb.starts_with(b"\x89PNG"));
        outcomes.push(w.review.vote(a, item, &csam(), NOW).await.unwrap());
        // The same analyst cannot vote again, nor be served the item again.
        assert!(w.review.vote(a, item, &csam(), NOW).await.is_err());
        assert_eq!(w.review.next_item(a, NOW).await.unwrap(), None);
    }
    assert_eq!(
        outcomes[..2],
        [VoteOutcome::Recorded, VoteOutcome::Recorded]
    );
    assert!(matches!(
        outcomes[2],
        VoteOutcome::Decided { positive: true, .. }
    ));

    // Known: the bank holds its hashes, every sighting matched, the bytes are gone.
    assert_eq!(bank_hits(&w, &sha), 1);
    let matches = matches_of(&w, &sha).await;
    assert_eq!(matches.len(), 2);
    assert!(
        matches
            .iter()
            .all(|m| m.classification == "csam" && m.bank_name == "platform")
    );
    assert_eq!(
        w.store.review_desk().vault_ciphertext(&sha).await.unwrap(),
        None
    );
    let record = w
        .store
        .review_desk()
        .vault_record(&sha)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.purge_reason.as_deref(), Some("decided"));
    let item = w
        .store
        .review_desk()
        .item_of_media(&sha)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        w.store
            .review_desk()
            .item(item)
            .await
            .unwrap()
            .unwrap()
            .state,
        ItemState::Decided
    );
    let view = w.review.item_for(&analysts[0], item, NOW).await.unwrap();
    assert_eq!(view.my_vote, Some(csam().into_facts()));
    assert!(
        view.verdicts
            .iter()
            .any(|v| v.scheme == "national" && v.verdict == "category-b")
    );
    let ca_view = w.review.item_for(&analysts[2], item, NOW).await.unwrap();
    assert!(
        ca_view
            .verdicts
            .iter()
            .any(|v| v.scheme == "national" && v.verdict == "child-pornography")
    );
    assert!(
        w.review
            .media_for(&analysts[0], item, &sha, true, NOW)
            .await
            .is_err(),
        "purged"
    );
    assert_eq!(w.review.history(&analysts[0], 10).await.unwrap().len(), 1);
}

async fn disagreement_goes_to_a_senior_who_settles_it(backend: Backend) {
    let w = World::new(backend).await;
    let sha = w.queue_photo(2, &["https://one.example/a"]).await;
    w.review.intake(NOW).await.unwrap();
    let a = w.actor(w.gb, "a", UserRole::Analyst).await;
    let b = w.actor(w.ca, "b", UserRole::Analyst).await;
    let senior = w.actor(w.ca, "senior", UserRole::SeniorAnalyst).await;
    let item = w.review.next_item(&a, NOW).await.unwrap().unwrap();
    assert_eq!(
        w.review.vote(&a, item, &csam(), NOW).await.unwrap(),
        VoteOutcome::Recorded
    );
    assert!(w.review.disputed_items(&senior).await.unwrap().is_empty());
    assert!(
        w.review.disputed_items(&a).await.is_err(),
        "analysts do not settle"
    );
    w.review.next_item(&b, NOW).await.unwrap().unwrap();
    let outcome = w
        .review
        .vote(&b, item, &Classification::not_relevant(), NOW)
        .await
        .unwrap();
    assert_eq!(outcome, VoteOutcome::Disputed);
    let disputed = w.review.disputed_items(&senior).await.unwrap();
    assert_eq!(disputed.len(), 1);
    let view = w.review.item_for(&senior, item, NOW).await.unwrap();
    assert_eq!(view.all_votes.len(), 2, "seniors see the votes they settle");
    assert!(
        w.review
            .settle_dispute(&a, item, &csam(), "", NOW)
            .await
            .is_err()
    );
    // The senior reveals before deciding: the original bytes come back.
    let (bytes, kind) = w
        .review
        .media_for(&senior, item, &sha, true, NOW)
        .await
        .unwrap();
    assert_eq!((bytes, kind), (common::corpus(2).1, "image/jpeg"));
    w.review
        .settle_dispute(
            &senior,
            item,
            &Classification::not_relevant(),
            "stock photo",
            NOW,
        )
        .await
        .unwrap();
    assert!(
        w.review
            .settle_dispute(&senior, item, &csam(), "", NOW)
            .await
            .is_err(),
        "settled once"
    );
    assert!(w.store.review_desk().is_negative(&sha).await.unwrap());
    assert_eq!(bank_hits(&w, &sha), 0);
    assert!(matches_of(&w, &sha).await.is_empty());
    assert_eq!(
        w.store.review_desk().vault_ciphertext(&sha).await.unwrap(),
        None
    );
}

async fn appeal_disables_the_bank_entry_and_withdraws_matches(backend: Backend) {
    let config = ReviewConfig {
        consensus_votes: 1,
        ..ReviewConfig::default()
    };
    let w = World::with_config(backend, config).await;
    let sha = w
        .queue_photo(3, &["https://one.example/a", "https://one.example/b"])
        .await;
    w.review.intake(NOW).await.unwrap();
    let a = w.actor(w.gb, "a", UserRole::Analyst).await;
    let senior = w.actor(w.gb, "senior", UserRole::SeniorAnalyst).await;
    let item = w.review.next_item(&a, NOW).await.unwrap().unwrap();
    assert!(matches!(
        w.review.vote(&a, item, &csam(), NOW).await.unwrap(),
        VoteOutcome::Decided { positive: true, .. }
    ));
    assert_eq!(bank_hits(&w, &sha), 1);
    assert_eq!(matches_of(&w, &sha).await.len(), 2);
    assert!(
        w.review
            .reopen(&senior, item, &Classification::not_relevant(), "", NOW)
            .await
            .is_err(),
        "needs a reason"
    );
    assert!(
        w.review
            .reopen(&a, item, &Classification::not_relevant(), "why", NOW)
            .await
            .is_err()
    );
    w.review
        .reopen(
            &senior,
            item,
            &Classification::not_relevant(),
            "appeal by the site owner",
            NOW + 1,
        )
        .await
        .unwrap();
    assert_eq!(bank_hits(&w, &sha), 0, "the entry no longer matches");
    {
        let banks = w.banks.lock().unwrap();
        let bank = banks.bank_id("platform").unwrap();
        let entries: Vec<_> = banks
            .state()
            .entries()
            .iter()
            .filter(|e| e.bank == bank)
            .collect();
        assert!(!entries.is_empty(), "disabled, never deleted");
        assert!(entries.iter().all(|e| e.disabled));
    }
    assert_eq!(
        w.store
            .review_desk()
            .withdrawn_matches()
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(w.store.review_desk().is_negative(&sha).await.unwrap());
    let decisions = w.store.review_desk().decisions_on(item).await.unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(decisions[0].superseded_by.is_some());
}

async fn near_duplicates_join_one_item_and_are_banked_together(backend: Backend) {
    let config = ReviewConfig {
        consensus_votes: 1,
        ..ReviewConfig::default()
    };
    let w = World::with_config(backend, config).await;
    let lead = w.queue_photo(4, &["https://one.example/a"]).await;
    let pdq = w
        .store
        .media()
        .get(&lead)
        .await
        .unwrap()
        .unwrap()
        .record
        .pdq
        .unwrap();
    // Other bytes whose PDQ differs in 5 bits: a near-duplicate (re-encoded, resized...).
    let bytes = b"stand-in bytes of a re-encoded copy".to_vec();
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    let mut near = pdq;
    near[0] ^= 0b1_1111;
    w.record_media(
        &bytes,
        sha,
        [1; 16],
        [2; 20],
        Some(near),
        &["https://two.example/b"],
    )
    .await;
    // And one far away.
    let mut far = pdq;
    for b in far.iter_mut().take(10) {
        *b ^= 0xff;
    }
    let other_bytes = b"unrelated".to_vec();
    let other: [u8; 32] = Sha256::digest(&other_bytes).into();
    w.record_media(
        &other_bytes,
        other,
        [3; 16],
        [4; 20],
        Some(far),
        &["https://three.example/c"],
    )
    .await;
    let report = w.review.intake(NOW).await.unwrap();
    assert_eq!((report.opened, report.grouped), (2, 1));
    let item = w
        .store
        .review_desk()
        .item_of_media(&lead)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        w.store.review_desk().item_of_media(&sha).await.unwrap(),
        Some(item)
    );
    let a = w.actor(w.gb, "a", UserRole::Analyst).await;
    let served = w.review.next_item(&a, NOW).await.unwrap().unwrap();
    assert_eq!(served, item, "two pages beat one");
    w.review.vote(&a, item, &csam(), NOW).await.unwrap();
    assert_eq!(bank_hits(&w, &lead), 1);
    assert_eq!(bank_hits(&w, &sha), 1);
    assert_eq!(matches_of(&w, &sha).await.len(), 1);
    assert_eq!(bank_hits(&w, &other), 0);
}

async fn most_exposed_media_is_served_first(backend: Backend) {
    let w = World::new(backend).await;
    let quiet = w.queue_photo(5, &["https://one.example/a"]).await;
    let loud = w
        .queue_photo(
            6,
            &[
                "https://one.example/b",
                "https://two.example/c",
                "https://three.example/d",
            ],
        )
        .await;
    w.review.intake(NOW).await.unwrap();
    let a = w.actor(w.gb, "a", UserRole::Analyst).await;
    let desk = w.store.review_desk();
    let first = w.review.next_item(&a, NOW).await.unwrap().unwrap();
    assert_eq!(desk.item(first).await.unwrap().unwrap().lead_sha256, loud);
    let item = desk.item(first).await.unwrap().unwrap();
    assert_eq!((item.pages, item.sites, item.providers), (3, 3, 3));
    // Until it is voted on, the same item comes back.
    assert_eq!(w.review.next_item(&a, NOW).await.unwrap(), Some(first));
    w.review.vote(&a, first, &csam(), NOW).await.unwrap();
    let second = w.review.next_item(&a, NOW).await.unwrap().unwrap();
    assert_eq!(desk.item(second).await.unwrap().unwrap().lead_sha256, quiet);
}

async fn daily_cap_stops_the_queue(backend: Backend) {
    let w = World::new(backend).await;
    for n in 7..10 {
        w.queue_photo(n, &[&format!("https://one.example/{n}")])
            .await;
    }
    w.review.intake(NOW).await.unwrap();
    let op = w.actor(w.gb, "op", UserRole::HotlineOperator).await;
    w.review
        .set_hotline_sharing(&op, w.gb, true, true, 2, NOW)
        .await
        .unwrap();
    let a = w.actor(w.gb, "a", UserRole::Analyst).await;
    for i in 0..2 {
        let item = w.review.next_item(&a, NOW + i).await.unwrap().unwrap();
        w.review.vote(&a, item, &csam(), NOW + i).await.unwrap();
    }
    let wellness = w.review.wellness(&a, NOW + 5).await.unwrap();
    assert!(wellness.cap_reached());
    assert_eq!((wellness.served_today, wellness.daily_cap), (2, 2));
    assert_eq!(
        w.review.next_item(&a, NOW + 5).await.unwrap(),
        None,
        "over the cap: nothing"
    );
    // The next UTC day the queue serves again.
    let tomorrow = NOW - NOW.rem_euclid(86_400_000) + 86_400_000;
    assert!(w.review.next_item(&a, tomorrow).await.unwrap().is_some());
    // Continuous review for longer than the break interval raises the reminder.
    let b = w.actor(w.gb, "b", UserRole::Analyst).await;
    let mut t = tomorrow;
    for _ in 0..3 {
        if let Some(item) = w.review.next_item(&b, t).await.unwrap() {
            w.review.vote(&b, item, &csam(), t).await.unwrap();
        }
        t += 9 * 60_000;
    }
    let wellness = w.review.wellness(&b, tomorrow + 50 * 60_000).await.unwrap();
    assert!(!wellness.break_due, "a 10-minute pause ended the stretch");
    let wellness = w
        .review
        .wellness(&b, tomorrow + 18 * 60_000 + 1)
        .await
        .unwrap();
    assert_eq!(wellness.stretch_minutes, 18);
}

async fn hotlines_outside_the_pool_see_nothing_and_ids_cannot_be_probed(backend: Backend) {
    let w = World::new(backend).await;
    let fr = w
        .review
        .add_hotline(
            aranea_review::AuditActor::Cli,
            &common::hotline("fr", "FR", false),
            NOW,
        )
        .await
        .unwrap();
    let sha = w.queue_photo(10, &["https://one.example/a"]).await;
    w.review.intake(NOW).await.unwrap();
    let item = w
        .store
        .review_desk()
        .item_of_media(&sha)
        .await
        .unwrap()
        .unwrap();
    let outsider = w.actor(fr, "fr1", UserRole::Analyst).await;
    let fr_senior = w.actor(fr, "fr2", UserRole::SeniorAnalyst).await;
    let gb = w.actor(w.gb, "gb1", UserRole::Analyst).await;
    let auditor = w.actor(w.gb, "aud", UserRole::Auditor).await;
    assert_eq!(w.review.next_item(&outsider, NOW).await.unwrap(), None);
    for actor in [&outsider, &fr_senior, &gb] {
        assert!(matches!(
            w.review.item_for(actor, item, NOW).await,
            Err(ReviewError::NotFound(_))
        ));
        assert!(
            w.review
                .media_for(actor, item, &sha, true, NOW)
                .await
                .is_err()
        );
        assert!(w.review.vote(actor, item, &csam(), NOW).await.is_err());
    }
    assert!(matches!(
        w.review.next_item(&auditor, NOW).await,
        Err(ReviewError::Forbidden(_))
    ));
    assert_eq!(w.review.next_item(&gb, NOW).await.unwrap(), Some(item));
    w.review.item_for(&gb, item, NOW).await.unwrap();
    // A media hash of another item is refused even on a visible item.
    assert!(
        w.review
            .media_for(&gb, item, &[0u8; 32], false, NOW)
            .await
            .is_err()
    );
    assert!(
        w.review
            .item_for(&gb, aranea_store::ReviewItemId(item.0 + 1000), NOW)
            .await
            .is_err()
    );
}

/// A world whose one queued photo, corpus photo `photo`, an analyst decided csam at `NOW`
/// through `crippled`, a review service without its bank store: the decision is committed
/// and its consequences failed, the state a crash between the two would leave.
struct CrashedDecision {
    w: World,
    crippled: Review,
    item: aranea_store::ReviewItemId,
    sha: [u8; 32],
}

async fn crashed_decision(backend: Backend, photo: usize) -> CrashedDecision {
    let config = ReviewConfig {
        consensus_votes: 1,
        ..ReviewConfig::default()
    };
    let w = World::with_config(backend, config.clone()).await;
    let sha = w.queue_photo(photo, &["https://one.example/a"]).await;
    w.review.intake(NOW).await.unwrap();
    let crippled = Review::new(w.store.clone(), config, Schemes::builtin());
    let a = w.actor(w.gb, "a", UserRole::Analyst).await;
    let item = crippled.next_item(&a, NOW).await.unwrap().unwrap();
    assert!(crippled.vote(&a, item, &csam(), NOW).await.is_err());
    CrashedDecision {
        w,
        crippled,
        item,
        sha,
    }
}

async fn interrupted_decisions_are_finished_later(backend: Backend) {
    let CrashedDecision { w, sha, .. } = crashed_decision(backend, 11).await;
    assert_eq!(
        w.store
            .review_desk()
            .unapplied_decisions()
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches_of(&w, &sha).await.is_empty());
    // Inside the grace the request that made the decision may still be applying it.
    let early = w.review.apply_pending(NOW + 1).await.unwrap();
    assert!(early.applied.is_empty() && early.failed.is_empty() && early.held.is_empty());
    let later = NOW + aranea_review::PENDING_DECISION_GRACE_MS;
    assert_eq!(
        w.review.apply_pending(later).await.unwrap().applied.len(),
        1
    );
    assert_eq!(matches_of(&w, &sha).await.len(), 1);
    assert_eq!(bank_hits(&w, &sha), 1);
    assert!(
        w.review
            .apply_pending(later)
            .await
            .unwrap()
            .applied
            .is_empty()
    );
}

/// A decision that cannot be applied holds back the appeal that replaced it: applied first,
/// the appeal would find no entries to disable, and the decision applied after it would
/// bank the media the appeal cleared.
async fn a_failing_decision_holds_back_the_appeal_on_its_item(backend: Backend) {
    let CrashedDecision {
        w,
        crippled,
        item,
        sha,
    } = crashed_decision(backend, 12).await;
    let senior = w.actor(w.gb, "senior", UserRole::SeniorAnalyst).await;
    assert!(
        crippled
            .reopen(
                &senior,
                item,
                &Classification::not_relevant(),
                "appeal",
                NOW + 1
            )
            .await
            .is_err()
    );
    let decisions = w.store.review_desk().decisions_on(item).await.unwrap();
    let ids: Vec<_> = decisions.iter().map(|d| d.id).collect();
    assert_eq!(ids.len(), 2);
    let later = NOW + 1 + aranea_review::PENDING_DECISION_GRACE_MS;
    let stuck = crippled.apply_pending(later).await.unwrap();
    assert!(stuck.applied.is_empty());
    assert_eq!(
        stuck.failed.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ids[..1]
    );
    assert_eq!(stuck.held, ids[1..]);
    let done = w.review.apply_pending(later).await.unwrap();
    assert_eq!(done.applied, ids, "in the order they were made");
    assert_eq!(bank_hits(&w, &sha), 0, "the appeal's outcome stands");
    // The decision's match was recorded when it was applied, and withdrawn by the appeal.
    assert_eq!(matches_of(&w, &sha).await.len(), 1);
    assert_eq!(
        w.store
            .review_desk()
            .withdrawn_matches()
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(w.store.review_desk().is_negative(&sha).await.unwrap());
}

/// An appeal made while the decision it replaces is still unapplied (a crash, a failed bank
/// write) carries that decision out first: applied alone, the appeal would find nothing to
/// undo, and the decision, finished later, would bank the media the appeal cleared.
async fn an_appeal_carries_out_the_unapplied_decision_it_replaces_first(backend: Backend) {
    let CrashedDecision { w, item, sha, .. } = crashed_decision(backend, 13).await;
    let senior = w.actor(w.gb, "senior", UserRole::SeniorAnalyst).await;
    w.review
        .reopen(
            &senior,
            item,
            &Classification::not_relevant(),
            "appeal",
            NOW + 1,
        )
        .await
        .unwrap();
    let desk = w.store.review_desk();
    assert!(desk.unapplied_decisions().await.unwrap().is_empty());
    let later = NOW + 1 + aranea_review::PENDING_DECISION_GRACE_MS;
    let pending = w.review.apply_pending(later).await.unwrap();
    assert!(
        pending.applied.is_empty() && pending.failed.is_empty(),
        "{pending:?}"
    );
    assert_eq!(bank_hits(&w, &sha), 0, "the appeal's outcome stands");
    assert!(desk.is_negative(&sha).await.unwrap());
    assert_eq!(matches_of(&w, &sha).await.len(), 1);
    assert_eq!(desk.withdrawn_matches().await.unwrap().len(), 1);
}

/// Live bank hits of the media's SHA-256 as (bank name, classification).
fn live_hits(w: &World, sha: &[u8; 32]) -> Vec<(String, Option<String>)> {
    let banks = w.banks.lock().unwrap();
    let signal = Signal::from_bytes(SignalType::Sha256, sha).unwrap();
    let live = banks.live().load();
    live.match_signal(&signal, &BankFilter::All)
        .hits
        .iter()
        .map(|h| {
            let entry = banks.state().entry(h.entry).unwrap();
            let bank = banks.state().bank(entry.bank).unwrap().spec.name.clone();
            (bank, entry.classification.as_ref().map(|c| c.to_string()))
        })
        .collect()
}

async fn appeal_to_another_category_reclassifies_entries_and_matches(backend: Backend) {
    let config = ReviewConfig {
        consensus_votes: 1,
        ..ReviewConfig::default()
    };
    let w = World::with_config(backend, config).await;
    let sha = w
        .queue_photo(5, &["https://one.example/a", "https://two.example/b"])
        .await;
    w.review.intake(NOW).await.unwrap();
    let a = w.actor(w.gb, "a", UserRole::Analyst).await;
    let senior = w.actor(w.gb, "senior", UserRole::SeniorAnalyst).await;
    let item = w.review.next_item(&a, NOW).await.unwrap().unwrap();
    w.review.vote(&a, item, &csam(), NOW).await.unwrap();
    let standing =
        |classification: &str| vec![classification.to_string(), classification.to_string()];
    let classes = |m: Vec<(i64, i64, String)>| m.into_iter().map(|(_, _, c)| c).collect::<Vec<_>>();
    let desk = w.store.review_desk();
    assert_eq!(
        classes(desk.standing_matches(&sha).await.unwrap()),
        standing("csam")
    );

    let first_bank = live_hits(&w, &sha)[0].0.clone();
    let harmful = Classification::new("7-10", "none", true, false).unwrap();
    let steps = [
        (harmful.clone(), "harmful-abusive-material"),
        (csam(), "csam"),
        (
            Classification::new("3-6", "A", false, false).unwrap(),
            "csam",
        ),
        (harmful, "harmful-abusive-material"),
    ];
    for (i, (classification, expected)) in steps.into_iter().enumerate() {
        let t = NOW + 1 + i as i64;
        w.review
            .reopen(&senior, item, &classification, "reclassified on appeal", t)
            .await
            .unwrap();
        let hits = live_hits(&w, &sha);
        assert_eq!(hits.len(), 1, "step {i}: one live entry, got {hits:?}");
        assert_eq!(hits[0].1.as_deref(), Some(expected), "step {i}: {hits:?}");
        assert_eq!(
            hits[0].0, first_bank,
            "step {i}: banked again in the same bank"
        );
        assert_eq!(
            classes(desk.standing_matches(&sha).await.unwrap()),
            standing(expected),
            "step {i}: every sighting matches under the standing category only"
        );
        let decision = desk.standing_decision(item).await.unwrap().unwrap();
        assert_eq!(decision.classification, expected);
        assert!(decision.applied_at.is_some());
    }
    let banks = w.banks.lock().unwrap();
    let names: Vec<&str> = banks
        .state()
        .banks()
        .iter()
        .map(|b| b.spec.name.as_str())
        .collect();
    assert_eq!(names, [first_bank.as_str()], "no bank of an appeal's own");
    let bank = banks.bank_id(&first_bank).unwrap();
    let mut kept = 0;
    banks
        .state()
        .for_each_entry(&mut |e| {
            kept += usize::from(e.bank == bank && e.signal.signal_type() == SignalType::Sha256);
            Ok(())
        })
        .unwrap();
    // The first decision and the three steps that changed the category each banked one.
    assert_eq!(kept, 4, "every banking decision's entry stays on record");
}

async fn racing_analysts_are_counted_or_refused(backend: Backend) {
    let w = World::new(backend).await;
    let mut analysts = Vec::new();
    for i in 0..8 {
        let hotline = if i % 2 == 0 { w.gb } else { w.ca };
        analysts.push(w.actor(hotline, &format!("r{i}"), UserRole::Analyst).await);
    }
    for round in 0..4 {
        w.queue_photo(20 + round, &["https://race.example/p"]).await;
        w.review.intake(NOW).await.unwrap();
        let mut item = None;
        for a in &analysts {
            item = Some(w.review.next_item(a, NOW).await.unwrap().unwrap());
        }
        let item = item.unwrap();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(analysts.len()));
        let mut tasks = Vec::new();
        for (i, a) in analysts.iter().cloned().enumerate() {
            let (review, start) = (w.review.clone(), start.clone());
            // Odd rounds have one dissenter among the racers.
            let classification = if round % 2 == 1 && i == 5 {
                Classification::not_relevant()
            } else {
                csam()
            };
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                review.vote(&a, item, &classification, NOW).await
            }));
        }
        let (mut recorded, mut decided, mut disputed) = (0, 0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(VoteOutcome::Recorded) => recorded += 1,
                Ok(VoteOutcome::Decided { .. }) => decided += 1,
                Ok(VoteOutcome::Disputed) => disputed += 1,
                Err(ReviewError::NotOpen(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let votes = w.store.review_desk().votes_on(item).await.unwrap();
        assert_eq!(
            votes.len(),
            recorded + decided + disputed,
            "round {round}: every recorded vote was answered as counted"
        );
        assert_eq!(decided + disputed, 1, "round {round}: settled once");
        let state = w
            .store
            .review_desk()
            .item(item)
            .await
            .unwrap()
            .unwrap()
            .state;
        let agree = votes.iter().all(|v| v.facts == votes[0].facts);
        if state == ItemState::Decided {
            assert!(agree, "round {round}: decided over a recorded dissent");
            assert_eq!(votes.len(), 3, "round {round}: votes after the decision");
        } else {
            assert_eq!(state, ItemState::Disputed);
            assert!(!agree, "round {round}: disputed without a dissent");
        }
    }
}

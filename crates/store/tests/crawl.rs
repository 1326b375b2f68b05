//! The crawler's read-only questions (`crawl_facts`) on both back-ends: matches on a page,
//! unmatched media on a page, media at a URL, attempts under a path prefix, queued work.

#[macro_use]
mod common;

use aranea_store::{
    BankMatch, Completion, FetchOutcome, NewSighting, PageSettlement, Priority, Store, StoreError,
    TimedMatch, UrlId, UrlNext, UrlState,
};
use common::leased::{lease, photo, seen};
use common::{NOW, TestDb, url};

contract_tests!(
    a_page_matches_once_any_media_on_it_matched,
    attempts_under_a_prefix_and_queued_work_are_counted,
    media_sighting_and_timed_matches_are_recorded_together_once,
    a_page_and_its_media_complete_in_one_call,
    a_pages_media_and_their_completions_are_written_together_or_not_at_all,
    pages_of_several_leases_settle_in_one_call_each_all_or_nothing,
    a_batch_larger_than_one_statement_enqueues_every_url_and_embed_once,
    completions_written_together_keep_each_urls_own_outcome,
);

async fn sight(store: &Store, seed: u8, at: UrlId, page: UrlId) -> aranea_store::SightingId {
    store.media().record(&photo(seed), NOW).await.unwrap();
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
    let leased = lease(&store, 1).await;
    let lease = leased.lease("b.example");
    for u in leased.urls.iter().filter(|u| u.url.contains("/calendar/")) {
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

async fn media_sighting_and_timed_matches_are_recorded_together_once(db: &TestDb) {
    let store = db.open().await;
    let done = store
        .frontier()
        .enqueue_urls(
            &[url("v.example", "/page"), url("v.example", "/clip.mp4")],
            NOW,
        )
        .await
        .unwrap();
    let (page, clip) = (done[0].id, done[1].id);
    let mut record = photo(9);
    record.kind = "mp4".into();
    let sighting = NewSighting {
        media_sha256: [9; 32],
        url: clip,
        page: Some(page),
        member_path: None,
        seen_at: NOW,
        server_ip: Some("127.0.0.9".into()),
    };
    let hit = |entry: i64, signal: &str| BankMatch {
        bank_id: 1,
        bank_name: "videos".into(),
        entry_id: entry,
        signal_type: signal.into(),
        distance: 0,
        classification: "csam".into(),
    };
    let matches = [
        TimedMatch {
            hit: hit(1, "video_md5"),
            frame_ms: None,
        },
        TimedMatch {
            hit: hit(2, "pdq"),
            frame_ms: Some(2_000),
        },
    ];
    let recorder = store.media();
    let id = recorder
        .record_seen(&record, &sighting, &matches, NOW)
        .await
        .unwrap()
        .sighting;
    // Again, later: the same sighting, no duplicate match, last-seen times move.
    let again = recorder
        .record_seen(&record, &sighting, &matches, NOW + 5)
        .await
        .unwrap()
        .sighting;
    assert_eq!(id, again);
    let mut recorded = recorder.timed_matches_of(id).await.unwrap();
    recorded.sort_by_key(|m| m.hit.entry_id);
    assert_eq!(recorded, matches.to_vec());
    assert_eq!(recorder.matches_of(id).await.unwrap().len(), 2);
    let row = recorder.get(&[9; 32]).await.unwrap().unwrap();
    assert_eq!(
        (row.first_seen, row.last_seen, row.record.kind.as_str()),
        (NOW, NOW + 5, "mp4")
    );
    assert!(store.crawl_facts().page_has_match(page).await.unwrap());
    // A refused field writes nothing at all.
    let bad = [TimedMatch {
        hit: hit(3, ""),
        frame_ms: None,
    }];
    let mut other = photo(10);
    other.kind = "mp4".into();
    let elsewhere = NewSighting {
        media_sha256: [10; 32],
        ..sighting.clone()
    };
    assert!(
        recorder
            .record_seen(&other, &elsewhere, &bad, NOW)
            .await
            .is_err()
    );
    assert!(recorder.get(&[10; 32]).await.unwrap().is_none());
}

async fn a_page_and_its_media_complete_in_one_call(db: &TestDb) {
    let store = db.open().await;
    store
        .frontier()
        .enqueue_urls(
            &[url("c.example", "/page"), url("c.example", "/1.jpg")],
            NOW,
        )
        .await
        .unwrap();
    let leased = lease(&store, 1).await;
    let (lease, urls) = (leased.lease("c.example"), &leased.urls);
    assert_eq!(urls.len(), 2);
    let fetched = FetchOutcome::fetched(200, 10, UrlNext::Done);
    let batch: Vec<(UrlId, &FetchOutcome)> = urls.iter().map(|u| (u.id, &fetched)).collect();
    let done = store
        .frontier()
        .complete_urls(lease, &batch, NOW)
        .await
        .unwrap();
    assert_eq!(done, vec![Completion::Recorded, Completion::Recorded]);
    for u in urls {
        let record = store.frontier().url(u.id).await.unwrap().unwrap();
        assert_eq!(record.state, UrlState::Done);
        assert_eq!(store.frontier().fetches(u.id).await.unwrap().len(), 1);
    }
    // Repeating is harmless and records no second fetch.
    let again = store
        .frontier()
        .complete_urls(lease, &batch, NOW)
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![Completion::AlreadyRecorded, Completion::AlreadyRecorded]
    );
    assert_eq!(store.frontier().fetches(urls[0].id).await.unwrap().len(), 1);
}

async fn a_pages_media_and_their_completions_are_written_together_or_not_at_all(db: &TestDb) {
    let store = db.open().await;
    store
        .frontier()
        .enqueue_urls(
            &[
                url("s.example", "/page"),
                url("s.example", "/1.jpg"),
                url("s.example", "/2.jpg"),
            ],
            NOW,
        )
        .await
        .unwrap();
    let leased = lease(&store, 1).await;
    let lease = leased.lease("s.example");
    let id = |path: &str| leased.id(&format!("s.example{path}"));
    let (page, one, two) = (id("/page"), id("/1.jpg"), id("/2.jpg"));
    let hit = TimedMatch {
        hit: BankMatch {
            bank_id: 1,
            bank_name: "known".into(),
            entry_id: 7,
            signal_type: "pdq".into(),
            distance: 3,
            classification: "csam".into(),
        },
        frame_ms: None,
    };
    let fetched = FetchOutcome::fetched(200, 10, UrlNext::Done);
    let batch = [
        seen(21, one, page, vec![hit.clone()]),
        seen(22, two, page, Vec::new()),
    ];
    let done = [(one, &fetched), (two, &fetched)];

    // A refused field in one media: nothing written, no URL completed.
    let mut refused = batch.clone();
    refused[1].media.kind = String::new();
    assert!(
        store
            .frontier()
            .settle_page(lease, &refused, &done, NOW)
            .await
            .is_err()
    );
    assert!(store.media().get(&[21; 32]).await.unwrap().is_none());
    let record = store.frontier().url(one).await.unwrap().unwrap();
    assert_ne!(record.state, UrlState::Done);

    let settled = store
        .frontier()
        .settle_page(lease, &batch, &done, NOW)
        .await
        .unwrap();
    assert_eq!(settled.sightings.len(), 2);
    assert_eq!(
        settled.completions,
        vec![Completion::Recorded, Completion::Recorded]
    );
    assert_eq!(
        store
            .media()
            .matches_of(settled.sightings[0])
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.crawl_facts().page_has_match(page).await.unwrap());
    for url in [one, two] {
        let record = store.frontier().url(url).await.unwrap().unwrap();
        assert_eq!(record.state, UrlState::Done);
    }
    assert_ne!(
        store.frontier().url(page).await.unwrap().unwrap().state,
        UrlState::Done,
        "the page itself completes later"
    );
    // Again: the same sightings, no second fetch or match.
    let again = store
        .frontier()
        .settle_page(lease, &batch, &done, NOW + 1)
        .await
        .unwrap();
    assert_eq!(again.sightings, settled.sightings);
    assert_eq!(
        again.completions,
        vec![Completion::AlreadyRecorded, Completion::AlreadyRecorded]
    );
    assert_eq!(store.frontier().fetches(one).await.unwrap().len(), 1);

    // A lost lease writes nothing.
    store.frontier().release(lease, NOW).await.unwrap();
    let later = store
        .frontier()
        .claim_hosts("w2", 1, 60_000, NOW + 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    let lost = store
        .frontier()
        .settle_page(lease, &[seen(23, page, page, Vec::new())], &[], NOW + 10)
        .await;
    assert!(
        matches!(lost, Err(StoreError::LeaseLost { .. })),
        "{lost:?}"
    );
    assert!(store.media().get(&[23; 32]).await.unwrap().is_none());
}

async fn pages_of_several_leases_settle_in_one_call_each_all_or_nothing(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    frontier
        .enqueue_urls(
            &[
                url("g1.example", "/page"),
                url("g1.example", "/1.jpg"),
                url("g2.example", "/page"),
                url("g3.example", "/page"),
            ],
            NOW,
        )
        .await
        .unwrap();
    let leased = lease(&store, 10).await;
    assert_eq!(leased.hosts.len(), 3);
    let lease = |host: &str| leased.lease(host).clone();
    let id = |u: &str| leased.id(u);
    let fetched = FetchOutcome::fetched(200, 10, UrlNext::Done);
    let photo = seen(
        31,
        id("g1.example/1.jpg"),
        id("g1.example/page"),
        Vec::new(),
    );
    let first = PageSettlement {
        lease: lease("g1.example"),
        seen: vec![photo],
        completions: vec![
            (id("g1.example/1.jpg"), fetched.clone()),
            (id("g1.example/page"), fetched.clone()),
        ],
        links: vec![url("g1.example", "/next"), url("g3.example", "/page")],
        raise_known_to: Some(Priority::MatchLink),
        // Nothing on it matched: it stays completed.
        requeue_if_matched: Some((id("g1.example/page"), Priority::MatchLink)),
    };
    // The second page's lease is lost before the batch: it alone fails.
    let lost = lease("g2.example");
    frontier.release(&lost, NOW).await.unwrap();
    frontier
        .claim_hosts("other", 10, 60_000, NOW + 1)
        .await
        .unwrap();
    let second = PageSettlement {
        lease: lost,
        seen: Vec::new(),
        completions: vec![(id("g2.example/page"), fetched.clone())],
        links: vec![url("g2.example", "/never")],
        raise_known_to: None,
        requeue_if_matched: None,
    };
    // The third refuses a field: it alone fails too.
    let third = PageSettlement {
        lease: lease("g3.example"),
        seen: Vec::new(),
        completions: vec![(id("g3.example/page"), fetched.clone())],
        links: vec![url("g3.example", "/bad\0byte")],
        raise_known_to: None,
        requeue_if_matched: None,
    };
    // The fourth fails only after writing its media and link (it completes a URL of another
    // lease): those writes are undone with it.
    let fourth = PageSettlement {
        lease: lease("g3.example"),
        seen: vec![seen(
            32,
            id("g3.example/page"),
            id("g3.example/page"),
            Vec::new(),
        )],
        completions: vec![(id("g1.example/1.jpg"), fetched.clone())],
        links: vec![url("g3.example", "/undone")],
        raise_known_to: None,
        requeue_if_matched: None,
    };
    let results = frontier
        .settle_pages(&[first, second, third, fourth], NOW + 2)
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    let settled = results[0].as_ref().unwrap();
    assert_eq!(settled.page.sightings.len(), 1);
    assert_eq!(
        settled.page.completions,
        vec![Completion::Recorded, Completion::Recorded]
    );
    assert_eq!(settled.links.len(), 2);
    assert!(settled.links[0].inserted && !settled.links[1].inserted);
    assert!(!settled.requeued);
    assert!(matches!(results[1], Err(StoreError::LeaseLost { .. })));
    assert!(results[2].is_err());
    assert!(
        matches!(results[3], Err(StoreError::UrlNotInLease { .. })),
        "{:?}",
        results[3]
    );
    // Written: the first page, its media, its new link; the known link raised.
    for u in ["g1.example/page", "g1.example/1.jpg"] {
        let record = frontier.url(id(u)).await.unwrap().unwrap();
        assert_eq!(record.state, UrlState::Done, "{u}");
    }
    assert!(store.media().get(&[31; 32]).await.unwrap().is_some());
    let next = frontier.url_id("https://g1.example/next").await.unwrap();
    assert!(next.is_some());
    let raised = frontier.url(id("g3.example/page")).await.unwrap().unwrap();
    assert_eq!(raised.priority, Priority::MatchLink);
    // Not written: anything of the second, third and fourth pages.
    for never in ["https://g2.example/never", "https://g3.example/undone"] {
        assert!(frontier.url_id(never).await.unwrap().is_none(), "{never}");
    }
    assert!(store.media().get(&[32; 32]).await.unwrap().is_none());
    for u in ["g2.example/page", "g3.example/page"] {
        let record = frontier.url(id(u)).await.unwrap().unwrap();
        assert_ne!(record.state, UrlState::Done, "{u}");
    }
    let host = frontier
        .host_by_key("https://g1.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(host.pages_fetched, 2);
}

/// The frontier writes a batch in multi-row statements of at most 500 URLs: a batch of
/// 1,200 embeds of one page (two of them known, one twice across a statement boundary) and
/// a few URLs of another host still gives one answer per input, each URL new exactly once,
/// and every embed recorded.
async fn a_batch_larger_than_one_statement_enqueues_every_url_and_embed_once(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let page = frontier
        .enqueue_urls(&[url("a.example", "/page")], NOW)
        .await
        .unwrap()[0]
        .id;
    let known = frontier
        .enqueue_urls(&[url("a.example", "/m/5"), url("a.example", "/m/700")], NOW)
        .await
        .unwrap();
    let embed = |path: String| aranea_store::NewUrl {
        source: aranea_store::UrlSource::Embed,
        parent: Some(page),
        ..url("a.example", &path)
    };
    let mut batch: Vec<_> = (0..1200).map(|i| embed(format!("/m/{i}"))).collect();
    batch.push(embed("/m/3".to_owned()));
    batch.extend((0..10).map(|i| url("b.example", &format!("/{i}"))));
    let done = frontier.enqueue_urls(&batch, NOW).await.unwrap();
    assert_eq!(done.len(), batch.len());
    let new: Vec<usize> = (0..done.len()).filter(|&i| !done[i].inserted).collect();
    assert_eq!(new, [5, 700, 1200], "known URLs and the repeat are not new");
    assert_eq!(done[5].id, known[0].id);
    assert_eq!(done[700].id, known[1].id);
    assert_eq!(
        done[1200].id, done[3].id,
        "the repeat has the first one's id"
    );
    let mut ids: Vec<i64> = done.iter().take(1200).map(|d| d.id.get()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1200);
    for (i, d) in done.iter().enumerate() {
        let record = frontier.url(d.id).await.unwrap().unwrap();
        assert_eq!(record.url, batch[i].url);
    }
    let a = frontier.host(done[0].host_id).await.unwrap().unwrap();
    assert_eq!(a.urls_known, 1 + 2 + 1198);
    let b = frontier.host(done[1201].host_id).await.unwrap().unwrap();
    assert_eq!((b.key.as_str(), b.urls_known), ("https://b.example", 10));
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.urls, 1 + 1200 + 10);
    // Every embed of the page, new or known, first or last statement: media recorded at
    // the URL is sighted on the page too.
    for (seed, i) in [(1_u8, 0_usize), (2, 5), (3, 700), (4, 1199), (5, 3)] {
        store.media().record(&photo(seed), NOW).await.unwrap();
        let recorded = store
            .media()
            .record_seen(
                &photo(seed),
                &NewSighting {
                    media_sha256: [seed; 32],
                    url: done[i].id,
                    page: None,
                    member_path: None,
                    seen_at: NOW,
                    server_ip: None,
                },
                &[],
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(recorded.also_on, [page], "embed of URL {i}");
    }
}

/// Completions are written in multi-row statements: each URL still gets its own outcome
/// (state, status, validators, fetch row), a URL listed twice is recorded once, and one
/// not fetched gets no fetch row.
async fn completions_written_together_keep_each_urls_own_outcome(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let paths = ["/ok", "/gone", "/retry", "/skip"];
    let batch: Vec<_> = paths.iter().map(|p| url("a.example", p)).collect();
    frontier.enqueue_urls(&batch, NOW).await.unwrap();
    let held = lease(&store, 1).await;
    let ok = FetchOutcome {
        etag: Some("\"e1\"".into()),
        last_modified: Some("yesterday".into()),
        server_ip: Some("192.0.2.7".into()),
        duration_ms: 12,
        ..FetchOutcome::fetched(200, 1234, UrlNext::Done)
    };
    let gone = FetchOutcome::fetched(404, 9, UrlNext::Done);
    let retry = FetchOutcome::failed("connection refused", UrlNext::RetryAt(NOW + 5_000));
    let skip = FetchOutcome::not_fetched(UrlNext::Skipped);
    let id = |p: &str| held.id(&format!("a.example{p}"));
    let done = frontier
        .complete_urls(
            held.lease("a.example"),
            &[
                (id("/ok"), &ok),
                (id("/gone"), &gone),
                (id("/ok"), &gone),
                (id("/retry"), &retry),
                (id("/skip"), &skip),
            ],
            NOW + 10,
        )
        .await
        .unwrap();
    assert_eq!(
        done,
        [
            Completion::Recorded,
            Completion::Recorded,
            Completion::AlreadyRecorded,
            Completion::Recorded,
            Completion::Recorded
        ]
    );
    let mut records = Vec::new();
    for p in paths {
        records.push(frontier.url(id(p)).await.unwrap().unwrap());
    }
    let mut records = records.into_iter();
    let mut record = || records.next().unwrap();
    let r = record();
    assert_eq!(
        (r.state, r.last_status, r.attempts),
        (UrlState::Done, Some(200), 1)
    );
    assert_eq!(
        (r.etag.as_deref(), r.last_modified.as_deref()),
        (Some("\"e1\""), Some("yesterday"))
    );
    assert_eq!(r.last_fetched_at, Some(NOW + 10));
    let r = record();
    assert_eq!(
        (r.state, r.last_status, r.etag),
        (UrlState::Done, Some(404), None)
    );
    let r = record();
    assert_eq!(
        (r.state, r.next_fetch_at, r.last_status),
        (UrlState::Queued, NOW + 5_000, None)
    );
    assert_eq!(r.attempts, 1);
    let r = record();
    assert_eq!(
        (r.state, r.attempts, r.last_fetched_at),
        (UrlState::Skipped, 0, None)
    );
    let fetches = frontier.fetches(id("/ok")).await.unwrap();
    assert_eq!(fetches.len(), 1);
    assert_eq!(
        (fetches[0].status, fetches[0].bytes, fetches[0].duration_ms),
        (Some(200), 1234, 12)
    );
    assert_eq!(fetches[0].server_ip.as_deref(), Some("192.0.2.7"));
    let fetches = frontier.fetches(id("/retry")).await.unwrap();
    assert_eq!(fetches[0].error.as_deref(), Some("connection refused"));
    assert_eq!(frontier.fetches(id("/gone")).await.unwrap()[0].bytes, 9);
    assert!(frontier.fetches(id("/skip")).await.unwrap().is_empty());
    let host = frontier
        .host(held.lease("a.example").host_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(host.pages_fetched, 3);
}

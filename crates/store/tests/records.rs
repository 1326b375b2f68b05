//! Reports, media, sightings, matches and the review queue on both back-ends: idempotent
//! writes and hostile input refused with typed errors.

#[macro_use]
mod common;

use aranea_store::{
    BankMatch, FetchOutcome, MediaRecord, NewReport, NewSighting, NewUrl, Priority, ReportStatus,
    ReviewReason, ReviewState, Store, StoreError, UrlNext, UrlSource,
};
use common::{NOW, TestDb};

contract_tests!(
    reports_round_trip_and_move_through_statuses,
    media_is_recorded_once_and_touched_after,
    sightings_and_matches_are_idempotent,
    review_queue_holds_one_entry_per_media,
    hostile_text_is_refused_with_typed_errors,
    long_and_odd_but_valid_text_round_trips,
);

fn media(seed: u8) -> MediaRecord {
    MediaRecord {
        sha256: [seed; 32],
        md5: [seed ^ 0x55; 16],
        sha1: [seed ^ 0xaa; 20],
        pdq: Some([seed.wrapping_add(1); 32]),
        pdq_quality: Some(100),
        size: 12_345,
        kind: "jpeg".into(),
        width: Some(640),
        height: Some(480),
    }
}

async fn two_urls(store: &Store) -> (aranea_store::UrlId, aranea_store::UrlId) {
    let batch = [
        NewUrl::new(
            "https://a.example/page",
            "https://a.example",
            "a.example",
            UrlSource::Seed,
            Priority::Reported,
            NOW,
        ),
        NewUrl::new(
            "https://a.example/img.jpg",
            "https://a.example",
            "a.example",
            UrlSource::Embed,
            Priority::Reported,
            NOW,
        ),
    ];
    let ids = store.frontier().enqueue_urls(&batch, NOW).await.unwrap();
    (ids[0].id, ids[1].id)
}

async fn reports_round_trip_and_move_through_statuses(db: &TestDb) {
    let store = db.open().await;
    let reports = store.reports();
    let report = NewReport {
        url: "http://reported.example/x?y=1".into(),
        reporter: "public-form".into(),
        hotline: "hotline-nl".into(),
        notes: String::new(),
    };
    let id = reports.add(&report, NOW).await.unwrap();
    let second = reports.add(&report, NOW + 1).await.unwrap();
    assert_ne!(id, second, "two reports of one URL are two reports");
    let got = reports.get(id).await.unwrap().unwrap();
    assert_eq!(got.url, report.url);
    assert_eq!(got.reporter, "public-form");
    assert_eq!(got.hotline, "hotline-nl");
    assert_eq!(got.reported_at, NOW);
    assert_eq!(got.status, ReportStatus::Received);
    reports.set_status(id, ReportStatus::Queued).await.unwrap();
    let received = reports
        .with_status(ReportStatus::Received, 10)
        .await
        .unwrap();
    assert_eq!(received.iter().map(|r| r.id).collect::<Vec<_>>(), [second]);
    assert_eq!(
        reports.get(id).await.unwrap().unwrap().status,
        ReportStatus::Queued
    );
    assert!(matches!(
        reports
            .set_status(
                aranea_store::ReportId::from_raw(99_999),
                ReportStatus::Crawled
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    // A URL enqueued for the report keeps the link to it.
    let mut seed = NewUrl::new(
        "http://reported.example/x?y=1",
        "http://reported.example",
        "reported.example",
        UrlSource::Report,
        Priority::Reported,
        NOW,
    );
    seed.report_id = Some(id);
    let url = store.frontier().enqueue_urls(&[seed], NOW).await.unwrap()[0].id;
    assert_eq!(
        store.frontier().url(url).await.unwrap().unwrap().report_id,
        Some(id)
    );
}

async fn media_is_recorded_once_and_touched_after(db: &TestDb) {
    let store = db.open().await;
    let m = media(7);
    assert!(store.media().record(&m, NOW).await.unwrap());
    assert!(!store.media().record(&m, NOW + 100).await.unwrap());
    assert!(
        !store.media().record(&m, NOW + 50).await.unwrap(),
        "older time: no change"
    );
    let got = store.media().get(&m.sha256).await.unwrap().unwrap();
    assert_eq!(got.record, m);
    assert_eq!((got.first_seen, got.last_seen), (NOW, NOW + 100));
    let mut no_pdq = media(8);
    no_pdq.pdq = None;
    no_pdq.pdq_quality = None;
    no_pdq.width = None;
    no_pdq.height = None;
    store.media().record(&no_pdq, NOW).await.unwrap();
    assert_eq!(
        store
            .media()
            .get(&no_pdq.sha256)
            .await
            .unwrap()
            .unwrap()
            .record,
        no_pdq
    );
    assert_eq!(store.media().get(&[0; 32]).await.unwrap(), None);
    assert_eq!(store.counts().await.unwrap().media, 2);
}

async fn sightings_and_matches_are_idempotent(db: &TestDb) {
    let store = db.open().await;
    let (page, img) = two_urls(&store).await;
    let m = media(1);
    store.media().record(&m, NOW).await.unwrap();
    let sighting = NewSighting {
        media_sha256: m.sha256,
        url: img,
        page: Some(page),
        member_path: None,
        seen_at: NOW,
        server_ip: Some("127.0.0.5".into()),
    };
    let id = store.media().record_sighting(&sighting).await.unwrap();
    let later = NewSighting {
        seen_at: NOW + 1_000,
        ..sighting.clone()
    };
    assert_eq!(store.media().record_sighting(&later).await.unwrap(), id);
    assert_eq!(store.media().record_sighting(&sighting).await.unwrap(), id);
    // The same bytes fetched directly, and inside an archive, are other sightings.
    let direct = NewSighting {
        page: None,
        ..sighting.clone()
    };
    let member = NewSighting {
        member_path: Some("photos/2024/a.jpg".into()),
        ..sighting.clone()
    };
    let direct_id = store.media().record_sighting(&direct).await.unwrap();
    let member_id = store.media().record_sighting(&member).await.unwrap();
    assert_eq!(
        store.media().record_sighting(&member).await.unwrap(),
        member_id
    );
    assert!(direct_id != id && member_id != id && member_id != direct_id);
    let all = store.media().sightings_of(&m.sha256).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].id, id);
    assert_eq!(
        (all[0].first_seen_at, all[0].last_seen_at),
        (NOW, NOW + 1_000)
    );
    assert_eq!(all[0].server_ip.as_deref(), Some("127.0.0.5"));
    assert_eq!(all[1].page, img, "direct fetch: the page is the URL itself");
    assert_eq!(all[2].member_path.as_deref(), Some("photos/2024/a.jpg"));

    let hits = vec![
        BankMatch {
            bank_id: 2,
            bank_name: "test-known".into(),
            entry_id: 41,
            signal_type: "pdq".into(),
            distance: 12,
            classification: "csam".into(),
        },
        BankMatch {
            bank_id: 1,
            bank_name: "md5-list".into(),
            entry_id: 7,
            signal_type: "md5".into(),
            distance: 0,
            classification: "csam".into(),
        },
    ];
    assert_eq!(
        store.media().record_matches(id, &hits, NOW).await.unwrap(),
        2
    );
    assert_eq!(
        store
            .media()
            .record_matches(id, &hits, NOW + 5)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .media()
            .record_matches(id, &hits[..1], NOW)
            .await
            .unwrap(),
        0
    );
    let recorded = store.media().matches_of(id).await.unwrap();
    assert_eq!(
        recorded,
        vec![hits[1].clone(), hits[0].clone()],
        "nearest first"
    );
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.sightings, counts.matches), (3, 2));

    // A sighting of media never recorded is refused by the database, not stored.
    let unknown = NewSighting {
        media_sha256: [0xee; 32],
        ..sighting.clone()
    };
    assert!(matches!(
        store.media().record_sighting(&unknown).await,
        Err(StoreError::Database(_))
    ));
}

async fn review_queue_holds_one_entry_per_media(db: &TestDb) {
    let store = db.open().await;
    let (page, img) = two_urls(&store).await;
    let m = media(3);
    store.media().record(&m, NOW).await.unwrap();
    let sighting = store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: m.sha256,
            url: img,
            page: Some(page),
            member_path: None,
            seen_at: NOW,
            server_ip: None,
        })
        .await
        .unwrap();
    let review = store.review();
    assert!(
        review
            .enqueue(
                &m.sha256,
                Some(sighting),
                ReviewReason::OnMatchingPage,
                5,
                NOW
            )
            .await
            .unwrap()
    );
    assert!(
        !review
            .enqueue(&m.sha256, None, ReviewReason::Reported, 0, NOW + 1)
            .await
            .unwrap()
    );
    let entry = review.get(&m.sha256).await.unwrap().unwrap();
    assert_eq!(entry.reason, ReviewReason::OnMatchingPage);
    assert_eq!(entry.sighting, Some(sighting));
    assert_eq!((entry.priority, entry.created_at), (5, NOW));
    assert_eq!(entry.state, ReviewState::Pending);
    let other = media(4);
    store.media().record(&other, NOW).await.unwrap();
    review
        .enqueue(&other.sha256, None, ReviewReason::Reported, 1, NOW)
        .await
        .unwrap();
    let pending = review.with_state(ReviewState::Pending, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|e| e.media_sha256).collect::<Vec<_>>(),
        [other.sha256, m.sha256]
    );
    review
        .set_state(&other.sha256, ReviewState::InReview)
        .await
        .unwrap();
    assert_eq!(
        review
            .with_state(ReviewState::Pending, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        review.set_state(&[9; 32], ReviewState::Decided).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.counts().await.unwrap().review, 2);
    // Decided media leaves the backlog (the metric, the statistics page and the demo's line).
    review
        .set_state(&other.sha256, ReviewState::Decided)
        .await
        .unwrap();
    assert_eq!(store.counts().await.unwrap().review, 1);
}

async fn hostile_text_is_refused_with_typed_errors(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let huge = format!("https://a.example/{}", "a".repeat(1 << 20));
    let with_nul = "https://a.example/\0x";
    let make = |u: &str| {
        NewUrl::new(
            u,
            "https://a.example",
            "a.example",
            UrlSource::Link,
            Priority::Ordinary,
            NOW,
        )
    };
    assert!(matches!(
        frontier
            .enqueue_urls(&[make("https://a.example/ok"), make(&huge)], NOW)
            .await,
        Err(StoreError::TooLong { field: "URL", .. })
    ));
    assert!(matches!(
        frontier.enqueue_urls(&[make("")], NOW).await,
        Err(StoreError::Empty { field: "URL" })
    ));
    assert!(matches!(
        frontier.enqueue_urls(&[make(with_nul)], NOW).await,
        Err(StoreError::NulInText { field: "URL" })
    ));
    let mut bad_host = make("https://a.example/");
    bad_host.host_key = "h".repeat(10_000);
    assert!(matches!(
        frontier.enqueue_urls(&[bad_host], NOW).await,
        Err(StoreError::TooLong { .. })
    ));
    assert_eq!(
        store.counts().await.unwrap().urls,
        0,
        "a refused batch writes nothing"
    );
    assert!(matches!(
        frontier.url_id(&huge).await,
        Err(StoreError::TooLong { .. })
    ));

    let report = NewReport {
        url: "https://a.example/".into(),
        reporter: "r".into(),
        hotline: "h".into(),
        notes: "bad\0notes".into(),
    };
    assert!(matches!(
        store.reports().add(&report, NOW).await,
        Err(StoreError::NulInText { field: "notes" })
    ));
    // A report's URL is printed as one line (`aranea report show`): a line break, a carriage
    // return, an escape, DEL or a C1 control in it would forge or rewrite another line.
    for (url, code) in [
        ("https://a.example/a\nstatus: crawled", 0x0a),
        ("https://a.example/a\rstatus: crawled", 0x0d),
        ("https://a.example/\u{1b}[2J", 0x1b),
        ("https://a.example/\u{7f}", 0x7f),
        ("https://a.example/\u{85}", 0x85),
    ] {
        let forged = NewReport {
            url: url.into(),
            notes: String::new(),
            ..report.clone()
        };
        match store.reports().add(&forged, NOW).await {
            Err(StoreError::ControlInLine {
                field: "report URL",
                code: refused,
            }) => assert_eq!(refused, code, "{url:?}"),
            other => panic!("{url:?}: {other:?}"),
        }
    }
    assert_eq!(
        store.counts().await.unwrap().reports,
        0,
        "a refused report writes nothing"
    );
    let empty_reporter = NewReport {
        reporter: String::new(),
        notes: String::new(),
        ..report.clone()
    };
    assert!(matches!(
        store.reports().add(&empty_reporter, NOW).await,
        Err(StoreError::Empty { .. })
    ));

    assert!(matches!(
        frontier.claim_hosts("", 1, 1_000, NOW).await,
        Err(StoreError::Empty { .. })
    ));
    assert!(matches!(
        frontier.claim_hosts("w\0", 1, 1_000, NOW).await,
        Err(StoreError::NulInText { .. })
    ));
    assert!(matches!(
        frontier.claim_hosts("w", 0, 1_000, NOW).await,
        Err(StoreError::OutOfRange { .. })
    ));
    assert!(matches!(
        frontier.claim_hosts("w", 1, -5, NOW).await,
        Err(StoreError::OutOfRange { .. })
    ));

    let (page, img) = two_urls(&store).await;
    let m = media(9);
    store.media().record(&m, NOW).await.unwrap();
    let sighting = NewSighting {
        media_sha256: m.sha256,
        url: img,
        page: Some(page),
        member_path: Some("dir/\0evil.jpg".into()),
        seen_at: NOW,
        server_ip: None,
    };
    assert!(matches!(
        store.media().record_sighting(&sighting).await,
        Err(StoreError::NulInText { .. })
    ));
    let long_member = NewSighting {
        member_path: Some("d/".repeat(5_000)),
        ..sighting.clone()
    };
    assert!(matches!(
        store.media().record_sighting(&long_member).await,
        Err(StoreError::TooLong { .. })
    ));
    let mut bad_kind = media(10);
    bad_kind.kind = "jp\0eg".into();
    assert!(matches!(
        store.media().record(&bad_kind, NOW).await,
        Err(StoreError::NulInText { .. })
    ));

    // Server-controlled text in a fetch outcome (errors, validators) is made storable
    // rather than refused: the crawl must be able to record what went wrong.
    let lease = frontier.claim_hosts("w", 1, 60_000, NOW).await.unwrap()[0]
        .lease
        .clone();
    let handed = frontier.next_urls(&lease, 10, NOW).await.unwrap();
    let mut outcome = FetchOutcome::failed(
        &format!("bad header \0 {}", "é".repeat(5_000)),
        UrlNext::Failed,
    );
    outcome.etag = Some("e\0tag".into());
    outcome.last_modified = Some("x".repeat(100_000));
    frontier
        .complete_url(&lease, handed[0].id, &outcome, NOW)
        .await
        .unwrap();
    let fetch = &frontier.fetches(handed[0].id).await.unwrap()[0];
    let error = fetch.error.as_deref().unwrap();
    assert!(
        error.len() <= 2000 && !error.contains('\0') && error.starts_with("bad header \u{fffd}")
    );
    let record = frontier.url(handed[0].id).await.unwrap().unwrap();
    assert_eq!((record.etag, record.last_modified), (None, None));
}

async fn long_and_odd_but_valid_text_round_trips(db: &TestDb) {
    let store = db.open().await;
    // Longer than a PostgreSQL btree entry may be (~2.7 KB): the URL itself is not indexed.
    let long = format!("https://a.example/{}", "ß/".repeat(4_000));
    let odd = "https://a.example/\u{1F600}?q=\u{202E}'\";--".to_string();
    let batch = [&long, &odd].map(|u| {
        NewUrl::new(
            u,
            "https://a.example",
            "",
            UrlSource::Link,
            Priority::Ordinary,
            NOW,
        )
    });
    let ids = store.frontier().enqueue_urls(&batch, NOW).await.unwrap();
    assert!(ids.iter().all(|e| e.inserted));
    assert_eq!(
        store.frontier().url(ids[0].id).await.unwrap().unwrap().url,
        long
    );
    assert_eq!(
        store.frontier().url(ids[1].id).await.unwrap().unwrap().url,
        odd
    );
    assert_eq!(
        store.frontier().url_id(&long).await.unwrap(),
        Some(ids[0].id)
    );
    let notes = "x".repeat(60_000);
    let report = NewReport {
        url: odd.clone(),
        reporter: "r".into(),
        hotline: "h".into(),
        notes: notes.clone(),
    };
    let id = store.reports().add(&report, NOW).await.unwrap();
    assert_eq!(store.reports().get(id).await.unwrap().unwrap().notes, notes);
}

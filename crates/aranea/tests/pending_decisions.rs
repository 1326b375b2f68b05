//! What `aranea serve` does for the review service with no one acting: queued media becomes
//! review items, a decision whose consequences a crash cut short (committed, not yet banked)
//! is finished (its media becomes known in the bank, its sighting a match, its bytes leave
//! the vault), and media whose retention ended undecided is purged. Before, only
//! `Review::apply_pending` could finish such a decision and no command called it, only
//! `aranea vault purge` purged, and items formed only when an analyst asked for one.

#[path = "common/postgres.rs"]
mod postgres;
#[path = "common/process.rs"]
mod process;

use std::time::{Duration, Instant};

use aranea_review::{
    Actor, AuditActor, Classification, MediaVault, NewUserRequest, Review, ReviewConfig, Schemes,
    VaultSecretKey,
};
use aranea_store::{
    MediaRecord, NewHotline, NewSighting, NewUrl, Priority, ReviewReason, Store, UrlSource,
    UserRole,
};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
const PASSWORD: &str = "correct horse battery staple";
/// Long before the real clock, so the server's first look finds the decision past its grace
/// and the media's 30 days of retention over.
const QUEUED_AT: i64 = 1_700_000_000_000;

#[test]
fn serve_finishes_a_crashed_decision_and_purges_media_past_retention() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let db = format!("sqlite://{}", data.join("aranea.db").display());
    let key = VaultSecretKey::generate().unwrap();
    let key_file = data.join("vault.key");
    std::fs::write(&key_file, key.to_hex().as_bytes()).unwrap();
    let config = data.join("aranea.toml");
    std::fs::write(
        &config,
        format!(
            "[review]\nconsensus_votes = 1\nvault_public_key = \"{}\"\nvault_secret_key_file = {:?}\n",
            key.public_key().to_hex(),
            key_file.display().to_string()
        ),
    )
    .unwrap();
    let decided_photo = format!("{CORPUS}/img-0007.jpg");
    let (decided, undecided) = postgres::block_on(async {
        let store = Store::open(&db).await.unwrap();
        let decided = decide_without_banks(&store, key).await;
        let undecided = queue_for_review(&store, "img-0009.jpg").await;
        store.close().await;
        (decided, undecided)
    });

    let (mut server, _url) = process::serve(data, &db, &config);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (unapplied, retention) = postgres::block_on(async {
            let store = Store::open(&db).await.unwrap();
            let unapplied = store
                .review_desk()
                .unapplied_decisions()
                .await
                .unwrap()
                .len();
            let retention = purge_reason(&store, &undecided).await;
            store.close().await;
            (unapplied, retention)
        });
        if unapplied == 0 && retention.is_some() {
            assert_eq!(retention.as_deref(), Some("retention"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 30 s: {unapplied} decisions unapplied, the undecided media's purge: {retention:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = server.kill();
    let _ = server.wait();
    postgres::block_on(async {
        let store = Store::open(&db).await.unwrap();
        assert_eq!(
            purge_reason(&store, &decided).await.as_deref(),
            Some("decided"),
            "the decided media's bytes are purged by its decision"
        );
        let mut matches = 0;
        for sighting in store.media().sightings_of(&decided).await.unwrap() {
            matches += store.media().matches_of(sighting.id).await.unwrap().len();
        }
        assert_eq!(matches, 1, "its sighting became a match");
        assert!(
            store
                .review_desk()
                .item_of_media(&undecided)
                .await
                .unwrap()
                .is_some(),
            "the queued photo became a review item without anyone opening the queue"
        );
        store.close().await;
    });
    let found = process::aranea_ok(
        data,
        &db,
        &["bank", "match", "all", "--format", "json", &decided_photo],
    );
    assert!(
        found.contains("\"platform\"") && found.contains("\"csam\""),
        "the photo is known in the platform bank as csam: {found}"
    );
}

/// Queues corpus photo `file` for review as a crawl would (media, a sighting on a page, the
/// queue, the sealed bytes), at [`QUEUED_AT`].
async fn queue_for_review(store: &Store, file: &str) -> [u8; 32] {
    let bytes = std::fs::read(format!("{CORPUS}/{file}")).unwrap();
    let hashes = aranea_hash::hash_media(&bytes, &aranea_hash::Limits::default()).unwrap();
    let record = MediaRecord {
        sha256: hashes.sha256,
        md5: hashes.md5,
        sha1: hashes.sha1,
        pdq: hashes.pdq.as_ref().map(|p| *p.hash.as_bytes()),
        pdq_quality: hashes.pdq.as_ref().map(|p| p.quality),
        size: bytes.len() as u64,
        kind: "jpeg".into(),
        width: Some(1),
        height: Some(1),
    };
    store.media().record(&record, QUEUED_AT).await.unwrap();
    let page = "https://suspect.example/gallery";
    let media_url = format!("{page}/{file}");
    let new = |url: &str| {
        NewUrl::new(
            url,
            "https://suspect.example",
            "suspect.example",
            UrlSource::Link,
            Priority::Ordinary,
            QUEUED_AT,
        )
    };
    store
        .frontier()
        .enqueue_urls(&[new(page), new(&media_url)], QUEUED_AT)
        .await
        .unwrap();
    let frontier = store.frontier();
    let sighting = store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: hashes.sha256,
            url: frontier.url_id(&media_url).await.unwrap().unwrap(),
            page: frontier.url_id(page).await.unwrap(),
            member_path: None,
            seen_at: QUEUED_AT,
            server_ip: Some("192.0.2.7".into()),
        })
        .await
        .unwrap();
    store
        .review()
        .enqueue(
            &hashes.sha256,
            Some(sighting),
            ReviewReason::OnMatchingPage,
            1,
            QUEUED_AT,
        )
        .await
        .unwrap();
    // The default retention (30 days) from QUEUED_AT: long over by the real clock.
    let key = VaultSecretKey::generate().unwrap();
    MediaVault::new(store.clone(), key.public_key(), 30)
        .keep(&hashes.sha256, &bytes, QUEUED_AT)
        .await
        .unwrap();
    hashes.sha256
}

/// Queues a photo and has one analyst decide it with a review service that has no bank
/// store, so the decision is committed but its consequences fail: the state a crash between
/// the two leaves. Returns the photo's SHA-256.
async fn decide_without_banks(store: &Store, key: VaultSecretKey) -> [u8; 32] {
    let config = ReviewConfig {
        consensus_votes: 1,
        ..ReviewConfig::default()
    };
    let review = Review::with_parts(store.clone(), config, Schemes::builtin(), Some(key), None);
    let analyst = analyst(&review).await;
    let sha256 = queue_for_review(store, "img-0007.jpg").await;
    review.intake(QUEUED_AT).await.unwrap();
    let item = review
        .next_item(&analyst, QUEUED_AT)
        .await
        .unwrap()
        .unwrap();
    let csam = Classification::new("7-10", "B", false, false).unwrap();
    assert!(
        review.vote(&analyst, item, &csam, QUEUED_AT).await.is_err(),
        "without a bank store the decision's consequences fail"
    );
    let desk = store.review_desk();
    assert_eq!(desk.unapplied_decisions().await.unwrap().len(), 1);
    assert!(
        desk.vault_ciphertext(&sha256).await.unwrap().is_some(),
        "decided, not applied: the bytes are kept"
    );
    sha256
}

/// A hotline with one analyst, signed in.
async fn analyst(review: &Review) -> Actor {
    let hotline = review
        .add_hotline(
            AuditActor::Cli,
            &NewHotline {
                code: "gb".into(),
                name: "Hotline GB".into(),
                country: "GB".into(),
                languages: vec!["en".into()],
                jurisdiction: "GB".into(),
                shares_review_pool: true,
                shares_banks: true,
                daily_cap: 100,
            },
            QUEUED_AT,
        )
        .await
        .unwrap();
    review
        .add_user(
            AuditActor::Cli,
            NewUserRequest {
                hotline,
                username: "ana".into(),
                display_name: String::new(),
                role: UserRole::Analyst,
                password: PASSWORD.into(),
            },
            QUEUED_AT,
        )
        .await
        .unwrap();
    review
        .login("ana", PASSWORD, None, "198.51.100.7", QUEUED_AT)
        .await
        .unwrap()
        .actor
}

/// Why the media's bytes left the vault, if they did.
async fn purge_reason(store: &Store, sha256: &[u8; 32]) -> Option<String> {
    store
        .review_desk()
        .vault_record(sha256)
        .await
        .unwrap()
        .and_then(|record| record.purge_reason)
}

//! A decision whose consequences a crash cut short (committed, not yet banked) is finished
//! by the next `aranea serve`: its media becomes known in the bank, its sighting a match, its
//! bytes leave the vault. Before, only `Review::apply_pending` could finish it, and no
//! command called it.

#[path = "common/postgres.rs"]
mod postgres;
#[path = "common/process.rs"]
mod process;

use std::time::{Duration, Instant};

use aranea_review::{
    AuditActor, Classification, NewUserRequest, Review, ReviewConfig, Schemes, VaultSecretKey,
};
use aranea_store::{
    MediaRecord, NewHotline, NewSighting, NewUrl, Priority, ReviewReason, Store, UrlSource,
    UserRole,
};

const PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpus/img-0007.jpg"
);
const PAGE: &str = "https://suspect.example/gallery";
const PASSWORD: &str = "correct horse battery staple";
/// Long before the real clock, so the server's first look finds the decision past its grace.
const DECIDED_AT: i64 = 1_700_000_000_000;

#[test]
fn serve_finishes_a_decision_a_crash_left_unapplied() {
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
    let bytes = std::fs::read(PHOTO).unwrap();
    let sha256 = postgres::block_on(decide_without_banks(&db, key, &bytes));

    let (mut server, _url) = process::serve(data, &db, &config);
    let deadline = Instant::now() + Duration::from_secs(30);
    let applied = loop {
        let (unapplied, sealed, matches) = postgres::block_on(state_of(&db, &sha256));
        if unapplied == 0 {
            break (sealed, matches);
        }
        assert!(
            Instant::now() < deadline,
            "the server left the decision unapplied for 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = server.kill();
    let _ = server.wait();
    let (sealed, matches) = applied;
    assert!(
        !sealed,
        "the decided media's bytes are purged from the vault"
    );
    assert_eq!(matches, 1, "its sighting became a match");
    let found = process::aranea_ok(
        data,
        &db,
        &["bank", "match", "all", "--format", "json", PHOTO],
    );
    assert!(
        found.contains("\"platform\"") && found.contains("\"csam\""),
        "the photo is known in the platform bank as csam: {found}"
    );
}

/// Queues the photo for review as a crawl would, and has one analyst decide it with a review
/// service that has no bank store, so the decision is committed but its consequences fail:
/// the state a crash between the two leaves.
async fn decide_without_banks(db: &str, key: VaultSecretKey, bytes: &[u8]) -> [u8; 32] {
    let store = Store::open(db).await.unwrap();
    let config = ReviewConfig {
        consensus_votes: 1,
        ..ReviewConfig::default()
    };
    let vault = aranea_review::MediaVault::new(store.clone(), key.public_key(), 30);
    let review = Review::with_parts(store.clone(), config, Schemes::builtin(), Some(key), None);
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
            DECIDED_AT,
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
            DECIDED_AT,
        )
        .await
        .unwrap();
    let analyst = review
        .login("ana", PASSWORD, None, "198.51.100.7", DECIDED_AT)
        .await
        .unwrap()
        .actor;

    let hashes = aranea_hash::hash_media(bytes, &aranea_hash::Limits::default()).unwrap();
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
    store.media().record(&record, DECIDED_AT).await.unwrap();
    let media_url = format!("{PAGE}/photo.jpg");
    let new = |url: &str| {
        NewUrl::new(
            url,
            "https://suspect.example",
            "suspect.example",
            UrlSource::Link,
            Priority::Ordinary,
            DECIDED_AT,
        )
    };
    store
        .frontier()
        .enqueue_urls(&[new(PAGE), new(&media_url)], DECIDED_AT)
        .await
        .unwrap();
    let url_id = |url: String| {
        let store = store.clone();
        async move { store.frontier().url_id(&url).await.unwrap().unwrap() }
    };
    let sighting = store
        .media()
        .record_sighting(&NewSighting {
            media_sha256: hashes.sha256,
            url: url_id(media_url.clone()).await,
            page: Some(url_id(PAGE.to_owned()).await),
            member_path: None,
            seen_at: DECIDED_AT,
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
            DECIDED_AT,
        )
        .await
        .unwrap();
    vault.keep(&hashes.sha256, bytes, DECIDED_AT).await.unwrap();
    review.intake(DECIDED_AT).await.unwrap();

    let item = review
        .next_item(&analyst, DECIDED_AT)
        .await
        .unwrap()
        .unwrap();
    let csam = Classification::new("7-10", "B", false, false).unwrap();
    assert!(
        review
            .vote(&analyst, item, &csam, DECIDED_AT)
            .await
            .is_err(),
        "without a bank store the decision's consequences fail"
    );
    assert_eq!(
        state_of(db, &hashes.sha256).await,
        (1, true, 0),
        "decided, not applied: bytes kept, no match"
    );
    store.close().await;
    hashes.sha256
}

/// (decisions not applied, the media's bytes still sealed in the vault, its matches).
async fn state_of(db: &str, sha256: &[u8; 32]) -> (usize, bool, usize) {
    let store = Store::open(db).await.unwrap();
    let desk = store.review_desk();
    let unapplied = desk.unapplied_decisions().await.unwrap().len();
    let sealed = desk.vault_ciphertext(sha256).await.unwrap().is_some();
    let mut matches = 0;
    for sighting in store.media().sightings_of(sha256).await.unwrap() {
        matches += store.media().matches_of(sighting.id).await.unwrap().len();
    }
    store.close().await;
    (unapplied, sealed, matches)
}

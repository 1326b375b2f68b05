//! The respond links' key kept in the database: processes starting at once, each with its
//! own connections and its own random candidate, all end with one key, the one kept. A
//! rotation makes a new key current and keeps the one it replaces for a while.

#[macro_use]
mod common;

use aranea_store::RetiredLinkKey;
use common::{NOW, TestDb};

async fn processes_creating_the_key_at_once_end_with_one(db: &TestDb) {
    // The schema first, so the racers race on the key and not on the migration.
    db.open().await.close().await;
    const RACERS: usize = 8;
    let mut stores = Vec::new();
    for _ in 0..RACERS {
        stores.push(db.open().await);
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut racers = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let store = store.clone();
        let start = start.clone();
        racers.push(tokio::spawn(async move {
            let candidate = [u8::try_from(i + 1).unwrap(); 32];
            start.wait().await;
            let key = store
                .notices()
                .link_key_or_insert(&candidate, NOW)
                .await
                .unwrap();
            (candidate, key)
        }));
    }
    let mut keys = Vec::new();
    for racer in racers {
        keys.push(racer.await.unwrap());
    }
    let kept = keys[0].1.clone();
    assert!(keys.iter().all(|(_, key)| *key == kept), "{keys:?}");
    assert!(
        keys.iter().any(|(candidate, _)| candidate[..] == kept[..]),
        "the key kept is one of the candidates: {keys:?}"
    );
    // Later processes read it; their candidates are thrown away.
    let later = db.open().await;
    let again = later
        .notices()
        .link_key_or_insert(&[0xEE; 32], NOW + 1)
        .await
        .unwrap();
    assert_eq!(again, kept);
    for store in stores {
        store.close().await;
    }
    later.close().await;
}

const DAY: i64 = 86_400_000;

/// A rotation makes the new key current and keeps the one it replaces, which is read back
/// while it was rotated out after the time asked for; a later rotation drops the keys
/// rotated out before the time it is given. Rotations at once each retire the key before.
async fn a_rotated_key_verifies_until_the_time_given_and_is_then_dropped(db: &TestDb) {
    let store = db.open().await;
    let notices = store.notices();
    assert_eq!(notices.link_keys(0).await.unwrap(), Default::default());
    let first = notices.link_key_or_insert(&[1; 32], NOW).await.unwrap();

    let rotated = notices
        .rotate_link_key(&[2; 32], NOW + DAY, NOW + DAY - 30 * DAY)
        .await
        .unwrap();
    assert_eq!(rotated.previous_created_at, Some(NOW));
    assert_eq!(rotated.dropped, 0);
    let ring = notices.link_keys(NOW + DAY - 1).await.unwrap();
    assert_eq!(ring.current, Some(vec![2; 32]));
    assert_eq!(
        ring.previous,
        [RetiredLinkKey {
            key: first.clone(),
            retired_at: NOW + DAY
        }]
    );
    // Rotated out at NOW + DAY: not after NOW + DAY.
    assert!(
        notices
            .link_keys(NOW + DAY)
            .await
            .unwrap()
            .previous
            .is_empty()
    );
    // Processes that need a key keep reading the current one.
    assert_eq!(
        notices
            .link_key_or_insert(&[9; 32], NOW + DAY)
            .await
            .unwrap(),
        [2; 32]
    );

    let again = notices
        .rotate_link_key(&[3; 32], NOW + 2 * DAY, NOW + DAY)
        .await
        .unwrap();
    assert_eq!(again.previous_created_at, Some(NOW + DAY));
    assert_eq!(again.dropped, 1, "the first key, rotated out at NOW + DAY");
    let ring = notices.link_keys(0).await.unwrap();
    assert_eq!(ring.current, Some(vec![3; 32]));
    assert_eq!(
        ring.previous,
        [RetiredLinkKey {
            key: vec![2; 32],
            retired_at: NOW + 2 * DAY
        }]
    );

    // Rotations at once: every key but the last current one is kept as rotated out.
    const ROTATIONS: u8 = 6;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(usize::from(ROTATIONS)));
    let mut rotations = Vec::new();
    for i in 0..ROTATIONS {
        let store = db.open().await;
        let start = start.clone();
        rotations.push(tokio::spawn(async move {
            start.wait().await;
            let done = store
                .notices()
                .rotate_link_key(&[10 + i; 32], NOW + 3 * DAY, 0)
                .await;
            store.close().await;
            done.unwrap()
        }));
    }
    for rotation in rotations {
        rotation.await.unwrap();
    }
    let ring = notices.link_keys(0).await.unwrap();
    let current = ring.current.clone().unwrap();
    let mut all: Vec<Vec<u8>> = ring.previous.iter().map(|r| r.key.clone()).collect();
    all.push(current);
    all.sort();
    let mut expected: Vec<Vec<u8>> = (0..ROTATIONS).map(|i| vec![10 + i; 32]).collect();
    expected.extend([vec![2; 32], vec![3; 32]]);
    expected.sort();
    assert_eq!(all, expected, "{ring:?}");
    store.close().await;
}

contract_tests!(
    processes_creating_the_key_at_once_end_with_one,
    a_rotated_key_verifies_until_the_time_given_and_is_then_dropped,
);

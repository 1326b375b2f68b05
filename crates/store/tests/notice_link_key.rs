//! The respond links' key kept in the database: processes starting at once, each with its
//! own connections and its own random candidate, all end with one key, the one kept.

#[macro_use]
mod common;

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

contract_tests!(processes_creating_the_key_at_once_end_with_one);

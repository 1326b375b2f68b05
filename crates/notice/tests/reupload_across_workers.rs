//! Two notice workers share one database. A removal that the second records is known to the
//! first, whose re-upload index was built before it: a copy of the removed media found
//! later under a new URL becomes a re-upload item of the removed one, whichever worker
//! takes the match in.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aranea_notice::NoticeEngine;
use aranea_store::Store;
use common::*;

async fn passes(engine: &NoticeEngine, world: &aranea_simweb::RunningWorld, hours: u64) {
    for _ in 0..hours / 3 {
        tokio::time::timeout(Duration::from_secs(60), engine.run_once())
            .await
            .expect("a pass finishes within a minute")
            .unwrap();
        world.advance(Duration::from_secs(3 * 3600));
    }
}

fn sha256_of(hex: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_recorded_by_another_worker_makes_a_later_copy_a_reupload() {
    let world = world(33);
    let (db, dir) = temp_sqlite("reupload-workers");
    let _dir = RemoveOnDrop(dir.clone());
    let store = Store::open(&db).await.unwrap();
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
    let first = engine("worker-1");
    let second = engine("worker-2");
    let mut crawler = CrawlStandIn::new(&world);
    let now = aranea_notice::Clock::now(clock.as_ref());
    assert!(crawler.crawl(&world, &store, now).await > 0);

    // The first worker takes the matches in while nothing is removed yet; then only the
    // second works for three simulated days, long enough for Quickhost to remove its copies.
    first.run_once().await.unwrap();
    assert_eq!(store.notices().removed_item_count().await.unwrap(), 0);
    passes(&second, &world, 72).await;
    let watched = store.notices().watched_items().await.unwrap();
    assert!(!watched.is_empty(), "the second worker recorded removals");
    assert_eq!(
        store.notices().removed_item_count().await.unwrap(),
        i64::try_from(watched.len()).unwrap()
    );
    let removed = &watched[0];

    // The same media again, under a new URL on the same site; the first worker takes it in.
    let site = url::Url::parse(&removed.url).unwrap();
    let copy = format!(
        "{}://{}/uploads/again-{}.jpg",
        site.scheme(),
        site.host_str().unwrap(),
        removed.id
    );
    let now = aranea_notice::Clock::now(clock.as_ref());
    record_match(&store, sha256_of(&removed.sha256), &copy, now).await;
    let pass = first.run_once().await.unwrap();
    assert_eq!(pass.ingested, 1, "{pass:?}");
    assert_eq!(pass.reuploads, 1, "{pass:?}");
    let items = store.notices().list_items(None, 10_000).await.unwrap();
    let item = items
        .iter()
        .find(|i| i.url == copy)
        .expect("an item for the copy");
    assert_eq!(item.reupload_of, Some(removed.id), "{item:?}");
}

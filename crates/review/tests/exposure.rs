//! An item's exposure follows its media's later sightings: the crawler finding queued media
//! on more pages, sites or providers reorders the queue at the next intake, decided items
//! keep the exposure they were decided with, and a recount never counts a sighting twice.

#[macro_use]
mod common;

use std::collections::HashSet;

use aranea_review::{Classification, ReviewConfig};
use aranea_store::{ItemState, NewUrl, Priority, ReviewItemId, UrlSource, UserRole};
use common::{Backend, NOW, World};
use sqlx::Connection;

both_backends!(
    an_item_whose_media_spreads_overtakes_one_that_does_not,
    decided_items_are_left_alone_and_nothing_is_counted_twice,
);

/// (pages, sites, providers) as `World::record_media` records sightings on `pages`: one
/// site per host, one provider per address it derives from the host's name.
fn exposure_of(pages: &[&str]) -> (i64, i64, i64) {
    let hosts: HashSet<&str> = pages.iter().map(|p| p.split('/').nth(2).unwrap()).collect();
    let addresses: HashSet<u32> = hosts
        .iter()
        .map(|h| h.bytes().map(u32::from).sum::<u32>() % 250)
        .collect();
    let pages: HashSet<&&str> = pages.iter().collect();
    (
        pages.len() as i64,
        hosts.len() as i64,
        addresses.len() as i64,
    )
}

async fn exposure(w: &World, item: ReviewItemId) -> (i64, i64, i64) {
    let item = w.store.review_desk().item(item).await.unwrap().unwrap();
    (item.pages, item.sites, item.providers)
}

async fn item_of(w: &World, sha: &[u8; 32]) -> ReviewItemId {
    w.store
        .review_desk()
        .item_of_media(sha)
        .await
        .unwrap()
        .unwrap()
}

async fn open_items_in_order(w: &World) -> Vec<ReviewItemId> {
    let items = w
        .store
        .review_desk()
        .items_with_state(ItemState::Open, 10)
        .await
        .unwrap();
    items.into_iter().map(|i| i.id).collect()
}

async fn an_item_whose_media_spreads_overtakes_one_that_does_not(backend: Backend) {
    let w = World::new(backend).await;
    let steady_pages = ["https://one.example/a", "https://two.example/b"];
    let steady = w.queue_photo(5, &steady_pages).await;
    let spreading = w.queue_photo(6, &["https://three.example/c"]).await;
    w.review.intake(NOW).await.unwrap();
    let (steady, spreading) = (item_of(&w, &steady).await, item_of(&w, &spreading).await);
    assert_eq!(exposure(&w, steady).await, exposure_of(&steady_pages));
    assert_eq!(open_items_in_order(&w).await, [steady, spreading]);

    // The crawler finds the second photo on three more sites: its queue entry stays as it
    // was (already queued), only sightings are added.
    let later_pages = [
        "https://four.example/d",
        "https://five.example/e",
        "https://six.example/f",
    ];
    w.queue_photo(6, &later_pages).await;
    let report = w.review.intake(NOW + 1_000).await.unwrap();
    assert_eq!((report.opened, report.grouped), (0, 0));
    let mut all_pages = vec!["https://three.example/c"];
    all_pages.extend(later_pages);
    assert_eq!(exposure(&w, spreading).await, exposure_of(&all_pages));
    assert_eq!(exposure(&w, steady).await, exposure_of(&steady_pages));
    assert_eq!(open_items_in_order(&w).await, [spreading, steady]);
    let analyst = w.actor(w.gb, "a", UserRole::Analyst).await;
    assert_eq!(
        w.review.next_item(&analyst, NOW + 2_000).await.unwrap(),
        Some(spreading)
    );
    assert_eq!(report.exposure_recounted, 1, "{report:?}");
}

async fn decided_items_are_left_alone_and_nothing_is_counted_twice(backend: Backend) {
    let config = ReviewConfig {
        consensus_votes: 1,
        ..ReviewConfig::default()
    };
    let w = World::with_config(backend, config).await;
    let first = w.queue_photo(5, &["https://one.example/a"]).await;
    let second = w.queue_photo(6, &["https://two.example/b"]).await;
    w.review.intake(NOW).await.unwrap();
    let analyst = w.actor(w.gb, "a", UserRole::Analyst).await;
    let decided = w.review.next_item(&analyst, NOW).await.unwrap().unwrap();
    let classification = Classification::new("7-10", "B", false, false).unwrap();
    w.review
        .vote(&analyst, decided, &classification, NOW)
        .await
        .unwrap();
    let (decided_photo, open_photo, open_page) = if item_of(&w, &first).await == decided {
        (5, 6, "https://two.example/b")
    } else {
        (6, 5, "https://one.example/a")
    };
    let open = item_of(&w, if open_photo == 5 { &first } else { &second }).await;
    let decided_with = exposure(&w, decided).await;

    w.queue_photo(decided_photo, &["https://three.example/c"])
        .await;
    // A new page on a site already counted, a new site, and the page already counted
    // sighted again (the same sighting: no new row).
    let new_pages = [
        &format!("{open_page}/2")[..],
        "https://four.example/d",
        open_page,
    ];
    w.queue_photo(open_photo, &new_pages).await;
    let mut all_pages = vec![open_page];
    all_pages.extend(new_pages);
    // Intakes within PostgreSQL's grace period look at the same sightings again, the ones
    // after it at none: only the first recounts, and the counts stay what the sightings say.
    for (round, at) in [NOW + 1_000, NOW + 2_000, NOW + 120_000, NOW + 121_000]
        .into_iter()
        .enumerate()
    {
        let report = w.review.intake(at).await.unwrap();
        assert_eq!(exposure(&w, open).await, exposure_of(&all_pages), "at {at}");
        assert_eq!(exposure(&w, decided).await, decided_with, "at {at}");
        let recounted = if round == 0 { 1 } else { 0 };
        assert_eq!(report.exposure_recounted, recounted, "at {at}");
    }
    let item = w.store.review_desk().item(decided).await.unwrap().unwrap();
    assert_eq!(item.state, ItemState::Decided);
}

/// On PostgreSQL a sighting's id is taken at insert and seen at commit: a settlement that
/// commits after one with a higher id was counted is still counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_sighting_committed_after_a_later_one_is_still_counted() {
    let w = World::new(Backend::Postgres).await;
    let late = w.queue_photo(5, &["https://one.example/a"]).await;
    let other = w.queue_photo(6, &["https://two.example/b"]).await;
    w.review.intake(NOW).await.unwrap();
    let (late_item, other_item) = (item_of(&w, &late).await, item_of(&w, &other).await);

    let page = "https://three.example/c";
    let media_url = "https://three.example/c/late.jpg";
    let new = |u: &str| {
        NewUrl::new(
            u,
            "https://three.example",
            "three.example",
            UrlSource::Link,
            Priority::Ordinary,
            NOW,
        )
    };
    let frontier = w.store.frontier();
    frontier
        .enqueue_urls(&[new(page), new(media_url)], NOW)
        .await
        .unwrap();
    let page_id = frontier.url_id(page).await.unwrap().unwrap();
    let media_id = frontier.url_id(media_url).await.unwrap().unwrap();
    let mut slow = sqlx::PgConnection::connect(&w.url).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut slow).await.unwrap();
    sqlx::query(
        "INSERT INTO sightings (media_sha256, url_id, page_url_id, member_path, \
         first_seen_at, last_seen_at, server_ip) VALUES ($1, $2, $3, '', $4, $4, '192.0.2.99')",
    )
    .bind(&late[..])
    .bind(media_id.get())
    .bind(page_id.get())
    .bind(NOW)
    .execute(&mut slow)
    .await
    .unwrap();
    // A sighting with a higher id commits first and is counted, past the grace period
    // of the first intake's mark.
    w.queue_photo(6, &["https://four.example/d"]).await;
    w.review.intake(NOW + 61_000).await.unwrap();
    assert_eq!(exposure(&w, other_item).await.0, 2);
    assert_eq!(exposure(&w, late_item).await.0, 1);

    sqlx::raw_sql("COMMIT").execute(&mut slow).await.unwrap();
    slow.close().await.unwrap();
    w.review.intake(NOW + 62_000).await.unwrap();
    assert_eq!(exposure(&w, late_item).await.0, 2);
}

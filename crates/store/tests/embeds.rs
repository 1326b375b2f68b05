//! Pages that embed a media URL (`embeds`, migration 0002) on both back-ends: recorded when an
//! embed entry is enqueued (new URL or known), and media recorded at the URL is sighted, with
//! its matches, on every page that embeds it, whichever page it was fetched for.

#[macro_use]
mod common;

use aranea_store::{FetchOutcome, NewSighting, NewUrl, UrlId, UrlNext, UrlSource};
use common::leased::{known, lease, photo, seen};
use common::{NOW, TestDb, url};

contract_tests!(
    media_is_sighted_on_every_page_that_embeds_its_url,
    a_settled_page_sights_its_media_on_other_embedding_pages,
);

fn embed(host: &str, path: &str, page: UrlId) -> NewUrl {
    NewUrl {
        source: UrlSource::Embed,
        parent: Some(page),
        ..url(host, path)
    }
}

async fn media_is_sighted_on_every_page_that_embeds_its_url(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let pages = frontier
        .enqueue_urls(
            &[
                url("a.example", "/one"),
                url("b.example", "/two"),
                url("c.example", "/three"),
            ],
            NOW,
        )
        .await
        .unwrap();
    let (one, two, three) = (pages[0].id, pages[1].id, pages[2].id);
    // Page one queues the photo; page two (another host) embeds it once known; page three
    // only links to the same URL (not an embed).
    let first = frontier
        .enqueue_urls(&[embed("img.example", "/p.jpg", one)], NOW)
        .await
        .unwrap();
    assert!(first[0].inserted);
    let again = frontier
        .enqueue_urls(&[embed("img.example", "/p.jpg", two)], NOW)
        .await
        .unwrap();
    assert!(!again[0].inserted);
    let photo_url = first[0].id;
    assert_eq!(again[0].id, photo_url);
    let linked = NewUrl {
        parent: Some(three),
        ..url("img.example", "/p.jpg")
    };
    frontier.enqueue_urls(&[linked], NOW).await.unwrap();
    // Enqueuing the same embed twice records it once.
    frontier
        .enqueue_urls(&[embed("img.example", "/p.jpg", two)], NOW)
        .await
        .unwrap();

    let sighting = NewSighting {
        media_sha256: [5; 32],
        url: photo_url,
        page: Some(one),
        member_path: None,
        seen_at: NOW,
        server_ip: Some("127.0.0.5".into()),
    };
    let recorded = store
        .media()
        .record_seen(&photo(5), &sighting, &[known(9)], NOW)
        .await
        .unwrap();
    assert_eq!(recorded.also_on, vec![two]);
    let mut sightings = store.media().sightings_of(&[5; 32]).await.unwrap();
    sightings.sort_by_key(|s| s.page);
    let on: Vec<UrlId> = sightings.iter().map(|s| s.page).collect();
    assert_eq!(on, vec![one, two]);
    for s in &sightings {
        assert_eq!(s.url, photo_url);
        assert_eq!(store.media().matches_of(s.id).await.unwrap().len(), 1);
    }
    let facts = store.crawl_facts();
    assert!(facts.page_has_match(two).await.unwrap());
    assert!(!facts.page_has_match(three).await.unwrap());

    // Again (fetched once more): no new sighting or match, the same pages reported.
    let repeat = store
        .media()
        .record_seen(&photo(5), &sighting, &[known(9)], NOW + 1)
        .await
        .unwrap();
    assert_eq!(repeat.sighting, recorded.sighting);
    assert_eq!(repeat.also_on, vec![two]);
    assert_eq!(store.media().sightings_of(&[5; 32]).await.unwrap().len(), 2);

    // Inside an archive, a member is not what the page embeds: no sighting elsewhere.
    let member = NewSighting {
        media_sha256: [6; 32],
        member_path: Some("a/b.jpg".into()),
        ..sighting.clone()
    };
    let inside = store
        .media()
        .record_seen(&photo(6), &member, &[], NOW)
        .await
        .unwrap();
    assert!(inside.also_on.is_empty());
    assert_eq!(store.media().sightings_of(&[6; 32]).await.unwrap().len(), 1);
}

async fn a_settled_page_sights_its_media_on_other_embedding_pages(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let pages = frontier
        .enqueue_urls(
            &[url("s.example", "/page"), url("t.example", "/other")],
            NOW,
        )
        .await
        .unwrap();
    let (page, other) = (pages[0].id, pages[1].id);
    let media = frontier
        .enqueue_urls(
            &[
                embed("s.example", "/1.jpg", page),
                embed("s.example", "/2.jpg", page),
            ],
            NOW,
        )
        .await
        .unwrap();
    let (one, two) = (media[0].id, media[1].id);
    // The other host's page embeds the second photo before it is fetched.
    frontier
        .enqueue_urls(&[embed("s.example", "/2.jpg", other)], NOW)
        .await
        .unwrap();
    let leased = lease(&store, 10).await;
    let lease = leased.lease("s.example");
    let taken = leased.urls.iter().filter(|u| u.url.contains("s.example"));
    assert_eq!(taken.count(), 3);
    let seen = |seed: u8, at: UrlId| seen(seed, at, page, vec![known(i64::from(seed))]);
    let fetched = FetchOutcome::fetched(200, 10, UrlNext::Done);
    let settled = frontier
        .settle_page(
            lease,
            &[seen(1, one), seen(2, two)],
            &[(one, &fetched), (two, &fetched)],
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(settled.also_on, vec![vec![], vec![other]]);
    let facts = store.crawl_facts();
    assert!(facts.page_has_match(other).await.unwrap());
    assert_eq!(facts.media_at_url(two).await.unwrap(), vec![[2; 32]]);
    let on_other: Vec<_> = store
        .media()
        .sightings_of(&[2; 32])
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.page == other)
        .collect();
    assert_eq!(on_other.len(), 1);
    assert_eq!(
        store
            .media()
            .matches_of(on_other[0].id)
            .await
            .unwrap()
            .len(),
        1
    );
}

//! Pages that embed a media URL (`embeds`, migration 0002) on both back-ends: recorded when an
//! embed entry is enqueued (new URL or known), and media recorded at the URL is sighted, with
//! its matches, on every page that embeds it, whichever page it was fetched for.

#[macro_use]
mod common;

use aranea_store::{
    FetchOutcome, NewSighting, NewUrl, PageSettlement, Priority, UrlId, UrlNext, UrlSource,
    UrlState,
};
use common::leased::{known, lease, photo, seen};
use common::{NOW, TestDb, url};

contract_tests!(
    media_is_sighted_on_every_page_that_embeds_its_url,
    a_settled_page_sights_its_media_on_other_embedding_pages,
    a_match_recorded_while_its_page_settles_queues_the_page_again,
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

/// The race of a page on one host and its media on another: the page's worker reads its
/// verdict (no match), then the other host's worker records the media's match on the page and
/// asks for the page to be fetched again, which it cannot do while the page is in flight; then
/// the page settles as "no match". The page must end queued again (at match priority, its
/// links to be followed after all), not done.
async fn a_match_recorded_while_its_page_settles_queues_the_page_again(db: &TestDb) {
    let store = db.open().await;
    let frontier = store.frontier();
    let page = frontier
        .enqueue_urls(&[url("pa.example", "/page")], NOW)
        .await
        .unwrap()[0]
        .id;
    let media = frontier
        .enqueue_urls(&[embed("pb.example", "/m.jpg", page)], NOW)
        .await
        .unwrap()[0]
        .id;
    let leased = lease(&store, 10).await;
    let (page_lease, media_lease) = (leased.lease("pa.example"), leased.lease("pb.example"));
    let facts = store.crawl_facts();

    // The page's worker: its verdict, before the other host's media is in.
    assert!(!facts.page_has_match(page).await.unwrap());
    // The media's worker: the match committed, then the page asked for again (in flight).
    let fetched = FetchOutcome::fetched(200, 10, UrlNext::Done);
    let media_seen = seen(41, media, page, vec![known(41)]);
    frontier
        .settle_page(media_lease, &[media_seen], &[(media, &fetched)], NOW)
        .await
        .unwrap();
    assert!(facts.page_has_match(page).await.unwrap());
    assert!(
        !frontier
            .schedule_recheck(page, NOW, Priority::MatchLink)
            .await
            .unwrap(),
        "a page in flight is not queued twice"
    );
    // The page settles on its stale verdict: completed, no links, unless a match is there.
    let settlement = PageSettlement {
        lease: page_lease.clone(),
        seen: Vec::new(),
        completions: vec![(page, fetched.clone())],
        links: Vec::new(),
        raise_known_to: None,
        requeue_if_matched: Some((page, Priority::MatchLink)),
    };
    let settled = frontier.settle_pages(&[settlement], NOW + 1).await.unwrap();
    assert!(settled[0].as_ref().unwrap().requeued);

    let record = frontier.url(page).await.unwrap().unwrap();
    assert_eq!(record.state, UrlState::Queued, "the page's match was lost");
    assert_eq!(record.priority, Priority::MatchLink);
    // Its own lease takes it again.
    let again = frontier.next_urls(page_lease, 10, NOW + 2).await.unwrap();
    assert_eq!(again.iter().map(|u| u.id).collect::<Vec<_>>(), vec![page]);
}

/// The other order of the same race, on PostgreSQL (on SQLite writers take turns on one
/// lock, so a recheck cannot fall inside a settlement): the match commits after the
/// settlement looked for it but before the settlement commits. The recheck must wait for the
/// settlement holding the page's row and then find the page completed, not judge it in
/// flight by its snapshot and give up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_recheck_waits_for_its_page_to_settle() {
    use sqlx::Connection;
    let db = TestDb::postgres().await;
    let store = db.open().await;
    let frontier = store.frontier();
    let page = frontier
        .enqueue_urls(&[url("pc.example", "/page")], NOW)
        .await
        .unwrap()[0]
        .id;
    let leased = lease(&store, 10).await;
    assert_eq!(leased.id("pc.example/page"), page);
    // The settlement's transaction: the page's row completed (as `settle_pages` writes it
    // when the verdict was "no match"), not yet committed.
    let mut settling = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut tx = settling.begin().await.unwrap();
    sqlx::query("UPDATE urls SET state = 'done', leased_epoch = NULL WHERE id = $1")
        .bind(page.get())
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut watch = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let recheck = frontier.schedule_recheck(page, NOW, Priority::MatchLink);
    let settle = async {
        common::until_a_session_waits_for_a_lock(
            &mut watch,
            "the recheck did not wait for the page's settlement",
        )
        .await;
        tx.commit().await.unwrap();
    };
    let (queued, ()) = tokio::join!(recheck, settle);
    assert!(queued.unwrap(), "the recheck judged the page in flight");
    let record = frontier.url(page).await.unwrap().unwrap();
    assert_eq!(record.state, UrlState::Queued);
    assert_eq!(record.priority, Priority::MatchLink);
}

//! `Frontier::settle_pages` writes the pages whose lease holds together, a few multi-row
//! statements for the whole batch; these contract tests (both back-ends) pin that it gives
//! what settling the pages one at a time gives: the same answers per page and the same rows.
//!
//! The reference is the per-page path itself: the same batch with one more page that the
//! checks accept but the database refuses (a sighting at a URL that does not exist) makes the
//! batch fail and be written page by page, each in a transaction of its own.

#[macro_use]
mod common;

use std::collections::BTreeMap;

use aranea_store::{
    FetchOutcome, NewSighting, NewUrl, PageSettlement, Priority, SeenMedia, SettledLinks, Store,
    StoreError, UrlId, UrlNext, UrlSource,
};
use common::leased::{Leased, known, lease, seen};
use common::{NOW, TestDb, url};

contract_tests!(
    a_batch_settles_as_its_pages_one_at_a_time,
    a_page_the_database_refuses_fails_alone_and_the_others_are_written,
);

const HOSTS: [&str; 6] = [
    "a.example",
    "b.example",
    "c.example",
    "d.example",
    "e.example",
    "f.example",
];

/// Every URL the scenario knows or links to, as `host/path`.
const URLS: [&str; 12] = [
    "a.example/page",
    "a.example/1.jpg",
    "a.example/next",
    "b.example/page",
    "b.example/2.jpg",
    "b.example/next",
    "c.example/page",
    "d.example/page",
    "d.example/never",
    "e.example/page",
    "e.example/4.jpg",
    "f.example/known",
];

/// The world before the batch: every host leased at `NOW` with its URLs taken, `e`'s and
/// `b`'s pages embedding `a`'s photo, and `d`'s lease lost to another worker.
async fn world(store: &Store) -> Leased {
    let frontier = store.frontier();
    let setup: Vec<NewUrl> = [
        "a.example/page",
        "a.example/1.jpg",
        "b.example/page",
        "b.example/2.jpg",
        "c.example/page",
        "d.example/page",
        "e.example/page",
        "e.example/4.jpg",
        "f.example/known",
    ]
    .iter()
    .map(|u| {
        let (host, path) = u.split_once('/').unwrap();
        url(host, &format!("/{path}"))
    })
    .collect();
    let ids = frontier.enqueue_urls(&setup, NOW).await.unwrap();
    let e_page = ids[6].id;
    let embeds: Vec<NewUrl> = [e_page, ids[2].id]
        .into_iter()
        .map(|page| NewUrl {
            source: UrlSource::Embed,
            parent: Some(page),
            ..url("a.example", "/1.jpg")
        })
        .collect();
    frontier.enqueue_urls(&embeds, NOW).await.unwrap();
    let leased = lease(store, 10).await;
    assert_eq!(leased.hosts.len(), HOSTS.len());
    frontier
        .release(leased.lease("d.example"), NOW)
        .await
        .unwrap();
    let other = frontier
        .claim_hosts("other", 10, 60_000, NOW + 1)
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    leased
}

fn link(host_and_path: &str) -> NewUrl {
    let (host, path) = host_and_path.split_once('/').unwrap();
    url(host, &format!("/{path}"))
}

/// The batch, in order. Each page meets the others where a batch could go wrong:
/// - `e` asks to be requeued if matched, and `a`'s matched photo, written after it, is
///   sighted on `e`'s page (it embeds the photo's URL): one at a time, `e` looked first;
/// - `a` and `b` have the same photo (one media row), both matched; `a`'s is sighted on `e`
///   and `b`, and `b` sees it at `a`'s URL too, later and from a server: the same sightings
///   written twice in the batch;
/// - `a` links `a/next` (new), `f/known` (known: raised) and `b/page` (known, completed
///   and requeued by `b` later);
/// - `b` links `a/next` too (known to it: `a` inserted it) and asks to be requeued if
///   matched: its own photo matched;
/// - `c` refuses a field, `d`'s lease is lost: each fails alone;
/// - `h` (on `f`'s lease) raises `b/page` and `b/2.jpg`, which `b` completed and requeued
///   before it.
fn batch(leased: &Leased) -> Vec<PageSettlement> {
    let id = |u: &str| leased.id(u);
    let lease = |host: &str| leased.lease(host).clone();
    let fetched = FetchOutcome::fetched(200, 10, UrlNext::Done);
    let e = PageSettlement {
        lease: lease("e.example"),
        seen: vec![seen(
            44,
            id("e.example/4.jpg"),
            id("e.example/page"),
            Vec::new(),
        )],
        completions: vec![
            (id("e.example/4.jpg"), fetched.clone()),
            (id("e.example/page"), fetched.clone()),
        ],
        links: Vec::new(),
        raise_known_to: None,
        requeue_if_matched: Some((id("e.example/page"), Priority::MatchLink)),
    };
    let a = PageSettlement {
        lease: lease("a.example"),
        seen: vec![seen(
            41,
            id("a.example/1.jpg"),
            id("a.example/page"),
            vec![known(1)],
        )],
        completions: vec![
            (id("a.example/1.jpg"), fetched.clone()),
            (id("a.example/page"), fetched.clone()),
        ],
        links: vec![
            link("a.example/next"),
            link("f.example/known"),
            link("b.example/page"),
        ],
        raise_known_to: Some(Priority::MatchLink),
        requeue_if_matched: None,
    };
    let b = PageSettlement {
        lease: lease("b.example"),
        seen: vec![
            SeenMedia {
                sighting: NewSighting {
                    seen_at: NOW + 5,
                    server_ip: Some("127.0.0.1".into()),
                    ..seen(41, id("a.example/1.jpg"), id("b.example/page"), Vec::new()).sighting
                },
                ..seen(
                    41,
                    id("a.example/1.jpg"),
                    id("b.example/page"),
                    vec![known(1)],
                )
            },
            SeenMedia {
                sighting: NewSighting {
                    seen_at: NOW + 5,
                    server_ip: Some("127.0.0.2".into()),
                    ..seen(41, id("b.example/2.jpg"), id("b.example/page"), Vec::new()).sighting
                },
                ..seen(
                    41,
                    id("b.example/2.jpg"),
                    id("b.example/page"),
                    vec![known(1), known(2)],
                )
            },
        ],
        completions: vec![
            (id("b.example/2.jpg"), fetched.clone()),
            (id("b.example/page"), fetched.clone()),
        ],
        links: vec![link("b.example/next"), link("a.example/next")],
        raise_known_to: None,
        requeue_if_matched: Some((id("b.example/page"), Priority::Recheck)),
    };
    let c = PageSettlement {
        lease: lease("c.example"),
        seen: Vec::new(),
        completions: vec![(id("c.example/page"), fetched.clone())],
        links: vec![url("c.example", "/bad\0byte")],
        raise_known_to: None,
        requeue_if_matched: None,
    };
    let d = PageSettlement {
        lease: lease("d.example"),
        seen: Vec::new(),
        completions: vec![(id("d.example/page"), fetched.clone())],
        links: vec![link("d.example/never")],
        raise_known_to: None,
        requeue_if_matched: None,
    };
    let h = PageSettlement {
        lease: lease("f.example"),
        seen: Vec::new(),
        completions: Vec::new(),
        links: vec![link("b.example/page"), link("b.example/2.jpg")],
        raise_known_to: Some(Priority::Reported),
        requeue_if_matched: None,
    };
    vec![e, a, b, c, d, h]
}

/// A page whose sighting is at a URL id that does not exist: the checks before the
/// transaction accept it, the database refuses it (foreign key).
fn refused_by_the_database(leased: &Leased) -> PageSettlement {
    let mut ghost = seen(
        99,
        UrlId::from_raw(999_999),
        leased.id("f.example/known"),
        Vec::new(),
    );
    ghost.sighting.page = None;
    PageSettlement {
        lease: leased.lease("f.example").clone(),
        seen: vec![ghost],
        completions: Vec::new(),
        links: Vec::new(),
        raise_known_to: None,
        requeue_if_matched: None,
    }
}

/// Everything the scenario's rows say, with row ids replaced by URLs (URLs inserted by the
/// batch may get other ids in another order).
async fn rows(store: &Store) -> Vec<String> {
    let frontier = store.frontier();
    let mut by_id: BTreeMap<i64, String> = BTreeMap::new();
    for u in URLS {
        if let Some(id) = frontier.url_id(&format!("https://{u}")).await.unwrap() {
            by_id.insert(id.get(), u.to_string());
        }
    }
    let name = |id: UrlId| {
        by_id
            .get(&id.get())
            .cloned()
            .unwrap_or(format!("#{}", id.get()))
    };
    let mut out = Vec::new();
    for u in URLS {
        let Some(id) = frontier.url_id(&format!("https://{u}")).await.unwrap() else {
            out.push(format!("{u}: absent"));
            continue;
        };
        let r = frontier.url(id).await.unwrap().unwrap();
        out.push(format!(
            "{u}: {:?} {:?} {:?} depth {} next {} attempts {} status {:?} at {:?} parent {:?}",
            r.source,
            r.priority,
            r.state,
            r.depth,
            r.next_fetch_at,
            r.attempts,
            r.last_status,
            r.last_fetched_at,
            r.parent_id.map(name),
        ));
        for f in frontier.fetches(id).await.unwrap() {
            out.push(format!(
                "  fetch at {} epoch {} {:?} {}",
                f.fetched_at, f.lease_epoch, f.status, f.bytes
            ));
        }
    }
    for host in HOSTS {
        let h = frontier
            .host_by_key(&format!("https://{host}"))
            .await
            .unwrap()
            .unwrap();
        out.push(format!(
            "{host}: known {} fetched {} bytes {} due {:?} lease {:?} {:?} {}",
            h.urls_known,
            h.pages_fetched,
            h.bytes_fetched,
            h.due_at,
            h.lease_owner,
            h.lease_until,
            h.lease_epoch
        ));
    }
    for seed in [41_u8, 44, 99] {
        out.push(format!(
            "media {seed}: {:?}",
            store.media().get(&[seed; 32]).await.unwrap()
        ));
        let mut sightings = Vec::new();
        for s in store.media().sightings_of(&[seed; 32]).await.unwrap() {
            let matches = store.media().timed_matches_of(s.id).await.unwrap();
            sightings.push(format!(
                "  sighting {} on {} {:?} {}..{} {:?} matches {:?}",
                name(s.url),
                name(s.page),
                s.member_path,
                s.first_seen_at,
                s.last_seen_at,
                s.server_ip,
                matches
                    .iter()
                    .map(|m| (m.hit.bank_id, m.hit.entry_id))
                    .collect::<Vec<_>>()
            ));
        }
        sightings.sort();
        out.extend(sightings);
    }
    out
}

/// Each page's answer, with ids replaced by URLs and sightings by what they say.
async fn answers(store: &Store, results: &[Result<SettledLinks, StoreError>]) -> Vec<String> {
    let frontier = store.frontier();
    let mut sightings: BTreeMap<i64, String> = BTreeMap::new();
    for seed in [41_u8, 44, 99] {
        for s in store.media().sightings_of(&[seed; 32]).await.unwrap() {
            let (at, on) = (
                frontier.url(s.url).await.unwrap(),
                frontier.url(s.page).await.unwrap(),
            );
            sightings.insert(
                s.id.get(),
                format!(
                    "{seed} at {:?} on {:?}",
                    at.map(|u| u.url),
                    on.map(|u| u.url)
                ),
            );
        }
    }
    let mut out = Vec::new();
    for result in results {
        let settled = match result {
            Ok(settled) => settled,
            Err(error) => {
                out.push(format!("error: {error}"));
                continue;
            }
        };
        let mut also_on = Vec::new();
        for pages in &settled.page.also_on {
            let mut urls = Vec::new();
            for page in pages {
                urls.push(frontier.url(*page).await.unwrap().unwrap().url);
            }
            urls.sort();
            also_on.push(urls);
        }
        let mut links = Vec::new();
        for l in &settled.links {
            let record = frontier.url(l.id).await.unwrap().unwrap();
            links.push((record.url, record.host_id == l.host_id, l.inserted));
        }
        out.push(format!(
            "sightings {:?} also on {also_on:?} completions {:?} links {links:?} requeued {}",
            settled
                .page
                .sightings
                .iter()
                .map(|s| sightings.get(&s.get()).cloned())
                .collect::<Vec<_>>(),
            settled.page.completions,
            settled.requeued
        ));
    }
    out
}

async fn a_batch_settles_as_its_pages_one_at_a_time(db: &TestDb) {
    // The batch path on one database, the per-page path on a twin.
    let together = db.open().await;
    let twin_db = if db.url.starts_with("sqlite") {
        TestDb::sqlite().await
    } else {
        TestDb::postgres().await
    };
    let alone = twin_db.open().await;
    let leased = world(&together).await;
    let twin = world(&alone).await;

    let pages = batch(&leased);
    let written = together
        .frontier()
        .settle_pages(&pages, NOW + 2)
        .await
        .unwrap();
    let mut reference = batch(&twin);
    reference.push(refused_by_the_database(&twin));
    let mut one_by_one = alone
        .frontier()
        .settle_pages(&reference, NOW + 2)
        .await
        .unwrap();
    assert!(
        matches!(one_by_one.pop(), Some(Err(StoreError::Database(_)))),
        "the reference batch was not written page by page"
    );

    let (got, want) = (
        answers(&together, &written).await,
        answers(&alone, &one_by_one).await,
    );
    assert_eq!(got, want);
    assert_eq!(rows(&together).await, rows(&alone).await);

    // What the scenario is there for, so that agreeing on nothing cannot pass.
    assert!(got[0].contains("requeued false"), "{}", got[0]);
    assert!(
        got[1].contains("e.example/page"),
        "a's photo is sighted on e: {}",
        got[1]
    );
    assert!(got[2].contains("requeued true"), "{}", got[2]);
    assert!(got[3].starts_with("error: "), "{}", got[3]);
    assert!(got[4].starts_with("error: lease"), "{}", got[4]);
    let frontier = together.frontier();
    let b_page = frontier
        .url(leased.id("b.example/page"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        b_page.priority,
        Priority::Reported,
        "h raised b's requeued page"
    );
    let b_photo = frontier
        .url(leased.id("b.example/2.jpg"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        b_photo.priority,
        Priority::Ordinary,
        "h raised a URL b had completed"
    );
    let f_known = frontier
        .url(leased.id("f.example/known"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f_known.priority, Priority::MatchLink);
}

async fn a_page_the_database_refuses_fails_alone_and_the_others_are_written(db: &TestDb) {
    let store = db.open().await;
    let leased = world(&store).await;
    let mut pages = batch(&leased);
    pages.insert(1, refused_by_the_database(&leased));
    let results = store
        .frontier()
        .settle_pages(&pages, NOW + 2)
        .await
        .unwrap();
    assert_eq!(results.len(), 7);
    assert!(
        matches!(results[1], Err(StoreError::Database(_))),
        "{:?}",
        results[1]
    );
    for ok in [0, 2, 3, 6] {
        assert!(results[ok].is_ok(), "page {ok}: {:?}", results[ok]);
    }
    // Nothing of the refused page, everything of the others.
    assert!(store.media().get(&[99; 32]).await.unwrap().is_none());
    assert!(store.media().get(&[41; 32]).await.unwrap().is_some());
    let next = store
        .frontier()
        .url_id("https://a.example/next")
        .await
        .unwrap();
    assert!(next.is_some());
}

/// On PostgreSQL the batch's one look at its leases keeps the live ones locked until the
/// commit, as each page's own check did: a claimer whose clock says the lease has expired
/// passes the host by (`SKIP LOCKED`) while a settlement holding it is still being written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_settling_lease_is_not_claimed_until_its_batch_commits() {
    use sqlx::Connection;
    let db = TestDb::postgres().await;
    let store = db.open().await;
    let frontier = store.frontier();
    frontier
        .enqueue_urls(&[url("pz.example", "/page")], NOW)
        .await
        .unwrap();
    let leased = lease(&store, 10).await;
    let page = leased.id("pz.example/page");
    // Another transaction holds the page's row: the settlement, past its lease check, waits
    // for it at the completion.
    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut held = holder.begin().await.unwrap();
    sqlx::query("SELECT id FROM urls WHERE id = $1 FOR UPDATE")
        .bind(page.get())
        .execute(&mut *held)
        .await
        .unwrap();
    let settlement = PageSettlement {
        lease: leased.lease("pz.example").clone(),
        seen: Vec::new(),
        completions: vec![(page, FetchOutcome::fetched(200, 10, UrlNext::Done))],
        links: Vec::new(),
        raise_known_to: None,
        requeue_if_matched: None,
    };
    let settling = tokio::spawn({
        let url = db.url.clone();
        async move {
            let store = Store::open(&url).await.unwrap();
            store.frontier().settle_pages(&[settlement], NOW + 1).await
        }
    });
    let mut watch = sqlx::PgConnection::connect(&db.url).await.unwrap();
    common::until_a_session_waits_for_a_lock(
        &mut watch,
        "the settlement did not reach the page's row",
    )
    .await;
    // Two minutes later by the claimer's clock the lease has expired.
    let claimed = frontier
        .claim_hosts("other", 10, 60_000, NOW + 120_000)
        .await
        .unwrap();
    held.commit().await.unwrap();
    let settled = settling.await.unwrap().unwrap();
    assert!(settled[0].is_ok(), "{:?}", settled[0]);
    assert!(
        claimed.is_empty(),
        "a host was claimed while its settlement held the lease"
    );
}

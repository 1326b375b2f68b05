//! Many crawl workers settle pages against one PostgreSQL at once (issue #5): a settlement
//! locks the rows of its leased hosts and of the hosts its links go to, so two workers whose
//! pages link to each other's hosts would each hold one row and wait for the other's, unless
//! every transaction takes them in one order. A deadlock's victim falls back to per-page
//! writes, which can deadlock again, and a page left unsettled is fetched twice. The same
//! holds for media and sighting rows, and for a batch the database refuses, whose pages are
//! then written one at a time.
//!
//! Contract tests (both back-ends; on SQLite writers take turns, so only PostgreSQL can
//! deadlock): every settlement succeeds, no transaction is chosen as a deadlock's victim,
//! and every URL is enqueued once. And one settlement whose lease is renewed between its
//! unlocked and its locked look at it, driven step by step on PostgreSQL.

#[macro_use]
mod common;

use std::sync::Arc;

use std::collections::{BTreeMap, BTreeSet};

use aranea_store::{
    Completion, FetchOutcome, Lease, LeasedHost, NewUrl, PageSettlement, SeenMedia, SightingId,
    Store, StoreError, UrlId, UrlNext, UrlSource, UrlState,
};
use common::leased::seen;
use common::{NOW, TestDb, url};
use sqlx::Connection;

contract_tests!(
    workers_settling_pages_linking_to_each_others_hosts_never_deadlock,
    workers_settling_pages_with_the_same_media_never_deadlock,
    workers_falling_back_to_one_page_at_a_time_never_deadlock,
    workers_settling_single_pages_with_the_same_media_in_opposite_orders_never_deadlock,
    a_lease_renewed_while_its_page_settles_keeps_the_lock_order,
);

/// Workers, each holding the lease of one host of its own.
const WORKERS: usize = 4;
/// Pages settled by each worker, one settlement per round.
const ROUNDS: usize = 25;
/// Media every page shows (the same photos on every host, as re-uploaded material is),
/// each worker's page listing them in an order of its own.
const MEDIA: usize = 6;

fn host(h: usize) -> String {
    format!("h{h}.example")
}

/// Worker `w`'s own store, and the one host it claimed.
async fn worker(db: &TestDb, w: usize) -> (Store, LeasedHost) {
    let store = Store::open(&db.url).await.unwrap();
    let mut claimed = store
        .frontier()
        .claim_hosts(&format!("w{w}"), 1, 600_000, NOW)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "worker {w} claims one host");
    (store, claimed.remove(0))
}

/// One worker per host, each settling its host's page of every round, in rounds started
/// together, each page linking to a new URL on every host (its own too) and to the other
/// hosts' page of the round (known, or inserted by whichever settles first); alongside, a
/// writer enqueues a new URL on every host each round. Also on new hosts, created by every
/// settlement of the round at once.
async fn workers_settling_pages_linking_to_each_others_hosts_never_deadlock(db: &TestDb) {
    settle_concurrently(db, true, Calls::Batches).await;
}

/// As above without links: the workers share no host row, only the media rows of the
/// photos every page shows (upserted in the pages' own orders, they wait for each other's
/// rows both ways).
async fn workers_settling_pages_with_the_same_media_never_deadlock(db: &TestDb) {
    settle_concurrently(db, false, Calls::Batches).await;
}

/// As above, each worker but the last settling its page alone (`settle_page`, the older
/// public call) with the photos backwards for every other worker, the last a batch of one:
/// the single page must take its media rows in the batches' order, not its caller's. Each
/// page's sightings answered in its caller's order.
async fn workers_settling_single_pages_with_the_same_media_in_opposite_orders_never_deadlock(
    db: &TestDb,
) {
    settle_concurrently(db, false, Calls::SinglePages).await;
}

/// How the workers of [`settle_concurrently`] settle their pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Calls {
    /// Each its page of a round in a batch of one (`settle_pages`), as the crawler does.
    Batches,
    /// Each but the last its page alone (`settle_page`), the last in a batch of one.
    SinglePages,
}

async fn settle_concurrently(db: &TestDb, with_links: bool, calls: Calls) {
    let store = db.open().await;
    let pages: Vec<NewUrl> = (0..WORKERS)
        .flat_map(|h| (0..ROUNDS).map(move |r| url(&host(h), &format!("/page{r}"))))
        .collect();
    store.frontier().enqueue_urls(&pages, NOW).await.unwrap();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (store, claimed) = worker(db, w).await;
        let lease = claimed.lease.clone();
        let taken = store
            .frontier()
            .next_urls(&lease, ROUNDS as u32, NOW)
            .await
            .unwrap();
        assert_eq!(taken.len(), ROUNDS);
        let key = claimed.host.key.clone();
        let mut page_ids: Vec<Option<UrlId>> = vec![None; ROUNDS];
        for taken in taken {
            let round: usize = taken
                .url
                .rsplit("/page")
                .next()
                .and_then(|r| r.parse().ok())
                .unwrap();
            page_ids[round] = Some(taken.id);
        }
        let page_ids: Vec<UrlId> = page_ids.into_iter().map(Option::unwrap).collect();
        let own: usize = key
            .trim_start_matches("https://h")
            .trim_end_matches(".example")
            .parse()
            .unwrap();
        workers.push((store, lease, own, page_ids));
    }
    let deadlocks_before = deadlocks(db).await;
    let start = Arc::new(tokio::sync::Barrier::new(WORKERS + 1));
    let mut tasks = Vec::new();
    for (store, lease, own, page_ids) in workers {
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            let mut sighted = Vec::new();
            let failures = settle_rounds(
                &store,
                &lease,
                own,
                &page_ids,
                &start,
                (with_links, calls),
                &mut sighted,
            )
            .await;
            store.close().await;
            (failures, page_ids, sighted)
        }));
    }
    let writer = Store::open(&db.url).await.unwrap();
    let enqueued = {
        let start = start.clone();
        tokio::spawn(async move {
            let mut inserted = Ok(0);
            for r in 0..ROUNDS {
                start.wait().await;
                let batch: Vec<NewUrl> = (0..WORKERS)
                    .rev()
                    .map(|h| url(&host(h), &format!("/{r}/enqueued")))
                    .collect();
                match writer.frontier().enqueue_urls(&batch, NOW).await {
                    Ok(done) => {
                        if let Ok(n) = &mut inserted {
                            *n += done.iter().filter(|e| e.inserted).count();
                        }
                    }
                    Err(e) => inserted = Err(format!("writer, round {r}: {e}")),
                }
            }
            writer.close().await;
            inserted
        })
    };
    let mut failures = Vec::new();
    let mut settled_pages = Vec::new();
    let mut sighted = Vec::new();
    for task in tasks {
        let (failed, pages, answered) = task.await.unwrap();
        failures.extend(failed);
        settled_pages.extend(pages);
        sighted.extend(answered);
    }
    assert!(
        failures.is_empty(),
        "{} settlements failed, the first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(enqueued.await.unwrap(), Ok(ROUNDS * WORKERS));
    assert_eq!(deadlocks(db).await, deadlocks_before, "deadlocks detected");

    for page in settled_pages {
        let record = store.frontier().url(page).await.unwrap().unwrap();
        assert_eq!(record.state, UrlState::Done, "{}", record.url);
    }
    // Every host knows its pages, the new links of every worker to it (its
    // own included), the writer's URLs, and no URL twice.
    for h in 0..WORKERS {
        let key = format!("https://{}", host(h));
        let known = store.frontier().host_by_key(&key).await.unwrap().unwrap();
        let linked = if with_links { ROUNDS * WORKERS } else { 0 };
        assert_eq!(known.urls_known, (ROUNDS + linked + ROUNDS) as i64, "{key}");
        if !with_links {
            continue;
        }
        let fresh = format!("https://{}", new_host(h));
        let fresh = store.frontier().host_by_key(&fresh).await.unwrap().unwrap();
        assert_eq!(fresh.urls_known, (ROUNDS * WORKERS) as i64);
    }
    // Each sighting answered is that of the photo its caller listed in its place, on its
    // page.
    let mut answered: BTreeMap<u8, BTreeSet<(SightingId, UrlId)>> = BTreeMap::new();
    for (seed, page, sighting) in &sighted {
        answered
            .entry(*seed)
            .or_default()
            .insert((*sighting, *page));
    }
    for (seed, answered) in answered {
        let stored: BTreeSet<(SightingId, UrlId)> = store
            .media()
            .sightings_of(&[seed; 32])
            .await
            .unwrap()
            .iter()
            .map(|s| (s.id, s.page))
            .collect();
        assert!(answered.is_subset(&stored), "photo {seed}");
    }
    let expected = match calls {
        Calls::Batches => 0,
        Calls::SinglePages => (WORKERS - 1) * ROUNDS * MEDIA,
    };
    assert_eq!(sighted.len(), expected);
}

/// A host no one knows before the settlements link to it.
fn new_host(h: usize) -> String {
    format!("new{h}.example")
}

/// Settles `page_ids` of host `own` under `lease`, one per round (after `start`): each page
/// done, linking (`with_links`) to the round's pages of every host and to a new URL on every
/// host and on every new host, settled as `calls` says. Returns what went wrong (a
/// settlement failed, or did not insert exactly its new URLs), after every round, so that
/// no other task waits at `start` forever; the sightings `settle_page` answered go to
/// `sighted`, as (photo seed, page, sighting).
async fn settle_rounds(
    store: &Store,
    lease: &Lease,
    own: usize,
    page_ids: &[UrlId],
    start: &tokio::sync::Barrier,
    (with_links, calls): (bool, Calls),
    sighted: &mut Vec<(u8, UrlId, SightingId)>,
) -> Vec<String> {
    let done = FetchOutcome::fetched(200, 100, UrlNext::Done);
    let mut failures = Vec::new();
    for (r, page) in page_ids.iter().enumerate() {
        start.wait().await;
        // Each worker lists the hosts in an order of its own (the store orders them).
        let mut links: Vec<NewUrl> = Vec::new();
        for i in (0..WORKERS).filter(|_| with_links) {
            let h = (own + 1 + i) % WORKERS;
            links.push(url(&host(h), &format!("/{r}/from{own}")));
            links.push(url(&new_host(h), &format!("/{r}/from{own}")));
            links.push(url(&host(h), &format!("/page{r}")));
        }
        let mut seeds: Vec<u8> = (0..MEDIA).map(|i| ((own + i) % MEDIA + 1) as u8).collect();
        let alone = calls == Calls::SinglePages && own + 1 < WORKERS;
        if alone && own % 2 == 1 {
            seeds.reverse();
        }
        let settlement = PageSettlement {
            lease: lease.clone(),
            seen: seeds
                .iter()
                .map(|seed| seen(*seed, *page, *page, Vec::new()))
                .collect(),
            completions: vec![(*page, done.clone())],
            links,
            raise_known_to: None,
            requeue_if_matched: None,
        };
        let at = NOW + 1 + r as i64;
        if alone {
            let settled = store
                .frontier()
                .settle_page(lease, &settlement.seen, &[(*page, &done)], at)
                .await;
            match settled {
                Ok(settled)
                    if settled.completions == [Completion::Recorded]
                        && settled.sightings.len() == seeds.len() =>
                {
                    let answered = seeds.iter().zip(&settled.sightings);
                    sighted.extend(answered.map(|(seed, sighting)| (*seed, *page, *sighting)));
                }
                Ok(settled) => failures.push(format!(
                    "worker {own}, round {r}: {} sightings, completed {:?}",
                    settled.sightings.len(),
                    settled.completions
                )),
                Err(e) => failures.push(format!("worker {own}, round {r}: {e}")),
            }
            continue;
        }
        let settled = match store.frontier().settle_pages(&[settlement], at).await {
            Ok(mut settled) => settled.pop(),
            Err(e) => {
                failures.push(format!("worker {own}, round {r}: {e}"));
                continue;
            }
        };
        let settled = match settled {
            Some(Ok(settled)) => settled,
            Some(Err(e)) => {
                failures.push(format!("worker {own}, round {r}: page: {e}"));
                continue;
            }
            None => {
                failures.push(format!("worker {own}, round {r}: no result"));
                continue;
            }
        };
        // Its own new links (two per host) are new to it alone; the pages were all known.
        let inserted: Vec<bool> = settled.links.iter().map(|l| l.inserted).collect();
        let expected: Vec<bool> = (0..WORKERS)
            .filter(|_| with_links)
            .flat_map(|_| [true, true, false])
            .collect();
        if inserted != expected {
            failures.push(format!("worker {own}, round {r}: inserted {inserted:?}"));
        }
    }
    failures
}

/// Deadlocks detected in the test's database so far (none on SQLite). The counter is
/// flushed by the victim's session when it is closed, at the latest.
async fn deadlocks(db: &TestDb) -> i64 {
    if !db.url.starts_with("postgres") {
        return 0;
    }
    let mut watch = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut watch)
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT COALESCE(deadlocks, 0) FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut watch)
    .await
    .unwrap()
}

/// Pages of each worker's batch that the database accepts, one batch per round.
const PAGES: usize = 3;
/// Where the photos of round `r` are served from: one URL per photo, embedded by every
/// page of the round (of every worker), so each page's sightings of a photo are also
/// written on the others' pages, and the workers' sightings overlap.
const CDN: &str = "cdn.example";

fn photo_path(r: usize, i: usize) -> String {
    format!("/r{r}/photo{i}.jpg")
}

/// A worker's pages of a round, by worker, round and page (the refused one last).
struct RoundPages {
    ids: Vec<Vec<Vec<UrlId>>>,
}

impl RoundPages {
    fn page(&self, w: usize, r: usize, k: usize) -> UrlId {
        self.ids[w][r][k]
    }

    fn refused(&self, w: usize, r: usize) -> UrlId {
        self.ids[w][r][PAGES]
    }

    /// The pages of round `r` the database accepts, of every worker.
    fn accepted(&self, r: usize) -> Vec<UrlId> {
        (0..WORKERS)
            .flat_map(|w| (0..PAGES).map(move |k| (w, k)))
            .map(|(w, k)| self.page(w, r, k))
            .collect()
    }
}

/// Every round, each worker settles a batch holding one page the database refuses (a
/// sighting at a URL that does not exist), so the batch cannot be written together and
/// its pages are written one at a time: its other pages, and the refused one, show photos
/// every worker's pages of the round show, each listing them in an order of its own (and
/// the worker's pages, in its own order, each a few of them: one after the other they add
/// photos out of order), and each page's sightings of them are written on every page of
/// the round (which all embed the photos' URLs). Each page alone must take its media and
/// sighting rows in the order the batch would, and not after the batch's earlier pages in
/// one transaction, or two workers falling back at once wait for each other's rows.
/// Exact rows after: every accepted page done with its sightings on every page of its
/// round, nothing of the refused pages.
async fn workers_falling_back_to_one_page_at_a_time_never_deadlock(db: &TestDb) {
    let store = db.open().await;
    let mut pages: Vec<NewUrl> = Vec::new();
    for w in 0..WORKERS {
        for r in 0..ROUNDS {
            for k in 0..PAGES {
                pages.push(url(&host(w), &format!("/r{r}/page{k}")));
            }
            pages.push(url(&host(w), &format!("/r{r}/refused")));
        }
    }
    let enqueued = store.frontier().enqueue_urls(&pages, NOW).await.unwrap();
    let mut ids = enqueued.iter().map(|e| e.id);
    let round_pages = RoundPages {
        ids: (0..WORKERS)
            .map(|_| {
                (0..ROUNDS)
                    .map(|_| ids.by_ref().take(PAGES + 1).collect())
                    .collect()
            })
            .collect(),
    };
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (store, claimed) = worker(db, w).await;
        let own: usize = claimed
            .host
            .key
            .trim_start_matches("https://h")
            .trim_end_matches(".example")
            .parse()
            .unwrap();
        let lease = claimed.lease.clone();
        let taken = store
            .frontier()
            .next_urls(&lease, (ROUNDS * (PAGES + 1)) as u32, NOW)
            .await
            .unwrap();
        assert_eq!(taken.len(), ROUNDS * (PAGES + 1));
        workers.push((store, lease, own));
    }
    // The photos' URLs, enqueued once the workers hold their hosts (so none claims the
    // CDN), embedded by every accepted page of their round.
    let mut embeds: Vec<NewUrl> = Vec::new();
    for r in 0..ROUNDS {
        for page in round_pages.accepted(r) {
            for i in 0..MEDIA {
                embeds.push(NewUrl {
                    source: UrlSource::Embed,
                    parent: Some(page),
                    ..url(CDN, &photo_path(r, i))
                });
            }
        }
    }
    let embedded = store.frontier().enqueue_urls(&embeds, NOW).await.unwrap();
    let photo_urls: BTreeMap<(usize, usize), UrlId> = (0..ROUNDS)
        .flat_map(|r| (0..MEDIA).map(move |i| (r, i)))
        .map(|(r, i)| (r, i, format!("https://{CDN}{}", photo_path(r, i))))
        .filter_map(|(r, i, at)| {
            let n = embeds.iter().position(|e| e.url == at)?;
            Some(((r, i), embedded.get(n)?.id))
        })
        .collect();
    assert_eq!(photo_urls.len(), ROUNDS * MEDIA);
    let round_pages = Arc::new(round_pages);
    let photo_urls = Arc::new(photo_urls);

    let deadlocks_before = deadlocks(db).await;
    let start = Arc::new(tokio::sync::Barrier::new(WORKERS));
    let mut tasks = Vec::new();
    for (store, lease, own) in workers {
        let (start, round_pages, photo_urls) =
            (start.clone(), round_pages.clone(), photo_urls.clone());
        tasks.push(tokio::spawn(async move {
            let failures =
                fall_back_every_round(&store, &lease, own, &round_pages, &photo_urls, &start).await;
            store.close().await;
            failures
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} settlements failed, the first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(deadlocks(db).await, deadlocks_before, "deadlocks detected");

    let frontier = store.frontier();
    for w in 0..WORKERS {
        for r in 0..ROUNDS {
            for k in 0..PAGES {
                let page = frontier
                    .url(round_pages.page(w, r, k))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(page.state, UrlState::Done, "{}", page.url);
            }
            let refused = frontier
                .url(round_pages.refused(w, r))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(refused.state, UrlState::Queued, "{}", refused.url);
        }
        let ghost = store.media().get(&ghost_seed(w)).await.unwrap();
        assert!(ghost.is_none(), "the refused page's media was written");
    }
    // Each photo of a round sighted on every accepted page of the round, once; on no
    // refused page.
    for i in 0..MEDIA {
        assert!(store.media().get(&photo_sha(i)).await.unwrap().is_some());
        let sighted: Vec<(UrlId, UrlId)> = store
            .media()
            .sightings_of(&photo_sha(i))
            .await
            .unwrap()
            .iter()
            .map(|s| (s.url, s.page))
            .collect();
        let expected: Vec<(UrlId, UrlId)> = (0..ROUNDS)
            .flat_map(|r| {
                let at = photo_urls[&(r, i)];
                round_pages
                    .accepted(r)
                    .into_iter()
                    .map(move |page| (at, page))
            })
            .collect();
        assert_eq!(
            sighted.iter().collect::<BTreeSet<_>>(),
            expected.iter().collect::<BTreeSet<_>>(),
            "photo {i}"
        );
        assert_eq!(sighted.len(), expected.len(), "photo {i}: a sighting twice");
    }
}

/// The photos: seeds 1 to `MEDIA`, as in the cases above.
fn photo_seed(i: usize) -> u8 {
    (i + 1) as u8
}

fn photo_sha(i: usize) -> [u8; 32] {
    [photo_seed(i); 32]
}

/// The media only worker `w`'s refused pages show.
fn ghost_seed(w: usize) -> [u8; 32] {
    [100 + w as u8; 32]
}

/// Photos each accepted page shows.
const SHOWN: usize = 4;

/// Worker `own`'s photos on its page `k`: `SHOWN` of them from the `2k`th on (so that the
/// pages of a batch one after the other would add photos out of order), all on the
/// refused one (`PAGES`); in an order of the worker's own, rotated and backwards for every
/// other worker.
fn photo_order(own: usize, k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = if k < PAGES {
        (0..SHOWN).map(|j| (2 * k + j) % MEDIA).collect()
    } else {
        (0..MEDIA).collect()
    };
    let shown = order.len();
    order.rotate_left(own % shown);
    if own % 2 == 1 {
        order.reverse();
    }
    order
}

/// Settles worker `own`'s pages of every round under `lease` (after `start`): one batch
/// a round, its accepted pages in an order of the worker's own and the refused page among
/// them. Returns what went wrong, after every round, so that no other task waits at
/// `start` forever.
async fn fall_back_every_round(
    store: &Store,
    lease: &Lease,
    own: usize,
    round_pages: &RoundPages,
    photo_urls: &BTreeMap<(usize, usize), UrlId>,
    start: &tokio::sync::Barrier,
) -> Vec<String> {
    let done = FetchOutcome::fetched(200, 100, UrlNext::Done);
    let mut failures = Vec::new();
    for r in 0..ROUNDS {
        start.wait().await;
        let showing = |page: UrlId, k: usize| -> Vec<SeenMedia> {
            photo_order(own, k)
                .into_iter()
                .map(|i| seen(photo_seed(i), photo_urls[&(r, i)], page, Vec::new()))
                .collect()
        };
        let settlement = |page: UrlId, seen: Vec<SeenMedia>| PageSettlement {
            lease: lease.clone(),
            seen,
            completions: vec![(page, done.clone())],
            links: Vec::new(),
            raise_known_to: None,
            requeue_if_matched: None,
        };
        // Each worker's pages in an order of its own: the refused one among them.
        let mut order: Vec<usize> = (0..PAGES).map(|k| (k + own) % PAGES).collect();
        let refused_at = own % (PAGES + 1);
        order.insert(refused_at, PAGES);
        let mut batch: Vec<PageSettlement> = (0..PAGES)
            .map(|k| (k + own) % PAGES)
            .map(|k| {
                let page = round_pages.page(own, r, k);
                settlement(page, showing(page, k))
            })
            .collect();
        let refused_page = round_pages.refused(own, r);
        let mut refused = showing(refused_page, PAGES);
        let mut ghost = seen(
            ghost_seed(own)[0],
            UrlId::from_raw(999_999),
            refused_page,
            Vec::new(),
        );
        ghost.sighting.page = None;
        refused.push(ghost);
        batch.insert(refused_at, settlement(refused_page, refused));
        let at = NOW + 1 + r as i64;
        let results = match store.frontier().settle_pages(&batch, at).await {
            Ok(results) => results,
            Err(e) => {
                failures.push(format!("worker {own}, round {r}: {e}"));
                continue;
            }
        };
        if results.len() != batch.len() {
            failures.push(format!(
                "worker {own}, round {r}: {} results",
                results.len()
            ));
            continue;
        }
        for (n, (k, result)) in order.into_iter().zip(results).enumerate() {
            let settled = match (k == PAGES, result) {
                (true, Err(StoreError::Database(_))) => continue,
                (true, other) => {
                    failures.push(format!("worker {own}, round {r}: refused page: {other:?}"));
                    continue;
                }
                (false, Ok(settled)) => settled,
                (false, Err(e)) => {
                    failures.push(format!("worker {own}, round {r}, page {n}: {e}"));
                    continue;
                }
            };
            // Each photo sighted on the page, and on the round's other accepted pages.
            let others = WORKERS * PAGES - 1;
            let also_on: Vec<usize> = settled.page.also_on.iter().map(Vec::len).collect();
            if settled.page.sightings.len() != SHOWN || also_on != vec![others; SHOWN] {
                failures.push(format!(
                    "worker {own}, round {r}, page {n}: {} sightings, also on {also_on:?}",
                    settled.page.sightings.len()
                ));
            }
        }
    }
    failures
}

/// How long the lease of [`a_lease_renewed_while_its_page_settles_keeps_the_lock_order`]
/// runs from `NOW`.
const RENEWED_LEASE_MS: i64 = 60_000;

/// A settlement looks at its leases unlocked, creates the hosts of the live ones' links, locks
/// its host rows, then checks its leases again, locked. A lease run out at the settlement's
/// clock and renewed in between (by its worker, with a clock read a little earlier: the lease
/// had not run out at its clock) is lost at the first look and live at the second: its page
/// is written, and its links' new hosts must still be created before any host row is
/// locked. On PostgreSQL, step by step: the renewal waits uncommitted while the settlement
/// starts (the settlement waits for it when it locks the lease's host); another worker has
/// inserted, uncommitted, the host the page links to, as a transaction in order does before
/// it locks the lease's host. When the settlement waits for that insert it must hold no host
/// row, or the other worker's lock would close a cycle (a deadlock, one of the two undone
/// after a second). On SQLite writers take turns: the settlement starts after the renewal
/// commits and finds the lease live. Both: the page is written, its link on the new host.
async fn a_lease_renewed_while_its_page_settles_keeps_the_lock_order(db: &TestDb) {
    const RENEW: &str = "UPDATE hosts SET lease_until = $1, due_at = $1 WHERE id = $2 \
        AND lease_owner = $3 AND lease_epoch = $4 AND lease_until > $5";
    const NEW_HOST: &str = "renewed-link.example";
    let store = db.open().await;
    let page_url = url("renewed.example", "/page");
    store
        .frontier()
        .enqueue_urls(&[page_url], NOW)
        .await
        .unwrap();
    let claimed = store
        .frontier()
        .claim_hosts("w", 1, RENEWED_LEASE_MS, NOW)
        .await
        .unwrap();
    let lease = claimed[0].lease.clone();
    let page = store.frontier().next_urls(&lease, 1, NOW).await.unwrap()[0].id;
    // The settlement's clock: the lease has just run out. The renewal's: it has not yet.
    let settled_at = NOW + RENEWED_LEASE_MS + 1;
    let renewed_at = NOW + RENEWED_LEASE_MS - 1_000;
    let settlement = PageSettlement {
        lease: lease.clone(),
        seen: Vec::new(),
        completions: vec![(page, FetchOutcome::fetched(200, 10, UrlNext::Done))],
        links: vec![url(NEW_HOST, "/linked")],
        raise_known_to: None,
        requeue_if_matched: None,
    };
    let settle = |settler: Store| {
        tokio::spawn(async move {
            let settled = settler
                .frontier()
                .settle_pages(std::slice::from_ref(&settlement), settled_at)
                .await;
            settler.close().await;
            settled
        })
    };
    let settler = Store::open(&db.url).await.unwrap();
    let locked_in_order = if db.url.starts_with("postgres") {
        let mut renewal = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let mut watch = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let renewal_pid = backend_pid(&mut renewal).await;
        let other_pid = backend_pid(&mut other).await;
        sqlx::raw_sql("BEGIN").execute(&mut renewal).await.unwrap();
        let renewed = sqlx::query(RENEW)
            .bind(renewed_at + RENEWED_LEASE_MS)
            .bind(lease.host_id().get())
            .bind(lease.owner())
            .bind(lease.epoch())
            .bind(renewed_at)
            .execute(&mut renewal)
            .await
            .unwrap();
        assert_eq!(renewed.rows_affected(), 1, "the lease is renewed");
        sqlx::raw_sql("BEGIN").execute(&mut other).await.unwrap();
        sqlx::query("INSERT INTO hosts (key, registrable_domain, created_at) VALUES ($1, $2, $3)")
            .bind(format!("https://{NEW_HOST}"))
            .bind(NEW_HOST)
            .bind(NOW)
            .execute(&mut other)
            .await
            .unwrap();
        let settling = settle(settler);
        wait_until_blocked_by(&mut watch, renewal_pid).await;
        sqlx::raw_sql("COMMIT").execute(&mut renewal).await.unwrap();
        wait_until_blocked_by(&mut watch, other_pid).await;
        // What the other worker, in order, locks next: the settlement's lease's host.
        let locked = sqlx::query("SELECT id FROM hosts WHERE id = $1 FOR NO KEY UPDATE NOWAIT")
            .bind(lease.host_id().get())
            .execute(&mut other)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
        let settled = settling.await.unwrap().unwrap();
        assert_eq!(settled.len(), 1);
        settled[0].as_ref().unwrap();
        locked
    } else {
        let mut renewal = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut renewal)
            .await
            .unwrap();
        let renewed = sqlx::query(RENEW)
            .bind(renewed_at + RENEWED_LEASE_MS)
            .bind(lease.host_id().get())
            .bind(lease.owner())
            .bind(lease.epoch())
            .bind(renewed_at)
            .execute(&mut renewal)
            .await
            .unwrap();
        assert_eq!(renewed.rows_affected(), 1, "the lease is renewed");
        let settling = settle(settler);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        sqlx::raw_sql("COMMIT").execute(&mut renewal).await.unwrap();
        let settled = settling.await.unwrap().unwrap();
        assert_eq!(settled.len(), 1);
        settled[0].as_ref().unwrap();
        Ok(())
    };
    assert_eq!(
        locked_in_order,
        Ok(()),
        "the settlement held its lease's host row while it waited to create a host: a \
         worker creating that host, then locking the lease's host (the one order) deadlocks \
         with it"
    );
    let record = store.frontier().url(page).await.unwrap().unwrap();
    assert_eq!(record.state, UrlState::Done);
    let new_host = store
        .frontier()
        .host_by_key(&format!("https://{NEW_HOST}"))
        .await
        .unwrap()
        .expect("the link's host exists");
    assert_eq!(
        new_host.urls_known, 1,
        "the page's link is queued on its host"
    );
}

async fn backend_pid(connection: &mut sqlx::PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(connection)
        .await
        .unwrap()
}

/// Returns once a session waits for a lock `pid` holds; panics after 30 s.
async fn wait_until_blocked_by(watch: &mut sqlx::PgConnection, pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
        )
        .bind(pid)
        .fetch_one(&mut *watch)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no session waits for session {pid}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

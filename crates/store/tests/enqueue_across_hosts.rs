//! A batch spanning many hosts is written in a few statements for all of them (`enqueue_in!`:
//! the hosts looked up and created together, the URLs of every host in multi-row statements,
//! every host's counter and due time in one statement). These contract tests (both
//! back-ends) pin that it writes what the same URLs enqueued one host at a time write: URL
//! rows (with the lease they were taken under), hosts' counters and due times, embeds.

#[macro_use]
mod common;

use aranea_store::{EnqueuedUrl, FetchOutcome, Lease, NewUrl, Store, UrlId, UrlNext, UrlSource};
use common::{NOW, TestDb, url, url_due};
use sqlx::Connection;

contract_tests!(
    a_batch_across_hosts_writes_what_one_host_at_a_time_writes,
    concurrent_batches_across_the_same_hosts_count_every_url_once,
    concurrent_batches_on_the_same_hosts_update_them_without_deadlock,
);

/// When the batch under test is enqueued.
const BATCH_AT: i64 = NOW + 3_000;
/// Until when `r.example` may not be fetched (its due time's floor).
const R_NEXT_ALLOWED: i64 = NOW + 50_000;
/// More URLs on one host than one multi-row statement takes (`ROWS_PER_STATEMENT`, 500).
const MANY: usize = 600;

fn embed(host: &str, path: &str, next_fetch_at: i64, page: UrlId) -> NewUrl {
    NewUrl {
        source: UrlSource::Embed,
        parent: Some(page),
        depth: 1,
        ..url_due(host, path, next_fetch_at)
    }
}

/// The same state in every database it is run on: known hosts `k1` (due before the batch's
/// URLs) and `k2` (due after them); `l1` and `l2` leased by `w` at different epochs (1 and
/// 2), whose leases are returned; `r`, released with nothing queued and a `next_allowed_at`
/// after the batch's URLs. Also returns the page the batch's media are embedded on.
async fn prepare(store: &Store) -> (Vec<Lease>, UrlId) {
    let frontier = store.frontier();
    frontier
        .enqueue_urls(&[url_due("l2.example", "/seed", NOW)], NOW)
        .await
        .unwrap();
    let first = frontier.claim_hosts("w", 1, 1_000, NOW).await.unwrap();
    assert_eq!(first[0].host.key, "https://l2.example");
    let known = frontier
        .enqueue_urls(
            &[
                url_due("k1.example", "/known1", NOW + 2_500),
                url_due("k1.example", "/page", NOW + 2_500),
                url_due("k2.example", "/known2", NOW + 90_000),
                url_due("l1.example", "/seed", NOW),
                url_due("r.example", "/seed", NOW),
            ],
            NOW + 1_000,
        )
        .await
        .unwrap();
    // l2's first lease has expired: claimed again, at epoch 2.
    let claimed = frontier
        .claim_hosts("w", 3, 60_000, NOW + 2_000)
        .await
        .unwrap();
    let lease = |key: &str| {
        claimed
            .iter()
            .find(|l| l.host.key == key)
            .unwrap_or_else(|| panic!("{key} not claimed"))
            .lease
            .clone()
    };
    let (l1, l2, r) = (
        lease("https://l1.example"),
        lease("https://l2.example"),
        lease("https://r.example"),
    );
    assert_eq!((l1.epoch(), l2.epoch()), (1, 2));
    let seed = frontier.next_urls(&r, 10, NOW + 2_000).await.unwrap();
    assert_eq!(seed.len(), 1);
    frontier
        .complete_url(
            &r,
            seed[0].id,
            &FetchOutcome::fetched(200, 10, UrlNext::Done),
            NOW + 2_000,
        )
        .await
        .unwrap();
    frontier.release(&r, R_NEXT_ALLOWED).await.unwrap();
    (vec![l1, l2], known[1].id)
}

/// Hosts new and known, leased or not, in no order: one URL twice, known URLs, media on
/// leased hosts, a known URL embedded, and one host with more URLs than a statement takes.
fn batch(page: UrlId) -> Vec<NewUrl> {
    let mut batch = vec![
        url_due("n1.example", "/a", NOW + 7_000),
        url_due("k2.example", "/new", NOW + 8_000),
        embed("l1.example", "/m1.jpg", NOW + 3_000, page),
        url_due("n2.example", "/x", NOW + 4_000),
        url_due("k1.example", "/known1", NOW + 3_000),
        url_due("n1.example", "/b", NOW + 5_000),
        embed("l2.example", "/m3.jpg", NOW + 3_000, page),
        url_due("r.example", "/after", NOW + 4_000),
        url_due("n1.example", "/a", NOW + 1_000), // the same URL again: not new, time ignored
        embed("k1.example", "/known1", NOW + 3_000, page),
        url_due("k1.example", "/new1", NOW + 6_000),
        url_due("l1.example", "/seed", NOW + 3_000),
        embed("l1.example", "/m2.jpg", NOW + 3_500, page),
        url_due("k2.example", "/new2", NOW + 9_000),
    ];
    for n in 0..MANY {
        let delay = i64::try_from(n % 97).unwrap_or(0);
        let url = url_due("many.example", &format!("/{n}"), NOW + 10_000 + delay);
        batch.insert(n % batch.len(), url);
    }
    batch
}

async fn a_batch_across_hosts_writes_what_one_host_at_a_time_writes(db: &TestDb) {
    let other = if db.url.starts_with("sqlite") {
        TestDb::sqlite().await
    } else {
        TestDb::postgres().await
    };
    let (together, apart) = (db.open().await, other.open().await);
    let (leases, page) = prepare(&together).await;
    let (apart_leases, apart_page) = prepare(&apart).await;
    let (batch, apart_batch) = (batch(page), batch(apart_page));

    let enqueued = together
        .frontier()
        .enqueue_urls_taken(&leases, &batch, BATCH_AT)
        .await
        .unwrap();
    let mut by_host: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, url) in apart_batch.iter().enumerate() {
        match by_host.iter_mut().find(|(key, _)| *key == url.host_key) {
            Some((_, indices)) => indices.push(i),
            None => by_host.push((url.host_key.clone(), vec![i])),
        }
    }
    assert_eq!(by_host.len(), 8);
    let mut enqueued_apart: Vec<Option<EnqueuedUrl>> = vec![None; apart_batch.len()];
    for (_, indices) in &by_host {
        let urls: Vec<NewUrl> = indices.iter().map(|i| apart_batch[*i].clone()).collect();
        let done = apart
            .frontier()
            .enqueue_urls_taken(&apart_leases, &urls, BATCH_AT)
            .await
            .unwrap();
        assert_eq!(done.len(), urls.len());
        for (i, result) in indices.iter().zip(done) {
            enqueued_apart[*i] = Some(result);
        }
    }
    let enqueued_apart: Vec<EnqueuedUrl> = enqueued_apart.into_iter().flatten().collect();

    let results = described(&together, &enqueued).await;
    assert_eq!(results.len(), batch.len());
    for (result, url) in results.iter().zip(&batch) {
        assert!(result.starts_with(&format!("{} on {}", url.url, url.host_key)));
    }
    assert_eq!(results, described(&apart, &enqueued_apart).await);
    let new = enqueued.iter().filter(|e| e.inserted).count();
    assert_eq!(new, MANY + 10, "every URL but the known and repeated ones");

    for (what, sql) in [
        ("URLs", URL_ROWS),
        ("hosts", HOST_ROWS),
        ("embeds", EMBED_ROWS),
    ] {
        let (got, want) = (lines(db, sql).await, lines(&other, sql).await);
        assert_eq!(got, want, "{what}");
    }
    let hosts = lines(db, HOST_ROWS).await;
    let expected = [
        // Due before the batch's URLs: unchanged.
        format!("https://k1.example|k1.example|{}|-|0|3", NOW + 2_500),
        // Due after them: as early as the earliest new one.
        format!("https://k2.example|k2.example|{}|-|0|3", NOW + 8_000),
        // Leased: due at the lease's expiry whatever is enqueued.
        format!("https://l1.example|l1.example|{}|w|1|3", NOW + 62_000),
        format!("https://l2.example|l2.example|{}|w|2|2", NOW + 62_000),
        format!(
            "https://many.example|many.example|{}|-|0|{MANY}",
            NOW + 10_000
        ),
        format!("https://n1.example|n1.example|{}|-|0|2", NOW + 5_000),
        format!("https://n2.example|n2.example|{}|-|0|1", NOW + 4_000),
        // Not before it may be fetched again.
        format!("https://r.example|r.example|{R_NEXT_ALLOWED}|-|1|2"),
    ];
    assert_eq!(hosts, expected);
    let taken: Vec<String> = lines(db, URL_ROWS)
        .await
        .into_iter()
        .filter(|line| !line.ends_with("|-"))
        .map(|line| {
            let (url, epoch) = (line.split('|').next(), line.rsplit('|').next());
            format!("{} under {}", url.unwrap_or(""), epoch.unwrap_or(""))
        })
        .collect();
    assert_eq!(
        taken,
        [
            "https://l1.example/m1.jpg under 1",
            "https://l1.example/m2.jpg under 1",
            "https://l2.example/m3.jpg under 2",
        ],
        "the media inserted on leased hosts are taken under their leases"
    );
    assert_eq!(
        lines(db, EMBED_ROWS).await,
        [
            "https://k1.example/known1 on https://k1.example/page",
            "https://l1.example/m1.jpg on https://k1.example/page",
            "https://l1.example/m2.jpg on https://k1.example/page",
            "https://l2.example/m3.jpg on https://k1.example/page",
        ]
    );
}

/// Each result as `URL on host key, new|known`.
async fn described(store: &Store, enqueued: &[EnqueuedUrl]) -> Vec<String> {
    let frontier = store.frontier();
    let mut described = Vec::with_capacity(enqueued.len());
    for result in enqueued {
        let url = frontier.url(result.id).await.unwrap().unwrap();
        let host = frontier.host(result.host_id).await.unwrap().unwrap();
        assert_eq!(url.host_id, result.host_id);
        let what = if result.inserted { "new" } else { "known" };
        described.push(format!("{} on {}, {what}", url.url, host.key));
    }
    described
}

/// Every URL row but its id: host, parent and the lease epoch it was taken under (`-`
/// for none) last.
const URL_ROWS: &str = "SELECT u.url || '|' || h.key || '|' || u.source || '|' \
    || CAST(u.priority AS TEXT) || '|' || CAST(u.depth AS TEXT) || '|' || u.state || '|' \
    || CAST(u.next_fetch_at AS TEXT) || '|' || COALESCE(CAST(u.report_id AS TEXT), '-') || '|' \
    || COALESCE(p.url, '-') || '|' || CAST(u.created_at AS TEXT) || '|' \
    || COALESCE(CAST(u.leased_epoch AS TEXT), '-') \
    FROM urls u JOIN hosts h ON h.id = u.host_id LEFT JOIN urls p ON p.id = u.parent_id";
/// Every host row's key, registrable domain, due time, lease owner and epoch, and URLs known.
const HOST_ROWS: &str = "SELECT key || '|' || registrable_domain || '|' \
    || COALESCE(CAST(due_at AS TEXT), '-') || '|' || COALESCE(lease_owner, '-') || '|' \
    || CAST(lease_epoch AS TEXT) || '|' || CAST(urls_known AS TEXT) FROM hosts";
/// Every embed as `media URL on page URL`.
const EMBED_ROWS: &str = "SELECT m.url || ' on ' || p.url FROM embeds e \
    JOIN urls m ON m.id = e.media_url_id JOIN urls p ON p.id = e.page_url_id";

/// The rows of `sql` (one text column), sorted.
async fn lines(db: &TestDb, sql: &'static str) -> Vec<String> {
    let mut lines: Vec<String> = if db.url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
    };
    lines.sort();
    lines
}

/// Writers enqueueing the same URLs at once, each in batches of its own order: none fails,
/// every URL is new to exactly one of them, and every host counts each of its URLs once.
async fn concurrent_batches_across_the_same_hosts_count_every_url_once(db: &TestDb) {
    let new = enqueue_concurrently(db, |_, p| format!("/{p}")).await;
    // `/0` of half the hosts was known before.
    assert_eq!(new, HOSTS * PATHS - HOSTS / 2);
    assert_eq!(urls_known(db).await, [PATHS as i64; HOSTS]);
}

/// Writers enqueueing URLs of their own on the same hosts at once, each in batches of its
/// own order, so that no writer waits for another's URL: on PostgreSQL they wait for each
/// other's host rows, in one order, and none is chosen as a deadlock's victim.
async fn concurrent_batches_on_the_same_hosts_update_them_without_deadlock(db: &TestDb) {
    let new = enqueue_concurrently(db, |w, p| format!("/{w}/{p}")).await;
    assert_eq!(new, WRITERS * HOSTS * PATHS);
    let known = (WRITERS * PATHS) as i64;
    let expected: Vec<i64> = (0..HOSTS)
        .map(|h| known + i64::from(h < HOSTS / 2))
        .collect();
    assert_eq!(urls_known(db).await, expected);
}

const WRITERS: usize = 6;
const HOSTS: usize = 12;
const PATHS: usize = 20;

/// `WRITERS` writers each enqueue `path(writer, p)` for every `p < PATHS` on every one of
/// `HOSTS` hosts (half of them known, with `/0`), in four batches, in an order of its own;
/// returns how many URLs were new.
async fn enqueue_concurrently(db: &TestDb, path: fn(usize, usize) -> String) -> usize {
    // Prime to HOSTS * PATHS: each writer's order is a permutation.
    const STEPS: [usize; WRITERS] = [1, 7, 11, 13, 17, 19];
    let store = db.open().await;
    let known: Vec<NewUrl> = (0..HOSTS / 2)
        .map(|h| url(&format!("h{h}.example"), "/0"))
        .collect();
    store.frontier().enqueue_urls(&known, NOW).await.unwrap();
    let mut stores = Vec::new();
    for _ in 0..WRITERS {
        stores.push(Store::open(&db.url).await.unwrap());
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
    let mut writers = Vec::new();
    for (w, store) in stores.into_iter().enumerate() {
        let start = start.clone();
        let batch: Vec<NewUrl> = (0..HOSTS * PATHS)
            .map(|i| (i * STEPS[w] + w * 7) % (HOSTS * PATHS))
            .map(|i| url(&format!("h{}.example", i % HOSTS), &path(w, i / HOSTS)))
            .collect();
        writers.push(tokio::spawn(async move {
            start.wait().await;
            let mut new = Vec::new();
            for part in batch.chunks(HOSTS * PATHS / 4) {
                let done = store.frontier().enqueue_urls(part, NOW).await.unwrap();
                new.extend(done.iter().filter(|e| e.inserted).map(|e| e.id));
            }
            new
        }));
    }
    let mut new = Vec::new();
    for writer in writers {
        new.extend(writer.await.unwrap());
    }
    new.sort();
    let len = new.len();
    new.dedup();
    assert_eq!(len, new.len(), "a URL new to two batches");
    len
}

/// `urls_known` of hosts `h0` … `h{HOSTS - 1}`.
async fn urls_known(db: &TestDb) -> Vec<i64> {
    let store = db.open().await;
    let mut known = Vec::new();
    for h in 0..HOSTS {
        let key = format!("https://h{h}.example");
        let host = store.frontier().host_by_key(&key).await.unwrap().unwrap();
        known.push(host.urls_known);
    }
    known
}

/// On PostgreSQL, a host created by another writer while a batch looks it up: the batch's
/// insert waits for that writer, creates nothing, and the batch finds the other's row (on
/// SQLite writers take turns on one lock, so the two cannot overlap).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_host_created_meanwhile_by_another_writer_is_found() {
    let db = TestDb::postgres().await;
    let store = db.open().await;
    let frontier = store.frontier();
    frontier
        .enqueue_urls(&[url("known.example", "/")], NOW)
        .await
        .unwrap();
    let mut creating = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut tx = creating.begin().await.unwrap();
    let raced: i64 = sqlx::query_scalar(
        "INSERT INTO hosts (key, registrable_domain, created_at) \
         VALUES ('https://raced.example', 'raced.example', 1) RETURNING id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let mut watch = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let batch = [
        url("raced.example", "/1"),
        url("known.example", "/2"),
        url("fresh.example", "/3"),
    ];
    let enqueue = frontier.enqueue_urls(&batch, NOW);
    let create = async {
        common::until_a_session_waits_for_a_lock(
            &mut watch,
            "the batch did not wait for the host being created",
        )
        .await;
        tx.commit().await.unwrap();
    };
    let (enqueued, ()) = tokio::join!(enqueue, create);
    let enqueued = enqueued.unwrap();
    assert!(enqueued.iter().all(|e| e.inserted));
    assert_eq!(enqueued[0].host_id.get(), raced);
    let host = frontier.host(enqueued[0].host_id).await.unwrap().unwrap();
    assert_eq!((host.created_at, host.urls_known), (1, 1));
    for (result, key) in enqueued[1..]
        .iter()
        .zip(["https://known.example", "https://fresh.example"])
    {
        let host = frontier.host(result.host_id).await.unwrap().unwrap();
        assert_eq!(host.key, key);
    }
}

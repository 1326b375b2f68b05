//! Frontier operations at 10k and 1M queued URLs: does the cost of a crawl cycle (claim a
//! host, take a batch, complete each URL, release) stay flat as the frontier grows?
//!
//! `cargo bench -p aranea-store --bench frontier` runs SQLite; with `ARANEA_TEST_POSTGRES`
//! set (a server URL where the user may CREATE DATABASE), PostgreSQL too. Set
//! `ARANEA_BENCH_SIZES=10000,100000` to choose the sizes. Prints figures and ratios; asserts
//! nothing about time.

use std::time::Instant;

use aranea_store::{FetchOutcome, NewUrl, Priority, Store, UrlNext, UrlSource};
use sqlx::Connection;

const NOW: i64 = 1_700_000_000_000;
const URLS_PER_HOST: usize = 100;
/// Hosts in one enqueued batch, and each one's URLs in it: 1,000 URLs per batch.
const BATCH_HOSTS: usize = 100;
const URLS_PER_HOST_PER_BATCH: usize = 10;
const CYCLES: usize = 300;
const BATCH: u32 = 10;

struct Figures {
    enqueue_per_url_us: f64,
    claim_us: f64,
    next_urls_us: f64,
    complete_us: f64,
    release_us: f64,
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn run(url: &str, size: usize) -> Figures {
    let store = Store::open(url).await.unwrap();
    let frontier = store.frontier();
    // Every batch has the same shape at every size, as a crawler's batches (a page's links)
    // do whatever the frontier holds: BATCH_HOSTS hosts, URLS_PER_HOST_PER_BATCH URLs each.
    // A host's URLs arrive over several rounds, interleaved with every other host's, so they
    // are spread through the table as a long crawl spreads them.
    let hosts = size / URLS_PER_HOST;
    assert!(
        size.is_multiple_of(URLS_PER_HOST * BATCH_HOSTS),
        "sizes must be multiples of {}",
        URLS_PER_HOST * BATCH_HOSTS
    );
    let groups = hosts / BATCH_HOSTS;
    let rounds = URLS_PER_HOST / URLS_PER_HOST_PER_BATCH;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH_HOSTS * URLS_PER_HOST_PER_BATCH);
    for round in 0..rounds {
        for group in 0..groups {
            for host in group * BATCH_HOSTS..(group + 1) * BATCH_HOSTS {
                let host = format!("h{host}.example");
                for page in round * URLS_PER_HOST_PER_BATCH..(round + 1) * URLS_PER_HOST_PER_BATCH {
                    let mut u = NewUrl::new(
                        &format!("https://{host}/page/{page}"),
                        &format!("https://{host}"),
                        &host,
                        UrlSource::Link,
                        Priority::Ordinary,
                        NOW,
                    );
                    u.depth = 1;
                    batch.push(u);
                }
            }
            frontier.enqueue_urls(&batch, NOW).await.unwrap();
            batch.clear();
        }
    }
    let enqueue = started.elapsed();

    let (mut claim, mut next, mut complete, mut release) = (0.0, 0.0, 0.0, 0.0);
    let (mut completes, mut claims) = (0usize, 0usize);
    let outcome = FetchOutcome::fetched(200, 5_000, UrlNext::Done);
    for cycle in 0..CYCLES {
        let now = NOW + cycle as i64;
        let t = Instant::now();
        let leased = frontier.claim_hosts("bench", 1, 60_000, now).await.unwrap();
        claim += t.elapsed().as_secs_f64();
        claims += 1;
        let Some(leased) = leased.into_iter().next() else {
            break;
        };
        let t = Instant::now();
        let urls = frontier.next_urls(&leased.lease, BATCH, now).await.unwrap();
        next += t.elapsed().as_secs_f64();
        for u in &urls {
            let t = Instant::now();
            frontier
                .complete_url(&leased.lease, u.id, &outcome, now)
                .await
                .unwrap();
            complete += t.elapsed().as_secs_f64();
            completes += 1;
        }
        let t = Instant::now();
        frontier.release(&leased.lease, now + 1_000).await.unwrap();
        release += t.elapsed().as_secs_f64();
    }
    store.close().await;
    let us = |total: f64, n: usize| total * 1e6 / n.max(1) as f64;
    Figures {
        enqueue_per_url_us: us(enqueue.as_secs_f64(), size),
        claim_us: us(claim, claims),
        next_urls_us: us(next, claims),
        complete_us: us(complete, completes),
        release_us: us(release, claims),
    }
}

async fn postgres_database(server: &str, name: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(server).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let (base, _) = server.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

fn main() {
    let sizes: Vec<usize> = std::env::var("ARANEA_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("aranea-bench-{}", std::process::id()));
    let mut backends = vec![("sqlite", None)];
    if let Ok(server) = std::env::var("ARANEA_TEST_POSTGRES") {
        backends.push(("postgres", Some(server)));
    }
    println!(
        "backend   queued_urls  enqueue_us/url  claim_us  next_urls_us  complete_us  release_us  peak_rss_mib"
    );
    for (name, server) in backends {
        let mut first: Option<Figures> = None;
        for &size in &sizes {
            let url = match &server {
                None => format!("sqlite://{}", dir.join(format!("{size}.db")).display()),
                Some(server) => runtime.block_on(postgres_database(
                    server,
                    &format!("aranea_bench_{}_{size}", std::process::id()),
                )),
            };
            let f = runtime.block_on(run(&url, size));
            println!(
                "{name:<9} {size:>11}  {:>14.1}  {:>8.1}  {:>12.1}  {:>11.1}  {:>10.1}  {:>12.1}",
                f.enqueue_per_url_us,
                f.claim_us,
                f.next_urls_us,
                f.complete_us,
                f.release_us,
                peak_rss_kib() as f64 / 1024.0
            );
            if let Some(base) = &first {
                println!(
                    "{name:<9} ratio {size}/{}: enqueue {:.2}x, claim {:.2}x, next_urls {:.2}x, complete {:.2}x, release {:.2}x",
                    sizes[0],
                    f.enqueue_per_url_us / base.enqueue_per_url_us,
                    f.claim_us / base.claim_us,
                    f.next_urls_us / base.next_urls_us,
                    f.complete_us / base.complete_us,
                    f.release_us / base.release_us
                );
            } else {
                first = Some(f);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

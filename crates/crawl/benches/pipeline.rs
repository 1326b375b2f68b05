//! The crawl pipeline's throughput: images fetched, hashed, matched and recorded per second
//! with politeness off on the simulated web (52 sites, SQLite), against `hash_media` alone on
//! the very bytes simweb serves (fetched and held in memory before timing) on the same number
//! of threads. Prints both and the ratio (goal: ≥ 0.70 on 2 cores).
//!
//! Politeness stays as the issue requires: one request in flight per host. The world has 52
//! hosts, so up to 52 steps run at once, far more than 2 cores need.
//!
//! The world is the acceptance test's, without its hostile site and on a seed whose providers
//! have no simulated latency or rate limit: those measure simweb's slowness and the crawler's
//! patience (timeouts, Retry-After), not the pipeline. Its media are rendered before timing.
//!
//! `cargo bench -p aranea-crawl --bench pipeline` (or `--profile dev` for a quick look).
//! `ARANEA_BENCH_COUNT_STATEMENTS=1` also prints how many times each SQL statement ran
//! during the crawl (sqlx reports each one as a log record; counting costs a little CPU);
//! `ARANEA_BENCH_PROGRESS=1` prints the crawl's counters every 100 ms.
//! `ARANEA_BENCH_POSTGRES=postgres://USER@HOST:PORT/DB` (a server where the user may CREATE
//! DATABASE) crawls into a fresh PostgreSQL database there instead of SQLite (left there for
//! inspection; its name is printed). The server's own CPU is not in the CPU figures.
//!
//! Two image sets, each crawled and then hashed alone (`ARANEA_BENCH_IMAGES=corpus|1mp`, default
//! both): the shared corpus (400 photos of about 0.1 MP, 355×236 typically: the worst case, where
//! the per-image cost of fetching and recording weighs most against decoding) and the 48
//! one-megapixel benchmark photos of `../shared/bench/images-1mp` (full-size photos, the size
//! issue 8's `/v1/media/` target names). simweb serves transformed copies of either (resized,
//! cropped, re-encoded, 256-pixel thumbnails, PNG), so both sets are a mix.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use aranea_crawl::fetch::{BodyKind, Fetcher};
use aranea_crawl::{Crawler, DiscardMedia};
use aranea_simweb::{SimWeb, scenario};

/// The photos simweb draws its images from.
#[derive(Clone, Copy, PartialEq)]
enum Images {
    /// The shared corpus: about 0.1 MP each.
    Corpus,
    /// `../shared/bench/images-1mp`: about 1 MP each.
    OneMegapixel,
}

impl Images {
    fn label(self) -> &'static str {
        match self {
            Images::Corpus => "corpus photos (~0.1 MP)",
            Images::OneMegapixel => "1-MP photos",
        }
    }

    fn dir(self) -> std::path::PathBuf {
        match self {
            Images::Corpus => aranea_simweb::corpus::DEFAULT_DIR.into(),
            Images::OneMegapixel => concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/bench/images-1mp"
            )
            .into(),
        }
    }
}

/// The first seed from 11 whose providers all answer at full speed.
fn fast_world(images: Images) -> aranea_simweb::RunningWorld {
    let spec = support::BIG.replace("hostile_sites = 1", "hostile_sites = 0");
    for seed in 11..200 {
        let world = SimWeb::new(scenario::parse(&spec).unwrap())
            .corpus_dir(images.dir())
            .seed(seed)
            .start()
            .unwrap();
        let fast = world
            .world()
            .providers
            .iter()
            .all(|p| p.serving.slow_ms == 0 && p.serving.rate_limit_per_second == 0);
        if fast {
            println!("world: seed {seed}, no slow or rate-limited provider, no hostile site");
            return world;
        }
        world.shutdown();
    }
    panic!("no seed in 11..200 gives a world without slow providers");
}

fn main() {
    let counting = std::env::var_os("ARANEA_BENCH_COUNT_STATEMENTS").is_some();
    if counting {
        statements::install();
    }
    let sets = match std::env::var("ARANEA_BENCH_IMAGES").as_deref() {
        Ok("corpus") => vec![Images::Corpus],
        Ok("1mp") => vec![Images::OneMegapixel],
        Ok(other) => panic!("ARANEA_BENCH_IMAGES={other}: expected corpus or 1mp"),
        Err(_) => vec![Images::Corpus, Images::OneMegapixel],
    };
    let mut ratios = Vec::new();
    for images in sets {
        println!("== {}", images.label());
        ratios.push((images, measure(images, counting)));
    }
    for (images, ratio) in ratios {
        println!(
            "ratio pipeline / hash_media, {}: {ratio:.2} ({})",
            images.label(),
            if ratio >= 0.70 { "met" } else { "not met" }
        );
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average: {}", load.trim());
    }
}

/// Crawls a world of `images` and hashes what it serves alone; returns the wall ratio.
fn measure(images: Images, counting: bool) -> f64 {
    let world = fast_world(images);
    // simweb renders transformed copies on first request, on the same cores: do it before the
    // clock starts (about a third of the samples in a profile without this).
    let rendered = world.prerender_media().unwrap();
    println!("world: {rendered} media items rendered before timing");
    let dir = tempfile::tempdir().unwrap();
    // ARANEA_BENCH_RUNTIME=current_thread: the crawler's async work on one thread (hashing
    // still on the blocking pool, SQLite on sqlx's threads); default: one worker per CPU.
    let current_thread = std::env::var("ARANEA_BENCH_RUNTIME").is_ok_and(|r| r == "current_thread");
    let runtime = if current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build()
    .unwrap();
    println!(
        "runtime: {}",
        if current_thread {
            "current_thread"
        } else {
            "multi_thread"
        }
    );
    let (media, secs, fetched, (crawl_cpu, serving_cpu)) = runtime.block_on(async {
        // ARANEA_BENCH_SQLITE_CONNECTIONS: the pool size to measure (default: the store's).
        let connections = std::env::var("ARANEA_BENCH_SQLITE_CONNECTIONS")
            .ok()
            .and_then(|n| n.parse().ok());
        let options = aranea_store::StoreOptions {
            max_connections: connections,
            ..aranea_store::StoreOptions::default()
        };
        let (url, kind) = match std::env::var("ARANEA_BENCH_POSTGRES") {
            Ok(server) => {
                // Named after this process, so that runs do not meet.
                let name = format!("aranea_pipeline_{}", std::process::id());
                let url = support::fresh_postgres_database(&server, &name).await;
                (url, format!("PostgreSQL, database {name}"))
            }
            Err(_) => (
                format!("sqlite://{}", dir.path().join("aranea.db").display()),
                "SQLite".to_owned(),
            ),
        };
        let store = aranea_store::Store::open_with(&url, &options)
            .await
            .unwrap();
        println!("store: {kind}, {connections:?} connections (None: the default)");
        let banks = support::banks(&world, &dir.path().join("banks"));
        let mut config = support::config(&world, 0);
        config.politeness.max_delay_ms = 0;
        config.politeness.crawl_delay_cap_ms = 0;
        config.max_hosts = 256;
        // ARANEA_BENCH_HASH_WORKERS: the hashing pool's slots to measure (default: one per CPU).
        if let Some(n) = std::env::var("ARANEA_BENCH_HASH_WORKERS")
            .ok()
            .and_then(|n| n.parse().ok())
        {
            config.hash_workers = n;
        }
        println!("hash workers: {} (0: one per CPU)", config.hash_workers);
        let crawler =
            Crawler::with_worker_name(store, banks, config, Arc::new(DiscardMedia), "bench")
                .unwrap();
        crawler
            .enqueue_seeds(&support::home_pages(&world))
            .await
            .unwrap();
        statements::reset();
        let started = Instant::now();
        let cpu = cpu_seconds();
        let serving = thread_cpu_seconds("simweb");
        // ARANEA_BENCH_PROGRESS=1: the crawl's counters every 100 ms (where the time goes).
        let progress = if std::env::var_os("ARANEA_BENCH_PROGRESS").is_some() {
            let printer = async {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    let p = crawler.progress();
                    println!(
                        "  {:>5.1} s: {} requests, {} pages, {} media, {} hosts held",
                        started.elapsed().as_secs_f64(),
                        p.fetched,
                        p.pages,
                        p.media,
                        p.hosts_leased
                    );
                }
            };
            tokio::select! {
                progress = crawler.run_until_idle() => progress.unwrap(),
                () = printer => unreachable!("the printer never ends"),
            }
        } else {
            crawler.run_until_idle().await.unwrap()
        };
        statements::stop();
        (
            progress.media,
            started.elapsed().as_secs_f64(),
            progress.fetched,
            (cpu_seconds() - cpu, thread_cpu_seconds("simweb") - serving),
        )
    });
    let crawl_rate = media as f64 / secs;
    println!(
        "pipeline: {media} images ({fetched} requests) in {secs:.1} s = {crawl_rate:.0} images/s; \
         {crawl_cpu:.1} CPU-s (simweb's serving included) = {:.2} CPU-ms per image",
        crawl_cpu * 1000.0 / media as f64
    );
    println!(
        "of which simweb's serving threads {serving_cpu:.1} CPU-s; the crawler alone about {:.2} CPU-ms per image",
        (crawl_cpu - serving_cpu) * 1000.0 / media as f64
    );

    if counting {
        statements::print(media);
    }
    let files = Arc::new(runtime.block_on(served_media(&world)));
    println!(
        "baseline: {} media files as simweb serves them",
        files.len()
    );
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = Arc::new(AtomicUsize::new(0));
    let total = usize::try_from(media).unwrap().max(1);
    let started = Instant::now();
    let cpu = cpu_seconds();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (files, next) = (Arc::clone(&files), Arc::clone(&next));
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let bytes = &files[i % files.len()];
                    let _ = aranea_hash::hash_media(bytes, &aranea_hash::Limits::default());
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let hash_secs = started.elapsed().as_secs_f64();
    let hash_cpu = cpu_seconds() - cpu;
    let hash_rate = total as f64 / hash_secs;
    println!(
        "hash_media on the served bytes: {total} images on {threads} threads in {hash_secs:.1} s = {hash_rate:.0} images/s; \
         {:.2} CPU-ms per image",
        hash_cpu * 1000.0 / total as f64
    );
    println!("ratio pipeline / hash_media: {:.2}", crawl_rate / hash_rate);
    println!(
        "ratio by CPU time (hash_media CPU per image / pipeline CPU per image): {:.2}",
        (hash_cpu / total as f64) / (crawl_cpu / media.max(1) as f64)
    );
    world.shutdown();
    crawl_rate / hash_rate
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 ticks/s).
fn cpu_seconds() -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// CPU seconds of this process's live threads named `name` (simweb names its serving threads
/// so; threads that ended are not counted, so this is a lower bound).
fn thread_cpu_seconds(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .map(|t| {
            stat_cpu_seconds(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default())
        })
        .sum()
}

/// User + system CPU seconds in a `/proc/…/stat` line (100 ticks/s).
fn stat_cpu_seconds(stat: &str) -> f64 {
    // Fields after the command name (which may hold spaces) start at the closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The bytes of every media item as simweb serves it, fetched through the crawler's own
/// fetcher (untimed).
async fn served_media(world: &aranea_simweb::RunningWorld) -> Vec<Vec<u8>> {
    let config = support::config(world, 0);
    let fetcher = Fetcher::new(config.fetch_config().unwrap()).unwrap();
    let w = world.world();
    let mut files = Vec::new();
    for item in &w.items {
        let url = world.url(&w.sites[item.site].host, &item.path);
        let fetched = fetcher.fetch(&url.parse().unwrap()).await;
        if let Ok(response) = fetched.outcome
            && matches!(response.kind, BodyKind::Media(_))
        {
            files.push(response.body.to_vec());
        }
    }
    files
}

/// Counts the SQL statements sqlx runs (it reports each one as a `log` record, target
/// `sqlx::query`), by statement text.
mod statements {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    static COUNTS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
    static ON: AtomicBool = AtomicBool::new(false);

    struct Counter;

    impl log::Log for Counter {
        fn enabled(&self, metadata: &log::Metadata) -> bool {
            metadata.target() == "sqlx::query"
        }
        fn log(&self, record: &log::Record) {
            if record.target() != "sqlx::query" || !ON.load(Ordering::Relaxed) {
                return;
            }
            let text = record.args().to_string();
            // The statement, without the timings and row counts that follow it.
            let statement = text.split(" rows_affected").next().unwrap_or(&text);
            let key: String = statement
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(110)
                .collect();
            let mut counts = COUNTS.lock().unwrap();
            *counts
                .get_or_insert_with(HashMap::new)
                .entry(key)
                .or_insert(0) += 1;
        }
        fn flush(&self) {}
    }

    pub fn install() {
        log::set_boxed_logger(Box::new(Counter)).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
    }

    pub fn reset() {
        *COUNTS.lock().unwrap() = None;
        ON.store(true, Ordering::Relaxed);
    }

    pub fn stop() {
        ON.store(false, Ordering::Relaxed);
    }

    pub fn print(media: u64) {
        let counts = COUNTS.lock().unwrap().take().unwrap_or_default();
        let mut rows: Vec<(u64, String)> = counts.into_iter().map(|(k, n)| (n, k)).collect();
        rows.sort_unstable_by(|a, b| b.cmp(a));
        let total: u64 = rows.iter().map(|(n, _)| n).sum();
        println!(
            "statements during the crawl: {total} = {:.1} per image (BEGIN/COMMIT not counted)",
            total as f64 / media.max(1) as f64
        );
        for (n, statement) in rows {
            println!(
                "{n:>8}  {:>5.2}/image  {statement}",
                n as f64 / media.max(1) as f64
            );
        }
    }
}

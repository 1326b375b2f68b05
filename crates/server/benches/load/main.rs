//! Load benchmark: the server in a child process, an HTTP/1.1 load generator in this one,
//! over loopback. Prints requests/s, latency percentiles and ratios to the in-process work,
//! then a summary against the targets of issue 8:
//!
//! - `/v1/pdq/` (one hash per request) against an empty bank: HTTP handling alone;
//! - `/v1/pdq/` against banks of N PDQ-like entries (bench/hamming's generator) vs
//!   `Generation::match_signal` in process on the same data and queries, on two threads.
//!   Closed-loop runs (each connection sending when answered, as wrk does, the generator
//!   collecting answers every 250 µs rather than waking for each) at 16, 32 and 64
//!   connections; the verdict is the server's capacity within the latency target: the run
//!   at the most connections whose own p99 is within 10 ms, its requests/s against the
//!   in-process rate (the mean of a run just before the server's runs and one just after).
//!   (A closed loop's mean latency is connections / throughput, Little's law: more
//!   connections keep the server busier through the generator's stalls but queue longer,
//!   so the count that serves most within the target differs with the bank's size.) Every
//!   run is printed. A run paced at 80% of the in-process rate (open loop) follows, printed
//!   for information: that
//!   pace sits at 90–100% of what the server can answer while the generator shares its cores,
//!   so its queue, and p99, grow with every stall;
//! - `/v1/media/` on the 1-MP JPEGs of ../shared/bench/images-1mp vs `hash_media` in process
//!   (what `aranea hash` does per file).
//!
//! Every figure carries the 1-minute load average and CPU seconds (server, generator and
//! in-process), and every measured run but the informational paced one the machine's steal
//! time while it ran (CPU time a virtual machine's hypervisor gave to other guests), so a run
//! on a shared machine can be read for what it is. A run with more than 5 % steal is run
//! again, up to three attempts (see `MAX_STEAL_PCT`): every attempt is printed, the last
//! counts. The generator shares the server's two cores (its CPU per request is printed): the
//! throughput ratio includes its cost, the per-server-CPU-second ratio does not.
//!
//! `cargo bench -p aranea-server --bench load`. Environment: ARANEA_LOAD_SIZES (default
//! `1000000`; add `10000000` for 10M, which needs ~4 GB), ARANEA_LOAD_SECS (default 5),
//! ARANEA_LOAD_CONNECTIONS (the bank runs' connection counts, default `16,32,64`; the
//! empty-bank run and the paced run use the first), ARANEA_LOAD_TICK_US (how long the bank
//! runs' generator sleeps between turns, default 250; 0 wakes it for every answer),
//! ARANEA_LOAD_VARIANTS (server configurations to
//! compare on the banks, `;`-separated JSON objects of `ServerConfig` fields; default `{}`).
//! The PDQ sets need python3 with numpy; data and banks are built once and kept under the
//! target dir's `bench-data/` (a 10M bank takes minutes to build).

mod drive;
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aranea_index::{
    BankFilter, BankSpec, BankStore, NewEntry, Origin, Provenance, Signal, SignalType,
};
use base64::Engine;

use drive::{LoadResult, Pace, drive, request};
use server::{MachineTicks, Server, load_average, own_cpu_secs};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    secs: u64,
    /// Closed-loop connection counts for the bank runs; the first also for the others.
    connections: Vec<usize>,
    /// How the bank runs' closed loops send: ticked unless ARANEA_LOAD_TICK_US is 0.
    bank_pace: Pace,
}

/// A latency target of issue 8, for `/v1/pdq/` at every bank size.
const P99_TARGET_MS: f64 = 10.0;

/// A run during which the hypervisor withheld more than this share of the machine's CPU time
/// (steal: our virtual CPUs wanted to run and did not) measured the host, not the server: it
/// is run again, up to [`ATTEMPTS`] times in all, and the last attempt counts whatever its
/// steal. The rule looks only at steal, never at the figure measured, so it cannot pick a
/// lucky run. Steal hits the empty-bank run most: woken for every answer, the two processes
/// leave a virtual CPU idle for a moment many times a millisecond, and each wake-up then waits
/// for the host (2 Dec 2026: 5-45 % steal there, 12,844-53,884 requests/s, the rate falling as
/// steal rose; under 1 % in the bank runs, whose CPUs never idle).
const MAX_STEAL_PCT: f64 = 5.0;
const ATTEMPTS: usize = 3;

/// `run` (which prints its own figures) until its steal is within [`MAX_STEAL_PCT`] or
/// [`ATTEMPTS`] are used; the last result and its steal.
fn undisturbed<T>(what: &str, mut run: impl FnMut() -> (T, f64)) -> (T, f64) {
    let mut attempt = 1;
    loop {
        let (result, steal) = run();
        if steal <= MAX_STEAL_PCT || attempt == ATTEMPTS {
            return (result, steal);
        }
        attempt += 1;
        println!(
            "  ({what}: steal {steal:.1}% over {MAX_STEAL_PCT}%, measured again: attempt {attempt} of {ATTEMPTS})"
        );
    }
}

fn main() {
    if server::run_if_child() {
        return;
    }
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes bench binaries; nothing to list.
    }
    let settings = Settings {
        secs: env_or("ARANEA_LOAD_SECS", 5u64),
        connections: std::env::var("ARANEA_LOAD_CONNECTIONS")
            .unwrap_or_else(|_| "16,32,64".to_owned())
            .split(',')
            .filter_map(|c| c.trim().parse().ok())
            .filter(|&c| c > 0)
            .collect(),
        bank_pace: match env_or("ARANEA_LOAD_TICK_US", 250u64) {
            0 => Pace::ClosedLoop,
            us => Pace::Ticked(Duration::from_micros(us)),
        },
    };
    assert!(
        !settings.connections.is_empty(),
        "ARANEA_LOAD_CONNECTIONS: comma-separated connection counts"
    );
    let sizes: Vec<usize> = std::env::var("ARANEA_LOAD_SIZES")
        .unwrap_or_else(|_| "1000000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let variants: Vec<String> = std::env::var("ARANEA_LOAD_VARIANTS")
        .unwrap_or_else(|_| "{}".to_owned())
        .split(';')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    let root = std::env::temp_dir().join(format!("aranea-load-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "load benchmark: {cpus} CPUs, {} s per run, {:?} connections, load average {:.1}",
        settings.secs,
        settings.connections,
        load_average()
    );
    let db = root.join("aranea.db");
    let credentials = client(&db);
    let mut summary = Vec::new();

    // 1. HTTP handling alone: empty bank.
    let empty = root.join("empty-banks");
    BankStore::open(&empty)
        .unwrap()
        .create_bank(BankSpec::new("bench", "bench", "csam"))
        .unwrap();
    let query = [Signal::from_bytes(SignalType::Pdq, &[0x5a; 32]).unwrap()];
    let (http, steal) = undisturbed("empty bank", || {
        let (http, server_cpu, steal) = on_fresh_server(&db, &empty, |port| {
            pdq_load(
                port,
                &credentials,
                &query,
                &settings,
                settings.connections[0],
                Pace::ClosedLoop,
            )
        });
        println!(
            "POST /v1/pdq/, empty bank: {}, {:.0} per server CPU second (load {:.1}, steal {steal:.1}%)",
            http.describe(),
            http.requests as f64 / server_cpu,
            load_average()
        );
        (http, steal)
    });
    let load = load_average();
    summary.push(format!(
        "HTTP alone: {:.0} req/s (target >= 30,000: {}), p99 {:.2} ms, load {load:.1}, steal {steal:.1}%",
        http.per_second,
        verdict(http.per_second >= 30_000.0),
        http.latency_ms(0.99)
    ));

    // 2. Banks of N PDQ-like entries.
    for n in sizes {
        let Some(queries) = pdq_queries(n) else {
            println!("bank of {n}: skipped (python3 with numpy is needed to generate the data)");
            continue;
        };
        let (banks, store) = cached_bank(n);
        let cpu = own_cpu_secs();
        let batch_of_one = match_in_process(&store, &queries, settings.secs, false);
        let batch_cpu = own_cpu_secs() - cpu;
        let before = in_process_rate(&store, &queries, settings.secs, |before| {
            println!(
                "bank of {n}, in process (2 threads, match_signal): {:.0} queries/s, {:.0} per CPU second (load {:.1}, steal {:.1}%)",
                before.per_second,
                before.per_cpu_second,
                load_average(),
                before.steal_pct
            );
        });
        drop(store); // the child holds its own copy; two would not fit at 10M
        println!(
            "  (match_batch of one query: {:.0} queries/s, {:.0} per CPU second)",
            batch_of_one.0,
            batch_of_one.1 as f64 / batch_cpu
        );
        let runs: Vec<BankRuns> = variants
            .iter()
            .map(|variant| {
                bank_run(
                    n,
                    &db,
                    &banks,
                    variant,
                    &credentials,
                    &queries,
                    &settings,
                    0.8 * before.per_second,
                )
            })
            .collect();
        // The server runs are bracketed: the in-process rate drifts on a shared VM from
        // minute to minute (11,200 to 13,500 per CPU second at 1M on one day), and a
        // reference taken only before them would carry that drift into the ratio.
        let store = BankStore::open(&banks).unwrap();
        let after = in_process_rate(&store, &queries, settings.secs, |after| {
            println!(
                "bank of {n}, in process again after the server runs: {:.0} queries/s, {:.0} per CPU second (load {:.1}, steal {:.1}%)",
                after.per_second,
                after.per_cpu_second,
                load_average(),
                after.steal_pct,
            );
        });
        drop(store);
        let reference = InProcess {
            per_second: (before.per_second + after.per_second) / 2.0,
            per_cpu_second: (before.per_cpu_second + after.per_cpu_second) / 2.0,
            steal_pct: (before.steal_pct + after.steal_pct) / 2.0,
        };
        println!(
            "  reference: the mean, {:.0} queries/s ({:+.0}% from before to after)",
            reference.per_second,
            100.0 * (after.per_second / before.per_second - 1.0)
        );
        for bank_runs in &runs {
            summary.push(bank_runs.summary(n, &reference));
        }
    }

    // 3. Media: hashing 1-MP JPEGs through HTTP vs in process.
    let images = bench_images();
    let cpu = own_cpu_secs();
    let (in_process, hashed) = hash_in_process(&images, settings.secs);
    let in_process_per_cpu = hashed as f64 / (own_cpu_secs() - cpu);
    let requests: Vec<Vec<u8>> = images
        .iter()
        .map(|i| request("POST /v1/media/", &credentials, "image/jpeg", i))
        .collect();
    let ((http, server_cpu), steal) = undisturbed("media", || {
        let (http, server_cpu, steal) = on_fresh_server(&db, &empty, |port| {
            drive(port, requests.clone(), 4, settings.secs, Pace::ClosedLoop)
        });
        println!(
            "POST /v1/media/, 1-MP JPEGs (4 connections): {} (load {:.1}, steal {steal:.1}%)",
            http.describe(),
            load_average()
        );
        ((http, server_cpu), steal)
    });
    let load = load_average();
    println!(
        "  in process (2 threads, hash_media as `aranea hash`): {in_process:.1} images/s, {in_process_per_cpu:.1} per CPU second; server: {:.1} images per CPU second",
        http.requests as f64 / server_cpu
    );
    let ratio = http.per_second / in_process;
    summary.push(format!(
        "media: HTTP/in-process = {ratio:.2} (target >= 0.80: {}) ({:.1} vs {in_process:.1} images/s); per CPU second {:.2} ({:.1} vs {in_process_per_cpu:.1}); p99 {:.1} ms; load {load:.1}, steal {steal:.1}%",
        verdict(ratio >= 0.8),
        http.per_second,
        (http.requests as f64 / server_cpu) / in_process_per_cpu,
        http.requests as f64 / server_cpu,
        http.latency_ms(0.99)
    ));

    println!("\nsummary ({cpus} CPUs, generator and server on the same CPUs):");
    for line in &summary {
        println!("  {line}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// A server started afresh on `banks` and driven by `load` (given its port), then stopped:
/// the load's result, the server's CPU seconds under it and the machine's steal meanwhile.
fn on_fresh_server(
    db: &Path,
    banks: &Path,
    load: impl FnOnce(u16) -> LoadResult,
) -> (LoadResult, f64, f64) {
    let server = Server::spawn(db, banks, "{}");
    let cpu = server.cpu_secs();
    let ticks = MachineTicks::now();
    let result = load(server.port);
    let steal = ticks.steal_pct_since();
    let server_cpu = server.cpu_secs() - cpu;
    server.stop();
    (result, server_cpu, steal)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// Single-hash matching in process: queries per wall second and per CPU second, and the
/// machine's steal meanwhile.
struct InProcess {
    per_second: f64,
    per_cpu_second: f64,
    steal_pct: f64,
}

/// The in-process rate, measured again while the machine's steal is too high (see
/// [`undisturbed`]); `print` shows each attempt.
fn in_process_rate(
    store: &BankStore,
    queries: &[Signal],
    secs: u64,
    print: impl Fn(&InProcess),
) -> InProcess {
    undisturbed("in process", || {
        let cpu = own_cpu_secs();
        let ticks = MachineTicks::now();
        let (per_second, done) = match_in_process(store, queries, secs, true);
        let measured = InProcess {
            per_second,
            per_cpu_second: done as f64 / (own_cpu_secs() - cpu),
            steal_pct: ticks.steal_pct_since(),
        };
        print(&measured);
        let steal = measured.steal_pct;
        (measured, steal)
    })
    .0
}

/// One closed-loop run against a bank.
struct ClosedRun {
    connections: usize,
    result: LoadResult,
    per_server_cpu_second: f64,
    load: f64,
    steal_pct: f64,
}

/// One server configuration's runs against one bank.
struct BankRuns {
    variant: String,
    closed: Vec<ClosedRun>,
    paced: LoadResult,
    paced_load: f64,
    rss_mb: f64,
}

/// One server configuration against the bank of `n`: closed loop at each connection count,
/// then paced at `paced_rate` (open loop, informational).
#[allow(clippy::too_many_arguments)]
fn bank_run(
    n: usize,
    db: &Path,
    banks: &Path,
    variant: &str,
    credentials: &str,
    queries: &[Signal],
    settings: &Settings,
    paced_rate: f64,
) -> BankRuns {
    let server = Server::spawn(db, banks, variant);
    println!(
        "POST /v1/pdq/, bank of {n}, server {variant}: started in {:.1} s",
        server.startup_secs
    );
    let mut closed = Vec::new();
    for &connections in &settings.connections {
        let (run, _) = undisturbed(&format!("{connections} connections"), || {
            let cpu = server.cpu_secs();
            let ticks = MachineTicks::now();
            let result = pdq_load(
                server.port,
                credentials,
                queries,
                settings,
                connections,
                settings.bank_pace,
            );
            let steal_pct = ticks.steal_pct_since();
            let per_server_cpu_second = result.requests as f64 / (server.cpu_secs() - cpu);
            let load = load_average();
            println!(
                "  closed loop, {connections} connections: {}, {per_server_cpu_second:.0} per server CPU second (load {load:.1}, steal {steal_pct:.1}%)",
                result.describe(),
            );
            let run = ClosedRun {
                connections,
                result,
                per_server_cpu_second,
                load,
                steal_pct,
            };
            (run, steal_pct)
        });
        closed.push(run);
    }
    let paced = pdq_load(
        server.port,
        credentials,
        queries,
        settings,
        settings.connections[0],
        Pace::Rate(paced_rate),
    );
    let paced_load = load_average();
    let rss_mb = server.peak_rss_mb();
    server.stop();
    println!(
        "  paced at {paced_rate:.0}/s: {} (load {paced_load:.1}); peak RSS {rss_mb:.0} MB",
        paced.describe()
    );
    BankRuns {
        variant: variant.to_owned(),
        closed,
        paced,
        paced_load,
        rss_mb,
    }
}

impl BankRuns {
    /// The verdict against `reference`: the capacity within the latency target, the run at
    /// the most connections whose p99 is inside it (chosen by latency, not by the throughput
    /// it reports, so noise cannot pick the luckiest run); with none inside it, the fewest
    /// connections, failed.
    fn summary(&self, n: usize, reference: &InProcess) -> String {
        let variant = &self.variant;
        let Some(counted) = self
            .closed
            .iter()
            .filter(|r| r.result.latency_ms(0.99) <= P99_TARGET_MS)
            .max_by_key(|r| r.connections)
            .or_else(|| self.closed.iter().min_by_key(|r| r.connections))
        else {
            return format!("bank of {n}, server {variant}: no closed-loop run");
        };
        let (connections, closed, load) = (counted.connections, &counted.result, counted.load);
        let ratio = closed.per_second / reference.per_second;
        let p99 = closed.latency_ms(0.99);
        let all: Vec<String> = self
            .closed
            .iter()
            .map(|r| {
                format!(
                    "{}: {:.2} at p99 {:.2} ms",
                    r.connections,
                    r.result.per_second / reference.per_second,
                    r.result.latency_ms(0.99)
                )
            })
            .collect();
        format!(
            "bank of {n}, server {variant}: HTTP/in-process = {ratio:.2} with p99 {p99:.2} ms in the same closed-loop run of {connections} connections, the most within the latency target (runs by connections: {}) (target >= 0.80 and <= {P99_TARGET_MS} ms: {}); in process: the mean of a run before and one after the server's; per server CPU second {:.2} of in process; generator {:.1} CPU µs/request; paced at 80% of in process (open loop, informational): p99 {:.2} ms, {:.0}/s achieved; peak RSS {:.0} MB; load {load:.1}/{:.1}; steal {:.1}% in the counted run, {:.1}% in the in-process runs",
            all.join(", "),
            verdict(ratio >= 0.8 && p99 <= P99_TARGET_MS),
            counted.per_server_cpu_second / reference.per_cpu_second,
            closed.generator_us_per_request(),
            self.paced.latency_ms(0.99),
            self.paced.per_second,
            self.rss_mb,
            self.paced_load,
            counted.steal_pct,
            reference.steal_pct,
        )
    }
}

/// A database with one Shield client; returns its `NAME:SECRET`.
fn client(db: &Path) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = aranea_store::Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let issued = aranea_server::issue_client(&db, "bench", &["shield".to_owned()], None)
            .await
            .unwrap();
        db.close().await;
        format!("{}:{}", issued.client.name, issued.secret)
    })
}

/// The bank directory of `n` PDQ-like entries, built once and kept beside the data (a
/// directory an older index format cannot open, or that is incomplete, is built again).
fn cached_bank(n: usize) -> (PathBuf, BankStore) {
    let dir = data_dir(n).join("banks");
    let complete = data_dir(n).join("banks.complete");
    // The marker holds the entry count (the generator's duplicates are not added twice).
    let recorded: Option<usize> = std::fs::read_to_string(&complete)
        .ok()
        .and_then(|count| count.trim().parse().ok());
    if let Some(count) = recorded
        && let Ok(store) = BankStore::open(&dir)
        && store.state().entry_count() == count
    {
        println!("bank of {n}: reusing {}", dir.display());
        return (dir, store);
    }
    let built = Instant::now();
    let _ = std::fs::remove_file(&complete);
    let _ = std::fs::remove_dir_all(&dir);
    let codes = chunks(&data_dir(n).join("db.u8")).unwrap();
    let mut store = BankStore::open(&dir).unwrap();
    let bank = store
        .create_bank(BankSpec::new("bench", "bench", "csam"))
        .unwrap();
    store.begin_transaction().unwrap();
    let provenance = store
        .add_provenance(Provenance {
            added_by: "bench".into(),
            added_at: 0,
            origin: Origin::Manual,
        })
        .unwrap();
    for (i, chunk) in codes.chunks(50_000).enumerate() {
        let entries: Vec<NewEntry> = chunk
            .iter()
            .enumerate()
            .map(|(j, code)| NewEntry {
                bank,
                signal: Signal::from_bytes(SignalType::Pdq, code).unwrap(),
                classification: None,
                provenance,
                line: (i * 50_000 + j) as u64,
                metadata: None,
            })
            .collect();
        store.append_entries(&entries).unwrap();
    }
    store.commit_transaction().unwrap();
    store.publish().unwrap();
    store.write_snapshot().unwrap();
    let count = store.state().entry_count();
    drop(store);
    std::fs::write(&complete, count.to_string()).unwrap();
    println!(
        "bank of {n}: built in {:.1} s",
        built.elapsed().as_secs_f64()
    );
    // Reopened as the server opens it (the builder holds every entry in memory).
    let store = BankStore::open(&dir).unwrap();
    (dir, store)
}

fn pdq_load(
    port: u16,
    credentials: &str,
    queries: &[Signal],
    settings: &Settings,
    connections: usize,
    pace: Pace,
) -> LoadResult {
    let requests: Vec<Vec<u8>> = queries
        .iter()
        .take(10_000)
        .map(|q| {
            let body = format!(
                "{{\"hashes\":[\"{}\"]}}",
                base64::engine::general_purpose::STANDARD.encode(q.as_bytes())
            );
            request(
                "POST /v1/pdq/",
                credentials,
                "application/json",
                body.as_bytes(),
            )
        })
        .collect();
    drive(port, requests, connections, settings.secs, pace)
}

/// Queries per second of single-hash matching in process on two threads, and how many:
/// `match_signal`, or `match_batch` of one query when not `one_by_one`.
fn match_in_process(
    store: &BankStore,
    queries: &[Signal],
    secs: u64,
    one_by_one: bool,
) -> (f64, usize) {
    let live = store.live();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let done: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let live = Arc::clone(&live);
                scope.spawn(move || {
                    let mut n = 0usize;
                    while Instant::now() < deadline {
                        for q in queries.iter().skip(t).step_by(2).take(256) {
                            let generation = live.load();
                            if one_by_one {
                                std::hint::black_box(generation.match_signal(q, &BankFilter::All));
                            } else {
                                let one = std::slice::from_ref(q);
                                std::hint::black_box(generation.match_batch(one, &BankFilter::All));
                            }
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    (done as f64 / started.elapsed().as_secs_f64(), done)
}

/// Images per second hashed in process on two threads, and how many.
fn hash_in_process(images: &[Vec<u8>], secs: u64) -> (f64, usize) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let done: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                scope.spawn(move || {
                    let mut n = 0usize;
                    let mut i = t;
                    while Instant::now() < deadline {
                        let image = &images[i % images.len()];
                        std::hint::black_box(
                            aranea_hash::hash_media(image, &Default::default()).unwrap(),
                        );
                        n += 1;
                        i += 2;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    (done as f64 / started.elapsed().as_secs_f64(), done)
}

fn bench_images() -> Vec<Vec<u8>> {
    let dir = Path::new(SHARED).join("bench/images-1mp");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Where the data set of `n` codes and its bank are kept.
fn data_dir(n: usize) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join(format!("bench-data/pdq-{n}"))
}

/// The queries of bench/hamming's seeded generator for `n` codes (generated once).
fn pdq_queries(n: usize) -> Option<Vec<Signal>> {
    let dir = data_dir(n);
    if !dir.join("queries.u8").exists() {
        std::fs::create_dir_all(&dir).ok()?;
        let status = Command::new("python3")
            .arg(Path::new(SHARED).join("bench/hamming/gen_pdq_data.py"))
            .args([
                "--n",
                &n.to_string(),
                "--q",
                "10000",
                "--seed",
                "1",
                "--out",
            ])
            .arg(&dir)
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
    }
    Some(
        chunks(&dir.join("queries.u8"))?
            .iter()
            .map(|q| Signal::from_bytes(SignalType::Pdq, q).unwrap())
            .collect(),
    )
}

fn chunks(file: &Path) -> Option<Vec<[u8; 32]>> {
    let bytes = std::fs::read(file).ok()?;
    Some(
        bytes
            .chunks_exact(32)
            .map(|c| <[u8; 32]>::try_from(c).unwrap())
            .collect(),
    )
}

//! Load benchmark: the server in a child process, an HTTP/1.1 load generator in this one,
//! over loopback. Prints requests/s, latency percentiles and ratios to the in-process work:
//!
//! - `/v1/pdq/` (one hash per request) against an empty bank: HTTP handling alone;
//! - `/v1/pdq/` against banks of N PDQ-like entries (bench/hamming's generator) vs
//!   `Generation::match_signal` in process on the same data and queries;
//! - `/v1/media/` on the 1-MP JPEGs of ../shared/bench/images-1mp vs `hash_media` in process
//!   (what `aranea hash` does per file).
//!
//! `cargo bench -p aranea-server --bench load`. Environment: ARANEA_LOAD_SIZES (default
//! `1000000`; add `10000000` for 10M, which needs ~4 GB), ARANEA_LOAD_SECS (default 5),
//! ARANEA_LOAD_CONNECTIONS (default 32). The PDQ sets need python3 with numpy.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aranea_index::{
    BankFilter, BankSpec, BankStore, NewEntry, Origin, Provenance, Signal, SignalType,
};
use aranea_server::{AppState, ServerConfig};
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Ok(dir) = std::env::var("ARANEA_LOAD_SERVER_DIR") {
        run_server(Path::new(&dir));
        return;
    }
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes bench binaries; nothing to list.
    }
    let secs = env_or("ARANEA_LOAD_SECS", 5u64);
    let connections = env_or("ARANEA_LOAD_CONNECTIONS", 32usize);
    let sizes: Vec<usize> = std::env::var("ARANEA_LOAD_SIZES")
        .unwrap_or_else(|_| "1000000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let root = std::env::temp_dir().join(format!("aranea-load-{}", std::process::id()));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("load benchmark: {cpus} CPUs, {secs} s per run, {connections} connections");

    // 1. HTTP handling alone: empty bank.
    let dir = root.join("empty");
    let (credentials, _) = prepare(&dir, &[]);
    let query = [Signal::from_bytes(SignalType::Pdq, &[0x5a; 32]).unwrap()];
    let (server, port) = spawn_server(&dir);
    let http = pdq_load(port, &credentials, &query, connections, secs);
    stop(server);
    http.print("POST /v1/pdq/, empty bank");

    // 2. Banks of N PDQ-like entries.
    for n in sizes {
        let Some((codes, queries)) = pdq_data(n) else {
            println!("bank of {n}: skipped (python3 with numpy is needed to generate the data)");
            continue;
        };
        let dir = root.join(format!("bank-{n}"));
        let built = Instant::now();
        let (credentials, store) = prepare(&dir, &codes);
        println!(
            "bank of {n}: built in {:.1} s",
            built.elapsed().as_secs_f64()
        );
        let in_process = match_in_process(&store, &queries, secs);
        drop(store); // the child holds its own copy; two would not fit at 10M
        let (server, port) = spawn_server(&dir);
        let http = pdq_load(port, &credentials, &queries, connections, secs);
        stop(server);
        http.print(&format!("POST /v1/pdq/, bank of {n}"));
        println!(
            "  in process (2 threads, match_signal): {:.0} queries/s; HTTP/in-process = {:.2}",
            in_process,
            http.per_second / in_process
        );
    }

    // 3. Media: hashing 1-MP JPEGs through HTTP vs in process.
    let images = bench_images();
    let dir = root.join("media");
    let (credentials, _) = prepare(&dir, &[]);
    let in_process = hash_in_process(&images, secs);
    let (server, port) = spawn_server(&dir);
    let http = media_load(port, &credentials, &images, 4, secs);
    stop(server);
    http.print("POST /v1/media/, 1-MP JPEGs");
    println!(
        "  in process (2 threads, hash_media as `aranea hash`): {:.1} images/s; HTTP/in-process = {:.2}",
        in_process,
        http.per_second / in_process
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Creates the bank directory (one bank holding `codes`) and a client; returns `NAME:SECRET`.
fn prepare(dir: &Path, codes: &[[u8; 32]]) -> (String, BankStore) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut store = BankStore::open(&dir.join("banks")).unwrap();
    let bank = store
        .create_bank(BankSpec::new("bench", "bench", "csam"))
        .unwrap();
    if !codes.is_empty() {
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
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let credentials = runtime.block_on(async {
        let db = format!("sqlite://{}", dir.join("aranea.db").display());
        let db = aranea_store::Store::open(&db).await.unwrap();
        let issued = aranea_server::issue_client(&db, "bench", &["shield".to_owned()], None)
            .await
            .unwrap();
        db.close().await;
        format!("{}:{}", issued.client.name, issued.secret)
    });
    (credentials, store)
}

fn run_server(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = format!("sqlite://{}", dir.join("aranea.db").display());
        let store = aranea_store::Store::open(&db).await.unwrap();
        let state = AppState::open(ServerConfig::default(), &dir.join("banks"), store)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        // Ends when the parent closes our stdin.
        let shutdown = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
            })
            .await;
        };
        aranea_server::serve(listener, state, shutdown)
            .await
            .unwrap();
    });
}

fn spawn_server(dir: &Path) -> (Child, u16) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("ARANEA_LOAD_SERVER_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().unwrap())
}

fn stop(mut child: Child) {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"\n");
    }
    let _ = child.wait();
}

struct LoadResult {
    requests: usize,
    errors: usize,
    per_second: f64,
    latencies_us: Vec<u32>,
}

impl LoadResult {
    fn print(&self, what: &str) {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let pct = |p: f64| {
            sorted
                .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        println!(
            "{what}: {:.0} requests/s ({} requests, {} errors), latency p50 {:.2} ms, p99 {:.2} ms",
            self.per_second,
            self.requests,
            self.errors,
            f64::from(pct(0.50)) / 1000.0,
            f64::from(pct(0.99)) / 1000.0
        );
    }
}

fn request(method_path: &str, credentials: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let token = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut bytes = format!(
        "{method_path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Basic {token}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Runs `connections` keep-alive connections, each sending its requests in turn.
fn drive(port: u16, requests: Vec<Vec<u8>>, connections: usize, secs: u64) -> LoadResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let requests = Arc::new(requests);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let results = runtime.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..connections {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            tasks.push(tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                let mut buffer = vec![0u8; 64 * 1024];
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    stream
                        .write_all(&requests[i % requests.len()])
                        .await
                        .unwrap();
                    i += 1;
                    if !read_response(&mut stream, &mut buffer).await {
                        errors += 1;
                    }
                    latencies.push(sent.elapsed().as_micros() as u32);
                }
                (latencies, errors)
            }));
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await.unwrap());
        }
        all
    });
    let elapsed = started.elapsed().as_secs_f64();
    let errors = results.iter().map(|r| r.1).sum();
    let latencies_us: Vec<u32> = results.into_iter().flat_map(|r| r.0).collect();
    LoadResult {
        requests: latencies_us.len(),
        errors,
        per_second: latencies_us.len() as f64 / elapsed,
        latencies_us,
    }
}

/// Reads one response; true when it was a 200.
async fn read_response(stream: &mut tokio::net::TcpStream, buffer: &mut [u8]) -> bool {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buffer[filled..]).await.unwrap();
        assert!(n > 0, "server closed the connection");
        filled += n;
        let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buffer[..end]).unwrap().to_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while filled < end + 4 + length {
            let n = stream.read(&mut buffer[filled..]).await.unwrap();
            assert!(n > 0, "server closed the connection");
            filled += n;
        }
        return head.starts_with("HTTP/1.1 200");
    }
}

fn pdq_load(
    port: u16,
    credentials: &str,
    queries: &[Signal],
    connections: usize,
    secs: u64,
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
    drive(port, requests, connections, secs)
}

fn media_load(
    port: u16,
    credentials: &str,
    images: &[Vec<u8>],
    connections: usize,
    secs: u64,
) -> LoadResult {
    let requests = images
        .iter()
        .map(|i| request("POST /v1/media/", credentials, "image/jpeg", i))
        .collect();
    drive(port, requests, connections, secs)
}

/// Queries per second of single-hash matching in process, on two threads.
fn match_in_process(store: &BankStore, queries: &[Signal], secs: u64) -> f64 {
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
                            std::hint::black_box(live.load().match_signal(q, &BankFilter::All));
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    done as f64 / started.elapsed().as_secs_f64()
}

fn hash_in_process(images: &[Vec<u8>], secs: u64) -> f64 {
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
    done as f64 / started.elapsed().as_secs_f64()
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

/// PDQ-like codes and queries from bench/hamming's seeded generator (cached under the target dir).
fn pdq_data(n: usize) -> Option<(Vec<[u8; 32]>, Vec<Signal>)> {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    let dir = target.join(format!("bench-data/pdq-{n}"));
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
    let chunks = |file: &str| -> Option<Vec<[u8; 32]>> {
        let bytes = std::fs::read(dir.join(file)).ok()?;
        Some(
            bytes
                .chunks_exact(32)
                .map(|c| <[u8; 32]>::try_from(c).unwrap())
                .collect(),
        )
    };
    let codes = chunks("db.u8")?;
    let queries = chunks("queries.u8")?
        .iter()
        .map(|q| Signal::from_bytes(SignalType::Pdq, q).unwrap())
        .collect();
    Some((codes, queries))
}

//! PDQ index benchmark on the shared PDQ-like data set, beside the reference tools.
//!
//! Usage: `cargo bench -p aranea-index --bench pdq_index`
//! Environment:
//! - `ARANEA_BENCH_N` (default 1000000): database size; data is generated with
//!   `shared/bench/hamming/gen_pdq_data.py` (seeded) into `ARANEA_BENCH_DIR` if missing.
//! - `ARANEA_BENCH_DIR` (default `$CARGO_TARGET_DIR/pdqsynth/n<N>`): data directory.
//! - `ARANEA_BENCH_RADII` (default `31`): comma-separated radii (e.g. `31,64`).
//! - `ARANEA_BENCH_REFERENCE_QUERIES` (default 2000): queries given to the slow reference
//!   tools (brute force, FAISS), whose per-query rate does not depend on the count.
//! - `ARANEA_BENCH_SKIP_REFERENCES=1`: only measure this crate.
//! - `ARANEA_BENCH_SUBSTRINGS`, `ARANEA_BENCH_BUCKET_LOG2`: override the index layout.
//!
//! Ground truth comes from `brute_force.c gt` (compiled here with gcc -O3 -march=native).
//! Figures are per CPU-second of this process (single thread), as the issue asks.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "data.rs"]
mod data;

use data::{bench_data, cpu_seconds, env_or, read_codes};

use aranea_index::pdq_index::{Code, CodeHit, IndexParams, PdqIndex, SearchScratch};
use aranea_index::snapshot::{read_pdq_index, write_pdq_index};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/bench/hamming");

struct Row {
    name: String,
    single_qps: Option<f64>,
    batch_qps: Option<f64>,
    build_s: Option<f64>,
    load_s: Option<f64>,
    bytes_per_entry: Option<f64>,
    recall: Option<f64>,
    note: String,
}

fn main() {
    let (n, dir) = bench_data(1_000_000);
    let radii: Vec<u32> = std::env::var("ARANEA_BENCH_RADII")
        .unwrap_or_else(|_| "31".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let reference_queries: usize = env_or("ARANEA_BENCH_REFERENCE_QUERIES", 2000);
    let target =
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()));
    let tool = match ensure_brute_force(&target) {
        Ok(tool) => Some(tool),
        Err(why) => {
            println!("brute_force.c unavailable: {why}");
            None
        }
    };
    if let Err(why) = ensure_data(&dir, n) {
        println!("cannot generate data: {why}");
        return;
    }
    let codes = read_codes(&dir.join("db.u8"));
    let queries = read_codes(&dir.join("queries.u8"));
    println!(
        "data: {} ({} codes, {} queries)",
        dir.display(),
        codes.len(),
        queries.len()
    );

    let substrings = std::env::var("ARANEA_BENCH_SUBSTRINGS")
        .ok()
        .and_then(|v| v.parse().ok());
    let bucket_log2 = std::env::var("ARANEA_BENCH_BUCKET_LOG2")
        .ok()
        .and_then(|v| v.parse().ok());
    let params = IndexParams {
        substrings,
        bucket_log2,
        ..IndexParams::default()
    };
    let codes_copy = codes.clone();
    let build_cpu = cpu_seconds();
    let (index, build_s) = timed(|| PdqIndex::build(codes_copy, params).expect("build"));
    let build_cpu = cpu_seconds() - build_cpu;
    let snapshot = dir.join("aranea-index.snapshot");
    write_pdq_index(&snapshot, &index).expect("write snapshot");
    let load_cpu = cpu_seconds();
    let (loaded, load_s) = timed(|| read_pdq_index(&snapshot).expect("read snapshot"));
    let load_cpu = cpu_seconds() - load_cpu;
    assert!(loaded == index, "snapshot round trip");
    drop(loaded);
    let _ = std::fs::remove_file(&snapshot);
    let bytes_per_entry = index.heap_bytes() as f64 / codes.len() as f64;
    println!(
        "index: {} substrings, {:.1} bytes/entry (32 of them the code), build {:.2} s wall \
         ({:.2} CPU-s, all threads), snapshot load {:.2} s wall ({:.2} CPU-s)",
        index.substrings(),
        bytes_per_entry,
        build_s,
        build_cpu,
        load_s,
        load_cpu
    );

    for &radius in &radii {
        let truth = tool
            .as_ref()
            .and_then(|tool| ground_truth(tool, &dir, radius).ok());
        let mut rows = Vec::new();
        let (single, single_hits) = single_queries(&index, &queries, radius);
        let (batch, batch_hits) = batch_queries(&index, &queries, radius);
        let recall = truth
            .as_ref()
            .map(|t| recall(t, &single_hits).min(recall(t, &batch_hits)));
        rows.push(Row {
            name: "aranea-index (this crate)".into(),
            single_qps: Some(single),
            batch_qps: Some(batch),
            build_s: Some(build_s),
            load_s: Some(load_s),
            bytes_per_entry: Some(bytes_per_entry),
            recall,
            note: if index.prefers_scan(radius) {
                "scan fallback".into()
            } else {
                format!("MIH m={}", index.substrings())
            },
        });
        if std::env::var("ARANEA_BENCH_SKIP_REFERENCES").is_err() {
            rows.extend(reference_rows(
                tool.as_deref(),
                &dir,
                radius,
                reference_queries,
                codes.len(),
            ));
        }
        print_table(codes.len(), radius, &rows);
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed().as_secs_f64())
}

fn single_queries(index: &PdqIndex, queries: &[Code], radius: u32) -> (f64, Vec<Vec<u32>>) {
    let mut scratch = SearchScratch::default();
    let mut results = Vec::with_capacity(queries.len());
    let cpu = cpu_seconds();
    let start = Instant::now();
    for query in queries {
        let mut hits: Vec<CodeHit> = Vec::new();
        index.search(query, radius, &mut scratch, &mut hits);
        results.push(hits.iter().map(|h| h.id).collect());
    }
    let seconds = (cpu_seconds() - cpu).max(1e-3);
    let _wall = start.elapsed();
    (queries.len() as f64 / seconds, results)
}

fn batch_queries(index: &PdqIndex, queries: &[Code], radius: u32) -> (f64, Vec<Vec<u32>>) {
    let mut results = Vec::with_capacity(queries.len());
    let mut out = Vec::new();
    let cpu = cpu_seconds();
    let start = Instant::now();
    for chunk in queries.chunks(1000) {
        index.search_batch(chunk, radius, &mut out);
        results.extend(
            out.iter()
                .map(|hits| hits.iter().map(|h| h.id).collect::<Vec<u32>>()),
        );
    }
    let seconds = (cpu_seconds() - cpu).max(1e-3);
    let _wall = start.elapsed();
    (queries.len() as f64 / seconds, results)
}

fn recall(truth: &[Vec<u32>], found: &[Vec<u32>]) -> f64 {
    let mut wanted = 0usize;
    let mut got = 0usize;
    for (expected, hits) in truth.iter().zip(found) {
        let mut hits = hits.clone();
        hits.sort_unstable();
        wanted += expected.len();
        got += expected
            .iter()
            .filter(|id| hits.binary_search(id).is_ok())
            .count();
        assert!(hits.windows(2).all(|w| w[0] != w[1]), "duplicate hit");
    }
    if wanted == 0 {
        1.0
    } else {
        got as f64 / wanted as f64
    }
}

fn ensure_brute_force(target: &Path) -> Result<PathBuf, String> {
    let tool = target.join("bench-tools/brute_force");
    if tool.exists() {
        return Ok(tool);
    }
    std::fs::create_dir_all(target.join("bench-tools")).map_err(|e| e.to_string())?;
    let status = Command::new("gcc")
        .args(["-O3", "-march=native", "-pthread", "-o"])
        .arg(&tool)
        .arg(format!("{SHARED}/brute_force.c"))
        .status()
        .map_err(|e| format!("gcc: {e}"))?;
    if status.success() {
        Ok(tool)
    } else {
        Err(format!("gcc failed: {status}"))
    }
}

fn ensure_data(dir: &Path, n: usize) -> Result<(), String> {
    if dir.join("db.u8").exists() && dir.join("queries.u8").exists() {
        return Ok(());
    }
    println!(
        "generating {n} codes into {} (needs python3 + numpy) ...",
        dir.display()
    );
    let status = Command::new("python3")
        .arg(format!("{SHARED}/gen_pdq_data.py"))
        .args(["--n", &n.to_string(), "--out"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("gen_pdq_data.py failed: {status}"))
    }
}

/// Per-query sorted ids from `gt_r<radius>.bin`, computing it with the C brute force if needed.
fn ground_truth(tool: &Path, dir: &Path, radius: u32) -> Result<Vec<Vec<u32>>, String> {
    let path = dir.join(format!("gt_r{radius}.bin"));
    if !path.exists() {
        println!("computing ground truth at radius {radius} with the C brute force ...");
        let output = Command::new(tool)
            .arg(dir)
            .args(["gt", "-r", &radius.to_string(), "-t", "2"])
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
    }
    Ok(data::read_truth(&path))
}

fn reference_rows(
    tool: Option<&Path>,
    dir: &Path,
    radius: u32,
    queries: usize,
    n: usize,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let r = radius.to_string();
    let nq = queries.to_string();
    match tool {
        Some(tool) => {
            for (name, args) in [
                (
                    "popcount brute force (C)",
                    vec!["brute", "-r", &r, "-n", &nq],
                ),
                (
                    "blocked brute force, batch (C)",
                    vec!["brute-batch", "-r", &r, "-n", &nq],
                ),
                (
                    "MIH reference m=11 (C)",
                    vec!["mih", "-m", "11", "-r", &r, "-n", &nq],
                ),
            ] {
                if name.starts_with("MIH") && radius > 40 {
                    // Without a scan fallback it enumerates millions of buckets per query.
                    rows.push(unavailable(
                        name,
                        "skipped above radius 40 (no scan fallback: minutes per run)",
                    ));
                    continue;
                }
                rows.push(run_reference(
                    name,
                    Command::new(tool).arg(dir).args(&args),
                    n,
                ));
            }
        }
        None => rows.push(unavailable(
            "C reference tools",
            "gcc or brute_force.c missing",
        )),
    }
    let faiss_ok = Command::new("python3")
        .args(["-c", "import faiss"])
        .output()
        .is_ok_and(|o| o.status.success());
    // FAISS multi-hash enumerates C(16, radius/16) flips per slot: cap its queries at large radii.
    let nq = if radius > 40 {
        (queries / 10).max(1).to_string()
    } else {
        nq
    };
    if faiss_ok {
        let mut command = Command::new("python3");
        command
            .arg(format!("{SHARED}/faiss_bench.py"))
            .arg(dir)
            .args([
                "mhash", "--nhash", "16", "--b", "16", "--mode", "single", "--radius", &r, "--nq",
                &nq,
            ]);
        rows.push(run_reference(
            "FAISS IndexBinaryMultiHash 16x16 (HMA)",
            &mut command,
            n,
        ));
    } else {
        rows.push(unavailable(
            "FAISS IndexBinaryMultiHash",
            "python module faiss not installed (pip install faiss-cpu)",
        ));
    }
    rows
}

fn unavailable(name: &str, why: &str) -> Row {
    Row {
        name: name.into(),
        single_qps: None,
        batch_qps: None,
        build_s: None,
        load_s: None,
        bytes_per_entry: None,
        recall: None,
        note: format!("unavailable: {why}"),
    }
}

fn run_reference(name: &str, command: &mut Command, n: usize) -> Row {
    let output = match command.output() {
        Ok(output) if output.status.success() => output,
        Ok(output) => return unavailable(name, String::from_utf8_lossy(&output.stderr).trim()),
        Err(e) => return unavailable(name, &e.to_string()),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(json) = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    else {
        return unavailable(name, "no JSON output");
    };
    let number = |key: &str| json.get(key).and_then(serde_json::Value::as_f64);
    let is_batch = name.contains("batch");
    let mb = number("index_mb");
    Row {
        name: name.into(),
        single_qps: if is_batch {
            None
        } else {
            number("qps_per_cpu_s")
        },
        batch_qps: if is_batch {
            number("qps_per_cpu_s")
        } else {
            None
        },
        build_s: number("build_s"),
        load_s: None,
        bytes_per_entry: mb.map(|mb| mb * 1_048_576.0 / n as f64),
        recall: number("recall").filter(|r| *r >= 0.0),
        note: format!(
            "{} queries",
            json.get("nq").map_or("?".into(), |v| v.to_string())
        ),
    }
}

fn print_table(n: usize, radius: u32, rows: &[Row]) {
    let ours = rows.first().and_then(|r| r.single_qps).unwrap_or(0.0);
    println!(
        "\nN = {n}, radius = {radius} (queries per CPU-second, one thread; load average {})",
        data::load_average()
    );
    println!(
        "{:<40} {:>11} {:>11} {:>9} {:>8} {:>8} {:>8} {:>9}  note",
        "method", "single q/s", "batch q/s", "ours ÷", "build s", "load s", "B/entry", "recall"
    );
    let show = |v: Option<f64>, precision: usize| {
        v.map_or("-".to_string(), |v| format!("{v:.precision$}"))
    };
    for row in rows {
        let best = row.single_qps.or(row.batch_qps);
        let ratio = best.map(|q| format!("{:.1}x", ours / q));
        println!(
            "{:<40} {:>11} {:>11} {:>9} {:>8} {:>8} {:>8} {:>9}  {}",
            row.name,
            show(row.single_qps, 0),
            show(row.batch_qps, 0),
            ratio.unwrap_or_else(|| "-".into()),
            show(row.build_s, 2),
            show(row.load_s, 2),
            show(row.bytes_per_entry, 1),
            show(row.recall, 6),
            row.note
        );
    }
}

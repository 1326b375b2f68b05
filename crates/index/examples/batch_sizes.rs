//! Batches of each size against as many single queries, in one process (the machine is
//! shared: compare within a run): queries per CPU-second of `PdqIndex::search` one by one and
//! of `PdqIndex::search_batch` in batches of 1, 2, 4, ... queries, each checked against the
//! single answers.
//!
//! Usage: `cargo run --release -p aranea-index --example batch_sizes -- [SIZE...]`
//! (default sizes 1 2 4 8 16 32 64 128 256 512 1000). Data as for the `pdq_index` bench
//! (`ARANEA_BENCH_N`, default 10000000, and `ARANEA_BENCH_DIR`), radius 31.

#[path = "../benches/data.rs"]
mod data;

use aranea_index::pdq_index::{CodeHit, IndexParams, PdqIndex, SearchScratch};
use data::{bench_data, cpu_seconds, read_codes};

const RADIUS: u32 = 31;

fn main() {
    let (_, dir) = bench_data(10_000_000);
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000];
    }
    let codes = read_codes(&dir.join("db.u8"));
    let queries = read_codes(&dir.join("queries.u8"));
    let index = PdqIndex::build(codes, IndexParams::default()).expect("build");
    println!(
        "{} codes, {} queries, radius {RADIUS}, load average {}",
        index.len(),
        queries.len(),
        data::load_average()
    );
    let mut scratch = SearchScratch::default();
    let mut single = Vec::with_capacity(queries.len());
    let cpu = cpu_seconds();
    for query in &queries {
        let mut hits: Vec<CodeHit> = Vec::new();
        index.search(query, RADIUS, &mut scratch, &mut hits);
        single.push(hits);
    }
    let single_rate = queries.len() as f64 / (cpu_seconds() - cpu).max(1e-6);
    println!("single queries: {single_rate:.0} q/CPU-s");
    let cpu = cpu_seconds();
    for query in &queries {
        let mut hits: Vec<CodeHit> = Vec::new();
        index.search(query, RADIUS, &mut SearchScratch::default(), &mut hits);
    }
    let fresh_rate = queries.len() as f64 / (cpu_seconds() - cpu).max(1e-6);
    println!(
        "single queries, fresh buffers each: {fresh_rate:.0} q/CPU-s = {:.2}x",
        fresh_rate / single_rate
    );
    let sorted = |hits: &[CodeHit]| {
        let mut ids: Vec<u32> = hits.iter().map(|h| h.id).collect();
        ids.sort_unstable();
        ids
    };
    for size in sizes {
        let mut out = Vec::new();
        let mut same = true;
        let cpu = cpu_seconds();
        for (chunk, expected) in queries.chunks(size).zip(single.chunks(size)) {
            index.search_batch(chunk, RADIUS, &mut out);
            same &= out
                .iter()
                .zip(expected)
                .all(|(got, want)| sorted(got) == sorted(want));
        }
        let rate = queries.len() as f64 / (cpu_seconds() - cpu).max(1e-6);
        println!(
            "batches of {size:>4}: {rate:>6.0} q/CPU-s = {:.2}x single, same answers {same}",
            rate / single_rate
        );
    }
    println!("load average {}", data::load_average());
}

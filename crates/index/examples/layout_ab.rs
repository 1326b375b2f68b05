//! A/B of PDQ index layouts in one process (the machine is shared: compare within a run).
//!
//! Usage: `cargo run --release -p aranea-index --example layout_ab -- 10:1 11:2 12:2 10:1:sorted`
//! Each argument is `substrings:bucket_log2[:hR][:sorted]`; `hR` tunes the substring lengths for
//! radius R (`IndexParams::radius_hint`; `h0` = equal lengths); `sorted` builds over the codes ordered
//! by the first substring's value (a locality order: the first table's buckets are then
//! contiguous runs of codes) and maps ids back. Variants are measured in turn, `ARANEA_AB_ROUNDS`
//! times (default 2), on the data and ground truth the `pdq_index` bench leaves in
//! `ARANEA_BENCH_DIR` (default `$CARGO_TARGET_DIR/pdqsynth/n<ARANEA_BENCH_N>`), radius 31.
//! Prints single and batch queries per CPU-second of this process, heap bytes per code, recall.

#[path = "../benches/data.rs"]
mod data;

use aranea_index::pdq_index::{Code, CodeHit, IndexParams, PdqIndex, SearchScratch};
use data::{bench_data, cpu_seconds, env_or, read_codes, read_truth};

const RADIUS: u32 = 31;

fn main() {
    let (_, dir) = bench_data(10_000_000);
    let rounds = env_or("ARANEA_AB_ROUNDS", 2);
    let codes = read_codes(&dir.join("db.u8"));
    let queries = read_codes(&dir.join("queries.u8"));
    let truth = read_truth(&dir.join(format!("gt_r{RADIUS}.bin")));
    let variants: Vec<String> = std::env::args().skip(1).collect();
    for round in 0..rounds {
        for variant in &variants {
            let mut parts = variant.split(':');
            let substrings = parts.next().and_then(|p| p.parse().ok());
            let bucket_log2 = parts.next().and_then(|p| p.parse().ok());
            let rest: Vec<&str> = parts.collect();
            let sorted = rest.contains(&"sorted");
            let radius_hint = rest
                .iter()
                .find_map(|p| p.strip_prefix('h').and_then(|r| r.parse().ok()));
            let params = IndexParams {
                substrings,
                bucket_log2,
                radius_hint,
                ..IndexParams::default()
            };
            measure(round, variant, &codes, &queries, &truth, params, sorted);
        }
    }
}

fn measure(
    round: usize,
    name: &str,
    codes: &[Code],
    queries: &[Code],
    truth: &[Vec<u32>],
    params: IndexParams,
    sorted: bool,
) {
    let mut order: Vec<u32> = (0..codes.len() as u32).collect();
    if sorted {
        let bits = 256 / params.substrings.unwrap_or(10) as u32 + 1;
        let key = |id: &u32| codes[*id as usize][0] & ((1u64 << bits) - 1);
        order.sort_by_key(key);
    }
    let built: Vec<Code> = order.iter().map(|&id| codes[id as usize]).collect();
    let index = PdqIndex::build(built, params).expect("build");
    let bytes = index.heap_bytes() as f64 / codes.len() as f64;
    let mut scratch = SearchScratch::default();
    let mut single = Vec::with_capacity(queries.len());
    let start = cpu_seconds();
    for query in queries {
        let mut hits: Vec<CodeHit> = Vec::new();
        index.search(query, RADIUS, &mut scratch, &mut hits);
        single.push(hits);
    }
    let single_s = cpu_seconds() - start;
    let mut batch = Vec::with_capacity(queries.len());
    let mut out = Vec::new();
    let start = cpu_seconds();
    for chunk in queries.chunks(1000) {
        index.search_batch(chunk, RADIUS, &mut out);
        batch.append(&mut out);
    }
    let batch_s = cpu_seconds() - start;
    let map = |hits: &[Vec<CodeHit>]| -> Vec<Vec<u32>> {
        hits.iter()
            .map(|h| {
                let mut ids: Vec<u32> = h.iter().map(|c| order[c.id as usize]).collect();
                ids.sort_unstable();
                ids
            })
            .collect()
    };
    let exact = map(&single) == truth && map(&batch) == truth;
    println!(
        "round {round} {name:>12}: single {:>6.0} q/CPU-s, batch {:>6.0} q/CPU-s, {bytes:.1} B/code, exact {exact}",
        queries.len() as f64 / single_s.max(1e-3),
        queries.len() as f64 / batch_s.max(1e-3),
    );
}

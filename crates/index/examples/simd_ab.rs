//! The AVX-512 cell filter against the scalar one, in one process (the machine is shared:
//! compare within a run): queries per CPU-second of single queries and of batches of 1,000,
//! each with and without SIMD, over `ARANEA_AB_ROUNDS` rounds (default 3), every answer
//! checked against the first.
//!
//! Usage: `cargo run --release -p aranea-index --example simd_ab`. Data as for the `pdq_index`
//! bench (`ARANEA_BENCH_N`, default 10000000, and `ARANEA_BENCH_DIR`), radius 31.

#[path = "../benches/data.rs"]
mod data;

use aranea_index::pdq_index::{Code, CodeHit, IndexParams, PdqIndex, SearchScratch};
use data::{bench_data, cpu_seconds, env_or, read_codes};

const RADIUS: u32 = 31;
const VARIANTS: [&str; 4] = [
    "single",
    "single without SIMD",
    "batch",
    "batch without SIMD",
];

fn main() {
    let (_, dir) = bench_data(10_000_000);
    let codes = read_codes(&dir.join("db.u8"));
    let queries = read_codes(&dir.join("queries.u8"));
    let rounds = env_or("ARANEA_AB_ROUNDS", 3);
    let index = PdqIndex::build(codes, IndexParams::default()).expect("build");
    println!(
        "{} codes, {} queries, radius {RADIUS}, load average {}",
        index.len(),
        queries.len(),
        data::load_average()
    );
    let mut expected: Option<Vec<Vec<CodeHit>>> = None;
    for round in 0..rounds {
        let mut line = format!("round {round}:");
        for (variant, name) in VARIANTS.iter().enumerate() {
            let cpu = cpu_seconds();
            let answers = run(&index, &queries, variant);
            let rate = queries.len() as f64 / (cpu_seconds() - cpu).max(1e-6);
            match &expected {
                Some(expected) => assert!(&answers == expected, "{name}: other answers"),
                None => expected = Some(answers),
            }
            line += &format!(" {name} {rate:.0}");
        }
        println!("{line} q/CPU-s (load average {})", data::load_average());
    }
}

/// Every query's hits, sorted, by the given variant.
fn run(index: &PdqIndex, queries: &[Code], variant: usize) -> Vec<Vec<CodeHit>> {
    let mut answers = Vec::with_capacity(queries.len());
    if variant < 2 {
        let mut scratch = SearchScratch::default();
        for query in queries {
            let mut hits = Vec::new();
            if variant == 0 {
                index.search(query, RADIUS, &mut scratch, &mut hits);
            } else {
                index.search_without_simd(query, RADIUS, &mut scratch, &mut hits);
            }
            answers.push(hits);
        }
    } else {
        let mut out = Vec::new();
        for chunk in queries.chunks(1000) {
            if variant == 2 {
                index.search_batch(chunk, RADIUS, &mut out);
            } else {
                index.search_batch_without_simd(chunk, RADIUS, &mut out);
            }
            answers.append(&mut out);
        }
    }
    for hits in &mut answers {
        hits.sort_unstable();
    }
    answers
}

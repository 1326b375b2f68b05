//! Where a PDQ query's time goes, counted: per query kind of the bench data (planted near
//! match, fresh PDQ-like, uniform), the mean probes, directory and cell lines, cells,
//! candidates, hits of the multi-index search, and the CPU-seconds of the search itself.
//!
//! Usage: `cargo run --release -p aranea-index --example probe_profile`
//! Environment: `ARANEA_BENCH_N` (default 10000000) and `ARANEA_BENCH_DIR` as for the
//! `pdq_index` bench (which generates the data); `ARANEA_PROFILE_QUERIES` (default 2000) queries
//! are profiled, `ARANEA_BENCH_SUBSTRINGS` and `ARANEA_BENCH_BUCKET_LOG2` set the layout.

#[path = "../benches/data.rs"]
mod data;

use aranea_index::pdq_index::{CodeHit, IndexParams, PdqIndex, SearchProfile, SearchScratch};
use data::{bench_data, cpu_seconds, env_or, read_codes};

const RADIUS: u32 = 31;
const KINDS: [&str; 3] = ["near (planted)", "fresh PDQ-like", "uniform"];

fn main() {
    let (_, dir) = bench_data(10_000_000);
    let codes = read_codes(&dir.join("db.u8"));
    let queries = read_codes(&dir.join("queries.u8"));
    let kinds = std::fs::read(dir.join("qkind.u8")).unwrap_or_default();
    let count = env_or("ARANEA_PROFILE_QUERIES", 2000).min(queries.len());
    let layout = |name| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    let params = IndexParams {
        substrings: layout("ARANEA_BENCH_SUBSTRINGS").map(|m| m as usize),
        bucket_log2: layout("ARANEA_BENCH_BUCKET_LOG2"),
        ..IndexParams::default()
    };
    let index = PdqIndex::build(codes, params).expect("build");
    println!(
        "{} codes, {} substrings, {} queries profiled, radius {RADIUS}, load average {}",
        index.len(),
        index.substrings(),
        count,
        data::load_average()
    );
    let mut sums = [(0usize, SearchProfile::default(), 0.0f64); 3];
    let kind_of = |at: usize| usize::from(kinds.get(at).copied().unwrap_or(0)).min(2);
    for (at, query) in queries.iter().enumerate().take(count) {
        let (queries, sum, _) = &mut sums[kind_of(at)];
        *queries += 1;
        add(sum, &index.search_profile(query, RADIUS));
    }
    // Timed apart from the counting, one kind at a time, in the order of the data set.
    let mut scratch = SearchScratch::default();
    let mut hits: Vec<CodeHit> = Vec::new();
    for (kind, (_, sum, seconds)) in sums.iter_mut().enumerate() {
        let mut found = 0u64;
        let cpu = cpu_seconds();
        for (_, query) in queries
            .iter()
            .enumerate()
            .take(count)
            .filter(|(at, _)| kind_of(*at) == kind)
        {
            hits.clear();
            index.search(query, RADIUS, &mut scratch, &mut hits);
            found += hits.len() as u64;
        }
        *seconds = cpu_seconds() - cpu;
        assert_eq!(
            found, sum.hits,
            "search and profile disagree on {}",
            KINDS[kind]
        );
    }
    println!(
        "{:<16} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7} {:>9}",
        "query kind",
        "share",
        "probes",
        "nonempty",
        "dir ln",
        "cells",
        "cell ln",
        "cands",
        "distinct",
        "within",
        "hits",
        "µs (CPU)"
    );
    let mut total = (0usize, SearchProfile::default(), 0.0f64);
    for (name, (queries, sum, seconds)) in KINDS.iter().zip(&sums) {
        print_row(name, *queries, count, sum, *seconds);
        total.0 += queries;
        add(&mut total.1, sum);
        total.2 += seconds;
    }
    print_row("all", total.0, count, &total.1, total.2);
}

fn add(sum: &mut SearchProfile, p: &SearchProfile) {
    sum.probes += p.probes;
    sum.nonempty_probes += p.nonempty_probes;
    sum.directory_lines += p.directory_lines;
    sum.cells += p.cells;
    sum.cell_lines += p.cell_lines;
    sum.candidates += p.candidates;
    sum.distinct_candidates += p.distinct_candidates;
    sum.candidates_within += p.candidates_within;
    sum.hits += p.hits;
}

fn print_row(name: &str, queries: usize, all: usize, sum: &SearchProfile, seconds: f64) {
    let per = |v: u64| v as f64 / queries.max(1) as f64;
    println!(
        "{:<16} {:>5.1}% {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>9.0} {:>9.0} {:>8.1} {:>7.1} {:>9.0}",
        name,
        100.0 * queries as f64 / all.max(1) as f64,
        per(sum.probes),
        per(sum.nonempty_probes),
        per(sum.directory_lines),
        per(sum.cells),
        per(sum.cell_lines),
        per(sum.candidates),
        per(sum.distinct_candidates),
        per(sum.candidates_within),
        per(sum.hits),
        seconds * 1e6 / queries.max(1) as f64
    );
}

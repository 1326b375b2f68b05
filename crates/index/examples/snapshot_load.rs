//! Snapshot load time of a bare PDQ index, measured several times in one process.
//!
//! Usage: `cargo run --release -p aranea-index --example snapshot_load`
//! Builds the index over the `pdq_index` bench's data (`ARANEA_BENCH_DIR`, default
//! `$CARGO_TARGET_DIR/pdqsynth/n<ARANEA_BENCH_N>`, N default 10M), writes its snapshot there,
//! loads it `ARANEA_LOAD_ROUNDS` times (default 3) and prints wall and CPU seconds per load,
//! checking each loaded index equals the built one. The snapshot is removed at the end.

#[path = "../benches/data.rs"]
mod data;

use std::time::Instant;

use aranea_index::pdq_index::{IndexParams, PdqIndex};
use aranea_index::snapshot::{read_pdq_index, write_pdq_index};
use data::{bench_data, cpu_seconds, env_or, read_codes};

fn main() {
    let (_, dir) = bench_data(10_000_000);
    let rounds = env_or("ARANEA_LOAD_ROUNDS", 3);
    let codes = read_codes(&dir.join("db.u8"));
    let index = PdqIndex::build(codes, IndexParams::default()).expect("build");
    let snapshot = dir.join("snapshot_load.snapshot");
    write_pdq_index(&snapshot, &index).expect("write snapshot");
    let size = std::fs::metadata(&snapshot).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} codes, snapshot {:.0} MB, load average {}",
        index.len(),
        size as f64 / 1e6,
        data::load_average()
    );
    for round in 0..rounds {
        let cpu = cpu_seconds();
        let start = Instant::now();
        let loaded = read_pdq_index(&snapshot).expect("read snapshot");
        let wall = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        assert!(loaded == index, "snapshot round trip");
        println!("round {round}: load {wall:.3} s wall, {cpu:.3} CPU-s");
        drop(loaded);
    }
    let _ = std::fs::remove_file(&snapshot);
}

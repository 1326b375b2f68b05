//! Whole-process memory, open time and match rate of a bank directory holding N PDQ entries.
//!
//! Usage: `cargo run --release -p aranea-index --example bank_memory`
//! Environment:
//! - `ARANEA_BENCH_N` (default 10000000) and `ARANEA_BENCH_DIR` (default
//!   `$CARGO_TARGET_DIR/pdqsynth/n<N>`): the data of `shared/bench/hamming/gen_pdq_data.py`
//!   (generate it first, or run the `pdq_index` bench once, which does).
//! - `ARANEA_BANK_DIR` (default `<data dir>/banks`): the bank directory. When it has no
//!   snapshot, a child process builds it (one bank, every code of `db.u8`, one snapshot), so the
//!   build's memory never counts in the figures below.
//!
//! The measuring process opens the directory with `BankStore::open`, as `aranea bank match` and
//! the server do, then matches the data set's queries one by one and in batches of 1,000. It
//! prints peak resident memory (`VmHWM` of /proc/self/status, which counts everything the
//! process ever held at once: heap, code, file pages it touched) per entry, before and after
//! the queries, and the open's wall and CPU seconds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "../benches/data.rs"]
mod data;

use aranea_hash::PdqHash;
use aranea_index::bank::{Origin, Provenance};
use aranea_index::{BankFilter, BankSpec, BankStore, NewEntry, Signal};
use data::{bench_data, code_at, cpu_seconds, load_average, read_codes};

fn main() {
    let (_, data) = bench_data(10_000_000);
    let banks = std::env::var("ARANEA_BANK_DIR").map_or_else(|_| data.join("banks"), PathBuf::from);
    if std::env::args().nth(1).as_deref() == Some("--build") {
        build(&data, &banks);
        return;
    }
    if !banks.join(aranea_index::store::SNAPSHOT_FILE).exists() {
        let exe = std::env::current_exe().expect("current exe");
        let status = Command::new(exe).arg("--build").status().expect("spawn");
        assert!(status.success(), "building the bank directory failed");
    }
    measure(&data, &banks);
}

fn build(data: &Path, banks: &Path) {
    let started = Instant::now();
    let codes = read_codes(&data.join("db.u8"));
    let mut store = BankStore::open(banks).expect("open");
    store
        .create_bank(BankSpec::new("bench", "local", "csam"))
        .expect("create bank");
    let bank = store.bank_id("bench").expect("bank");
    let provenance = store
        .add_provenance(Provenance {
            added_by: "bank_memory".into(),
            added_at: 0,
            origin: Origin::Import {
                file: "db.u8".into(),
            },
        })
        .expect("provenance");
    for (chunk_index, chunk) in codes.chunks(100_000).enumerate() {
        let entries: Vec<NewEntry> = chunk
            .iter()
            .enumerate()
            .map(|(i, code)| NewEntry {
                bank,
                signal: Signal::Pdq(PdqHash::from_words(*code)),
                classification: None,
                provenance,
                line: (chunk_index * 100_000 + i + 1) as u64,
                metadata: None,
            })
            .collect();
        store.append_entries(&entries).expect("append");
    }
    store.write_snapshot().expect("snapshot");
    println!(
        "built {} with {} entries ({} distinct) in {:.1} s; peak RSS {:.0} MB = {:.1} B/entry \
         (load average {})",
        banks.display(),
        codes.len(),
        store.state().entry_count(),
        started.elapsed().as_secs_f64(),
        status_kib("VmHWM") as f64 / 1024.0,
        status_kib("VmHWM") as f64 * 1024.0 / codes.len().max(1) as f64,
        load_average()
    );
}

fn measure(data: &Path, banks: &Path) {
    let queries: Vec<Signal> = read_codes(&data.join("queries.u8"))
        .into_iter()
        .map(|code| Signal::Pdq(PdqHash::from_words(code)))
        .collect();
    let before = status_kib("VmHWM");
    let cpu = cpu_seconds();
    let wall = Instant::now();
    let mut store = BankStore::open(banks).expect("open");
    let open_wall = wall.elapsed().as_secs_f64();
    let open_cpu = cpu_seconds() - cpu;
    let generation = store.live().load();
    let (base, delta) = generation.segment_sizes();
    let entries = (base + delta).max(1) as f64;
    let after_open = status_kib("VmHWM");
    let filter = BankFilter::All;

    let cpu = cpu_seconds();
    let mut hits = 0usize;
    for query in &queries {
        hits += generation.match_signal(query, &filter).hits.len();
    }
    let single = queries.len() as f64 / (cpu_seconds() - cpu).max(1e-3);
    let cpu = cpu_seconds();
    let mut batch_hits = 0usize;
    for chunk in queries.chunks(1000) {
        batch_hits += generation
            .match_batch(chunk, &filter)
            .iter()
            .map(|r| r.hits.len())
            .sum::<usize>();
    }
    let batch = queries.len() as f64 / (cpu_seconds() - cpu).max(1e-3);
    assert_eq!(hits, batch_hits, "single and batch answers differ");
    let after_queries = status_kib("VmHWM");
    let per_entry = |kib: u64| kib as f64 * 1024.0 / entries;
    println!(
        "bank directory {} ({} entries in the base, {} in the delta); load average {}",
        banks.display(),
        base,
        delta,
        load_average()
    );
    println!(
        "open: {open_wall:.2} s wall, {open_cpu:.2} CPU-s; peak RSS before open {:.0} MB",
        before as f64 / 1024.0
    );
    println!(
        "peak RSS after open {:.0} MB = {:.1} B/entry; after {} queries {:.0} MB = {:.1} B/entry \
         (current RSS {:.0} MB)",
        after_open as f64 / 1024.0,
        per_entry(after_open),
        queries.len(),
        after_queries as f64 / 1024.0,
        per_entry(after_queries),
        status_kib("VmRSS") as f64 / 1024.0
    );
    println!(
        "match_signal: {single:.0} q/CPU-s, match_batch: {batch:.0} q/CPU-s, {hits} hits in all"
    );
    drop(generation);
    add_like_a_decision(&mut store, &data.join("db.u8"), entries);
}

/// What a review decision does to the open store: one transaction adding a few values, some
/// already in the bank (duplicates to find), then publishing. Prints the peak RSS after it.
fn add_like_a_decision(store: &mut BankStore, db: &Path, entries: f64) {
    // A few codes of the bank, read where they lie (all of them would weigh 32 B/entry here).
    let codes: Vec<[u64; 4]> = (0..4u64)
        .filter_map(|quarter| code_at(db, quarter * (entries as u64 / 4)))
        .collect();
    let bank = store.bank_id("bench").expect("bank");
    let cpu = cpu_seconds();
    store.begin_transaction().expect("begin");
    let provenance = store
        .add_provenance(Provenance {
            added_by: "bank_memory decision".into(),
            added_at: 0,
            origin: Origin::Manual,
        })
        .expect("provenance");
    let new: Vec<NewEntry> = codes
        .iter()
        .flat_map(|code| {
            let mut changed = *code;
            changed[3] ^= 0xff;
            [*code, changed]
        })
        .map(|code| NewEntry {
            bank,
            signal: Signal::Pdq(PdqHash::from_words(code)),
            classification: Some("decided".into()),
            provenance,
            line: 0,
            metadata: None,
        })
        .collect();
    let outcome = store.append_entries(&new).expect("append");
    store.commit_transaction().expect("commit");
    store.publish().expect("publish");
    let hwm = status_kib("VmHWM");
    println!(
        "decision-like add of {} values ({} added, {} duplicates): {:.2} CPU-s; peak RSS {:.0} MB \
         = {:.1} B/entry",
        new.len(),
        outcome.added.len(),
        outcome.duplicates.len(),
        cpu_seconds() - cpu,
        hwm as f64 / 1024.0,
        hwm as f64 * 1024.0 / entries
    );
}

/// A field of /proc/self/status in KiB (0 where there is none).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

//! The shared PDQ-like bench data (`shared/bench/hamming`) and the CPU-time counter, for the
//! `pdq_index` bench and the `layout_ab` and `bank_memory` examples (each pulls this file in
//! with `#[path = ...] mod data;`).
//!
//! Figures are per CPU-second of the measuring process, never wall time: the machine is shared.
//! Bench code only: a missing or malformed file panics with its path.

// Each program uses its own subset of these functions.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use aranea_index::pdq_index::Code;

/// `ARANEA_BENCH_N` (default `default_n`) and the data directory: `ARANEA_BENCH_DIR`, else
/// `$CARGO_TARGET_DIR/pdqsynth/n<N>`.
pub fn bench_data(default_n: usize) -> (usize, PathBuf) {
    let n = env_or("ARANEA_BENCH_N", default_n);
    let target =
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()));
    let dir = std::env::var("ARANEA_BENCH_DIR")
        .map_or_else(|_| target.join(format!("pdqsynth/n{n}")), PathBuf::from);
    (n, dir)
}

/// An environment variable parsed as a number, or `default` when unset or unparsable.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Codes of a `db.u8` or `queries.u8` file (32 bytes each, in PDQ hex order).
pub fn read_codes(path: &Path) -> Vec<Code> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(32).map(code_of).collect()
}

/// The `index`-th code of a `db.u8` file, read where it lies.
pub fn code_at(path: &Path, index: u64) -> Option<Code> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    file.seek(SeekFrom::Start(index * 32)).ok()?;
    let mut bytes = [0u8; 32];
    file.read_exact(&mut bytes).ok()?;
    Some(code_of(&bytes))
}

fn code_of(bytes: &[u8]) -> Code {
    let mut code = [0u64; 4];
    for (word, eight) in code.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut word_bytes = [0u8; 8];
        word_bytes.copy_from_slice(eight);
        *word = u64::from_be_bytes(word_bytes);
    }
    code
}

/// Per-query sorted ids of a `gt_r<radius>.bin` file (written by `brute_force.c gt`).
pub fn read_truth(path: &Path) -> Vec<Vec<u32>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8"));
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
    let (queries, total) = (word(0) as usize, word(1) as usize);
    let ids_start = 16 + 4 * queries;
    assert_eq!(
        bytes.len(),
        ids_start + 4 * total,
        "{}: size",
        path.display()
    );
    let mut next = ids_start;
    (0..queries)
        .map(|q| {
            let count = u32_at(16 + 4 * q) as usize;
            let mut ids: Vec<u32> = (0..count).map(|k| u32_at(next + 4 * k)).collect();
            next += 4 * count;
            ids.sort_unstable();
            ids
        })
        .collect()
}

/// CPU seconds used by this process so far (user + system, all threads), from getrusage.
#[cfg(target_os = "linux")]
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given, which is plain data.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Without getrusage: wall seconds since the first call (figures are then only indicative).
#[cfg(not(target_os = "linux"))]
pub fn cpu_seconds() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

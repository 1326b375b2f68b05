//! Writes the `pdq_snapshot` target's seeds with the index's own writer, so they stay valid
//! when the snapshot format changes: `cargo run --example pdq_snapshot_seeds -- seeds/pdq_snapshot`
//! (from `fuzz/`, without cargo-fuzz). Small indexes of made-up codes: empty, scan-only, and
//! two with substring tables.

use std::path::PathBuf;

use aranea_index::pdq_index::{IndexParams, PdqIndex};
use aranea_index::snapshot::write_pdq_index;

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("seeds/pdq_snapshot".into()),
    );
    std::fs::create_dir_all(&dir).expect("seed directory");
    // Spread-out codes from a fixed xorshift sequence, plus near-duplicates of the first.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut codes: Vec<[u64; 4]> = (0..40).map(|_| [next(), next(), next(), next()]).collect();
    codes[1] = [
        codes[0][0] ^ 1,
        codes[0][1],
        codes[0][2],
        codes[0][3] ^ (1 << 40),
    ];
    let seeds = [
        ("empty", 0, IndexParams::default()),
        (
            "scan_only",
            3,
            IndexParams {
                substrings: Some(0),
                ..IndexParams::default()
            },
        ),
        ("default_8", 8, IndexParams::default()),
        (
            "multi_index_only_40",
            40,
            IndexParams {
                multi_index_only: true,
                ..IndexParams::default()
            },
        ),
    ];
    for (name, count, params) in seeds {
        let index = PdqIndex::build(codes[..count].to_vec(), params).expect("a small index");
        let path = dir.join(name);
        write_pdq_index(&path, &index).expect("seed written");
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        println!(
            "{}: {count} codes, {} tables, {size} bytes",
            path.display(),
            index.substrings()
        );
    }
}

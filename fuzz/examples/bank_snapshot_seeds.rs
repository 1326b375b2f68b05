//! Writes the `bank_snapshot` target's seeds with the bank store's own snapshot writer, so they
//! stay valid when the snapshot format changes:
//! `cargo run --example bank_snapshot_seeds -- seeds/bank_snapshot` (from `fuzz/`, without
//! cargo-fuzz). Small made-up bank directories: no bank, one empty bank, and two banks (one an
//! allow-list) holding PDQ and digest entries with and without their own label and metadata,
//! one disabled.

use std::path::{Path, PathBuf};

use aranea_index::bank::Origin;
use aranea_index::store::SNAPSHOT_FILE;
use aranea_index::{BankKind, BankSpec, BankStore, NewEntry, Provenance, Signal, SignalType};

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("seeds/bank_snapshot".into()),
    );
    std::fs::create_dir_all(&dir).expect("seed directory");
    let work = std::env::temp_dir().join(format!("aranea-bank-seeds-{}", std::process::id()));
    for (name, banks, entries) in [("no_bank", 0, 0), ("empty_bank", 1, 0), ("two_banks", 2, 9)] {
        let _ = std::fs::remove_dir_all(&work);
        let mut store = BankStore::open(&work).expect("bank directory");
        fill(&mut store, banks, entries);
        store.write_snapshot().expect("snapshot written");
        let seed = dir.join(name);
        std::fs::copy(work.join(SNAPSHOT_FILE), &seed).expect("seed copied");
        println!("{}: {} bytes", seed.display(), size(&seed));
    }
    let _ = std::fs::remove_dir_all(&work);
}

fn fill(store: &mut BankStore, banks: usize, entries: usize) {
    let mut allow = BankSpec::new("stock-photos", "local", "known-benign");
    allow.kind = BankKind::AllowList;
    allow.pdq_threshold = 10;
    allow.description = "made-up values\nfor the fuzzer".into();
    let specs = [BankSpec::new("local", "hotline:xx", "label-a"), allow];
    for spec in specs.into_iter().take(banks) {
        store.create_bank(spec).expect("bank created");
    }
    if entries == 0 {
        return;
    }
    let provenance = store
        .add_provenance(Provenance {
            added_by: "seed".into(),
            added_at: 1_700_000_000,
            origin: Origin::Import {
                file: "list.csv".into(),
            },
        })
        .expect("provenance");
    let values = [
        (
            SignalType::Pdq,
            "f8f8f0cee0f4a84f06370a32038f67f0b36e2ed596623e1d33e6339c4e9c9b22",
        ),
        (
            SignalType::Pdq,
            "f8f8f0cee0f4a84f06370a32038f67f0b36e2ed596623e1d33e6339c4e9c9b23",
        ),
        (SignalType::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
        (SignalType::Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (
            SignalType::Sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (SignalType::VideoMd5, "0cc175b9c0f1b6a831c399e269772661"),
        (
            SignalType::Pdq,
            "0000000000000000000000000000000000000000000000000000000000000001",
        ),
        (SignalType::Md5, "900150983cd24fb0d6963f7d28e17f72"),
        (
            SignalType::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
    ];
    let new: Vec<NewEntry> = values
        .iter()
        .take(entries)
        .enumerate()
        .map(|(line, (signal_type, hex))| NewEntry {
            bank: (line % 2) as u32,
            signal: Signal::from_hex(*signal_type, hex).expect("a made-up value"),
            classification: (line % 3 == 0).then(|| "label-b".to_string()),
            provenance,
            line: line as u64 + 1,
            metadata: (line == 4).then(|| r#"{"note":"made up"}"#.to_string()),
        })
        .collect();
    let added = store.add_entries(&new).expect("entries added");
    store
        .disable_entry(added.added[1], provenance)
        .expect("entry disabled");
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

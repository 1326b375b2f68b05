//! Crash atomicity of multi-record changes: a journal cut at any point inside an import (or
//! a batch of entries) reopens with the whole change or none of it, and the next change
//! after such a crash completes normally.

mod common;

use common::{pdq, provenance};
use std::path::{Path, PathBuf};

use aranea_index::{BankFilter, BankSpec, BankStore, NewEntry, Signal};

fn entries(provenance: u32, seeds: std::ops::Range<u64>) -> Vec<NewEntry> {
    seeds
        .map(|seed| NewEntry {
            bank: 0,
            signal: Signal::Pdq(pdq(seed)),
            classification: None,
            provenance,
            line: seed,
            metadata: None,
        })
        .collect()
}

fn journal_of(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".log"))
        .unwrap()
}

/// Byte offsets where the journal's frames start, past `from`, and its end.
fn frame_boundaries(bytes: &[u8], from: u64) -> Vec<u64> {
    let mut offsets = Vec::new();
    let mut at = 0usize;
    while at + 16 <= bytes.len() {
        let word = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        if at as u64 >= from {
            offsets.push(at as u64);
        }
        at += 16 + (word & 0x3FFF_FFFF) as usize;
    }
    assert_eq!(at, bytes.len(), "frames do not tile the journal");
    offsets.push(at as u64);
    offsets
}

/// Opens a copy of the bank directory whose journal is cut at `cut` bytes.
fn open_cut(journal: &[u8], name: &str, cut: u64) -> (tempfile::TempDir, BankStore) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), &journal[..cut as usize]).unwrap();
    let store = BankStore::open(dir.path()).unwrap();
    (dir, store)
}

fn visible(store: &BankStore, seeds: std::ops::Range<u64>) -> usize {
    let generation = store.live().load();
    seeds
        .filter(|&seed| {
            !generation
                .match_signal(&Signal::Pdq(pdq(seed)), &BankFilter::All)
                .hits
                .is_empty()
        })
        .count()
}

/// Every cut inside the change (at each record boundary and mid-record) must reopen with the
/// change whole (only when the commit record is in) or absent, and accept a new change.
fn check_every_cut(journal: &[u8], name: &str, change_start: u64, before: usize, change: usize) {
    let boundaries = frame_boundaries(journal, change_start);
    let end = *boundaries.last().unwrap();
    let mut cuts: Vec<u64> = boundaries.clone();
    for pair in boundaries.windows(2) {
        cuts.extend([pair[0] + 1, pair[0] + 15, pair[0] + 17, pair[1] - 1]);
    }
    for cut in cuts {
        let (dir, mut store) = open_cut(journal, name, cut);
        let count = store.state().entries().len();
        let expected = if cut == end { before + change } else { before };
        assert_eq!(count, expected, "journal cut at {cut} of {end}");
        assert_eq!(visible(&store, 0..1000), expected, "cut at {cut}: matching");
        // Only a cut between changes leaves nothing to discard.
        let clean = cut == end || cut == change_start;
        assert_eq!(store.warnings().is_empty(), clean, "cut at {cut}");
        // A new import after the crash completes and survives reopening.
        store.begin_transaction().unwrap();
        let p = provenance(&mut store);
        store.append_entries(&entries(p, 2000..2010)).unwrap();
        store.commit_transaction().unwrap();
        drop(store);
        let store = BankStore::open(dir.path()).unwrap();
        assert!(store.warnings().is_empty(), "{:?}", store.warnings());
        assert_eq!(store.state().entries().len(), expected + 10, "cut at {cut}");
        assert_eq!(visible(&store, 2000..2010), 10);
    }
}

#[test]
fn an_import_cut_anywhere_reopens_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let change_start;
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        store
            .create_bank(BankSpec::new("local", "local", "csam"))
            .unwrap();
        let p = provenance(&mut store);
        store.add_entries(&entries(p, 0..1)).unwrap();
        change_start = std::fs::metadata(journal_of(dir.path())).unwrap().len();
        // An import as the CLI does it: provenance and entries in batches, one transaction.
        store.begin_transaction().unwrap();
        let p = provenance(&mut store);
        for batch in 0..3 {
            let outcome = store
                .append_entries(&entries(p, 1 + batch * 5..6 + batch * 5))
                .unwrap();
            assert_eq!(outcome.added.len(), 5);
        }
        store.commit_transaction().unwrap();
        // Until the process ends, its own changes are visible to it.
        assert_eq!(store.state().entries().len(), 16);
    }
    let path = journal_of(dir.path());
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let journal = std::fs::read(&path).unwrap();
    check_every_cut(&journal, &name, change_start, 1, 15);
}

#[test]
fn a_batch_of_entries_outside_an_import_is_also_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let change_start;
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        store
            .create_bank(BankSpec::new("local", "local", "csam"))
            .unwrap();
        let p = provenance(&mut store);
        change_start = std::fs::metadata(journal_of(dir.path())).unwrap().len();
        let outcome = store.add_entries(&entries(p, 0..4)).unwrap();
        // Entry ids stay the records' sequence numbers, past the begin marker.
        for id in &outcome.added {
            assert!(store.state().entry(*id).is_some());
        }
    }
    let path = journal_of(dir.path());
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let journal = std::fs::read(&path).unwrap();
    check_every_cut(&journal, &name, change_start, 0, 4);
}

#[test]
fn transactions_do_not_nest_and_a_snapshot_waits_for_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    store
        .create_bank(BankSpec::new("local", "local", "csam"))
        .unwrap();
    store.begin_transaction().unwrap();
    assert!(store.begin_transaction().is_err());
    assert!(store.write_snapshot().is_err());
    store.commit_transaction().unwrap();
    assert!(store.commit_transaction().is_err());
    store.write_snapshot().unwrap();
}

#[test]
fn a_crash_after_a_snapshot_keeps_the_old_segment_clean() {
    // Crash mid-import, reopen, snapshot (which starts a new journal segment) without any
    // append in between: the uncommitted tail must not reappear on the next open.
    let dir = tempfile::tempdir().unwrap();
    let committed;
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        store
            .create_bank(BankSpec::new("local", "local", "csam"))
            .unwrap();
        let p = provenance(&mut store);
        store.add_entries(&entries(p, 0..2)).unwrap();
        committed = std::fs::metadata(journal_of(dir.path())).unwrap().len();
        store.begin_transaction().unwrap();
        store.append_entries(&entries(p, 10..20)).unwrap();
        // Dropped without a commit: the process died.
    }
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        assert_eq!(store.state().entries().len(), 2);
        store.write_snapshot().unwrap();
    }
    assert_eq!(
        std::fs::metadata(journal_of(dir.path())).unwrap().len(),
        committed
    );
    std::fs::remove_file(dir.path().join(aranea_index::store::SNAPSHOT_FILE)).unwrap();
    let store = BankStore::open(dir.path()).unwrap();
    assert_eq!(store.state().entries().len(), 2);
    assert_eq!(visible(&store, 10..20), 0);
}

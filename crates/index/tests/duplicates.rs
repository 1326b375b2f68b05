//! Duplicate detection when entries are added: only enabled entries of the same bank count,
//! whether they are in the snapshot, the journal, or appended in the same open transaction,
//! and finding them reads no entry back from the snapshot file.

mod common;

use aranea_index::store::SNAPSHOT_FILE;
use aranea_index::{BankFilter, BankSpec, BankStore, NewEntry, Signal, SignalType};
use common::{entry, pdq, provenance_by as provenance};

fn md5(seed: u64) -> Signal {
    let hex: String = pdq(seed)
        .to_words()
        .iter()
        .map(|w| format!("{w:016x}"))
        .collect();
    Signal::from_hex(SignalType::Md5, &hex[..32]).unwrap()
}

fn live_entries(store: &BankStore, signal: &Signal) -> Vec<u64> {
    let result = store.live().load().match_signal(signal, &BankFilter::All);
    result.hits.iter().map(|h| h.entry).collect()
}

/// Where the disabled entry is when its value is added back.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// In the journal, published to the live index.
    Journal,
    /// In the snapshot the store was reopened from.
    Snapshot,
    /// Disabled and added back inside one open transaction, nothing published in between.
    Transaction,
}

#[test]
fn a_disabled_entry_is_no_duplicate_and_its_value_can_be_added_back() {
    for place in [Place::Journal, Place::Snapshot, Place::Transaction] {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BankStore::open(dir.path()).unwrap();
        let bank = store
            .create_bank(BankSpec::new("local", "local", "csam"))
            .unwrap();
        let other = store
            .create_bank(BankSpec::new("other", "local", "csam"))
            .unwrap();
        let first = provenance(&mut store, "first import");
        let values = [Signal::Pdq(pdq(1)), md5(2)];
        let old = store
            .add_entries(&[
                entry(bank, values[0], first),
                entry(bank, values[1], first),
                entry(other, values[0], first),
            ])
            .unwrap()
            .added;
        if let Place::Transaction = place {
            store.begin_transaction().unwrap();
        }
        for &id in &old[..2] {
            store.disable_entry(id, first).unwrap();
        }
        if let Place::Snapshot = place {
            store.write_snapshot().unwrap();
            drop(store);
            store = BankStore::open(dir.path()).unwrap();
        }
        let again = provenance(&mut store, "appeal");
        let outcome = store
            .append_entries(&[entry(bank, values[0], again), entry(bank, values[1], again)])
            .unwrap();
        assert!(outcome.duplicates.is_empty(), "{place:?}: {outcome:?}");
        assert_eq!(outcome.added.len(), 2, "{place:?}");
        // Added again once more before anything is published: now they are duplicates.
        let third = store
            .append_entries(&[entry(bank, values[0], again), entry(bank, values[1], again)])
            .unwrap();
        assert!(third.added.is_empty(), "{place:?}: {third:?}");
        assert_eq!(
            third.duplicates,
            vec![(0, outcome.added[0]), (1, outcome.added[1])],
            "{place:?}"
        );
        if let Place::Transaction = place {
            store.commit_transaction().unwrap();
        }
        store.publish().unwrap();
        for (value, (&old_id, &new_id)) in values.iter().zip(old.iter().zip(&outcome.added)) {
            let history = store.state().entry(old_id).unwrap();
            assert!(history.disabled, "{place:?}: the old entry stays, disabled");
            assert_eq!(history.provenance, first);
            let new = store.state().entry(new_id).unwrap();
            assert!(!new.disabled && new.provenance == again && new_id > old_id);
            assert_eq!(store.find_enabled(bank, value), Some(new_id), "{place:?}");
        }
        // The other bank's enabled entry was never disabled: it matches beside the new one.
        let mut matching = live_entries(&store, &values[0]);
        matching.sort_unstable();
        assert_eq!(matching, vec![old[2], outcome.added[0]], "{place:?}");
        assert_eq!(live_entries(&store, &values[1]), vec![outcome.added[1]]);

        // After reopening (journal replay, or a new snapshot), the same answers.
        store.write_snapshot().unwrap();
        drop(store);
        let mut store = BankStore::open(dir.path()).unwrap();
        let last = provenance(&mut store, "later");
        let later = store
            .add_entries(&[entry(bank, values[0], last), entry(other, values[0], last)])
            .unwrap();
        assert_eq!(
            later.duplicates,
            vec![(0, outcome.added[0]), (1, old[2])],
            "{place:?}"
        );
    }
}

/// Finding duplicates needs no entry from the snapshot file: with the file cut short under
/// the open store (which the store never does itself), every value of the snapshot is still
/// found as a duplicate and no read of the file is even attempted.
#[test]
fn finding_duplicates_reads_no_entry_back_from_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let count = 6_000u64;
    let signal = |seed: u64| {
        if seed.is_multiple_of(2) {
            Signal::Pdq(pdq(seed))
        } else {
            md5(seed)
        }
    };
    let stored = {
        let mut store = BankStore::open(dir.path()).unwrap();
        let bank = store
            .create_bank(BankSpec::new("local", "local", "csam"))
            .unwrap();
        let p = provenance(&mut store, "import");
        let entries: Vec<NewEntry> = (0..count).map(|s| entry(bank, signal(s), p)).collect();
        let added = store.append_entries(&entries).unwrap().added;
        store.write_snapshot().unwrap();
        added
    };
    let mut store = BankStore::open(dir.path()).unwrap();
    let snapshot = dir.path().join(SNAPSHOT_FILE);
    let length = std::fs::metadata(&snapshot).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&snapshot)
        .unwrap()
        .set_len(length / 4)
        .unwrap();
    let p = provenance(&mut store, "decision");
    let seeds = [0, 1, count / 2, count - 2, count - 1];
    let outcome = store
        .add_entries(
            &seeds
                .iter()
                .map(|&s| entry(0, signal(s), p))
                .chain([entry(0, signal(count), p)])
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let expected: Vec<(usize, u64)> = seeds
        .iter()
        .enumerate()
        .map(|(position, &s)| (position, stored[s as usize]))
        .collect();
    assert_eq!(outcome.duplicates, expected);
    assert_eq!(outcome.added.len(), 1);
    assert_eq!(store.state().read_error(), None, "an entry was read back");
}

//! What a follower of a bank store needs to keep data derived from the entries current without
//! reading them all again: the entries above an id, whether they are in the snapshot's row
//! groups, in memory since it, or all read into memory; and an edit mark that stays the same
//! while entries are only added and moves on with every other change.

mod common;

use aranea_index::{BankSpec, BankState, BankStore, Entry, EntryId, NewEntry, Signal};
use common::{entry, pdq, provenance};

fn pdq_entries(bank: u32, provenance: u32, seeds: std::ops::Range<u64>) -> Vec<NewEntry> {
    seeds
        .map(|seed| {
            let signal = Signal::Pdq(pdq(seed));
            entry(bank, signal, provenance)
        })
        .collect()
}

fn ids_after(state: &BankState, after: EntryId) -> Vec<(EntryId, bool)> {
    let mut seen = Vec::new();
    state
        .for_each_entry_after(after, &mut |e: &Entry| {
            seen.push((e.id, e.disabled));
            Ok(())
        })
        .unwrap();
    seen
}

#[test]
fn entries_after_an_id_are_exactly_those_above_it_wherever_they_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (stored_disabled, added_disabled);
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        let bank = store.create_bank(BankSpec::new("b", "local", "x")).unwrap();
        let p = provenance(&mut store);
        // Three row groups of the snapshot (2,048 entries each, the last one partial).
        store.add_entries(&pdq_entries(bank, p, 0..5_000)).unwrap();
        store.write_snapshot().unwrap();
    }
    let mut store = BankStore::open(dir.path()).unwrap();
    let p = provenance(&mut store);
    let added = store
        .add_entries(&pdq_entries(0, p, 5_000..5_100))
        .unwrap()
        .added;
    let stored: Vec<EntryId> = {
        let mut all = Vec::new();
        store
            .state()
            .for_each_entry(&mut |e| {
                all.push(e.id);
                Ok(())
            })
            .unwrap();
        all.retain(|id| !added.contains(id));
        all
    };
    assert_eq!(stored.len(), 5_000);
    stored_disabled = stored[3_000];
    added_disabled = added[10];
    store.disable_entry(stored_disabled, p).unwrap();
    store.disable_entry(added_disabled, p).unwrap();

    let state = store.state().clone();
    let every: Vec<(EntryId, bool)> = stored
        .iter()
        .chain(&added)
        .map(|&id| (id, id == stored_disabled || id == added_disabled))
        .collect();
    let last = *added.last().unwrap();
    let cut_points = [
        0,
        stored[0],
        stored[2_046],
        stored[2_047],
        stored[2_048],
        stored[4_095],
        stored_disabled,
        *stored.last().unwrap(),
        added[0],
        added_disabled,
        last,
        last + 10,
    ];
    let check = |state: &BankState, how: &str| {
        for after in cut_points {
            let expected: Vec<_> = every
                .iter()
                .copied()
                .filter(|(id, _)| *id > after)
                .collect();
            assert_eq!(ids_after(state, after), expected, "{how}, after {after}");
        }
    };
    check(&state, "snapshot groups and entries added since");
    // Once every entry has been read into memory, the same answers from there.
    assert_eq!(state.entries().len(), every.len());
    check(&state, "all entries in memory");
}

#[test]
fn the_edit_mark_stays_while_entries_are_added_and_moves_with_any_other_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = BankStore::open(dir.path()).unwrap();
    let bank = store.create_bank(BankSpec::new("b", "local", "x")).unwrap();
    let p = provenance(&mut store);
    let start = store.state().edit_mark();

    store.add_entries(&pdq_entries(bank, p, 0..10)).unwrap();
    let second = provenance(&mut store);
    store
        .add_entries(&pdq_entries(bank, second, 10..20))
        .unwrap();
    store.write_snapshot().unwrap();
    assert_eq!(store.state().edit_mark(), start, "additions and a snapshot");

    let mut marks = vec![start];
    let mut expect_moved = |store: &BankStore, what: &str| {
        let mark = store.state().edit_mark();
        assert!(!marks.contains(&mark), "{what} left the mark as it was");
        marks.push(mark);
    };
    let first = store
        .find_enabled(bank, &pdq_entries(bank, p, 0..1)[0].signal)
        .unwrap();
    store.disable_entry(first, p).unwrap();
    expect_moved(&store, "disabling an entry");
    store
        .update_bank("b", |spec| spec.pdq_threshold = 10)
        .unwrap();
    expect_moved(&store, "changing a bank");
    store.create_bank(BankSpec::new("c", "local", "x")).unwrap();
    expect_moved(&store, "creating a bank");
    drop(store);
    let reopened = BankStore::open(dir.path()).unwrap();
    expect_moved(&reopened, "reopening");
}

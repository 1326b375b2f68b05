//! Any bytes as a bank directory's snapshot (`banks.snapshot`, read by `snapshot::read_banks`
//! when a bank directory is opened), which must not trust what it reads: the reader must give
//! a bank state and its index or a `BadSnapshot` error, never panic or allocate past the file.
//! The file's last four bytes are replaced by the right CRC-32 of the rest before reading, so
//! mutations reach the decoding and its checks instead of only failing the checksum (which the
//! reader verifies after decoding). A state the reader accepts must hold together: each bank
//! at the position its id names (lookups index by id), bank names unique (lookups by name take
//! the first) and every bank's settings ones `create_bank` takes (`check_bank_spec`: no bank
//! named `all`, a threshold of at most 128, one-line printable classification and source),
//! entries readable, in increasing id order within 1 ..= the snapshot's sequence number (entry
//! ids are journal sequence numbers: one above it would be given again to the next record),
//! each in a known bank; its own index (not one rebuilt) answers each entry's value with hits
//! that are enabled entries holding the value hit, in the bank and with the classification the
//! hit names, and finds every enabled entry of an exact digest; the same bytes with a wrong
//! checksum are refused; and a bank directory opened on it writes a snapshot that reads back as
//! the same state, whose index finds every enabled entry.
//!
//! Not asserted: that the snapshot's own PDQ substring tables find every enabled PDQ entry.
//! The reader checks their shape, not that they are the tables the codes build (that check
//! tripled the open time of a 1M bank): a forged table can hide a code from searches, but not
//! make one hit, as every candidate is compared with the codes, which are the entries' values.
#![no_main]

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::PathBuf;

use aranea_index::bank::check_bank_spec;
use aranea_index::fuzzing::read_bank_snapshot;
use aranea_index::store::SNAPSHOT_FILE;
use aranea_index::{BankFilter, BankState, BankStore, Entry, LiveIndex, Signal, StoreError};
use libfuzzer_sys::fuzz_target;

/// A file and a bank directory per fuzzing process in memory-backed /dev/shm where there is
/// one (the reader only takes a path), rewritten for every input.
struct Scratch {
    file: PathBuf,
    bank_dir: PathBuf,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new({
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let name = format!("aranea-fuzz-bank-snapshot-{}", std::process::id());
        Scratch {
            file: dir.join(format!("{name}.snapshot")),
            bank_dir: dir.join(format!("{name}-banks")),
        }
    });
}

fuzz_target!(|data: &[u8]| {
    SCRATCH.with_borrow(|scratch| check(data, scratch));
});

fn check(data: &[u8], scratch: &Scratch) {
    let body = &data[..data.len().saturating_sub(4)];
    let crc = crc32fast::hash(body);
    let mut file = body.to_vec();
    file.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(&scratch.file, &file).unwrap();
    let (state, live) = match read_bank_snapshot(&scratch.file) {
        Ok(loaded) => loaded,
        Err(StoreError::BadSnapshot { .. }) => return,
        Err(other) => panic!("not a BadSnapshot error: {other}"),
    };
    let entries = check_state(&state);
    check_index_answers(&state, &live, &entries);

    // The checksum guards every byte: the same body with a wrong CRC is refused.
    let mut wrong = file.clone();
    let at = wrong.len() - 4;
    wrong[at..].copy_from_slice(&(crc ^ 1).to_le_bytes());
    std::fs::write(&scratch.file, &wrong).unwrap();
    assert!(matches!(
        read_bank_snapshot(&scratch.file),
        Err(StoreError::BadSnapshot { .. })
    ));

    // A bank directory opened on the snapshot takes it as it is and writes it again.
    let _ = std::fs::remove_dir_all(&scratch.bank_dir);
    std::fs::create_dir_all(&scratch.bank_dir).unwrap();
    let in_dir = scratch.bank_dir.join(SNAPSHOT_FILE);
    std::fs::write(&in_dir, &file).unwrap();
    let mut store = BankStore::open(&scratch.bank_dir).expect("a bank directory on the snapshot");
    assert!(store.warnings().is_empty(), "{:?}", store.warnings());
    assert_eq!(store.state().seq(), state.seq());
    store.write_snapshot().expect("the snapshot written again");
    drop(store);
    let (again, again_live) = read_bank_snapshot(&in_dir).expect("a rewritten snapshot reads back");
    assert_eq!(again.seq(), state.seq());
    assert_eq!(again.banks(), state.banks());
    assert_eq!(provenances(&again), provenances(&state));
    assert_eq!(check_state(&again), entries, "rewritten entries differ");
    // The writer builds the index from the entries: it finds every enabled one.
    let generation = again_live.load();
    for entry in entries.iter().filter(|e| !e.disabled).take(64) {
        let found = generation
            .find_enabled(entry.bank, &entry.signal)
            .expect("an enabled entry is found");
        let holder = again.entry(found).expect("the entry found exists");
        assert_eq!((holder.bank, holder.signal), (entry.bank, entry.signal));
        assert!(!holder.disabled);
    }
    let _ = std::fs::remove_dir_all(&scratch.bank_dir);
}

/// The invariants of an accepted state; returns its entries.
fn check_state(state: &BankState) -> Vec<Entry> {
    let banks = state.banks();
    let mut names = HashSet::new();
    for (position, bank) in banks.iter().enumerate() {
        assert_eq!(
            bank.id as usize, position,
            "bank {position} has id {}",
            bank.id
        );
        if let Err(error) = check_bank_spec(&bank.spec) {
            panic!("bank {position}: {error}");
        }
        assert!(
            names.insert(&bank.spec.name),
            "bank name {:?} twice",
            bank.spec.name
        );
        assert_eq!(state.bank_by_name(&bank.spec.name), Some(bank));
    }
    let mut entries: Vec<Entry> = Vec::new();
    state
        .for_each_entry(&mut |entry| {
            let after = entries.last().map_or(0, |e| e.id);
            assert!(entry.id > after, "entry {} after {after}", entry.id);
            assert!(
                entry.id <= state.seq(),
                "entry {} past seq {}",
                entry.id,
                state.seq()
            );
            assert!(
                (entry.bank as usize) < banks.len(),
                "entry in bank {}",
                entry.bank
            );
            entries.push(entry.clone());
            Ok(())
        })
        .expect("the entries of an accepted snapshot read back");
    assert_eq!(entries.len(), state.entry_count());
    assert!(state.read_error().is_none());
    for entry in entries.iter().take(16) {
        assert_eq!(state.entry(entry.id).as_ref(), Some(entry));
    }
    entries
}

/// Matching each entry's value answers with hits in known banks, named as the banks are, each
/// an enabled entry holding the value hit; an enabled digest entry is found.
fn check_index_answers(state: &BankState, live: &LiveIndex, entries: &[Entry]) {
    let generation = live.load();
    assert_eq!(generation.banks(), state.banks());
    for entry in entries.iter().take(64) {
        let result = generation.match_signal(&entry.signal, &BankFilter::All);
        for hit in result
            .hits
            .iter()
            .chain(&result.allowed_by)
            .chain(&result.suppressed)
        {
            let bank = state.bank(hit.bank).expect("a hit in a known bank");
            assert_eq!(hit.bank_name, bank.spec.name);
            assert_eq!(hit.bank_kind, bank.spec.kind);
            let held = state
                .entry(hit.entry)
                .expect("a hit on an entry that exists");
            assert!(!held.disabled, "a hit on disabled entry {}", held.id);
            assert_eq!((held.bank, held.signal), (hit.bank, hit.value));
            assert_eq!(state.classification_of(&held), hit.classification);
        }
        if !entry.disabled && !matches!(entry.signal, Signal::Pdq(_)) {
            let found = generation
                .find_enabled(entry.bank, &entry.signal)
                .expect("an enabled digest entry is found");
            let holder = state.entry(found).expect("the entry found exists");
            assert_eq!((holder.bank, holder.signal), (entry.bank, entry.signal));
        }
    }
}

fn provenances(state: &BankState) -> Vec<aranea_index::Provenance> {
    (0..)
        .map_while(|index| state.provenance(index).cloned())
        .collect()
}

//! The columnar snapshot: a bank of every signal type, with labels, metadata and disabled
//! entries across several row groups, reads back exactly as the journal replays it; a
//! damaged snapshot (truncated, a flipped byte anywhere) is refused and the journal replayed.

mod common;

use aranea_index::store::SNAPSHOT_FILE;
use aranea_index::{BankFilter, BankSpec, BankStore, NewEntry, Signal, SignalType};
use common::{pdq, provenance_by};

fn signal(seed: u64) -> Signal {
    let hash = pdq(seed);
    let hex: String = hash
        .to_words()
        .iter()
        .map(|x| format!("{x:016x}"))
        .collect();
    match seed % 4 {
        0 | 1 => Signal::Pdq(hash),
        2 => Signal::from_hex(SignalType::Md5, &hex[..32]).unwrap(),
        _ => Signal::from_hex(SignalType::Sha1, &hex[..40]).unwrap(),
    }
}

/// 70,000 entries (35 row groups) in two banks, some labelled, some with metadata, every
/// 97th disabled; no snapshot written yet.
fn build(dir: &std::path::Path) {
    build_with(dir, 70_000);
}

/// `count` entries as [`build`] makes them.
fn build_with(dir: &std::path::Path, count: u64) {
    let mut store = BankStore::open(dir).unwrap();
    store
        .create_bank(BankSpec::new("one", "local", "csam"))
        .unwrap();
    store
        .create_bank(BankSpec::new("two", "ncmec", "other"))
        .unwrap();
    let p = provenance_by(&mut store, "test");
    let entries: Vec<NewEntry> = (0..count)
        .map(|seed| NewEntry {
            bank: (seed % 2) as u32,
            signal: signal(seed),
            classification: (seed % 3 == 0).then(|| format!("label-{}", seed % 7)),
            provenance: p,
            line: seed + 1,
            metadata: (seed % 5 == 0).then(|| format!("{{\"n\":{seed}}}")),
        })
        .collect();
    let added = store.append_entries(&entries).unwrap().added;
    for id in added.iter().step_by(97) {
        store.disable_entry(*id, p).unwrap();
    }
}

fn hits(store: &BankStore, seed: u64) -> usize {
    store
        .live()
        .load()
        .match_signal(&signal(seed), &BankFilter::All)
        .hits
        .len()
}

#[test]
fn the_snapshot_reads_back_what_the_journal_replays_and_damage_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let replayed = BankStore::open(dir.path()).unwrap();
    let expected = replayed.state().entries().to_vec();
    let expected_hits: Vec<usize> = (0..70_000)
        .step_by(13)
        .map(|s| hits(&replayed, s))
        .collect();
    assert!(expected_hits.contains(&0), "disabled entries");
    assert!(expected_hits.iter().any(|&h| h > 0));
    drop(replayed);
    let mut store = BankStore::open(dir.path()).unwrap();
    store.write_snapshot().unwrap();
    drop(store);
    let snapshot = dir.path().join(SNAPSHOT_FILE);
    let intact = std::fs::read(&snapshot).unwrap();

    let check = |what: &str, expect_warning: bool| {
        let store = BankStore::open(dir.path()).unwrap();
        assert_eq!(!store.warnings().is_empty(), expect_warning, "{what}");
        assert_eq!(store.state().entries(), expected.as_slice(), "{what}");
        let got: Vec<usize> = (0..70_000).step_by(13).map(|s| hits(&store, s)).collect();
        assert_eq!(got, expected_hits, "{what}");
    };
    check("intact snapshot", false);
    assert!(BankStore::open(dir.path()).unwrap().snapshot_seq() > 0);
    // Damage in every region: header, catalog, entry columns, segment, index, checksum.
    for at in (0..intact.len())
        .step_by(intact.len() / 23)
        .chain([intact.len() - 1])
    {
        let mut damaged = intact.clone();
        damaged[at] ^= 0x5A;
        std::fs::write(&snapshot, &damaged).unwrap();
        check(&format!("byte {at} flipped"), true);
    }
    for cut in [
        0,
        11,
        24,
        intact.len() / 3,
        intact.len() - 4,
        intact.len() - 1,
    ] {
        std::fs::write(&snapshot, &intact[..cut]).unwrap();
        check(&format!("cut at {cut}"), true);
    }
}

/// A snapshot that is damaged yet carries a valid checksum (hostile, or a bug elsewhere) must
/// be refused or read without a crash; a refused one falls back to the journal.
#[test]
fn a_hostile_snapshot_with_a_valid_checksum_never_crashes_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        store
            .create_bank(BankSpec::new("one", "local", "csam"))
            .unwrap();
        let p = provenance_by(&mut store, "test");
        let entries: Vec<NewEntry> = (0..3_000u64)
            .map(|seed| NewEntry {
                bank: 0,
                signal: signal(seed),
                classification: (seed % 3 == 0).then(|| "label".to_string()),
                provenance: p,
                line: seed * 3,
                metadata: (seed % 5 == 0).then(|| format!("{{\"n\":{seed}}}")),
            })
            .collect();
        store.append_entries(&entries).unwrap();
        store.disable_entry(5, p).unwrap();
        store.write_snapshot().unwrap();
    }
    let expected = BankStore::open(dir.path())
        .unwrap()
        .state()
        .entries()
        .to_vec();
    let snapshot = dir.path().join(SNAPSHOT_FILE);
    let intact = std::fs::read(&snapshot).unwrap();
    let body = intact.len() - 4;
    let mut refused = 0;
    for at in (0..body).step_by(body / 400).chain(24..200) {
        for value in [0x00u8, 0xFF, 0x80] {
            let mut hostile = intact.clone();
            hostile[at] = value;
            let crc = crc32fast::hash(&hostile[..body]);
            hostile[body..].copy_from_slice(&crc.to_le_bytes());
            std::fs::write(&snapshot, &hostile).unwrap();
            let store = BankStore::open(dir.path()).unwrap();
            if !store.warnings().is_empty() {
                refused += 1;
                assert_eq!(store.state().entries(), expected.as_slice(), "byte {at}");
            }
        }
    }
    assert!(refused > 0);
}

fn export_jsonl(store: &BankStore, bank: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let options = aranea_index::export::ExportOptions {
        include_disabled: true,
        ..Default::default()
    };
    let bank = store.bank_id(bank).unwrap();
    aranea_index::export::write_list(
        store.state(),
        bank,
        aranea_index::import::ListFormat::Jsonl,
        &options,
        &mut out,
    )
    .unwrap();
    out
}

/// Entries loaded from a snapshot stay in the file: single entries, exports and a new
/// snapshot are read from it with the journal's later changes (added, disabled) laid over,
/// and give what a store holding every entry in memory gives.
#[test]
fn entries_left_in_the_snapshot_read_back_with_later_changes() {
    let dir = tempfile::tempdir().unwrap();
    // 5 row groups, the last one partial.
    build_with(dir.path(), 9_000);
    let mut store = BankStore::open(dir.path()).unwrap();
    store.write_snapshot().unwrap();
    let p = provenance_by(&mut store, "later");
    let stored_ids: Vec<u64> = store.state().entries().iter().map(|e| e.id).collect();
    let later: Vec<NewEntry> = (9_000..9_500u64)
        .map(|seed| NewEntry {
            bank: 1,
            signal: signal(seed),
            classification: Some("later".into()),
            provenance: p,
            line: seed,
            metadata: None,
        })
        .collect();
    let added = store.add_entries(&later).unwrap().added;
    // Disabled after the snapshot: one in the first row group, one in the last, one added.
    let disabled = [stored_ids[3], stored_ids[stored_ids.len() - 2], added[7]];
    for id in disabled {
        store.disable_entry(id, p).unwrap();
    }
    let expected = store.state().entries().to_vec();
    let expected_export = [export_jsonl(&store, "one"), export_jsonl(&store, "two")];
    drop(store);

    // Reopened: the snapshot's entries are in the file, the rest replayed from the journal.
    let mut lazy = BankStore::open(dir.path()).unwrap();
    assert_eq!(lazy.state().entry_count(), expected.len());
    for id in disabled {
        assert!(lazy.state().entry(id).unwrap().disabled, "entry {id}");
    }
    for e in expected.iter().step_by(97) {
        assert_eq!(lazy.state().entry(e.id).as_ref(), Some(e));
    }
    assert_eq!(lazy.state().entry(u64::MAX), None);
    assert_eq!(
        [export_jsonl(&lazy, "one"), export_jsonl(&lazy, "two")],
        expected_export
    );
    lazy.write_snapshot().unwrap();
    assert_eq!(lazy.state().entry(added[7]).map(|e| e.disabled), Some(true));
    drop(lazy);
    let reopened = BankStore::open(dir.path()).unwrap();
    assert!(reopened.warnings().is_empty());
    assert_eq!(reopened.records_since_snapshot(), 0);
    assert_eq!(reopened.state().entries(), expected.as_slice());
    assert_eq!(reopened.state().read_error(), None);
    for seed in (0..9_500).step_by(7) {
        let want = expected
            .iter()
            .any(|e| !e.disabled && e.signal == signal(seed));
        assert_eq!(hits(&reopened, seed) > 0, want, "seed {seed}");
    }
}

/// A snapshot cut short under an open store (the file changed in place, which the store never
/// does) makes entry reads fail as errors, never a crash or a wrong entry.
#[test]
fn a_snapshot_cut_under_an_open_store_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    build_with(dir.path(), 9_000);
    BankStore::open(dir.path())
        .unwrap()
        .write_snapshot()
        .unwrap();
    let store = BankStore::open(dir.path()).unwrap();
    let mut last = None;
    store
        .state()
        .for_each_entry(&mut |e| {
            last = Some(e.id);
            Ok(())
        })
        .unwrap();
    let id = last.unwrap();
    assert!(store.state().entry(id).is_some());
    let snapshot = dir.path().join(SNAPSHOT_FILE);
    let intact = std::fs::read(&snapshot).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&snapshot)
        .unwrap()
        .set_len(intact.len() as u64 / 2)
        .unwrap();
    assert_eq!(store.state().entry(id), None);
    assert!(store.state().read_error().is_some());
    assert!(store.state().entries().len() < 9_000);
}

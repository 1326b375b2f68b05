//! A bank directory keeps a recent snapshot even when only a server writes it (API imports,
//! review decisions) or its snapshot was refused: past 100,000 journal records since the
//! snapshot, a server's change or an open writes a new one, so no open replays the whole
//! journal for ever.

use std::path::{Path, PathBuf};

use aranea_index::{
    BankFilter, BankSpec, BankStore, NewEntry, Origin, Provenance, Signal, SignalType,
};
use aranea_server::LiveBanks;

/// Well past the server's threshold (100,000 records since the snapshot).
const MANY: u64 = 100_500;

fn md5(n: u64) -> Signal {
    Signal::from_hex(SignalType::Md5, &format!("{n:032x}")).expect("32 hex digits")
}

/// Adds entries `from..to` to bank `api` (created when missing) of `store`.
fn add(store: &mut BankStore, from: u64, to: u64) -> Result<(), aranea_index::StoreError> {
    let bank = match store.bank_id("api") {
        Ok(bank) => bank,
        Err(_) => store.create_bank(BankSpec::new("api", "local", "csam"))?,
    };
    let provenance = store.add_provenance(Provenance {
        added_by: "test".into(),
        added_at: 0,
        origin: Origin::Manual,
    })?;
    let entries: Vec<NewEntry> = (from..to)
        .map(|n| NewEntry {
            bank,
            signal: md5(n),
            classification: None,
            provenance,
            line: 0,
            metadata: None,
        })
        .collect();
    store.add_entries(&entries)?;
    Ok(())
}

/// A directory of its own, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("aranea-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn records_since_snapshot(dir: &Path) -> u64 {
    BankStore::open(dir).unwrap().records_since_snapshot()
}

#[test]
fn a_server_that_writes_many_entries_leaves_a_recent_snapshot() {
    let dir = TempDir::new("snapshot-after-writes");
    let banks = LiveBanks::open(dir.path()).unwrap();
    banks.write(|store| add(store, 0, 1_000)).unwrap();
    let few = records_since_snapshot(dir.path());
    assert!(
        (1_000..2_000).contains(&few),
        "a small change writes no snapshot: {few}"
    );
    banks.write(|store| add(store, 1_000, MANY)).unwrap();
    assert_eq!(
        records_since_snapshot(dir.path()),
        0,
        "the change past the threshold wrote a snapshot"
    );
    let reopened = BankStore::open(dir.path()).unwrap();
    assert!(reopened.warnings().is_empty(), "{:?}", reopened.warnings());
    let last = reopened
        .live()
        .load()
        .match_signal(&md5(MANY - 1), &BankFilter::All);
    assert_eq!(last.hits.len(), 1, "the last entry is in the snapshot");
}

#[test]
fn opening_a_long_journal_without_a_usable_snapshot_writes_one() {
    let dir = TempDir::new("snapshot-at-open");
    {
        let mut store = BankStore::open(dir.path()).unwrap();
        add(&mut store, 0, MANY).unwrap();
        store.publish().unwrap();
    }
    let before = records_since_snapshot(dir.path());
    assert!(before >= MANY, "no snapshot yet: {before}");
    let banks = LiveBanks::open(dir.path()).unwrap();
    let found = banks.live().load().match_signal(&md5(7), &BankFilter::All);
    assert_eq!(found.hits.len(), 1);
    assert_eq!(records_since_snapshot(dir.path()), 0, "the open wrote one");

    // A writer holding the lock keeps the open from writing: it snapshots when it needs to.
    let mut store = BankStore::open(dir.path()).unwrap();
    add(&mut store, MANY, 2 * MANY).unwrap();
    store.publish().unwrap();
    let lock = banks.home().lock_writers(|| {}).unwrap();
    let while_locked = banks.home().open_store().unwrap();
    assert!(while_locked.records_since_snapshot() >= MANY);
    drop(lock);
    assert!(records_since_snapshot(dir.path()) >= MANY);
}

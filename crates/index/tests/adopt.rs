//! A reader process's index follows a bank directory another process changed: the directory
//! is reopened and the holder's `LiveIndex` adopts the new generation in place.

mod common;

use aranea_index::{BankFilter, BankSpec, BankStore, Signal, SignalType};
use common::{entry, provenance};

fn md5(hex: &str) -> Signal {
    Signal::from_hex(SignalType::Md5, hex).unwrap()
}

fn add(store: &mut BankStore, bank: u32, signal: Signal) -> aranea_index::EntryId {
    let provenance = provenance(store);
    let added = store
        .add_entries(&[entry(bank, signal, provenance)])
        .unwrap()
        .added;
    store.publish().unwrap();
    added[0]
}

#[test]
fn a_held_index_adopts_a_reopened_directory_with_the_same_entry_ids() {
    let dir = tempfile::tempdir().unwrap();
    let first = md5("00112233445566778899aabbccddeeff");
    let second = md5("ffeeddccbbaa99887766554433221100");
    let bank;
    let first_id;
    {
        let mut writer = BankStore::open(dir.path()).unwrap();
        bank = writer
            .create_bank(BankSpec::new("platform", "local", "csam"))
            .unwrap();
        first_id = add(&mut writer, bank, first);
    }
    // The reader (a crawler) opens the directory and hands its index to its workers.
    let reader = BankStore::open(dir.path()).unwrap();
    let held = reader.live();
    assert!(
        held.load()
            .match_signal(&second, &BankFilter::All)
            .hits
            .is_empty()
    );

    // Another process (the server, on a review decision) adds an entry.
    let second_id = {
        let mut writer = BankStore::open(dir.path()).unwrap();
        add(&mut writer, bank, second)
    };
    assert!(
        held.load()
            .match_signal(&second, &BankFilter::All)
            .hits
            .is_empty(),
        "the held index cannot know before it adopts"
    );

    let reopened = BankStore::open(dir.path()).unwrap();
    held.adopt(&reopened.live());
    let generation = held.load();
    assert_eq!(
        generation.match_signal(&second, &BankFilter::All).hits[0].entry,
        second_id
    );
    assert_eq!(
        generation.match_signal(&first, &BankFilter::All).hits[0].entry,
        first_id
    );
}

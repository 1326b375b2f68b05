//! What several of this crate's tests build their banks from: PDQ hashes from a seed,
//! provenance records and plain entries.

#![allow(dead_code)]

use aranea_hash::PdqHash;
use aranea_index::{BankStore, NewEntry, Origin, Provenance, Signal};

/// A PDQ hash spread over all 256 bits, the same for the same seed.
pub fn pdq(seed: u64) -> PdqHash {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut words = [0u64; 4];
    for word in &mut words {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *word = state;
    }
    PdqHash::from_words(words)
}

/// A manual provenance by `by`; returns its index.
pub fn provenance_by(store: &mut BankStore, by: &str) -> u32 {
    store
        .add_provenance(Provenance {
            added_by: by.into(),
            added_at: 1,
            origin: Origin::Manual,
        })
        .unwrap()
}

/// A manual provenance by "test".
pub fn provenance(store: &mut BankStore) -> u32 {
    provenance_by(store, "test")
}

/// An entry with the bank's classification and no metadata.
pub fn entry(bank: u32, signal: Signal, provenance: u32) -> NewEntry {
    NewEntry {
        bank,
        signal,
        classification: None,
        provenance,
        line: 0,
        metadata: None,
    }
}

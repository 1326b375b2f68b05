//! The banks as they stand after a sequence of journal records: banks, entries, provenance.
//!
//! `BankState` is rebuilt by applying records in sequence order, whatever holds them (a file
//! journal today, a SQL table later). It does no I/O and does not search: the matching index
//! is built from it (see `segment`).

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::bank::{Bank, BankId, Entry, EntryId, Provenance};
use crate::error::StoreError;
use crate::journal::Record;
use crate::signal::Signal;

/// Banks and entries at one sequence number.
#[derive(Debug, Clone, Default)]
pub struct BankState {
    pub(crate) seq: u64,
    pub(crate) banks: Vec<Bank>,
    pub(crate) provenances: Vec<Provenance>,
    /// In increasing id order.
    pub(crate) entries: Vec<Entry>,
    /// Built on first use: matching never needs it, adding does.
    pub(crate) dedup: Option<DedupIndex>,
}

/// (bank, value) → entry position, in ~20 bytes per entry: a 64-bit fingerprint maps to a
/// position that is then compared for real; the rare fingerprint collisions go to `overflow`.
#[derive(Debug, Clone, Default)]
pub(crate) struct DedupIndex {
    primary: HashMap<u64, u32>,
    overflow: HashMap<(BankId, Signal), u32>,
}

fn fingerprint(bank: BankId, signal: &Signal) -> u64 {
    let mut hasher = DefaultHasher::new();
    bank.hash(&mut hasher);
    signal.hash(&mut hasher);
    hasher.finish()
}

impl BankState {
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn banks(&self) -> &[Bank] {
        &self.banks
    }

    pub fn bank(&self, id: BankId) -> Option<&Bank> {
        self.banks.get(id as usize)
    }

    pub fn bank_by_name(&self, name: &str) -> Option<&Bank> {
        self.banks.iter().find(|b| b.spec.name == name)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, id: EntryId) -> Option<&Entry> {
        let position = self.entries.binary_search_by_key(&id, |e| e.id).ok()?;
        self.entries.get(position)
    }

    pub fn provenance(&self, index: u32) -> Option<&Provenance> {
        self.provenances.get(index as usize)
    }

    /// The entry's own classification, else its bank's.
    pub fn classification_of<'a>(&'a self, entry: &'a Entry) -> &'a str {
        match &entry.classification {
            Some(label) => label,
            None => self
                .bank(entry.bank)
                .map_or("", |b| b.spec.classification.as_str()),
        }
    }

    /// The entry already holding `signal` in `bank`, if any (enabled or not).
    pub fn find(&mut self, bank: BankId, signal: &Signal) -> Option<EntryId> {
        let entries = &self.entries;
        let dedup = self.dedup.get_or_insert_with(|| {
            let mut index = DedupIndex::default();
            for (position, entry) in entries.iter().enumerate() {
                index.insert(entries, entry.bank, &entry.signal, position as u32);
            }
            index
        });
        dedup
            .get(entries, bank, signal)
            .and_then(|p| entries.get(p as usize))
            .map(|e| e.id)
    }

    /// Applies one record; `seq` must be above every record applied before.
    pub fn apply(&mut self, seq: u64, record: Record) -> Result<(), StoreError> {
        if seq <= self.seq {
            return Err(StoreError::Corrupt(format!(
                "record {seq} is not after {}",
                self.seq
            )));
        }
        match record {
            Record::BankCreated { bank } => {
                if bank.id as usize != self.banks.len() {
                    return Err(StoreError::Corrupt(format!(
                        "bank id {} out of order",
                        bank.id
                    )));
                }
                self.banks.push(bank);
            }
            Record::BankChanged { bank } => {
                let slot = self.banks.get_mut(bank.id as usize).ok_or_else(|| {
                    StoreError::Corrupt(format!("change of unknown bank {}", bank.id))
                })?;
                *slot = bank;
            }
            Record::ProvenanceAdded { index, provenance } => {
                if index as usize != self.provenances.len() {
                    return Err(StoreError::Corrupt(format!(
                        "provenance {index} out of order"
                    )));
                }
                self.provenances.push(provenance);
            }
            Record::EntryAdded {
                bank,
                signal_type,
                value,
                classification,
                provenance,
                line,
                metadata,
            } => {
                if self.bank(bank).is_none() {
                    return Err(StoreError::Corrupt(format!(
                        "entry {seq} in unknown bank {bank}"
                    )));
                }
                let signal = Signal::from_hex(signal_type, &value)
                    .map_err(|e| StoreError::Corrupt(format!("entry {seq}: {e}")))?;
                let entry = Entry {
                    id: seq,
                    bank,
                    signal,
                    classification: classification.map(|label| self.label(label)),
                    provenance,
                    line,
                    metadata: metadata.map(String::into_boxed_str),
                    disabled: false,
                };
                self.push_entry(entry);
            }
            Record::EntryDisabled { entry, .. } => {
                let position = self
                    .entries
                    .binary_search_by_key(&entry, |e| e.id)
                    .map_err(|_| {
                        StoreError::Corrupt(format!("disable of unknown entry {entry}"))
                    })?;
                if let Some(found) = self.entries.get_mut(position) {
                    found.disabled = true;
                }
            }
            // The journal has already decided that the transaction counts.
            Record::TransactionBegun { .. } | Record::TransactionCommitted { .. } => {}
        }
        self.seq = seq;
        Ok(())
    }

    /// The shared copy of `label`: the last entry's, when it is the same (lists come in runs
    /// of one label), else a new one.
    fn label(&self, label: String) -> Arc<str> {
        match self.entries.last().and_then(|e| e.classification.as_ref()) {
            Some(last) if **last == *label => Arc::clone(last),
            _ => Arc::from(label),
        }
    }

    pub(crate) fn push_entry(&mut self, entry: Entry) {
        let position = self.entries.len() as u32;
        if let Some(dedup) = &mut self.dedup {
            dedup.insert(&self.entries, entry.bank, &entry.signal, position);
        }
        self.entries.push(entry);
    }

    pub(crate) fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}

impl DedupIndex {
    fn insert(&mut self, entries: &[Entry], bank: BankId, signal: &Signal, position: u32) {
        let key = fingerprint(bank, signal);
        match self.primary.get(&key) {
            None => {
                self.primary.insert(key, position);
            }
            Some(&existing) => {
                let same = entries
                    .get(existing as usize)
                    .is_some_and(|e| e.bank == bank && e.signal == *signal);
                if !same {
                    self.overflow.entry((bank, *signal)).or_insert(position);
                }
            }
        }
    }

    fn get(&self, entries: &[Entry], bank: BankId, signal: &Signal) -> Option<u32> {
        let position = *self.primary.get(&fingerprint(bank, signal))?;
        let entry = entries.get(position as usize)?;
        if entry.bank == bank && entry.signal == *signal {
            Some(position)
        } else {
            self.overflow.get(&(bank, *signal)).copied()
        }
    }
}

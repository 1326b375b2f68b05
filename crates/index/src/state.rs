//! The banks as they stand after a sequence of journal records: banks, entries, provenance.
//!
//! `BankState` is rebuilt by applying records in sequence order, whatever holds them (a file
//! journal today, a SQL table later). It does not search: the matching index is built from it
//! (see `segment`). Entries loaded from a snapshot stay in the snapshot file (see `stored`)
//! until something needs them all in memory ([`BankState::entries`]): a process that only
//! matches or adds entries holds no per-entry record of the snapshot's entries at all (the
//! store finds duplicates in the matching index, not here).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::bank::{Bank, BankId, Entry, EntryId, Provenance};
use crate::error::StoreError;
use crate::journal::Record;
use crate::signal::Signal;
use crate::stored::StoredEntries;

/// Banks and entries at one sequence number.
#[derive(Debug, Clone, Default)]
pub struct BankState {
    pub(crate) seq: u64,
    pub(crate) banks: Vec<Bank>,
    pub(crate) provenances: Vec<Provenance>,
    /// Entries of the snapshot the state was loaded from, still in the file.
    pub(crate) stored: Option<Arc<StoredEntries>>,
    /// Stored entries disabled since the snapshot.
    stored_disabled: HashSet<EntryId>,
    /// Entries added since the snapshot (all of them without one), in increasing id order.
    added: Vec<Entry>,
    /// Every entry in increasing id order, once something needed them all in memory; from then
    /// on the only copy, and `stored`, `stored_disabled` and `added` are unused.
    all: OnceLock<Vec<Entry>>,
    /// Why stored entries could not be read back, if they could not.
    read_error: OnceLock<String>,
    edits: EditMark,
}

/// Tells whether one state differs from another only by entries added: taken fresh from a
/// process-wide counter when a state is made, and moved on by every record that does more than
/// add (a bank created or changed, an entry disabled). When a later state carries the mark an
/// earlier one had, it holds the same banks and the same disabled entries, plus entries with
/// higher ids. That lets whoever keeps data derived from the entries (the server's media
/// references and video index) read only the new entries instead of all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EditMark(u64);

impl Default for EditMark {
    fn default() -> Self {
        // A state gets 2^32 edits before its marks could meet another state's.
        static NEXT_STATE: AtomicU64 = AtomicU64::new(0);
        EditMark(NEXT_STATE.fetch_add(1 << 32, Ordering::Relaxed))
    }
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

    /// Every entry, in increasing id order. The first call reads the snapshot's entries into
    /// memory (~100 bytes each) and they stay there: prefer [`Self::for_each_entry`] or
    /// [`Self::entry`] in a long-lived process. If the snapshot can no longer be read, the
    /// entries that could not be are missing and [`Self::read_error`] says why.
    pub fn entries(&self) -> &[Entry] {
        self.all.get_or_init(|| {
            let mut all = Vec::with_capacity(self.entry_count());
            let result = self.for_each_lazy(0, &mut |entry| {
                all.push(entry.clone());
                Ok(())
            });
            if let Err(error) = result {
                let _ = self.read_error.set(error.to_string());
            }
            all
        })
    }

    /// Why [`Self::entries`] or [`Self::entry`] could not read the snapshot back, if so.
    pub fn read_error(&self) -> Option<&str> {
        self.read_error.get().map(String::as_str)
    }

    /// Number of entries (enabled or not).
    pub fn entry_count(&self) -> usize {
        match self.all.get() {
            Some(all) => all.len(),
            None => self.stored.as_ref().map_or(0, |s| s.len()) + self.added.len(),
        }
    }

    /// Calls `each` with every entry in increasing id order, reading stored entries one row
    /// group at a time (memory stays bounded).
    pub fn for_each_entry(
        &self,
        each: &mut dyn FnMut(&Entry) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        // Entry ids are sequence numbers, which start at 1.
        self.for_each_entry_after(0, each)
    }

    /// As [`Self::for_each_entry`], for the entries with ids above `after` only; the stored
    /// row groups wholly below it are not read.
    pub fn for_each_entry_after(
        &self,
        after: EntryId,
        each: &mut dyn FnMut(&Entry) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let result = match self.all.get() {
            Some(all) => {
                let first = all.partition_point(|e| e.id <= after);
                all.get(first..)
                    .unwrap_or_default()
                    .iter()
                    .try_for_each(&mut *each)
            }
            None => self.for_each_lazy(after, each),
        };
        result.map_err(|error| StoreError::Corrupt(format!("reading entries: {error}")))
    }

    fn for_each_lazy(
        &self,
        after: EntryId,
        each: &mut dyn FnMut(&Entry) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if let Some(stored) = &self.stored {
            let first_group = stored.group_of(after).unwrap_or(0);
            for group in first_group..stored.group_count() {
                for mut entry in stored.group(group)? {
                    if entry.id <= after {
                        continue;
                    }
                    entry.disabled |= self.stored_disabled.contains(&entry.id);
                    each(&entry)?;
                }
            }
        }
        let first = self.added.partition_point(|e| e.id <= after);
        self.added
            .get(first..)
            .unwrap_or_default()
            .iter()
            .try_for_each(each)
    }

    /// See [`EditMark`].
    pub fn edit_mark(&self) -> EditMark {
        self.edits
    }

    /// The entry with this id (`None` also when the snapshot can no longer be read; see
    /// [`Self::read_error`]).
    pub fn entry(&self, id: EntryId) -> Option<Entry> {
        if let Some(all) = self.all.get() {
            let position = all.binary_search_by_key(&id, |e| e.id).ok()?;
            return all.get(position).cloned();
        }
        if let Ok(position) = self.added.binary_search_by_key(&id, |e| e.id) {
            return self.added.get(position).cloned();
        }
        let stored = self.stored.as_ref()?;
        match stored.entry(id) {
            Ok(entry) => entry.map(|mut entry| {
                entry.disabled |= self.stored_disabled.contains(&id);
                entry
            }),
            Err(error) => {
                let _ = self.read_error.set(error.to_string());
                None
            }
        }
    }

    /// Makes the state read its entries from a snapshot just written: what was in memory is
    /// dropped, unless [`Self::entries`] had read them all into memory already (they stay the
    /// only copy then).
    pub(crate) fn use_snapshot(&mut self, stored: StoredEntries) {
        if self.all.get().is_none() {
            self.stored = Some(Arc::new(stored));
            self.stored_disabled = HashSet::new();
            self.added = Vec::new();
        }
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
                self.edits.0 += 1;
            }
            Record::BankChanged { bank } => {
                let slot = self.banks.get_mut(bank.id as usize).ok_or_else(|| {
                    StoreError::Corrupt(format!("change of unknown bank {}", bank.id))
                })?;
                *slot = bank;
                self.edits.0 += 1;
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
                if !self.disable(entry) {
                    return Err(StoreError::Corrupt(format!(
                        "disable of unknown entry {entry}"
                    )));
                }
                self.edits.0 += 1;
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
        let last = match self.all.get() {
            Some(all) => all.last(),
            None => self.added.last(),
        };
        match last.and_then(|e| e.classification.as_ref()) {
            Some(last) if **last == *label => Arc::clone(last),
            _ => Arc::from(label),
        }
    }

    pub(crate) fn push_entry(&mut self, entry: Entry) {
        match self.all.get_mut() {
            Some(all) => all.push(entry),
            None => self.added.push(entry),
        }
    }

    /// Marks an entry disabled; false if there is no such entry.
    fn disable(&mut self, id: EntryId) -> bool {
        let in_memory = match self.all.get_mut() {
            Some(all) => all,
            None => &mut self.added,
        };
        if let Ok(position) = in_memory.binary_search_by_key(&id, |e| e.id) {
            if let Some(found) = in_memory.get_mut(position) {
                found.disabled = true;
            }
            return true;
        }
        if self.all.get().is_some() || self.entry(id).is_none() {
            return false;
        }
        self.stored_disabled.insert(id);
        true
    }

    pub(crate) fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }
}
